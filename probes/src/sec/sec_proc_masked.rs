//! # `sec.proc_masked`: sensitive `/proc` and `/sys` paths are masked, `/proc/sys` is read-only
//!
//! **The feature.** `/proc` and `/sys` describe the one kernel that every
//! container shares, and a PID or mount namespace does not filter most of
//! it. `/proc/kcore` is the machine's physical memory as an ELF core file,
//! `/proc/keys` lists keys of the host's keyrings, `/proc/timer_list` shows
//! every timer (and so what other tenants are doing), `/sys/firmware` the
//! firmware tables; writing under `/proc/sys` changes kernel settings for
//! everybody. Runtimes cover each file with `/dev/null` and each directory
//! with an empty read-only tmpfs, and bind `/proc/sys` and its like onto
//! themselves read-only: the mount table inside has the final say on what
//! a path shows.
//!
//! **How the probe looks.** The helper reads each masked path that exists on
//! this kernel and reports its size (or entry count). It then writes to
//! `/proc/sys/kernel/hostname`, a harmless target: the hostname lives in
//! the container's own UTS namespace, so the control's successful write
//! changes nothing outside.
//!
//! **The control.** The same helper without masking reads real content from
//! at least one of the paths, and its write succeeds.
//!
//! **Verdict.** Pass when every masked path reads empty inside and the write
//! fails with EROFS.

use std::path::Path;

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding};

/// The masked paths this probe checks (docker's list).
const MASKED: [&str; 11] = [
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
    "/sys/devices/virtual/powercap",
];

const SYSCTL: &str = "/proc/sys/kernel/hostname";

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let present: Vec<&str> = MASKED
        .iter()
        .copied()
        .filter(|p| Path::new(p).exists())
        .collect();
    if present.is_empty() {
        return Err(LabError::Broken(
            "none of the masked paths exists on this kernel".into(),
        ));
    }
    let observe = |mask: bool, role: Role| -> Result<(Vec<(String, String)>, String), LabError> {
        let mut args = vec!["read-paths"];
        args.extend(&present);
        let mut spec = lab.spec(&args);
        spec.security.mask_paths = mask;
        let (facts, _) = lab.run(spec, role)?;
        let seen = present
            .iter()
            .map(|p| (p.to_string(), facts.get(p).unwrap_or("?").to_owned()))
            .collect();
        let mut spec = lab.spec(&["write", SYSCTL, "probe-sysctl"]);
        spec.security.mask_paths = mask;
        let write = lab.report(spec, role, "write")?;
        Ok((seen, write))
    };
    let (inside, write) = observe(true, Role::Isolated)?;
    let (outside, control_write) = observe(false, Role::Control)?;

    let empty = |seen: &str| matches!(seen, "bytes:0" | "entries:0");
    let mut evidence = Evidence::new();
    for (path, seen) in &inside {
        evidence.saw(path, seen);
    }
    evidence.saw(format!("write {SYSCTL}"), &write);
    let mut control = Evidence::new();
    for (path, seen) in &outside {
        control.saw(path, seen);
    }
    control.saw(format!("write {SYSCTL}"), &control_write);

    let exposed: Vec<&str> = inside
        .iter()
        .filter(|(_, seen)| !empty(seen))
        .map(|(p, _)| p.as_str())
        .collect();
    Ok(Finding::judge(
        evidence,
        control,
        outside.iter().any(|(_, seen)| !empty(seen)) && control_write == "ok",
        exposed.is_empty() && write == "error:EROFS",
        format!("readable inside: {exposed:?}; writing {SYSCTL} gave {write}"),
    ))
}
