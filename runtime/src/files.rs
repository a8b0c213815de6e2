//! Files shared between runtime processes: written whole or not at all,
//! and changed under an exclusive lock. The bottom layer: it knows no
//! container, only paths.

use std::fs;
use std::path::Path;

use crate::error::{Error, Result};

/// Writes a file so that readers see the old content or the new, never
/// half: a temporary beside it, renamed into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).map_err(Error::io(format!("write {}", tmp.display())))?;
    fs::rename(&tmp, path).map_err(Error::io(format!("rename {} into place", tmp.display())))
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
