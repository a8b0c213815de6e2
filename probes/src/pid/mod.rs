//! PID namespace probes.

pub mod pid_init_reaps;
pub mod pid_view;
