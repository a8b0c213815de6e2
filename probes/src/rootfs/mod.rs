//! Root filesystem probes: the overlay and volumes.

pub mod rootfs_overlay_cow;
pub mod rootfs_volume;
