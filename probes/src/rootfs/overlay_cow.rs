//! # `rootfs.overlay_cow`: writes inside never reach the image's lower layer
//!
//! **The feature.** overlayfs stacks directories: a read-only *lower* layer
//! (the image) under a writable *upper* one (the container's own). Reading a
//! file finds it in the highest layer that has it. Writing to a lower file
//! first copies it up into the upper layer ("copy-up"); deleting one leaves a
//! *whiteout* in the upper layer, a character device 0:0 that hides the
//! lower file. The lower layer is never written, so any number of
//! containers can share one image, and a container's whole change set is
//! its upper directory.
//!
//! **How the probe looks.** The probe puts two files in the lower layer.
//! The helper rewrites one, deletes the other and creates a third. While it
//! is still running, the probe reads the container's mount table from the
//! host (`/proc/<pid>/mountinfo`): its root must be an overlay, whose
//! `upperdir=` option names the upper layer. The probe then compares the
//! lower layer with how it was, and checks the upper layer for the copy-up,
//! the whiteout and the new file.
//!
//! **The control.** The same container with its lower directory
//! bind-mounted as the root, without an overlay: the writes land in the
//! lower layer itself.
//!
//! **Verdict.** Pass when the lower layer is byte-identical afterwards and
//! the upper layer holds all three changes.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::kernel;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "rootfs.overlay_cow",
    property: "writes inside never reach the image's lower layer; the upper layer holds them",
    needs: Needs {
        config: &["OVERLAY_FS"],
        config_v1: &[],
        modules: &["overlay"],
        since: None,
    },
    mutations: &[Mutation::Fault(Fault::SkipOverlay)],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// Where the probe's files sit, inside the container and in the lower layer.
const DIR: &str = "probe-cow";
const ORIGINAL: &str = "as the image has it";
const CHANGED: &str = "changed inside";

/// The helper's report that it made its three changes.
#[derive(Debug, Serialize, Deserialize)]
struct Changed;

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let lower = lab.rootfs().join(DIR);
    let ((untouched, upper_holds), evidence) =
        change(lab, &lower, lab.spec(&()), Role::Isolated)?;
    let mut spec = lab.spec(&());
    spec.faults.insert(Fault::SkipOverlay);
    let ((control_untouched, _), control) = change(lab, &lower, spec, Role::Control)?;
    // The control is judged on the lower layer alone: without an overlay
    // there is no upper layer, and its absence proves nothing.
    Ok(Judgement {
        evidence,
        control,
        control_separated: !control_untouched,
        property: Property::held_if(
            untouched && upper_holds,
            "the container's writes reached the lower layer, or the upper layer does not hold them",
        ),
    }
    .finding())
}

/// Runs the helper against a fresh lower layer; returns whether the lower
/// layer came through unchanged, and whether the upper layer holds the changes.
fn change(
    lab: &Lab,
    lower: &Path,
    spec: runtime::Spec,
    role: Role,
) -> Result<((bool, bool), Evidence), LabError> {
    std::fs::create_dir_all(lower)?;
    std::fs::write(lower.join("existing"), ORIGINAL)?;
    std::fs::write(lower.join("doomed"), ORIGINAL)?;
    let _ = std::fs::remove_file(lower.join("new"));
    let mut session = lab.start(spec, role)?;
    let Changed = session.receive()?;
    let root = kernel::mounts(&session.pid().to_string())
        .or_broken("read the container's mount table")?
        .into_iter()
        .find(|m| m.mount_point == "/");
    let upper = root
        .as_ref()
        .filter(|m| m.fstype == "overlay")
        .and_then(|m| {
            m.super_options
                .split(',')
                .find_map(|o| o.strip_prefix("upperdir="))
                .map(|u| Path::new(u).join(DIR))
        });
    let mut evidence = Evidence::new();
    evidence.saw(
        "container root",
        root.as_ref().map_or("(none)".to_owned(), |m| {
            format!("{} ({})", m.fstype, m.source)
        }),
    );
    let upper_holds = upper.as_ref().is_some_and(|u| {
        let whiteout = std::fs::symlink_metadata(u.join("doomed"))
            .is_ok_and(|m| m.file_type().is_char_device() && m.rdev() == 0);
        let copied =
            std::fs::read_to_string(u.join("existing")).is_ok_and(|t| t == CHANGED);
        evidence
            .saw("upper layer", u.display())
            .saw("copy-up of the rewritten file in upper", copied)
            .saw(
                "whiteout (char 0:0) for the deleted file in upper",
                whiteout,
            )
            .saw("new file in upper", u.join("new").exists());
        copied && whiteout && u.join("new").exists()
    });
    session.finish()?;
    let existing =
        std::fs::read_to_string(lower.join("existing")).unwrap_or_else(|e| format!("({e})"));
    let doomed = lower.join("doomed").exists();
    let new = lower.join("new").exists();
    evidence
        .saw("lower: rewritten file now reads", &existing)
        .saw("lower: deleted file still there", doomed)
        .saw("lower: new file appeared", new);
    Ok((
        (existing == ORIGINAL && doomed && !new, upper_holds),
        evidence,
    ))
}

/// Inside: changes the image's files in `/DIR`: rewrites `existing`,
/// deletes `doomed`, creates `new`.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let dir = format!("/{DIR}");
    std::fs::write(format!("{dir}/existing"), CHANGED).context("rewrite in /probe-cow")?;
    std::fs::remove_file(format!("{dir}/doomed")).context("delete in /probe-cow")?;
    std::fs::write(format!("{dir}/new"), "made inside").context("create in /probe-cow")?;
    helper.say(&Changed)
}
