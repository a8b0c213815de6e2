//! # `net.isolated`: a new network namespace holds no device of the host's
//!
//! **The feature.** Network devices, addresses, routes, firewall rules and
//! sockets all belong to a network namespace, which a process names through
//! `/proc/<pid>/ns/net`. `clone(CLONE_NEWNET)` creates an empty one: the
//! kernel adds a loopback device `lo` (down), and nothing of the host's.
//! Two kinds of device can still appear by themselves. While tunnel modules
//! such as `ipip`, `sit` or `ip_gre` are loaded, each new namespace also gets
//! their fallback devices (`tunl0`, `sit0`, `gre0`, …) unless the sysctl
//! `net.core.fb_tunnels_only_for_init_net` says otherwise. Everything else
//! arrives only when someone moves it in, as the runtime does with a veth
//! peer when the container joins a network.
//!
//! **How the probe looks.** The helper lists the devices in
//! `/proc/net/dev`, which shows the reader's namespace. From the host, the
//! probe compares the helper's `/proc/<pid>/ns/net` with its own.
//!
//! **The control.** The same helper without `CLONE_NEWNET` shares the
//! host's namespace and lists a device besides `lo` (the VM matrix gives each
//! guest a NIC for this). On a machine whose only device is `lo` the control
//! cannot discriminate, and the probe says so instead of passing.
//!
//! **Verdict.** Pass when the namespace differs from the host's and holds no
//! device but `lo` and tunnel fallback devices.

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

/// Devices the kernel itself creates in every new network namespace.
const PER_NAMESPACE: &[&str] = &[
    "lo", "tunl0", "sit0", "ip6tnl0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6_vti0",
    "ip6gre0",
];

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let own = namespace("self")?;
    let (inside_ns, inside) = look(lab, lab.spec(&["net-links"]), Role::Isolated)?;
    let mut spec = lab.spec(&["net-links"]);
    spec.namespaces.net = false;
    let (control_ns, host) = look(lab, spec, Role::Control)?;
    let foreign = |devices: &str| -> Vec<String> {
        devices
            .split(',')
            .filter(|d| !d.is_empty() && !PER_NAMESPACE.contains(d))
            .map(str::to_owned)
            .collect()
    };
    let mut evidence = Evidence::new();
    evidence
        .saw("probe's network namespace", &own)
        .saw("container's network namespace", &inside_ns)
        .saw("devices inside", &inside);
    let mut control = Evidence::new();
    control
        .saw("namespace without CLONE_NEWNET", &control_ns)
        .saw("devices listed", &host);
    let stray = foreign(&inside);
    Ok(Judgement {
        evidence,
        control,
        control_separated: control_ns == own && !foreign(&host).is_empty(),
        property: Property::held_if(
            inside_ns != own && stray.is_empty(),
            if inside_ns == own {
                "the container shares the host's network namespace".to_owned()
            } else {
                format!("the container's namespace holds {}", stray.join(", "))
            },
        ),
    }
    .finding())
}

/// Runs the helper; returns (its namespace, the devices it listed).
fn look(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(String, String), LabError> {
    let mut session = lab.start(spec, role)?;
    let links = session.expect("links")?;
    let ns = namespace(&session.pid().to_string())?;
    session.finish()?;
    Ok((ns, links))
}

/// The network namespace of a process, as the kernel names it (`net:[inode]`).
fn namespace(pid: &str) -> Result<String, LabError> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| LabError::Broken(format!("read /proc/{pid}/ns/net: {e}")))
}
