//! Static binaries for guests: the probe runner and its helper, and the VM's
//! PID 1. They run where there is no dynamic loader and no libc (a probe
//! rootfs holding one file, an initramfs), so they are linked statically.

use std::path::PathBuf;
use std::process::Command;

use crate::rootfs::is_static_elf;

/// This machine's architecture with glibc. glibc with `crt-static` needs
/// nothing beyond the toolchain a fresh machine already has (musl would need
/// `rustup target add`); its static archives come with `libc6-dev`.
pub const TARGET: &str = concat!(env!("XTASK_ARCH"), "-unknown-linux-gnu");

/// The cargo profile for guest binaries (optimised, no LTO; see Cargo.toml).
const PROFILE: &str = "guest";

/// The probe runner, run once per probe, inside VMs and on hosts.
pub const PROBE_RUNNER: &str = "mydocker-probe";
/// The helper that runs inside every probe container.
pub const PROBE_HELPER: &str = "mydocker-probe-helper";
/// The VM's PID 1.
pub const VM_INIT: &str = "mydocker-vm-init";

/// Where a static binary lands after [`build`].
pub fn path(binary: &str) -> PathBuf {
    crate::target_dir()
        .join("static")
        .join(TARGET)
        .join(PROFILE)
        .join(binary)
}

/// Builds the probe helper alone (what the host probe tests need).
pub fn build_helper() -> Result<PathBuf, String> {
    build(&[("probe-helper", PROBE_HELPER)]).map(|mut paths| paths.remove(0))
}

/// Builds every guest binary.
pub fn build_all() -> Result<Vec<PathBuf>, String> {
    build(&[
        ("probe-helper", PROBE_HELPER),
        ("probes", PROBE_RUNNER),
        ("vm-tests", VM_INIT),
    ])
}

/// Builds `(package, binary)` pairs statically (incrementally) and checks
/// that each result really is static.
///
/// They have a target directory of their own: their RUSTFLAGS differ from
/// the main build's, so sharing one would rebuild both every time, and a
/// nested cargo (as when a test calls this) must not wait on the outer
/// cargo's lock.
fn build(binaries: &[(&str, &str)]) -> Result<Vec<PathBuf>, String> {
    crate::prereq::ensure_package(
        "libc6-dev",
        &format!("/usr/lib/{}-linux-gnu/libc.a", env!("XTASK_ARCH")),
    )?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args([
        "build",
        "--quiet",
        "--profile",
        PROFILE,
        "--target",
        TARGET,
        "--target-dir",
    ]);
    command.arg(crate::target_dir().join("static"));
    for (package, binary) in binaries {
        command.args(["--package", package, "--bin", binary]);
    }
    let status = command
        .current_dir(crate::workspace_root())
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .status()
        .map_err(|e| format!("run cargo to build the static guest binaries: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building the static guest binaries failed ({status})"
        ));
    }
    binaries
        .iter()
        .map(|(_, binary)| {
            let built = path(binary);
            match is_static_elf(&built)? {
                true => Ok(built),
                false => Err(format!(
                    "{} was linked dynamically; it must be static",
                    built.display()
                )),
            }
        })
        .collect()
}
