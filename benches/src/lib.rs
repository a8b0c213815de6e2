//! Fixtures for the start benchmarks: the rootfs, a private state root and
//! cgroup parent, a throwaway network namespace with one bridge network, and
//! the container variants the benchmarks compare.

use std::path::PathBuf;
use std::process::Command;

use runtime::network::{Networks, Request};
use runtime::parse::NanoCpus;
use runtime::store::Store;
use runtime::{Namespaces, Outcome, Spec};

/// The cgroup parent of every benchmark container, removed at the end.
pub const CGROUP_PARENT: &str = "mydocker-bench-criterion";

/// The bridge network of [`Variant::Bridge`]. It lives in the benchmark's
/// own network namespace, so its subnet cannot meet any real one.
const NETWORK: &str = "benchnet";
const SUBNET: &str = "10.231.0.0/16";

/// What a benchmarked container gets, each variant adding one thing to the
/// one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// UTS, PID, mount, IPC and cgroup namespaces; the host's network.
    NamespacesOnly,
    /// Plus a network namespace of its own (only `lo`).
    NetNamespace,
    /// Plus a 64 MiB memory limit and one CPU's worth of quota: the
    /// configuration the README's goals are stated for.
    Limits,
    /// Plus a veth pair to a bridge, an address and a default route.
    Bridge,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::NamespacesOnly,
        Variant::NetNamespace,
        Variant::Limits,
        Variant::Bridge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::NamespacesOnly => "namespaces_only",
            Variant::NetNamespace => "plus_netns",
            Variant::Limits => "plus_memory_cpu_limits",
            Variant::Bridge => "plus_veth_bridge",
        }
    }
}

/// Everything the benchmarks share; dropping it removes what they created.
pub struct Fixture {
    pub rootfs: PathBuf,
    state: tempfile::TempDir,
}

impl Fixture {
    /// Checks that we can run containers, builds the rootfs if needed, and
    /// moves this thread into a network namespace of its own, so that the
    /// bridge, the veth pairs and the NAT rules never touch the host's.
    pub fn new() -> Fixture {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the start benchmarks create namespaces and cgroups: run them as root"
        );
        let rootfs = xtask::rootfs::default_path();
        if !rootfs.join("bin/busybox").exists() {
            xtask::rootfs::build_busybox(&rootfs)
                .unwrap_or_else(|e| panic!("cannot build the benchmark rootfs: {e}"));
        }
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("unshare a network namespace for the benchmarks");
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(
            up.is_ok_and(|s| s.success()),
            "cannot bring up lo in the benchmarks' network namespace (is iproute2 installed?)"
        );
        let state = tempfile::tempdir().expect("create a state root");
        Networks::new(state.path())
            .create(&Store::new(state.path()), NETWORK, SUBNET, None)
            .unwrap_or_else(|e| panic!("cannot create the bridge network {NETWORK}: {e}"));
        Fixture { rootfs, state }
    }

    /// A spec that runs `/bin/true` (busybox, static) as `variant` says.
    pub fn spec(&self, variant: Variant) -> Spec {
        let mut spec = Spec::new(&self.rootfs, vec!["/bin/true".into()]);
        spec.cgroup_parent = CGROUP_PARENT.into();
        spec.namespaces = Namespaces {
            net: variant != Variant::NamespacesOnly,
            ..Namespaces::default()
        };
        if matches!(variant, Variant::Limits | Variant::Bridge) {
            spec.limits.memory = Some(64 << 20);
            spec.limits.cpus = Some(NanoCpus(1_000_000_000));
        }
        if variant == Variant::Bridge {
            spec.network = Some(Request {
                network: NETWORK.into(),
                ip: None,
                publish: Vec::new(),
            });
        }
        spec
    }

    /// Runs one container to its end. A start that fails, or a teardown that
    /// leaves something, stops the benchmark: it would time the wrong thing.
    pub fn run(&self, spec: &Spec) -> Outcome {
        let outcome = runtime::run(spec, self.state.path())
            .unwrap_or_else(|e| panic!("the benchmark container did not run: {e}"));
        assert_eq!(
            outcome.exit_code, 0,
            "/bin/true exited {}",
            outcome.exit_code
        );
        if let Some(e) = &outcome.cleanup_error {
            panic!("teardown left something behind: {e}");
        }
        outcome
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let store = Store::new(self.state.path());
        if let Err(e) = Networks::new(self.state.path()).remove(&store, NETWORK) {
            eprintln!("benches: cannot remove the network {NETWORK}: {e}");
        }
        if let Err(e) = runtime::cgroup::remove_parent(CGROUP_PARENT) {
            eprintln!("benches: cannot remove the cgroup parent {CGROUP_PARENT}: {e}");
        }
    }
}
