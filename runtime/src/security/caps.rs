//! Capabilities: docker's default set, `--cap-add`/`--cap-drop`, and reducing
//! init's five capability sets to the chosen ones before exec.
//!
//! Root's power is split into capabilities (CAP_SYS_ADMIN, CAP_NET_ADMIN, …).
//! A process holds five sets: *bounding* (the most it can ever gain),
//! *permitted*, *effective* (what the kernel checks), *inheritable* and
//! *ambient* (what survives exec). When uid 0 execs, the kernel gives it the
//! bounding set (plus the inheritable one), so the bounding set is the limit
//! that matters; the others are reduced too, so nothing is held by accident.

use ::caps::{CapSet, Capability, CapsHashSet};

use crate::error::{Error, Result};
use crate::init::Failure;

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

/// Reduces this process's capabilities to `mask` in every set.
///
/// The bounding set goes first, while CAP_SETPCAP (needed to drop from it) is
/// still effective. Then effective, inheritable (emptied) and permitted, in
/// that order: the kernel refuses an effective set larger than the permitted
/// one.
pub fn reduce_to(mask: u64) -> Result<(), Failure> {
    // Only what we hold can be kept: `--privileged` under a runtime that was
    // itself started without some capability gets all the others.
    let held = ::caps::read(None, CapSet::Permitted)
        .map_err(|e| Failure::runtime(format!("read the permitted capabilities: {e}")))?;
    let keep: CapsHashSet = held
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .collect();
    for cap in ::caps::all() {
        // A capability newer than the kernel is not in its bounding set anyway.
        if !keep.contains(&cap) && ::caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false) {
            ::caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| Failure::runtime(format!("drop {cap} from the bounding set: {e}")))?;
        }
    }
    // Ambient capabilities would survive exec into any program; none are kept.
    if ::caps::runtime::ambient_set_supported().is_ok() {
        ::caps::clear(None, CapSet::Ambient)
            .map_err(|e| Failure::runtime(format!("clear the ambient set: {e}")))?;
    }
    // The inheritable set stays empty: with it, a non-root program with
    // inheritable file capabilities would gain them on exec (docker's
    // CVE-2022-24769). Root still gets the bounding set when it execs.
    let nothing = CapsHashSet::new();
    for (set, value) in [
        (CapSet::Effective, &keep),
        (CapSet::Inheritable, &nothing),
        (CapSet::Permitted, &keep),
    ] {
        ::caps::set(None, set, value)
            .map_err(|e| Failure::runtime(format!("set the {set:?} capabilities: {e}")))?;
    }
    Ok(())
}

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
