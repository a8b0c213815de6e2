//! # `cgroup.ns`: a cgroup namespace shows the container's own cgroup as `/`
//!
//! **The feature.** `/proc/<pid>/cgroup` names, for each hierarchy, the
//! cgroup a process is in. Without a cgroup namespace that path gives away
//! the host's layout (`/mydocker/<id>`). `unshare(CLONE_NEWCGROUP)` makes the
//! caller's *current* cgroups the roots of its view: from then on its own
//! cgroup reads as `/`. That is why the runtime unshares it only after the
//! parent has moved init into the container's cgroup.
//!
//! **How the probe looks.** The helper prints its `/proc/self/cgroup`.
//!
//! **The control.** Without a cgroup namespace the helper sees the host path
//! of its cgroup.
//!
//! **Verdict.** Pass when every hierarchy's path is `/`.

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let paths = |spec: runtime::Spec, role: Role| -> Result<String, LabError> {
        let (facts, _) = lab.run(spec, role)?;
        facts
            .get("cgroup")
            .map(str::to_owned)
            .ok_or_else(|| LabError::Broken(format!("no cgroup: {:?}", facts.0)))
    };
    let all_root = |text: &str| text.split(';').all(|line| line.ends_with(":/"));
    let inside = paths(lab.spec(&["cgroup"]), Role::Isolated)?;
    let mut spec = lab.spec(&["cgroup"]);
    spec.namespaces.cgroup = false;
    let outside = paths(spec, Role::Control)?;
    let mut evidence = Evidence::new();
    evidence.saw("/proc/self/cgroup inside", &inside);
    let mut control = Evidence::new();
    control.saw("/proc/self/cgroup without CLONE_NEWCGROUP", &outside);
    Ok(Finding::judge(
        evidence,
        control,
        !all_root(&outside),
        all_root(&inside),
        format!("the container saw {inside}"),
    ))
}
