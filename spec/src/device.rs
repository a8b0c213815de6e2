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
        };
        assert!(device.check("linux.devices[0]").is_ok());
        device.kind = 'x';
        assert!(device.check("linux.devices[0]").is_err());
        device.kind = 'c';
        device.path = "dev/fuse".into();
        assert!(device.check("linux.devices[0]").is_err());
    }
}
