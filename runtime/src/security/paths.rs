//! Masked and read-only paths in `/proc` and `/sys`, and the read-only rootfs.
//!
//! `/proc` and `/sys` are the kernel's, not the container's: `/proc/kcore` is
//! the machine's memory, `/proc/keys` the host's keyrings, `/proc/sys` writes
//! kernel settings for everyone. A mount namespace cannot hide them, so init
//! covers each with something harmless before the container starts: a file
//! with `/dev/null`, a directory with an empty read-only tmpfs. Paths that
//! must stay readable are bind-mounted onto themselves read-only.

use std::path::Path;

use nix::mount::{mount, MsFlags};

use crate::rootfs::{ensure_dir, mounted_on, open_if_in_root, KernelMounts};
use crate::setup::Failure;
pub use crate::spec::security::{MASKED, READ_ONLY};
use crate::{Fault, Faults};

/// Masks [`MASKED`] and write-protects [`READ_ONLY`] in the container's
/// freshly mounted `/proc`, `/sys` and `/dev`, found through `mounts`: the
/// image may have made `/proc` a symlink, and joining its name to the root
/// would then aim the masks at the host's real procfs. A path this kernel
/// does not have is skipped: there is nothing to hide. A path `faults`
/// exposes ([`Fault::ExposePath`], a test defect) is left as it is.
pub fn mask(mounts: &KernelMounts, faults: &Faults) -> Result<(), Failure> {
    let protected = |path: &&'static str| !faults.has(Fault::ExposePath(path));
    let none: Option<&str> = None;
    let null = mounts.resolve("/dev/null").expect("/dev is a kernel mount");
    for path in MASKED.into_iter().filter(protected) {
        let target = mounts.resolve(path).expect("masks are under /proc or /sys");
        let Ok(meta) = std::fs::metadata(&target) else {
            continue;
        };
        let done = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                target.as_str(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some("size=0k,nr_inodes=1"),
            )
        } else {
            mount(
                Some(null.as_str()),
                target.as_str(),
                none,
                MsFlags::MS_BIND,
                none,
            )
        };
        done.map_err(Failure::sys(format!("mask {path}")))?;
    }
    for path in READ_ONLY.into_iter().filter(protected) {
        let target = mounts
            .resolve(path)
            .expect("read-only paths are under /proc");
        if !Path::new(&target).exists() {
            continue;
        }
        read_only_bind(
            &target,
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        )
        .map_err(Failure::sys(format!("make {path} read-only")))?;
    }
    Ok(())
}

/// An OCI configuration's own lists, applied under `root` just before the
/// switch into it: each masked path covered (a directory by an empty
/// read-only tmpfs, anything else by `/dev/null`), each read-only path
/// bound onto itself read-only. A path the container does not have is
/// skipped: nothing to protect.
///
/// Each path is found by the kernel's lookup scoped to `root` (see
/// [`crate::rootfs::Pinned`]), never by a plain path: a chroot does not
/// stop a magic link, and an image whose `/sys` links to
/// `/proc/1/root/sys` would otherwise aim a mask at the host's.
pub fn protect_listed(root: &Path, masked: &[String], read_only: &[String]) -> Result<(), Failure> {
    let none: Option<&str> = None;
    let find = |path: &str| open_if_in_root(root, path);
    for path in read_only {
        let Some(target) = find(path)? else {
            continue;
        };
        let stat = nix::sys::statvfs::statvfs(target.path())
            .map_err(Failure::sys(format!("statvfs {path}")))?;
        // A remount inside a user namespace must keep the locked flags.
        let keep = MsFlags::from_bits_truncate(stat.flags().bits() as libc::c_ulong)
            & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
        mount(
            Some(target.path()),
            target.path(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .map_err(Failure::sys(format!("bind {path} onto itself")))?;
        // The bind covers what the descriptor holds: find it anew.
        let bound = mounted_on(root, path, &target, Some(Path::new(target.path())))?;
        mount(
            none,
            bound.path(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
            none,
        )
        .map_err(Failure::sys(format!("make {path} read-only")))?;
    }
    let null = find("/dev/null")?;
    for path in masked {
        let Some(target) = find(path)? else {
            continue;
        };
        let is_dir = std::fs::metadata(target.path()).is_ok_and(|m| m.is_dir());
        let done = if is_dir {
            mount(
                Some("tmpfs"),
                target.path(),
                Some("tmpfs"),
                MsFlags::MS_RDONLY,
                none,
            )
        } else {
            // The container's own /dev/null, or the host's if it has none.
            let null = null.as_ref().map_or("/dev/null", |n| n.path());
            mount(Some(null), target.path(), none, MsFlags::MS_BIND, none)
        };
        done.map_err(Failure::sys(format!("mask {path}")))?;
    }
    Ok(())
}

/// Binds `target` onto itself and remounts the bind read-only. `keep` are
/// the flags the mount already has: inside a user namespace the kernel
/// refuses a remount that would drop them.
fn read_only_bind(target: &str, keep: MsFlags) -> nix::Result<()> {
    let none: Option<&str> = None;
    mount(
        Some(target),
        target,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )?;
    mount(
        none,
        target,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | keep,
        none,
    )
}

/// `--read-only`: tmpfs on `/tmp` and `/run`, where programs expect to
/// write (`with_scratch`; an OCI configuration lists its own mounts), then
/// the root itself read-only. Runs after the switch into the root; volumes
/// and `/dev` are mounts of their own and stay writable. A scratch
/// directory at or above one of the caller's own mounts (`mounted`: a
/// `--tmpfs /tmp`, a volume at `/run/app`) is left alone: a tmpfs put on
/// it would hide theirs.
pub fn make_root_read_only(with_scratch: bool, mounted: &[&str]) -> Result<(), Failure> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let scratch: &[(&str, &str)] = if with_scratch {
        &[("/tmp", "1777"), ("/run", "755")]
    } else {
        &[]
    };
    let covers =
        |dir: &str, path: &str| std::path::Path::new(path.trim_end_matches('/')).starts_with(dir);
    for &(path, mode) in scratch
        .iter()
        .filter(|(dir, _)| !mounted.iter().any(|m| covers(dir, m)))
    {
        ensure_dir(path)?;
        mount(
            Some("tmpfs"),
            path,
            Some("tmpfs"),
            flags,
            Some(format!("mode={mode}").as_str()),
        )
        .map_err(Failure::sys(format!("mount tmpfs on {path}")))?;
    }
    // "/" is a mount already (the root's own bind), so remounting it is
    // enough; a new bind stacked on the process's root would not be seen.
    let none: Option<&str> = None;
    mount(
        none,
        "/",
        none,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        none,
    )
    .map_err(Failure::sys("make the rootfs read-only"))
}
