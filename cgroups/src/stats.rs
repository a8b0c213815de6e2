//! Reading a container's usage from its cgroup's counters (`mydocker stats`).
//!
//! Every number here is the kernel's own accounting of the cgroup, not a
//! sum over processes that may already be gone: CPU time charged to it,
//! memory charged to it, bytes it moved through block devices, and the
//! tasks in it now.

use std::path::{Path, PathBuf};

use crate::{controller_dir, Mode};

/// One reading of a container's counters. A counter its cgroup does not
/// have (a hierarchy it is not in, a controller not enabled on v2) is `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time used by all its tasks since the cgroup was made, in ns.
    pub cpu_ns: Option<u64>,
    /// Memory charged to it, less the page cache the kernel may drop at
    /// once (inactive file pages), as docker reports it.
    pub memory: Option<u64>,
    /// Its memory limit; `None` when it has none.
    pub memory_limit: Option<u64>,
    /// Bytes read from and written to block devices (v2's `io.stat`; v1
    /// has no counter that can be trusted, see [`usage`]).
    pub block_read: Option<u64>,
    pub block_write: Option<u64>,
    /// Tasks (threads) in it now.
    pub pids: Option<u64>,
}

/// Reads the counters of the cgroup whose directories are `dirs`.
pub fn usage(mode: Mode, dirs: &[PathBuf]) -> Usage {
    let dir = |c| controller_dir(mode, dirs, c);
    if mode.is_v2() {
        let Some(dir) = dirs.first() else {
            return Usage::default();
        };
        let (block_read, block_write) = io_stat(dir);
        return Usage {
            cpu_ns: keyed(&dir.join("cpu.stat"), "usage_usec").map(|us| us * 1000),
            memory: number(&dir.join("memory.current")).map(|m| {
                m.saturating_sub(keyed(&dir.join("memory.stat"), "inactive_file").unwrap_or(0))
            }),
            memory_limit: number(&dir.join("memory.max")),
            block_read,
            block_write,
            pids: number(&dir.join("pids.current")),
        };
    }
    let memory = dir("memory");
    Usage {
        cpu_ns: dir("cpuacct").and_then(|d| number(&d.join("cpuacct.usage"))),
        memory: memory.as_ref().and_then(|d| {
            let used = number(&d.join("memory.usage_in_bytes"))?;
            let inactive = keyed(&d.join("memory.stat"), "total_inactive_file").unwrap_or(0);
            Some(used.saturating_sub(inactive))
        }),
        // v1 says "no limit" with the largest page-aligned number it has.
        memory_limit: memory
            .and_then(|d| number(&d.join("memory.limit_in_bytes")))
            .filter(|&limit| limit < 1 << 62),
        // v1's counters (`blkio.throttle.io_service_bytes`) are kept by the
        // block throttling layer, which recent kernels only enter for a
        // device with a throttle limit set: on 6.18, direct writes of a
        // container left them at 0. A 0 that may be false is not shown.
        block_read: None,
        block_write: None,
        pids: dir("pids").and_then(|d| number(&d.join("pids.current"))),
    }
}

/// A file holding one number; `max` and anything else that does not parse
/// is `None`.
fn number(file: &Path) -> Option<u64> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

/// The value of `key` in a file of `key value` lines (`memory.stat`, `cpu.stat`).
fn keyed(file: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// v2's `io.stat`: one line per device, `MAJ:MIN rbytes=N wbytes=N ...`.
fn io_stat(dir: &Path) -> (Option<u64>, Option<u64>) {
    let Ok(text) = std::fs::read_to_string(dir.join("io.stat")) else {
        return (None, None);
    };
    let (mut read, mut write) = (0, 0);
    for field in text.split_whitespace() {
        if let Some(n) = field.strip_prefix("rbytes=") {
            read += n.parse::<u64>().unwrap_or(0);
        } else if let Some(n) = field.strip_prefix("wbytes=") {
            write += n.parse::<u64>().unwrap_or(0);
        }
    }
    (Some(read), Some(write))
}
