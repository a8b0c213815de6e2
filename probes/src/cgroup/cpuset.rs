//! # `cgroup.cpuset`: `cpuset.cpus` pins a container to chosen CPUs
//!
//! **The feature.** The cpuset controller restricts the CPUs (and memory
//! nodes) a cgroup's tasks may use. The scheduler intersects each task's own
//! affinity mask with its cpuset, so `sched_getaffinity(2)` inside shows the
//! restriction, and `sched_setaffinity` cannot widen it. On v1 a new cpuset
//! cgroup starts with *empty* `cpuset.cpus` and `cpuset.mems`, and no task
//! can join it until both are filled, so a runtime must copy the parent's.
//!
//! **How the probe looks.** Pinned to the last online CPU, the helper
//! reports its affinity mask; the probe reads the cgroup's `cpuset.cpus`.
//!
//! **The control.** Without a cpuset limit the mask holds more than the one
//! chosen CPU (every CPU the probe itself may use). On a single-CPU machine
//! the two cannot differ, so the probe is Unsupported there.
//!
//! **Verdict.** Pass when the mask is exactly the chosen CPU.

use runtime::parse::IdSet;

use crate::kernel;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.cpuset",
    property: "cpuset.cpus pins the container to the chosen CPUs",
    needs: Needs {
        config: &["CPUSETS"],
        config_v1: &["CPUSETS_V1"],
        modules: &[],
        since: None,
    },
    mutations: &[Mutation::SkipLimits],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The helper's report: the CPUs `sched_getaffinity` lets it run on, ascending.
#[derive(Debug, Serialize, Deserialize)]
struct Affinity(Vec<u32>);

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let online = kernel::online_cpus()?;
    let Some(&last) = online.0.iter().next_back().filter(|_| online.0.len() >= 2) else {
        return Err(LabError::Unsupported(format!(
            "only CPU {online} is online: pinning cannot be told from not pinning"
        )));
    };
    let mut spec = lab.spec(&());
    spec.limits.cpuset_cpus = Some(IdSet([last].into()));
    let (mask, cpuset) = affinity(lab, spec, Role::Isolated)?;
    let (control_mask, _) = affinity(lab, lab.spec(&()), Role::Control)?;
    Ok(Judgement {
        evidence: evidence![
            "requested CPU" => last,
            "affinity inside" => format!("{mask:?}"),
            "cgroup cpuset.cpus" => &cpuset,
        ],
        control: evidence![
            "affinity without a cpuset" => format!("{control_mask:?}"),
            "online CPUs" => &online,
        ],
        control_separated: control_mask.len() > 1,
        property: Property::held_if(
            mask == [last],
            format!("pinned to CPU {last}, the helper could run on {mask:?}"),
        ),
    }
    .finding())
}

/// Runs the helper; returns (its affinity mask, its cgroup's `cpuset.cpus`).
fn affinity(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(Vec<u32>, String), LabError> {
    let mut session = lab.start(spec, role)?;
    let Affinity(mask) = session.receive()?;
    let cpuset = Counters::of(session.pid())
        .cpuset_cpus()
        .unwrap_or_else(|_| "(no cpuset cgroup)".into());
    session.finish()?;
    Ok((mask, cpuset))
}

/// Inside: reports the CPUs we may run on, then waits, so that the probe
/// reads our cgroup while we live.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .context("sched_getaffinity")?;
    let cpus = (0..nix::sched::CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .map(|cpu| cpu as u32)
        .collect();
    helper.say(&Affinity(cpus))
}
