//! # `mount.pivot_root`: after pivot_root the host filesystem is unreachable
//!
//! **The feature.** `chroot(2)` only changes where path lookup starts for
//! one process; the old root is still mounted, and a process that may call
//! chroot can climb back out: chroot into a subdirectory while its working
//! directory stays outside, walk `..` to the real top, and chroot there.
//! `pivot_root(2)` instead swaps the root *mount* of the whole mount
//! namespace; once the old root is unmounted (`umount2(MNT_DETACH)`), no path
//! leads back to it, because it is no longer in the namespace at all.
//!
//! **How the probe looks.** The probe creates a marker file on the host,
//! outside the rootfs. The helper tries to reach it by its host path, then
//! again after the chroot escape, and counts the mounts its `mountinfo` shows.
//!
//! **The control.** The same container entered with chroot alone: the
//! escape reaches the host's root and finds the marker.
//!
//! **Verdict.** Pass when the marker is unreachable both ways.

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding};

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
    Ok(Finding::judge(
        evidence,
        control,
        control_reached,
        !reached,
        format!("the host-only file {path} was reachable from the container"),
    ))
}

/// Runs the escape attempt; true when the marker was reached by any path.
fn reach(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(bool, Evidence), LabError> {
    let (facts, _) = lab.run(spec, role)?;
    let mut evidence = Evidence::new();
    let direct = facts.get("direct").unwrap_or("no report");
    let escaped = facts.get("after_escape").unwrap_or("no report");
    evidence
        .saw("marker by its host path", direct)
        .saw("marker after the chroot escape", escaped)
        .saw(
            "mounts in the container's mountinfo",
            facts.get("mounts_visible").unwrap_or("?"),
        );
    if direct == "no report" || escaped == "no report" {
        return Err(LabError::Broken(format!(
            "the helper did not report: {:?}",
            facts.0
        )));
    }
    Ok((direct == "found" || escaped == "found", evidence))
}
