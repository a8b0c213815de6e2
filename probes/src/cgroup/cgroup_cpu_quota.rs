//! # `cgroup.cpu_quota`: a CFS bandwidth quota throttles a busy process
//!
//! **The feature.** The CPU controller's bandwidth limit says: in every
//! *period*, the tasks of this cgroup may run for at most *quota*
//! microseconds in total. On cgroup v1 these are two files,
//! `cpu.cfs_period_us` and `cpu.cfs_quota_us`; on v2 one, `cpu.max`
//! (`"$QUOTA $PERIOD"`). `--cpus 0.25` becomes a quota of 25 ms per 100 ms
//! period. The scheduler hands the cgroup a runtime budget each period; when
//! it is spent, the cgroup's tasks are taken off the CPU ("throttled") until
//! the period ends, and `cpu.stat` counts that in `nr_throttled`.
//!
//! **How the probe looks.** The helper spins for a 1 s wall-clock window.
//! The probe then reads the CPU time the kernel charged to the container's
//! cgroup (`cpuacct.usage` on v1, `cpu.stat usage_usec` on v2) and
//! `nr_throttled` (the number of periods in which the budget ran out),
//! locating the cgroup from `/proc/<pid>/cgroup`. The charge also holds the
//! few milliseconds init spent setting up before it exec'd the helper.
//!
//! **The expectation and its tolerance.** As in the kernel's own selftest
//! (`tools/testing/selftests/cgroup/test_cpu.c`): over a window of
//! `n` whole periods plus a remainder `r`, the most the cgroup can use is
//! `n × quota + min(r, quota)`, and a spinning task uses all of it. The
//! selftest's `values_close(a, b, err)` accepts `|a − b| ≤ (a + b) × err / 100`;
//! with err = 10 that accepts from −18 % to +22 % of the expected value, which absorbs
//! the window's edges and scheduler tick granularity. Under TCG emulation
//! the virtual CPU is a host thread that runs slowly and can be preempted
//! mid-period, which blurs both the window and the budget, so err is 25 there.
//!
//! **The control.** The same loop with no quota uses about one full CPU. It
//! must use more than the tolerance could ever accept, `b × (100 + err) /
//! (100 − err)`: 1.22 times the quota's share natively, 1.67 times under
//! TCG. A control inside that band could not tell a quota from none.
//!
//! **Verdict.** Pass when usage is within the tolerance of the expected value
//! and `nr_throttled > 0`.

use std::time::Duration;

use runtime::cgroup::Mode;
use runtime::parse::NanoCpus;

use crate::kernel;
use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding};

/// A quarter of a CPU: far from both zero and one full CPU.
const CPUS: NanoCpus = NanoCpus(250_000_000);
const WINDOW_SECONDS: &str = "1";

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let err = if lab.accelerator == "tcg" { 25.0 } else { 10.0 };
    let mut spec = lab.spec(&["busy", WINDOW_SECONDS]);
    spec.limits.cpus = Some(CPUS);
    let limited = spin(lab, spec, Role::Isolated)?;
    let unlimited = spin(lab, lab.spec(&["busy", WINDOW_SECONDS]), Role::Control)?;

    let period = Duration::from_micros(NanoCpus::PERIOD_US);
    let quota = Duration::from_micros(CPUS.quota_us());
    let periods = (limited.window.as_secs_f64() / period.as_secs_f64()).floor();
    let remainder = limited.window.saturating_sub(period.mul_f64(periods));
    let expected = quota.mul_f64(periods) + remainder.min(quota);
    let (a, b) = (limited.usage.as_secs_f64(), expected.as_secs_f64());
    let close = (a - b).abs() <= (a + b) * err / 100.0;

    let mut evidence = Evidence::new();
    evidence
        .saw(
            "quota",
            format!(
                "{} µs per {} µs period ({CPUS} CPUs)",
                CPUS.quota_us(),
                NanoCpus::PERIOD_US
            ),
        )
        .saw(
            "spin window",
            format!("{:.3} s", limited.window.as_secs_f64()),
        )
        .saw("cpu time charged to the cgroup", format!("{a:.3} s"))
        .saw("expected (n × quota + min(r, quota))", format!("{b:.3} s"))
        .saw(
            "tolerance",
            format!("values_close err={err} (|a−b| ≤ (a+b)×{err}%)"),
        )
        .saw("nr_throttled", limited.throttled);
    let mut control = Evidence::new();
    control
        .saw(
            "cpu time without a quota",
            format!("{:.3} s", unlimited.usage.as_secs_f64()),
        )
        .saw(
            "spin window",
            format!("{:.3} s", unlimited.window.as_secs_f64()),
        );

    Ok(Finding::judge(
        evidence,
        control,
        unlimited.usage.as_secs_f64() > b * (100.0 + err) / (100.0 - err),
        close && limited.throttled > 0,
        if close {
            "the cgroup was never throttled".to_owned()
        } else {
            format!("used {a:.3} s of CPU where the quota allows {b:.3} s")
        },
    ))
}

struct Spin {
    window: Duration,
    usage: Duration,
    throttled: u64,
}

/// Runs the spinning helper and reads the kernel's accounting of its cgroup
/// before releasing it.
fn spin(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<Spin, LabError> {
    let mut session = lab.start(spec, role)?;
    let pid = session.pid().as_raw();
    let window: f64 = session
        .expect("busy_seconds")?
        .parse()
        .map_err(|_| LabError::Broken("unreadable busy_seconds".into()))?;
    let v2 = Mode::detect().map(Mode::is_v2).unwrap_or(false);
    let cpu_dir = kernel::cgroup_dir(pid, "cpu")
        .ok_or_else(|| LabError::Broken("no cpu cgroup for the helper".into()))?;
    let usage = if v2 {
        kernel::cgroup_stat(&cpu_dir.join("cpu.stat"), "usage_usec").map(Duration::from_micros)
    } else {
        let acct = kernel::cgroup_dir(pid, "cpuacct")
            .ok_or_else(|| LabError::Broken("no cpuacct cgroup".into()))?;
        std::fs::read_to_string(acct.join("cpuacct.usage"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map(Duration::from_nanos)
    }
    .ok_or_else(|| LabError::Broken("cannot read the cgroup's cpu usage".into()))?;
    let throttled = kernel::cgroup_stat(&cpu_dir.join("cpu.stat"), "nr_throttled").unwrap_or(0);
    session.finish()?;
    Ok(Spin {
        window: Duration::from_secs_f64(window),
        usage,
        throttled,
    })
}
