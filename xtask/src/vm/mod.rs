//! `cargo xtask vm-test`: boots each kernel under QEMU in each cgroup mode,
//! runs the probe suite inside, and reports the kernel × mode × probe matrix
//! (under a deliberate defect with `--mutation`). `vm-test run` boots one
//! such guest to run one command instead (see [`run`]).

pub mod initramfs;
pub mod kernel;
pub mod kselftest;
pub mod modules;
pub mod progress;
pub mod qemu;
pub mod run;

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use probes::{Accelerator, Mutation};
use vm_tests::cell::{self, CellReport, CgroupMode, GuestReport};
use vm_tests::matrix::{Entry, KernelInfo, Matrix};
use vm_tests::render;

use crate::guest;
use kernel::{Kernel, KernelSpec};

/// How the matrix is printed on stdout (every format is also written to `--out`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
    Markdown,
}

/// Everything `vm-test` was asked to do.
pub struct Args {
    pub kernels: Vec<KernelSpec>,
    pub modes: Vec<CgroupMode>,
    pub probes: Vec<String>,
    /// VMs at once; `None` picks by accelerator (see `default_jobs`).
    pub jobs: Option<usize>,
    pub format: Format,
    pub out: PathBuf,
    pub baseline: Option<PathBuf>,
    pub timeout: Duration,
    /// Boots of a cell after its guest kernel crashed or the guest hung.
    pub retries: u32,
    /// Runs of an inconclusive probe after the first, inside each guest.
    pub retries_inconclusive: u32,
    /// An inconclusive probe fails the run too.
    pub strict: bool,
    /// The kernel's own selftest suites to run after the probes in every
    /// guest (`--kselftest`), each built from that guest kernel's source.
    pub kselftests: Vec<String>,
}

/// A kernel ready to boot, with its initramfs.
struct Prepared {
    kernel: Kernel,
    initramfs: PathBuf,
    /// The disk with its selftests, when asked for, and how many test
    /// binaries it holds.
    selftests: Option<(PathBuf, usize)>,
}

/// One unit of work.
enum Job {
    Vm { prepared: usize, mode: CgroupMode },
    Host,
}

/// Runs the matrix; true when nothing failed and nothing regressed.
pub fn run(args: Args) -> Result<bool, String> {
    run_mutated(args, None)
}

/// Runs the matrix with every probe runner injecting `mutation`
/// (`--mutation`), or none. Under a mutation, true when each probe that
/// lists it said FAIL (see [`caught`]); the baseline is not consulted.
pub fn run_mutated(args: Args, mutation: Option<Mutation>) -> Result<bool, String> {
    let wall = Instant::now();
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("create {}: {e}", args.out.display()))?;
    let vms: Vec<&KernelSpec> = args
        .kernels
        .iter()
        .filter(|k| **k != KernelSpec::Host)
        .collect();
    if !vms.is_empty() {
        crate::prereq::ensure_package("qemu-system-x86", qemu::QEMU)?;
        crate::prereq::ensure_package("dpkg", "/usr/bin/dpkg-deb")?;
        crate::prereq::ensure_package("nftables", NFT)?;
    }
    eprintln!("xtask: building the static guest binaries");
    guest::build_all()?;
    let mut prepared = Vec::new();
    let mut infos = Vec::new();
    if !args.kselftests.is_empty() && args.kernels.contains(&KernelSpec::Host) {
        eprintln!("xtask: the host column runs no selftests: they run only in guests");
    }
    for spec in &vms {
        let kernel = kernel::prepare(spec)?;
        let selftests = selftest_disk(spec, &kernel, &args)?;
        let initramfs = build_initramfs(&kernel, &args.out, selftests.is_some())?;
        infos.push(KernelInfo {
            label: kernel.label.clone(),
            source: kernel.source.clone(),
            config: kernel
                .config
                .as_ref()
                .and_then(|c| std::fs::read_to_string(c).ok())
                .map(|t| vm_tests::config::read(&t))
                .unwrap_or_default(),
        });
        prepared.push(Prepared {
            kernel,
            initramfs,
            selftests,
        });
    }
    let accelerator = match prepared.first() {
        Some(first) => {
            let (accel, why) =
                qemu::choose_accelerator(&first.kernel.image, &first.initramfs, &args.out)?;
            eprintln!("xtask: accelerator {why}");
            accel
        }
        None => Accelerator::Host,
    };
    let mut jobs: VecDeque<Job> = VecDeque::new();
    for index in 0..prepared.len() {
        for &mode in &args.modes {
            jobs.push_back(Job::Vm {
                prepared: index,
                mode,
            });
        }
    }
    if args.kernels.contains(&KernelSpec::Host) {
        infos.push(KernelInfo {
            label: "host".into(),
            source: "the running kernel".into(),
            config: host_config(),
        });
        jobs.push_back(Job::Host);
    }
    let total = jobs.len();
    let queue = Mutex::new(jobs);
    let results = Mutex::new(Vec::new());
    let progress =
        progress::Progress::new(total, probes::catalog::select(&args.probes, false).len());
    std::thread::scope(|scope| {
        for _ in 0..args
            .jobs
            .unwrap_or_else(|| default_jobs(accelerator))
            .max(1)
        {
            scope.spawn(|| loop {
                let Some(job) = queue.lock().expect("queue").pop_front() else {
                    break;
                };
                let (column, cell) = match job {
                    Job::Vm { prepared: i, mode } => {
                        let label = &prepared[i].kernel.label;
                        let column = format!("{label}/{mode}");
                        progress.cell_started(&column);
                        let consoles =
                            progress::console_files(&args.out, label, mode, args.retries);
                        let cell =
                            progress.watch(&column, progress::ConsoleTail::new(consoles), || {
                                run_vm_cell(&prepared[i], mode, accelerator, &args, mutation)
                            });
                        (column, cell)
                    }
                    Job::Host => {
                        progress.cell_started("host");
                        ("host".to_owned(), run_host_cell(&args, mutation))
                    }
                };
                progress.cell_finished(&column, &cell);
                results.lock().expect("results").push(cell);
            });
        }
    });
    progress.finish();
    let mut matrix = Matrix {
        kernels: infos,
        cells: Vec::new(),
    };
    matrix.merge(Matrix {
        kernels: Vec::new(),
        cells: results.into_inner().expect("results"),
    });
    write_outputs(&matrix, &args.out)?;
    eprintln!(
        "xtask: {} cells in {:.1}s wall-clock; reports in {}",
        matrix.cells.len(),
        wall.elapsed().as_secs_f64(),
        args.out.display()
    );
    for p in prepared.iter().filter(|p| p.kernel.unpinned) {
        eprintln!("xtask: {}: {}", p.kernel.label, p.kernel.source);
    }
    match mutation {
        None => report(&matrix, args.format, args.baseline.as_deref(), args.strict),
        Some(mutation) => {
            report(&matrix, args.format, None, args.strict)?;
            Ok(caught(&matrix, mutation))
        }
    }
}

/// Under a mutation the expected verdict turns: each probe that lists it
/// must say FAIL in every cell where it can run (unsupported is no escape,
/// only untried). Says per probe where it caught the defect and where not;
/// true when no such probe let it through and every cell reported. The
/// other probes' verdicts are shown and not judged: a defect may well break
/// more than the probes that name it.
fn caught(matrix: &Matrix, mutation: Mutation) -> bool {
    let mut ok = true;
    for cell in matrix.cells.iter().filter(|c| c.failure.is_some()) {
        eprintln!("xtask: {}: no report from the guest", cell.column());
        ok = false;
    }
    let ran = matrix.probe_ids();
    let expected: Vec<&str> = probes::PROBES
        .iter()
        .filter(|p| p.mutations.contains(&mutation) && ran.iter().any(|id| id == p.id))
        .map(|p| p.id)
        .collect();
    if expected.is_empty() {
        eprintln!(
            "xtask: under the mutation {mutation}: no probe that ran lists it, so none had to FAIL"
        );
        return ok;
    }
    for id in expected {
        let (mut failed, mut escaped, mut untried) = (Vec::new(), Vec::new(), Vec::new());
        for cell in &matrix.cells {
            match matrix.entry(cell, id) {
                Entry::Fail(_) => failed.push(cell.column()),
                Entry::Unsupported(..) => untried.push(cell.column()),
                other => escaped.push(format!("{} ({})", cell.column(), other.label())),
            }
        }
        let mut line = format!("xtask: under the mutation {mutation}: {id}");
        if !failed.is_empty() {
            line.push_str(&format!(" caught it (FAIL) in {}", failed.join(", ")));
        }
        if !escaped.is_empty() {
            line.push_str(&format!("; NOT caught in {}", escaped.join(", ")));
        }
        if !untried.is_empty() {
            line.push_str(&format!("; unsupported in {}", untried.join(", ")));
        }
        eprintln!("{line}");
        ok &= escaped.is_empty();
    }
    ok
}

/// VMs to run at once: TCG runs each guest on one host thread (see
/// `qemu::Boot::command`), so one per CPU; KVM gives each guest a thread per
/// vCPU, so one per two CPUs.
fn default_jobs(accelerator: Accelerator) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if accelerator == Accelerator::Tcg {
        cpus
    } else {
        (cpus / 2).max(1)
    }
}

/// Merges cell files from several runs (for instance CI shards) into one matrix.
pub fn merge(
    dirs: &[PathBuf],
    out: &Path,
    format: Format,
    baseline: Option<&Path>,
    strict: bool,
) -> Result<bool, String> {
    let mut matrix = Matrix::default();
    for dir in dirs {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
        let mut found = 0;
        for path in entries.filter_map(|e| Some(e.ok()?.path())) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with("cell-") && name.ends_with(".json") {
                matrix.merge(vm_tests::diff::read(&path)?);
                found += 1;
            }
        }
        if found == 0 {
            return Err(format!(
                "{} holds no cell-*.json files from `cargo xtask vm-test --out`",
                dir.display()
            ));
        }
    }
    std::fs::create_dir_all(out).map_err(|e| format!("create {}: {e}", out.display()))?;
    write_outputs(&matrix, out)?;
    let passed = report(&matrix, format, baseline, strict)?;
    // Shards are meant to add up to the whole baseline: a cell with no file
    // at all (a shard that crashed before writing) is a regression too.
    let missing = match baseline {
        Some(path) => matrix.missing_from(&vm_tests::diff::read(path)?),
        None => Vec::new(),
    };
    for column in &missing {
        eprintln!("xtask: the baseline has the cell {column}, which no merged directory holds");
    }
    Ok(passed && missing.is_empty())
}

/// Checks that a selftest run compared something: every cell ran its
/// suites, some selftest passed, and some probe was set beside its
/// counterparts with a decisive verdict on both sides; says how many. A run
/// whose guest silently ran no selftest must not pass for one that agreed.
pub fn selftests_compared(matrix: &Path) -> Result<String, String> {
    let matrix = vm_tests::diff::read(matrix)?;
    let mut passed = 0;
    let ids = matrix.probe_ids();
    for cell in &matrix.cells {
        let suites = cell.guest.as_ref().map_or(0, |g| g.kselftests.len());
        if suites == 0 {
            return Err(format!("{} ran no selftest suite", cell.column()));
        }
        for id in &ids {
            if vm_tests::kselftest::split_row_id(id).is_some()
                && matrix.entry(cell, id) == Entry::Pass
            {
                passed += 1;
            }
        }
    }
    let rows = vm_tests::agreement::table(&matrix);
    let compared = rows
        .iter()
        .flat_map(|r| &r.cells)
        .filter(|c| !matches!(c.agreement, vm_tests::agreement::Agreement::NotCompared(_)))
        .count();
    if passed == 0 || compared == 0 {
        return Err(format!(
            "the selftests ran, but {passed} passed and {compared} probe(s) could be compared with them"
        ));
    }
    Ok(format!(
        "{passed} selftests passed; {compared} probe verdicts compared with their counterparts"
    ))
}

/// How `vm-test diff` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiffFormat {
    Human,
    Markdown,
}

/// Prints what differs between two kernels, each a label of `matrix` or a
/// matrix file (see `vm_tests::diff::Spec`).
pub fn diff(a: &str, b: &str, matrix: &Path, format: DiffFormat) -> Result<(), String> {
    let diff = vm_tests::diff::load(a, b, matrix)?;
    let text = match format {
        DiffFormat::Human => vm_tests::diff::human(&diff, std::io::stdout().is_terminal()),
        DiffFormat::Markdown => vm_tests::diff::markdown(&diff),
    };
    print!("{text}");
    Ok(())
}

/// Prints the matrix and the baseline comparison; true when all is well: no
/// FAIL, no missing cell, no regression (and with `strict`, nothing
/// inconclusive).
fn report(
    matrix: &Matrix,
    format: Format,
    baseline: Option<&Path>,
    strict: bool,
) -> Result<bool, String> {
    let text = match format {
        Format::Human => {
            let color = std::io::stdout().is_terminal();
            format!(
                "{}\n{}",
                render::human(matrix, color),
                render::config_table(matrix)
            )
        }
        Format::Json => serde_json::to_string_pretty(matrix).expect("matrices serialize"),
        Format::Junit => render::junit(matrix),
        Format::Markdown => render::markdown(matrix),
    };
    println!("{text}");
    let mut ok = !matrix.failed(strict);
    if let Some(path) = baseline {
        let changes = matrix.compare(&vm_tests::diff::read(path)?);
        let text = render::changes(&changes);
        if text.is_empty() {
            eprintln!("xtask: no change against the baseline {}", path.display());
        } else {
            eprint!("{text}");
        }
        ok &= changes.regressions.is_empty() && (!strict || changes.unsettled.is_empty());
    }
    Ok(ok)
}

/// One JSON file per cell (each a one-cell matrix, so any set merges), the
/// merged matrix, JUnit XML and a Markdown table.
fn write_outputs(matrix: &Matrix, out: &Path) -> Result<(), String> {
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
    };
    for cell in &matrix.cells {
        let single = Matrix {
            kernels: matrix.kernel(&cell.kernel).cloned().into_iter().collect(),
            cells: vec![cell.clone()],
        };
        write(
            &format!("cell-{}-{}.json", cell.kernel, cell.cgroup_mode),
            serde_json::to_string_pretty(&single).expect("serializes"),
        )?;
    }
    write(
        "matrix.json",
        serde_json::to_string_pretty(matrix).expect("serializes"),
    )?;
    write("junit.xml", render::junit(matrix))?;
    write("matrix.md", render::markdown(matrix))
}

/// The host's nft, which the runtime uses for NAT: a dynamic program, so it
/// travels with the libraries it names (the guest has the same loader path).
const NFT: &str = "/usr/sbin/nft";

/// `program` and every shared library `ldd` says it loads.
fn with_libraries(program: &str) -> Result<Vec<PathBuf>, String> {
    let output = std::process::Command::new("ldd")
        .arg(program)
        .output()
        .map_err(|e| format!("run ldd {program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "ldd {program} failed: is it installed, and dynamic?"
        ));
    }
    let mut files = vec![PathBuf::from(program)];
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        // "libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = line
            .split("=>")
            .last()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if path.starts_with('/') {
            files.push(PathBuf::from(path));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Builds (or finds cached) each asked-for selftest suite from the
/// kernel's own source and writes the disk the guest runs them from;
/// `None` when none was asked for.
fn selftest_disk(
    spec: &KernelSpec,
    kernel: &Kernel,
    args: &Args,
) -> Result<Option<(PathBuf, usize)>, String> {
    if args.kselftests.is_empty() {
        return Ok(None);
    }
    let mut builds = Vec::new();
    for suite in &args.kselftests {
        let build = kselftest::build(spec, suite)
            .map_err(|e| format!("{}: the {suite} selftests: {e}", kernel.label))?;
        eprintln!(
            "xtask: {}: {suite} selftests from {} {}{}: {} test binaries",
            kernel.label,
            build.key.package,
            build.key.version,
            if build.cached { " (cached)" } else { "" },
            build.tests().count()
        );
        for line in build.summary().iter().filter(|l| !l.starts_with("built ")) {
            eprintln!("xtask: {}: {suite}: {line}", kernel.label);
        }
        builds.push(build);
    }
    let image = args.out.join(format!("kselftest-{}.ext4", kernel.label));
    kselftest::write_disk(&builds, &image)?;
    let count = builds.iter().map(|b| b.tests().count()).sum();
    Ok(Some((image, count)))
}

/// Packs the guest binaries and this kernel's modules (with those that read
/// the selftests' disk, when it has one).
fn build_initramfs(kernel: &Kernel, out: &Path, selftests: bool) -> Result<PathBuf, String> {
    let extra = if selftests {
        kselftest::DISK_MODULES
    } else {
        &[]
    };
    let plan = match &kernel.modules {
        Some(dir) => modules::plan_with(dir, extra)?,
        None => modules::Plan::default(),
    };
    if !plan.missing.is_empty() {
        eprintln!(
            "xtask: {}: modules not found (built in or absent): {}",
            kernel.label,
            plan.missing.join(", ")
        );
    }
    let path = out.join(format!("initramfs-{}.cpio", kernel.label));
    let binaries = [
        guest::path(guest::PROBE_RUNNER),
        guest::path(guest::PROBE_HELPER),
    ];
    initramfs::write(
        &path,
        &guest::path(guest::VM_INIT),
        &binaries,
        &plan.load_order,
        &with_libraries(NFT)?,
    )?;
    Ok(path)
}

fn run_vm_cell(
    prepared: &Prepared,
    mode: CgroupMode,
    accelerator: Accelerator,
    args: &Args,
    mutation: Option<Mutation>,
) -> CellReport {
    let label = &prepared.kernel.label;
    // no_timer_check: at boot the kernel checks that the IO-APIC timer
    // ticks within a short window, and a TCG vCPU starved by a loaded host
    // misses it and panics ("IO-APIC + timer doesn't work!", seen in the
    // soak); the check guards real hardware, not an emulated timer.
    let mut append = format!(
        "console=ttyS0 quiet panic=-1 no_timer_check rdinit=/init {}={mode} {}={accelerator} {}",
        cell::CMDLINE_CGROUP,
        cell::CMDLINE_ACCEL,
        mode.kernel_args()
    );
    if !args.probes.is_empty() {
        append.push_str(&format!(
            " {}={}",
            cell::CMDLINE_PROBES,
            args.probes.join(",")
        ));
    }
    if let Some(mutation) = mutation {
        // A mutation's name has no space (kebab-case, or expose:PATH).
        append.push_str(&format!(" {}={mutation}", cell::CMDLINE_MUTATION));
    }
    append.push_str(&format!(
        " {}={}",
        cell::CMDLINE_RETRIES,
        args.retries_inconclusive
    ));
    // The selftests' time comes on top of the probes': a minute per test
    // binary and five more, far beyond what they take (the cgroup suite's
    // nine take about 75 s under TCG), so only a guest that stopped
    // counts as hung.
    let mut timeout = args.timeout;
    if let Some((_, binaries)) = &prepared.selftests {
        append.push_str(&format!(
            " {}={}",
            cell::CMDLINE_KSELFTEST,
            args.kselftests.join(",")
        ));
        timeout += Duration::from_secs(300 + 60 * *binaries as u64);
    }
    let start = Instant::now();
    let mut crashes = Vec::new();
    let outcome = loop {
        let attempt = crashes.len() + 1;
        // Every attempt keeps its own console, so a crash can be read later.
        let suffix = if attempt == 1 {
            String::new()
        } else {
            format!("-attempt{attempt}")
        };
        let boot = qemu::Boot {
            kernel: &prepared.kernel.image,
            initramfs: &prepared.initramfs,
            append: append.clone(),
            accelerator,
            console: args
                .out
                .join(format!("cell-{label}-{mode}{suffix}.console.log")),
            report: args
                .out
                .join(format!("cell-{label}-{mode}{suffix}.report.log")),
            disk: prepared
                .selftests
                .as_ref()
                .map(|(image, _)| image.as_path()),
        };
        let outcome = boot.run(timeout).and_then(|_| {
            let text = std::fs::read_to_string(&boot.report)
                .map_err(|e| boot.failure(&format!("no report file: {e}")))?;
            cell::unframe(&text).map_err(|e| boot.failure(&e))
        });
        // A crash is named from the console; a guest that never powered off
        // hung (under a loaded host, a serial port whose interrupts stopped
        // arriving blocked every write to it while the kernel's own messages,
        // written by polling, still came out). Either is booted again.
        let trouble = outcome.as_ref().err().and_then(|failure| {
            std::fs::read_to_string(&boot.console)
                .ok()
                .and_then(|console| cell::kernel_crash(&console))
                .map(|crash| format!("the guest kernel crashed: {crash}"))
                .or_else(|| {
                    failure
                        .starts_with(qemu::HUNG)
                        .then(|| format!("the guest hung: no report within {timeout:?}"))
                })
        });
        match trouble {
            Some(trouble) if crashes.len() < args.retries as usize => {
                eprintln!(
                    "xtask: {label}/{mode}: attempt {attempt} failed ({trouble}); booting it again"
                );
                crashes.push(format!(
                    "attempt {attempt}: {trouble} (console: {})",
                    boot.console.display()
                ));
            }
            Some(trouble) => break outcome.map_err(|e| format!("{trouble}\n{e}")),
            None => break outcome,
        }
    };
    let (guest, failure) = match outcome {
        Ok(guest) => (Some(guest), None),
        Err(e) => (None, Some(e)),
    };
    CellReport {
        kernel: label.clone(),
        cgroup_mode: mode,
        accelerator,
        seconds: start.elapsed().as_secs_f64(),
        guest,
        failure,
        crashes,
    }
}

/// The host column: the same static probe runner, on the running kernel.
fn run_host_cell(args: &Args, mutation: Option<Mutation>) -> CellReport {
    let start = Instant::now();
    let out = args.out.join("host-probes.json");
    let mut runner_args = args.probes.clone();
    runner_args.push("--retries-inconclusive".into());
    runner_args.push(args.retries_inconclusive.to_string());
    if let Some(mutation) = mutation {
        runner_args.push("--mutation".into());
        runner_args.push(mutation.to_string());
    }
    let report = guest::run_probes_here(&runner_args, &out);
    let mode = if runtime_mode_is_v2() {
        CgroupMode::V2
    } else {
        CgroupMode::V1
    };
    let (guest, failure) = match report {
        Ok(probes) => (
            Some(GuestReport {
                kernel_release: probes.kernel.clone(),
                cgroup_mode: mode,
                boot_seconds: 0.0,
                probe_seconds: start.elapsed().as_secs_f64(),
                controllers: Vec::new(),
                controllers_missing: Vec::new(),
                modules: Vec::new(),
                probes: Some(probes),
                error: None,
                kselftests: Vec::new(),
            }),
            None,
        ),
        Err(e) => (None, Some(e)),
    };
    CellReport {
        kernel: "host".into(),
        cgroup_mode: mode,
        accelerator: Accelerator::Host,
        seconds: start.elapsed().as_secs_f64(),
        guest,
        failure,
        crashes: Vec::new(),
    }
}

fn runtime_mode_is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

/// The running kernel's config, where the distribution keeps it.
fn host_config() -> std::collections::BTreeMap<String, vm_tests::config::Tristate> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    std::fs::read_to_string(format!("/boot/config-{}", release.trim()))
        .map(|t| vm_tests::config::read(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use probes::Verdict;

    fn matrix(verdicts: &[(CgroupMode, Verdict)]) -> Matrix {
        Matrix {
            kernels: Vec::new(),
            cells: verdicts
                .iter()
                .map(|(mode, verdict)| {
                    CellReport::sample(
                        "debian-6.12",
                        *mode,
                        "6.12.118+deb13-amd64",
                        &[
                            ("cgroup.kill", verdict.clone()),
                            ("uts.hostname", Verdict::Fail("broken too".into())),
                        ],
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn a_mutation_is_caught_when_each_probe_that_lists_it_fails() {
        let mutation: Mutation = "skip-teardown-kill".parse().unwrap();
        let unsupported = Verdict::Unsupported("no cgroup.kill on v1".into());
        let fail = Verdict::Fail("process 146 is alive".into());
        // FAIL in v2, untried in v1; uts.hostname does not list it.
        assert!(caught(
            &matrix(&[(CgroupMode::V1, unsupported), (CgroupMode::V2, fail)]),
            mutation
        ));
        assert!(!caught(
            &matrix(&[(CgroupMode::V2, Verdict::Pass)]),
            mutation
        ));
        let unsure = Verdict::Inconclusive("still dying".into());
        assert!(!caught(&matrix(&[(CgroupMode::V2, unsure)]), mutation));
    }

    #[test]
    fn a_selftest_run_that_compared_nothing_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("matrix.json");
        let write = |m: &Matrix| std::fs::write(&path, serde_json::to_string(m).unwrap()).unwrap();
        let mut m = matrix(&[(CgroupMode::V2, Verdict::Pass)]);
        write(&m);
        let why = selftests_compared(&path).unwrap_err();
        assert_eq!(why, "debian-6.12/v2 ran no selftest suite");
        // A suite ran, but no selftest row passed.
        m.cells[0]
            .guest
            .as_mut()
            .unwrap()
            .kselftests
            .push(Default::default());
        write(&m);
        let why = selftests_compared(&path).unwrap_err();
        assert!(why.contains("0 passed"), "{why}");
        // A passing counterpart of cgroup.kill: compared.
        let probes = m.cells[0].guest.as_mut().unwrap().probes.as_mut().unwrap();
        let mut row = probes.results[0].clone();
        row.id = "kselftest.cgroup.test_cgkill_simple".into();
        row.verdict = Verdict::Pass;
        probes.results.push(row);
        m.cells[0].guest.as_mut().unwrap().kselftests[0].suite = "cgroup".into();
        write(&m);
        let said = selftests_compared(&path).unwrap();
        assert!(said.starts_with("1 selftests passed; 1 probe"), "{said}");
    }

    #[test]
    fn a_cell_without_a_report_fails_a_mutation_run() {
        let mutation: Mutation = "skip-uts-ns".parse().unwrap();
        let mut broken = matrix(&[(CgroupMode::V2, Verdict::Pass)]);
        assert!(caught(&broken, mutation), "uts.hostname said FAIL");
        broken.cells[0].guest = None;
        broken.cells[0].failure = Some("the guest hung".into());
        assert!(!caught(&broken, mutation));
    }
}
