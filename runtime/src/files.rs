//! Files shared between runtime processes: written whole or not at all,
//! and changed under an exclusive lock. The bottom layer: it knows no
//! container, only paths.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes a file so that readers see the old content or the new, never
/// half: a temporary beside it, renamed into place. The temporary gets a
/// fresh name and is created exclusively, so a symlink planted where it
/// would go (the pid file of an OCI create may sit in a directory others
/// can write) is never followed.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // The kernel's error alone: tempfile's would name its temporary file.
    // (tempfile keeps the kernel's code only as a kind).
    let plain = |e: std::io::Error| {
        use std::io::ErrorKind::{
            PermissionDenied, QuotaExceeded, ReadOnlyFilesystem, StorageFull,
        };
        let code = e.raw_os_error().or(match e.kind() {
            StorageFull => Some(libc::ENOSPC),
            QuotaExceeded => Some(libc::EDQUOT),
            ReadOnlyFilesystem => Some(libc::EROFS),
            PermissionDenied => Some(libc::EACCES),
            _ => None,
        });
        code.map_or(e, std::io::Error::from_raw_os_error)
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".mydocker-")
        .permissions(fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(|e| Error::io(format!("create a file in {}", dir.display()))(plain(e)))?;
    tmp.write_all(bytes)
        .map_err(|e| Error::io(format!("write {}", path.display()))(plain(e)))?;
    tmp.persist(path)
        .map_err(|e| Error::io(format!("rename into {}", path.display()))(e.error))?;
    Ok(())
}

/// Takes an exclusive lock on `path` (created if missing), held until the
/// guard drops. Every read-modify-write of shared state goes through one.
pub(crate) fn lock_file(path: &Path) -> Result<nix::fcntl::Flock<fs::File>> {
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(Error::io(format!("open {}", path.display())))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| Error::sys(format!("lock {}", path.display()))(e))
}

/// The mount a file is on (statx's `STATX_MNT_ID`, Linux 5.8+) and whether
/// it is that mount's root: `path` relative to `dir` (`AT_FDCWD` for the
/// working directory; an empty path names `dir` itself), never following
/// a final link. `None` where the kernel does not say.
pub(crate) fn mount_of(dir: std::os::fd::RawFd, path: &std::ffi::CStr) -> Option<(u64, bool)> {
    let flags = libc::AT_SYMLINK_NOFOLLOW
        | if path.is_empty() {
            libc::AT_EMPTY_PATH
        } else {
            0
        };
    // SAFETY: statx fills the zeroed buffer we own; the path is NUL-terminated.
    let mut buf: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statx(dir, path.as_ptr(), flags, libc::STATX_MNT_ID, &mut buf) };
    let root = buf.stx_attributes & libc::STATX_ATTR_MOUNT_ROOT as u64 != 0;
    (rc == 0 && buf.stx_mask & libc::STATX_MNT_ID != 0).then_some((buf.stx_mnt_id, root))
}
