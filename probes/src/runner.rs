//! Running probes: each in a process of its own with throwaway namespaces,
//! the kernel's health read before and after, and the machine checked for
//! leftovers at the end.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use serde::{Deserialize, Serialize};

use crate::kernel::{self, KernelLog};
use crate::lab::{cgroup_parent, Lab, LabError, CGROUP_PARENT_ENV, CGROUP_PARENT_PREFIX};
use crate::mutation::Mutation;
use crate::probe::Probe;
use crate::verdict::{Cause, Evidence, Finding, Verdict};

/// One probe's result, as reports carry it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub id: String,
    pub property: String,
    /// The deliberate defect this run injected, for mutation runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutation: Option<String>,
    pub verdict: Verdict,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    pub evidence: Evidence,
    pub control: Evidence,
    /// New kernel taint, warnings or oopses seen while the probe ran.
    #[serde(default)]
    pub kernel_events: Vec<String>,
    /// Seconds over every attempt.
    pub seconds: f64,
    /// The inconclusive attempts before this one, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

/// An inconclusive attempt that the runner tried again: what it saw and why
/// it could not tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub verdict: Verdict,
    pub evidence: Evidence,
    pub control: Evidence,
    pub seconds: f64,
}

/// Where the probe subprocess and the helper are.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `mydocker-probe` binary, run once per probe.
    pub exe: PathBuf,
    /// The static helper binary placed in each probe rootfs.
    pub helper: PathBuf,
    /// A probe still running after this long is stopped and counts as
    /// inconclusive: a hang cannot be told from a very slow machine.
    pub timeout: Duration,
    /// How many more times an inconclusive probe is run before the runner
    /// reports it inconclusive.
    pub retries_inconclusive: u32,
}

/// What `--retries-inconclusive` defaults to.
pub const DEFAULT_RETRIES_INCONCLUSIVE: u32 = 2;

/// Runs `probe` until it reaches a conclusion, at most
/// `1 + options.retries_inconclusive` times, each in a process of its own
/// (see [`run_once`]). Every inconclusive attempt stays in the result.
pub fn run_isolated(options: &Options, probe: &Probe, mutation: Option<Mutation>) -> ProbeResult {
    let mut earlier: Vec<ProbeResult> = Vec::new();
    loop {
        let result = run_once(options, probe, mutation);
        let settled = !matches!(result.verdict, Verdict::Inconclusive(_));
        if settled || earlier.len() as u32 >= options.retries_inconclusive {
            return with_attempts(result, earlier);
        }
        earlier.push(result);
    }
}

/// The last result, carrying the attempts before it, their time and their
/// kernel events.
fn with_attempts(mut last: ProbeResult, earlier: Vec<ProbeResult>) -> ProbeResult {
    let mut events = Vec::new();
    for attempt in earlier {
        last.seconds += attempt.seconds;
        events.extend(attempt.kernel_events);
        last.attempts.push(Attempt {
            verdict: attempt.verdict,
            evidence: attempt.evidence,
            control: attempt.control,
            seconds: attempt.seconds,
        });
    }
    events.append(&mut last.kernel_events);
    last.kernel_events = events;
    last
}

/// Runs `probe` once in a new `mydocker-probe __probe` process and collects
/// its result. A crash there becomes a FAIL here, a hang an inconclusive,
/// and neither can disturb the probes that come after it. The kernel's taint
/// and log are read here, outside the probe process, so that an oops which
/// kills it is still seen.
pub fn run_once(options: &Options, probe: &Probe, mutation: Option<Mutation>) -> ProbeResult {
    let start = Instant::now();
    let taint_before = kernel::tainted();
    let mut log = KernelLog::from_now();
    let mut result =
        spawn_probe(options, probe, mutation).unwrap_or_else(|(verdict, cause)| ProbeResult {
            id: probe.id.to_owned(),
            property: probe.property.to_owned(),
            mutation: mutation.map(|m| m.to_string()),
            verdict,
            cause,
            evidence: Evidence::new(),
            control: Evidence::new(),
            kernel_events: Vec::new(),
            seconds: 0.0,
            attempts: Vec::new(),
        });
    result.seconds = start.elapsed().as_secs_f64();
    result.kernel_events = log.problems();
    let taint_after = kernel::tainted();
    if taint_after != taint_before {
        let show = |t: Option<u64>| t.map_or_else(|| "unreadable".to_owned(), |t| t.to_string());
        result.kernel_events.push(format!(
            "kernel taint changed from {} to {}",
            show(taint_before),
            show(taint_after)
        ));
    }
    result
}

/// A probe process that gave no result: a FAIL (it broke) or an
/// inconclusive (it ran out of time).
type NoResult = (Verdict, Option<Cause>);

fn spawn_probe(
    options: &Options,
    probe: &Probe,
    mutation: Option<Mutation>,
) -> Result<ProbeResult, NoResult> {
    let broken = |why: String| (Verdict::Fail(why), Some(Cause::Broken));
    // Everything the probe puts in the temporary directory goes here, and
    // goes away with this guard, even if the probe is killed at its timeout.
    let scratch = tempfile::Builder::new()
        .prefix("mydocker-probe-run-")
        .tempdir()
        .map_err(|e| broken(format!("create a scratch directory: {e}")))?;
    let start = Instant::now();
    let mut command = Command::new(&options.exe);
    command.env("TMPDIR", scratch.path());
    command.env(CGROUP_PARENT_ENV, cgroup_parent());
    command
        .arg("__probe")
        .arg(probe.id)
        .arg("--helper")
        .arg(&options.helper);
    if let Some(m) = mutation {
        command.arg("--mutation").arg(m.to_string());
    }
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| broken(format!("cannot start {}: {e}", options.exe.display())))?;
    // Drained while the probe runs, so that no amount of output can block it.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped")));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if start.elapsed() > options.timeout => {
                let _ = child.kill();
                let _ = child.wait();
                // Its init died with it (parent-death signal); processes of a
                // control run without a PID namespace did not.
                sweep();
                return Err((
                    Verdict::Inconclusive(format!(
                        "stopped after {:?} without a conclusion (a hang cannot be told from a very slow machine; --timeout raises the limit)",
                        options.timeout
                    )),
                    None,
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(broken(format!("lost the probe process: {e}"))),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    serde_json::from_str::<ProbeResult>(&stdout).map_err(|_| {
        let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
        broken(format!(
            "the probe process ended with {status} and no result: {}",
            tail.join(" / ")
        ))
    })
}

/// The body of `mydocker-probe __probe`: runs one probe in this process.
pub fn run_here(probe: &'static Probe, helper: &Path, mutation: Option<Mutation>) -> ProbeResult {
    let start = Instant::now();
    let finding = isolate_this_process()
        .map_err(|e| {
            LabError::Broken(format!(
                "cannot set up the probe's throwaway namespaces: {e}"
            ))
        })
        .and_then(|()| Lab::new(probe, helper, mutation))
        .and_then(|lab| {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (probe.run)(&lab)))
                    .unwrap_or_else(|panic| {
                        Err(LabError::Broken(format!(
                            "the probe panicked: {}",
                            panic_text(&panic)
                        )))
                    });
            // A container whose state outlived it is a runtime defect.
            let left = lab.state_entries();
            outcome.map(|mut finding| {
                if !left.is_empty() {
                    finding
                        .evidence
                        .saw("state left behind", format!("{left:?}"));
                    finding.verdict =
                        Verdict::Fail("the runtime left container state behind".into());
                    finding.cause = Some(Cause::Property);
                }
                finding
            })
        });
    let Finding {
        verdict,
        cause,
        evidence,
        control,
    } = match finding {
        Ok(finding) => finding,
        Err(LabError::Unsupported(reason)) => Finding {
            verdict: Verdict::Unsupported(reason),
            cause: None,
            evidence: Evidence::new(),
            control: Evidence::new(),
        },
        Err(LabError::Inconclusive(reason)) => Finding {
            verdict: Verdict::Inconclusive(reason),
            cause: None,
            evidence: Evidence::new(),
            control: Evidence::new(),
        },
        Err(LabError::Broken(reason)) => Finding::broken(reason, Evidence::new(), Evidence::new()),
    };
    ProbeResult {
        id: probe.id.to_owned(),
        property: probe.property.to_owned(),
        mutation: mutation.map(|m| m.to_string()),
        verdict,
        cause,
        evidence,
        control,
        kernel_events: Vec::new(),
        seconds: start.elapsed().as_secs_f64(),
        attempts: Vec::new(),
    }
}

/// Gives this probe process mount, UTS and IPC namespaces of its own. What a
/// probe calls "the host" is then a copy that dies with the process: a
/// control that renames the host, or a mutation that mounts without a mount
/// namespace, never touches the real machine.
///
/// The copy's mounts are made shared among themselves (and private towards
/// the real host), as systemd sets up a real host, so that a runtime that
/// forgets to make its mounts private is caught by `mount.invisible`.
fn isolate_this_process() -> nix::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC)?;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)?;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SHARED, none)
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}

fn child_dirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default()
}

/// Kills every process left in this run's probe cgroups and removes them.
/// Only the run's own parent, which the runtime created for it, is touched.
pub fn sweep() {
    for parent in runtime::cgroup::parent_dirs(&cgroup_parent()) {
        for dir in child_dirs(&parent) {
            let _ = runtime::cgroup::remove_recorded(&[dir]);
        }
    }
}

/// Parents that runs killed before their end left (`mydocker-probe-<pid>`
/// whose runner is gone): whatever is in them is killed and removed.
fn reap_dead_runs() {
    let root = Path::new(runtime::cgroup::CGROUP_ROOT);
    let hierarchies = std::iter::once(root.to_owned()).chain(child_dirs(root));
    for hierarchy in hierarchies {
        for parent in child_dirs(&hierarchy) {
            let name = parent.file_name().map(|n| n.to_string_lossy().into_owned());
            let Some(owner) = name
                .as_deref()
                .and_then(|n| n.strip_prefix(CGROUP_PARENT_PREFIX))
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if Path::new(&format!("/proc/{owner}")).exists() {
                continue;
            }
            let _ = runtime::cgroup::remove_recorded(&child_dirs(&parent));
            let _ = std::fs::remove_dir(&parent);
        }
    }
}

/// What the probes left on the machine: cgroups below this run's parent,
/// probe mounts, and probe directories in the temporary directory. The
/// cgroups are removed once named, and so is the parent, which the runtime
/// created for the run; parents of runs that were killed are reaped.
pub fn leftovers() -> Vec<String> {
    reap_dead_runs();
    let mut found = Vec::new();
    for parent in runtime::cgroup::parent_dirs(&cgroup_parent()) {
        // Named first, then cleared: the report must show a leak, and the
        // machine must not keep it.
        let children = child_dirs(&parent);
        found.extend(children.iter().map(|c| format!("cgroup {}", c.display())));
        let _ = runtime::cgroup::remove_recorded(&children);
        let _ = std::fs::remove_dir(&parent);
    }
    let table = kernel::mounts("self").unwrap_or_else(|e| {
        found.push(format!("our mount table, unreadable: {e}"));
        Vec::new()
    });
    for m in table {
        if m.source.starts_with("probe-") || m.mount_point.contains("mydocker-probe") {
            found.push(format!("mount {} ({})", m.mount_point, m.source));
        }
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for entry in entries.filter_map(|e| e.ok()) {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("mydocker-probe-")
            {
                found.push(format!("file {}", entry.path().display()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(verdict: Verdict, seconds: f64, event: &str) -> ProbeResult {
        ProbeResult {
            id: "x.y".into(),
            property: String::new(),
            mutation: None,
            verdict,
            cause: None,
            evidence: Evidence::new(),
            control: Evidence::new(),
            kernel_events: vec![event.into()],
            seconds,
            attempts: Vec::new(),
        }
    }

    #[test]
    fn the_last_attempt_decides_and_carries_the_earlier_ones() {
        let earlier = vec![
            result(Verdict::Inconclusive("starved".into()), 1.0, "a"),
            result(Verdict::Inconclusive("timed out".into()), 2.0, "b"),
        ];
        let last = with_attempts(result(Verdict::Pass, 0.5, "c"), earlier);
        assert_eq!(last.verdict, Verdict::Pass);
        assert_eq!(last.seconds, 3.5);
        assert_eq!(last.kernel_events, ["a", "b", "c"]);
        let reasons: Vec<_> = last
            .attempts
            .iter()
            .map(|a| a.verdict.reason().unwrap_or(""))
            .collect();
        assert_eq!(reasons, ["starved", "timed out"]);
    }
}
