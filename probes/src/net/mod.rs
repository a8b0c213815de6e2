//! Network namespace probes.

pub mod net_isolated;
