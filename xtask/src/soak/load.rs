//! The load a soak runs under: Debian's `stress-ng` in the caller's cgroup,
//! and CPU hogs in sibling cgroups of the probes' own parent.
//!
//! CFS shares the CPU between cgroups first and between tasks second, so a
//! hog beside the caller barely slows a probe container that sits in a
//! cgroup tree of its own. Hogs in cgroups at the level of the probes'
//! parent (`/mydocker-probe`) compete with it directly.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where stress-ng lives once its Debian package is installed.
pub const STRESS_NG: &str = "/usr/bin/stress-ng";

/// Prefix of the sibling cgroups the soak creates, `mydocker-soak-<pid>-hog-<n>`:
/// a later soak removes those whose soak is gone, and only those.
const HOG_PREFIX: &str = "mydocker-soak-";

/// What load to apply.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// `stress-ng --cpu N` workers in the caller's own cgroup.
    pub cpu_workers: u32,
    /// Sibling cgroups of the probes' parent, each with one spinning worker.
    pub sibling_hogs: u32,
    /// stress-ng ends by itself after this long, even if the soak is killed.
    pub at_most: Duration,
}

/// The running load; dropping it stops every process and removes every
/// cgroup it made.
pub struct Load {
    children: Vec<Child>,
    cgroups: Vec<PathBuf>,
}

impl Load {
    /// Starts the load described by `plan`.
    pub fn start(plan: Plan) -> Result<Load, String> {
        remove_stale_hogs();
        let mut load = Load {
            children: Vec::new(),
            cgroups: Vec::new(),
        };
        let me = std::process::id();
        if plan.cpu_workers > 0 {
            load.children
                .push(stress(plan.cpu_workers, plan.at_most, None)?);
        }
        for n in 0..plan.sibling_hogs {
            let dir = cpu_hierarchy().join(format!("{HOG_PREFIX}{me}-hog-{n}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("create the hog cgroup {}: {e}", dir.display()))?;
            load.cgroups.push(dir.clone());
            load.children.push(stress(1, plan.at_most, Some(&dir))?);
        }
        interrupt::arm(
            load.children.iter().map(|c| c.id() as i32).collect(),
            &load.cgroups,
        );
        Ok(load)
    }

    /// One line for reports: what was running beside the soak.
    pub fn describe(plan: &Plan) -> String {
        format!(
            "stress-ng --cpu {} in the caller's cgroup, and {} sibling cgroup(s) of the probes' parent with one stress-ng CPU worker each",
            plan.cpu_workers, plan.sibling_hogs
        )
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        for child in &mut self.children {
            // SIGTERM lets stress-ng stop its workers; SIGKILL after a grace.
            // SAFETY: signalling a child we started and have not reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        }
        for child in &mut self.children {
            for _ in 0..50 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        for dir in &self.cgroups {
            remove_hog(dir);
        }
    }
}

/// The hierarchy holding the CPU controller: the unified root on v2, the
/// `cpu` hierarchy on v1 and hybrid hosts.
fn cpu_hierarchy() -> PathBuf {
    let root = Path::new(runtime::cgroup::CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        root.to_owned()
    } else {
        root.join("cpu")
    }
}

/// Starts `stress-ng --cpu workers`, in `cgroup` when given. The process
/// joins the cgroup itself between fork and exec (writing 0 to
/// `cgroup.procs` moves the writer), so its workers are born there. A
/// parent-death signal takes it down with a killed soak.
fn stress(workers: u32, at_most: Duration, cgroup: Option<&Path>) -> Result<Child, String> {
    let mut command = Command::new(STRESS_NG);
    command
        .args(["--cpu", &workers.to_string(), "--timeout"])
        .arg(format!("{}s", at_most.as_secs().max(1)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let parent = std::process::id() as libc::pid_t;
    let procs = match cgroup {
        Some(dir) => Some(
            std::ffi::CString::new(dir.join("cgroup.procs").as_os_str().as_encoded_bytes())
                .map_err(|_| format!("{} holds a NUL byte", dir.display()))?,
        ),
        None => None,
    };
    // SAFETY: between fork and exec the closure makes only async-signal-safe
    // system calls (prctl, open, write, close) on memory prepared before.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The soak may have died before the death signal was armed.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            if let Some(procs) = &procs {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let written = libc::write(fd, b"0".as_ptr().cast(), 1);
                libc::close(fd);
                if written != 1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command
        .spawn()
        .map_err(|e| format!("start {STRESS_NG} --cpu {workers}: {e}"))
}

/// Hog cgroups a killed soak left (its pid is gone): whatever runs in them
/// is ended, and they are removed.
fn remove_stale_hogs() {
    let Ok(entries) = std::fs::read_dir(cpu_hierarchy()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let owner = name
            .strip_prefix(HOG_PREFIX)
            .and_then(|rest| rest.split_once("-hog-"))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if owner.is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            remove_hog(&entry.path());
        }
    }
}

/// Cleanup when the soak is interrupted (SIGINT, SIGTERM, SIGHUP): the
/// handler stops stress-ng and removes the hog cgroups with
/// async-signal-safe calls only, then dies of the same signal.
mod interrupt {
    use std::ffi::CString;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::sync::OnceLock;

    static PIDS: [AtomicI32; 8] = [const { AtomicI32::new(0) }; 8];
    static CGROUPS: OnceLock<Vec<CString>> = OnceLock::new();

    /// Records what to stop and remove, and installs the handler.
    pub fn arm(pids: Vec<i32>, cgroups: &[PathBuf]) {
        for (slot, pid) in PIDS.iter().zip(pids) {
            slot.store(pid, Ordering::SeqCst);
        }
        let _ = CGROUPS.set(
            cgroups
                .iter()
                .filter_map(|d| CString::new(d.as_os_str().as_encoded_bytes()).ok())
                .collect(),
        );
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            // SAFETY: the handler below makes only async-signal-safe calls.
            unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
        }
    }

    extern "C" fn on_signal(signal: libc::c_int) {
        // SAFETY: kill, rmdir, nanosleep, signal and raise are
        // async-signal-safe; nothing here allocates or takes a lock.
        unsafe {
            for pid in &PIDS {
                let pid = pid.load(Ordering::SeqCst);
                if pid > 0 {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            if let Some(dirs) = CGROUPS.get() {
                let pause = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 50_000_000,
                };
                for _ in 0..100 {
                    let mut left = false;
                    for dir in dirs {
                        if libc::rmdir(dir.as_ptr()) != 0
                            && *libc::__errno_location() != libc::ENOENT
                        {
                            left = true;
                        }
                    }
                    if !left {
                        break;
                    }
                    libc::nanosleep(&pause, std::ptr::null_mut());
                }
            }
            libc::signal(signal, libc::SIG_DFL);
            libc::raise(signal);
        }
    }
}

/// Kills what is left in a hog cgroup and removes it (the runtime's own
/// removal, which waits for killed tasks to leave).
fn remove_hog(dir: &Path) {
    if let Err(e) = runtime::cgroup::remove_recorded(&[dir.to_owned()]) {
        eprintln!(
            "xtask: could not remove the hog cgroup {}: {e}",
            dir.display()
        );
    }
}
