//! # `net.isolated`: a new network namespace has only a loopback device
//!
//! **The feature.** Network devices, addresses, routes, firewall rules and
//! sockets all belong to a network namespace. `clone(CLONE_NEWNET)` creates
//! an empty one: the kernel adds a loopback device `lo` (down) and nothing
//! else. Links appear only when someone moves one in, as the runtime does
//! with a veth peer when the container joins a network.
//!
//! **How the probe looks.** The helper lists the interfaces in
//! `/proc/net/dev`, which shows the devices of the reader's network namespace.
//!
//! **The control.** The same helper without `CLONE_NEWNET` lists the host's
//! devices. On a machine whose only device is `lo` the control cannot
//! discriminate, and the probe says so instead of passing.
//!
//! **Verdict.** Pass when `lo` is the only device inside.

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let links = |spec: runtime::Spec, role: Role| -> Result<String, LabError> {
        let (facts, _) = lab.run(spec, role)?;
        facts
            .get("links")
            .map(str::to_owned)
            .ok_or_else(|| LabError::Broken(format!("no links: {:?}", facts.0)))
    };
    let inside = links(lab.spec(&["net-links"]), Role::Isolated)?;
    let mut spec = lab.spec(&["net-links"]);
    spec.namespaces.net = false;
    let host = links(spec, Role::Control)?;
    let mut evidence = Evidence::new();
    evidence.saw("devices inside", &inside);
    let mut control = Evidence::new();
    control.saw("devices without CLONE_NEWNET", &host);
    Ok(Finding::judge(
        evidence,
        control,
        host.split(',').any(|l| l != "lo"),
        inside == "lo",
        format!("the container saw devices {inside}"),
    ))
}
