//! # `cgroup.cpu_quota`: a CFS bandwidth quota is a ceiling on a busy process
//!
//! **The feature.** The CPU controller's bandwidth limit says: in every
//! *period*, the tasks of this cgroup may run for at most *quota*
//! microseconds in total. On cgroup v1 these are two files,
//! `cpu.cfs_period_us` and `cpu.cfs_quota_us`; on v2 one, `cpu.max`
//! (`"$QUOTA $PERIOD"`). `--cpus 0.25` becomes a quota of 25 ms per 100 ms
//! period.
//!
//! **How the kernel enforces it.** The cgroup has a pool of runtime. Writing
//! the quota fills it once; a timer fills it again at the start of each
//! period, never above one quota (plus `cpu.max.burst`, 0 unless set), so
//! unused time does not pile up. Each CPU draws small slices from the pool,
//! and the scheduler charges every nanosecond the cgroup's tasks run
//! against its slice. When the slice is spent and the pool is empty, the
//! cgroup's tasks are taken off the CPU ("throttled") until the timer
//! refills the pool. The scheduler looks at the books at each tick and at
//! each system call that asks for the task's CPU time, so a task may
//! overrun by up to a tick; the overrun is a debt the next refill pays first.
//!
//! **A ceiling, not a floor.** A quota promises that the cgroup gets *no
//! more* than its share; it promises nothing about getting that much. A
//! busy machine may leave the spinner far below its quota, and that is no
//! failure of the quota. So the probe never compares usage with a
//! wall-clock expectation (which a busy or emulated machine makes wrong in
//! both directions); it checks the kernel's books against each other.
//!
//! **What the kernel counts.** `cpu.stat` holds `nr_periods` (periods in
//! which the refill timer ran while the cgroup was active), `nr_throttled`
//! (times the cgroup was taken off the CPU for lack of runtime) and the time
//! it spent throttled (`throttled_usec` on v2, `throttled_time` in ns on
//! v1). The CPU time charged to the cgroup is `usage_usec` in v2's
//! `cpu.stat`, or `cpuacct.usage` (ns) on v1. Both sides use the scheduler's
//! clock, so they agree with each other even when the guest's wall clock
//! and its CPU clock drift apart under emulation.
//!
//! **How the probe proves it.** The helper spins for a 1 s window in a
//! container with `--cpus 0.25`. Then, with the helper idle:
//!
//! - the ceiling: the pool was filled at most `nr_periods + 1` times, so
//!   `usage ≤ (nr_periods + 1) × quota + slack`. The spinner reads its own
//!   CPU clock on every turn of its loop, and that system call makes the
//!   scheduler update the books, so it overruns by one turn at most; the
//!   slack is one scheduler tick (10 ms, a tick at the slowest common
//!   `HZ=100`, for code such as init's setup that makes no such call) plus
//!   100 µs for the last turn on each CPU;
//! - the ceiling was reached: `nr_throttled > 0`. A spinner that was never
//!   throttled never used its quota: it was starved, and the ceiling was not
//!   tested, so the probe is inconclusive rather than passing.
//!
//! **Emulation.** Under QEMU's TCG a virtual CPU is a host thread, and the
//! host may stop it for tens of milliseconds while the guest's clock runs
//! on. The guest charges that time to whatever task was on the virtual CPU.
//! The kernel still throttles it and collects the debt in later periods,
//! but a debt charged at the very end of the spin is never repaid before the
//! probe reads the books. The helper measures the largest single charge it
//! saw (a step in its own CPU clock between two turns of its loop, normally
//! a microsecond): usage over the ceiling by no more than that charge per
//! CPU is inconclusive, not FAIL; beyond it, FAIL.
//!
//! **The control.** The same spinner with no quota must use more than a
//! quota could ever allow over the same number of periods
//! (`(window / period + 1) × quota + slack`). A control that could not, on
//! a machine too busy to give it the CPU, cannot tell a quota from none.
//!
//! **Verdict.** FAIL when the kernel holds no quota for the cgroup, or
//! another than asked, or when usage exceeds the ceiling by more than the
//! stalls explain. Pass when
//! usage is within the ceiling, the cgroup was throttled, and the control
//! used more than the ceiling would allow.

use std::path::{Path, PathBuf};
use std::time::Duration;

use runtime::cgroup::Mode;
use runtime::parse::NanoCpus;

use crate::kernel;
use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

/// A quarter of a CPU: far from both zero and one full CPU.
const CPUS: NanoCpus = NanoCpus(250_000_000);
const WINDOW_SECONDS: &str = "1";
/// The most a task that makes no system call can overrun a spent budget
/// before the scheduler notices: one tick at HZ=100, the slowest setting.
const TICK: Duration = Duration::from_millis(10);
/// The most the spinner overruns on one CPU: one turn of its loop, which
/// reads its CPU clock and so makes the scheduler look at the books.
const TURN: Duration = Duration::from_micros(100);

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut spec = lab.spec(&["busy", WINDOW_SECONDS]);
    spec.limits.cpus = Some(CPUS);
    let limited = spin(lab, spec, Role::Isolated)?;
    let unlimited = spin(lab, lab.spec(&["busy", WINDOW_SECONDS]), Role::Control)?;

    let cpus = online_cpus()?;
    let slack = TICK + TURN * cpus;
    let stall_slack = limited.largest_charge * cpus;
    let mut evidence = Evidence::new();
    evidence
        .saw("quota in the kernel", limited.quota.describe())
        .saw("cpu time charged to the cgroup", secs(limited.usage))
        .saw("nr_periods", limited.periods)
        .saw("nr_throttled", limited.throttled)
        .saw("time throttled", secs(limited.throttled_time))
        .saw("spin window (guest wall clock)", secs(limited.window))
        .saw(
            "largest single charge seen by the spinner",
            format!("{:.3} ms", limited.largest_charge.as_secs_f64() * 1e3),
        );
    let mut control = Evidence::new();
    control
        .saw("cpu time charged without a quota", secs(unlimited.usage))
        .saw("spin window (guest wall clock)", secs(unlimited.window));

    let asked = (
        Duration::from_micros(CPUS.quota_us()),
        Duration::from_micros(NanoCpus::PERIOD_US),
    );
    let (quota, period) = match limited.quota.limit() {
        Some(limit) if limit == asked => limit,
        _ => {
            return Ok(Judgement {
                evidence,
                control,
                control_separated: true,
                property: Property::Broken(format!(
                "the kernel holds {} for the cgroup, where --cpus {CPUS} asks for {} µs per {} µs",
                limited.quota.describe(),
                asked.0.as_micros(),
                asked.1.as_micros()
            )),
            }
            .finding())
        }
    };
    let ceiling = quota * (limited.periods as u32 + 1) + slack;
    evidence.saw(
        "ceiling: (nr_periods + 1) × quota + a tick + a turn per CPU",
        format!(
            "{} ({} ms + {cpus} × {} µs slack)",
            secs(ceiling),
            TICK.as_millis(),
            TURN.as_micros()
        ),
    );
    let control_periods = (unlimited.window.as_secs_f64() / period.as_secs_f64()).ceil() as u32;
    let control_ceiling = quota * (control_periods + 1) + slack;
    control.saw(
        "what a quota would allow over as many periods",
        secs(control_ceiling),
    );

    let property = if limited.usage > ceiling + stall_slack {
        Property::Broken(format!(
            "used {} of CPU where {} periods of quota allow {}",
            secs(limited.usage),
            limited.periods,
            secs(ceiling)
        ))
    } else if limited.usage > ceiling {
        Property::Unclear(format!(
            "used {} against a ceiling of {}: the excess is within what stalls of the virtual CPU explain ({:.1} ms charged at once, per CPU)",
            secs(limited.usage),
            secs(ceiling),
            limited.largest_charge.as_secs_f64() * 1e3
        ))
    } else if limited.throttled == 0 {
        Property::Unclear(format!(
            "the spinner was never throttled: it got {} of CPU over {} periods and never used its quota, so the ceiling was not tested (starved)",
            secs(limited.usage),
            limited.periods
        ))
    } else {
        Property::Held
    };
    Ok(Judgement {
        evidence,
        control,
        control_separated: unlimited.usage > control_ceiling,
        property,
    }
    .finding())
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// The CPUs the kernel has online, each of which may hold a debt.
fn online_cpus() -> Result<u32, LabError> {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    let set = runtime::parse::IdSet::parse("online cpus", online.trim())
        .map_err(|e| LabError::Broken(e.to_string()))?;
    Ok(set.0.len() as u32)
}

/// The bandwidth limit as the kernel holds it.
enum Quota {
    /// (quota, period)
    Limited(Duration, Duration),
    /// The kernel's own words for "no limit".
    Unlimited(String),
}

impl Quota {
    fn limit(&self) -> Option<(Duration, Duration)> {
        match self {
            Quota::Limited(quota, period) => Some((*quota, *period)),
            Quota::Unlimited(_) => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Quota::Limited(q, p) => format!("{} µs per {} µs period", q.as_micros(), p.as_micros()),
            Quota::Unlimited(said) => said.clone(),
        }
    }

    /// v2: `cpu.max` is `"$QUOTA $PERIOD"` or `"max $PERIOD"`; v1:
    /// `cpu.cfs_quota_us` is -1 for no limit. A file that cannot be read
    /// is the probe's breakage.
    fn read(cpu_dir: &Path, v2: bool) -> Result<Quota, LabError> {
        let read = |file: &str| {
            std::fs::read_to_string(cpu_dir.join(file))
                .map(|t| t.trim().to_owned())
                .map_err(|e| LabError::Broken(format!("read {file}: {e}")))
        };
        let (quota, period, said) = if v2 {
            let max = read("cpu.max")?;
            let mut fields = max.split_whitespace();
            let quota = fields.next().and_then(|q| q.parse::<u64>().ok());
            let period = fields.next().and_then(|p| p.parse::<u64>().ok());
            (quota, period, format!("cpu.max {max}"))
        } else {
            let (q, p) = (read("cpu.cfs_quota_us")?, read("cpu.cfs_period_us")?);
            let said = format!("cpu.cfs_quota_us {q}");
            (q.parse().ok(), p.parse().ok(), said)
        };
        Ok(match (quota, period) {
            (Some(q), Some(p)) => {
                Quota::Limited(Duration::from_micros(q), Duration::from_micros(p))
            }
            _ => Quota::Unlimited(said),
        })
    }
}

/// What one spin left in the kernel's books and the helper's report.
struct Spin {
    quota: Quota,
    usage: Duration,
    periods: u64,
    throttled: u64,
    throttled_time: Duration,
    window: Duration,
    largest_charge: Duration,
}

/// Runs the spinning helper and reads its cgroup's accounting while the
/// helper, done spinning, waits to be released.
fn spin(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<Spin, LabError> {
    let mut session = lab.start(spec, role)?;
    let pid = session.pid().as_raw();
    let number = |text: String, what: &str| -> Result<f64, LabError> {
        text.parse()
            .map_err(|_| LabError::Broken(format!("the helper's {what} is not a number: {text:?}")))
    };
    let window = number(session.expect("busy_seconds")?, "busy_seconds")?;
    let largest_us = number(session.expect("largest_charge_us")?, "largest_charge_us")?;
    let v2 = Mode::detect().map(Mode::is_v2).unwrap_or(false);
    let cpu_dir = kernel::cgroup_dir(pid, "cpu")
        .ok_or_else(|| LabError::Broken("no cpu cgroup for the helper".into()))?;
    let stat = cpu_dir.join("cpu.stat");
    let counter = |key: &str| kernel::cgroup_stat(&stat, key);
    let usage = if v2 {
        counter("usage_usec").map(Duration::from_micros)
    } else {
        let acct: PathBuf = kernel::cgroup_dir(pid, "cpuacct")
            .ok_or_else(|| LabError::Broken("no cpuacct cgroup".into()))?;
        std::fs::read_to_string(acct.join("cpuacct.usage"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .map(Duration::from_nanos)
    }
    .ok_or_else(|| LabError::Broken("cannot read the cgroup's cpu usage".into()))?;
    let throttled_time = if v2 {
        counter("throttled_usec").map(Duration::from_micros)
    } else {
        counter("throttled_time").map(Duration::from_nanos)
    };
    let spin = Spin {
        quota: Quota::read(&cpu_dir, v2)?,
        usage,
        periods: required(counter("nr_periods"), "nr_periods")?,
        throttled: required(counter("nr_throttled"), "nr_throttled")?,
        throttled_time: throttled_time.unwrap_or_default(),
        window: Duration::from_secs_f64(window),
        largest_charge: Duration::from_secs_f64(largest_us / 1e6),
    };
    session.finish()?;
    Ok(spin)
}

/// A counter the kernel must have: its absence is the probe's breakage, not
/// the kernel's broken promise.
fn required(value: Option<u64>, name: &str) -> Result<u64, LabError> {
    value.ok_or_else(|| LabError::Broken(format!("cpu.stat has no {name}")))
}
