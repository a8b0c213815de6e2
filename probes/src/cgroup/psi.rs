//! # `cgroup.psi`: a cgroup's CPU pressure rises when its tasks wait for the CPU
//!
//! **The feature.** Pressure stall information (PSI, Linux 4.20) measures
//! time lost to waiting: for the CPU, memory and I/O, the share of wall
//! time in which *some* task (or, for `full`, every non-idle task) was
//! ready to work but stalled on the resource. The kernel keeps it for the
//! whole machine (`/proc/pressure/cpu`) and, on cgroup v2, for each cgroup
//! (`cpu.pressure`, `memory.pressure`, `io.pressure`) over the tasks of
//! that cgroup alone: what a container orchestrator reads to see that a
//! container is starved, which its CPU usage alone cannot show. Each file
//! has a `some` line, `avg10= avg60= avg300= total=`: running averages in
//! percent, and `total`, the stall time in µs since the cgroup was made.
//! Since 6.1 `cgroup.pressure` switches a cgroup's accounting off and on
//! (writing 0 hides its pressure files).
//!
//! **How the kernel counts it.** On each CPU the scheduler keeps, per
//! cgroup, how many of its tasks are runnable and how many are on the CPU,
//! updated at every enqueue, dequeue and context switch. While a runnable
//! task of the cgroup waits on a CPU (runnable > on the CPU), that CPU's
//! time counts as CPU `some` for the cgroup; `total` sums those times over
//! the CPUs, weighting each by how busy the cgroup kept it. A read of the
//! file brings `total` up to the moment of the read, so it is exact, not a
//! sample.
//!
//! **How the probe proves it.** The container gets `--cpus 0.5`. Its helper
//! starts two threads, pins both to the same CPU (`sched_setaffinity`), and
//! lets both spin for 1 s. Whenever one runs, the other waits on the same
//! CPU, and whenever the quota is spent both wait: the cgroup's `some`
//! total must grow by at least a quarter of the CPU time its threads were
//! charged (it should grow by about all of it, and by the throttled time
//! too; a quarter leaves room for the threads' start and end, when only one
//! is runnable). Both come from the kernel's own clocks, so neither depends
//! on the guest's wall clock keeping pace.
//!
//! **The control.** A second container with the same quota whose helper
//! sleeps for the same second: nothing of it waits, and its `some` total
//! must grow by less than a tenth of the contended one's.
//!
//! **Verdict.** FAIL when the threads contended (the cgroup was charged at
//! least 50 ms) and `some` grew by less than a quarter of that; also when
//! the kernel holds no quota for the container (the runtime did not apply
//! `--cpus`). Inconclusive when the threads got under 50 ms of CPU in their
//! second (starved: too little contention to judge by). Unsupported on
//! cgroup v1 (the cgroup pressure files are v2's), where `/proc/pressure`
//! is missing (the kernel has no PSI, `CONFIG_PSI`, or was booted with
//! `psi=0`; Debian builds it in and on), and where the cgroup's
//! `cpu.pressure` is missing while `/proc/pressure` is there (booted with
//! `cgroup_disable=pressure`, or `cgroup.pressure` is 0).

use std::time::{Duration, Instant};

use runtime::parse::NanoCpus;

use crate::counters::{require_v2, Quota, Throttling};
use crate::inside::errno_name;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.psi",
    property: "a cgroup's cpu.pressure some total grows while its tasks wait for the CPU, and not while they sleep",
    needs: Needs {
        config: &["PSI"],
        config_v1: &[],
        modules: &[],
        since: Some((4, 20)),
    },
    mutations: &[],
    why_no_mutation: Some(
        "the runtime writes no pressure setting; the quota it writes only sets the scene, and skipping it breaks the probe's setup, not the pressure accounting",
    ),
    selftests: &[],
    run,
    inside,
};

/// Half a CPU: both threads also wait whenever the quota is spent.
const CPUS: NanoCpus = NanoCpus(500_000_000);
/// How long the helper's threads spin or sleep, by the guest's wall clock.
const WINDOW: Duration = Duration::from_secs(1);
/// CPU time below which the threads contended too little to judge by.
const CONTENDED: Duration = Duration::from_millis(50);

/// What the helper does once told to go (its request).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Load {
    /// Two threads spin on one CPU for the window.
    Contend(Duration),
    /// Sleep for the window.
    Sleep(Duration),
}

/// The helper's first report: waiting for the go.
#[derive(Debug, Serialize, Deserialize)]
struct Ready;

/// The helper's second report.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    /// The CPU both threads were pinned to, when they contended.
    cpu: Option<usize>,
    /// How long the load lasted, by the guest's wall clock.
    window: Duration,
}

/// What one container's load left in the kernel's books.
struct Pressure {
    /// The growth of `some total`.
    some: Duration,
    /// CPU time charged to the cgroup.
    usage: Duration,
    /// The growth of the throttling counters.
    throttling: Throttling,
    /// `cpu.pressure` as read at the end.
    shown: String,
    done: Done,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    require_v2("a cgroup's cpu.pressure is a cgroup v2 file (Linux 4.20)")?;
    if !crate::inside::exists("/proc/pressure").or_broken("look for /proc/pressure")? {
        return Err(LabError::Unsupported(
            "/proc/pressure: ENOENT: the kernel keeps no pressure stall information (CONFIG_PSI unset, or booted with psi=0)".into(),
        ));
    }
    let asked = Quota::Limited {
        quota: Duration::from_micros(CPUS.quota_us()),
        period: Duration::from_micros(NanoCpus::PERIOD_US),
    };
    let contended = match load(lab, Load::Contend(WINDOW), &asked, Role::Isolated)? {
        Ok(pressure) => pressure,
        Err(held) => {
            return Ok(Judgement {
                evidence: evidence!["quota in the kernel" => &held],
                control: Evidence::new(),
                control_separated: true,
                property: Property::Broken(format!(
                    "the kernel holds {held} for the cgroup, where --cpus {CPUS} asks for {asked}: the helper's threads were not held to the quota they contend under"
                )),
            }
            .finding())
        }
    };
    let idle = load(lab, Load::Sleep(WINDOW), &asked, Role::Control)?.map_err(|held| {
        LabError::broken(format!(
            "the control's cgroup has {held}, where --cpus {CPUS} asks for {asked}"
        ))
    })?;

    let evidence = evidence![
        "quota" => &asked,
        "load" => format!(
            "two threads pinned to CPU {} spinning for {}",
            contended.done.cpu.map_or("?".into(), |c| c.to_string()),
            ms(contended.done.window)
        ),
        "CPU charged to the cgroup" => ms(contended.usage),
        "nr_throttled grew by, time throttled" =>
            format!("{}, {}", contended.throttling.throttled, ms(contended.throttling.time)),
        "cpu.pressure some total grew by (≥ a quarter of the CPU charged)" => ms(contended.some),
        "cpu.pressure at the end" => &contended.shown,
    ];
    let control = evidence![
        "load" => format!("sleeping for {}", ms(idle.done.window)),
        "CPU charged to the cgroup" => ms(idle.usage),
        "cpu.pressure some total grew by (< a tenth of the contended growth)" => ms(idle.some),
        "cpu.pressure at the end" => &idle.shown,
    ];
    let property = if contended.usage < CONTENDED {
        Property::Unclear(format!(
            "the threads were charged only {} of CPU in their {}: too little contention to judge by (starved)",
            ms(contended.usage),
            ms(contended.done.window)
        ))
    } else if contended.some < contended.usage / 4 {
        Property::Broken(format!(
            "two threads on one CPU were charged {} of CPU, so one waited about as long, yet cpu.pressure some grew by only {}",
            ms(contended.usage),
            ms(contended.some)
        ))
    } else {
        Property::Held
    };
    Ok(Judgement {
        evidence,
        control,
        control_separated: idle.some < contended.some / 10,
        property,
    }
    .finding())
}

/// Runs one load in a container with the quota and reads the cgroup's
/// pressure and CPU time around it; `Err` with the quota the kernel held
/// when it is not the one asked for.
fn load(
    lab: &Lab,
    load: Load,
    asked: &Quota,
    role: Role,
) -> Result<Result<Pressure, Quota>, LabError> {
    let mut spec = lab.spec(&load);
    spec.limits.cpus = Some(CPUS);
    let mut session = lab.start(spec, role)?;
    let Ready = session.receive()?;
    let counters = Counters::of(session.pid());
    let measured = measure(&counters, asked, &mut session);
    session.finish()?;
    measured
}

/// The reads around the load, with the helper waiting for its go.
fn measure(
    counters: &Counters,
    asked: &Quota,
    session: &mut crate::lab::Session,
) -> Result<Result<Pressure, Quota>, LabError> {
    let quota = counters.cpu_quota()?;
    if &quota != asked {
        return Ok(Err(quota));
    }
    let file = counters.dir("cgroup")?.join("cpu.pressure");
    let read = || -> Result<String, LabError> {
        std::fs::read_to_string(&file).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT | libc::EOPNOTSUPP) => {
                let switch = std::fs::read_to_string(file.with_file_name("cgroup.pressure"))
                    .map_or_else(|e| errno_name(&e), |t| t.trim().to_owned());
                LabError::Unsupported(format!(
                    "reading the cgroup's cpu.pressure: {}, while /proc/pressure exists: per-cgroup pressure is switched off (cgroup.pressure: {switch}; or booted with cgroup_disable=pressure)",
                    errno_name(&e)
                ))
            }
            _ => LabError::broken(format!("read cpu.pressure: {}", errno_name(&e))),
        })
    };
    let some_before = some_total(&read()?)?;
    let usage_before = counters.cpu_usage()?;
    let throttling_before = throttling(counters)?;
    session.send_line("go")?;
    let done: Done = session.receive()?;
    let shown = read()?;
    let some_after = some_total(&shown)?;
    let usage = counters.cpu_usage()?.saturating_sub(usage_before);
    let throttling_after = throttling(counters)?;
    Ok(Ok(Pressure {
        some: some_after.saturating_sub(some_before),
        usage,
        throttling: Throttling {
            periods: throttling_after
                .periods
                .saturating_sub(throttling_before.periods),
            throttled: throttling_after
                .throttled
                .saturating_sub(throttling_before.throttled),
            time: throttling_after.time.saturating_sub(throttling_before.time),
        },
        shown: shown.lines().next().unwrap_or("").to_owned(),
        done,
    }))
}

/// The cgroup's throttling counters (it has a quota, so it has them).
fn throttling(counters: &Counters) -> Result<Throttling, LabError> {
    counters
        .cpu_throttling()?
        .or_broken("the cgroup has a quota, but cpu.stat has no throttling counters")
}

/// `total=` of the `some` line of a pressure file, in µs.
fn some_total(text: &str) -> Result<Duration, LabError> {
    text.lines()
        .find_map(|line| {
            let fields = line.strip_prefix("some ")?;
            fields
                .split_whitespace()
                .find_map(|f| f.strip_prefix("total="))?
                .parse()
                .ok()
        })
        .map(Duration::from_micros)
        .or_broken(format!("cpu.pressure has no some total: {text:?}"))
}

/// A duration in milliseconds, to a microsecond.
fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Inside: reports ready, waits for the go, then does its load: two
/// threads pinned to the first CPU it may use, spinning for the window, or
/// a sleep as long. Reports when done.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let load: Load = helper.ask()?;
    helper.say(&Ready)?;
    helper.hear()?;
    let start = Instant::now();
    let cpu = match load {
        Load::Sleep(window) => {
            std::thread::sleep(window);
            None
        }
        Load::Contend(window) => {
            let cpu = first_allowed_cpu()?;
            // Both start spinning together, so that they contend for the
            // whole window rather than for however long their starts overlap.
            let together = std::sync::Arc::new(std::sync::Barrier::new(2));
            let spinners: Vec<_> = (0..2)
                .map(|_| {
                    let together = together.clone();
                    std::thread::spawn(move || spin_on(cpu, window, &together))
                })
                .collect();
            for spinner in spinners {
                spinner
                    .join()
                    .map_err(|_| anyhow::anyhow!("a spinning thread panicked"))??;
            }
            Some(cpu)
        }
    };
    helper.say(&Done {
        cpu,
        window: start.elapsed(),
    })
}

/// Pins this thread to `cpu` alone, and checks the kernel took it.
fn pin_to(cpu: usize) -> anyhow::Result<()> {
    let mut only = nix::sched::CpuSet::new();
    only.set(cpu).context("a CPU set for one CPU")?;
    let me = nix::unistd::Pid::from_raw(0);
    nix::sched::sched_setaffinity(me, &only).context("sched_setaffinity")?;
    let now_allowed = nix::sched::sched_getaffinity(me).context("sched_getaffinity")?;
    anyhow::ensure!(
        (0..nix::sched::CpuSet::count())
            .all(|c| now_allowed.is_set(c).unwrap_or(false) == (c == cpu)),
        "the kernel did not pin the thread to CPU {cpu} alone"
    );
    Ok(())
}

/// The lowest-numbered CPU this thread may run on.
fn first_allowed_cpu() -> anyhow::Result<usize> {
    let allowed = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .context("sched_getaffinity")?;
    (0..nix::sched::CpuSet::count())
        .find(|&cpu| allowed.is_set(cpu).unwrap_or(false))
        .context("this thread may run on no CPU")
}

/// Pins this thread to `cpu`, checks the kernel took it, waits for the
/// other spinner at `together`, and spins until `window` has passed.
fn spin_on(cpu: usize, window: Duration, together: &std::sync::Barrier) -> anyhow::Result<()> {
    let pinned = pin_to(cpu);
    // Met whether or not pinning worked, so that the other never waits alone.
    together.wait();
    pinned?;
    let start = Instant::now();
    while start.elapsed() < window {
        std::hint::spin_loop();
    }
    Ok(())
}
