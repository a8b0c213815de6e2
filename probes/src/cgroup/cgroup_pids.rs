//! # `cgroup.pids`: `pids.max` bounds fork
//!
//! **The feature.** The pids controller counts the tasks (processes and
//! threads) of a cgroup and its descendants. Once the count reaches
//! `pids.max`, `fork(2)` and `clone(2)` in that cgroup fail with EAGAIN, the
//! same error as hitting `RLIMIT_NPROC`; this is what stops a fork bomb in one
//! container from taking the whole machine's pid space.
//!
//! **How the probe looks.** With `pids.max = 8`, the helper forks sleeping
//! children until a fork fails (or 64 succeed), and reports how many it made
//! and the error. The probe also reads `pids.max` and `pids.current` from the
//! container's cgroup.
//!
//! **The control.** Without the limit, all 64 forks succeed.
//!
//! **Verdict.** Pass when fork failed with EAGAIN exactly at the bound: the
//! helper plus 7 children make 8 tasks.

use crate::kernel;
use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

const MAX: u64 = 8;
const ATTEMPTS: &str = "64";

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut spec = lab.spec(&["fork-until-fail", ATTEMPTS]);
    spec.limits.pids = Some(MAX);
    let (forked, error, evidence) = fork(lab, spec, Role::Isolated)?;
    let (control_forked, _, control) =
        fork(lab, lab.spec(&["fork-until-fail", ATTEMPTS]), Role::Control)?;
    Ok(Judgement {
        evidence,
        control,
        control_separated: control_forked.to_string() == ATTEMPTS,
        property: Property::held_if(
            error == "EAGAIN" && forked + 1 == MAX,
            format!(
                "with pids.max={MAX} the helper forked {forked} children and then saw {error:?}"
            ),
        ),
    }
    .finding())
}

fn fork(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(u64, String, Evidence), LabError> {
    let mut session = lab.start(spec, role)?;
    let forked: u64 = session
        .expect("forked")?
        .parse()
        .map_err(|_| LabError::Broken("unreadable fork count".into()))?;
    let error = session.expect("fork_error")?;
    let mut evidence = Evidence::new();
    evidence
        .saw("children forked", forked)
        .saw("fork error", &error);
    if let Some(dir) = kernel::cgroup_dir(session.pid().as_raw(), "pids") {
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .map(|t| t.trim().to_owned())
                .unwrap_or_default()
        };
        evidence
            .saw("pids.max", read("pids.max"))
            .saw("pids.current", read("pids.current"));
    }
    session.finish()?;
    Ok((forked, error, evidence))
}
