//! User namespace probes.

pub mod user_map;
