//! `cargo test -p probes`: every probe on this host, one libtest trial each,
//! then every mutation case, which must make its probe fail.
//!
//! Filters, `--list`, `--exact` and `--ignored` work as in cargo test. An
//! Unsupported probe shows as ignored, with its reason; so does one that
//! stayed inconclusive after its retries (neither pass nor FAIL). A mutation
//! case must come out FAIL: inconclusive is not catching the defect. Each trial runs the
//! probe in a `mydocker-probe __probe` process of its own. Trials run one at
//! a time unless `--test-threads` says otherwise: the CPU-quota probe's
//! control needs a whole CPU, and a 2-core machine has no spare one.

use std::time::Duration;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use probes::runner::{self, Options, ProbeResult};
use probes::{Cause, Mutation, Verdict, PROBES};

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = args.test_threads.or(Some(1));
    let options = Options {
        exe: env!("CARGO_BIN_EXE_mydocker-probe").into(),
        helper: xtask::guest::build_helper()
            .unwrap_or_else(|e| panic!("cannot build the probe helper: {e}")),
        timeout: Duration::from_secs(60),
        retries_inconclusive: runner::DEFAULT_RETRIES_INCONCLUSIVE,
    };
    let mut trials = Vec::new();
    for probe in PROBES {
        let opts = options.clone();
        trials.push(Trial::ignorable_test(probe.id, move || {
            let result = runner::run_isolated(&opts, probe, None);
            match &result.verdict {
                Verdict::Pass => Ok(Completion::Completed),
                Verdict::Unsupported(reason) => Ok(Completion::ignored_with(reason)),
                Verdict::Inconclusive(reason) => Ok(Completion::ignored_with(format!(
                    "inconclusive after {} attempts: {reason}",
                    result.attempts.len() + 1
                ))),
                Verdict::Fail(_) => Err(explain(&result)),
            }
        }));
        for &mutation in probe.mutations {
            let opts = options.clone();
            trials.push(Trial::ignorable_test(
                format!("mutation::{}::{mutation}", probe.id),
                move || mutation_is_caught(&opts, probe, mutation),
            ));
        }
    }
    let conclusion = libtest_mimic::run(&args, trials);
    let leftovers = runner::leftovers();
    if !leftovers.is_empty() {
        eprintln!(
            "the probes left things behind:\n  {}",
            leftovers.join("\n  ")
        );
        std::process::exit(101);
    }
    conclusion.exit();
}

/// The deliberate defect must turn the probe's verdict into Fail.
fn mutation_is_caught(
    options: &Options,
    probe: &'static probes::Probe,
    mutation: Mutation,
) -> Result<Completion, Failed> {
    if let Some(why) = mutation.inapplicable() {
        return Ok(Completion::ignored_with(why));
    }
    let result = runner::run_isolated(options, probe, Some(mutation));
    match (&result.verdict, result.cause) {
        (Verdict::Fail(_), Some(Cause::Property)) => Ok(Completion::Completed),
        (Verdict::Unsupported(reason), _) => Ok(Completion::ignored_with(format!("probe unsupported here: {reason}"))),
        (Verdict::Pass, _) => Err(format!(
            "{} still passed with the runtime defect {mutation}: it cannot fail, so it proves nothing",
            probe.id
        )
        .into()),
        (Verdict::Inconclusive(_), _) => Err(format!(
            "{} could not tell with the runtime defect {mutation}: a defect must be caught as FAIL, not inconclusive\n{}",
            probe.id,
            explain(&result).message().unwrap_or("")
        )
        .into()),
        // Failing for another reason (a broken run) is not catching the defect.
        (Verdict::Fail(_), _) => Err(format!("{} failed with {mutation}, but not because the isolation broke:\n{}", probe.id, explain(&result).message().unwrap_or("")).into()),
    }
}

/// The failure message: the reason, then the evidence of both runs.
fn explain(result: &ProbeResult) -> Failed {
    let report = probes::Report {
        kernel: String::new(),
        cgroup_mode: String::new(),
        accelerator: probes::Accelerator::Host,
        results: vec![result.clone()],
        leftovers: Vec::new(),
    };
    probes::report::human(&report, false).into()
}
