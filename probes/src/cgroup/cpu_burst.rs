//! # `cgroup.cpu_burst`: a CFS burst lets a cgroup spend quota it saved, and no more than the burst
//!
//! **The feature.** A CFS bandwidth limit gives a cgroup *quota* of CPU
//! time per *period* (`cpu.max` on v2, `cpu.cfs_quota_us` on v1; see
//! `cgroup.cpu_quota`). Without a burst, time the cgroup leaves unused in
//! one period is lost: a bursty service under a tight quota is throttled
//! in its busy moments however idle it was before. Since Linux 5.14 a
//! cgroup can also have a *burst* (`cpu.max.burst` on v2,
//! `cpu.cfs_burst_us` on v1, in µs, at most the quota: the kernel refuses
//! more with EINVAL): unused quota is saved, up to the burst, and may be
//! spent in a later period on top of that period's quota.
//!
//! **How the kernel does it.** The cgroup has a pool of runtime. Each
//! period the refill timer adds one quota and caps the pool at quota plus
//! burst (without a burst, at one quota). At each refill the kernel also
//! compares the pool with what it held after the previous refill: if the
//! cgroup took more than one quota from it during the period, it counts a
//! burst (`nr_bursts` in `cpu.stat`, since 5.16) and adds the excess to
//! `burst_usec` (v2) or `burst_time` (ns, v1). Since the pool never held
//! more than quota plus burst and never goes below zero, the excess of one
//! period is at most the burst: `burst time ≤ nr_bursts × burst` is exact,
//! whatever the machine's speed. And without a burst the pool never holds
//! more than one quota, so `nr_bursts` stays 0.
//!
//! **How the probe proves it.** The container gets `--cpus 0.2` (20 ms per
//! 100 ms period), and the probe writes a burst of 20 ms, the most the
//! kernel accepts, and reads it back. The helper then runs four rounds of
//! 400 ms asleep (two or more periods: the pool fills to 40 ms) and 300 ms
//! spinning (in the first period after a rest it can take up to 40 ms,
//! twice its quota). Judged by the kernel's counters alone, over the rounds:
//!
//! - the burst was used: `nr_bursts` grew;
//! - never beyond the burst: the growth of the burst time is at most
//!   `nr_bursts` × 20 ms.
//!
//! **The control.** The same rounds with the burst 0: `nr_bursts` must not
//! grow, while `nr_throttled` does (the spinner wanted more than its quota,
//! and without a burst got none of it).
//!
//! **Verdict.** FAIL when the kernel holds no quota or another than asked
//! (the runtime did not apply `--cpus`, so there is nothing to burst
//! beyond), when the burst does not read back, or when the
//! bursts exceed the burst. Inconclusive when no burst was counted (a
//! spinner starved of CPU never used more than its quota). Unsupported
//! where writing the burst gives ENOENT (before 5.14, so Debian's 5.10), or
//! where `cpu.stat` keeps no `nr_bursts` (5.14 and 5.15).

use std::time::{Duration, Instant};

use runtime::parse::NanoCpus;

use crate::counters::{Bursts, Quota, Throttling};
use crate::inside::errno_name;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.cpu_burst",
    property: "with a CFS burst a cgroup spends saved quota beyond one period's quota, never more than the burst; without one, never",
    needs: Needs {
        config: &["CGROUP_SCHED", "FAIR_GROUP_SCHED", "CFS_BANDWIDTH"],
        config_v1: &[],
        modules: &[],
        since: Some((5, 14)),
    },
    mutations: &[],
    why_no_mutation: Some(
        "the runtime writes no burst (the probe does); skipping the quota it writes breaks the probe's setup, which cgroup.cpu_quota already proves",
    ),
    selftests: &[],
    run,
    inside,
};

/// A fifth of a CPU: 20 ms per 100 ms period.
const CPUS: NanoCpus = NanoCpus(200_000_000);
/// The burst: as much as the quota, the most the kernel accepts.
const BURST: Duration = Duration::from_millis(20);
/// What the helper does (its request).
const ROUNDS: Rounds = Rounds {
    rounds: 4,
    rest: Duration::from_millis(400),
    spin: Duration::from_millis(300),
};

/// Rounds of rest (the pool fills) and spin (the pool is spent).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Rounds {
    rounds: u32,
    rest: Duration,
    spin: Duration,
}

/// The helper's first report: waiting for the go.
#[derive(Debug, Serialize, Deserialize)]
struct Ready;

/// The helper's second report: the rounds are done.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    rounds: u32,
}

/// What one container's rounds left in the kernel's books.
struct Books {
    /// The burst as read back, in µs.
    burst: String,
    /// The growth of the burst counters over the rounds.
    bursts: Bursts,
    /// The growth of the throttling counters over the rounds.
    throttling: Throttling,
    /// CPU time charged over the rounds.
    usage: Duration,
}

/// One container's run: its books, or the quota the kernel held instead
/// of the one asked for.
enum Ran {
    Books(Books),
    NoQuota(Quota),
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let asked = Quota::Limited {
        quota: Duration::from_micros(CPUS.quota_us()),
        period: Duration::from_micros(NanoCpus::PERIOD_US),
    };
    let books = match rounds(lab, BURST, Role::Isolated)? {
        Ran::Books(books) => books,
        Ran::NoQuota(held) => {
            return Ok(Judgement {
                evidence: evidence!["quota in the kernel" => &held],
                control: Evidence::new(),
                control_separated: true,
                property: Property::Broken(format!(
                    "the kernel holds {held} for the cgroup, where --cpus {CPUS} asks for {asked}: there is no quota to burst beyond"
                )),
            }
            .finding())
        }
    };
    let control = match rounds(lab, Duration::ZERO, Role::Control)? {
        Ran::Books(books) => books,
        Ran::NoQuota(held) => {
            return Err(LabError::broken(format!(
                "the control's cgroup has {held}, where --cpus {CPUS} asks for {asked}"
            )))
        }
    };

    let limit = BURST.saturating_mul(u32::try_from(books.bursts.count).unwrap_or(u32::MAX));
    let property = if books.burst != BURST.as_micros().to_string() {
        Property::Broken(format!(
            "the burst reads {} µs after {} µs was written",
            books.burst,
            BURST.as_micros()
        ))
    } else if books.bursts.time > limit {
        Property::Broken(format!(
            "{} bursts used {} beyond the quota, more than {} bursts of {} ms allow",
            books.bursts.count,
            ms(books.bursts.time),
            books.bursts.count,
            BURST.as_millis()
        ))
    } else if books.bursts.count == 0 {
        Property::Unclear(format!(
            "no period used more than the quota: the spinner got {} of CPU and was throttled {} times, and never spent its saved quota (starved?)",
            ms(books.usage),
            books.throttling.throttled
        ))
    } else {
        Property::Held
    };
    Ok(Judgement {
        evidence: describe(&books, &asked),
        control: describe(&control, &asked),
        control_separated: control.bursts.count == 0 && control.throttling.throttled > 0,
        property,
    }
    .finding())
}

/// The evidence of one container's rounds.
fn describe(books: &Books, quota: &Quota) -> Evidence {
    evidence![
        "quota" => quota,
        "burst read back" => format!("{} µs", books.burst),
        "rounds (rest, spin)" => format!(
            "{} × ({} ms, {} ms)",
            ROUNDS.rounds,
            ROUNDS.rest.as_millis(),
            ROUNDS.spin.as_millis()
        ),
        "CPU charged" => ms(books.usage),
        "nr_periods, nr_throttled grew by" =>
            format!("{}, {}", books.throttling.periods, books.throttling.throttled),
        "nr_bursts grew by" => books.bursts.count,
        "burst time grew by (≤ nr_bursts × burst)" => ms(books.bursts.time),
    ]
}

/// Runs the helper's rounds in a container with the quota and `burst`, and
/// reads the kernel's books before and after.
fn rounds(lab: &Lab, burst: Duration, role: Role) -> Result<Ran, LabError> {
    let mut spec = lab.spec(&ROUNDS);
    spec.limits.cpus = Some(CPUS);
    let mut session = lab.start(spec, role)?;
    let Ready = session.receive()?;
    let counters = Counters::of(session.pid());
    let quota = counters.cpu_quota()?;
    if !matches!(&quota, Quota::Limited { quota, .. } if quota.as_micros() == u128::from(CPUS.quota_us()))
    {
        session.finish()?;
        return Ok(Ran::NoQuota(quota));
    }
    let before = set_burst(&counters, burst).and_then(|burst| Ok((burst, read(&counters)?)));
    let (burst, before) = match before {
        Ok(read) => read,
        Err(e) => {
            session.finish()?;
            return Err(e);
        }
    };
    session.send_line("go")?;
    let Done { .. } = session.receive()?;
    let after = read(&counters);
    session.finish()?;
    let (bursts, throttling, usage) = after?;
    Ok(Ran::Books(Books {
        burst,
        bursts: Bursts {
            count: bursts.count.saturating_sub(before.0.count),
            time: bursts.time.saturating_sub(before.0.time),
        },
        throttling: Throttling {
            periods: throttling.periods.saturating_sub(before.1.periods),
            throttled: throttling.throttled.saturating_sub(before.1.throttled),
            time: throttling.time.saturating_sub(before.1.time),
        },
        usage: usage.saturating_sub(before.2),
    }))
}

/// Writes the burst (v2 `cpu.max.burst`, v1 `cpu.cfs_burst_us`, both in
/// µs) and reads it back.
fn set_burst(counters: &Counters, burst: Duration) -> Result<String, LabError> {
    let name = if counters.is_v2() {
        "cpu.max.burst"
    } else {
        "cpu.cfs_burst_us"
    };
    let file = counters.dir("cpu")?.join(name);
    if let Err(e) = crate::kernel::write_existing(&file, &burst.as_micros().to_string()) {
        return Err(match e.raw_os_error() {
            Some(libc::ENOENT) => LabError::Unsupported(format!(
                "writing {name}: ENOENT: the kernel has no CFS burst (Linux 5.14)"
            )),
            _ => LabError::broken(format!("write {name}: {}", errno_name(&e))),
        });
    }
    counters.read("cpu", name)
}

/// The burst counters, the throttling counters and the CPU time charged.
fn read(counters: &Counters) -> Result<(Bursts, Throttling, Duration), LabError> {
    let bursts = counters.cpu_bursts()?.ok_or_else(|| {
        LabError::Unsupported(
            "cpu.stat has no nr_bursts: the kernel has the burst but does not count its use (Linux 5.16)"
                .into(),
        )
    })?;
    let throttling = counters
        .cpu_throttling()?
        .or_broken("the cgroup has a quota, but cpu.stat has no throttling counters")?;
    Ok((bursts, throttling, counters.cpu_usage()?))
}

/// A duration in milliseconds, to a microsecond.
fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Inside: reports ready, waits for the go, then rests and spins in rounds
/// (spinning on the wall clock, which the vDSO reads without a system
/// call), and reports.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let rounds: Rounds = helper.ask()?;
    helper.say(&Ready)?;
    helper.hear()?;
    for _ in 0..rounds.rounds {
        std::thread::sleep(rounds.rest);
        let start = Instant::now();
        while start.elapsed() < rounds.spin {
            std::hint::spin_loop();
        }
    }
    helper.say(&Done {
        rounds: rounds.rounds,
    })
}
