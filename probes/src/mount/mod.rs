//! Mount namespace and root filesystem probes.

pub mod mount_invisible;
pub mod mount_pivot_root;
