//! Devices: the nodes created in the container's `/dev` (OCI's
//! `linux.devices`) and the rules saying which devices it may open (OCI's
//! `linux.resources.devices`).
//!
//! A device node is a file that names a driver by two numbers, major and
//! minor, of a kind: character (`c`, such as `/dev/null`, 1:3), block
//! (`b`), or a fifo (`p`). Whoever may create a node may reach the driver,
//! so the kernel has a second gate: the devices cgroup controller (v1) keeps
//! a list per cgroup of the devices its tasks may open, read, write or
//! create (`mknod`). The list is changed by writing lines such as
//! `c 1:3 rwm` to `devices.allow` or `devices.deny`, with `*` for any
//! number and `a` for every kind.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A node to create in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Absolute path inside the container, such as `/dev/fuse`.
    pub path: String,
    /// `c`, `b` or `p` (`u`, unbuffered character, is `c` to mknod).
    pub kind: char,
    pub major: u64,
    pub minor: u64,
    /// Permission bits (0666 unless given).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The host's node, bound in a user namespace (which may not make
    /// nodes); `path` itself when absent, as in an OCI configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Device {
    /// Checks an OCI `linux.devices` entry; `field` names it in errors.
    pub fn check(&self, field: &str) -> Result<()> {
        if !self.path.starts_with('/') || self.path.split('/').any(|c| c == "..") {
            return Err(Error::Config {
                field: format!("{field}.path"),
                problem: format!("{:?} is not an absolute path free of `..`", self.path),
            });
        }
        if !matches!(self.kind, 'c' | 'b' | 'p' | 'u') {
            return Err(Error::Config {
                field: format!("{field}.type"),
                problem: format!("{:?}: expected c, b, u or p", self.kind),
            });
        }
        Ok(())
    }
}

/// One line of a devices cgroup list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRule {
    /// Written to `devices.allow` (true) or `devices.deny`.
    pub allow: bool,
    /// `a` (all), `c` or `b`.
    pub kind: char,
    /// `None` is any (`*`).
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of `r` (read), `w` (write), `m` (mknod).
    pub access: String,
}

impl DeviceRule {
    /// Reads an OCI rule; `field` names it in errors.
    pub fn new(
        field: &str,
        allow: bool,
        kind: Option<char>,
        major: Option<i64>,
        minor: Option<i64>,
        access: Option<&str>,
    ) -> Result<DeviceRule> {
        let kind = kind.unwrap_or('a');
        if !matches!(kind, 'a' | 'c' | 'b') {
            return Err(Error::Config {
                field: format!("{field}.type"),
                problem: format!("{kind:?}: expected a, c or b"),
            });
        }
        let access = access.unwrap_or("rwm");
        if access.is_empty() || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
            return Err(Error::Config {
                field: format!("{field}.access"),
                problem: format!("{access:?}: expected some of r, w and m"),
            });
        }
        Ok(DeviceRule {
            allow,
            kind,
            major: major.filter(|n| *n >= 0),
            minor: minor.filter(|n| *n >= 0),
            access: access.to_owned(),
        })
    }

    /// The line the v1 controller takes: `c 1:3 rwm`. The kernel accepts
    /// only `a` alone for every device, whatever the numbers say.
    pub fn line(&self) -> String {
        if self.kind == 'a' {
            return "a".into();
        }
        let number = |n: Option<i64>| n.map_or("*".to_owned(), |n| n.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            number(self.major),
            number(self.minor),
            self.access
        )
    }
}

/// `--device HOST[:CONTAINER[:PERMISSIONS]]`, docker's form: the host
/// device, where it appears in the container (the same path by default),
/// and what the container may do with it (some of `rwm`, all by default).
pub fn parse_device_flag(text: &str) -> Result<(String, String, String)> {
    let invalid = |why: &str| Error::invalid("--device", text, why);
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, access) = match parts.as_slice() {
        [host] => (*host, *host, "rwm"),
        // docker's two-part form is a mode when it reads as one.
        [host, access] if !access.is_empty() && access.chars().all(|c| "rwm".contains(c)) => {
            (*host, *host, *access)
        }
        [host, container] => (*host, *container, "rwm"),
        [host, container, access] => (*host, *container, *access),
        _ => return Err(invalid("expected HOST[:CONTAINER[:PERMISSIONS]]")),
    };
    for path in [host, container] {
        if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
            return Err(invalid(
                "paths must be absolute and free of `..`, such as /dev/fuse",
            ));
        }
    }
    if access.is_empty() || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(invalid(
            "the permissions are some of r, w and m, such as rw",
        ));
    }
    Ok((host.to_owned(), container.to_owned(), access.to_owned()))
}

/// Character devices a container may always use: null, zero, full, random,
/// urandom, tty, console, ptmx and every pseudo-terminal (136:*).
pub const ALWAYS_ALLOWED: [(u64, Option<u64>); 9] = [
    (1, Some(3)),
    (1, Some(5)),
    (1, Some(7)),
    (1, Some(8)),
    (1, Some(9)),
    (5, Some(0)),
    (5, Some(1)),
    (5, Some(2)),
    (136, None),
];

/// docker's device cgroup list, which every `mydocker run` container
/// gets: every device denied, then making any node allowed (`m`: a node
/// opens nothing by itself), then opening the ones every container uses
/// (null, zero, full, random, urandom, tty, console, ptmx, the
/// pseudo-terminals) and `/dev/net/tun`. Without it, a container's root,
/// which holds CAP_MKNOD as docker's does, could make a node for the
/// host's disk and read it.
pub fn docker_defaults() -> Vec<DeviceRule> {
    let rule = |allow, kind, major: Option<u64>, minor: Option<u64>, access: &str| DeviceRule {
        allow,
        kind,
        major: major.map(|m| m as i64),
        minor: minor.map(|m| m as i64),
        access: access.to_owned(),
    };
    [
        rule(false, 'a', None, None, "rwm"),
        rule(true, 'c', None, None, "m"),
        rule(true, 'b', None, None, "m"),
    ]
    .into_iter()
    .chain(
        ALWAYS_ALLOWED
            .iter()
            .map(|&(major, minor)| rule(true, 'c', Some(major), minor, "rwm")),
    )
    .chain(std::iter::once(rule(true, 'c', Some(10), Some(200), "rwm")))
    .collect()
}

/// The rules that open each `--device` to the container, with the
/// permissions given, after [`docker_defaults`].
pub fn rules_for(devices: &[(Device, String)]) -> Vec<DeviceRule> {
    devices
        .iter()
        .map(|(d, access)| DeviceRule {
            allow: true,
            kind: d.kind,
            major: Some(d.major as i64),
            minor: Some(d.minor as i64),
            access: access.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_become_the_lines_the_controller_reads() {
        let null = DeviceRule::new("r", true, Some('c'), Some(1), Some(3), Some("rw")).unwrap();
        assert_eq!(null.line(), "c 1:3 rw");
        let any_block = DeviceRule::new("r", false, Some('b'), None, Some(-1), None).unwrap();
        assert_eq!(any_block.line(), "b *:* rwm");
        let all = DeviceRule::new("r", false, None, None, None, Some("rwm")).unwrap();
        assert_eq!(all.line(), "a");
        for (kind, access, field) in [(Some('x'), None, "r.type"), (None, Some("rx"), "r.access")] {
            let e = DeviceRule::new("r", true, kind, None, None, access).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[test]
    fn a_node_outside_dev_or_of_no_kind_is_refused() {
        let mut device = Device {
            path: "/dev/fuse".into(),
            kind: 'c',
            major: 10,
            minor: 229,
            mode: 0o666,
            uid: 0,
            gid: 0,
            host: None,
        };
        assert!(device.check("linux.devices[0]").is_ok());
        device.kind = 'x';
        assert!(device.check("linux.devices[0]").is_err());
        device.kind = 'c';
        device.path = "dev/fuse".into();
        assert!(device.check("linux.devices[0]").is_err());
    }

    #[test]
    fn device_flags_read_as_dockers() {
        let parsed = |t| parse_device_flag(t).unwrap();
        let owned = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        assert_eq!(parsed("/dev/fuse"), owned("/dev/fuse", "/dev/fuse", "rwm"));
        assert_eq!(
            parsed("/dev/fuse:rw"),
            owned("/dev/fuse", "/dev/fuse", "rw")
        );
        assert_eq!(
            parsed("/dev/fuse:/dev/f"),
            owned("/dev/fuse", "/dev/f", "rwm")
        );
        assert_eq!(
            parsed("/dev/fuse:/dev/f:r"),
            owned("/dev/fuse", "/dev/f", "r")
        );
        for bad in [
            "fuse",
            "/dev/fuse:x",
            "/dev/fuse:/dev/f:rx",
            "/a:/b:r:w",
            "/dev/../etc",
        ] {
            assert!(parse_device_flag(bad).is_err(), "{bad}");
        }
    }
}
