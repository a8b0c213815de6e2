//! Capabilities: docker's default set, `--cap-add`/`--cap-drop`, and giving
//! init its five capability sets (and its user) before exec.
//!
//! Root's power is split into capabilities (CAP_SYS_ADMIN, CAP_NET_ADMIN, …).
//! A process holds five sets: *bounding* (the most it can ever gain),
//! *permitted*, *effective* (what the kernel checks), *inheritable* and
//! *ambient* (what survives exec). When uid 0 execs, the kernel gives it the
//! bounding set (plus the inheritable one), so the bounding set is the limit
//! that matters; the others are reduced too, so nothing is held by accident.

use ::caps::{CapSet, CapsHashSet};

use crate::setup::Failure;
pub use crate::spec::security::{choose, names, parse, CapabilitySets, ALL, DEFAULT, SYS_ADMIN};
use crate::spec::User;

/// Gives this process exactly `sets`, and becomes `user` on the way.
///
/// The bounding set goes first, while CAP_SETPCAP (needed to drop from it) is
/// still effective. Then the identity: changing uid from 0 empties the
/// permitted and effective sets unless `PR_SET_KEEPCAPS` is on, so it is on
/// for the change (the kernel clears it again at exec). Then inheritable,
/// permitted and effective, in an order the kernel accepts at each step (an
/// effective set must lie within the permitted one), and last the ambient
/// set, whose members must be both permitted and inheritable.
///
/// `mydocker run` asks for [`CapabilitySets::docker`]: nothing inheritable
/// or ambient. With an inheritable set, a non-root program with inheritable
/// file capabilities would gain them on exec (docker's CVE-2022-24769);
/// an OCI configuration may still ask for one, as runc allows.
pub fn apply(sets: CapabilitySets, user: &User) -> Result<(), Failure> {
    // Only what we hold can be kept: `--privileged` under a runtime that was
    // itself started without some capability gets all the others.
    let held = mask_of(
        &::caps::read(None, CapSet::Permitted)
            .map_err(|e| Failure::runtime(format!("read the permitted capabilities: {e}")))?,
    );
    for cap in ::caps::all() {
        // A capability newer than the kernel is not in its bounding set anyway.
        if sets.bounding & held & cap.bitmask() == 0
            && ::caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
        {
            ::caps::drop(None, CapSet::Bounding, cap)
                .map_err(|e| Failure::runtime(format!("drop {cap} from the bounding set: {e}")))?;
        }
    }
    become_user(user)?;
    let ambient_supported = ::caps::runtime::ambient_set_supported().is_ok();
    if ambient_supported {
        ::caps::clear(None, CapSet::Ambient)
            .map_err(|e| Failure::runtime(format!("clear the ambient set: {e}")))?;
    }
    for (set, mask) in [
        (CapSet::Inheritable, sets.inheritable & held),
        (CapSet::Effective, sets.effective & sets.permitted & held),
        (CapSet::Permitted, sets.permitted & held),
        (CapSet::Effective, sets.effective & held),
    ] {
        ::caps::set(None, set, &set_of(mask))
            .map_err(|e| Failure::runtime(format!("set the {set:?} capabilities: {e}")))?;
    }
    if sets.ambient != 0 {
        if !ambient_supported {
            return Err(Failure::kernel_lacks(
                "raise ambient capabilities: this kernel has no ambient set (Linux 4.3)",
            ));
        }
        for cap in set_of(sets.ambient & held) {
            ::caps::raise(None, CapSet::Ambient, cap)
                .map_err(|e| Failure::runtime(format!("raise {cap} in the ambient set: {e}")))?;
        }
    }
    Ok(())
}

/// Takes on `user`'s ids and groups, keeping the capabilities through the
/// change. Root with no supplementary groups changes nothing.
fn become_user(user: &User) -> Result<(), Failure> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    let groups: Vec<Gid> = user
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    // Always, an empty list too: the runtime's own groups (gid 0 among
    // them) must not reach the container. A rootless user namespace
    // forbids setgroups, and has no host groups to shed.
    let denied = std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    if !denied {
        setgroups(&groups).map_err(Failure::sys("set the supplementary groups"))?;
    } else if !groups.is_empty() {
        return Err(Failure::runtime(format!(
            "cannot give the groups {:?}: this user namespace forbids setgroups (a rootless run has only its own group)",
            user.additional_gids
        )));
    }
    if user.uid == 0 && user.gid == 0 {
        return Ok(());
    }
    nix::sys::prctl::set_keepcaps(true)
        .map_err(Failure::sys("keep capabilities (PR_SET_KEEPCAPS)"))?;
    let gid = Gid::from_raw(user.gid);
    setresgid(gid, gid, gid).map_err(Failure::sys(format!("become gid {}", user.gid)))?;
    let uid = Uid::from_raw(user.uid);
    setresuid(uid, uid, uid).map_err(Failure::sys(format!("become uid {}", user.uid)))?;
    nix::sys::prctl::set_keepcaps(false).map_err(Failure::sys("clear PR_SET_KEEPCAPS"))
}

fn mask_of(set: &CapsHashSet) -> u64 {
    set.iter().fold(0, |mask, cap| mask | cap.bitmask())
}

fn set_of(mask: u64) -> CapsHashSet {
    ::caps::all()
        .into_iter()
        .filter(|c| mask & c.bitmask() != 0)
        .collect()
}
