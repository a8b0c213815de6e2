//! The on-disk state of running containers: one directory per container under
//! the state root, holding a JSON record written atomically.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Where state lives unless `--root` or `MYDOCKER_ROOT` says otherwise.
pub const DEFAULT_ROOT: &str = "/run/mydocker";

/// What the runtime knows about one container, as stored in `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Host pid of the container's init.
    pub pid: i32,
    pub rootfs: PathBuf,
    pub args: Vec<String>,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// Cgroup directories, one per hierarchy.
    pub cgroups: Vec<PathBuf>,
}

/// A container's state directory, removed when the container is torn down.
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Creates `<root>/containers/<id>/` and writes the record into it.
    pub fn create(root: &Path, record: &Record) -> Result<StateDir> {
        let dir = root.join("containers").join(&record.id);
        fs::create_dir_all(&dir).map_err(Error::io(format!(
            "create state directory {}",
            dir.display()
        )))?;
        let state = StateDir { dir };
        state.write(record)?;
        Ok(state)
    }

    /// Replaces `state.json` atomically: a reader sees the old or the new record, never half.
    pub fn write(&self, record: &Record) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let json = serde_json::to_vec_pretty(record).expect("records always serialize");
        fs::write(&tmp, json).map_err(Error::io(format!("write {}", tmp.display())))?;
        fs::rename(&tmp, self.dir.join("state.json"))
            .map_err(Error::io(format!("rename {} into place", tmp.display())))
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Removes the directory and everything in it. Gone already is fine.
    pub fn remove(&self) -> Result<()> {
        match fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(format!(
                "remove state directory {}",
                self.dir.display()
            ))(e)),
            _ => Ok(()),
        }
    }
}

/// A fresh container id: 64 hex digits from the kernel's random pool.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: getrandom writes at most the given length into our buffer.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n > 0 {
            filled += n as usize;
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn state_dirs_are_written_and_removed() {
        let root = tempfile::tempdir().unwrap();
        let record = Record {
            id: new_id(),
            pid: 1,
            rootfs: "/".into(),
            args: vec!["true".into()],
            created: 0,
            cgroups: vec![],
        };
        let state = StateDir::create(root.path(), &record).unwrap();
        let read: Record =
            serde_json::from_slice(&fs::read(state.path().join("state.json")).unwrap()).unwrap();
        assert_eq!(read.id, record.id);
        state.remove().unwrap();
        assert!(!state.path().exists());
        state.remove().unwrap();
    }
}
