//! Cgroups: one container's cgroup on v1, v2 or hybrid hosts, from creation to removal.
//!
//! The runtime owns exactly one directory per controller hierarchy for each
//! container, `<parent>/<id>`, and never writes anywhere else. The parent is
//! created on first use and shared by all containers; the default one
//! (`mydocker`, a name the runtime owns) goes again with its last container,
//! while a `--cgroup-parent` the caller chose is the caller's to keep.
//!
//! A crate of its own, as youki's `libcgroups`: it knows the spec's limits
//! and the kernel's cgroup filesystems, and nothing of containers beyond
//! their id.

pub mod error;
mod mode;
mod stats;
mod update;

pub use error::{Error, Result};

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::cpuset::CpuSetController;
use cgroups_rs::fs::hierarchies::{V1, V2};
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{Cgroup, ControllIdentifier, Controller, Hierarchy, MaxValue, Subsystem};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub use mode::{Mode, CGROUP_ROOT};
pub use stats::{usage, Usage};
pub use update::{controller_dir, update_limits};

use spec::parse::{shares_to_weight, NanoCpus};
use spec::{Limits, SwapLimit};

/// The controllers a container is placed in. `cpuacct` exists only on v1; on
/// v2 its counters are part of `cpu`.
const V1_CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "cpuset"];
const V2_CONTROLLERS: [&str; 4] = ["memory", "pids", "cpu", "cpuset"];

/// One container's cgroup, present in every hierarchy the runtime uses.
pub struct ContainerCgroup {
    cgroup: Cgroup,
    mode: Mode,
    /// The directories created for this container, one per hierarchy (one on v2).
    dirs: Vec<PathBuf>,
    /// Whether [`ContainerCgroup::destroy`] kills what is left inside
    /// (always, but for the `SkipTeardownKill` fault).
    kill_on_destroy: bool,
    /// Ancestors of the leaf that this creation made (deepest first): an
    /// OCI `cgroupsPath` such as `a/b/ctr` makes `a` and `a/b`, and they
    /// go with the container when nothing else is in them.
    made_parents: Vec<PathBuf>,
}

impl ContainerCgroup {
    /// Creates `<parent>/<id>` in each hierarchy and writes `limits` into it.
    ///
    /// Fails before creating anything if a limit needs a controller the host
    /// lacks; on any later failure it removes what it created.
    pub fn create(mode: Mode, parent: &str, id: &str, limits: &Limits) -> Result<ContainerCgroup> {
        // The default parent goes with its last container: one removed
        // between our making it and making the leaf in it is made again.
        let mut attempts = 3;
        loop {
            attempts -= 1;
            match Self::create_once(mode, parent, id, limits) {
                Err(_) if attempts > 0 && parent_missing(mode, parent) => continue,
                result => return result,
            }
        }
    }

    fn create_once(mode: Mode, parent: &str, id: &str, limits: &Limits) -> Result<ContainerCgroup> {
        // On v2 nothing enforces docker's device list (it takes a BPF
        // program), and a --device given every permission adds nothing to
        // what is not enforced: only narrower rules still need a controller
        // this host lacks, and are refused.
        let v2_limits;
        let limits = if mode.is_v2() && limits.default_devices {
            v2_limits = Limits {
                devices: limits
                    .devices
                    .iter()
                    .filter(|r| !(r.allow && r.access.contains('r') && r.access.contains('w')))
                    .cloned()
                    .collect(),
                ..limits.clone()
            };
            &v2_limits
        } else {
            limits
        };
        let hierarchy: Box<dyn Hierarchy> = if mode.is_v2() {
            Box::new(V2::new())
        } else {
            Box::new(V1::new())
        };
        let mut wanted: Vec<&str> = if mode.is_v2() {
            V2_CONTROLLERS.to_vec()
        } else {
            V1_CONTROLLERS.to_vec()
        };
        // The devices hierarchy only when there are rules for it.
        if !mode.is_v2() && (!limits.devices.is_empty() || limits.default_devices) {
            wanted.push("devices");
        }
        if !mode.is_v2() && limits.pausable {
            wanted.push("freezer");
        }
        let available: Vec<String> = hierarchy
            .subsystems()
            .iter()
            .map(|s| s.controller_name())
            .filter(|name| wanted.contains(&name.as_str()))
            .collect();
        for (flag, controller) in needed_controllers(limits) {
            if !available.iter().any(|c| c == controller) {
                return Err(Error::MissingController {
                    flag,
                    controller,
                    mode: mode.to_string(),
                });
            }
        }
        let path = if parent.is_empty() {
            id.to_owned()
        } else {
            format!("{parent}/{id}")
        };
        // The leaf is ours alone: a directory already there is someone
        // else's cgroup (a cgroupsPath naming a service's), which mydocker
        // must neither write into nor, at teardown, empty and remove.
        let root = Path::new(CGROUP_ROOT);
        let taken = if mode.is_v2() {
            vec![root.join(&path)]
        } else {
            available.iter().map(|c| root.join(c).join(&path)).collect()
        };
        // The ancestors missing now are ours once the leaf is made.
        let mut made_parents: Vec<PathBuf> = taken
            .iter()
            .flat_map(|leaf| {
                let hierarchy = if mode.is_v2() {
                    root.to_owned()
                } else {
                    leaf.ancestors()
                        .nth(path.split('/').count())
                        .unwrap_or(root)
                        .to_owned()
                };
                leaf.ancestors()
                    .skip(1)
                    .take_while(move |d| *d != hierarchy)
                    .filter(|d| !d.exists())
                    .map(Path::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        made_parents.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        if let Some(existing) = taken.iter().find(|d| d.exists()) {
            return Err(Error::Cgroup {
                path: existing.display().to_string(),
                action: "create".into(),
                cause: "it exists already: mydocker makes the container's cgroup itself and takes over none".into(),
            });
        }
        let cgroup = Cgroup::load_with_specified_controllers(hierarchy, &path, available);
        let dirs = if mode.is_v2() {
            vec![Path::new(CGROUP_ROOT).join(&path)]
        } else {
            cgroup
                .subsystems()
                .iter()
                .map(|s| s.to_controller().path().to_owned())
                .collect()
        };
        let created = ContainerCgroup {
            cgroup,
            mode,
            dirs,
            kill_on_destroy: true,
            made_parents,
        };
        let needed: Vec<&str> = needed_controllers(limits)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        let setup = if mode.is_v2() {
            create_v2(parent, id, &needed)
        } else {
            created
                .cgroup
                .create()
                .map_err(|e| created.error("create", e))
        };
        let setup = setup
            .and_then(|()| created.check_delegation(limits))
            .and_then(|()| created.apply(limits));
        match setup {
            Ok(()) => Ok(created),
            Err(e) => {
                // The setup error is the one worth reporting; a removal failure
                // here would only hide it.
                let _ = created.destroy();
                Err(e)
            }
        }
    }

    /// No cgroup at all: for a rootless container on a host that has not
    /// delegated a cgroup to its user. Attaching, counting OOM kills and
    /// removing all do nothing.
    pub fn none(mode: Mode) -> ContainerCgroup {
        let hierarchy: Box<dyn Hierarchy> = if mode.is_v2() {
            Box::new(V2::new())
        } else {
            Box::new(V1::new())
        };
        ContainerCgroup {
            cgroup: Cgroup::load_with_specified_controllers(hierarchy, "", Vec::new()),
            mode,
            dirs: Vec::new(),
            kill_on_destroy: true,
            made_parents: Vec::new(),
        }
    }

    /// The ancestors this creation made, deepest first, for the record:
    /// [`remove_made_parents`] takes them away with the container.
    pub fn made_parents(&self) -> &[PathBuf] {
        &self.made_parents
    }

    /// The directories of this cgroup, one per hierarchy.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Moves a whole process (every thread) into the cgroup in every hierarchy.
    ///
    /// Writes `cgroup.procs` directly. cgroups-rs's `add_task` would write
    /// `cgroup.threads` on v2, which only threaded cgroups accept, and its
    /// `add_task_by_tgid` refuses a v2 cgroup that has no controllers at all.
    pub fn attach(&self, pid: Pid) -> Result<()> {
        for dir in &self.dirs {
            std::fs::write(dir.join("cgroup.procs"), pid.as_raw().to_string()).map_err(|e| {
                Error::Cgroup {
                    path: dir.display().to_string(),
                    action: format!("attach pid {pid}"),
                    cause: e.to_string(),
                }
            })?;
        }
        Ok(())
    }

    /// The files through which init moves itself into this cgroup, when
    /// that is the fast way in: each v1 hierarchy's `tasks`, to which a
    /// single-threaded process writes `0`. Empty on v2, where launch clones
    /// init straight into the cgroup.
    ///
    /// Why not [`ContainerCgroup::attach`] from launch: moving another
    /// process (a pid into `cgroup.procs`) takes the kernel's global
    /// threadgroup lock for writing, and taking it after a quiet moment waits
    /// for an RCU grace period: 5 to 15 ms on this project's test machine,
    /// more than the rest of a start together. A single thread that moves
    /// itself (`0` into `tasks`) does not take that lock for writing; it
    /// measured about 0.3 ms here (kernel 6.18). Where a kernel does take it,
    /// the join costs what the parent's attach did.
    pub fn self_join_files(&self) -> Vec<String> {
        if self.mode.is_v2() {
            return Vec::new();
        }
        self.dirs
            .iter()
            .map(|d| d.join("tasks").to_string_lossy().into_owned())
            .collect()
    }

    /// How many times the OOM killer has killed a task of this cgroup, read from
    /// the kernel's own counter (`memory.events` on v2, `memory.oom_control` on v1).
    pub fn oom_kills(&self) -> u64 {
        let Some(memory) = self.controller_dir("memory") else {
            return 0;
        };
        let file = if self.mode.is_v2() {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        std::fs::read_to_string(memory.join(file))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("oom_kill ")?.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// The directory of one controller (`memory`, `cpu`, ...), if the cgroup has it.
    pub fn controller_dir(&self, controller: &str) -> Option<PathBuf> {
        if self.mode.is_v2() {
            return self.dirs.first().cloned();
        }
        self.cgroup
            .subsystems()
            .iter()
            .find(|s| s.controller_name() == controller)
            .map(|s| s.to_controller().path().to_owned())
    }

    /// Makes [`ContainerCgroup::destroy`] remove the cgroup without killing
    /// what is left in it: the `SkipTeardownKill` fault.
    pub fn skip_teardown_kill(&mut self) {
        self.kill_on_destroy = false;
    }

    /// Kills whatever is left inside and removes every directory of the cgroup.
    ///
    /// Processes that were just killed stay charged to the cgroup until the
    /// kernel has reaped them, so `rmdir` can fail with EBUSY for a moment; it
    /// is retried with a short backoff (the kernel selftests' `cg_destroy` does
    /// the same). cgroups-rs's own `delete` does not retry on v2.
    pub fn destroy(&self) -> Result<()> {
        let removed = remove_dirs(&self.dirs, self.mode, self.kill_on_destroy);
        remove_made_parents(&self.made_parents);
        removed
    }

    /// On v2, a controller works in our cgroup only if every ancestor lists it
    /// in `cgroup.subtree_control`. cgroups-rs enables them but ignores write
    /// errors, so the result is checked here for each controller a limit needs.
    fn check_delegation(&self, limits: &Limits) -> Result<()> {
        let Some(leaf) = self.dirs.first().filter(|_| self.mode.is_v2()) else {
            return Ok(());
        };
        let parent = leaf.parent().expect("the leaf is below the cgroup root");
        let enabled =
            std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        for (flag, controller) in needed_controllers(limits) {
            if !enabled.split_whitespace().any(|c| c == controller) {
                return Err(Error::Cgroup {
                    path: parent.display().to_string(),
                    action: format!("enable the {controller} controller for {flag}"),
                    cause: format!(
                        "cgroup.subtree_control lists only {:?}; is the cgroup delegated to us?",
                        enabled.trim()
                    ),
                });
            }
        }
        Ok(())
    }

    fn apply(&self, limits: &Limits) -> Result<()> {
        let v2 = self.mode.is_v2();
        if let Some(memory) = limits.memory {
            let mem: &MemController = self.controller().expect("checked in create");
            mem.set_limit(memory as i64)
                .map_err(|e| self.error("set memory limit", e))?;
            // docker's rule: without --memory-swap, swap may match the memory limit.
            let swap = limits
                .memory_swap
                .unwrap_or(SwapLimit::Total(memory.saturating_mul(2)));
            let swap_file = if v2 {
                "memory.swap.max"
            } else {
                "memory.memsw.limit_in_bytes"
            };
            let swap_supported = self
                .controller_dir("memory")
                .is_some_and(|d| d.join(swap_file).exists());
            if swap_supported {
                let value = match (swap, v2) {
                    (SwapLimit::Unlimited, _) => -1,
                    (SwapLimit::Total(total), false) => total as i64,
                    // v2 limits swap alone, not memory plus swap.
                    (SwapLimit::Total(total), true) => (total - memory) as i64,
                };
                mem.set_memswap_limit(value)
                    .map_err(|e| self.error("set swap limit", e))?;
            } else if limits.memory_swap.is_some() {
                return Err(Error::MissingController {
                    flag: "--memory-swap",
                    controller: "memory swap accounting",
                    mode: format!("{}, no {swap_file}", self.mode),
                });
            }
        }
        if limits.cpus.is_some()
            || limits.cpu_shares.is_some()
            || limits.cpu_quota.is_some()
            || limits.cpu_period.is_some()
        {
            let cpu: &CpuController = self.controller().expect("checked in create");
            if let Some(cpus) = limits.cpus {
                cpu.set_cfs_quota_and_period(
                    Some(cpus.quota_us() as i64),
                    Some(NanoCpus::PERIOD_US),
                )
                .map_err(|e| self.error("set cpu quota", e))?;
            }
            if limits.cpu_quota.is_some() || limits.cpu_period.is_some() {
                cpu.set_cfs_quota_and_period(limits.cpu_quota, limits.cpu_period)
                    .map_err(|e| self.error("set cpu quota and period", e))?;
            }
            if let Some(shares) = limits.cpu_shares {
                let value = if v2 { shares_to_weight(shares) } else { shares };
                cpu.set_shares(value)
                    .map_err(|e| self.error("set cpu weight", e))?;
            }
        }
        if limits.cpuset_cpus.is_some() || limits.cpuset_mems.is_some() {
            let cpuset: &CpuSetController = self.controller().expect("checked in create");
            if let Some(cpus) = &limits.cpuset_cpus {
                cpuset
                    .set_cpus(&cpus.to_string())
                    .map_err(|e| self.error("set cpuset.cpus", e))?;
            }
            if let Some(mems) = &limits.cpuset_mems {
                cpuset
                    .set_mems(&mems.to_string())
                    .map_err(|e| self.error("set cpuset.mems", e))?;
            }
        }
        if let Some(max) = limits.pids {
            let pids: &PidController = self.controller().expect("checked in create");
            pids.set_pid_max(MaxValue::Value(max as i64))
                .map_err(|e| self.error("set pids.max", e))?;
        }
        if limits.default_devices && !v2 {
            self.apply_device_rules(&spec::device::docker_defaults())?;
        }
        if !limits.devices.is_empty() {
            self.apply_device_rules(&limits.devices)?;
        }
        Ok(())
    }

    /// Writes the device rules, in order, to `devices.deny` or
    /// `devices.allow` (v1). A new cgroup starts with its parent's list, so
    /// a configuration begins with a deny-all and then allows what it lists.
    fn apply_device_rules(&self, rules: &[spec::device::DeviceRule]) -> Result<()> {
        let dir = self
            .controller_dir("devices")
            .expect("checked in create: devices is in the hierarchies used");
        for rule in rules {
            let file = dir.join(if rule.allow {
                "devices.allow"
            } else {
                "devices.deny"
            });
            std::fs::write(&file, rule.line()).map_err(|e| Error::Cgroup {
                path: dir.display().to_string(),
                action: format!("write {:?} to {}", rule.line(), file.display()),
                cause: e.to_string(),
            })?;
        }
        Ok(())
    }

    fn controller<'a, T>(&'a self) -> Option<&'a T>
    where
        &'a T: From<&'a Subsystem>,
        T: Controller + ControllIdentifier,
    {
        self.cgroup.controller_of::<T>()
    }

    fn error(&self, action: &str, cause: cgroups_rs::fs::error::Error) -> Error {
        Error::Cgroup {
            path: self.cgroup.path().to_owned(),
            action: action.to_owned(),
            cause: cause.to_string(),
        }
    }
}

/// Creates `<root>/<parent>/<id>` on v2, enabling the controllers the limits
/// need in `cgroup.subtree_control` along the parent path.
///
/// cgroups-rs's own creation writes every controller into the subtree control
/// of the hierarchy root and of every ancestor, limits or not. The runtime
/// owns its `--cgroup-parent` path and nothing above it, so it never writes
/// to the root: a controller the root does not delegate is reported by
/// `check_delegation` instead.
fn create_v2(parent: &str, id: &str, needed: &[&str]) -> Result<()> {
    // The counters `stats` reads (memory.current, pids.current, io.stat)
    // exist only where their controller is enabled: asked for always, as
    // runc and systemd do, though no limit needs them. Unlike `needed`, a
    // host that does not delegate one is no error.
    let mut wanted: Vec<&str> = needed.to_vec();
    wanted.extend(
        ["memory", "pids", "io"]
            .iter()
            .filter(|c| !needed.contains(c)),
    );
    let needed = wanted.as_slice();
    let mut dir = PathBuf::from(CGROUP_ROOT);
    // An empty parent is the root itself, whose controls are not ours.
    for component in parent.split('/').filter(|c| !c.is_empty()) {
        dir.push(component);
        create_dir_if_missing(&dir)?;
        let control = dir.join("cgroup.subtree_control");
        let enabled = std::fs::read_to_string(&control).unwrap_or_default();
        for controller in needed
            .iter()
            .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        {
            // Failure here is diagnosed by check_delegation, with the reason.
            let _ = std::fs::write(&control, format!("+{controller}"));
        }
    }
    create_dir_if_missing(&dir.join(id))
}

fn create_dir_if_missing(dir: &Path) -> Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != ErrorKind::AlreadyExists => Err(Error::Cgroup {
            path: dir.display().to_string(),
            action: "create".into(),
            cause: e.to_string(),
        }),
        _ => Ok(()),
    }
}

/// Freezes every task of the cgroup whose directories are `dirs` (or thaws
/// them) and waits until the kernel reports it done: v1's freezer passes
/// through FREEZING while tasks are still being stopped, v2 says
/// `frozen 1` in `cgroup.events` once all are.
pub fn set_frozen(dirs: &[PathBuf], frozen: bool) -> Result<()> {
    let mode = Mode::detect()?;
    let (file, value, done_file, done): (PathBuf, &str, PathBuf, &str) = if mode.is_v2() {
        let dir = dirs.first().ok_or_else(|| no_freezer(dirs))?;
        let value = if frozen { "1" } else { "0" };
        let done = if frozen { "frozen 1" } else { "frozen 0" };
        (
            dir.join("cgroup.freeze"),
            value,
            dir.join("cgroup.events"),
            done,
        )
    } else {
        let dir = freezer_dir(dirs).ok_or_else(|| no_freezer(dirs))?;
        let state = if frozen { "FROZEN" } else { "THAWED" };
        (
            dir.join("freezer.state"),
            state,
            dir.join("freezer.state"),
            state,
        )
    };
    let start = std::time::Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        std::fs::write(&file, value).map_err(|e| Error::Cgroup {
            path: file.display().to_string(),
            action: format!("write {value}"),
            cause: e.to_string(),
        })?;
        let now = std::fs::read_to_string(&done_file).unwrap_or_default();
        if now.lines().any(|line| line.trim() == done) {
            return Ok(());
        }
        if start.elapsed() > REMOVE_PATIENCE {
            return Err(Error::Cgroup {
                path: file.display().to_string(),
                action: format!("wait for {done:?}"),
                cause: format!("the kernel still reports {:?}", now.trim()),
            });
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// Whether the cgroup whose directories are `dirs` is frozen now.
pub fn is_frozen(dirs: &[PathBuf]) -> bool {
    let v2 = Mode::detect().is_ok_and(|m| m.is_v2());
    if v2 {
        return dirs.first().is_some_and(|d| {
            std::fs::read_to_string(d.join("cgroup.events"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "frozen 1"))
        });
    }
    freezer_dir(dirs).is_some_and(|d| {
        std::fs::read_to_string(d.join("freezer.state")).is_ok_and(|t| t.trim() != "THAWED")
    })
}

fn freezer_dir(dirs: &[PathBuf]) -> Option<PathBuf> {
    controller_dir(Mode::Legacy, dirs, "freezer")
}

fn no_freezer(dirs: &[PathBuf]) -> Error {
    Error::Cgroup {
        path: dirs
            .first()
            .map(|d| d.display().to_string())
            .unwrap_or_default(),
        action: "pause".into(),
        cause: "the container has no freezer cgroup (it was not created pausable)".into(),
    }
}

/// Removes ancestors a container's creation made (deepest first), each
/// only if empty: another container made below them meanwhile keeps them.
pub fn remove_made_parents(parents: &[PathBuf]) {
    for dir in parents {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Kills what is left in, and removes, cgroup directories the runtime
/// recorded for a container whose own teardown never ran (its monitor was
/// killed). Only directories below the runtime's parent are ever passed here.
pub fn remove_recorded(dirs: &[PathBuf]) -> Result<()> {
    remove_dirs(dirs, Mode::detect()?, true)
}

/// The cgroup directories named `id` in every hierarchy, at most five
/// levels below the cgroup root (the hierarchy on v1, a `--cgroup-parent`
/// of up to three, then the container):
/// how a container whose record is lost is found. A container's id is 64
/// random hex digits, so a directory of that name is the runtime's own.
pub fn named(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: usize, found: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            // Directories only, never the `cpu -> cpu,cpuacct` links.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            if entry.file_name() == id {
                found.push(path);
            } else if depth > 1 {
                walk(&path, id, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        walk(Path::new(CGROUP_ROOT), id, 5, &mut found);
    }
    found
}

/// Removes a container's cgroup directories, then the default parent of
/// each where it has no other container left.
fn remove_dirs(dirs: &[PathBuf], mode: Mode, kill: bool) -> Result<()> {
    let mut first_error = None;
    for dir in dirs {
        match remove_cgroup_dir(dir, mode, kill) {
            Ok(()) => release_default_parent(dir),
            Err(e) => drop(first_error.get_or_insert(e)),
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Removes `leaf`'s parent if it is the default parent, directly in a
/// hierarchy, and empty. Another container's cgroup inside it makes the
/// kernel refuse (EBUSY), which is the point: the last one out removes it.
/// A container created meanwhile finds it gone and makes it again
/// ([`ContainerCgroup::create`] retries).
fn release_default_parent(leaf: &Path) {
    let Some(parent) = leaf.parent() else {
        return;
    };
    let in_a_hierarchy = parent
        .parent()
        .is_some_and(|h| h == Path::new(CGROUP_ROOT) || h.parent() == Some(Path::new(CGROUP_ROOT)));
    if in_a_hierarchy && parent.file_name() == Some(spec::DEFAULT_CGROUP_PARENT.as_ref()) {
        let _ = std::fs::remove_dir(parent);
    }
}

/// Whether `parent` is missing from a hierarchy the runtime uses.
fn parent_missing(mode: Mode, parent: &str) -> bool {
    let root = Path::new(CGROUP_ROOT);
    if mode.is_v2() {
        return !root.join(parent).is_dir();
    }
    V1_CONTROLLERS
        .iter()
        .map(|c| root.join(c))
        .filter(|h| h.is_dir())
        .any(|h| !h.join(parent).is_dir())
}

/// Whether we may create cgroups under `parent` in every hierarchy the
/// runtime uses: true for root, and for a user the host delegated them to.
pub fn delegated(mode: Mode, parent: &str) -> bool {
    let root = Path::new(CGROUP_ROOT);
    let hierarchies: Vec<PathBuf> = if mode.is_v2() {
        vec![root.to_owned()]
    } else {
        V1_CONTROLLERS
            .iter()
            .map(|c| root.join(c))
            .filter(|h| h.is_dir())
            .collect()
    };
    hierarchies.iter().all(|h| {
        // The nearest existing directory on the way to the parent decides.
        let wanted = h.join(parent);
        let existing = wanted.ancestors().find(|d| d.is_dir()).unwrap_or(h);
        nix::unistd::access(existing, nix::unistd::AccessFlags::W_OK).is_ok()
    })
}

/// For a container that must run without a cgroup: fails, naming every
/// limit asked for, since none of them could be applied.
pub fn refuse_undelegated(mode: Mode, limits: &Limits) -> Result<()> {
    let flags: Vec<&str> = needed_controllers(limits)
        .into_iter()
        .map(|(flag, _)| flag)
        .collect();
    if flags.is_empty() {
        return Ok(());
    }
    Err(Error::Privilege(format!(
        "cannot apply {}: uid {} may not create cgroups here ({mode}, nothing delegated to it); run as root, delegate a cgroup, or drop the limits",
        flags.join(", "),
        nix::unistd::geteuid()
    )))
}

/// Where a cgroup parent would be in each hierarchy: below the cgroup root
/// itself (v2) and below each directory in it (the v1 controllers), whether
/// or not it exists there.
pub fn parent_dirs(parent: &str) -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    let hierarchies = std::fs::read_dir(root)
        .map(|d| d.filter_map(|e| Some(e.ok()?.path())).collect::<Vec<_>>())
        .unwrap_or_default();
    std::iter::once(root.to_owned())
        .chain(hierarchies)
        .map(|h| h.join(parent))
        .collect()
}

/// Removes a cgroup parent the runtime created for a caller's containers
/// (benchmarks and probes pick their own), in every hierarchy that has it.
/// Refuses while containers' cgroups are still below it.
pub fn remove_parent(parent: &str) -> Result<()> {
    let mode = Mode::detect()?;
    let mut first_error = None;
    for dir in parent_dirs(parent).into_iter().filter(|d| d.is_dir()) {
        let busy = std::fs::read_dir(&dir)
            .is_ok_and(|entries| entries.filter_map(|e| e.ok()).any(|e| e.path().is_dir()));
        let removed = if busy {
            Err(Error::Cgroup {
                path: dir.display().to_string(),
                action: "remove the cgroup parent".into(),
                cause: "containers' cgroups are still below it".into(),
            })
        } else {
            remove_cgroup_dir(&dir, mode, true)
        };
        if let Err(e) = removed {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The controllers that `limits` needs, with the flag that asked for each.
fn needed_controllers(limits: &Limits) -> Vec<(&'static str, &'static str)> {
    let mut needed = Vec::new();
    if limits.memory.is_some() {
        needed.push(("--memory", "memory"));
    }
    if limits.cpus.is_some() {
        needed.push(("--cpus", "cpu"));
    }
    if limits.cpu_shares.is_some() {
        needed.push(("--cpu-shares", "cpu"));
    }
    if limits.cpuset_cpus.is_some() {
        needed.push(("--cpuset-cpus", "cpuset"));
    }
    if limits.cpuset_mems.is_some() {
        needed.push(("--cpuset-mems", "cpuset"));
    }
    if limits.pids.is_some() {
        needed.push(("--pids-limit", "pids"));
    }
    if limits.cpu_quota.is_some() || limits.cpu_period.is_some() {
        needed.push(("linux.resources.cpu", "cpu"));
    }
    // On v2 device access is an eBPF program, which mydocker does not
    // attach yet: the controller is reported missing there.
    if !limits.devices.is_empty() {
        needed.push((
            "device rules (--device, linux.resources.devices)",
            "devices",
        ));
    }
    needed
}

/// Empties one cgroup directory and removes it, retrying while the kernel still
/// counts dying tasks in it. A directory that is already gone is success.
///
/// A killed task leaves its cgroup only once it has exited, which takes
/// microseconds on an idle machine and seconds on a loaded or emulated one;
/// giving up early would leave the cgroup behind, so the retries last
/// [`REMOVE_PATIENCE`].
fn remove_cgroup_dir(dir: &Path, mode: Mode, kill: bool) -> Result<()> {
    let start = std::time::Instant::now();
    let mut delay = Duration::from_millis(1);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < REMOVE_PATIENCE =>
            {
                if kill {
                    kill_members(dir, mode);
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(200));
            }
            Err(e) => {
                return Err(Error::Cgroup {
                    path: dir.display().to_string(),
                    action: "remove".into(),
                    cause: e.to_string(),
                })
            }
        }
    }
}

/// How long removing a cgroup waits for its killed tasks to exit.
const REMOVE_PATIENCE: Duration = Duration::from_secs(10);

/// Sends SIGKILL to every process still in the cgroup: `cgroup.kill` where the
/// kernel has it (v2, 5.14+), else one by one from `cgroup.procs`.
fn kill_members(dir: &Path, mode: Mode) {
    if mode.is_v2() && std::fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}
