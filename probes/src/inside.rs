//! The container side of every probe: the helper binary that runs as the
//! container's command, finds the probe by id, and reports what it sees as
//! typed values, one JSON line each.
//!
//! The host half starts the helper as `/helper <probe id> <request as JSON>`
//! (see [`crate::lab::Lab::spec`]); the probe's `inside` function reads the
//! request with [`Helper::ask`] and answers with [`Helper::say`]. Anything
//! it cannot observe is an error, reported as such, never an empty finding.
//! When `inside` returns, the helper waits for its stdin to close, so that
//! the probe can look at the live container from the host for as long as
//! it needs.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One line from the helper to the probe.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Line {
    /// A report, as the probe's own type serialized it.
    Said(serde_json::Value),
    /// What kept the helper from observing, with its causes.
    Error(String),
}

/// The helper's side of the conversation with the probe.
pub struct Helper {
    request: String,
    stdin: std::io::StdinLock<'static>,
}

impl Helper {
    /// The probe's request: the value its host half passed to `Lab::spec`.
    pub fn ask<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_str(&self.request)
            .map_err(|e| anyhow::anyhow!("the request {:?} does not parse: {e}", self.request))
    }

    /// Reports one observation. Each line is flushed at once, so the probe
    /// sees it even while the helper blocks afterwards.
    pub fn say<T: Serialize>(&mut self, report: &T) -> anyhow::Result<()> {
        let line = Line::Said(serde_json::to_value(report)?);
        send(&line)
    }

    /// Waits for the probe to send one line (a go, a name) and returns it.
    /// Its stdin closing first is an error: the probe gave up on us.
    pub fn hear(&mut self) -> anyhow::Result<String> {
        let mut line = String::new();
        if self.stdin.read_line(&mut line)? == 0 {
            anyhow::bail!("the probe closed our stdin before saying what to do next");
        }
        Ok(line.trim_end().to_owned())
    }

    /// Stays alive until the probe closes our stdin: what every helper
    /// does once its probe's inside half has returned.
    fn hold(&mut self) {
        let mut sink = Vec::new();
        let _ = self.stdin.read_to_end(&mut sink);
    }
}

fn send(line: &Line) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, line)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// The helper binary's `main`: `mydocker-probe-helper PROBE-ID [REQUEST]`.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(probe) = args.first().and_then(|id| crate::catalog::find(id)) else {
        let ids: Vec<&str> = crate::PROBES.iter().map(|p| p.id).collect();
        eprintln!(
            "mydocker-probe-helper: expected a probe id as the first argument, one of {}; got {:?}",
            ids.join(", "),
            args.first()
        );
        return ExitCode::from(2);
    };
    let mut helper = Helper {
        request: args.get(1).cloned().unwrap_or_else(|| "null".into()),
        stdin: std::io::stdin().lock(),
    };
    match (probe.inside)(&mut helper) {
        Ok(()) => {
            // The probe may still be reading the container from the host
            // (its /proc, its cgroup, its mount table), which needs us
            // alive: we end when it closes our stdin (`Session::finish`,
            // or at once for `Lab::report`).
            helper.hold();
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = send(&Line::Error(format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

/// What a system call gave: `Ok`, or the errno's symbolic name (EPERM,
/// EROFS, ...), so that probes compare names, not locale-dependent messages.
pub type Errno = Result<(), String>;

/// An error's errno by name, or its message when it has no errno.
/// Whether `fd` has something to read (a pidfd whose process exited, a
/// seccomp listener with a notification) within `wait`; `what` names it
/// in an error.
pub fn readable_within(
    fd: std::os::fd::BorrowedFd<'_>,
    wait: std::time::Duration,
    what: &str,
) -> anyhow::Result<bool> {
    use anyhow::Context;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    let millis = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
    Ok(poll(&mut fds, PollTimeout::from(millis)).with_context(|| format!("poll {what}"))? > 0)
}

pub fn errno_name(e: &std::io::Error) -> String {
    match e.raw_os_error().map(nix::errno::Errno::from_raw) {
        Some(nix::errno::Errno::UnknownErrno) | None => e.to_string(),
        Some(errno) => format!("{errno:?}"),
    }
}

/// The outcome of an I/O call as an [`Errno`].
pub fn errno<T>(result: std::io::Result<T>) -> Errno {
    result.map(drop).map_err(|e| errno_name(&e))
}

/// The last system call's outcome as an [`Errno`], for a libc return code.
pub fn errno_of_rc(rc: libc::c_long) -> Errno {
    if rc >= 0 {
        Ok(())
    } else {
        Err(errno_name(&std::io::Error::last_os_error()))
    }
}

/// The value of one line of `/proc/self/status` (`CapBnd`, `NoNewPrivs`,
/// `Seccomp`, ...): the kernel's own record of a process's security state.
pub fn status_field(name: &str) -> anyhow::Result<String> {
    use anyhow::Context;
    let status = std::fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
    status
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then(|| value.trim().to_owned())
        })
        .with_context(|| format!("no {name} line in /proc/self/status"))
}

/// An [`Errno`] as evidence shows it: `ok`, or the errno's name.
pub fn shown(outcome: &Errno) -> String {
    match outcome {
        Ok(()) => "ok".to_owned(),
        Err(name) => name.clone(),
    }
}

/// Whether `path` exists: only the kernel's "no such file" (ENOENT,
/// ENOTDIR) counts as absent; any other error (EACCES) is no answer, and
/// must not pass for one.
pub fn exists(path: &str) -> anyhow::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => Ok(false),
        Err(e) => Err(anyhow::anyhow!("look for {path}: {}", errno_name(&e))),
    }
}
