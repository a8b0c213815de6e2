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
use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    let online =
        IdSet::parse("online cpus", online.trim()).map_err(|e| LabError::Broken(e.to_string()))?;
    let Some(&last) = online.0.iter().next_back().filter(|_| online.0.len() >= 2) else {
        return Err(LabError::Unsupported(format!(
            "only CPU {online} is online: pinning cannot be told from not pinning"
        )));
    };
    let mut spec = lab.spec(&["affinity"]);
    spec.limits.cpuset_cpus = Some(IdSet([last].into()));
    let (mask, cpuset) = affinity(lab, spec, Role::Isolated)?;
    let (control_mask, _) = affinity(lab, lab.spec(&["affinity"]), Role::Control)?;
    let mut evidence = Evidence::new();
    evidence
        .saw("requested CPU", last)
        .saw("affinity inside", &mask)
        .saw("cgroup cpuset.cpus", &cpuset);
    let mut control = Evidence::new();
    control
        .saw("affinity without a cpuset", &control_mask)
        .saw("online CPUs", &online);
    Ok(Judgement {
        evidence,
        control,
        control_separated: control_mask.split(',').count() > 1,
        property: Property::held_if(
            mask == last.to_string(),
            format!("pinned to CPU {last}, the helper could run on {mask}"),
        ),
    }
    .finding())
}

fn affinity(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(String, String), LabError> {
    let mut session = lab.start(spec, role)?;
    let mask = session.expect("cpus")?;
    let cpuset = kernel::cgroup_dir(session.pid().as_raw(), "cpuset")
        .and_then(|d| std::fs::read_to_string(d.join("cpuset.cpus")).ok())
        .map(|t| t.trim().to_owned())
        .unwrap_or_else(|| "(no cpuset cgroup)".into());
    session.finish()?;
    Ok((mask, cpuset))
}
