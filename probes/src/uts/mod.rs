//! UTS namespace probes.

pub mod uts_hostname;
