//! `cargo xtask soak`: the probe suite, run again and again on a loaded
//! machine, to show that a busy machine never makes a probe say FAIL and
//! that every mutation case is still caught as FAIL.
//!
//! It runs the host suite `--host-runs` times and every mutation case
//! `--mutation-rounds` times, then boots every kernel in every cgroup mode
//! `--vm-rounds` times, all while stress-ng loads the host (see `load`).
//! Like the benchmark, it measures the environment as much as the code:
//! run it alone on the machine. It fails on any FAIL, any lost run, any
//! mutation case not caught as FAIL, and any probe that stayed
//! inconclusive in every run of a column.

mod load;
mod tally;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use load::{Load, Plan};
use tally::{Findings, MutationCase};

use crate::guest;

/// What `cargo xtask soak` takes on its command line.
#[derive(clap::Args, Debug, Clone)]
pub struct Options {
    /// Runs of the whole probe suite on this host, under load
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub host_runs: u32,
    /// Runs of every mutation case on this host, under the same load
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub mutation_rounds: u32,
    /// Rounds of VM cells; each boots every kernel in both cgroup modes once
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub vm_rounds: u32,
    /// Kernels for the VM rounds (repeatable) [default: the default matrix]
    #[arg(long = "kernel", value_name = "SPEC")]
    pub kernels: Vec<String>,
    /// VMs at once in a round [default: as vm-test]
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// stress-ng CPU workers in this command's own cgroup
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub cpu: u32,
    /// Sibling cgroups of the probes' parent, each with one CPU hog
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub siblings: u32,
    /// Run without any load, for comparison
    #[arg(long)]
    pub no_load: bool,
    /// Where the report goes [default: target/soak]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs the soak, writes `report.md` and `report.json`, prints the report;
/// an error when any probe said FAIL, any run was lost, or any mutation
/// case was not caught.
pub fn run(options: &Options) -> Result<(), String> {
    let findings = soak(options)?;
    if findings.passed() {
        Ok(())
    } else {
        Err("the soak saw a FAIL on an unbroken runtime, a lost run, or a mutation that was not caught (see the report)".into())
    }
}

/// The small soak CI runs: three loaded host runs and every mutation case
/// once under the same load. Returns (passed, failed) checks: each host run
/// without a FAIL, and each mutation case caught.
pub fn smoke() -> Result<(u64, u64), String> {
    let findings = soak(&Options {
        host_runs: 3,
        mutation_rounds: 1,
        vm_rounds: 0,
        kernels: Vec::new(),
        jobs: None,
        cpu: 4,
        siblings: 2,
        no_load: false,
        out: Some(crate::target_dir().join("soak-ci")),
    })?;
    let host = findings.columns.get("host").cloned().unwrap_or_default();
    let missed = findings.mutations.iter().filter(|c| !c.fine()).count() as u64;
    let caught = findings.mutations.len() as u64 - missed;
    let good_runs = u64::from(host.runs - host.failed_runs);
    let bad_runs = u64::from(host.failed_runs + host.no_report);
    Ok((good_runs + caught, bad_runs + missed))
}

fn soak(options: &Options) -> Result<Findings, String> {
    let start = Instant::now();
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| crate::target_dir().join("soak"));
    std::fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
    if !crate::prereq::is_root() {
        return Err("the soak runs containers and creates cgroups: run it as root".into());
    }
    crate::prereq::ensure_package("stress-ng", load::STRESS_NG)?;
    eprintln!("xtask: building the static probe runner and helper");
    guest::build_all()?;
    let kernels = if options.kernels.is_empty() {
        crate::vm::kernel::KernelSpec::defaults()
    } else {
        options
            .kernels
            .iter()
            .map(|k| crate::vm::kernel::KernelSpec::parse(k))
            .collect::<Result<_, _>>()?
    };

    let plan = Plan {
        cpu_workers: if options.no_load { 0 } else { options.cpu },
        sibling_hogs: if options.no_load { 0 } else { options.siblings },
        at_most: Duration::from_secs(6 * 3600),
    };
    let mut findings = Findings {
        load: if options.no_load {
            "none".into()
        } else {
            Load::describe(&plan)
        },
        ..Findings::default()
    };
    {
        let _load = Load::start(plan)?;
        // Let the hogs spread over the CPUs before the first measurement.
        std::thread::sleep(Duration::from_secs(2));
        let host = findings.columns.entry("host".into()).or_default();
        for run in 1..=options.host_runs {
            eprintln!("xtask: loaded host run {run} of {}", options.host_runs);
            let file = out.join(format!("host-run-{run}.json"));
            match run_suite(&[], None, &file) {
                Ok(report) => host.add(&report, run),
                Err(why) => host.lost(run, &why),
            }
        }
        for round in 1..=options.mutation_rounds {
            eprintln!(
                "xtask: every mutation case under load, round {round} of {}",
                options.mutation_rounds
            );
            for probe in probes::PROBES {
                for mutation in probe.mutations {
                    let name = mutation.to_string();
                    if let Some(why) = mutation.inapplicable() {
                        findings.mutations.push(MutationCase {
                            probe: probe.id.into(),
                            mutation: name,
                            outcome: "not here".into(),
                            detail: why,
                        });
                        continue;
                    }
                    let file = out.join("mutation.json");
                    let report = run_suite(&[probe.id], Some(&name), &file).ok();
                    findings
                        .mutations
                        .push(MutationCase::judge(probe.id, &name, report.as_ref()));
                }
            }
        }
        for round in 1..=options.vm_rounds {
            eprintln!(
                "xtask: loaded VM round {round} of {}: every kernel in both cgroup modes",
                options.vm_rounds
            );
            let dir = out.join(format!("vm-round-{round}"));
            let _ = crate::vm::run(crate::vm::Args {
                kernels: kernels.clone(),
                modes: vm_tests::CgroupMode::BOTH.to_vec(),
                probes: Vec::new(),
                jobs: options.jobs,
                format: crate::vm::Format::Markdown,
                out: dir.clone(),
                baseline: None,
                // A loaded TCG cell takes 230-310 s here (35 s idle); one
                // that has not powered off by 900 s hung, and is booted again.
                timeout: Duration::from_secs(900),
                retries: 1,
                retries_inconclusive: probes::runner::DEFAULT_RETRIES_INCONCLUSIVE,
                strict: false,
                kselftests: Vec::new(),
            })?;
            add_matrix(&mut findings, &dir.join("matrix.json"), round);
        }
    }
    findings.seconds = start.elapsed().as_secs_f64();
    let report = findings.markdown();
    let write = |name: &str, text: String| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))
    };
    write("report.md", report.clone())?;
    write(
        "report.json",
        serde_json::to_string_pretty(&findings).expect("findings serialize"),
    )?;
    println!("{report}");
    eprintln!("xtask: soak report in {}", out.join("report.md").display());
    Ok(findings)
}

/// Runs the suite on this host: all probes, or `ids` exactly, with `mutation`.
fn run_suite(ids: &[&str], mutation: Option<&str>, file: &Path) -> Result<probes::Report, String> {
    let mut args: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    if !ids.is_empty() {
        args.push("--exact".into());
    }
    if let Some(mutation) = mutation {
        args.extend(["--mutation".into(), mutation.to_owned()]);
    }
    guest::run_probes_here(&args, file)
}

/// Adds one VM round's cells, one column per kernel and mode.
fn add_matrix(findings: &mut Findings, path: &Path, round: u32) {
    let matrix = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<vm_tests::matrix::Matrix>(&t).ok());
    let Some(matrix) = matrix else {
        findings.columns.entry("vm".into()).or_default().lost(
            round,
            &format!("{} is missing or unreadable", path.display()),
        );
        return;
    };
    for cell in &matrix.cells {
        let tally = findings.columns.entry(cell.column()).or_default();
        match (
            &cell.failure,
            cell.guest.as_ref().and_then(|g| g.probes.as_ref()),
        ) {
            (None, Some(report)) => tally.add(report, round),
            (Some(why), _) => tally.lost(round, why),
            (None, None) => tally.lost(
                round,
                cell.guest
                    .as_ref()
                    .and_then(|g| g.error.as_deref())
                    .unwrap_or("the guest ran no probes"),
            ),
        }
        for crash in &cell.crashes {
            tally
                .notes
                .push(format!("run {round}: booted again after: {crash}"));
        }
    }
}
