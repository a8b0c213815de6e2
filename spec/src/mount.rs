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

/// What docker's `--tmpfs` mounts have unless an option says otherwise.
const TMPFS_DEFAULTS: [&str; 4] = ["rw", "noexec", "nosuid", "nodev"];

/// `--tmpfs PATH[:OPTIONS]`: a tmpfs at PATH with docker's defaults
/// (`rw,noexec,nosuid,nodev`) and then the comma-separated options given
/// (`size=64m`, `mode=1777`, `exec`, `ro`, …). `dev` is refused: a device
/// node made there would reach the host's driver wherever no device cgroup
/// list stops it (on v2, and in an OCI container without rules).
pub fn parse_tmpfs(text: &str) -> Result<Mount> {
    let (path, options) = text.split_once(':').unwrap_or((text, ""));
    tmpfs(
        "--tmpfs",
        text,
        path,
        options.split(',').filter(|o| !o.is_empty()),
    )
}

/// What a `--mount` asks for: a mount made as such, or a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LongMount {
    Mount(Mount),
    Volume(crate::Volume),
}

/// `--mount type=bind|volume|tmpfs,...`, docker's long form: a bind of
/// `source` (a directory or a file, which must exist, unlike `-v`'s), a
/// named volume `source` (an anonymous one without), or a tmpfs, at
/// `destination` (also `target`, `dst`), `readonly`/`ro`; for a volume,
/// `volume-nocopy`; for tmpfs, `tmpfs-size` in bytes and `tmpfs-mode` in
/// octal. docker's default type is volume.
pub fn parse_mount(text: &str) -> Result<LongMount> {
    let invalid = |why: String| Error::invalid("--mount", text, why);
    let mut kind = "volume";
    let (mut source, mut destination, mut read_only) = (None, None, false);
    let mut tmpfs_options = Vec::new();
    let mut no_copy = false;
    for field in text.split(',') {
        let (key, value) = field.split_once('=').unwrap_or((field, ""));
        match key {
            "type" => kind = value,
            "source" | "src" => source = Some(value),
            "destination" | "target" | "dst" => destination = Some(value),
            "readonly" | "ro" => {
                read_only = match value {
                    "" | "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(invalid(format!("{key}={value}: expected true or false"))),
                }
            }
            "volume-nocopy" => {
                no_copy = match value {
                    "" | "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(invalid(format!("{key}={value}: expected true or false"))),
                }
            }
            "tmpfs-size" => tmpfs_options.push(format!("size={value}")),
            "tmpfs-mode" => tmpfs_options.push(format!("mode={value}")),
            _ => {
                return Err(invalid(format!(
                    "unknown key {key:?}: expected type, source, destination, readonly, volume-nocopy, tmpfs-size or tmpfs-mode"
                )))
            }
        }
    }
    let Some(destination) = destination.filter(|d| !d.is_empty()) else {
        return Err(invalid("missing destination=PATH".into()));
    };
    if no_copy && kind != "volume" {
        return Err(invalid("volume-nocopy is for type=volume".into()));
    }
    match kind {
        "bind" => {
            let Some(source) = source.filter(|s| s.starts_with('/')) else {
                return Err(invalid("a bind needs source=/ABSOLUTE/HOST/PATH".into()));
            };
            let destination = check_destination("--mount", text, destination)?;
            let mut options = vec!["rbind".to_owned(), "rprivate".to_owned()];
            if read_only {
                options.push("ro".into());
            }
            Mount::parse("--mount", destination, Some("bind"), Some(source), &options)
                .map(LongMount::Mount)
                .map_err(|e| invalid(e.to_string()))
        }
        "tmpfs" => {
            if source.is_some() {
                return Err(invalid("a tmpfs has no source".into()));
            }
            if read_only {
                tmpfs_options.push("ro".into());
            }
            let options: Vec<&str> = tmpfs_options.iter().map(String::as_str).collect();
            tmpfs("--mount", text, destination, options.into_iter()).map(LongMount::Mount)
        }
        "volume" => {
            if !tmpfs_options.is_empty() {
                return Err(invalid(
                    "tmpfs-size and tmpfs-mode are for type=tmpfs".into(),
                ));
            }
            let destination = check_destination("--mount", text, destination)?;
            let volume = match source.filter(|s| !s.is_empty()) {
                Some(name) => {
                    crate::check_volume_name("--mount", name)?;
                    crate::Volume::named(name, destination, read_only)
                }
                None => crate::Volume {
                    anonymous: true,
                    ..crate::Volume::bind(std::path::PathBuf::new(), destination, read_only)
                },
            };
            Ok(LongMount::Volume(crate::Volume { no_copy, ..volume }))
        }
        other => Err(invalid(format!(
            "type {other:?}: expected bind, volume or tmpfs"
        ))),
    }
}

fn tmpfs<'a>(
    flag: &'static str,
    text: &str,
    path: &str,
    options: impl Iterator<Item = &'a str>,
) -> Result<Mount> {
    let path = check_destination(flag, text, path)?;
    let mut all: Vec<String> = TMPFS_DEFAULTS.iter().map(|o| o.to_string()).collect();
    for option in options {
        if option == "dev" {
            return Err(Error::invalid(
                flag,
                text,
                "`dev` is refused: a device node made there would reach the host's driver",
            ));
        }
        if propagation(option).is_some() || matches!(option, "bind" | "rbind" | "remount") {
            return Err(Error::invalid(
                flag,
                text,
                format!("{option:?} is not a tmpfs option"),
            ));
        }
        all.push(option.to_owned());
    }
    Mount::parse(flag, path, Some("tmpfs"), Some("tmpfs"), &all)
        .map_err(|e| Error::invalid(flag, text, e.to_string()))
}

pub(crate) fn check_destination<'a>(
    flag: &'static str,
    text: &str,
    path: &'a str,
) -> Result<&'a str> {
    if !path.starts_with('/') || path.split('/').any(|c| c == "..") || path == "/" {
        return Err(Error::invalid(
            flag,
            text,
            "the container path must be absolute, free of `..` and not /, such as /scratch",
        ));
    }
    // Covering /proc or /sys would undo the masks over their sensitive files
    // (`/./proc` is /proc too).
    let top = path
        .split('/')
        .find(|c| !c.is_empty() && *c != ".")
        .unwrap_or_default();
    if matches!(top, "proc" | "sys") {
        return Err(Error::invalid(
            flag,
            text,
            "/proc and /sys are the kernel's, masked where needed: mount elsewhere",
        ));
    }
    Ok(path)
}

#[cfg(test)]
mod docker_form_tests {
    use super::*;

    #[test]
    fn tmpfs_starts_from_dockers_defaults() {
        let m = parse_tmpfs("/scratch:size=64m,exec").unwrap();
        assert_eq!(m.destination, "/scratch");
        assert_eq!(m.fstype, "tmpfs");
        assert_eq!(m.data, "size=64m");
        assert_eq!(
            m.flags,
            libc::MS_NOSUID | libc::MS_NODEV,
            "exec given after the defaults clears noexec"
        );
        let plain = parse_tmpfs("/run").unwrap();
        assert_eq!(
            plain.flags,
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC
        );
        for bad in [
            "run",
            "/a/../b",
            "/",
            "/x:dev",
            "/x:shared",
            "/x:bind",
            "/proc",
            "/sys/fs",
            "/./proc",
            "//sys",
        ] {
            assert!(parse_tmpfs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mount_reads_dockers_long_form() {
        let mount = |text: &str| match parse_mount(text).unwrap() {
            LongMount::Mount(m) => m,
            other => panic!("{text}: {other:?}"),
        };
        let bind = mount("type=bind,source=/srv,target=/data,readonly");
        assert_eq!(
            (bind.source.as_str(), bind.destination.as_str()),
            ("/srv", "/data")
        );
        assert!(bind.is_bind() && bind.flags & libc::MS_RDONLY != 0);
        let m = mount("type=tmpfs,dst=/t,tmpfs-size=1048576,tmpfs-mode=1770");
        assert_eq!(m.data, "size=1048576,mode=1770");
        // A volume, named or anonymous; docker's default type.
        assert_eq!(
            parse_mount("source=data,target=/data,readonly").unwrap(),
            LongMount::Volume(crate::Volume::named("data", "/data", true))
        );
        match parse_mount("type=volume,target=/cache,volume-nocopy").unwrap() {
            LongMount::Volume(v) => assert!(v.anonymous && v.no_copy && v.name.is_none()),
            other => panic!("{other:?}"),
        }
        for (bad, mention) in [
            ("type=volume,source=-data,target=/data", "-data"),
            ("type=volume,target=/d,tmpfs-size=1", "type=tmpfs"),
            (
                "type=bind,source=/srv,target=/d,volume-nocopy",
                "type=volume",
            ),
            ("type=volume,source=data,target=/proc", "/proc"),
            ("type=bind,source=relative,target=/d", "ABSOLUTE"),
            ("type=bind,source=/srv", "destination"),
            ("type=tmpfs,target=/t,color=red", "color"),
            ("type=nfs,target=/t", "nfs"),
            ("type=tmpfs,source=x,target=/t", "no source"),
            ("type=bind,source=/srv,target=/d,readonly=maybe", "maybe"),
        ] {
            let error = parse_mount(bad).unwrap_err().to_string();
            assert!(error.contains(mention), "{bad}: {error}");
        }
    }
}
