//! Project automation shared by `cargo xtask` and the test suites: root
//! filesystems, static guest binaries, the VM matrix, the start-latency
//! bench, the soak under load, the OCI validation suite, podman for the
//! runtime's podman tests, and the Debian packages the project needs.

pub mod bench;
pub mod guest;
pub mod layers;
pub mod oci;
pub mod podman;
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

/// The SHA-256 of a file, in lowercase hex, read in a stream.
pub fn sha256_of(path: &std::path::Path) -> Result<String, String> {
    use sha2::{Digest, Sha256};
    let mut file =
        std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|e| format!("read {}: {e}", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
