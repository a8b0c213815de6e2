//! The bench's findings: summaries, the goals, the host, as Markdown and JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::phases::PhaseSamples;
use super::Counts;

/// What was measured for one runtime, or why it was not.
#[derive(Serialize)]
pub struct Measured {
    pub name: &'static str,
    /// `ok`, `refused: ...` or `unavailable: ...`.
    pub standing: String,
    pub command: Option<String>,
    /// Start latencies, in round order.
    pub millis: Vec<f64>,
    /// Peak RSS of each start of the RSS pass.
    pub peak_rss_kib: Vec<u64>,
    pub sequential_seconds: Option<f64>,
    pub concurrent_seconds: Option<f64>,
}

#[derive(Serialize)]
pub struct Report {
    pub host: Host,
    pub counts: Counts,
    pub runtimes: Vec<Measured>,
    pub phases: Vec<PhaseSamples>,
    /// The part in a cgroup v2 guest, where crun runs.
    pub guest: Option<super::guest::GuestRun>,
}

/// The machine the figures come from.
#[derive(Serialize)]
pub struct Host {
    date: String,
    kernel: String,
    cpu: String,
    cores: usize,
    memory: String,
    cgroups: String,
    /// The profile xtask was built with (mydocker is always a static release build).
    xtask_profile: &'static str,
}

impl Host {
    pub fn read() -> Host {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let field = |text: &str, key: &str| {
            text.lines()
                .find_map(|l| Some(l.strip_prefix(key)?.trim_start_matches([' ', '\t', ':'])))
                .unwrap_or("unknown")
                .to_owned()
        };
        let date = std::process::Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        Host {
            date,
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            cpu: field(&read("/proc/cpuinfo"), "model name"),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory: field(&read("/proc/meminfo"), "MemTotal"),
            cgroups: runtime::cgroup::Mode::detect()
                .map_or_else(|e| e.to_string(), |m| m.to_string()),
            xtask_profile: if cfg!(debug_assertions) {
                "dev"
            } else {
                "release"
            },
        }
    }
}

/// Median, p99 and peak RSS of one runtime's samples.
#[derive(Serialize)]
pub struct Summary {
    pub median_ms: f64,
    pub p99_ms: f64,
    pub peak_rss_max_mib: f64,
    pub peak_rss_median_mib: f64,
}

/// Nearest-rank quantile of unsorted values (`q` in 0..=1); NaN when empty.
pub fn quantile(values: impl IntoIterator<Item = f64>, q: f64) -> f64 {
    let mut sorted: Vec<f64> = values.into_iter().collect();
    sorted.sort_by(f64::total_cmp);
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len().max(1)) - 1)
        .copied()
        .unwrap_or(f64::NAN)
}

impl Measured {
    /// A runtime with no figures; the caller says why in `standing`.
    pub fn absent(name: &'static str) -> Measured {
        Measured {
            name,
            standing: String::new(),
            command: None,
            millis: Vec::new(),
            peak_rss_kib: Vec::new(),
            sequential_seconds: None,
            concurrent_seconds: None,
        }
    }

    pub fn summary(&self) -> Option<Summary> {
        if self.millis.is_empty() {
            return None;
        }
        let millis = || self.millis.iter().copied();
        let mib = || self.peak_rss_kib.iter().map(|&kib| kib as f64 / 1024.0);
        Some(Summary {
            median_ms: quantile(millis(), 0.5),
            p99_ms: quantile(millis(), 0.99),
            peak_rss_max_mib: mib().fold(0.0, f64::max),
            peak_rss_median_mib: quantile(mib(), 0.5),
        })
    }
}

/// One of the goals for mydocker; `met` is None when a peer is missing.
#[derive(Serialize)]
pub struct Goal {
    pub goal: &'static str,
    pub met: Option<bool>,
    pub figure: String,
}

impl Report {
    fn median(&self, name: &str) -> Option<f64> {
        let runtime = self.runtimes.iter().find(|r| r.name == name)?;
        Some(runtime.summary()?.median_ms)
    }

    /// Each span's median, in `phases::SPANS` order.
    fn phase_medians(&self) -> Vec<(&'static str, f64)> {
        let median = |p: &PhaseSamples| quantile(p.millis.iter().copied(), 0.5);
        self.phases.iter().map(|p| (p.phase, median(p))).collect()
    }

    /// Each peer's median ÷ mydocker's: youki's on this host, runc's and
    /// crun's in the guest. Met when every one is above 1; a peer without a
    /// figure leaves the goal unjudged, with the others shown.
    fn faster_than_every_peer(&self) -> Goal {
        let mut ratios: Vec<(&str, Option<f64>)> = vec![(
            "youki (host)",
            self.median("mydocker")
                .zip(self.median("youki"))
                .map(|(m, y)| y / m),
        )];
        let guest = self.guest.as_ref().map(|g| g.ratios()).unwrap_or_default();
        for (peer, name) in [("runc (guest)", "runc"), ("crun (guest)", "crun")] {
            let ratio = guest.iter().find(|(n, _)| n == name).map(|(_, r)| *r);
            ratios.push((peer, ratio));
        }
        let shown: Vec<String> = ratios
            .iter()
            .map(|(peer, r)| match r {
                Some(r) => format!("{peer} {r:.2}×"),
                None => format!("{peer}: no figure"),
            })
            .collect();
        let met = ratios
            .iter()
            .map(|(_, r)| r.map(|r| r > 1.0))
            .collect::<Option<Vec<bool>>>()
            .map(|all| all.iter().all(|&faster| faster));
        Goal {
            goal: "faster than youki, and than runc and crun in the cgroup v2 guest",
            met,
            figure: shown.join(", "),
        }
    }

    pub fn goals(&self) -> Vec<Goal> {
        let goal = |goal, judged: Option<(bool, String)>, peer: &str| Goal {
            goal,
            met: judged.as_ref().map(|(met, _)| *met),
            figure: judged.map_or(format!("not evaluated: no {peer} figure"), |(_, f)| f),
        };
        let mine = self.runtimes.iter().find(|r| r.name == "mydocker");
        let rss = mine.and_then(Measured::summary).map(|s| s.peak_rss_max_mib);
        let mydocker = self.median("mydocker");
        let beside = |peer| Some((mydocker?, self.median(peer)?));
        vec![
            goal(
                "mydocker median ≤ 1.5 × unshare's median",
                beside("unshare").map(|(m, u)| {
                    (
                        m <= 1.5 * u,
                        format!("{m:.2} ms vs 1.5 × {u:.2} = {:.2} ms", 1.5 * u),
                    )
                }),
                "unshare",
            ),
            goal(
                "runc median ÷ mydocker median ≥ 6",
                beside("runc").map(|(m, r)| {
                    (
                        r / m >= 6.0,
                        format!("{:.1}× ({r:.2} ms ÷ {m:.2} ms)", r / m),
                    )
                }),
                "runc",
            ),
            self.faster_than_every_peer(),
            goal(
                "mydocker peak RSS ≤ 4 MiB",
                rss.map(|r| {
                    let kib = r * 1024.0;
                    (
                        r <= 4.0,
                        format!("{kib:.0} KiB = {r:.2} MiB, the max over all starts"),
                    )
                }),
                "mydocker",
            ),
        ]
    }

    pub fn markdown(&self) -> String {
        let (host, counts) = (&self.host, &self.counts);
        let mut md = String::from("# Container start latency: mydocker and its peers\n\n");
        let _ = writeln!(
            md,
            "{} · kernel {} · {} · {} cores · {} memory · cgroups {}\n",
            host.date, host.kernel, host.cpu, host.cores, host.memory, host.cgroups
        );
        if counts.quick {
            md.push_str("**Quick mode (smoke test): small counts, rough figures.**\n\n");
        }
        let _ = writeln!(
            md,
            "Each start runs `/bin/true` with default namespaces and a 64 MiB memory limit, \
             timed from spawn until `wait4` returns; {n} starts each, interleaved round-robin, \
             each after {settle} ms idle: on cgroup v1 a task attach waits for an RCU grace \
             period unless another attach happened within ~50 ms, so back to back the order \
             of a round would decide who pays it. Throughput runs back to back. \
             Peak RSS is `ru_maxrss` from `wait4` (the largest process, not a sum) over a \
             second pass of {n} starts each from a forked child: `exec` carries the spawner's \
             own pages into `ru_maxrss`, so the fork+exec row is the floor, and a figure at \
             that floor means \"no more than this\".\n",
            n = counts.iterations,
            settle = counts.settle_ms,
        );
        let _ = writeln!(
            md,
            "| runtime | median ms | p99 ms | × mydocker | peak RSS max MiB | peak RSS median MiB | {} sequential s | starts/s | {} concurrent s |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|",
            counts.sequential, counts.concurrent
        );
        let base = self.median("mydocker");
        for runtime in &self.runtimes {
            let Some(s) = runtime.summary() else {
                let _ = writeln!(
                    md,
                    "| {} | {} | | | | | | | |",
                    runtime.name, runtime.standing
                );
                continue;
            };
            let ratio = base.map_or("–".into(), |b| format!("{:.2}", s.median_ms / b));
            let seconds = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.3}"));
            let rate = runtime.sequential_seconds.map_or("–".into(), |t| {
                format!("{:.0}", counts.sequential as f64 / t)
            });
            let _ = writeln!(
                md,
                "| {} | {:.2} | {:.2} | {ratio} | {:.2} | {:.2} | {} | {rate} | {} |",
                runtime.name,
                s.median_ms,
                s.p99_ms,
                s.peak_rss_max_mib,
                s.peak_rss_median_mib,
                seconds(runtime.sequential_seconds),
                seconds(runtime.concurrent_seconds),
            );
        }
        for runtime in self
            .runtimes
            .iter()
            .filter(|r| r.standing.starts_with("partial"))
        {
            let _ = writeln!(md, "\n{}: {}", runtime.name, runtime.standing);
        }
        let phases = self.phase_medians();
        let total: f64 = phases.iter().map(|(_, ms)| ms).sum();
        let _ = writeln!(
            md,
            "\n## mydocker by phase\n\nMedians over {} starts of the same static release binary and command as its latency row, each after the same {} ms pause, with its phase trace on (`MYDOCKER_TRACE_PHASES`, three system calls per lap, so apart from the timed starts); `startup` is spawn to the trace's first line, `exit` the last lap to the process's end. Total {total:.2} ms.\n\n| phase | median ms | share |\n|---|--:|--:|",
            counts.iterations, counts.settle_ms
        );
        for (phase, ms) in &phases {
            let _ = writeln!(md, "| {phase} | {ms:.3} | {:.0}% |", 100.0 * ms / total);
        }
        if let Some(guest) = &self.guest {
            md.push_str(&guest.markdown());
        }
        md.push_str("\n## Goals\n\n");
        let goals = self.goals();
        for goal in &goals {
            let verdict = match goal.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "not evaluated",
            };
            let _ = writeln!(md, "- {}: **{verdict}** ({})", goal.goal, goal.figure);
        }
        if goals.iter().any(|g| g.met == Some(false)) {
            if let Some((phase, ms)) = phases.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
                let _ = writeln!(
                    md,
                    "\nCostliest phase: **{phase}**, {ms:.2} ms of {total:.2} ms (medians)."
                );
            }
        }
        md.push_str("\n## Commands\n\n");
        for runtime in &self.runtimes {
            let command = runtime.command.as_deref().unwrap_or("–");
            let _ = writeln!(md, "- {}: `{command}`", runtime.name);
        }
        md
    }

    /// `report.md`, `report.json` (raw samples and summaries) and `latency.svg` in `dir`.
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        let runtimes: Vec<_> = self
            .runtimes
            .iter()
            .map(|r| serde_json::json!({ "measured": r, "summary": r.summary() }))
            .collect();
        let json = serde_json::json!({
            "host": self.host,
            "counts": self.counts,
            "runtimes": runtimes,
            "phases": self.phases,
            "phase_medians_ms": self.phase_medians(),
            "goals": self.goals(),
            "guest": self.guest,
        });
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
        };
        write("report.md", self.markdown())?;
        write(
            "report.json",
            serde_json::to_string_pretty(&json).expect("plain data serializes"),
        )?;
        let rows: Vec<_> = self
            .runtimes
            .iter()
            .filter(|r| !r.millis.is_empty())
            .map(|r| (r.name, r.millis.clone()))
            .collect();
        super::plot::draw(&dir.join("latency.svg"), &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::quantile;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values = (1..=100).map(f64::from);
        assert_eq!(quantile(values.clone(), 0.5), 50.0);
        assert_eq!(quantile(values.clone(), 0.99), 99.0);
        assert_eq!(quantile(values, 1.0), 100.0);
        assert_eq!(quantile([7.0], 0.99), 7.0);
        assert!(quantile([], 0.5).is_nan());
    }
}
