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

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use nix::sys::statfs::{statfs, PROC_SUPER_MAGIC, SYSFS_MAGIC};
use nix::sys::statvfs::{statvfs, FsFlags};
use runtime::security::paths::{MASKED, READ_ONLY};

use crate::inside::{errno, errno_name, Errno};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "sec.proc_masked",
    property: "every sensitive /proc and /sys path is masked or read-only",
    needs: Needs::NOTHING,
    mutations: &crate::mutation::MASKING_CASES,
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// How much of a masked file the helper reads: enough to tell empty from
/// not, where `/proc/kcore` would otherwise be read for terabytes.
const READ_AT_MOST: u64 = 4 << 10;

/// What the probe asks the helper to look at: the paths of both lists that
/// exist on this kernel.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// Paths of [`MASKED`] to read.
    masked: Vec<String>,
    /// Paths of [`READ_ONLY`] to try for writing.
    read_only: Vec<ReadOnlyPath>,
}

/// A read-only path, and the writable file under it (found on the host)
/// that the helper opens for writing; none when nothing there is writable.
#[derive(Debug, Serialize, Deserialize)]
struct ReadOnlyPath {
    /// The path of the list.
    path: String,
    /// A file under it with an owner-write bit, if any.
    file: Option<PathBuf>,
}

/// What the helper saw of each requested path, by path.
#[derive(Debug, Serialize, Deserialize)]
struct Seen {
    /// Each masked path of the request.
    masked: BTreeMap<String, Masked>,
    /// Each read-only path of the request.
    read_only: BTreeMap<String, ReadOnly>,
}

/// A masked path as the helper sees it.
#[derive(Debug, Serialize, Deserialize)]
struct Masked {
    /// The filesystem serving it, by `statfs`: this tells the kernel's own
    /// file from whatever covers it.
    fs: Fs,
    /// What reading it gave.
    read: Content,
}

/// The filesystem serving a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Fs {
    /// procfs: the kernel's own file.
    Proc,
    /// sysfs: the kernel's own file.
    Sysfs,
    /// Anything else (a tmpfs, `/dev/null`'s devtmpfs), or nothing: `statfs`
    /// fails on a path that is gone.
    Other,
}

/// What reading a masked path gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Content {
    /// A file: how many bytes of its first [`READ_AT_MOST`] it held.
    Bytes(u64),
    /// A directory: how many entries it lists.
    Entries(u64),
    /// Reading failed, with this errno's name (ENOENT for a path gone).
    Failed(String),
}

/// A read-only path as the helper sees it.
#[derive(Debug, Serialize, Deserialize)]
struct ReadOnly {
    /// The mount holding it has the read-only flag (`statvfs`'s `ST_RDONLY`).
    read_only_mount: bool,
    /// What opening its writable file for writing gave; none without a file.
    write_open: Option<Errno>,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let request = Request {
        masked: MASKED
            .into_iter()
            .filter(|p| exists(p))
            .map(str::to_owned)
            .collect(),
        read_only: READ_ONLY
            .into_iter()
            .filter(|p| exists(p))
            .map(|p| ReadOnlyPath {
                path: p.to_owned(),
                file: writable_file_under(Path::new(p)),
            })
            .collect(),
    };
    if request.masked.is_empty() && request.read_only.is_empty() {
        return Err(LabError::broken(
            "no path of either list exists on this kernel",
        ));
    }
    let inside: Seen = lab.report(lab.spec(&request), Role::Isolated)?;
    // Without any confinement: no masks, and every capability, since some
    // files refuse a reader without one (`/proc/kcore` wants CAP_SYS_RAWIO).
    let mut unconfined = lab.spec(&request);
    unconfined.security.mask_paths = false;
    unconfined.security.capabilities = runtime::security::caps::ALL;
    let outside: Seen = lab.report(unconfined, Role::Control)?;

    let (mut evidence, mut control) = (Evidence::new(), Evidence::new());
    let (mut exposed, mut unproven) = (Vec::new(), Vec::new());
    let unreported = |path: &str| format!("the helper did not report {path}");
    for path in MASKED {
        if !exists(path) {
            evidence.saw(path, MISSING);
            continue;
        }
        let now = inside.masked.get(path).or_broken(unreported(path))?;
        let without = outside.masked.get(path).or_broken(unreported(path))?;
        if !masked_hidden(now) {
            exposed.push(path);
        }
        if !masked_open(without) {
            unproven.push(path);
        }
        evidence.saw(path, now);
        control.saw(path, without);
    }
    for path in READ_ONLY {
        if !exists(path) {
            evidence.saw(path, MISSING);
            continue;
        }
        let now = inside.read_only.get(path).or_broken(unreported(path))?;
        let without = outside.read_only.get(path).or_broken(unreported(path))?;
        if !read_only_held(now) {
            exposed.push(path);
        }
        if !read_only_open(without) {
            unproven.push(path);
        }
        let file = request
            .read_only
            .iter()
            .find(|r| r.path == path)
            .and_then(|r| r.file.as_ref());
        let opened = file.map_or(
            " (no writable file under it: the mount flag alone)".to_owned(),
            |f| format!(" (opened {} for writing)", f.display()),
        );
        evidence.saw(path, format!("{now}{opened}"));
        control.saw(path, format!("{without}{opened}"));
    }
    if !unproven.is_empty() {
        control.saw(
            "paths the control could not show open",
            format!("{unproven:?}"),
        );
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

/// What the evidence says of a path this kernel does not have.
const MISSING: &str = "missing on this kernel: nothing to hide, nothing proven";

/// The path exists on this kernel (as the host sees it; a dangling
/// symlink counts).
fn exists(path: &str) -> bool {
    Path::new(path).symlink_metadata().is_ok()
}

/// Masked: no longer served by proc or sysfs (a path absent inside counts:
/// `statfs` fails there), and nothing to read. A read error alone proves
/// nothing: an unmasked `/proc/kcore` refuses a reader without
/// CAP_SYS_RAWIO, and is still the machine's memory for one with it.
fn masked_hidden(seen: &Masked) -> bool {
    seen.fs == Fs::Other
        && matches!(
            seen.read,
            Content::Failed(_) | Content::Bytes(0) | Content::Entries(0)
        )
}

/// Unmasked: served by the kernel and readable.
fn masked_open(seen: &Masked) -> bool {
    matches!(seen.fs, Fs::Proc | Fs::Sysfs) && !matches!(seen.read, Content::Failed(_))
}

/// Read-only: the mount's read-only flag, the kernel's own statement that
/// it refuses every write there. The open for writing shows it (EROFS); a
/// permission check or a security module may refuse the open first, which
/// leaves the flag to speak alone. A write-open that succeeded is a hole.
fn read_only_held(seen: &ReadOnly) -> bool {
    seen.read_only_mount && seen.write_open != Some(Ok(()))
}

/// Writable: a read-write mount, and the file opened for writing (or no
/// file to open).
fn read_only_open(seen: &ReadOnly) -> bool {
    !seen.read_only_mount && matches!(seen.write_open, None | Some(Ok(())))
}

impl fmt::Display for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fs = match self.fs {
            Fs::Proc => "proc",
            Fs::Sysfs => "sysfs",
            Fs::Other => "neither proc nor sysfs",
        };
        match &self.read {
            Content::Bytes(n) => write!(f, "served by {fs}; {n} bytes read"),
            Content::Entries(n) => write!(f, "served by {fs}; {n} entries"),
            Content::Failed(e) => write!(f, "served by {fs}; reading failed: {e}"),
        }
    }
}

impl fmt::Display for ReadOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mount = if self.read_only_mount {
            "read-only"
        } else {
            "read-write"
        };
        match &self.write_open {
            None => write!(f, "{mount} mount"),
            Some(Ok(())) => write!(f, "{mount} mount; write-open succeeded"),
            Some(Err(e)) => write!(f, "{mount} mount; write-open failed: {e}"),
        }
    }
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

/// Inside: looks at each masked path, then at each read-only path, and
/// reports them all at once. Nothing is ever written: the kernel checks a
/// mount's read-only flag when a file is opened for writing, before the
/// first byte, so the open alone is the proof, and a file such as
/// `/proc/sysrq-trigger` acts only on a write.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let request: Request = helper.ask()?;
    let mut masked = BTreeMap::new();
    for path in request.masked {
        let seen = Masked {
            fs: filesystem_of(&path)?,
            read: content_of(&path),
        };
        masked.insert(path, seen);
    }
    let mut read_only = BTreeMap::new();
    for ReadOnlyPath { path, file } in request.read_only {
        let mount = statvfs(path.as_str()).with_context(|| format!("statvfs {path}"))?;
        let write_open = file.map(|file| errno(std::fs::OpenOptions::new().write(true).open(file)));
        let seen = ReadOnly {
            read_only_mount: mount.flags().contains(FsFlags::ST_RDONLY),
            write_open,
        };
        read_only.insert(path, seen);
    }
    helper.say(&Seen { masked, read_only })
}

/// The filesystem serving `path`; [`Fs::Other`] when the path is gone.
/// Any other `statfs` failure (EACCES) is no answer, and an error.
fn filesystem_of(path: &str) -> anyhow::Result<Fs> {
    match statfs(path).map(|fs| fs.filesystem_type()) {
        Ok(PROC_SUPER_MAGIC) => Ok(Fs::Proc),
        Ok(SYSFS_MAGIC) => Ok(Fs::Sysfs),
        Ok(_) | Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => Ok(Fs::Other),
        Err(e) => Err(anyhow::anyhow!("statfs {path}: {e:?}")),
    }
}

/// A directory's entry count, or at most [`READ_AT_MOST`] bytes of a file.
fn content_of(path: &str) -> Content {
    let counted = std::fs::metadata(path).and_then(|meta| {
        if meta.is_dir() {
            Ok(Content::Entries(std::fs::read_dir(path)?.count() as u64))
        } else {
            let mut head = Vec::new();
            std::fs::File::open(path)?
                .take(READ_AT_MOST)
                .read_to_end(&mut head)?;
            Ok(Content::Bytes(head.len() as u64))
        }
    });
    counted.unwrap_or_else(|e| Content::Failed(errno_name(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(fs: Fs, read: Content) -> Masked {
        Masked { fs, read }
    }

    fn read_only(read_only_mount: bool, write_open: Option<Errno>) -> ReadOnly {
        ReadOnly {
            read_only_mount,
            write_open,
        }
    }

    fn failed(name: &str) -> Content {
        Content::Failed(name.into())
    }

    #[test]
    fn a_masked_path_must_be_covered_and_empty() {
        assert!(masked_hidden(&masked(Fs::Other, Content::Bytes(0))));
        assert!(masked_hidden(&masked(Fs::Other, Content::Entries(0))));
        assert!(masked_hidden(&masked(Fs::Other, failed("ENOENT"))));
        // Empty today, or unreadable without a capability, but still the
        // kernel's file: not masked.
        assert!(!masked_hidden(&masked(Fs::Proc, Content::Bytes(0))));
        assert!(!masked_hidden(&masked(Fs::Proc, failed("EPERM"))));
        assert!(!masked_hidden(&masked(Fs::Other, Content::Bytes(12))));
        assert!(masked_open(&masked(Fs::Proc, Content::Entries(0))));
        assert!(!masked_open(&masked(Fs::Other, Content::Bytes(0))));
    }

    #[test]
    fn a_read_only_path_needs_the_flag_and_the_refusal() {
        assert!(read_only_held(&read_only(true, Some(Err("EROFS".into())))));
        assert!(read_only_held(&read_only(true, Some(Err("EACCES".into())))));
        assert!(!read_only_held(&read_only(true, Some(Ok(())))));
        assert!(!read_only_held(&read_only(false, None)));
        assert!(!read_only_held(&read_only(
            false,
            Some(Err("EACCES".into()))
        )));
        assert!(read_only_open(&read_only(false, Some(Ok(())))));
        assert!(!read_only_open(&read_only(
            false,
            Some(Err("EACCES".into()))
        )));
    }
}
