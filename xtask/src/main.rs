//! `cargo xtask`: the project's automation, in Rust rather than shell.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

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

/// The README's test command: prerequisites, then `cargo test` over the workspace.
fn ci() -> Result<(), String> {
    xtask::prereq::ensure_package("busybox-static", xtask::rootfs::BUSYBOX)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["test", "--workspace", "--locked"])
        .current_dir(xtask::workspace_root())
        .status()
        .map_err(|e| format!("run cargo test: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo test failed ({status})"))
    }
}
