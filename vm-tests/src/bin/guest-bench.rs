//! `mydocker-guest-bench ROUNDS SETTLE_MS`: times container starts inside a
//! cgroup v2 guest, where crun runs (it refuses the project's hybrid host).
//!
//! `cargo xtask bench` packs this program, the static mydocker, busybox,
//! runc, crun (with their libraries) and the OCI bundle into a guest's
//! initramfs under `/bench`, and runs it there through `vm-test run`. It
//! builds the same busybox root filesystem the host bench starts, starts
//! `/bin/true` once with each runtime (a runtime that fails is reported with
//! its error and left out), then times ROUNDS rounds, each runtime once per
//! round in turn after SETTLE_MS idle, exactly as the host bench does, and
//! then ROUNDS more mydocker starts with its phase trace on. It prints one
//! line, `mydocker-guest-bench {JSON}`, with every sample.
//!
//! Only ratios inside one guest mean anything: under TCG every instruction
//! is emulated, and the guest's root is a tmpfs where the host's is ext4.

#[allow(dead_code)]
#[path = "../../../xtask/src/bench/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../../../xtask/src/bench/phases.rs"]
mod phases;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Where the host put everything (relative paths in the initramfs).
const BENCH: &str = "/bench";
/// The prefix of the one line the host looks for.
const MARKER: &str = "mydocker-guest-bench";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rounds, settle) = match args.as_slice() {
        [rounds, settle] => match (rounds.parse::<u32>(), settle.parse::<u64>()) {
            (Ok(rounds), Ok(settle)) if rounds > 0 => (rounds, Duration::from_millis(settle)),
            _ => usage(&format!(
                "ROUNDS must be a whole number above 0 and SETTLE_MS a whole number, not {rounds:?} and {settle:?}"
            )),
        },
        _ => usage("expected two arguments, ROUNDS and SETTLE_MS"),
    };
    let rootfs = Path::new(BENCH).join("rootfs");
    if let Err(e) = build_rootfs(&rootfs) {
        eprintln!("{MARKER}: cannot build {}: {e}", rootfs.display());
        std::process::exit(1);
    }
    // `mydocker --version` is the floor of starting the binary at all:
    // under TCG a large static binary's exec and first page faults cost
    // far more than on the host.
    let mut runtimes: Vec<Runtime> = [
        "mydocker",
        "runc",
        "crun",
        "mydocker --version",
        "fork+exec",
    ]
    .into_iter()
    .map(|name| Runtime {
        name,
        samples: Vec::new(),
        error: None,
        serial: 0,
    })
    .collect();
    for runtime in &mut runtimes {
        if let Err(e) = measure::start(runtime.name, &mut runtime.command(&rootfs)) {
            eprintln!("{MARKER}: {} failed its first start: {e}", runtime.name);
            runtime.error = Some(e.lines().next().unwrap_or_default().to_owned());
        }
    }
    for _ in 0..rounds {
        for runtime in runtimes.iter_mut().filter(|r| r.error.is_none()) {
            std::thread::sleep(settle);
            match measure::start(runtime.name, &mut runtime.command(&rootfs)) {
                Ok(millis) => runtime.samples.push(millis),
                Err(e) => {
                    eprintln!("{MARKER}: {} failed during the bench: {e}", runtime.name);
                    runtime.error = Some(e.lines().next().unwrap_or_default().to_owned());
                }
            }
        }
    }
    // Where mydocker's time goes here, apart from the timed starts.
    let mydocker = runtimes.iter_mut().find(|r| r.name == "mydocker");
    let phases = match mydocker.filter(|r| r.error.is_none()) {
        Some(runtime) => {
            let trace = Path::new(BENCH).join("phases.trace");
            phases::measure(|| runtime.command(&rootfs), &trace, rounds, settle).unwrap_or_else(
                |e| {
                    eprintln!("{MARKER}: the phase breakdown failed: {e}");
                    Vec::new()
                },
            )
        }
        None => Vec::new(),
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let report = serde_json::json!({
        "kernel": kernel.trim(),
        "rounds": rounds,
        "settle_ms": settle.as_millis() as u64,
        "runtimes": runtimes.iter().map(|r| serde_json::json!({
            "name": r.name,
            "samples_ms": r.samples,
            "error": r.error,
        })).collect::<Vec<_>>(),
        "phases": phases,
    });
    println!("{MARKER} {report}");
}

fn usage(why: &str) -> ! {
    eprintln!("{MARKER}: {why}\nusage: {MARKER} ROUNDS SETTLE_MS");
    std::process::exit(2);
}

/// One runtime under test and what it measured.
struct Runtime {
    name: &'static str,
    samples: Vec<f64>,
    /// The first line of the error that took it out of the bench.
    error: Option<String>,
    /// Numbers the OCI runtimes' container ids.
    serial: u32,
}

impl Runtime {
    /// A command that starts one new container running `/bin/true`, as the
    /// host bench's `peers.rs` starts it.
    fn command(&mut self, rootfs: &Path) -> Command {
        let state = Path::new(BENCH).join("state").join(self.name);
        self.serial += 1;
        match self.name {
            "mydocker" => {
                let mut command = Command::new(Path::new(BENCH).join("mydocker"));
                command
                    .arg("--root")
                    .arg(&state)
                    .args([
                        "run",
                        "--rm",
                        "-m",
                        "64m",
                        "--cgroup-parent",
                        "mydocker-bench",
                    ])
                    .arg(rootfs)
                    .arg("/bin/true");
                command
            }
            "runc" | "crun" => {
                let program = match self.name {
                    "runc" => "/usr/sbin/runc",
                    _ => "/usr/bin/crun",
                };
                let mut command = Command::new(program);
                command
                    .arg("--root")
                    .arg(&state)
                    .args(["run", "--bundle"])
                    .arg(Path::new(BENCH).join("bundle"))
                    .arg(format!("bench-{}-{}", self.name, self.serial));
                command
            }
            "mydocker --version" => {
                let mut command = Command::new(Path::new(BENCH).join("mydocker"));
                command.arg("--version").stdout(std::process::Stdio::null());
                command
            }
            _ => {
                let mut command = Command::new(rootfs.join("bin/busybox"));
                command.arg("true");
                command
            }
        }
    }
}

/// The host bench's root filesystem: busybox and the directories the
/// runtimes mount on. Built here because the initramfs carries no links.
fn build_rootfs(rootfs: &Path) -> std::io::Result<()> {
    for dir in ["bin", "dev", "proc", "sys", "tmp", "etc", "root"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy(Path::new(BENCH).join("busybox"), rootfs.join("bin/busybox"))?;
    for applet in ["true", "sh"] {
        let link = rootfs.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    Ok(())
}
