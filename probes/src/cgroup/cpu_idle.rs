//! # `cgroup.cpu_idle`: `cpu.idle` makes a whole cgroup an idle-priority entity to the scheduler
//!
//! **The feature.** A task can be `SCHED_IDLE`: it runs only when nothing
//! else wants the CPU, and a waking normal task preempts it. Since Linux
//! 5.15 a cgroup can be made the same thing as a group: writing `1` to its
//! `cpu.idle` (v1 and v2 alike) marks the group's scheduling entity idle.
//! Its tasks keep their own policies and nice values among themselves; it
//! is the group, against its siblings, that becomes idle: best-effort
//! batch work beside latency-sensitive services (systemd's
//! `CPUWeight=idle` writes it).
//!
//! **How the kernel does it.** The scheduler weighs a group against its
//! siblings by the group's weight (`tg->shares`), which `cpu.weight` (v2)
//! and `cpu.shares` (v1) show and set. Marking a group idle sets that
//! weight to the lowest the scheduler has, `WEIGHT_IDLEPRIO` (3, where a
//! nice-0 task weighs 1024), flags its entity idle so that wakeup
//! preemption favours non-idle siblings, and refuses any other weight
//! while it stays idle (writing `cpu.weight` gives EINVAL). Clearing it
//! gives the group the nice-0 weight back (not the weight it had before).
//!
//! **What is observable.** The group is not visible in any task's
//! `/proc/<pid>/sched` or `/proc/<pid>/stat` policy: those show the task's
//! own policy, which stays `SCHED_OTHER` (0), and the probe reports it to
//! say so. What the kernel shows is the group's weight: `cpu.shares` reads
//! 3 on v1; `cpu.weight` reads 3 × 100 / 1024 rounded, which is 0 on
//! kernels before 6.12 and 1 from 6.12, which clamps it to the file's range.
//! The probe takes "at most the larger of 3 × nice-0 / 1024, rounded, and
//! 1" as the idle weight: 3 on v1, 1 on v2.
//!
//! **How the probe proves it.** The container gets `--cpus 1`, which on v2
//! is what makes the runtime enable the cpu controller for its cgroup (the
//! files exist only then); a whole CPU per period never throttles the
//! helper, which only waits. The probe reads the weight, writes `1` to
//! `cpu.idle`, and reads back `cpu.idle` and the weight.
//!
//! **The control.** The probe writes `0`: `cpu.idle` reads 0 and the weight
//! is the nice-0 one again (100 on v2, 1024 on v1), so the weight the
//! probe judges by does follow `cpu.idle`.
//!
//! **Verdict.** FAIL when `cpu.idle` does not read back 1, or the weight
//! does not fall to the idle weight while it does. Pass when it does and
//! the control restored the nice-0 weight. Unsupported where reading
//! `cpu.idle` gives ENOENT (before 5.15, so Debian's 5.10).
//!
//! **No mutation.** The runtime never writes `cpu.idle` (docker has no
//! such flag), so no defect of it can break this property; its `--cpus`
//! only makes the file appear on v2.

use runtime::parse::NanoCpus;

use crate::counters::CpuWeight;
use crate::inside::errno_name;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.cpu_idle",
    property: "writing 1 to cpu.idle gives the cgroup the scheduler's idle weight, and 0 gives it the nice-0 weight back",
    needs: Needs {
        config: &["CGROUP_SCHED", "FAIR_GROUP_SCHED"],
        config_v1: &[],
        modules: &[],
        since: Some((5, 15)),
    },
    mutations: &[],
    why_no_mutation: Some(
        "the runtime never writes cpu.idle (no flag sets it), so no runtime step can be skipped to break it; an OCI cpu.idle resource would bring a fault",
    ),
    selftests: &[],
    run,
    inside,
};

/// One whole CPU: enough for the cpu controller, never a throttle.
const CPUS: NanoCpus = NanoCpus(1_000_000_000);
/// The scheduler's weight for an idle entity (`WEIGHT_IDLEPRIO`).
const IDLE_WEIGHT: u64 = 3;
/// A nice-0 task's weight in the scheduler's own unit.
const NICE_0_WEIGHT: u64 = 1024;

/// The helper's report: it waits, doing nothing.
#[derive(Debug, Serialize, Deserialize)]
struct Waiting;

/// `cpu.idle` and the weight as read after one write of `cpu.idle`.
struct Seen {
    idle: String,
    weight: CpuWeight,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut spec = lab.spec(&());
    spec.limits.cpus = Some(CPUS);
    let mut session = lab.start(spec, Role::Isolated)?;
    let Waiting = session.receive()?;
    let pid = session.pid().as_raw();
    let counters = Counters::of(session.pid());
    let observed = observe(&counters, pid);
    session.finish()?;
    let (before, idle, policy, cleared) = observed?;

    let ceiling = idle_ceiling(idle.weight.nice0);
    let property = if idle.idle != "1" {
        Property::Broken(format!(
            "cpu.idle reads {:?} after 1 was written",
            idle.idle
        ))
    } else if idle.weight.shown > ceiling {
        Property::Broken(format!(
            "cpu.idle reads 1, yet the group's weight is {} where an idle group's is at most {ceiling}",
            idle.weight
        ))
    } else {
        Property::Held
    };
    Ok(Judgement {
        evidence: evidence![
            "weight before" => before,
            "cpu.idle written" => "1",
            "cpu.idle read back" => &idle.idle,
            format!("weight while idle (idle: at most {ceiling})") => idle.weight,
            "the helper's own scheduling policy (/proc/<pid>/stat)" => policy,
        ],
        control: evidence![
            "cpu.idle written" => "0",
            "cpu.idle read back" => &cleared.idle,
            "weight" => cleared.weight,
        ],
        control_separated: cleared.idle == "0" && cleared.weight.shown == cleared.weight.nice0,
        property,
    }
    .finding())
}

/// The most an idle group's weight can show in a file whose nice-0 value is
/// `nice0`: 3 × nice0 / 1024 rounded, or the file's lowest value, 1.
fn idle_ceiling(nice0: u64) -> u64 {
    ((IDLE_WEIGHT * nice0 + NICE_0_WEIGHT / 2) / NICE_0_WEIGHT).max(1)
}

/// Reads the weight, marks the cgroup idle and reads both back, reads the
/// helper's policy, then clears `cpu.idle` and reads both again.
fn observe(counters: &Counters, pid: i32) -> Result<(CpuWeight, Seen, String, Seen), LabError> {
    let weight = || {
        counters.cpu_weight()?.or_broken(
            "the cpu controller does not govern the container's cgroup, though --cpus asked for it",
        )
    };
    let before = weight()?;
    let file = counters.dir("cpu")?.join("cpu.idle");
    let read = || -> Result<String, LabError> {
        std::fs::read_to_string(&file)
            .map(|t| t.trim().to_owned())
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) => LabError::Unsupported(
                    "reading cpu.idle: ENOENT: the kernel has no cpu.idle (Linux 5.15)".into(),
                ),
                _ => LabError::broken(format!("read cpu.idle: {}", errno_name(&e))),
            })
    };
    let write = |value: &str| {
        crate::kernel::write_existing(&file, value)
            .map_err(|e| LabError::broken(format!("write {value} to cpu.idle: {}", errno_name(&e))))
    };
    read()?;
    write("1")?;
    let idle = Seen {
        idle: read()?,
        weight: weight()?,
    };
    let policy = policy(pid);
    write("0")?;
    let cleared = Seen {
        idle: read()?,
        weight: weight()?,
    };
    Ok((before, idle, policy, cleared))
}

/// A task's scheduling policy, field 41 of `/proc/<pid>/stat`, by name.
fn policy(pid: i32) -> String {
    let number = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // stat_fields starts at field 3.
            crate::kernel::stat_fields(&stat).get(41 - 3)?.parse::<i32>().ok()
        });
    match number {
        Some(libc::SCHED_OTHER) => "SCHED_OTHER (0)".into(),
        Some(libc::SCHED_IDLE) => "SCHED_IDLE (5)".into(),
        Some(other) => format!("policy {other}"),
        None => "(unreadable)".into(),
    }
}

/// Inside: reports, then waits; the probe works on the cgroup alone.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    helper.say(&Waiting)
}
