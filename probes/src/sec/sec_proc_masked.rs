//! # `sec.proc_masked`: every sensitive `/proc` and `/sys` path is masked or read-only
//!
//! **The feature.** `/proc` and `/sys` describe the one kernel that every
//! container shares, and a PID or mount namespace does not filter most of
//! it. `/proc/kcore` is the machine's physical memory as an ELF core file,
//! `/proc/keys` lists keys of the host's keyrings, `/proc/timer_list` shows
//! every timer (and so what other tenants are doing), `/sys/firmware` the
//! firmware tables. Other paths must stay readable but not writable:
//! writing under `/proc/sys` changes kernel settings for everybody, and one
//! byte into `/proc/sysrq-trigger` can reboot the machine.
//!
//! **What a runtime does.** Docker's two lists, which this runtime follows
//! (`runtime::security::paths`): each *masked* path is covered, a file with
//! `/dev/null` and a directory with an empty read-only tmpfs; each
//! *read-only* path is bind-mounted onto itself and the bind remounted
//! read-only. The mount table inside has the final say on what a path shows.
//!
//! **How the probe looks, path by path.** One container looks at every
//! path of both lists that exists on this kernel:
//!
//! - a masked path must read empty (or be absent, or refuse reading), and
//!   must not be served by `proc` or `sysfs` any more: `statfs` names the
//!   filesystem behind a path, so a file that merely happens to be empty
//!   today (`/proc/keys` with no keys) is still caught unmasked;
//! - a read-only path must sit on a read-only mount (`statvfs`'s
//!   `ST_RDONLY`), and opening a writable file under it for writing must
//!   fail, with EROFS unless a permission check refused it first. Nothing
//!   is ever written: the kernel checks a mount's read-only flag when a
//!   file is opened for writing, before any byte, and files like
//!   `/proc/sysrq-trigger` act only on a write.
//!
//! A path this kernel does not have is reported as missing: there is
//! nothing to hide, and nothing proven.
//!
//! **The control.** The same helper in a container without masks, and with
//! every capability (`/proc/kcore` refuses a reader without CAP_SYS_RAWIO),
//! must see each present masked path served by `proc` or `sysfs` and
//! readable (at most its first 4 KiB are read: `/proc/kcore` is as large as
//! the kernel's address space), and
//! each read-only path on a writable mount, its file opened for writing.
//! A path whose control shows neither proves nothing, and the probe says so.
//!
//! **Mutations.** One case per path leaves exactly that path as the kernel
//! shows it (`expose:/proc/keys`, …); the probe must name it.
//!
//! **Verdict.** FAIL naming every exposed path; pass when none is exposed
//! and the control showed every present path open.

use std::path::{Path, PathBuf};

use runtime::security::paths::{MASKED, READ_ONLY};

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let masked: Vec<&str> = MASKED.into_iter().filter(|p| exists(p)).collect();
    let read_only: Vec<(&str, Option<PathBuf>)> = READ_ONLY
        .into_iter()
        .filter(|p| exists(p))
        .map(|p| (p, writable_file_under(Path::new(p))))
        .collect();
    let mut args = vec!["protected-paths".to_owned()];
    args.extend(masked.iter().map(|p| p.to_string()));
    args.push("--".into());
    args.extend(read_only.iter().map(|(path, file)| match file {
        Some(file) => format!("{path}={}", file.display()),
        None => path.to_string(),
    }));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let inside = lab.run(lab.spec(&args), Role::Isolated)?.0;
    // Without any confinement: no masks, and every capability, since some
    // files refuse a reader without one (`/proc/kcore` wants CAP_SYS_RAWIO).
    let mut unconfined = lab.spec(&args);
    unconfined.security.mask_paths = false;
    unconfined.security.capabilities = runtime::security::caps::ALL;
    let outside = lab.run(unconfined, Role::Control)?.0;
    let seen = |facts: &crate::lab::Facts, path: &str| facts.get(path).unwrap_or("?").to_owned();

    let (mut evidence, mut control) = (Evidence::new(), Evidence::new());
    let (mut exposed, mut unproven) = (Vec::new(), Vec::new());
    for path in MASKED.into_iter().chain(READ_ONLY) {
        if !exists(path) {
            evidence.saw(
                path,
                "missing on this kernel: nothing to hide, nothing proven",
            );
            continue;
        }
        let (now, without) = (seen(&inside, path), seen(&outside, path));
        let (hidden, open) = if MASKED.contains(&path) {
            (masked_hidden(&now), masked_open(&without))
        } else {
            (read_only_held(&now), read_only_open(&without))
        };
        if !hidden {
            exposed.push(path);
        }
        if !open {
            unproven.push(path);
        }
        let opened = read_only.iter().find(|(p, _)| *p == path).map(|(_, file)| {
            file.as_ref().map_or(
                " (no writable file under it: the mount flag alone)".to_owned(),
                |f| format!(" (opened {} for writing)", f.display()),
            )
        });
        let opened = opened.unwrap_or_default();
        evidence.saw(path, format!("{now}{opened}"));
        control.saw(path, format!("{without}{opened}"));
    }
    if !unproven.is_empty() {
        control.saw(
            "paths the control could not show open",
            format!("{unproven:?}"),
        );
    }
    if masked.is_empty() && read_only.is_empty() {
        return Err(LabError::Broken(
            "no path of either list exists on this kernel".into(),
        ));
    }
    Ok(Judgement {
        evidence,
        control,
        control_separated: unproven.is_empty(),
        property: Property::held_if(
            exposed.is_empty(),
            format!("exposed inside: {}", exposed.join(", ")),
        ),
    }
    .finding())
}

fn exists(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

/// Masked: no longer served by proc or sysfs (a path absent inside counts:
/// `statfs` fails there), and nothing to read. A read error alone proves
/// nothing: an unmasked `/proc/kcore` refuses a reader without
/// CAP_SYS_RAWIO, and is still the machine's memory for one with it.
fn masked_hidden(seen: &str) -> bool {
    let Some((fs, content)) = seen.split_once(';') else {
        return false;
    };
    fs == "fs:other"
        && (content.starts_with("error:") || matches!(content, "bytes:0" | "entries:0"))
}

/// Unmasked: served by the kernel and readable.
fn masked_open(seen: &str) -> bool {
    matches!(seen.split_once(';'), Some(("fs:proc" | "fs:sysfs", content)) if !content.starts_with("error:"))
}

/// Read-only: the mount's read-only flag, the kernel's own statement that
/// it refuses every write there. The open for writing shows it (EROFS); a
/// permission check or a security module may refuse the open first, which
/// leaves the flag to speak alone. A write-open that succeeded is a hole.
fn read_only_held(seen: &str) -> bool {
    match seen.split_once(';') {
        Some(("mount:ro", open)) => open != "open:ok",
        _ => false,
    }
}

/// Writable: a read-write mount, and the file opened for writing.
fn read_only_open(seen: &str) -> bool {
    matches!(seen, "mount:rw;open:ok" | "mount:rw;open:none")
}

/// The first regular file with an owner-write bit under `path`, breadth
/// first in name order (or `path` itself when it is such a file): a file
/// the control can open for writing, and the container must not.
fn writable_file_under(path: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let writable = |p: &Path| {
        p.symlink_metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o200 != 0)
    };
    if writable(path) {
        return Some(path.to_owned());
    }
    let mut level = vec![path.to_owned()];
    for _depth in 0..4 {
        let mut next = Vec::new();
        for dir in &level {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut children: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            children.sort();
            if let Some(file) = children.iter().find(|c| writable(c)) {
                return Some(file.clone());
            }
            next.extend(
                children
                    .into_iter()
                    .filter(|c| c.symlink_metadata().is_ok_and(|m| m.is_dir())),
            );
        }
        level = next;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masked_path_must_be_covered_and_empty() {
        assert!(masked_hidden("fs:other;bytes:0"));
        assert!(masked_hidden("fs:other;entries:0"));
        assert!(masked_hidden("fs:other;error:ENOENT"));
        // Empty today, or unreadable without a capability, but still the
        // kernel's file: not masked.
        assert!(!masked_hidden("fs:proc;bytes:0"));
        assert!(!masked_hidden("fs:proc;error:EPERM"));
        assert!(!masked_hidden("fs:other;bytes:12"));
        assert!(!masked_hidden("?"));
        assert!(masked_open("fs:proc;entries:0"));
        assert!(!masked_open("fs:other;bytes:0"));
    }

    #[test]
    fn a_read_only_path_needs_the_flag_and_the_refusal() {
        assert!(read_only_held("mount:ro;open:error:EROFS"));
        assert!(read_only_held("mount:ro;open:error:EACCES"));
        assert!(!read_only_held("mount:ro;open:ok"));
        assert!(!read_only_held("mount:rw;open:none"));
        assert!(!read_only_held("mount:rw;open:error:EACCES"));
        assert!(read_only_open("mount:rw;open:ok"));
        assert!(!read_only_open("mount:rw;open:error:EACCES"));
    }
}
