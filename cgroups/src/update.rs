//! Changing a running container's limits in place (`mydocker update`).
//!
//! A limit is a file in the container's cgroup: writing a new value there
//! takes effect at once for every process inside, with no restart. The
//! one ordering rule is v1's: `memory.memsw.limit_in_bytes` (memory plus
//! swap) may never be below `memory.limit_in_bytes`, so the kernel refuses
//! whichever write would break that; raising both writes the total first,
//! lowering both writes the memory limit first.

use std::path::{Path, PathBuf};

use spec::parse::{shares_to_weight, NanoCpus};
use spec::{Limits, SwapLimit};

use crate::{Error, Mode, Result, CGROUP_ROOT};

/// Writes every limit that differs between `old` and `new` into the
/// cgroup whose directories are `dirs`. Limits that are the same are not
/// touched, so an update of `--cpus` cannot fail on the memory controller.
pub fn update_limits(mode: Mode, dirs: &[PathBuf], old: &Limits, new: &Limits) -> Result<()> {
    let v2 = mode.is_v2();
    let dir = |controller: &'static str| {
        controller_dir(mode, dirs, controller).ok_or_else(|| Error::Cgroup {
            path: dirs
                .first()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            action: format!("find the {controller} controller"),
            cause: "the container's cgroup is not in that hierarchy".into(),
        })
    };
    if old.memory != new.memory || old.memory_swap != new.memory_swap {
        let memory_dir = dir("memory")?;
        let memory = new.memory.map_or(-1, |m| m as i64);
        // docker's rule, as at `run`: no --memory-swap lets swap match memory.
        let total = match (new.memory, new.memory_swap) {
            (_, Some(SwapLimit::Unlimited)) | (None, None) => -1,
            (_, Some(SwapLimit::Total(total))) => total as i64,
            (Some(memory), None) => memory.saturating_mul(2) as i64,
        };
        if v2 {
            enable_v2(&memory_dir, "memory")?;
            write(&memory_dir, "memory.max", &max_or(memory))?;
            if memory_dir.join("memory.swap.max").exists() {
                // v2 limits swap alone, not memory plus swap.
                let swap = if total < 0 || memory < 0 {
                    -1
                } else {
                    total - memory
                };
                write(&memory_dir, "memory.swap.max", &max_or(swap))?;
            }
        } else {
            let memsw = "memory.memsw.limit_in_bytes";
            if !memory_dir.join(memsw).exists() {
                write(&memory_dir, "memory.limit_in_bytes", &memory.to_string())?;
            } else {
                let current_total: i64 = read(&memory_dir, memsw)?.trim().parse().unwrap_or(-1);
                let raising = total < 0 || (current_total >= 0 && total > current_total);
                let steps = [("memory.limit_in_bytes", memory), (memsw, total)];
                let order: Vec<_> = if raising {
                    steps.iter().rev().collect()
                } else {
                    steps.iter().collect()
                };
                for (file, value) in order {
                    write(&memory_dir, file, &value.to_string())?;
                }
            }
        }
    }
    if old.cpus != new.cpus {
        let cpu_dir = dir("cpu")?;
        let quota = new.cpus.map(|c| c.quota_us() as i64);
        if v2 {
            enable_v2(&cpu_dir, "cpu")?;
            let quota = quota.map_or_else(|| "max".to_owned(), |q| q.to_string());
            write(
                &cpu_dir,
                "cpu.max",
                &format!("{quota} {}", NanoCpus::PERIOD_US),
            )?;
        } else {
            write(
                &cpu_dir,
                "cpu.cfs_period_us",
                &NanoCpus::PERIOD_US.to_string(),
            )?;
            write(
                &cpu_dir,
                "cpu.cfs_quota_us",
                &quota.unwrap_or(-1).to_string(),
            )?;
        }
    }
    if old.cpu_shares != new.cpu_shares {
        let cpu_dir = dir("cpu")?;
        // Back to the kernel's default when the weight is taken away
        // (1024 shares on v1, weight 100 on v2).
        if v2 {
            enable_v2(&cpu_dir, "cpu")?;
            let weight = new.cpu_shares.map_or(100, shares_to_weight);
            write(&cpu_dir, "cpu.weight", &weight.to_string())?;
        } else {
            let shares = new.cpu_shares.unwrap_or(1024);
            write(&cpu_dir, "cpu.shares", &shares.to_string())?;
        }
    }
    for (old_set, new_set, file) in [
        (&old.cpuset_cpus, &new.cpuset_cpus, "cpuset.cpus"),
        (&old.cpuset_mems, &new.cpuset_mems, "cpuset.mems"),
    ] {
        if old_set == new_set {
            continue;
        }
        let cpuset_dir = dir("cpuset")?;
        if v2 {
            enable_v2(&cpuset_dir, "cpuset")?;
        }
        // Without a set of its own, the container may use its parent's.
        let value = match new_set {
            Some(set) => set.to_string(),
            None => read(cpuset_dir.parent().unwrap_or(&cpuset_dir), file)?,
        };
        write(&cpuset_dir, file, value.trim())?;
    }
    if old.pids != new.pids {
        let pids_dir = dir("pids")?;
        if v2 {
            enable_v2(&pids_dir, "pids")?;
        }
        let value = new.pids.map_or_else(|| "max".to_owned(), |n| n.to_string());
        write(&pids_dir, "pids.max", &value)?;
    }
    Ok(())
}

/// The directory of `controller` among a container's cgroup directories:
/// the one directory on v2, on v1 the one in that controller's hierarchy
/// (`/sys/fs/cgroup/cpu` or a joint `cpu,cpuacct`).
pub fn controller_dir(mode: Mode, dirs: &[PathBuf], controller: &str) -> Option<PathBuf> {
    if mode.is_v2() {
        return dirs.first().cloned();
    }
    dirs.iter()
        .find(|d| {
            d.strip_prefix(CGROUP_ROOT)
                .ok()
                .and_then(|rest| rest.components().next())
                .and_then(|hierarchy| hierarchy.as_os_str().to_str())
                .is_some_and(|name| name.split(',').any(|c| c == controller))
        })
        .cloned()
}

/// On v2, a controller's files appear in a cgroup only when every ancestor
/// enables it for its children. A container created without a limit of
/// some kind may not have had it enabled; it is enabled now along the
/// runtime's own parent path (never in the root, whose controls are not
/// the runtime's), and a host that has not delegated it is named.
fn enable_v2(leaf: &Path, controller: &str) -> Result<()> {
    let root = Path::new(CGROUP_ROOT);
    let mut ancestors: Vec<&Path> = leaf
        .ancestors()
        .skip(1)
        .take_while(|d| *d != root)
        .collect();
    ancestors.reverse();
    for dir in ancestors {
        let control = dir.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == controller) {
            write(dir, "cgroup.subtree_control", &format!("+{controller}"))?;
        }
    }
    Ok(())
}

fn max_or(value: i64) -> String {
    if value < 0 {
        "max".to_owned()
    } else {
        value.to_string()
    }
}

fn read(dir: &Path, file: &str) -> Result<String> {
    std::fs::read_to_string(dir.join(file)).map_err(|e| Error::Cgroup {
        path: dir.display().to_string(),
        action: format!("read {file}"),
        cause: e.to_string(),
    })
}

fn write(dir: &Path, file: &str, value: &str) -> Result<()> {
    std::fs::write(dir.join(file), value).map_err(|e| Error::Cgroup {
        path: dir.display().to_string(),
        action: format!("write {value:?} to {file}"),
        cause: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_controller_is_found_in_its_own_or_a_joint_hierarchy() {
        let dirs = [
            PathBuf::from("/sys/fs/cgroup/memory/mydocker/a"),
            PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/mydocker/a"),
            PathBuf::from("/sys/fs/cgroup/cpuset/mydocker/a"),
        ];
        let found = |c| controller_dir(Mode::Legacy, &dirs, c);
        assert_eq!(found("memory"), Some(dirs[0].clone()));
        assert_eq!(found("cpu"), Some(dirs[1].clone()));
        assert_eq!(found("cpuacct"), Some(dirs[1].clone()));
        // "cpu" is not a prefix match for "cpuset".
        assert_eq!(found("cpuset"), Some(dirs[2].clone()));
        assert_eq!(found("pids"), None);
    }
}
