//! A filesystem mounted into the container (OCI's `mounts`), its options
//! split the way mount(2) takes them.
//!
//! A mount line such as `tmpfs /dev tmpfs nosuid,mode=755` mixes two kinds
//! of option. Some are generic and become bits of mount(2)'s `flags`
//! argument (`nosuid` is `MS_NOSUID`, `ro` is `MS_RDONLY`); the rest are the
//! filesystem's own and travel, joined by commas, as its `data` string
//! (`mode=755` means something only to tmpfs). Propagation (`rprivate`,
//! `shared`, …) is a third kind: the kernel refuses it combined with other
//! flags, so it is applied by a second call on the finished mount. `bind`
//! and `rbind` make the mount a bind of `source` rather than a new
//! filesystem; a read-only bind also needs a second call, because the kernel
//! ignores `MS_RDONLY` when it creates the bind.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One mount, ready for mount(2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path inside the container.
    pub destination: String,
    /// The filesystem type (`proc`, `tmpfs`, …), or `bind` for a bind.
    pub fstype: String,
    /// What is mounted: a host path for a bind, else a name the kernel shows.
    pub source: String,
    /// `MS_*` flags for the mount itself.
    pub flags: u64,
    /// `MS_SHARED`, `MS_PRIVATE`, … (with `MS_REC`), applied afterwards.
    pub propagation: u64,
    /// The filesystem's own options, comma-separated.
    pub data: String,
}

impl Mount {
    /// A bind (`bind`, `rbind` or type `bind`) rather than a new filesystem.
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    /// Reads an OCI mount entry; `field` names it in errors (`mounts[2]`).
    pub fn parse(
        field: &str,
        destination: &str,
        fstype: Option<&str>,
        source: Option<&str>,
        options: &[String],
    ) -> Result<Mount> {
        if !destination.starts_with('/') || destination.split('/').any(|c| c == "..") {
            return Err(Error::Config {
                field: format!("{field}.destination"),
                problem: format!("{destination:?} is not an absolute path free of `..`"),
            });
        }
        let mut mount = Mount {
            destination: destination.to_owned(),
            fstype: fstype.unwrap_or_default().to_owned(),
            source: source.unwrap_or_default().to_owned(),
            flags: 0,
            propagation: 0,
            data: String::new(),
        };
        let mut data = Vec::new();
        for option in options {
            if let Some((set, bits)) = flag(option) {
                if set {
                    mount.flags |= bits;
                } else {
                    mount.flags &= !bits;
                }
            } else if let Some(bits) = propagation(option) {
                mount.propagation = bits;
            } else {
                data.push(option.as_str());
            }
        }
        mount.data = data.join(",");
        if mount.fstype == "bind" {
            mount.flags |= libc::MS_BIND;
        }
        if mount.fstype.is_empty() && !mount.is_bind() {
            return Err(Error::Config {
                field: format!("{field}.type"),
                problem: "missing: name the filesystem, or give the bind option".into(),
            });
        }
        if mount.is_bind() && mount.source.is_empty() {
            return Err(Error::Config {
                field: format!("{field}.source"),
                problem: "missing: a bind mount needs the host path to bind".into(),
            });
        }
        Ok(mount)
    }
}

/// Every generic and propagation option [`Mount::parse`] turns into flags
/// (the others travel to the filesystem as its data).
pub const OPTIONS: [&str; 33] = [
    "defaults",
    "ro",
    "rw",
    "nosuid",
    "suid",
    "nodev",
    "dev",
    "noexec",
    "exec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "noatime",
    "atime",
    "nodiratime",
    "diratime",
    "relatime",
    "norelatime",
    "strictatime",
    "nostrictatime",
    "bind",
    "rbind",
    "private",
    "rprivate",
    "shared",
    "rshared",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// A generic option: whether it sets (true) or clears its `MS_*` bits.
fn flag(option: &str) -> Option<(bool, u64)> {
    use libc::*;
    Some(match option {
        "defaults" => (true, 0),
        "ro" => (true, MS_RDONLY),
        "rw" => (false, MS_RDONLY),
        "nosuid" => (true, MS_NOSUID),
        "suid" => (false, MS_NOSUID),
        "nodev" => (true, MS_NODEV),
        "dev" => (false, MS_NODEV),
        "noexec" => (true, MS_NOEXEC),
        "exec" => (false, MS_NOEXEC),
        "sync" => (true, MS_SYNCHRONOUS),
        "async" => (false, MS_SYNCHRONOUS),
        "dirsync" => (true, MS_DIRSYNC),
        "remount" => (true, MS_REMOUNT),
        "mand" => (true, MS_MANDLOCK),
        "nomand" => (false, MS_MANDLOCK),
        "noatime" => (true, MS_NOATIME),
        "atime" => (false, MS_NOATIME),
        "nodiratime" => (true, MS_NODIRATIME),
        "diratime" => (false, MS_NODIRATIME),
        "relatime" => (true, MS_RELATIME),
        "norelatime" => (false, MS_RELATIME),
        "strictatime" => (true, MS_STRICTATIME),
        "nostrictatime" => (false, MS_STRICTATIME),
        "bind" => (true, MS_BIND),
        "rbind" => (true, MS_BIND | MS_REC),
        _ => return None,
    })
}

/// A propagation option's `MS_*` bits.
fn propagation(option: &str) -> Option<u64> {
    use libc::*;
    Some(match option {
        "private" => MS_PRIVATE,
        "rprivate" => MS_PRIVATE | MS_REC,
        "shared" => MS_SHARED,
        "rshared" => MS_SHARED | MS_REC,
        "slave" => MS_SLAVE,
        "rslave" => MS_SLAVE | MS_REC,
        "unbindable" => MS_UNBINDABLE,
        "runbindable" => MS_UNBINDABLE | MS_REC,
        _ => return None,
    })
}

/// OCI's `linux.rootfsPropagation`: the propagation of the root's mount.
pub fn root_propagation(value: &str) -> Result<u64> {
    propagation(value).ok_or_else(|| Error::Config {
        field: "linux.rootfsPropagation".into(),
        problem: format!(
            "{value:?} is not a propagation: expected private, shared, slave or unbindable (r-prefixed or not)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn generic_options_become_flags_and_the_rest_data() {
        let m = Mount::parse(
            "mounts[1]",
            "/dev",
            Some("tmpfs"),
            Some("tmpfs"),
            &options(&["nosuid", "strictatime", "mode=755", "size=65536k"]),
        )
        .unwrap();
        assert_eq!(m.flags, libc::MS_NOSUID | libc::MS_STRICTATIME);
        assert_eq!(m.data, "mode=755,size=65536k");
        assert!(!m.is_bind());
    }

    #[test]
    fn the_listed_options_are_the_ones_read_as_flags() {
        for option in OPTIONS {
            assert!(
                flag(option).is_some() || propagation(option).is_some(),
                "{option}"
            );
        }
        assert!(flag("mode=755").is_none() && propagation("size=1k").is_none());
    }

    #[test]
    fn binds_and_propagation_are_told_apart() {
        let m = Mount::parse(
            "mounts[0]",
            "/data",
            None,
            Some("/srv"),
            &options(&["rbind", "ro", "rw", "ro", "rslave"]),
        )
        .unwrap();
        assert!(m.is_bind());
        assert_eq!(m.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert_eq!(m.propagation, libc::MS_SLAVE | libc::MS_REC);
        assert!(Mount::parse("m", "/x", Some("bind"), Some("/y"), &[])
            .unwrap()
            .is_bind());
    }

    #[test]
    fn a_mount_that_cannot_be_made_is_refused_by_field() {
        for (dest, fstype, source, field) in [
            ("dev", Some("tmpfs"), None, "mounts[3].destination"),
            ("/a/../b", Some("tmpfs"), None, "mounts[3].destination"),
            ("/x", None, Some("/y"), "mounts[3].type"),
            ("/x", Some("bind"), None, "mounts[3].source"),
        ] {
            let e = Mount::parse("mounts[3]", dest, fstype, source, &[]).unwrap_err();
            assert!(e.to_string().contains(field), "{e}");
        }
        assert!(root_propagation("rslave").is_ok());
        assert!(root_propagation("sideways")
            .unwrap_err()
            .to_string()
            .contains("sideways"));
    }
}
