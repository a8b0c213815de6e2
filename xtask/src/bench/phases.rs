//! Where mydocker's start goes: the release binary the latency rows time,
//! run again with its phase trace on (`MYDOCKER_TRACE_PHASES`), each phase
//! read from the laps it writes.
//!
//! The trace gives the moment each phase of the start ends, on
//! `CLOCK_MONOTONIC`. Two more spans frame them, timed here on the same
//! clock: `startup`, from the spawn to the trace's first line (exec, the
//! loader, the command line, the reaping pass), and `exit`, from the last
//! lap to the process's end (unmapping, the exit itself, its reaping). The
//! trace costs three system calls per lap, so these runs are apart from
//! the timed ones.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The spans of a start, in order: the runtime's phases between the
/// process's own startup and exit.
pub const SPANS: [&str; 10] = [
    "startup", "state", "cgroup", "clone", "network", "rootfs", "exec", "wait", "teardown", "exit",
];

/// The time one span took, once per container.
#[derive(serde::Serialize)]
pub struct PhaseSamples {
    pub phase: &'static str,
    pub millis: Vec<f64>,
}

/// Runs `command` (mydocker's latency command) `count` times, each after
/// `settle` idle like the latency samples, with its trace in `trace`, and
/// returns each span's times.
pub fn measure(
    mut command: impl FnMut() -> Command,
    trace: &Path,
    count: u32,
    settle: Duration,
) -> Result<Vec<PhaseSamples>, String> {
    let mut spans: Vec<PhaseSamples> = SPANS
        .iter()
        .map(|phase| PhaseSamples {
            phase,
            millis: Vec::new(),
        })
        .collect();
    for _ in 0..count {
        std::thread::sleep(settle);
        let _ = std::fs::remove_file(trace);
        let mut run = command();
        run.env("MYDOCKER_TRACE_PHASES", trace);
        let spawned = monotonic_ns();
        let status = run
            .status()
            .map_err(|e| format!("run mydocker for the phase breakdown: {e}"))?;
        let ended = monotonic_ns();
        if !status.success() {
            return Err(format!(
                "mydocker, traced for the phase breakdown: {status}"
            ));
        }
        let text = std::fs::read_to_string(trace)
            .map_err(|e| format!("read the phase trace {}: {e}", trace.display()))?;
        for (span, nanos) in split(&text, spawned, ended)? {
            let samples = spans
                .iter_mut()
                .find(|s| s.phase == span)
                .ok_or_else(|| format!("the phase trace names an unknown phase {span:?}"))?;
            samples.millis.push(nanos as f64 / 1e6);
        }
    }
    Ok(spans)
}

/// One start's time by span, from its trace (`PID PHASE NANOSECONDS` per
/// line, `start` first) and the moments it was spawned and ended. A phase
/// lapped twice (the cgroup: made, then joined) is summed; one never
/// lapped counts zero.
fn split(trace: &str, spawned: u64, ended: u64) -> Result<Vec<(&str, u64)>, String> {
    let laps: Vec<(&str, u64)> = trace
        .lines()
        .map(|line| {
            let mut fields = line.split(' ').skip(1);
            let phase = fields.next()?;
            Some((phase, fields.next()?.parse().ok()?))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| format!("the phase trace has a line that does not parse:\n{trace}"))?;
    let Some(&("start", started)) = laps.first() else {
        return Err(format!(
            "the phase trace does not begin with start:\n{trace}"
        ));
    };
    let mut spans: Vec<(&str, u64)> = SPANS.iter().map(|s| (*s, 0)).collect();
    let mut add = |span: &str, nanos: u64| {
        if let Some(entry) = spans.iter_mut().find(|(s, _)| *s == span) {
            entry.1 += nanos;
        }
    };
    add("startup", started.saturating_sub(spawned));
    let mut last = started;
    for &(phase, at) in &laps[1..] {
        add(phase, at.saturating_sub(last));
        last = last.max(at);
    }
    add("exit", ended.saturating_sub(last));
    Ok(spans)
}

fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_splits_into_spans_that_add_up_to_the_whole_start() {
        let trace = "7 start 1000\n7 state 1500\n7 cgroup 1600\n7 clone 1900\n7 cgroup 2000\n\
                     7 network 2000\n7 rootfs 2600\n7 wait 3000\n7 teardown 3400\n";
        let spans = split(trace, 400, 3500).unwrap();
        let of = |name| spans.iter().find(|(s, _)| *s == name).unwrap().1;
        assert_eq!(of("startup"), 600);
        assert_eq!(of("cgroup"), 200, "both laps are summed");
        assert_eq!(of("exec"), 0, "a phase never lapped counts zero");
        assert_eq!(of("exit"), 100);
        assert_eq!(spans.iter().map(|(_, n)| n).sum::<u64>(), 3500 - 400);
        assert!(split("7 state 5\n", 0, 10).is_err(), "no start line");
        assert!(split("garbage", 0, 10).is_err());
    }
}
