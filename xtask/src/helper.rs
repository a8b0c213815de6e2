//! The probe helper, built as a static binary so that a rootfs holding only
//! that one file can run it (in a container, or in a VM's initramfs).

use std::path::PathBuf;
use std::process::Command;

use crate::rootfs::is_static_elf;

/// The target the helper is built for: this machine's architecture with
/// glibc. glibc with `crt-static` needs nothing beyond the toolchain a fresh
/// machine already has (musl would need `rustup target add`).
pub const TARGET: &str = concat!(env!("XTASK_ARCH"), "-unknown-linux-gnu");

/// Where the static helper lands after [`build`].
pub fn path() -> PathBuf {
    crate::target_dir()
        .join("helper")
        .join(TARGET)
        .join("release")
        .join("mydocker-probe-helper")
}

/// Builds the helper (incrementally) and checks that it is really static.
///
/// It has a target directory of its own: its RUSTFLAGS differ from the main
/// build's, so sharing one would rebuild both every time, and a nested cargo
/// (as when a test calls this) must not wait on the outer cargo's lock.
pub fn build() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "--package",
            "probe-helper",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(crate::target_dir().join("helper"))
        .current_dir(crate::workspace_root())
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .status()
        .map_err(|e| format!("run cargo to build the probe helper: {e}"))?;
    if !status.success() {
        return Err(format!("building the probe helper failed ({status})"));
    }
    let binary = path();
    if !is_static_elf(&binary)? {
        return Err(format!(
            "{} was linked dynamically; it must be static",
            binary.display()
        ));
    }
    Ok(binary)
}
