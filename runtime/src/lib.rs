//! mydocker's runtime: turns a [`Spec`] into a running, isolated, limited process.
//!
//! The data flows one way: the CLI (or a probe) builds a [`Spec`], [`launch`]
//! creates the cgroup and clones the child into new namespaces, [`init`] sets
//! up the container from inside and execs the command, and the parent waits,
//! reports and tears everything down.

pub mod copy;
pub mod detach;
pub mod error;
pub mod exec;
mod files;
mod hooks;
mod host;
mod ident;
pub mod image;
pub mod inspect;
pub mod lifecycle;
pub mod network;
pub mod oci;
pub mod prune;
pub mod reap;
mod reaper;
pub mod security;
pub mod stats;
pub mod timeline;
pub mod userns;
pub mod volume;

/// Cgroups, a crate of its own as youki's `libcgroups`.
pub use ::cgroups as cgroup;
/// The plain layer, a crate of its own: `runtime::spec` and
/// `runtime::parse` are its modules.
pub use ::spec::{self, parse};
pub use error::{Error, Kind, Result};
pub use spec::{Fault, Faults, Limits, Namespaces, Spec};
pub use timeline::{Phase, Timeline};
pub mod store;

mod channel;
mod init;
mod launch;
mod log_times;
mod mounts;
mod rlimits;
mod rootfs;
mod setup;
mod syscall;
mod tty;

pub use launch::{launch, launch_with, run, Container, Outcome, Stdio};
