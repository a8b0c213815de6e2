//! Counting verdicts over many loaded runs, and the soak's report.

use std::collections::BTreeMap;
use std::fmt::Write;

use probes::{Cause, Report, Verdict};
use serde::Serialize;

/// Verdicts over every run of one column (the host, or one kernel and mode).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Suite runs (host runs, or booted cells) that produced a report.
    pub runs: u32,
    /// Runs that produced no report at all (a cell that crashed or hung).
    pub no_report: u32,
    /// Runs with at least one FAIL or leftover.
    pub failed_runs: u32,
    pub pass: u32,
    pub fail: u32,
    pub unsupported: u32,
    /// Results still inconclusive after every retry.
    pub inconclusive: u32,
    /// Inconclusive attempts the runner tried again, in all.
    pub retried_attempts: u32,
    /// Results that were inconclusive at first and settled on a retry.
    pub cleared_by_retry: u32,
    /// Each FAIL, inconclusive and missing report, one line each.
    pub notes: Vec<String>,
    /// Probe id → the runs in which it stayed inconclusive.
    pub inconclusive_by_probe: BTreeMap<String, u32>,
}

impl Tally {
    /// Adds one run's report.
    pub fn add(&mut self, report: &Report, run: u32) {
        self.runs += 1;
        let fails_before = self.fail;
        for result in &report.results {
            let attempts = result.attempts.len() as u32;
            self.retried_attempts += attempts;
            let settled = !matches!(result.verdict, Verdict::Inconclusive(_));
            if attempts > 0 && settled {
                self.cleared_by_retry += 1;
            }
            match &result.verdict {
                Verdict::Pass => self.pass += 1,
                Verdict::Unsupported(_) => self.unsupported += 1,
                Verdict::Fail(why) => {
                    self.fail += 1;
                    self.notes
                        .push(format!("run {run}: {}: FAIL: {why}", result.id));
                }
                Verdict::Inconclusive(why) => {
                    self.inconclusive += 1;
                    *self
                        .inconclusive_by_probe
                        .entry(result.id.clone())
                        .or_default() += 1;
                    self.notes
                        .push(format!("run {run}: {}: inconclusive: {why}", result.id));
                }
            }
            for attempt in &result.attempts {
                self.notes.push(format!(
                    "run {run}: {}: retried after: {}",
                    result.id,
                    attempt.verdict.reason().unwrap_or("")
                ));
            }
        }
        for leftover in &report.leftovers {
            self.fail += 1;
            self.notes
                .push(format!("run {run}: left behind: {leftover}"));
        }
        if self.fail > fails_before {
            self.failed_runs += 1;
        }
    }

    /// A run that produced no report.
    pub fn lost(&mut self, run: u32, why: &str) {
        self.no_report += 1;
        let first = why.lines().next().unwrap_or("no report");
        self.notes.push(format!("run {run}: no report: {first}"));
    }

    /// No FAIL and no lost run: what an unbroken runtime must show. And no
    /// probe that never reached a conclusion (over three runs or more): a
    /// defect must not hide behind a verdict that never settles.
    pub fn clean(&self) -> bool {
        self.fail == 0 && self.no_report == 0 && self.never_settled().is_empty()
    }

    /// Probes inconclusive in every run, once there were three or more.
    pub fn never_settled(&self) -> Vec<&str> {
        self.inconclusive_by_probe
            .iter()
            .filter(|(_, &n)| self.runs >= 3 && n == self.runs)
            .map(|(id, _)| id.as_str())
            .collect()
    }
}

/// How one mutation case came out under load.
#[derive(Debug, Clone, Serialize)]
pub struct MutationCase {
    pub probe: String,
    pub mutation: String,
    /// `caught` (FAIL for the property), `inconclusive`, `passed`,
    /// `failed otherwise` (broke for another reason), or `not here`.
    pub outcome: String,
    pub detail: String,
}

impl MutationCase {
    /// Judges a mutation run's result as the host test does.
    pub fn judge(probe: &str, mutation: &str, report: Option<&Report>) -> MutationCase {
        let result = report.and_then(|r| r.results.first());
        let (outcome, detail) = match result.map(|r| (&r.verdict, r.cause)) {
            Some((Verdict::Fail(why), Some(Cause::Property))) => ("caught", why.clone()),
            Some((Verdict::Fail(why), _)) => ("failed otherwise", why.clone()),
            Some((Verdict::Inconclusive(why), _)) => ("inconclusive", why.clone()),
            Some((Verdict::Unsupported(why), _)) => ("not here", why.clone()),
            Some((Verdict::Pass, _)) => ("passed", "the defect went unnoticed".into()),
            None => ("failed otherwise", "the runner gave no result".into()),
        };
        MutationCase {
            probe: probe.to_owned(),
            mutation: mutation.to_owned(),
            outcome: outcome.to_owned(),
            detail,
        }
    }

    /// Caught, or impossible on this kernel.
    pub fn fine(&self) -> bool {
        matches!(self.outcome.as_str(), "caught" | "not here")
    }
}

/// Everything a soak found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    /// What ran beside the soak.
    pub load: String,
    /// Column (`host`, `debian-6.12/v2`, …) → its tally.
    pub columns: BTreeMap<String, Tally>,
    pub mutations: Vec<MutationCase>,
    pub seconds: f64,
}

impl Findings {
    /// No FAIL, no lost run, every mutation caught.
    pub fn passed(&self) -> bool {
        self.columns.values().all(Tally::clean) && self.mutations.iter().all(MutationCase::fine)
    }

    /// The report, as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "# Soak: the probe suite under load\n\nLoad: {}. Took {:.0} s.\n\n",
            self.load, self.seconds
        );
        out.push_str("| column | runs | results | pass | FAIL | unsupported | inconclusive | retried attempts | cleared by a retry | no report |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
        for (column, t) in &self.columns {
            let _ = writeln!(
                out,
                "| {column} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                t.runs,
                t.pass + t.fail + t.unsupported + t.inconclusive,
                t.pass,
                t.fail,
                t.unsupported,
                t.inconclusive,
                t.retried_attempts,
                t.cleared_by_retry,
                t.no_report
            );
        }
        if !self.mutations.is_empty() {
            let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
            for case in &self.mutations {
                *counts.entry(case.outcome.as_str()).or_default() += 1;
            }
            let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
            let _ = writeln!(
                out,
                "\nMutation cases under the same load: {} ({}).",
                self.mutations.len(),
                summary.join(", ")
            );
            for case in self.mutations.iter().filter(|c| !c.fine()) {
                let _ = writeln!(
                    out,
                    "- {} [{}]: {}: {}",
                    case.probe, case.mutation, case.outcome, case.detail
                );
            }
        }
        for (column, t) in &self.columns {
            for id in t.never_settled() {
                let _ = writeln!(
                    out,
                    "\n**{column} {id}: inconclusive in every run.** It never reached a conclusion, so it proves nothing here."
                );
            }
        }
        let notes: Vec<String> = self
            .columns
            .iter()
            .flat_map(|(column, t)| t.notes.iter().map(move |n| format!("- {column} {n}")))
            .collect();
        if !notes.is_empty() {
            out.push_str("\nEvery FAIL, inconclusive verdict and retry:\n\n");
            out.push_str(&notes.join("\n"));
            out.push('\n');
        }
        out
    }
}
