//! # `mount.pivot_root`: after pivot_root the host filesystem is unreachable
//!
//! **The feature.** `chroot(2)` only changes where path lookup starts for
//! one process; the old root is still mounted, and a process that may call
//! chroot can climb back out: chroot into a subdirectory while its working
//! directory stays outside, walk `..` to the real top, and chroot there.
//! `pivot_root(2)` instead swaps the root *mount* of the whole mount
//! namespace and puts the old root somewhere below the new one. Only once
//! that old root is unmounted (`umount2(MNT_DETACH)`) does no path lead back
//! to the host, because the host's filesystem is no longer in the namespace.
//!
//! **How the probe looks.** The probe creates a marker file on the host,
//! outside the rootfs. The helper tries to reach it by its host path and
//! again after the chroot escape. Then, from the host, the probe reads the
//! container's `/proc/<pid>/mountinfo` and looks for the host's root mount
//! (same device and same root as the probe's own `/`): a runtime that
//! pivots but forgets to unmount the old root leaves it listed there, and
//! reachable at its mount point even though the escape finds nothing.
//!
//! **The control.** The same container entered with chroot alone: the
//! escape reaches the host's root and finds the marker.
//!
//! **Verdict.** Pass when the marker is unreachable both ways and the host's
//! root is not in the container's mount table.

use crate::kernel;
use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let marker = tempfile::Builder::new()
        .prefix("mydocker-probe-marker-")
        .tempfile()?;
    let path = marker
        .path()
        .to_str()
        .expect("temp paths are UTF-8")
        .to_owned();
    let (reached, evidence) = reach(lab, lab.spec(&["escape", &path]), Role::Isolated)?;
    let mut spec = lab.spec(&["escape", &path]);
    spec.faults.chroot_instead_of_pivot_root = true;
    let (control_reached, control) = reach(lab, spec, Role::Control)?;
    Ok(Judgement {
        evidence,
        control,
        control_separated: control_reached,
        property: Property::held_if(
            !reached,
            format!("the host's root ({path} on it) was reachable from the container"),
        ),
    }
    .finding())
}

/// Runs the escape attempt; true when the host's root was reachable: the
/// marker was found, or the host's root mount is in the container's table.
fn reach(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(bool, Evidence), LabError> {
    let mut session = lab.start(spec, role)?;
    let direct = session.expect("direct")?;
    let escaped = session.expect("after_escape")?;
    let host_root = kernel::mounts("self")
        .into_iter()
        .find(|m| m.mount_point == "/")
        .ok_or_else(|| LabError::Broken("the probe's own mount table has no /".into()))?;
    let inside = kernel::mounts(&session.pid().to_string());
    let old_root: Vec<String> = inside
        .iter()
        .filter(|m| m.device == host_root.device && m.root == host_root.root)
        .map(|m| m.mount_point.clone())
        .collect();
    session.finish()?;
    let mut evidence = Evidence::new();
    evidence
        .saw("marker by its host path", &direct)
        .saw("marker after the chroot escape", &escaped)
        .saw("mounts in the container's mountinfo", inside.len())
        .saw(
            format!(
                "host root ({} {}) mounted inside at",
                host_root.device, host_root.root
            ),
            if old_root.is_empty() {
                "nowhere".to_owned()
            } else {
                old_root.join(", ")
            },
        );
    Ok((
        direct == "found" || escaped == "found" || !old_root.is_empty(),
        evidence,
    ))
}
