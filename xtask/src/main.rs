//! `cargo xtask`: the project's automation, in Rust rather than shell.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "mydocker's project automation")]
struct Xtask {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Build a busybox root filesystem (default: target/rootfs/busybox)
    Rootfs {
        /// Where to put it
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Build the static probe helper (target/helper/...)
    Helper,
    /// Install what the tests need, then run the whole test suite
    Ci,
    /// Boot kernels under QEMU and run the probe matrix
    VmTest,
}

fn main() -> ExitCode {
    let result = match Xtask::parse().task {
        Task::Rootfs { out } => {
            let dest = out.unwrap_or_else(xtask::rootfs::default_path);
            xtask::rootfs::build_busybox(&dest)
                .map(|()| println!("busybox rootfs ready at {}", dest.display()))
        }
        Task::Helper => {
            xtask::helper::build().map(|path| println!("probe helper ready at {}", path.display()))
        }
        Task::Ci => ci(),
        Task::VmTest => Err(
            "vm-test is not built yet: it lands with issue #6 (the kernel × cgroup-mode matrix)"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The README's test command: prerequisites, then `cargo test` over the
/// workspace, closing with one totals line over every test binary.
fn ci() -> Result<(), String> {
    xtask::prereq::ensure_package("busybox-static", xtask::rootfs::BUSYBOX)?;
    xtask::helper::build()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["test", "--workspace", "--locked"])
        .current_dir(xtask::workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run cargo test: {e}"))?;
    let mut totals = [0u64; 3];
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| format!("read cargo test output: {e}"))?;
        println!("{line}");
        if let Some(counts) = line.strip_prefix("test result: ") {
            for (slot, word) in totals.iter_mut().zip(["passed", "failed", "ignored"]) {
                *slot += count_before(counts, word);
            }
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("wait for cargo test: {e}"))?;
    let [passed, failed, ignored] = totals;
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed ({status})"))
    }
}

/// In `ok. 3 passed; 0 failed; ...`, the number written before `word`.
fn count_before(counts: &str, word: &str) -> u64 {
    counts
        .split(';')
        .find_map(|part| {
            part.trim()
                .trim_start_matches("ok. ")
                .trim_start_matches("FAILED. ")
                .strip_suffix(word)
        })
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}
