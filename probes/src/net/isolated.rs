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

use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "net.isolated",
    property: "a new network namespace has only a loopback device",
    needs: Needs::config(&["NET_NS"]),
    mutations: &[Mutation::SkipNetNamespace],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// Devices the kernel itself creates in every new network namespace.
const PER_NAMESPACE: &[&str] = &[
    "lo", "tunl0", "sit0", "ip6tnl0", "gre0", "gretap0", "erspan0", "ip_vti0", "ip6_vti0",
    "ip6gre0",
];

/// The helper's report: the network devices its namespace holds.
#[derive(Debug, Serialize, Deserialize)]
struct Devices(Vec<String>);

impl Devices {
    /// The devices the kernel does not create in every new namespace.
    fn foreign(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(String::as_str)
            .filter(|d| !PER_NAMESPACE.contains(d))
            .collect()
    }
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let own = namespace("self")?;
    let (inside_ns, inside) = look(lab, lab.spec(&()), Role::Isolated)?;
    let mut spec = lab.spec(&());
    spec.namespaces.net = false;
    let (control_ns, host) = look(lab, spec, Role::Control)?;
    let stray = inside.foreign();
    Ok(Judgement {
        evidence: evidence![
            "probe's network namespace" => &own,
            "container's network namespace" => &inside_ns,
            "devices inside" => inside.0.join(","),
        ],
        control: evidence![
            "namespace without CLONE_NEWNET" => &control_ns,
            "devices listed" => host.0.join(","),
        ],
        control_separated: control_ns == own && !host.foreign().is_empty(),
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
fn look(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(String, Devices), LabError> {
    let mut session = lab.start(spec, role)?;
    let devices = session.receive()?;
    let ns = namespace(&session.pid().to_string())?;
    session.finish()?;
    Ok((ns, devices))
}

/// The network namespace of a process, as the kernel names it (`net:[inode]`).
fn namespace(pid: &str) -> Result<String, LabError> {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.to_string_lossy().into_owned())
        .or_broken(format!("read /proc/{pid}/ns/net"))
}

/// Inside: lists the devices of our network namespace from `/proc/net/dev`
/// (two header lines, then `name: counters`), then waits.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let table = std::fs::read_to_string("/proc/net/dev").context("read /proc/net/dev")?;
    let devices = table
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split(':').next()?.trim().to_owned()))
        .collect();
    helper.say(&Devices(devices))
}
