//! Project automation shared by `cargo xtask` and the test suites: root
//! filesystems, static guest binaries, the VM matrix, the start-latency
//! bench, the soak under load, the OCI validation suite, and the Debian
//! packages the project needs.

pub mod bench;
pub mod guest;
pub mod layers;
pub mod oci;
pub mod prereq;
pub mod rootfs;
pub mod soak;
pub mod vm;

use std::path::PathBuf;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_owned()
}

/// The cargo target directory (honours `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}
