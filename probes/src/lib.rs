//! Probes: each container isolation property, proven on the running kernel.
//!
//! A probe drives the runtime through its library API, observes the kernel's
//! own interfaces (`/proc`, `/sys/fs/cgroup`, `mountinfo`), and compares
//! what it sees with a control run that lacks the isolation. Each probe is
//! one file, `src/<area>/<property>.rs`: the lesson on the feature, the
//! declaration, the host-side half and the half that runs in the container.

pub mod accelerator;
pub mod catalog;
pub mod counters;
pub mod inside;
pub mod kernel;
pub mod lab;
pub mod mutation;
pub mod netlab;
pub mod prelude;
pub mod probe;
pub mod report;
pub mod runner;
pub mod verdict;

pub use accelerator::Accelerator;
pub use mutation::Mutation;
pub use probe::{Needs, Probe};
pub use report::Report;
pub use runner::ProbeResult;
pub use verdict::{Cause, Evidence, Finding, Verdict};

/// Declares each probe's module, `src/<area>/<name>.rs`, and lists their
/// declarations in [`PROBES`], in the order reports show them.
macro_rules! probes {
    ($($area:ident: [$($name:ident),* $(,)?]),* $(,)?) => {
        $(pub mod $area { $(pub mod $name;)* })*

        /// Every probe, in the order reports show them.
        pub static PROBES: &[&Probe] = &[$($(&$area::$name::PROBE,)*)*];

        /// Each probe's id as its file says it (`area.name`), to check the
        /// declarations against.
        #[cfg(test)]
        pub(crate) const FILE_IDS: &[&str] = &[$($(concat!(stringify!($area), ".", stringify!($name)),)*)*];
    };
}

probes! {
    pid: [view, init_reaps, pidfd],
    mount: [invisible, pivot_root, idmapped],
    uts: [hostname],
    ipc: [isolated],
    time: [ns],
    net: [isolated, veth, port_map],
    cgroup: [cpu_quota, memory_oom, pids, cpuset, ns, kill, freeze, memory_peak, cpu_idle, cpu_burst, psi],
    rootfs: [overlay_cow, volume],
    sec: [caps, proc_masked, no_new_privs, seccomp, landlock, seccomp_notify],
    user: [map, overlay],
}

/// What `mydocker-probe run --progress` prints before each probe's id, so a
/// console log can be searched for the probe that was running when a kernel died.
pub const PROGRESS_PREFIX: &str = "mydocker-probe: running ";
