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
    /// Build the static probe helper (target/static/...)
    Helper,
    /// Install what the tests need, then run the whole test suite
    Ci,
    /// Boot kernels under QEMU and run the probe matrix
    #[command(args_conflicts_with_subcommands = true)]
    VmTest(VmTestArgs),
}

fn main() -> ExitCode {
    let result = match Xtask::parse().task {
        Task::Rootfs { out } => {
            let dest = out.unwrap_or_else(xtask::rootfs::default_path);
            xtask::rootfs::build_busybox(&dest)
                .map(|()| println!("busybox rootfs ready at {}", dest.display()))
        }
        Task::Helper => xtask::guest::build_helper()
            .map(|path| println!("probe helper ready at {}", path.display())),
        Task::Ci => ci(),
        Task::VmTest(args) => vm_test(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args)]
struct VmTestArgs {
    #[command(subcommand)]
    merge: Option<VmTestCommand>,
    /// debian-6.1, debian-6.12, host, or PATH[:MODULES] of a bzImage (repeatable)
    #[arg(long = "kernel", value_name = "SPEC")]
    kernels: Vec<String>,
    /// Which cgroup modes to boot each kernel in
    #[arg(long, value_enum, default_value_t = Modes::Both)]
    cgroup: Modes,
    /// Run only probes whose id contains one of these (repeatable)
    #[arg(long = "probe", value_name = "FILTER")]
    probes: Vec<String>,
    /// VMs to run at once [default: half the CPUs, at least 1]
    #[arg(long)]
    jobs: Option<usize>,
    #[arg(long, value_enum, default_value_t = xtask::vm::Format::Human)]
    format: xtask::vm::Format,
    /// Directory for cell reports, consoles and merged outputs [default: target/vm-test]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// A matrix.json to compare with; a cell that passed there and not now fails the run
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Seconds a VM may run before it counts as hung
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

#[derive(Subcommand)]
enum VmTestCommand {
    /// Merge cell reports from several runs (for instance CI shards)
    Merge {
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = xtask::vm::Format::Human)]
        format: xtask::vm::Format,
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Modes {
    V1,
    V2,
    Both,
}

fn vm_test(args: VmTestArgs) -> Result<(), String> {
    use vm_tests::CgroupMode;
    let default_out = || xtask::target_dir().join("vm-test");
    let passed = match args.merge {
        Some(VmTestCommand::Merge {
            dirs,
            out,
            format,
            baseline,
        }) => xtask::vm::merge(
            &dirs,
            &out.unwrap_or_else(default_out),
            format,
            baseline.as_deref(),
        )?,
        None => {
            let kernels = if args.kernels.is_empty() {
                xtask::vm::kernel::KernelSpec::defaults()
            } else {
                args.kernels
                    .iter()
                    .map(|k| xtask::vm::kernel::KernelSpec::parse(k))
                    .collect::<Result<_, _>>()?
            };
            let modes = match args.cgroup {
                Modes::V1 => vec![CgroupMode::V1],
                Modes::V2 => vec![CgroupMode::V2],
                Modes::Both => CgroupMode::BOTH.to_vec(),
            };
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            xtask::vm::run(xtask::vm::Args {
                kernels,
                modes,
                probes: args.probes,
                jobs: args.jobs.unwrap_or((cpus / 2).max(1)),
                format: args.format,
                out: args.out.unwrap_or_else(default_out),
                baseline: args.baseline,
                timeout: std::time::Duration::from_secs(args.timeout),
            })?
        }
    };
    if passed {
        Ok(())
    } else {
        Err("the matrix has failures or regressions (see above)".into())
    }
}

/// The README's test command: prerequisites, then `cargo test` over the
/// workspace, closing with one totals line over every test binary.
fn ci() -> Result<(), String> {
    xtask::prereq::ensure_package("busybox-static", xtask::rootfs::BUSYBOX)?;
    xtask::guest::build_helper()?;
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
