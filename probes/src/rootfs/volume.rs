//! # `rootfs.volume`: a bind volume is shared both ways, and `:ro` refuses writes
//!
//! **The feature.** A bind mount makes a directory tree visible at a second
//! place; both names lead to the same inodes, so a write through either is
//! seen through the other at once. Read-only is a property of the *mount*,
//! not of the files: the kernel ignores `MS_RDONLY` on the first bind and
//! honours it only on a second, remounting call (`MS_BIND | MS_REMOUNT |
//! MS_RDONLY`). A runtime that forgets that step hands out a writable
//! "read-only" volume. Writes through a read-only mount fail with EROFS.
//!
//! **How the probe looks.** The probe writes a file into a host directory
//! and starts the helper with it as a read-write volume, and a second one as
//! read-only. The helper reads the host's file, writes one of its own, waits
//! while the probe writes another on the host, looks for it, and then tries
//! to write to the read-only volume.
//!
//! **The control.** The same container without the read-write volume, and
//! with the second one read-write: nothing is shared, and the write succeeds.
//!
//! **Verdict.** Pass when both files crossed, in each direction, and the
//! read-only write failed with EROFS, the kernel's answer for a read-only
//! mount, without reaching the host. Any other error (a permission problem,
//! a missing directory) would not show that the mount is read-only.

use std::path::Path;

use runtime::spec::Volume;

use crate::inside::{errno, errno_name, exists, shown, Errno};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "rootfs.volume",
    property: "a bind volume is shared both ways, and a :ro volume refuses writes with EROFS",
    needs: Needs::NOTHING,
    mutations: &[Mutation::SkipVolumes, Mutation::Fault(Fault::IgnoreReadOnly)],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The read-write volume, inside.
const RW: &str = "/vol";
/// The read-only volume, inside.
const RO: &str = "/ro";
const FROM_HOST: &str = "written on the host";

/// The helper's first look: the host's file, and its own write.
#[derive(Debug, Serialize, Deserialize)]
struct FirstLook {
    /// `from-host` as read inside, if it was there.
    host_file: Option<String>,
    /// Writing `from-container`.
    written: Errno,
}

/// The helper's second look, after the probe wrote `later` on the host.
#[derive(Debug, Serialize, Deserialize)]
struct SecondLook {
    later_seen: bool,
    /// Writing into the read-only volume.
    ro_write: Errno,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let host = tempfile::Builder::new()
        .prefix("mydocker-probe-volume-")
        .tempdir()?;
    let (rw, ro) = (host.path().join("rw"), host.path().join("ro"));
    let volumes = |rw_shared: bool, read_only: bool| {
        let mut list = vec![Volume::bind(&ro, RO, read_only)];
        if rw_shared {
            list.push(Volume::bind(&rw, RW, false));
        }
        list
    };
    let mut spec = lab.spec(&());
    spec.volumes = volumes(true, true);
    let (holds, evidence) = exchange(lab, &rw, &ro, spec, Role::Isolated)?;
    let mut spec = lab.spec(&());
    spec.volumes = volumes(false, false);
    let (opposite, control) = exchange(lab, &rw, &ro, spec, Role::Control)?;
    Ok(Judgement {
        evidence,
        control,
        control_separated: opposite.0 == 0 && opposite.1,
        property: Property::held_if(
            holds.0 == 3 && !holds.1 && holds.2,
            "the volume did not carry files both ways, or the read-only volume did not refuse a write with EROFS",
        ),
    }
    .finding())
}

/// Runs one exchange; returns ((crossings seen, of 3), read-only write
/// landed, that write failed with EROFS).
fn exchange(
    lab: &Lab,
    rw: &Path,
    ro: &Path,
    spec: runtime::Spec,
    role: Role,
) -> Result<((u32, bool, bool), Evidence), LabError> {
    for dir in [rw, ro] {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(rw.join("from-host"), FROM_HOST)?;
    let mut session = lab.start(spec, role)?;
    let first: FirstLook = session.receive()?;
    let from_container = std::fs::read_to_string(rw.join("from-container")).is_ok();
    std::fs::write(rw.join("later"), "written on the host while it ran")?;
    session.send_line("written")?;
    let second: SecondLook = session.receive()?;
    session.finish()?;
    let landed = ro.join("attempt").exists();
    let crossings = u32::from(first.host_file.as_deref() == Some(FROM_HOST))
        + u32::from(from_container)
        + u32::from(second.later_seen);
    let erofs = second.ro_write == Err("EROFS".into());
    let evidence = evidence![
        "host file read inside" => first.host_file.as_deref().unwrap_or("(missing)"),
        "container's write to the volume" => shown(&first.written),
        "container's file seen on the host" => from_container,
        "host file written while running, seen inside" => second.later_seen,
        "write to the read-only volume" => shown(&second.ro_write),
        "that write reached the host" => landed,
    ];
    Ok((
        (crossings, landed || second.ro_write.is_ok(), erofs),
        evidence,
    ))
}

/// Inside: reads the host's file and writes one of ours in [`RW`]; after
/// the probe says it wrote another, looks for it, then tries to write in [`RO`].
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let host_file = match std::fs::read_to_string(format!("{RW}/from-host")) {
        Ok(text) => Some(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => anyhow::bail!("read {RW}/from-host: {}", errno_name(&e)),
    };
    let written = errno(std::fs::write(format!("{RW}/from-container"), "written inside"));
    helper.say(&FirstLook { host_file, written })?;
    helper.hear()?;
    let later_seen = exists(&format!("{RW}/later"))?;
    let ro_write = errno(std::fs::write(format!("{RO}/attempt"), "should not land"));
    helper.say(&SecondLook {
        later_seen,
        ro_write,
    })
}
