//! # `pid.pidfd`: a pidfd names one process, never a later one with its pid
//!
//! **The feature.** A pid is a number the kernel hands out again once its
//! process has been reaped, so `kill(pid)` from anyone but the parent races
//! with reuse: the process meant may be gone and the number someone else's.
//! A pidfd (Linux 5.3: `pidfd_open`, `pidfd_send_signal` from 5.1, also
//! `CLONE_PIDFD`) is a file descriptor that refers to the process itself
//! (its `struct pid`), not to the number. It becomes readable in `poll` when
//! the process exits, and once the process is gone `pidfd_send_signal`
//! fails with ESRCH: it can never reach a newcomer that got the same pid.
//! Later kernels made pidfds richer: from 6.9 they live in a filesystem of
//! their own, pidfs (`fstatfs` gives magic `0x50494446`; before, an
//! anonymous inode), and 6.13 added the `PIDFD_GET_INFO` ioctl (pid,
//! credentials, cgroup id; ENOTTY or EINVAL before). This probe reports both.
//!
//! **Where.** Inside the container, because proving the property needs a pid
//! reused on purpose, and that must happen in a PID namespace the probe
//! owns: on the host it would mean steering the shared machine's pid
//! allocator, where other processes take pids at any moment. Inside, the
//! helper is init and the only one forking. It gets CAP_SYS_ADMIN (as
//! `--cap-add SYS_ADMIN`) in the user namespace that owns the container's
//! PID namespace (here the host's: the container shares it), so `clone3`
//! may choose the new child's pid (`set_tid`, Linux 5.5).
//!
//! **How the probe looks.** The helper blocks SIGUSR1, so that a signal
//! sent to its children stays pending where `/proc/<pid>/status` (`ShdPnd`)
//! shows it; a pending bit is set by the sending call itself, so no wait is
//! involved. It forks child A, opens a pidfd for it, reports the pidfd's
//! filesystem and what `PIDFD_GET_INFO` gives, then:
//!
//! 1. `pidfd_send_signal(SIGUSR1)` reaches the live A (pending in its
//!    `ShdPnd`); the pidfd is not readable yet;
//! 2. `pidfd_send_signal(SIGKILL)`; the pidfd becomes readable (waited for
//!    up to 10 s) and A is reaped, which frees its pid N;
//! 3. `clone3` with `set_tid = [N]` makes child B with the same pid N;
//! 4. `pidfd_send_signal(SIGUSR1)` through A's old pidfd must give ESRCH,
//!    and B must have nothing pending.
//!
//! **The control.** `kill(N, SIGUSR1)`, the number alone, reaches B: SIGUSR1
//! shows pending in B's `ShdPnd`. That is the race a pidfd closes. (The
//! helper is B's parent and has not reaped it, so N cannot change hands
//! under this control.)
//!
//! **Verdict.** Pass when the live A got the signal, its pidfd became
//! readable at its exit, and after reuse the old pidfd gave ESRCH and left B
//! untouched while `kill(N)` reached B. FAIL when the old pidfd signalled B
//! or did not refuse. Inconclusive when the exit did not show within the
//! wait. Unsupported when `pidfd_open` gives ENOSYS (before 5.3; every
//! Debian kernel from 5.10 has it). pidfs (✗ on 5.10 and 6.1) and
//! `PIDFD_GET_INFO` (✓ from 6.13: ENOTTY on 5.10 and 6.1, EINVAL on 6.12)
//! are evidence, not the verdict.
//!
//! **No mutation.** The runtime does not use pidfds (it names its container
//! by pid, as the parent that reaps it), and this property is the kernel's
//! alone: no spec change can make a stale pidfd reach another process.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::inside::{errno_name, errno_of_rc, shown, Errno};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "pid.pidfd",
    property: "a pidfd signals only its own process: after that process is reaped, it refuses (ESRCH) rather than reach a newcomer with the same pid",
    needs: Needs {
        since: Some((5, 3)),
        ..Needs::config(&["PID_NS"])
    },
    mutations: &[],
    why_no_mutation: Some(
        "the runtime does not use pidfds, and no spec change can make an old pidfd signal another process: the guarantee is the kernel's alone",
    ),
    selftests: &["pidfd/*"],
    run,
    inside,
};

/// `statfs.f_type` of pidfs (Linux 6.9), "PIDF".
const PIDFS_MAGIC: i64 = 0x5049_4446;
/// `statfs.f_type` of the anonymous inodes pidfds were before pidfs.
const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;
/// How long the helper waits for the killed child's pidfd to turn readable.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// The helper's report.
#[derive(Debug, Serialize, Deserialize)]
enum Pidfds {
    /// `pidfd_open` failed: the kernel's errno.
    Absent(String),
    /// What the pidfds did.
    Seen(Seen),
}

/// What the helper saw of A's pidfd, before and after A's pid went to B.
#[derive(Debug, Serialize, Deserialize)]
struct Seen {
    /// The pid A and then B had.
    pid: i32,
    /// `fstatfs(pidfd).f_type`.
    fs_magic: i64,
    /// `PIDFD_GET_INFO`: the pid and cgroup id it gave, or the errno.
    info: Result<(u32, Option<u64>), String>,
    /// Readable in `poll` while A lived.
    readable_alive: bool,
    /// `pidfd_send_signal(SIGUSR1)` to the live A.
    live_signal: Errno,
    /// SIGUSR1 pending in A's `ShdPnd` afterwards.
    live_pending: bool,
    /// Readable once A was killed, within [`EXIT_WAIT`]; false when that
    /// wait ran out.
    readable_dead: bool,
    /// B's pid: N when the reuse worked.
    newcomer: i32,
    /// `pidfd_send_signal(SIGUSR1)` through A's pidfd, B holding the pid.
    stale_signal: Errno,
    /// SIGUSR1 pending in B's `ShdPnd` afterwards.
    newcomer_pending_after_stale: bool,
    /// `kill(N, SIGUSR1)`: the control.
    kill_by_pid: Errno,
    /// SIGUSR1 pending in B's `ShdPnd` after the control.
    newcomer_pending_after_kill: bool,
}

/// Host half: one container (with CAP_SYS_ADMIN in its user namespace, for
/// `set_tid`) reports what A's pidfd did before and after A's pid went to B.
fn run(lab: &Lab) -> Result<Finding, LabError> {
    let seen = match lab.report::<Pidfds>(lab.admin_spec(&()), Role::Isolated)? {
        Pidfds::Seen(seen) => seen,
        Pidfds::Absent(errno) if errno == "ENOSYS" => {
            return Err(LabError::Unsupported(
                "pidfd_open: ENOSYS: the kernel has no pidfds (Linux 5.3)".into(),
            ))
        }
        Pidfds::Absent(errno) => {
            return Err(LabError::broken(format!(
                "pidfd_open of a live child gave {errno}"
            )))
        }
    };
    if seen.newcomer != seen.pid {
        return Err(LabError::broken(format!(
            "clone3 with set_tid [{}] gave pid {}",
            seen.pid, seen.newcomer
        )));
    }
    let stale_refused = seen.stale_signal == Err("ESRCH".into());
    let property = if !seen.readable_dead {
        Property::Unclear(format!(
            "the killed child's pidfd did not turn readable within {EXIT_WAIT:?}: the machine may be too slow to tell"
        ))
    } else {
        Property::held_if(
            seen.live_signal.is_ok()
                && seen.live_pending
                && !seen.readable_alive
                && stale_refused
                && !seen.newcomer_pending_after_stale,
            if seen.newcomer_pending_after_stale {
                format!(
                    "the old pidfd's signal reached the newcomer holding pid {}",
                    seen.pid
                )
            } else {
                format!(
                    "live child: pidfd_send_signal {} (pending {}), readable {}; after reaping and reuse of its pid: pidfd_send_signal {}",
                    shown(&seen.live_signal),
                    seen.live_pending,
                    seen.readable_alive,
                    shown(&seen.stale_signal)
                )
            },
        )
    };
    Ok(Judgement {
        evidence: evidence![
            "pidfd's filesystem" => filesystem(seen.fs_magic),
            "PIDFD_GET_INFO" => match &seen.info {
                Ok((pid, Some(cgroup))) => format!("pid {pid}, cgroup id {cgroup}"),
                Ok((pid, None)) => format!("pid {pid}, no cgroup id"),
                Err(e) => e.clone(),
            },
            "child pid" => seen.pid,
            "readable while alive" => seen.readable_alive,
            "pidfd_send_signal(SIGUSR1) to the live child" => shown(&seen.live_signal),
            "SIGUSR1 pending in the live child" => seen.live_pending,
            "readable once killed" => if seen.readable_dead { "yes".to_owned() } else { format!("not within {EXIT_WAIT:?}") },
            "newcomer's pid after reaping" => seen.newcomer,
            "pidfd_send_signal(SIGUSR1) through the old pidfd" => shown(&seen.stale_signal),
            "SIGUSR1 pending in the newcomer" => seen.newcomer_pending_after_stale,
        ],
        control: evidence![
            format!("kill({}, SIGUSR1)", seen.pid) => shown(&seen.kill_by_pid),
            "SIGUSR1 pending in the newcomer after kill" => seen.newcomer_pending_after_kill,
        ],
        control_separated: seen.kill_by_pid.is_ok() && seen.newcomer_pending_after_kill,
        property,
    }
    .finding())
}

/// A pidfd's filesystem by its magic number.
fn filesystem(magic: i64) -> String {
    match magic {
        PIDFS_MAGIC => "pidfs (0x50494446)".into(),
        ANON_INODE_FS_MAGIC => "anonymous inode (0x09041934): no pidfs".into(),
        other => format!("unknown ({other:#x})"),
    }
}

/// Inside: A's pidfd alive, killed and reaped; B in A's pid; the old pidfd
/// and the bare pid tried on B.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    // Children inherit the blocked SIGUSR1, which keeps it pending for /proc.
    let mut usr1 = nix::sys::signal::SigSet::empty();
    usr1.add(nix::sys::signal::Signal::SIGUSR1);
    usr1.thread_block().context("block SIGUSR1")?;

    let first = Child::fork()?;
    // SAFETY: pidfd_open takes a pid and flags.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, first.pid, 0) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        return helper.say(&Pidfds::Absent(errno_name(&e)));
    }
    // SAFETY: the kernel just gave us this descriptor.
    let pidfd = unsafe { OwnedFd::from_raw_fd(rc as i32) };
    let fs_magic = fs_magic(&pidfd)?;
    let info = info(&pidfd);
    let readable_alive = crate::inside::readable_within(pidfd.as_fd(), Duration::ZERO, "a pidfd")?;
    let live_signal = signal_through(&pidfd, libc::SIGUSR1);
    let live_pending = sigusr1_pending(first.pid)?;
    signal_through(&pidfd, libc::SIGKILL)
        .map_err(|e| anyhow::anyhow!("pidfd_send_signal SIGKILL: {e}"))?;
    let readable_dead = crate::inside::readable_within(pidfd.as_fd(), EXIT_WAIT, "a pidfd")?;
    let pid = first.pid;
    first.reap()?;

    let second = Child::clone_with_pid(pid)?;
    let stale_signal = signal_through(&pidfd, libc::SIGUSR1);
    let newcomer_pending_after_stale = sigusr1_pending(second.pid)?;
    let kill_by_pid = crate::inside::errno(
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(second.pid),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .map_err(std::io::Error::from),
    );
    let newcomer_pending_after_kill = sigusr1_pending(second.pid)?;
    let newcomer = second.pid;
    drop(second);

    helper.say(&Pidfds::Seen(Seen {
        pid,
        fs_magic,
        info,
        readable_alive,
        live_signal,
        live_pending,
        readable_dead,
        newcomer,
        stale_signal,
        newcomer_pending_after_stale,
        kill_by_pid,
        newcomer_pending_after_kill,
    }))
}

/// A child of the helper that waits in `pause()` until killed; dropping it
/// kills and reaps it, so no path leaves it behind.
struct Child {
    pid: i32,
    reaped: bool,
}

impl Child {
    /// Forks a child that pauses forever.
    fn fork() -> anyhow::Result<Child> {
        // SAFETY: the child only calls async-signal-safe pause().
        match unsafe { libc::fork() } {
            0 => Child::pause_forever(),
            -1 => Err(std::io::Error::last_os_error()).context("fork"),
            pid => Ok(Child { pid, reaped: false }),
        }
    }

    /// Makes a child with exactly `pid` in our PID namespace (`clone3`'s
    /// `set_tid`, which takes CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE over
    /// the namespace).
    fn clone_with_pid(pid: i32) -> anyhow::Result<Child> {
        let wanted: [libc::pid_t; 1] = [pid];
        // SAFETY: clone_args is plain integers; all zero is "no such field".
        let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
        args.exit_signal = libc::SIGCHLD as u64;
        args.set_tid = wanted.as_ptr() as u64;
        args.set_tid_size = 1;
        // SAFETY: without CLONE_VM and with no stack, clone3 is a fork; the
        // child only calls async-signal-safe pause().
        let rc = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &args as *const libc::clone_args,
                std::mem::size_of::<libc::clone_args>(),
            )
        };
        match rc {
            0 => Child::pause_forever(),
            -1 => Err(std::io::Error::last_os_error())
                .with_context(|| format!("clone3 with set_tid [{pid}], to reuse the pid")),
            child => Ok(Child {
                pid: child as i32,
                reaped: false,
            }),
        }
    }

    /// The child's whole life.
    fn pause_forever() -> ! {
        loop {
            // SAFETY: pause takes nothing.
            unsafe { libc::pause() };
        }
    }

    /// Waits for the (killed) child and collects it, freeing its pid.
    fn reap(mut self) -> anyhow::Result<()> {
        self.reaped = true;
        nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None)
            .with_context(|| format!("reap child {}", self.pid))?;
        Ok(())
    }
}

impl Drop for Child {
    /// Our own unreaped child keeps its pid, so killing it by pid is safe.
    fn drop(&mut self) {
        if !self.reaped {
            let pid = nix::unistd::Pid::from_raw(self.pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)`.
fn signal_through(pidfd: &OwnedFd, signal: libc::c_int) -> Errno {
    // SAFETY: a null siginfo makes the kernel fill in a kill()-like one.
    errno_of_rc(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })
}

/// `fstatfs(pidfd).f_type`: which filesystem the kernel keeps pidfds in.
fn fs_magic(pidfd: &OwnedFd) -> anyhow::Result<i64> {
    // SAFETY: all zeroes is a valid statfs; the kernel fills it in.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one statfs.
    let rc = unsafe { libc::fstatfs(pidfd.as_raw_fd(), &mut stat) };
    errno_of_rc(rc.into()).map_err(|e| anyhow::anyhow!("fstatfs on a pidfd: {e}"))?;
    Ok(stat.f_type)
}

/// `PIDFD_GET_INFO`, asking for the pid and the cgroup id: the pid, and the
/// cgroup id if the kernel gave one; or the errno.
fn info(pidfd: &OwnedFd) -> Result<(u32, Option<u64>), String> {
    // SAFETY: all zeroes is a valid pidfd_info.
    let mut info: libc::pidfd_info = unsafe { std::mem::zeroed() };
    info.mask = u64::from(libc::PIDFD_INFO_PID | libc::PIDFD_INFO_CGROUPID);
    // SAFETY: the kernel reads the mask and writes at most one pidfd_info.
    let rc = unsafe { libc::ioctl(pidfd.as_raw_fd(), libc::PIDFD_GET_INFO, &mut info) };
    errno_of_rc(rc.into())?;
    let cgroup = (info.mask & u64::from(libc::PIDFD_INFO_CGROUPID) != 0).then_some(info.cgroupid);
    Ok((info.pid, cgroup))
}

/// Whether SIGUSR1 is pending for process `pid` (its `ShdPnd`, where
/// process-directed signals wait).
fn sigusr1_pending(pid: i32) -> anyhow::Result<bool> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("ShdPnd:"))
        .with_context(|| format!("no ShdPnd in {path}"))?;
    let mask = u64::from_str_radix(mask.trim(), 16).with_context(|| format!("ShdPnd {mask:?}"))?;
    Ok(mask & (1 << (libc::SIGUSR1 - 1)) != 0)
}
