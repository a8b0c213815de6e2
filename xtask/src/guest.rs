//! Static binaries: for guests, the probe runner and its helper, and the VM's
//! PID 1, which run where there is no dynamic loader and no libc (a probe
//! rootfs holding one file, an initramfs); and the release `mydocker`, which
//! without the loader and shared libc starts faster and smaller.

use std::path::{Path, PathBuf};
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
/// The start timer `cargo xtask bench` runs inside a cgroup v2 guest.
pub const GUEST_BENCH: &str = "mydocker-guest-bench";

/// Where a static binary lands after [`build`].
pub fn path(binary: &str) -> PathBuf {
    path_in(PROFILE, binary)
}

fn path_in(profile: &str, binary: &str) -> PathBuf {
    crate::target_dir()
        .join("static")
        .join(TARGET)
        .join(profile)
        .join(binary)
}

/// `mydocker` from the release profile (with its link-time optimisation),
/// linked statically: `target/static/<target>/release/mydocker`. Its peak
/// RSS is about 3.3 MiB against 4.0 MiB for the dynamic build.
pub fn build_static_mydocker() -> Result<PathBuf, String> {
    build_in("release", &[("runtime", "mydocker")]).map(|mut paths| paths.remove(0))
}

/// Builds the probe helper alone (what the host probe tests need).
pub fn build_helper() -> Result<PathBuf, String> {
    build(&[("probes", PROBE_HELPER)]).map(|mut paths| paths.remove(0))
}

/// Builds the guest bench and every guest binary a guest boots with.
pub fn build_bench() -> Result<PathBuf, String> {
    build_all()?;
    build(&[("vm-tests", GUEST_BENCH)]).map(|mut paths| paths.remove(0))
}

/// Builds every guest binary.
pub fn build_all() -> Result<Vec<PathBuf>, String> {
    build(&[
        ("probes", PROBE_HELPER),
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
    build_in(PROFILE, binaries)
}

fn build_in(profile: &str, binaries: &[(&str, &str)]) -> Result<Vec<PathBuf>, String> {
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
        profile,
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
            let built = path_in(profile, binary);
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

/// Runs the static probe runner on this host, `run` with `args`, and reads
/// the JSON report it writes to `report`. Its exit code is not the verdict:
/// the report is.
pub fn run_probes_here(args: &[String], report: &Path) -> Result<probes::Report, String> {
    let _ = std::fs::remove_file(report);
    let status = Command::new(path(PROBE_RUNNER))
        .arg("run")
        .args(args)
        .args(["--format", "json", "--out"])
        .arg(report)
        .arg("--helper")
        .arg(path(PROBE_HELPER))
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| format!("cannot run the probe runner: {e}"))?;
    let text = std::fs::read_to_string(report)
        .map_err(|e| format!("the probe runner ended with {status} and wrote no report: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("the report does not parse: {e}"))
}
