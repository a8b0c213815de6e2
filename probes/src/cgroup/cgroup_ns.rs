//! # `cgroup.ns`: a cgroup namespace shows the container's own cgroup as `/`
//!
//! **The feature.** `/proc/<pid>/cgroup` names, for each hierarchy, the
//! cgroup a process is in. Without a cgroup namespace that path gives away
//! the host's layout (`/mydocker/<id>`). `unshare(CLONE_NEWCGROUP)` makes the
//! caller's *current* cgroups the roots of its view: from then on its own
//! cgroup reads as `/`. That is why the runtime unshares it only after the
//! parent has moved init into the container's cgroup.
//!
//! **How the probe looks.** The helper prints its `/proc/self/cgroup`. From
//! the host, the probe reads the same file for the helper's pid: it must
//! name the container's own cgroup below the probe parent, or a `/` inside
//! would only mean that the container never left the root cgroup.
//!
//! **The control.** Without a cgroup namespace the helper sees the host path
//! of its cgroup.
//!
//! **Verdict.** Pass when every hierarchy reads `/` inside while the host
//! sees the container's own cgroup.

use crate::lab::{cgroup_parent, Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let own_cgroup = format!("/{}/", cgroup_parent());
    let (inside, from_host) = paths(lab, lab.spec(&["cgroup"]), Role::Isolated)?;
    let mut spec = lab.spec(&["cgroup"]);
    spec.namespaces.cgroup = false;
    let (outside, _) = paths(lab, spec, Role::Control)?;
    let all_root = inside.split(';').all(|line| line.ends_with(":/"));
    let placed = from_host.lines().any(|line| line.contains(&own_cgroup));
    let mut evidence = Evidence::new();
    evidence
        .saw("/proc/self/cgroup inside", &inside)
        .saw("the same, read from the host", from_host.replace('\n', ";"));
    let mut control = Evidence::new();
    control.saw("/proc/self/cgroup without CLONE_NEWCGROUP", &outside);
    Ok(Judgement {
        evidence,
        control,
        control_separated: outside.contains(&own_cgroup),
        property: Property::held_if(
            all_root && placed,
            if placed {
                format!("the container saw {inside}")
            } else {
                "the container was never placed in a cgroup of its own".to_owned()
            },
        ),
    }
    .finding())
}

/// Runs the helper; returns (what it saw, what the host sees for it).
fn paths(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(String, String), LabError> {
    let mut session = lab.start(spec, role)?;
    let inside = session.expect("cgroup")?;
    let from_host = std::fs::read_to_string(format!("/proc/{}/cgroup", session.pid()))?;
    session.finish()?;
    Ok((inside, from_host))
}
