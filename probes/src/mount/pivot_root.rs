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
use crate::inside::exists;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "mount.pivot_root",
    property: "after pivot_root the host filesystem is unreachable",
    needs: Needs::NOTHING,
    mutations: &[
        Mutation::Fault(Fault::ChrootInsteadOfPivotRoot),
        Mutation::Fault(Fault::KeepOldRoot),
    ],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// What the helper found of the host's marker file.
#[derive(Debug, Serialize, Deserialize)]
struct Reached {
    /// By the marker's host path.
    direct: bool,
    /// After the chroot escape.
    after_escape: bool,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let marker = tempfile::Builder::new()
        .prefix("mydocker-probe-marker-")
        .tempfile()?;
    let path = marker
        .path()
        .to_str()
        .expect("temp paths are UTF-8")
        .to_owned();
    let (reached, evidence) = reach(lab, lab.spec(&path), Role::Isolated)?;
    let mut spec = lab.spec(&path);
    spec.faults.insert(Fault::ChrootInsteadOfPivotRoot);
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
    let found: Reached = session.receive()?;
    let host_root = kernel::mounts("self")
        .or_broken("read the probe's mount table")?
        .into_iter()
        .find(|m| m.mount_point == "/")
        .or_broken("the probe's own mount table has no /")?;
    let inside = kernel::mounts(&session.pid().to_string())
        .or_broken("read the container's mount table")?;
    let old_root: Vec<String> = inside
        .iter()
        .filter(|m| m.device == host_root.device && m.root == host_root.root)
        .map(|m| m.mount_point.clone())
        .collect();
    session.finish()?;
    let evidence = evidence![
        "marker found by its host path" => found.direct,
        "marker found after the chroot escape" => found.after_escape,
        "mounts in the container's mountinfo" => inside.len(),
        format!("host root ({} {}) mounted inside at", host_root.device, host_root.root) =>
            if old_root.is_empty() { "nowhere".to_owned() } else { old_root.join(", ") },
    ];
    Ok((
        found.direct || found.after_escape || !old_root.is_empty(),
        evidence,
    ))
}

/// Inside: tries to reach the marker, a host-only file, by its path and
/// after the classic chroot escape: chroot into a subdirectory while the
/// working directory stays outside it, climb `..` as far as it goes, and
/// chroot there.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let marker: String = helper.ask()?;
    let direct = exists(&marker)?;
    std::fs::create_dir_all("/tmp/.escape").context("create /tmp/.escape")?;
    nix::unistd::chroot("/tmp/.escape").context("chroot into /tmp/.escape")?;
    // At the real top `..` is the directory itself, so extra steps are harmless.
    for _ in 0..256 {
        let _ = nix::unistd::chdir("..");
    }
    nix::unistd::chroot(".").context("chroot after climbing")?;
    helper.say(&Reached {
        direct,
        after_escape: exists(&marker)?,
    })
}
