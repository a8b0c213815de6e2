//! Capabilities: docker's default set, `--cap-add`/`--cap-drop`, and reducing
//! init's five capability sets to the chosen ones before exec.
//!
//! Root's power is split into capabilities (CAP_SYS_ADMIN, CAP_NET_ADMIN, …).
//! A process holds five sets: *bounding* (the most it can ever gain),
//! *permitted*, *effective* (what the kernel checks), *inheritable* and
//! *ambient* (what survives exec). When uid 0 execs, the kernel gives it the
//! bounding set (plus the inheritable one), so the bounding set is the limit
//! that matters; the others are reduced too, so nothing is held by accident.

use ::caps::{CapSet, CapsHashSet};

use crate::setup::Failure;
pub use crate::spec::security::{choose, names, parse, ALL, DEFAULT, SYS_ADMIN};

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
