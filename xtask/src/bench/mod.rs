//! `cargo xtask bench`: mydocker's start latency side by side with runc, crun, bwrap, unshare and a bare fork+exec.

mod bundle;
mod cleanup;
mod guest;
mod measure;
mod peers;
mod phases;
mod plot;
mod report;

use std::path::Path;
use std::time::Duration;

use peers::Standing;
use report::{Host, Measured, Report};

/// The memory limit every container gets (64 MiB).
const MEMORY_LIMIT: u64 = 64 << 20;

/// mydocker's cgroup parent, and the prefix of every cgroup and container id
/// the bench causes, so that cleanup can find them all.
const CGROUP_PARENT: &str = "mydocker-bench";

/// The default of `--settle`: past the ~50 ms a warm cgroup v1 attach lock lasts.
const SETTLE_MS: u64 = 100;

/// What `cargo xtask bench` takes on its command line.
#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Starts of each runtime for the latency figures, interleaved round by round [default: 200, or 5 with --quick]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub iterations: Option<u32>,
    /// A smoke pass with small counts: proves the bench works, measures little
    #[arg(long)]
    pub quick: bool,
    /// Idle milliseconds before each timed start. On cgroup v1 an attach soon after another skips
    /// an RCU wait, so back to back the order of a round would pick who pays it; 0 runs them so
    #[arg(long, value_name = "MS", default_value_t = SETTLE_MS)]
    pub settle: u64,
    /// Skip the second part, mydocker, runc and crun side by side in a cgroup v2 guest
    #[arg(long)]
    pub no_guest: bool,
    /// Only the guest part: no host figures, no report files
    #[arg(long, conflicts_with = "no_guest")]
    pub guest_only: bool,
}

/// How many starts each part of the bench makes.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Counts {
    pub quick: bool,
    /// Latency samples per runtime (also the containers of the phase breakdown).
    pub iterations: u32,
    /// Starts one after another, for throughput.
    pub sequential: u32,
    /// Starts spawned at once.
    pub concurrent: u32,
    /// Rounds of the guest part (each runtime once per round).
    pub guest_rounds: u32,
    /// The pause before each latency sample and each traced phase run.
    /// On cgroup v1, attaching a task takes a lock whose writer waits for an
    /// RCU grace period (about 10 ms here) unless another attach happened in
    /// the last ~50 ms. Back to back, a runtime that follows one that attached
    /// skips that wait and the order of the round decides the figures; after
    /// a pause every start pays what it pays on an idle host.
    pub settle_ms: u64,
}

impl Counts {
    fn from(options: &Options) -> Counts {
        let (iterations, sequential, concurrent, guest_rounds) = match options.quick {
            true => (5, 10, 5, 3),
            false => (200, 100, 20, 100),
        };
        Counts {
            quick: options.quick,
            iterations: options.iterations.unwrap_or(iterations),
            sequential,
            concurrent,
            guest_rounds,
            settle_ms: options.settle,
        }
    }
}

/// The quick pass for CI: every runtime started a few times, reports written
/// to `target/bench/quick`. Run it under the machine lock like the bench.
pub fn smoke() -> Result<(), String> {
    run(&Options {
        iterations: None,
        quick: true,
        settle: SETTLE_MS,
        no_guest: false,
        guest_only: false,
    })
}

/// Runs the bench and prints the Markdown report; writes it, with the raw
/// samples and a plot, to `target/bench` (`target/bench/quick` with `--quick`).
///
/// Missed goals are reported, not failures; a runtime that fails to start
/// `/bin/true` (crun's refusal of this host aside) stops the bench.
pub fn run(options: &Options) -> Result<(), String> {
    if !crate::prereq::is_root() {
        return Err(
            "cargo xtask bench must run as root: containers need namespaces and cgroups".into(),
        );
    }
    let counts = Counts::from(options);
    if options.guest_only {
        let out = crate::target_dir().join("bench/guest");
        let settle = Duration::from_millis(counts.settle_ms);
        let run = guest::measure(counts.guest_rounds, settle, &out)?;
        print!("{}", run.markdown());
        return Ok(());
    }
    let mydocker = crate::guest::build_static_mydocker()?;
    let rootfs = crate::rootfs::default_path();
    if !rootfs.join("bin/busybox").exists() {
        crate::rootfs::build_busybox(&rootfs)?;
    }
    let out = match counts.quick {
        true => crate::target_dir().join("bench/quick"),
        false => crate::target_dir().join("bench"),
    };
    let scratch = std::env::temp_dir().join(format!("{CGROUP_PARENT}.{}", std::process::id()));
    let existed = cleanup::bench_cgroups();
    for dir in &existed {
        eprintln!(
            "xtask: {} existed before the bench; it is left alone",
            dir.display()
        );
    }
    let result = bench(counts, &mydocker, &rootfs, &out, &scratch);
    // Cleanup runs whatever happened; both errors are worth reading.
    let mut report = match (result, cleanup::finish(&existed, &scratch)) {
        (Ok(report), Ok(())) => report,
        (Err(e), Ok(())) | (Ok(_), Err(e)) => return Err(e),
        (Err(e), Err(cleanup)) => return Err(format!("{e}\n{cleanup}")),
    };
    // After the host's figures and their cleanup: a guest beside a timed
    // start would slow it.
    let mut guest_failure = None;
    if !options.no_guest {
        eprintln!(
            "xtask: mydocker, runc and crun in a cgroup v2 guest ({}), {} rounds",
            guest::KERNEL,
            counts.guest_rounds
        );
        let settle = Duration::from_millis(counts.settle_ms);
        match guest::measure(counts.guest_rounds, settle, &out.join("guest")) {
            Ok(run) => report.guest = Some(run),
            Err(e) => guest_failure = Some(e),
        }
    }
    print!("{}", report.markdown());
    report.write(&out)?;
    eprintln!("xtask: report, raw samples and plot in {}", out.display());
    // The host's report stands; a guest that did not run is still a failure.
    guest_failure.map_or(Ok(()), |e| Err(format!("the guest part failed: {e}")))
}

/// Everything between setup and cleanup.
fn bench(
    counts: Counts,
    mydocker: &Path,
    rootfs: &Path,
    out: &Path,
    scratch: &Path,
) -> Result<Report, String> {
    std::fs::create_dir_all(scratch).map_err(|e| format!("create {}: {e}", scratch.display()))?;
    let bundle = bundle::write(&out.join("bundle"), rootfs)?;
    let standings = peers::prepare(mydocker, rootfs, &bundle, scratch)?;
    let ready: Vec<&peers::Runtime> = standings
        .iter()
        .filter_map(|s| match s {
            Standing::Ready(runtime) => Some(runtime),
            _ => None,
        })
        .collect();

    let settle = Duration::from_millis(counts.settle_ms);
    eprintln!(
        "xtask: mydocker by phase, {} traced starts",
        counts.iterations
    );
    let mydocker_runtime = ready
        .iter()
        .find(|r| r.name == "mydocker")
        .ok_or("mydocker did not start /bin/true")?;
    let phases = phases::measure(
        || mydocker_runtime.command(),
        &scratch.join("phases.trace"),
        counts.iterations,
        settle,
    )?;

    eprintln!(
        "xtask: {} rounds of {} runtimes",
        counts.iterations,
        ready.len()
    );
    let mut millis = round_robin(&ready, counts.iterations, |runtime| {
        std::thread::sleep(settle);
        measure::start(runtime.name, &mut runtime.command())
    })?
    .into_iter();
    eprintln!("xtask: peak RSS, {} rounds", counts.iterations);
    let mut peak_rss = round_robin(&ready, counts.iterations, |runtime| {
        measure::peak_rss(runtime.name, &mut runtime.command())
    })?
    .into_iter();
    eprintln!(
        "xtask: throughput: {} sequential and {} concurrent starts each",
        counts.sequential, counts.concurrent
    );
    let mut runtimes = Vec::new();
    for standing in &standings {
        runtimes.push(match standing {
            Standing::Ready(runtime) => {
                let (millis, peak_rss) = (millis.next(), peak_rss.next());
                let (millis, peak_rss) = millis.zip(peak_rss).expect("one list per ready runtime");
                // Throughput, for a runtime whose samples all came; a peer
                // that fails (or hangs) here is reported like one that
                // failed a sample, and only mydocker's failure stops the bench.
                let failed = millis.failure.clone().or(peak_rss.failure.clone());
                let measured = match failed {
                    Some(e) => Err(e),
                    None => (|| {
                        let sequential = measure::sequential(runtime.name, counts.sequential, || {
                            runtime.command()
                        })?;
                        let concurrent = measure::concurrent(runtime.name, counts.concurrent, || {
                            runtime.command()
                        })?;
                        Ok((sequential, concurrent))
                    })(),
                };
                match measured {
                    Ok((sequential, concurrent)) => Measured {
                        name: runtime.name,
                        standing: match millis.failed_starts.first() {
                            None => "ok".into(),
                            Some(first) => format!(
                                "partial: {} of {} latency starts failed and are left out (the first: {first})",
                                millis.failed_starts.len(),
                                counts.iterations
                            ),
                        },
                        command: Some(measure::show(&runtime.command())),
                        millis: millis.values,
                        peak_rss_kib: peak_rss.values,
                        sequential_seconds: Some(sequential.as_secs_f64()),
                        concurrent_seconds: Some(concurrent.as_secs_f64()),
                    },
                    Err(e) if runtime.name == "mydocker" => return Err(e),
                    // youki 0.7 hangs now and then (3 times in under 100
                    // starts in two runs here): what it measured before the
                    // last failure stands, when it is enough to take a
                    // median from, and the report says how it ended.
                    Err(e) if millis.values.len() >= PARTIAL_MINIMUM.min(counts.iterations as usize) => Measured {
                        name: runtime.name,
                        standing: format!(
                            "partial: {} of {} latency starts succeeded and {} failed, the last: {e}; no throughput",
                            millis.values.len(),
                            counts.iterations,
                            millis.failed_starts.len().max(1),
                        ),
                        command: Some(measure::show(&runtime.command())),
                        millis: millis.values,
                        peak_rss_kib: peak_rss.values,
                        sequential_seconds: None,
                        concurrent_seconds: None,
                    },
                    Err(e) => Measured {
                        standing: format!("failed during the bench: {e}"),
                        command: Some(measure::show(&runtime.command())),
                        ..Measured::absent(runtime.name)
                    },
                }
            }
            Standing::Refused(runtime, why) => Measured {
                standing: format!("refused: {why}"),
                command: Some(measure::show(&runtime.command())),
                ..Measured::absent(runtime.name)
            },
            Standing::Unavailable(name, why) => Measured {
                standing: format!("unavailable: {why}"),
                ..Measured::absent(name)
            },
        });
    }
    Ok(Report {
        host: Host::read(),
        counts,
        runtimes,
        phases,
        guest: None,
    })
}

/// One runtime's samples from a pass, the starts of a peer that failed,
/// and the failure that ended them early.
struct Samples<T> {
    values: Vec<T>,
    failed_starts: Vec<String>,
    failure: Option<String>,
}

/// A peer's failed starts (youki 0.7 hung three times in under 100 starts here)
/// are counted and reported; this many take it out of the pass.
const PEER_FAILURES: usize = 3;

/// The fewest starts a peer that failed out must have made for its figures
/// to be shown (marked partial).
const PARTIAL_MINIMUM: usize = 20;

/// `rounds` rounds, each running `start` once for every runtime in turn, so
/// that drift (caches, the kernel's deferred cleanup) touches all alike.
/// Returns each runtime's samples. A peer's failed start (a hang, killed)
/// is counted and the peer goes on; after [`PEER_FAILURES`] of them it is
/// left out of the later rounds, its failure kept beside what it measured,
/// which the report shows. mydocker failing stops the bench.
fn round_robin<T>(
    runtimes: &[&peers::Runtime],
    rounds: u32,
    mut start: impl FnMut(&peers::Runtime) -> Result<T, String>,
) -> Result<Vec<Samples<T>>, String> {
    let mut lists: Vec<Samples<T>> = runtimes
        .iter()
        .map(|_| Samples {
            values: Vec::new(),
            failed_starts: Vec::new(),
            failure: None,
        })
        .collect();
    for _ in 0..rounds {
        for (runtime, list) in runtimes.iter().zip(&mut lists) {
            if list.failure.is_some() {
                continue;
            }
            match start(runtime) {
                Ok(sample) => list.values.push(sample),
                Err(e) if runtime.name == "mydocker" => return Err(e),
                Err(e) => {
                    list.failed_starts.push(e.clone());
                    if list.failed_starts.len() >= PEER_FAILURES {
                        list.failure = Some(e);
                    }
                }
            }
        }
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_fails_keeps_what_it_measured_and_drops_out() {
        let (mine, peer) = (
            peers::Runtime::bare("mydocker", "true"),
            peers::Runtime::bare("youki", "true"),
        );
        let mut peer_starts = 0;
        let lists = round_robin(&[&mine, &peer], 8, |runtime| match runtime.name {
            "youki" => {
                peer_starts += 1;
                match peer_starts {
                    2 | 4 | 5 => Err(format!("hung at {peer_starts}")),
                    _ => Ok(peer_starts),
                }
            }
            _ => Ok(0),
        })
        .unwrap();
        assert_eq!(lists[0].values.len(), 8);
        assert_eq!(lists[0].failure, None);
        // Two failures are counted and passed over; the third ends its pass.
        assert_eq!(
            lists[1].values,
            vec![1, 3],
            "no start after the third failure"
        );
        assert_eq!(lists[1].failed_starts.len(), PEER_FAILURES);
        assert_eq!(lists[1].failure.as_deref(), Some("hung at 5"));
        assert_eq!(peer_starts, 5);
        // mydocker's own failure stops the pass.
        let stopped = round_robin(&[&mine], 2, |_| Err::<u32, _>("broken".to_string()));
        assert_eq!(stopped.err().as_deref(), Some("broken"));
    }
}
