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

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let host = tempfile::Builder::new()
        .prefix("mydocker-probe-volume-")
        .tempdir()?;
    let (rw, ro) = (host.path().join("rw"), host.path().join("ro"));
    let volumes = |rw_shared: bool, read_only: bool| {
        let mut list = vec![Volume {
            host: ro.clone(),
            container: "/ro".into(),
            read_only,
        }];
        if rw_shared {
            list.push(Volume {
                host: rw.clone(),
                container: "/vol".into(),
                read_only: false,
            });
        }
        list
    };
    let mut spec = lab.spec(&["volume", "/vol", "/ro"]);
    spec.volumes = volumes(true, true);
    let (holds, evidence) = exchange(lab, &rw, &ro, spec, Role::Isolated)?;
    let mut spec = lab.spec(&["volume", "/vol", "/ro"]);
    spec.volumes = volumes(false, false);
    let (opposite, control) = exchange(lab, &rw, &ro, spec, Role::Control)?;
    Ok(Judgement {
        evidence,
        control,
        control_separated: opposite.0 == 0 && opposite.1,
        property: Property::held_if(holds.0 == 3 && !holds.1 && holds.2, "the volume did not carry files both ways, or the read-only volume did not refuse a write with EROFS"),
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
    std::fs::write(rw.join("from-host"), "written on the host")?;
    let mut session = lab.start(spec, role)?;
    let host_file = session.expect("host_file")?;
    session.expect("written")?;
    let from_container = std::fs::read_to_string(rw.join("from-container")).is_ok();
    std::fs::write(rw.join("later"), "written on the host while it ran")?;
    session.send_line("written")?;
    let later = session.expect("later")?;
    let ro_write = session.expect("ro_write")?;
    session.finish()?;
    let landed = ro.join("attempt").exists();
    let mut evidence = Evidence::new();
    evidence
        .saw("host file read inside", &host_file)
        .saw("container's file seen on the host", from_container)
        .saw("host file written while running, seen inside", &later)
        .saw("write to the read-only volume", &ro_write)
        .saw("that write reached the host", landed);
    let crossings = u32::from(host_file == "written on the host")
        + u32::from(from_container)
        + u32::from(later == "seen");
    Ok((
        (crossings, landed || ro_write == "ok", ro_write == "EROFS"),
        evidence,
    ))
}
