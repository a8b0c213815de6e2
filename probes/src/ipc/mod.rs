//! IPC namespace probes.

pub mod ipc_isolated;
