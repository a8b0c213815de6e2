//! One cell of the matrix (one kernel booted in one cgroup mode), and the
//! report its guest sends back.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Kernel command-line key that tells the guest which cgroup mode to set up.
pub const CMDLINE_CGROUP: &str = "mydocker.cgroup";
/// Kernel command-line key naming the accelerator, so the report can say it.
pub const CMDLINE_ACCEL: &str = "mydocker.accel";
/// Kernel command-line key with comma-separated probe filters.
pub const CMDLINE_PROBES: &str = "mydocker.probes";
/// Kernel command-line key: how many times the guest's probe runner tries
/// an inconclusive probe again.
pub const CMDLINE_RETRIES: &str = "mydocker.retries";
/// Kernel command-line key that asks only for the boot check (no probes).
pub const CMDLINE_CHECK: &str = "mydocker.check";
/// Kernel command-line key naming the mutation (as `mydocker-probe run
/// --mutation` takes it) the guest's probe runner injects.
pub const CMDLINE_MUTATION: &str = "mydocker.mutation";
/// Kernel command-line key of run mode (`cargo xtask vm-test run`): the
/// guest runs the command packed in its initramfs instead of the probes.
pub const CMDLINE_RUN: &str = "mydocker.run";
/// Kernel command line key: the selftest suites to run after the probes,
/// comma-separated (`--kselftest`); their binaries are on the guest's disk.
pub const CMDLINE_KSELFTEST: &str = "mydocker.kselftest";

/// Lines around the guest's JSON report on its report serial port. A report
/// without its end line was cut short.
pub const REPORT_BEGIN: &str = "----- MYDOCKER REPORT BEGIN -----";
pub const REPORT_END: &str = "----- MYDOCKER REPORT END -----";
/// What the guest prints on the console once its PID 1 runs, in check mode.
pub const BOOT_MARKER: &str = "mydocker-vm-init: alive";

/// The cgroup layout a guest sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupMode {
    /// One v1 hierarchy per controller.
    V1,
    /// cgroup2 only, with `cgroup_no_v1=all`.
    V2,
}

impl CgroupMode {
    pub const BOTH: [CgroupMode; 2] = [CgroupMode::V1, CgroupMode::V2];

    /// Extra kernel arguments for this mode.
    pub fn kernel_args(self) -> &'static str {
        match self {
            CgroupMode::V1 => "",
            CgroupMode::V2 => "cgroup_no_v1=all",
        }
    }
}

impl fmt::Display for CgroupMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupMode::V1 => "v1",
            CgroupMode::V2 => "v2",
        })
    }
}

impl FromStr for CgroupMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "v1" => Ok(CgroupMode::V1),
            "v2" => Ok(CgroupMode::V2),
            other => Err(format!("unknown cgroup mode {other:?}: expected v1 or v2")),
        }
    }
}

/// What the guest found and did, sent to the host as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestReport {
    pub kernel_release: String,
    pub cgroup_mode: CgroupMode,
    /// Seconds from kernel start to our PID 1 (`/proc/uptime` at init).
    #[serde(default)]
    pub boot_seconds: f64,
    /// Seconds the probe suite took inside the guest.
    #[serde(default)]
    pub probe_seconds: f64,
    /// Controllers mounted (v1) or enabled in the root's subtree (v2).
    pub controllers: Vec<String>,
    /// Controllers the kernel lists but could not provide, with the error.
    pub controllers_missing: Vec<(String, String)>,
    /// Kernel modules loaded, or why not.
    pub modules: Vec<(String, String)>,
    /// The probe suite's report, when the runner produced one.
    pub probes: Option<probes::Report>,
    /// Why the guest could not run the probes, if it could not.
    pub error: Option<String>,
    /// The kernel's own selftests, when asked for (`--kselftest`); their
    /// results are rows of `probes` too, prefixed `kselftest.`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kselftests: Vec<crate::kselftest::SuiteRun>,
}

/// One finished cell, as the host records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellReport {
    /// The kernel's label in the matrix, such as `debian-6.12`.
    pub kernel: String,
    pub cgroup_mode: CgroupMode,
    pub accelerator: probes::Accelerator,
    /// Seconds from starting QEMU to the report (whole cell for `host`).
    pub seconds: f64,
    /// What the guest reported; `None` when the VM produced no report.
    pub guest: Option<GuestReport>,
    /// Why the cell has no report, with the console's tail and the QEMU
    /// command line, when it failed.
    pub failure: Option<String>,
    /// Earlier attempts at this cell that ended in a guest kernel crash, one
    /// summary each. A crash is the kernel's (or the emulator's) failure, not
    /// a probe's, so the cell is booted again; the crash is still reported.
    #[serde(default)]
    pub crashes: Vec<String>,
}

impl CellReport {
    /// A cell of `kernel` (`uname -r` `release`) in `mode` whose probes gave
    /// these verdicts and nothing else: a fixture for tests, here and in xtask.
    pub fn sample(
        kernel: &str,
        mode: CgroupMode,
        release: &str,
        verdicts: &[(&str, probes::Verdict)],
    ) -> CellReport {
        let results = verdicts
            .iter()
            .map(|(id, verdict)| probes::ProbeResult {
                id: id.to_string(),
                property: String::new(),
                mutation: None,
                verdict: verdict.clone(),
                cause: None,
                evidence: probes::Evidence::new(),
                control: probes::Evidence::new(),
                kernel_events: vec![],
                seconds: 0.1,
                attempts: vec![],
            })
            .collect();
        CellReport {
            kernel: kernel.into(),
            cgroup_mode: mode,
            accelerator: probes::Accelerator::Tcg,
            seconds: 20.0,
            guest: Some(GuestReport {
                kernel_release: release.into(),
                cgroup_mode: mode,
                boot_seconds: 1.0,
                probe_seconds: 5.0,
                controllers: vec![],
                controllers_missing: vec![],
                modules: vec![],
                probes: Some(probes::Report {
                    kernel: release.into(),
                    cgroup_mode: mode.to_string(),
                    accelerator: probes::Accelerator::Tcg,
                    results,
                    leftovers: vec![],
                }),
                error: None,
                kselftests: Vec::new(),
            }),
            failure: None,
            crashes: Vec::new(),
        }
    }

    /// The column heading of this cell.
    pub fn column(&self) -> String {
        format!("{}/{}", self.kernel, self.cgroup_mode)
    }
}

/// Extracts the framed report from what the guest wrote to its report port.
pub fn unframe(output: &str) -> Result<GuestReport, String> {
    let start = output
        .find(REPORT_BEGIN)
        .ok_or("the guest sent no report")?
        + REPORT_BEGIN.len();
    let end = output[start..]
        .find(REPORT_END)
        .ok_or("the guest's report was cut short")?
        + start;
    serde_json::from_str(output[start..end].trim())
        .map_err(|e| format!("the guest's report does not parse: {e}"))
}

/// Console lines that mean the guest kernel itself failed. A panic is what
/// ends the VM; the oops or BUG line before it says what went wrong.
const CRASH_SIGNS: [&str; 6] = [
    "BUG: ",
    "Oops: ",
    "general protection fault",
    "invalid opcode",
    "Kernel panic - not syncing",
    "kernel BUG at",
];

/// Summarises a guest kernel crash from its console log, or `None` when the
/// console shows none: the first oops or panic line, the function it hit
/// (`RIP:`), and the probe that was running (from `--progress`).
pub fn kernel_crash(console: &str) -> Option<String> {
    let lines: Vec<&str> = console.lines().collect();
    let first = lines
        .iter()
        .position(|line| CRASH_SIGNS.iter().any(|sign| line.contains(sign)))?;
    let strip = |line: &str| match line.find("] ") {
        Some(end) if line.starts_with('[') => line[end + 2..].trim().to_owned(),
        _ => line.trim().to_owned(),
    };
    let mut summary = strip(lines[first]);
    if let Some(rip) = lines[first..].iter().find_map(|l| l.split("RIP: ").nth(1)) {
        summary.push_str(&format!(", RIP {}", rip.trim()));
    }
    let probe = lines[..first]
        .iter()
        .rev()
        .find_map(|l| l.split(probes::PROGRESS_PREFIX).nth(1));
    match probe {
        Some(id) => summary.push_str(&format!(", while probe {} ran", id.trim())),
        None => summary.push_str(", before any probe ran"),
    }
    Some(summary)
}

/// Frames a report for the host.
pub fn frame(report: &GuestReport) -> String {
    let json = serde_json::to_string(report).expect("guest reports serialize");
    format!("\n{REPORT_BEGIN}\n{json}\n{REPORT_END}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> GuestReport {
        GuestReport {
            kernel_release: "6.12.117+deb12-amd64".into(),
            cgroup_mode: CgroupMode::V1,
            boot_seconds: 1.5,
            probe_seconds: 8.0,
            controllers: vec!["cpu".into()],
            controllers_missing: vec![("memory".into(), "EINVAL".into())],
            modules: vec![],
            probes: None,
            error: None,
            kselftests: Vec::new(),
        }
    }

    #[test]
    fn framing_round_trips_through_console_noise() {
        let text = format!("[    1.2] noise\n{}more noise\n", frame(&report()));
        assert_eq!(unframe(&text).unwrap(), report());
    }

    #[test]
    fn a_kernel_crash_is_summarised_with_its_function_and_probe() {
        let console = "\
mydocker-probe: running pid.view
mydocker-probe: running cgroup.cpu_quota
[   10.6] Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI
[   10.6] CPU: 1 UID: 0 PID: 0 Comm: swapper/1 Not tainted 6.12.117+deb12-amd64
[   10.6] RIP: 0010:dequeue_entity+0x101/0x580
[   10.7] Kernel panic - not syncing: Fatal exception in interrupt
";
        assert_eq!(
            kernel_crash(console).unwrap(),
            "Oops: invalid opcode: 0000 [#1] PREEMPT SMP NOPTI, \
             RIP 0010:dequeue_entity+0x101/0x580, while probe cgroup.cpu_quota ran"
        );
    }

    #[test]
    fn a_clean_console_or_an_oom_kill_is_no_crash() {
        let console = "mydocker-probe: running cgroup.memory_oom\n\
            [   11.0] Memory cgroup out of memory: Killed process 211 (helper)\n\
            [   13.9] reboot: Power down\n";
        assert_eq!(kernel_crash(console), None);
    }

    #[test]
    fn a_cut_report_is_detected() {
        let framed = frame(&report());
        let cut = &framed[..framed.len() - 20];
        assert!(unframe(cut).unwrap_err().contains("cut short"));
        assert!(unframe("nothing").unwrap_err().contains("no report"));
    }
}
