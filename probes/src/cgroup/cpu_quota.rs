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

use std::time::Duration;

use runtime::parse::NanoCpus;

use crate::kernel::online_cpus;
use crate::counters::{Quota, Throttling};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.cpu_quota",
    property: "a CFS bandwidth quota is a ceiling: a busy process never gets more CPU than its periods allow",
    needs: Needs {
        config: &["CGROUP_SCHED", "FAIR_GROUP_SCHED", "CFS_BANDWIDTH"],
        // v1 counts CPU time in the separate cpuacct controller.
        config_v1: &["CGROUP_CPUACCT"],
        modules: &[],
        since: None,
    },
    mutations: &[Mutation::SkipLimits],
    why_no_mutation: None,
    selftests: &["cgroup/test_cpucg_max", "cgroup/test_cpucg_max_nested"],
    run,
    inside,
};

/// A quarter of a CPU: far from both zero and one full CPU.
const CPUS: NanoCpus = NanoCpus(250_000_000);
/// How long the helper spins, by the guest's wall clock (its request).
const WINDOW: Duration = Duration::from_secs(1);
/// The most a task that makes no system call can overrun a spent budget
/// before the scheduler notices: one tick at HZ=100, the slowest setting.
const TICK: Duration = Duration::from_millis(10);
/// The most the spinner overruns on one CPU: one turn of its loop, which
/// reads its CPU clock and so makes the scheduler look at the books.
const TURN: Duration = Duration::from_micros(100);

/// The helper's report once it has stopped spinning.
#[derive(Debug, Serialize, Deserialize)]
struct Spun {
    /// How long it spun, by the guest's wall clock.
    window: Duration,
    /// The largest single step of its own CPU clock between two turns of
    /// its loop: CPU time charged while the loop made no progress.
    largest_charge: Duration,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut spec = lab.spec(&WINDOW);
    spec.limits.cpus = Some(CPUS);
    let limited = spin(lab, spec, Role::Isolated)?;
    let unlimited = spin(lab, lab.spec(&WINDOW), Role::Control)?;

    let cpus = online_cpus()?.0.len() as u32;
    let slack = TICK + TURN * cpus;
    // The helper's own word, so bounded: no single charge exceeds its window.
    let largest_charge = limited.spun.largest_charge.min(limited.spun.window);
    let stall_slack = largest_charge.saturating_mul(cpus);
    let mut evidence = evidence![
        "quota in the kernel" => &limited.quota,
        "cpu time charged to the cgroup" => secs(limited.usage),
        "spin window (guest wall clock)" => secs(limited.spun.window),
        "largest single charge seen by the spinner" =>
            format!("{:.3} ms", limited.spun.largest_charge.as_secs_f64() * 1e3),
    ];
    let mut control = evidence![
        "cpu time charged without a quota" => secs(unlimited.usage),
        "spin window (guest wall clock)" => secs(unlimited.spun.window),
    ];

    let asked = (
        Duration::from_micros(CPUS.quota_us()),
        Duration::from_micros(NanoCpus::PERIOD_US),
    );
    let (quota, period) = match limited.quota {
        Quota::Limited { quota, period } if (quota, period) == asked => (quota, period),
        _ => {
            let why = format!(
                "the kernel holds {} for the cgroup, where --cpus {CPUS} asks for {} µs per {} µs",
                limited.quota,
                asked.0.as_micros(),
                asked.1.as_micros()
            );
            return Ok(Judgement {
                evidence,
                control,
                control_separated: true,
                property: Property::Broken(why),
            }
            .finding());
        }
    };
    let throttling = limited
        .throttling
        .or_broken("the cgroup has a quota, but cpu.stat has no throttling counters")?;
    evidence
        .saw("nr_periods", throttling.periods)
        .saw("nr_throttled", throttling.throttled)
        .saw("time throttled", secs(throttling.time));
    let periods = throttling.periods;
    let ceiling = allowed(quota, periods.saturating_add(1), slack);
    evidence.saw(
        "ceiling: (nr_periods + 1) × quota + a tick + a turn per CPU",
        format!(
            "{} ({} ms + {cpus} × {} µs slack)",
            secs(ceiling),
            TICK.as_millis(),
            TURN.as_micros()
        ),
    );
    // A float-to-int cast saturates, so a nonsense window cannot wrap.
    let control_periods = (unlimited.spun.window.as_secs_f64() / period.as_secs_f64()).ceil() as u64;
    let control_ceiling = allowed(quota, control_periods.saturating_add(1), slack);
    control.saw(
        "what a quota would allow over as many periods",
        secs(control_ceiling),
    );

    let property = if limited.usage > ceiling.saturating_add(stall_slack) {
        Property::Broken(format!(
            "used {} of CPU where {periods} periods of quota allow {}",
            secs(limited.usage),
            secs(ceiling)
        ))
    } else if limited.usage > ceiling {
        Property::Unclear(format!(
            "used {} against a ceiling of {}: the excess is within what stalls of the virtual CPU explain ({:.1} ms charged at once, per CPU)",
            secs(limited.usage),
            secs(ceiling),
            largest_charge.as_secs_f64() * 1e3
        ))
    } else if throttling.throttled == 0 {
        Property::Unclear(format!(
            "the spinner was never throttled: it got {} of CPU over {periods} periods and never used its quota, so the ceiling was not tested (starved)",
            secs(limited.usage),
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

/// What `refills` of `quota` plus `slack` allow, saturating rather than
/// overflowing on nonsense counts.
fn allowed(quota: Duration, refills: u64, slack: Duration) -> Duration {
    quota
        .saturating_mul(u32::try_from(refills).unwrap_or(u32::MAX))
        .saturating_add(slack)
}

/// A duration as seconds, to the millisecond.
fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// What one spin left in the kernel's books and the helper's report.
struct Spin {
    quota: Quota,
    usage: Duration,
    /// None when the cpu controller does not govern the cgroup.
    throttling: Option<Throttling>,
    spun: Spun,
}

/// Runs the spinning helper and reads its cgroup's accounting while the
/// helper, done spinning, waits to be released.
fn spin(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<Spin, LabError> {
    let mut session = lab.start(spec, role)?;
    let spun: Spun = session.receive()?;
    let counters = Counters::of(session.pid());
    let spin = Spin {
        quota: counters.cpu_quota()?,
        usage: counters.cpu_usage()?,
        throttling: counters.cpu_throttling()?,
        spun,
    };
    session.finish()?;
    Ok(spin)
}

/// Inside: spins on the CPU for the asked window of wall-clock time,
/// reading its own CPU clock (`CLOCK_THREAD_CPUTIME_ID`, the sum the
/// scheduler charges) on every turn. Consecutive reads normally differ by
/// a microsecond; a larger step is CPU time the kernel charged while this
/// loop made no progress, which happens when a virtual CPU is stalled by
/// its host. Reports the window and the largest such single charge, then
/// waits while the probe reads the books.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let window: Duration = helper.ask()?;
    let start = std::time::Instant::now();
    let mut last = thread_cpu_time()?;
    let mut largest = Duration::ZERO;
    while start.elapsed() < window {
        let now = thread_cpu_time()?;
        largest = largest.max(now.saturating_sub(last));
        last = now;
    }
    helper.say(&Spun {
        window: start.elapsed(),
        largest_charge: largest,
    })
}

/// The CPU time the kernel has charged to this thread.
fn thread_cpu_time() -> anyhow::Result<Duration> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .context("clock_gettime(CLOCK_THREAD_CPUTIME_ID)")?;
    Ok(Duration::from(now))
}
