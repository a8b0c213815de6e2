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
    /// Build mydocker as a static release binary (target/static/x86_64-unknown-linux-gnu/release/mydocker)
    Static,
    /// Install what the tests need, then run the whole test suite
    Ci,
    /// Check that the runtime's modules form DESIGN.md's layers: no import upwards, no cycle
    Layers,
    /// Boot kernels under QEMU and run the probe matrix
    #[command(args_conflicts_with_subcommands = true)]
    VmTest(VmTestArgs),
    /// Start latency of mydocker against runc, crun, bwrap, unshare and fork+exec (run as root, under the machine lock)
    Bench(xtask::bench::Options),
    /// Build runtime-tools' OCI validation programs (vendored) and run each against a runtime, counting ok and not ok (run as root)
    OciValidate(xtask::oci::Options),
    /// The probe suite again and again under stress-ng load, on the host and in VMs: no FAIL may appear, every mutation must be caught
    Soak(xtask::soak::Options),
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
        Task::Static => xtask::guest::build_static_mydocker()
            .map(|path| println!("mydocker ready at {}", path.display())),
        Task::Ci => ci(),
        Task::Layers => layers(),
        Task::VmTest(VmTestArgs {
            merge: Some(VmTestCommand::Run(run)),
            ..
        }) => return vm_test_run(run),
        Task::VmTest(args) => vm_test(args),
        Task::Bench(options) => xtask::bench::run(&options),
        Task::Soak(options) => xtask::soak::run(&options),
        Task::OciValidate(options) => xtask::oci::run(&options).map(drop),
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
    /// debian-5.10, debian-6.1, debian-6.12, debian-7.2, debian-7.3, host, or PATH[:MODULES] of a bzImage (repeatable) [default: the first four, at the versions ci/kernels.lock pins]
    #[arg(long = "kernel", value_name = "SPEC")]
    kernels: Vec<String>,
    /// Resolve the newest packages of each kernel (the --kernel ones, or the default matrix and every series the lock holds), download and check them, rewrite ci/kernels.lock and print what changed; boots nothing
    #[arg(long)]
    update_kernels: bool,
    /// Which cgroup modes to boot each kernel in
    #[arg(long, value_enum, default_value_t = Modes::Both)]
    cgroup: Modes,
    /// Run only probes whose id contains one of these (repeatable)
    #[arg(long = "probe", value_name = "FILTER")]
    probes: Vec<String>,
    /// VMs to run at once [default: one per CPU under TCG, which runs a guest on one host thread; one per two CPUs under KVM]
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
    /// Times to boot a cell again after its guest kernel crashed (each crash is still reported)
    #[arg(long, default_value_t = 1)]
    retries: u32,
    /// Times each guest runs an inconclusive probe again before reporting it inconclusive
    #[arg(long, value_name = "N", default_value_t = probes::runner::DEFAULT_RETRIES_INCONCLUSIVE)]
    retries_inconclusive: u32,
    /// Fail the run when a probe stays inconclusive, not only on FAIL
    #[arg(long)]
    strict: bool,
    /// Inject this defect into the runtime in every guest (a name `mydocker-probe run --mutation` takes); the run passes when each probe that lists it says FAIL
    #[arg(long, value_name = "NAME", conflicts_with = "baseline")]
    mutation: Option<probes::Mutation>,
    /// Also run the kernel's own selftests of this tools/testing/selftests directory (cgroup, timens, pidfd, mount_setattr) after the probes in every guest, each built from that guest kernel's linux-source package (repeatable, or comma-separated)
    #[arg(long = "kselftest", value_name = "SUITE", value_delimiter = ',', value_parser = suite_name, conflicts_with = "mutation")]
    kselftests: Vec<String>,
}

/// A selftests directory's name: one path component, nothing else.
fn suite_name(text: &str) -> Result<String, String> {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a selftests directory's name: expected one of tools/testing/selftests' directories, such as {}",
            xtask::vm::kselftest::KNOWN_SUITES.join(", ")
        ))
    }
}

#[derive(Subcommand)]
enum VmTestCommand {
    /// Boot one guest set up as a matrix cell and run a static command in it instead of the probes; its output streams here and its exit code is ours (125: the guest failed; 2: bad input)
    Run(VmRunArgs),
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
        /// Fail when a probe stayed inconclusive, not only on FAIL
        #[arg(long)]
        strict: bool,
    },
    /// What differs between two kernels: the probes whose verdict changed in each cgroup mode, with the reasons, the config options whose state changed, and the exact releases
    Diff {
        /// A kernel of the matrix (debian-6.1), one cgroup mode of it (debian-6.1/v2), a matrix JSON file, or FILE:LABEL[/MODE]
        #[arg(value_name = "A")]
        a: String,
        /// The kernel to compare A with, named the same ways
        #[arg(value_name = "B")]
        b: String,
        /// The matrix the kernel labels are read from [default: target/vm-test/matrix.json, the last run's]
        #[arg(long, value_name = "FILE")]
        matrix: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = xtask::vm::DiffFormat::Human)]
        format: xtask::vm::DiffFormat,
    },
}

#[derive(clap::Args)]
struct VmRunArgs {
    /// debian-5.10, debian-6.1, debian-6.12, debian-7.2, debian-7.3, or PATH[:MODULES] of a bzImage
    #[arg(long, value_name = "SPEC", default_value = xtask::vm::run::DEFAULT_KERNEL)]
    kernel: String,
    /// The cgroup mode the guest sets up: v1 or v2
    #[arg(long, value_name = "MODE", default_value_t = xtask::vm::run::DEFAULT_MODE)]
    cgroup: vm_tests::CgroupMode,
    /// Seconds the guest may run before it counts as hung
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Directory for the initramfs, the console and the stream [default: target/vm-test-run]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The command: a static executable's path on this host, then its arguments
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<std::ffi::OsString>,
}

/// `vm-test run`: the command's exit code, 2 for bad input, 125 when the
/// guest failed, each error in one `xtask:` line (details may follow).
fn vm_test_run(args: VmRunArgs) -> ExitCode {
    let result = xtask::vm::run::run(xtask::vm::run::Args {
        kernel: Some(args.kernel),
        mode: args.cgroup,
        command: args.command,
        out: args
            .out
            .unwrap_or_else(|| xtask::target_dir().join("vm-test-run")),
        timeout: std::time::Duration::from_secs(args.timeout),
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("xtask: {}", error.message());
            ExitCode::from(error.exit_code())
        }
    }
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
            strict,
        }) => xtask::vm::merge(
            &dirs,
            &out.unwrap_or_else(default_out),
            format,
            baseline.as_deref(),
            strict,
        )?,
        Some(VmTestCommand::Diff {
            a,
            b,
            matrix,
            format,
        }) => {
            let matrix = matrix.unwrap_or_else(|| default_out().join("matrix.json"));
            return xtask::vm::diff(&a, &b, &matrix, format);
        }
        Some(VmTestCommand::Run(_)) => unreachable!("main runs `vm-test run` itself"),
        None if args.update_kernels => {
            return xtask::vm::kernel::update_lock(&args.kernels);
        }
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
            xtask::vm::run_mutated(
                xtask::vm::Args {
                    kernels,
                    modes,
                    probes: args.probes,
                    jobs: args.jobs,
                    format: args.format,
                    out: args.out.unwrap_or_else(default_out),
                    baseline: args.baseline,
                    timeout: std::time::Duration::from_secs(args.timeout),
                    retries: args.retries,
                    retries_inconclusive: args.retries_inconclusive,
                    strict: args.strict,
                    kselftests: args.kselftests,
                },
                args.mutation,
            )?
        }
    };
    match (passed, args.mutation) {
        (true, _) => Ok(()),
        (false, None) => Err("the matrix has failures or regressions (see above)".into()),
        (false, Some(mutation)) => Err(format!(
            "the mutation {mutation} was not caught everywhere, or a cell has no report (see above)"
        )),
    }
}

/// The kernels CI boots, each in both cgroup modes, at the versions
/// `ci/kernels.lock` pins: the two newest of the default matrix. Both lack
/// v1 memory and cpuset, so the baseline checks that distinction too; 6.12
/// is packaged the old way and 7.2 the new (`linux-binary-*`). The whole
/// default matrix runs sharded in `ci/vm-matrix.yml`.
const CI_KERNELS: &[&str] = &["debian-6.12", "debian-7.2"];
/// The kernel whose own cgroup selftests CI runs, in its v2 cell.
const KSELFTEST_CELL: &str = "debian-6.12";

/// The README's test command: prerequisites, `cargo test` over the
/// workspace, then the VM matrix for [`CI_KERNELS`] against
/// `ci/baseline.json`, then `vm-test run` on one kernel (two boots), then a
/// quick pass of the benchmark. It closes with one totals line over every test and
/// every matrix cell × probe.
fn ci() -> Result<(), String> {
    xtask::prereq::ensure_package("busybox-static", xtask::rootfs::BUSYBOX)?;
    // Networking: NAT goes through nft; the network tests build their own
    // namespaces with ip.
    xtask::prereq::ensure_package("nftables", "/usr/sbin/nft")?;
    xtask::prereq::ensure_package("iproute2", "/usr/sbin/ip")?;
    // runtime/tests/podman.rs drives the runtime through podman and conmon.
    xtask::podman::ensure_podman()?;
    xtask::guest::build_helper()?;
    let mut totals = [0u64; 3];
    let tests = cargo_test(&["--workspace"], &mut totals)?;

    let out = xtask::target_dir().join("vm-test-ci");
    let matrix = xtask::vm::run(xtask::vm::Args {
        kernels: CI_KERNELS
            .iter()
            .map(|k| xtask::vm::kernel::KernelSpec::parse(k))
            .collect::<Result<_, _>>()?,
        modes: vm_tests::CgroupMode::BOTH.to_vec(),
        probes: Vec::new(),
        jobs: None,
        format: xtask::vm::Format::Human,
        out: out.clone(),
        baseline: Some(xtask::workspace_root().join("ci/baseline.json")),
        timeout: std::time::Duration::from_secs(600),
        retries: 1,
        retries_inconclusive: probes::runner::DEFAULT_RETRIES_INCONCLUSIVE,
        strict: false,
        kselftests: Vec::new(),
    });
    let cells = count_matrix(&out.join("matrix.json"));
    for (slot, n) in totals.iter_mut().zip(cells) {
        *slot += n;
    }
    // The kernel's own cgroup selftests on one cell, beside the probes that
    // name them as counterparts: built from linux-source-6.12 at the locked
    // version, run after the probes, compared in the agreement table.
    eprintln!("xtask: the kernel's own cgroup selftests on debian-6.12/v2, beside the probes of the same properties");
    let selftest_out = xtask::target_dir().join("vm-test-ci-kselftest");
    let selftests = xtask::vm::run(xtask::vm::Args {
        kernels: vec![xtask::vm::kernel::KernelSpec::parse(KSELFTEST_CELL)?],
        modes: vec![vm_tests::CgroupMode::V2],
        probes: probes::PROBES
            .iter()
            .filter(|p| p.selftests.iter().any(|s| s.starts_with("cgroup/")))
            .map(|p| p.id.to_owned())
            .collect(),
        jobs: None,
        format: xtask::vm::Format::Human,
        out: selftest_out.clone(),
        baseline: None,
        timeout: std::time::Duration::from_secs(600),
        retries: 1,
        retries_inconclusive: probes::runner::DEFAULT_RETRIES_INCONCLUSIVE,
        strict: false,
        kselftests: vec!["cgroup".into()],
    })
    .and_then(|passed| {
        let compared = xtask::vm::selftests_compared(&selftest_out.join("matrix.json"))?;
        eprintln!("xtask: {compared}");
        Ok(passed)
    });
    let cells = count_matrix(&selftest_out.join("matrix.json"));
    for (slot, n) in totals.iter_mut().zip(cells) {
        *slot += n;
    }
    // `vm-test run` for real, on 6.12 (cached by the matrix above): its
    // ignored tests boot two guests, one whose command exits 3 and one that
    // lists the probes. The workspace run counted them as skipped; now they
    // count as run.
    eprintln!("xtask: `cargo xtask vm-test run` on debian-6.12 (xtask's ignored tests/vm_run.rs)");
    let mut run_totals = [0u64; 3];
    let vm_run = cargo_test(
        &["--package", "xtask", "--test", "vm_run", "--", "--ignored"],
        &mut run_totals,
    );
    totals[0] += run_totals[0];
    totals[1] += run_totals[1];
    totals[2] = totals[2].saturating_sub(run_totals[0] + run_totals[1]);
    // The OCI interface, proved by a client nobody here wrote: every
    // runtime-tools program runc passes passes (OCI.md), within runc's
    // count of failed assertions.
    eprintln!(
        "xtask: runtime-tools' validation programs against mydocker (`cargo xtask oci-validate`)"
    );
    let validation = xtask::oci::run(&xtask::oci::Options {
        runtime: None,
        programs: Vec::new(),
        timeout: 60,
        out: None,
    })
    .and_then(|outcomes| xtask::oci::gate(&outcomes));
    totals[if validation.is_ok() { 0 } else { 1 }] += 1;
    // The benchmark is not a test; a quick pass only proves that it runs.
    eprintln!("xtask: a quick pass of `cargo xtask bench`, to prove it works");
    let bench = xtask::bench::smoke();
    totals[if bench.is_ok() { 0 } else { 1 }] += 1;
    // Verdicts under load: three host runs and every mutation case while
    // stress-ng keeps the machine busy.
    eprintln!("xtask: a small `cargo xtask soak`: the probes on a loaded machine");
    let soak = xtask::soak::smoke();
    match &soak {
        Ok((passed, failed)) => {
            totals[0] += passed;
            totals[1] += failed;
        }
        Err(_) => totals[1] += 1,
    }
    let [passed, failed, ignored] = totals;
    println!("tests: {passed} passed, {failed} failed, {ignored} skipped");
    if !tests.success() {
        return Err(format!("cargo test failed ({tests})"));
    }
    match vm_run {
        Ok(status) if status.success() && run_totals[0] > 0 => {}
        Ok(status) => {
            return Err(format!(
                "the `vm-test run` tests failed ({status}, {} passed)",
                run_totals[0]
            ))
        }
        Err(e) => return Err(format!("the `vm-test run` tests could not run: {e}")),
    }
    validation?;
    bench.map_err(|e| format!("cargo xtask bench --quick failed: {e}"))?;
    match soak {
        Ok((_, 0)) => {}
        Ok((_, failed)) => {
            return Err(format!(
                "the loaded probe runs had {failed} failure(s): a FAIL on an unbroken runtime or an uncaught mutation (target/soak-ci/report.md)"
            ))
        }
        Err(e) => return Err(format!("the small soak could not run: {e}")),
    }
    match selftests {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "the cgroup selftests' cell has a FAIL or no report ({})",
                selftest_out.display()
            ))
        }
        Err(e) => return Err(format!("the cgroup selftests' cell: {e}")),
    }
    match matrix? {
        true => Ok(()),
        false => Err("the VM matrix has failures or regressions against ci/baseline.json".into()),
    }
}

/// `cargo xtask layers`: the graph's counts, then every violation.
fn layers() -> Result<(), String> {
    let src = xtask::workspace_root().join("runtime/src");
    let graph = xtask::layers::read(&src)?;
    println!("runtime: {}", xtask::layers::summary(&src, &graph));
    let found = xtask::layers::violations(&graph);
    for line in &found {
        println!("  {line}");
    }
    if found.is_empty() {
        println!("no import goes up a layer, and none goes round in a cycle");
        Ok(())
    } else {
        Err(format!("{} layering violation(s)", found.len()))
    }
}

/// Runs `cargo test --locked ARGS`, echoing its output, and adds the counts
/// of its `test result:` lines to `totals` (passed, failed, ignored).
fn cargo_test(args: &[&str], totals: &mut [u64; 3]) -> Result<std::process::ExitStatus, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut child = Command::new(cargo)
        .args(["test", "--locked"])
        .args(args)
        .current_dir(xtask::workspace_root())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run cargo test: {e}"))?;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| format!("read cargo test output: {e}"))?;
        println!("{line}");
        if let Some(counts) = line.strip_prefix("test result: ") {
            for (slot, word) in totals.iter_mut().zip(["passed", "failed", "ignored"]) {
                *slot += count_before(counts, word);
            }
        }
    }
    child
        .wait()
        .map_err(|e| format!("wait for cargo test: {e}"))
}

/// (passed, failed, unsupported) over every cell × probe of a matrix file;
/// a missing or unreadable matrix counts as one failure.
fn count_matrix(path: &std::path::Path) -> [u64; 3] {
    use vm_tests::matrix::{Entry, Matrix};
    let Some(matrix) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Matrix>(&t).ok())
    else {
        return [0, 1, 0];
    };
    let mut counts = [0u64; 3];
    let ids = matrix.probe_ids();
    for cell in &matrix.cells {
        for probe in &ids {
            match matrix.entry(cell, probe) {
                Entry::Pass => counts[0] += 1,
                // Neither pass nor fail: counted with the skipped.
                Entry::Unsupported(..) | Entry::Inconclusive(_) => counts[2] += 1,
                Entry::Fail(_) | Entry::Missing(_) => counts[1] += 1,
                // Another kernel's selftest: nothing ran here.
                Entry::Absent(_) => {}
            }
        }
    }
    counts
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
