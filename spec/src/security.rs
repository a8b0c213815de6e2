//! How a container is confined beyond its namespaces, as plain values: the
//! capability set and how `--cap-add`/`--cap-drop` choose it, the paths
//! that are masked or read-only, `--security-opt`. `crate::security`
//! applies them inside the container.

use ::caps::Capability;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a container is confined, beyond its namespaces and cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Security {
    /// Capabilities the container keeps, as a mask (bit N is capability N).
    pub capabilities: u64,
    /// Cover the sensitive `/proc` and `/sys` paths, make `/proc/sys` and the
    /// like read-only.
    pub mask_paths: bool,
    /// Set `no_new_privs`, so that no exec (setuid, file capabilities) can
    /// gain privileges.
    pub no_new_privileges: bool,
    /// Install the default seccomp filter.
    pub seccomp: bool,
    /// Mount the rootfs read-only, with tmpfs on `/tmp` and `/run` (`--read-only`).
    pub read_only_rootfs: bool,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            capabilities: DEFAULT,
            mask_paths: true,
            no_new_privileges: true,
            seccomp: true,
            read_only_rootfs: false,
        }
    }
}

impl Security {
    /// `--privileged`: every capability, nothing masked, no seccomp filter.
    /// `no_new_privs` stays as it was: it takes nothing a privileged
    /// container needs, and it has its own switch.
    pub fn privileged(self) -> Security {
        Security {
            capabilities: ALL,
            mask_paths: false,
            seccomp: false,
            ..self
        }
    }

    /// Applies one `--security-opt` value: `no-new-privileges[=true|false]`
    /// or `seccomp=unconfined|default` (docker also spells the separator `:`).
    pub fn apply_option(&mut self, text: &str) -> Result<()> {
        let (key, value) = match text.split_once(['=', ':']) {
            Some((key, value)) => (key, Some(value)),
            None => (text, None),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => self.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => self.no_new_privileges = false,
            ("no-new-privileges", Some(other)) => {
                return Err(Error::invalid(
                    "--security-opt no-new-privileges",
                    other,
                    "expected true or false",
                ))
            }
            ("seccomp", Some("unconfined")) => self.seccomp = false,
            ("seccomp", Some("default")) => self.seccomp = true,
            ("seccomp", Some(profile)) => {
                return Err(Error::invalid(
                    "--security-opt seccomp",
                    profile,
                    "expected unconfined or default (profile files are not supported)",
                ))
            }
            _ => {
                return Err(Error::invalid(
                    "--security-opt",
                    text,
                    "expected no-new-privileges[=true|false] or seccomp=unconfined|default",
                ))
            }
        }
        Ok(())
    }
}

/// docker's default capabilities.
const DEFAULT_LIST: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// The five capability sets of a process, each a mask, as OCI names them.
/// `mydocker run` gives bounding, effective and permitted the same mask and
/// leaves inheritable and ambient empty ([`CapabilitySets::docker`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilitySets {
    pub bounding: u64,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub ambient: u64,
}

impl CapabilitySets {
    /// docker's shape: `mask` in bounding, effective and permitted.
    pub fn docker(mask: u64) -> CapabilitySets {
        CapabilitySets {
            bounding: mask,
            effective: mask,
            permitted: mask,
            inheritable: 0,
            ambient: 0,
        }
    }
}

/// The default set as a mask.
pub const DEFAULT: u64 = mask_of(&DEFAULT_LIST);

/// CAP_SYS_ADMIN alone: mounts, sethostname, namespaces (`--cap-add SYS_ADMIN`).
pub const SYS_ADMIN: u64 = 1 << Capability::CAP_SYS_ADMIN as u64;

/// Every capability this build knows of.
pub const ALL: u64 = (1 << (Capability::CAP_CHECKPOINT_RESTORE as u64 + 1)) - 1;

const fn mask_of(list: &[Capability]) -> u64 {
    let mut mask = 0;
    let mut i = 0;
    while i < list.len() {
        mask |= 1 << list[i] as u64;
        i += 1;
    }
    mask
}

/// Reads a capability name as docker does: any case, with or without `CAP_`.
/// `ALL` gives `None`.
pub fn parse(flag: &'static str, name: &str) -> Result<Option<Capability>> {
    let canonical = ::caps::to_canonical(name);
    if canonical == "CAP_ALL" {
        return Ok(None);
    }
    canonical.parse::<Capability>().map(Some).map_err(|_| {
        Error::invalid(
            flag,
            name,
            "expected a capability name such as NET_ADMIN or CAP_SYS_TIME, or ALL",
        )
    })
}

/// The set docker would give for `--cap-add` and `--cap-drop`: the default,
/// minus the drops, plus the adds. `ALL` in either list means every
/// capability; an explicit add wins over `--cap-drop ALL` and an explicit
/// drop over `--cap-add ALL`.
pub fn choose(add: &[String], drop: &[String]) -> Result<u64> {
    let parse_all = |flag, names: &[String]| -> Result<(bool, u64)> {
        let mut all = false;
        let mut mask = 0;
        for name in names {
            match parse(flag, name)? {
                None => all = true,
                Some(cap) => mask |= cap.bitmask(),
            }
        }
        Ok((all, mask))
    };
    let (add_all, added) = parse_all("--cap-add", add)?;
    let (drop_all, dropped) = parse_all("--cap-drop", drop)?;
    let mut chosen = if drop_all { 0 } else { DEFAULT & !dropped };
    chosen |= if add_all { ALL & !dropped } else { added };
    Ok(chosen)
}

/// The names in `mask`, for messages and probes.
pub fn names(mask: u64) -> Vec<String> {
    let mut caps: Vec<Capability> = ::caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .collect();
    caps.sort_by_key(|c| c.index());
    caps.iter().map(|c| c.to_string()).collect()
}

/// Covered entirely (docker's list).
pub const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    // RAPL energy counters leak what other tenants compute (CVE-2020-8694).
    "/sys/devices/virtual/powercap",
];

/// Left readable, made read-only.
pub const READ_ONLY: [&str; 5] = [
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/irq",
    "/proc/bus",
    "/proc/fs",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_default_is_dockers_fourteen() {
        assert_eq!(DEFAULT.count_ones(), 14);
        assert!(names(DEFAULT).contains(&"CAP_NET_BIND_SERVICE".to_string()));
        assert!(!names(DEFAULT).contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(ALL.count_ones() as usize, ::caps::all().len());
    }

    #[test]
    fn names_are_read_in_any_case_with_or_without_the_prefix() {
        for name in ["net_admin", "NET_ADMIN", "cap_net_admin", "CAP_NET_ADMIN"] {
            assert_eq!(
                parse("--cap-add", name).unwrap(),
                Some(Capability::CAP_NET_ADMIN)
            );
        }
        assert_eq!(parse("--cap-add", "all").unwrap(), None);
        let message = parse("--cap-add", "NET_ADMINN").unwrap_err().to_string();
        assert!(
            message.contains("NET_ADMINN") && message.contains("--cap-add"),
            "{message}"
        );
    }

    #[test]
    fn adds_and_drops_combine_as_docker_combines_them() {
        let admin = Capability::CAP_SYS_ADMIN.bitmask();
        let chown = Capability::CAP_CHOWN.bitmask();
        assert_eq!(choose(&[], &[]).unwrap(), DEFAULT);
        assert_eq!(
            choose(&strings(&["SYS_ADMIN"]), &[]).unwrap(),
            DEFAULT | admin
        );
        assert_eq!(choose(&[], &strings(&["chown"])).unwrap(), DEFAULT & !chown);
        assert_eq!(
            choose(&strings(&["CHOWN"]), &strings(&["ALL"])).unwrap(),
            chown
        );
        assert_eq!(
            choose(&strings(&["ALL"]), &strings(&["SYS_ADMIN"])).unwrap(),
            ALL & !admin
        );
        assert!(choose(&[], &strings(&["bogus"])).is_err());
    }
}
