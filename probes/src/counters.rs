//! A container's cgroup accounting read by meaning (CPU used, periods
//! throttled, OOM kills, the task count), on cgroup v1 or v2, so that no
//! probe spells out either version's file names.
//!
//! v1 keeps each controller in its own hierarchy and its own file names;
//! v2 has one hierarchy and flat-keyed files (`cpu.stat`, `memory.events`).
//! Each method says which file it reads on each.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use runtime::cgroup::Mode;

use crate::kernel;
use crate::lab::{LabError, OrBroken};

/// The cgroups of one process, found from the kernel (`/proc/<pid>/cgroup`).
pub struct Counters {
    pid: i32,
    v2: bool,
    /// Each controller's directory, found once, on first use: when the
    /// process has died, its `/proc/<pid>/cgroup` names the root cgroups,
    /// so a dead helper's counters are read from where it lived.
    dirs: RefCell<BTreeMap<String, PathBuf>>,
}

/// A CFS bandwidth limit as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Quota {
    /// `quota` of CPU time per `period`.
    Limited { quota: Duration, period: Duration },
    /// No limit, in the kernel's own words (`cpu.max max 100000`, `-1`).
    Unlimited(String),
}

impl std::fmt::Display for Quota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quota::Limited { quota, period } => write!(
                f,
                "{} µs per {} µs period",
                quota.as_micros(),
                period.as_micros()
            ),
            Quota::Unlimited(said) => f.write_str(said),
        }
    }
}

/// How often a cgroup's tasks were taken off the CPU for lack of quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttling {
    /// Periods in which the refill timer ran while the cgroup was active.
    pub periods: u64,
    /// Times the cgroup ran out of runtime and was throttled.
    pub throttled: u64,
    /// Time spent throttled.
    pub time: Duration,
}

/// Periods in which a cgroup used more CPU than its quota, drawing on the
/// burst it had saved (`cpu.max.burst`, v1 `cpu.cfs_burst_us`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bursts {
    /// Periods that ended with more used than one quota.
    pub count: u64,
    /// The use beyond one quota, summed over those periods.
    pub time: Duration,
}

/// A cgroup's CPU weight against its siblings, as the kernel shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuWeight {
    /// v2 `cpu.weight` (1 to 10000); v1 `cpu.shares` (2 to 262144).
    pub shown: u64,
    /// What the same file shows for a group of one nice-0 task's weight,
    /// the default: 100 on v2, 1024 on v1.
    pub nice0: u64,
}

impl std::fmt::Display for CpuWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (a nice-0 group's: {})", self.shown, self.nice0)
    }
}

/// The memory controller's record of a limit being enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryEvents {
    /// Tasks the OOM killer killed in this cgroup.
    pub oom_kills: u64,
    /// The limit was reached: v2's `oom` events; on v1, 1 once the
    /// high-water mark `memory.max_usage_in_bytes` reached the limit.
    pub limit_hits: u64,
}

/// Unsupported unless this host's cgroups are v2, for a feature that only
/// cgroup v2 has: the reason names the host's layout, then `what` (the file
/// and when it came).
pub fn require_v2(what: &str) -> Result<(), LabError> {
    let mode = Mode::detect().or_broken("detect the cgroup layout")?;
    if mode.is_v2() {
        return Ok(());
    }
    Err(LabError::Unsupported(format!(
        "this host's cgroups are v1 ({mode}): {what}"
    )))
}

impl Counters {
    /// The counters of `pid`'s cgroups, in whichever mode the host runs.
    pub fn of(pid: nix::unistd::Pid) -> Counters {
        Counters {
            pid: pid.as_raw(),
            v2: Mode::detect().map(Mode::is_v2).unwrap_or(false),
            dirs: RefCell::default(),
        }
    }

    pub fn is_v2(&self) -> bool {
        self.v2
    }

    /// The directory of the cgroup holding `controller`. Read a counter
    /// of a process that is about to die while it lives: later reads stay
    /// in that cgroup.
    pub fn dir(&self, controller: &str) -> Result<PathBuf, LabError> {
        if let Some(dir) = self.dirs.borrow().get(controller) {
            return Ok(dir.clone());
        }
        let dir = kernel::cgroup_dir(self.pid, controller)
            .or_broken(format!("the helper is in no {controller} cgroup"))?;
        self.dirs
            .borrow_mut()
            .insert(controller.to_owned(), dir.clone());
        Ok(dir)
    }

    /// The container's own v2 cgroup, for a probe that writes to it
    /// (`cgroup.kill`, `cgroup.freeze`): it must be below this run's cgroup
    /// parent, or the write would reach a cgroup that is not the
    /// container's (the probe's own, for a container given none).
    pub fn container_dir(&self) -> Result<PathBuf, LabError> {
        let dir = self.dir("cgroup")?;
        let ours = format!("/{}/", crate::lab::cgroup_parent());
        if !dir.to_string_lossy().contains(&ours) {
            return Err(LabError::broken(format!(
                "the helper's cgroup {} is not below {ours}: the runtime gave the container none of its own",
                dir.display()
            )));
        }
        Ok(dir)
    }

    /// One file of the `controller` cgroup, trimmed.
    pub fn read(&self, controller: &str, file: &str) -> Result<String, LabError> {
        let path = self.dir(controller)?.join(file);
        std::fs::read_to_string(&path)
            .map(|t| t.trim().to_owned())
            .or_broken(format!("read {}", path.display()))
    }

    /// A number from a file holding one, or from a `key value` line of a
    /// flat-keyed file when `key` is given.
    fn number(&self, controller: &str, file: &str, key: Option<&str>) -> Result<u64, LabError> {
        let text = self.read(controller, file)?;
        let value = match key {
            None => text.parse().ok(),
            Some(key) => text.lines().find_map(|line| {
                line.strip_prefix(key)?
                    .strip_prefix(' ')?
                    .trim()
                    .parse()
                    .ok()
            }),
        };
        value.or_broken(format!(
            "{file} has no number {}: {text:?}",
            key.unwrap_or("")
        ))
    }

    /// Whether `controller` governs the cgroup. On v2 a controller's files
    /// exist in a cgroup only when its parent enabled it there (the
    /// runtime enables only what a container's limits need), and
    /// `cgroup.controllers` lists exactly those; on v1 its hierarchy does.
    pub fn enabled(&self, controller: &str) -> Result<bool, LabError> {
        if !self.v2 {
            return self.dir(controller).map(|_| true);
        }
        let listed = self.read(controller, "cgroup.controllers")?;
        Ok(listed.split_whitespace().any(|c| c == controller))
    }

    /// v2: `cpu.max` (`"$QUOTA $PERIOD"` or `"max $PERIOD"`); v1:
    /// `cpu.cfs_quota_us` (-1 for none) and `cpu.cfs_period_us`.
    pub fn cpu_quota(&self) -> Result<Quota, LabError> {
        if !self.enabled("cpu")? {
            return Ok(Quota::Unlimited(
                "no cpu.max: the cpu controller is not enabled for the cgroup".into(),
            ));
        }
        let (quota, period, said) = if self.v2 {
            let max = self.read("cpu", "cpu.max")?;
            let mut fields = max.split_whitespace().map(|f| f.parse::<u64>().ok());
            let (quota, period) = (fields.next().flatten(), fields.next().flatten());
            (quota, period, format!("cpu.max {max}"))
        } else {
            let quota = self.read("cpu", "cpu.cfs_quota_us")?;
            let period = self.read("cpu", "cpu.cfs_period_us")?;
            let said = format!("cpu.cfs_quota_us {quota}");
            (quota.parse().ok(), period.parse().ok(), said)
        };
        Ok(match (quota, period) {
            (Some(quota), Some(period)) => Quota::Limited {
                quota: Duration::from_micros(quota),
                period: Duration::from_micros(period),
            },
            _ => Quota::Unlimited(said),
        })
    }

    /// CPU time charged to the cgroup: v2 `usage_usec` of `cpu.stat`; v1
    /// `cpuacct.usage` (ns), in the cpuacct hierarchy.
    pub fn cpu_usage(&self) -> Result<Duration, LabError> {
        Ok(if self.v2 {
            Duration::from_micros(self.number("cpu", "cpu.stat", Some("usage_usec"))?)
        } else {
            Duration::from_nanos(self.number("cpuacct", "cpuacct.usage", None)?)
        })
    }

    /// `nr_periods` and `nr_throttled` of `cpu.stat` on both; the time is
    /// `throttled_usec` on v2, `throttled_time` (ns) on v1. None when the
    /// cpu controller does not govern the cgroup: nothing throttles it.
    pub fn cpu_throttling(&self) -> Result<Option<Throttling>, LabError> {
        if !self.enabled("cpu")? {
            return Ok(None);
        }
        let stat = |key| self.number("cpu", "cpu.stat", Some(key));
        Ok(Some(Throttling {
            periods: stat("nr_periods")?,
            throttled: stat("nr_throttled")?,
            time: if self.v2 {
                Duration::from_micros(stat("throttled_usec")?)
            } else {
                Duration::from_nanos(stat("throttled_time")?)
            },
        }))
    }

    /// Bursts beyond the quota: `nr_bursts` of `cpu.stat` on both, the time
    /// as `burst_usec` on v2 and `burst_time` (ns) on v1. None when the cpu
    /// controller does not govern the cgroup, or the kernel keeps no such
    /// count (they came in 5.16, two releases after the burst itself).
    pub fn cpu_bursts(&self) -> Result<Option<Bursts>, LabError> {
        if !self.enabled("cpu")? {
            return Ok(None);
        }
        let stat = self.read("cpu", "cpu.stat")?;
        if !stat.lines().any(|l| l.starts_with("nr_bursts ")) {
            return Ok(None);
        }
        let number = |key| self.number("cpu", "cpu.stat", Some(key));
        Ok(Some(Bursts {
            count: number("nr_bursts")?,
            time: if self.v2 {
                Duration::from_micros(number("burst_usec")?)
            } else {
                Duration::from_nanos(number("burst_time")?)
            },
        }))
    }

    /// The weight: v2 `cpu.weight`; v1 `cpu.shares`. None when the cpu
    /// controller does not govern the cgroup.
    pub fn cpu_weight(&self) -> Result<Option<CpuWeight>, LabError> {
        if !self.enabled("cpu")? {
            return Ok(None);
        }
        Ok(Some(if self.v2 {
            CpuWeight {
                shown: self.number("cpu", "cpu.weight", None)?,
                nice0: 100,
            }
        } else {
            CpuWeight {
                shown: self.number("cpu", "cpu.shares", None)?,
                nice0: 1024,
            }
        }))
    }

    /// Memory charged to the cgroup now, in bytes: v2 `memory.current`; v1
    /// `memory.usage_in_bytes`.
    pub fn memory_usage(&self) -> Result<u64, LabError> {
        let file = if self.v2 {
            "memory.current"
        } else {
            "memory.usage_in_bytes"
        };
        self.number("memory", file, None)
    }

    /// The hard limit: v2 `memory.max`; v1 `memory.limit_in_bytes`. None
    /// when the memory controller does not govern the cgroup.
    pub fn memory_limit(&self) -> Result<Option<String>, LabError> {
        if !self.enabled("memory")? {
            return Ok(None);
        }
        let file = if self.v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        self.read("memory", file).map(Some)
    }

    /// v2: `oom_kill` and `oom` of `memory.events`. v1: `oom_kill` of
    /// `memory.oom_control` (since 4.13) and the high-water mark against the
    /// limit, because v1's `memory.failcnt` stays 0 through an OOM kill at
    /// the limit on 6.18. None when the memory controller does not govern
    /// the cgroup: no limit of its own can have been hit.
    pub fn memory_events(&self) -> Result<Option<MemoryEvents>, LabError> {
        if !self.enabled("memory")? {
            return Ok(None);
        }
        Ok(Some(if self.v2 {
            MemoryEvents {
                oom_kills: self.number("memory", "memory.events", Some("oom_kill"))?,
                limit_hits: self.number("memory", "memory.events", Some("oom"))?,
            }
        } else {
            let peak = self.number("memory", "memory.max_usage_in_bytes", None)?;
            let limit = self.number("memory", "memory.limit_in_bytes", None)?;
            MemoryEvents {
                oom_kills: self.number("memory", "memory.oom_control", Some("oom_kill"))?,
                limit_hits: u64::from(peak >= limit),
            }
        }))
    }

    /// v1 only, for the record: `memory.failcnt / memory.memsw.failcnt`.
    pub fn memory_failcnts(&self) -> Option<String> {
        let count = |file| self.number("memory", file, None).ok();
        (!self.v2).then(|| {
            format!(
                "{} / {}",
                count("memory.failcnt").map_or("?".into(), |n| n.to_string()),
                count("memory.memsw.failcnt").map_or("?".into(), |n| n.to_string())
            )
        })
    }

    /// `pids.max` and `pids.current`, the same on both.
    pub fn pids(&self) -> Result<(String, String), LabError> {
        Ok((
            self.read("pids", "pids.max")?,
            self.read("pids", "pids.current")?,
        ))
    }

    /// The CPUs the cgroup may use: `cpuset.cpus` on both.
    pub fn cpuset_cpus(&self) -> Result<String, LabError> {
        self.read("cpuset", "cpuset.cpus")
    }

    /// The processes of the cgroup holding `controller`, from `cgroup.procs`.
    pub fn procs(&self, controller: &str) -> Result<Vec<i32>, LabError> {
        Ok(self
            .read(controller, "cgroup.procs")?
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }
}
