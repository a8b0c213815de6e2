//! Which cgroup layout the host uses: unified (v2), hybrid, or legacy (v1).

use std::fmt;
use std::path::Path;

use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC, TMPFS_MAGIC};

use crate::error::{Error, Result};

/// Where the cgroup filesystems are mounted on every distribution we know.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The host's cgroup layout, decided once from `statfs` magic numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `/sys/fs/cgroup` is itself cgroup2: every controller lives in one tree.
    Unified,
    /// Controllers are v1 hierarchies under a tmpfs, with a cgroup2 tree at
    /// `/sys/fs/cgroup/unified` that holds few or no controllers. Limits go to v1.
    Hybrid,
    /// Only v1 hierarchies, one directory per controller (or co-mounted group).
    Legacy,
}

impl Mode {
    /// Reads the layout of the running host.
    pub fn detect() -> Result<Mode> {
        Mode::detect_at(Path::new(CGROUP_ROOT))
    }

    /// Reads the layout with `root` standing for `/sys/fs/cgroup` (for guests
    /// that mount it elsewhere).
    pub fn detect_at(root: &Path) -> Result<Mode> {
        let magic = |path: &Path| statfs(path).map(|s| s.filesystem_type());
        let top = magic(root).map_err(Error::sys(format!("statfs {}", root.display())))?;
        if top == CGROUP2_SUPER_MAGIC {
            return Ok(Mode::Unified);
        }
        if top == CGROUP_SUPER_MAGIC {
            // A single v1 hierarchy mounted straight on the root is legacy too.
            return Ok(Mode::Legacy);
        }
        if top != TMPFS_MAGIC {
            return Err(Error::Privilege(format!(
                "{} is neither cgroup2 nor a tmpfs of v1 hierarchies: mount cgroups there first",
                root.display()
            )));
        }
        match magic(&root.join("unified")) {
            Ok(m) if m == CGROUP2_SUPER_MAGIC => Ok(Mode::Hybrid),
            _ => Ok(Mode::Legacy),
        }
    }

    /// True when limits are written to v2 files (`memory.max`, `cpu.max`, ...).
    pub fn is_v2(self) -> bool {
        self == Mode::Unified
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Unified => "cgroup v2, unified",
            Mode::Hybrid => "cgroup v1 controllers, hybrid layout",
            Mode::Legacy => "cgroup v1, legacy layout",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_has_a_known_layout() {
        // Every supported host has one of the three; detection must not fail.
        let mode = Mode::detect().unwrap();
        let v2_root = Path::new(CGROUP_ROOT).join("cgroup.controllers").exists();
        assert_eq!(mode.is_v2(), v2_root, "{mode}");
    }
}
