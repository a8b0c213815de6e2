//! # `cgroup.ns`: a cgroup namespace shows the container's own cgroup as `/`
//!
//! **The feature.** `/proc/<pid>/cgroup` names, for each hierarchy, the
//! cgroup a process is in. Without a cgroup namespace that path gives away
//! the host's layout (`/mydocker/<id>`). `unshare(CLONE_NEWCGROUP)` makes the
//! caller's *current* cgroups the roots of its view: from then on its own
//! cgroup reads as `/`. That is why the runtime unshares it only after the
//! parent has moved init into the container's cgroup.
//!
//! **How the probe looks.** The helper reports the lines of its
//! `/proc/self/cgroup`. From the host, the probe reads the same file for the
//! helper's pid: it must name the container's own cgroup below the probe
//! parent, or a `/` inside would only mean that the container never left the
//! root cgroup.
//!
//! **The control.** Without a cgroup namespace the helper sees the host path
//! of its cgroup.
//!
//! **Verdict.** Pass when every hierarchy reads `/` inside while the host
//! sees the container's own cgroup.

use crate::lab::cgroup_parent;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.ns",
    property: "a cgroup namespace shows the container's own cgroup as /",
    needs: Needs::NOTHING,
    mutations: &[Mutation::SkipCgroupNamespace],
    why_no_mutation: None,
    selftests: &["cgroup/test_cgcore_*ns*"],
    run,
    inside,
};

/// The helper's report: the lines of its `/proc/self/cgroup`, one per
/// hierarchy (`ID:CONTROLLERS:PATH`).
#[derive(Debug, Serialize, Deserialize)]
struct CgroupLines(Vec<String>);

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let own_cgroup = format!("/{}/", cgroup_parent());
    let (inside, from_host) = paths(lab, lab.spec(&()), Role::Isolated)?;
    let mut spec = lab.spec(&());
    spec.namespaces.cgroup = false;
    let (outside, _) = paths(lab, spec, Role::Control)?;
    // An empty report shows nothing at the root: not a pass.
    let all_root = !inside.is_empty() && inside.iter().all(|line| line.ends_with(":/"));
    let placed = from_host.iter().any(|line| line.contains(&own_cgroup));
    Ok(Judgement {
        evidence: evidence![
            "/proc/self/cgroup inside" => inside.join(";"),
            "the same, read from the host" => from_host.join(";"),
        ],
        control: evidence!["/proc/self/cgroup without CLONE_NEWCGROUP" => outside.join(";")],
        control_separated: outside.iter().any(|line| line.contains(&own_cgroup)),
        property: Property::held_if(
            all_root && placed,
            if placed {
                format!("the container saw {}", inside.join(";"))
            } else {
                "the container was never placed in a cgroup of its own".to_owned()
            },
        ),
    }
    .finding())
}

/// Runs the helper; returns (what it saw, what the host sees for it), each
/// a line per hierarchy.
fn paths(
    lab: &Lab,
    spec: runtime::Spec,
    role: Role,
) -> Result<(Vec<String>, Vec<String>), LabError> {
    let mut session = lab.start(spec, role)?;
    let CgroupLines(inside) = session.receive()?;
    let from_host = std::fs::read_to_string(format!("/proc/{}/cgroup", session.pid()))?;
    session.finish()?;
    Ok((inside, from_host.lines().map(str::to_owned).collect()))
}

/// Inside: reports our `/proc/self/cgroup`, then waits, so that the probe
/// reads the same file for us from the host while we live.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let table = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    helper.say(&CgroupLines(table.lines().map(str::to_owned).collect()))
}
