//! The bench inside a cgroup v2 guest: mydocker, runc and crun side by side where crun runs.
//!
//! crun refuses this project's hybrid hosts, so the only fair seat for it is
//! a guest booted with cgroup v2 alone. The guest runs
//! `mydocker-guest-bench` (vm-tests), which starts each runtime in turn as
//! the host bench does and prints its samples as one JSON line; this side
//! packs the runtimes, boots the guest through `vm-test run` and reads the
//! line back. Under TCG everything runs emulated and the guest's root is a
//! tmpfs, so only the ratios within the guest are comparable, never its
//! milliseconds with the host's.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vm_tests::cell::CgroupMode;

use super::peers;
use super::report::quantile;
use crate::vm::initramfs::Extra;
use crate::vm::run::{self, Payload};

/// The kernel the guest boots: the newest pinned one `vm-test` knows.
pub const KERNEL: &str = "debian-7.2";

/// What the guest sent back.
#[derive(Serialize, Deserialize)]
pub struct GuestRun {
    pub kernel: String,
    pub rounds: u32,
    pub settle_ms: u64,
    pub runtimes: Vec<GuestRuntime>,
    /// mydocker's spans (startup, state, ... exit), traced apart.
    #[serde(default)]
    pub phases: Vec<GuestPhase>,
}

/// One span of mydocker's start in the guest, once per traced start.
#[derive(Serialize, Deserialize)]
pub struct GuestPhase {
    pub phase: String,
    pub millis: Vec<f64>,
}

/// One runtime's samples in the guest, or the error that took it out.
#[derive(Serialize, Deserialize)]
pub struct GuestRuntime {
    pub name: String,
    pub samples_ms: Vec<f64>,
    pub error: Option<String>,
}

/// Boots the guest, runs `rounds` rounds with `settle` between starts and
/// returns what it measured. `out` keeps the initramfs and the guest's logs.
pub fn measure(rounds: u32, settle: Duration, out: &Path) -> Result<GuestRun, String> {
    // runc and crun, Debian's: the guest takes their binaries as they are.
    let packaged: Vec<&peers::Oci> = peers::OCI.iter().filter(|o| o.name != "youki").collect();
    for oci in &packaged {
        oci.ensure()?;
    }
    let mydocker = crate::guest::build_static_mydocker()?;
    let bench = crate::guest::build_bench()?;
    let bundle = super::bundle::write(&out.join("bundle"), Path::new("/bench/rootfs"))?;
    let config = std::fs::read(bundle.join("config.json"))
        .map_err(|e| format!("read {}: {e}", bundle.display()))?;
    let payload = Payload {
        extras: vec![
            Extra::File {
                name: "bench/mydocker".into(),
                source: mydocker,
            },
            Extra::File {
                name: "bench/busybox".into(),
                source: crate::rootfs::BUSYBOX.into(),
            },
            Extra::Bytes {
                name: "bench/bundle/config.json".into(),
                data: config,
                mode: 0o644,
            },
        ],
        host_programs: packaged
            .iter()
            .map(|o| o.binary().to_string_lossy().into_owned())
            .collect(),
    };
    // Boot (a minute under TCG), then per round one start of each of five
    // rows and a traced mydocker, each well under a second even emulated.
    let timeout = Duration::from_secs(300) + (settle + Duration::from_secs(1)) * 6 * rounds;
    let args = run::Args {
        kernel: Some(KERNEL.into()),
        mode: CgroupMode::V2,
        command: vec![
            bench.into(),
            rounds.to_string().into(),
            settle.as_millis().to_string().into(),
        ],
        out: out.to_owned(),
        timeout,
    };
    let mut stdout = Vec::new();
    let code = run::run_with(args, payload, Some(&mut stdout)).map_err(|e| {
        format!(
            "the guest bench did not run: {}",
            e.message().lines().next().unwrap_or_default()
        )
    })?;
    let text = String::from_utf8_lossy(&stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("mydocker-guest-bench "));
    match (code, line) {
        (0, Some(json)) => serde_json::from_str(json)
            .map_err(|e| format!("the guest bench's report does not parse ({e}): {json}")),
        _ => Err(format!(
            "the guest bench exited {code} without its report; its output:\n{}",
            text.trim_end()
        )),
    }
}

impl GuestRun {
    fn median(&self, name: &str) -> Option<f64> {
        let runtime = self.runtimes.iter().find(|r| r.name == name)?;
        (!runtime.samples_ms.is_empty()).then(|| quantile(runtime.samples_ms.iter().copied(), 0.5))
    }

    /// The report's section: each runtime's median and p99 and its ratio to mydocker.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "\n## Inside a cgroup v2 guest\n\n\
             crun refuses this host's hybrid cgroups, so all three OCI-style runtimes also run \
             side by side in one QEMU guest (kernel {}, cgroup v2 alone, under the accelerator \
             `vm-test` chose): {} rounds, each start after {} ms idle, the same `/bin/true` \
             from the same busybox root. The guest's root is a tmpfs and, under TCG, every \
             instruction is emulated: compare the ratios, not these milliseconds with the \
             host's.\n\n| runtime | median ms | p99 ms | ÷ mydocker |\n|---|--:|--:|--:|",
            self.kernel, self.rounds, self.settle_ms
        );
        let base = self.median("mydocker");
        for runtime in &self.runtimes {
            if let Some(error) = &runtime.error {
                let _ = writeln!(md, "| {} | failed: {error} | | |", runtime.name);
                continue;
            }
            let samples = || runtime.samples_ms.iter().copied();
            let median = quantile(samples(), 0.5);
            let ratio = base.map_or("–".into(), |b| format!("{:.2}", median / b));
            let _ = writeln!(
                md,
                "| {} | {median:.2} | {:.2} | {ratio} |",
                runtime.name,
                quantile(samples(), 0.99)
            );
        }
        let medians: Vec<String> = self
            .phases
            .iter()
            .filter(|p| !p.millis.is_empty())
            .map(|p| {
                let median = quantile(p.millis.iter().copied(), 0.5);
                format!("{} {median:.1}", p.phase)
            })
            .collect();
        if !medians.is_empty() {
            let _ = writeln!(
                md,
                "\nmydocker by phase in the guest (ms, medians of {} traced starts): {}.",
                self.rounds,
                medians.join(", ")
            );
        }
        md
    }

    /// `runc median ÷ mydocker median` and the same for crun, where both ran.
    pub fn ratios(&self) -> Vec<(String, f64)> {
        let Some(base) = self.median("mydocker") else {
            return Vec::new();
        };
        self.runtimes
            .iter()
            .filter(|r| ["runc", "crun"].contains(&r.name.as_str()) && r.error.is_none())
            .filter_map(|r| Some((r.name.clone(), self.median(&r.name)? / base)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_runtime_is_shown_with_its_error_and_ratios_skip_it() {
        let run = GuestRun {
            kernel: "7.2".into(),
            rounds: 3,
            settle_ms: 100,
            runtimes: vec![
                GuestRuntime {
                    name: "mydocker".into(),
                    samples_ms: vec![10.0, 20.0, 30.0],
                    error: None,
                },
                GuestRuntime {
                    name: "runc".into(),
                    samples_ms: vec![60.0, 80.0, 70.0],
                    error: None,
                },
                GuestRuntime {
                    name: "crun".into(),
                    samples_ms: vec![],
                    error: Some("exit 1: no cgroup".into()),
                },
            ],
            phases: vec![GuestPhase {
                phase: "rootfs".into(),
                millis: vec![4.0, 2.0, 3.0],
            }],
        };
        assert_eq!(run.ratios(), vec![("runc".to_string(), 3.5)]);
        let md = run.markdown();
        assert!(md.contains("| runc | 70.00 | 80.00 | 3.50 |"), "{md}");
        assert!(md.contains("| crun | failed: exit 1: no cgroup |"), "{md}");
        assert!(md.contains("starts): rootfs 3.0."), "{md}");
    }
}
