//! `--init`: init stays as the container's PID 1 and runs the command as
//! its child, as docker's `--init` (tini) does.
//!
//! PID 1 of a pid namespace has two duties no ordinary program expects.
//! Every orphan in the namespace becomes its child, so it must reap them or
//! they stay zombies, each holding a pid. And the kernel delivers it only
//! the signals it has a handler for (a shell as PID 1 ignores `docker
//! stop`'s SIGTERM; `kill -9 $$` in it does nothing). A small init takes
//! both: it blocks every signal, waits for them one at a time, passes each
//! on to the command, reaps every child that exits, and when the command
//! itself exits, exits with its status (128 + N for a signal N, as a shell
//! reports it). The command gets a process group of its own, and the
//! terminal's foreground, so that Ctrl-C reaches it once, from the kernel.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::signal::SigSet;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult, Pid};

use crate::setup::Failure;

/// Forks the command (`exec`, which returns only on failure) and stays as
/// its parent until it exits. `on_started` runs once the command's exec has
/// succeeded (init closes its channel there, which tells the launcher).
/// Returns a failure when the exec failed, with its exit code; otherwise
/// never returns.
pub fn run(exec: impl FnOnce() -> Failure, on_started: impl FnOnce()) -> Failure {
    let all = SigSet::all();
    // Blocked before the fork, so that none is lost in between: the child
    // unblocks them just before its exec.
    if let Err(errno) = all.thread_block() {
        return Failure::sys("block signals in the container's init")(errno);
    }
    let (report_read, report_write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(ends) => ends,
        Err(errno) => return Failure::sys("create the init's exec pipe")(errno),
    };
    // SAFETY: init is single-threaded; the child only sets up and execs.
    match unsafe { fork() } {
        Err(errno) => Failure::sys("fork the command under --init")(errno),
        Ok(ForkResult::Child) => {
            drop(report_read);
            let failure = become_command(exec);
            // The exec failed: tell PID 1 why, and with which code.
            let mut pipe = std::fs::File::from(report_write);
            let _ = write!(pipe, "{}\n{}", failure.exit_code, failure.message);
            // SAFETY: leaves at once, as a failed exec does.
            unsafe { libc::_exit(failure.exit_code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(report_write);
            if let Some(failure) = exec_failure(report_read) {
                let _ = waitpid(child, None);
                return failure;
            }
            on_started();
            supervise(child, &all)
        }
    }
}

/// In the child: its own process group, in the terminal's foreground when
/// there is one, signals as a fresh process has them, then the exec.
fn become_command(exec: impl FnOnce() -> Failure) -> Failure {
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let stdin = std::io::stdin();
    if nix::unistd::isatty(&stdin).unwrap_or(false) {
        // A background group that calls tcsetpgrp is sent SIGTTOU, which
        // is blocked here, so the call goes through.
        let _ = nix::unistd::tcsetpgrp(&stdin, nix::unistd::getpid());
    }
    if let Err(errno) = SigSet::empty().thread_set_mask() {
        return Failure::sys("unblock signals for the command")(errno);
    }
    exec()
}

/// What the child wrote before exiting, if its exec failed; `None` when
/// the pipe closed empty, which its exec did (close-on-exec).
fn exec_failure(pipe: OwnedFd) -> Option<Failure> {
    let mut text = String::new();
    std::fs::File::from(pipe).read_to_string(&mut text).ok()?;
    let (code, message) = text.split_once('\n')?;
    Some(Failure {
        exit_code: code.parse().unwrap_or(crate::error::EXIT_RUNTIME),
        message: message.to_owned(),
        kernel_lacks: false,
    })
}

/// PID 1's loop: waits for a signal; SIGCHLD reaps, anything else goes to
/// the command. Exits with the command's status once it is reaped.
///
/// The raw calls, not nix's: nix's `SigSet::wait` and `WaitStatus` have no
/// value for a real-time signal (34..64) and would panic or fail on one,
/// and a process in the container may send any signal to PID 1.
fn supervise(command: Pid, signals: &SigSet) -> ! {
    let set = signals.as_ref();
    loop {
        // SAFETY: waits for one of the blocked signals; no memory is shared.
        let signal = unsafe { libc::sigwaitinfo(set, std::ptr::null_mut()) };
        if signal < 0 {
            continue;
        }
        if signal != libc::SIGCHLD {
            // The command may be exiting already: its SIGCHLD follows.
            // SAFETY: sends a signal; nothing else.
            unsafe { libc::kill(command.as_raw(), signal) };
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: reaps any child without blocking, into our own int.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                // None left to reap now (0), or no children at all (ECHILD).
                break;
            }
            if pid != command.as_raw() {
                // An orphan, reaped: look for more.
                continue;
            }
            if libc::WIFEXITED(status) {
                exit(libc::WEXITSTATUS(status));
            }
            if libc::WIFSIGNALED(status) {
                exit(128 + libc::WTERMSIG(status));
            }
        }
    }
}

fn exit(code: i32) -> ! {
    // SAFETY: ends PID 1, and with it the namespace, without running the
    // destructors of state shared with the launcher at fork.
    unsafe { libc::_exit(code) }
}

/// Closes init's end of its channel once the command runs: the launcher
/// learns of the exec from the channel's end-of-file, and PID 1, which
/// stays, would otherwise hold it open.
pub fn close(fd: &impl AsRawFd) {
    // SAFETY: init's own descriptor, never used again: PID 1 only leaves
    // through `_exit`, so the owner's drop never runs.
    unsafe { libc::close(fd.as_raw_fd()) };
}
