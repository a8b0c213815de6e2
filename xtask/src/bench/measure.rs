//! Timing starts: spawn, then `wait4` for the exit status and the peak RSS, alone, in a row or all at once.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A run that ended, whatever its status.
pub struct Finished {
    /// From spawn until `wait4` returned.
    pub millis: f64,
    /// `ru_maxrss` of the waited-for child: the largest resident set among it
    /// and the descendants it reaped, so the largest process, not a sum.
    pub peak_rss_kib: u64,
    pub status: ExitStatus,
    pub stderr: String,
}

/// Seconds after which a start counts as hung and is killed: every peer
/// here starts in well under a second, and a runtime that misses its
/// child's exit would otherwise stop the bench for good (youki 0.7 did,
/// once in a few hundred starts on this project's machine).
const HANG_LIMIT: u32 = 20;

/// Waits until the child `pid` has exited (not reaping it) or `limit`
/// seconds have passed; false on the timeout. A pidfd polls readable at the
/// exit: three system calls per start, the same for every runtime, and no
/// signal or thread. Where pidfds are missing (before Linux 5.3) it waits
/// without a limit.
fn exited_within(pid: libc::pid_t, limit: u32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a descriptor we own.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as libc::c_int;
    if pidfd < 0 {
        return true;
    }
    let mut watch = libc::pollfd {
        fd: pidfd,
        events: libc::POLLIN,
        revents: 0,
    };
    let exited = loop {
        // SAFETY: one pollfd we own.
        match unsafe { libc::poll(&mut watch, 1, (limit * 1000) as libc::c_int) } {
            0 => break false,
            n if n < 0
                && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
            _ => break true,
        }
    };
    // SAFETY: closing the descriptor opened above.
    unsafe { libc::close(pidfd) };
    exited
}

/// Runs `command` once and times it, leaving the judgement of its status to the caller.
pub fn run_once(command: &mut Command) -> Result<Finished, String> {
    run_within(command, HANG_LIMIT)
}

/// [`run_once`], killing the run if it has not ended after `limit` seconds.
fn run_within(command: &mut Command, limit: u32) -> Result<Finished, String> {
    let started = Instant::now();
    let mut child = spawn(command)?;
    reap(&mut child, started, limit)
}

/// Milliseconds of one start; any status but 0 is an error naming `who`, the command and its stderr.
pub fn start(who: &str, command: &mut Command) -> Result<f64, String> {
    let finished = run_once(command)?;
    succeeded(who, command, &finished)?;
    Ok(finished.millis)
}

/// The peak RSS of one start, in KiB, from a child made by a real fork.
///
/// `exec` carries the old address space's peak into `ru_maxrss`. std spawns
/// with `posix_spawn`, whose vfork child shares all of xtask's memory, so
/// every start would read as big as xtask. A forked child holds only copies
/// of xtask's anonymous pages: a lower floor, which the fork+exec row shows.
/// The extra cost of the fork is why latency is measured apart.
pub fn peak_rss(who: &str, command: &mut Command) -> Result<u64, String> {
    // SAFETY: the hook does nothing, so it is async-signal-safe; its mere
    // presence makes std fork instead of calling posix_spawn.
    unsafe { command.pre_exec(|| Ok(())) };
    let finished = run_once(command)?;
    succeeded(who, command, &finished)?;
    Ok(finished.peak_rss_kib)
}

/// Wall time of `count` starts, one after another.
pub fn sequential(
    who: &str,
    count: u32,
    mut make: impl FnMut() -> Command,
) -> Result<Duration, String> {
    let started = Instant::now();
    for _ in 0..count {
        start(who, &mut make())?;
    }
    Ok(started.elapsed())
}

/// Wall time from spawning `count` starts at once until the last one is reaped.
/// No threads: the children run side by side and are reaped in spawn order.
pub fn concurrent(
    who: &str,
    count: u32,
    mut make: impl FnMut() -> Command,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut running = Vec::new();
    let mut first_error = None;
    for _ in 0..count {
        let mut command = make();
        match spawn(&mut command) {
            Ok(child) => running.push((command, child)),
            Err(e) => {
                first_error = Some(e);
                break;
            }
        }
    }
    // Every child that started is reaped, even after an error, so none is left behind.
    for (command, mut child) in running {
        let result =
            reap(&mut child, started, HANG_LIMIT).and_then(|f| succeeded(who, &command, &f));
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    let elapsed = started.elapsed();
    first_error.map_or(Ok(elapsed), Err)
}

/// The command as one would type it (without shell quoting).
pub fn show(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|s| s.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

fn succeeded(who: &str, command: &Command, finished: &Finished) -> Result<(), String> {
    if finished.status.success() {
        return Ok(());
    }
    Err(format!(
        "{who} failed ({}): `{}`\nits stderr: {}",
        finished.status,
        show(command),
        finished.stderr.trim()
    ))
}

fn spawn(command: &mut Command) -> Result<Child, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", show(command)))
}

/// Reaps `child` with `wait4`: std's `wait` would throw the rusage away.
///
/// stderr is read after the exit, which is safe for the few lines a failed
/// start prints (far below a pipe's 64 KiB).
fn reap(child: &mut Child, started: Instant, limit: u32) -> Result<Finished, String> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain old data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let hung = !exited_within(pid, limit);
    if hung {
        // Ours and not yet reaped, so the pid is still this child's.
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // SAFETY: pid is our own unreaped child; both pointers are valid for writes.
    while unsafe { libc::wait4(pid, &mut status, 0, &mut usage) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4 for pid {pid}: {e}"));
        }
    }
    if hung {
        return Err(format!(
            "pid {pid} had not exited after {limit} s: it hung, and was killed"
        ));
    }
    let millis = started.elapsed().as_secs_f64() * 1e3;
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    Ok(Finished {
        millis,
        peak_rss_kib: usage.ru_maxrss as u64,
        status: ExitStatus::from_raw(status),
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_that_hangs_is_killed_and_is_an_error() {
        let mut command = Command::new("sleep");
        command.arg("30");
        let started = Instant::now();
        let error = run_within(&mut command, 1)
            .err()
            .expect("a hang is an error");
        assert!(error.contains("hung, and was killed"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "it was not killed"
        );
        let mut quick = Command::new("true");
        assert!(
            run_within(&mut quick, 1).is_ok(),
            "the control: a quick start passes"
        );
    }

    #[test]
    fn a_failed_start_names_the_runtime_the_command_and_its_stderr() {
        let mut command = Command::new("sh");
        command.args(["-c", "echo no cgroup for you >&2; exit 3"]);
        let error = start("peer", &mut command).unwrap_err();
        assert!(error.starts_with("peer failed (exit status: 3)"), "{error}");
        assert!(error.contains("`sh -c echo no cgroup"), "{error}");
        assert!(error.ends_with("its stderr: no cgroup for you"), "{error}");
    }

    #[test]
    fn one_failed_start_among_concurrent_ones_is_an_error() {
        let mut n = 0;
        let error = concurrent("peer", 4, || {
            n += 1;
            let mut command = Command::new("sh");
            command.args(["-c", if n == 2 { "exit 1" } else { "exit 0" }]);
            command
        })
        .unwrap_err();
        assert!(error.starts_with("peer failed (exit status: 1)"), "{error}");
        assert_eq!(n, 4, "all four were spawned");
    }

    #[test]
    fn peak_rss_reads_the_child_not_the_spawner() {
        let kib = peak_rss("true", &mut Command::new("true")).unwrap();
        assert!(kib > 0 && kib < 64 * 1024, "{kib} KiB");
    }
}
