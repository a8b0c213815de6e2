//! Probes: each container isolation property, proven on the running kernel.
//!
//! A probe drives the runtime through its library API, observes the kernel's
//! own interfaces (`/proc`, `/sys/fs/cgroup`, `mountinfo`), and compares
//! what it sees with a control run that lacks the isolation. Each probe file
//! opens with a lesson on the feature it checks.

pub mod catalog;
pub mod kernel;
pub mod lab;
pub mod mutation;
pub mod report;
pub mod runner;
pub mod verdict;

pub mod cgroup;
pub mod ipc;
pub mod mount;
pub mod net;
pub mod pid;
pub mod rootfs;
pub mod sec;
pub mod user;
pub mod uts;

pub use catalog::{Probe, PROBES};
pub use mutation::Mutation;
pub use report::Report;
pub use runner::ProbeResult;
pub use verdict::{Cause, Evidence, Finding, Verdict};

/// What `mydocker-probe run --progress` prints before each probe's id, so a
/// console log can be searched for the probe that was running when a kernel died.
pub const PROGRESS_PREFIX: &str = "mydocker-probe: running ";
