//! A run's report and its renderings: human, TAP 13 (kselftest style), JSON
//! and JUnit XML.
//!
//! An inconclusive probe is neither pass nor FAIL in any of them: TAP gives
//! it `ok N id # SKIP inconclusive: REASON` (TAP's own directive, so every
//! TAP consumer counts it as skipped, never as passed or failed) and
//! kselftest's totals line counts it under `skip`, with a separate
//! `# inconclusive: N` line; JUnit marks it skipped with the message
//! `inconclusive: REASON`.

use std::fmt::Write;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runner::ProbeResult;
use crate::verdict::{Evidence, Verdict};

/// Everything one run of the suite found, with the machine it ran on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `uname -r` of the kernel under test.
    pub kernel: String,
    /// The cgroup layout the probes ran under.
    pub cgroup_mode: String,
    /// `host`, `kvm` or `tcg`.
    pub accelerator: crate::Accelerator,
    pub results: Vec<ProbeResult>,
    /// What the suite found left on the machine afterwards.
    #[serde(default)]
    pub leftovers: Vec<String>,
}

/// How many results ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub unsupported: usize,
    pub inconclusive: usize,
}

impl Report {
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for result in &self.results {
            match result.verdict {
                Verdict::Pass => totals.pass += 1,
                Verdict::Fail(_) => totals.fail += 1,
                Verdict::Unsupported(_) => totals.unsupported += 1,
                Verdict::Inconclusive(_) => totals.inconclusive += 1,
            }
        }
        totals
    }

    /// True when a probe failed or the suite left something behind: the
    /// condition for a non-zero exit. With `strict`, an inconclusive probe
    /// counts too.
    pub fn failed(&self, strict: bool) -> bool {
        let totals = self.totals();
        totals.fail > 0 || (strict && totals.inconclusive > 0) || !self.leftovers.is_empty()
    }

    fn heading(&self) -> String {
        format!(
            "kernel {}, {}, accelerator {}",
            self.kernel, self.cgroup_mode, self.accelerator
        )
    }
}

fn name(result: &ProbeResult) -> String {
    match &result.mutation {
        Some(m) => format!("{} [{m}]", result.id),
        None => result.id.clone(),
    }
}

/// The inconclusive attempts the runner tried again, one line each.
fn write_attempts(out: &mut String, indent: &str, result: &ProbeResult) {
    for (n, attempt) in result.attempts.iter().enumerate() {
        let _ = writeln!(
            out,
            "{indent}attempt {} of {}: {}: {}",
            n + 1,
            result.attempts.len() + 1,
            attempt.verdict.label(),
            attempt.verdict.reason().unwrap_or("")
        );
    }
}

fn write_evidence(out: &mut String, indent: &str, label: &str, evidence: &Evidence) {
    if evidence.is_empty() {
        return;
    }
    let _ = writeln!(out, "{indent}{label}:");
    for fact in &evidence.0 {
        let _ = writeln!(out, "{indent}  {}: {}", fact.name, fact.value);
    }
}

/// The report for a person at a terminal: one line per probe, evidence under
/// each failure, totals last. `color` adds ANSI colours to the verdicts.
pub fn human(report: &Report, color: bool) -> String {
    let paint = |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let mut out = format!("mydocker probes: {}\n\n", report.heading());
    let width = report
        .results
        .iter()
        .map(|r| name(r).len())
        .max()
        .unwrap_or(0);
    for result in &report.results {
        let colour = match result.verdict {
            Verdict::Pass => "32",
            Verdict::Fail(_) => "1;31",
            Verdict::Unsupported(_) => "33",
            Verdict::Inconclusive(_) => "35",
        };
        let label = paint(&format!("{:<12}", result.verdict.label()), colour);
        let _ = writeln!(
            out,
            "  {label}  {:<width$}  {:>6.2}s  {}",
            name(result),
            result.seconds,
            result.property
        );
        match &result.verdict {
            Verdict::Fail(reason) | Verdict::Inconclusive(reason) => {
                let _ = writeln!(out, "      why: {reason}");
                write_evidence(&mut out, "      ", "evidence", &result.evidence);
                write_evidence(&mut out, "      ", "control", &result.control);
            }
            Verdict::Unsupported(reason) => {
                let _ = writeln!(out, "      why: {reason}");
            }
            Verdict::Pass => {}
        }
        write_attempts(&mut out, "      ", result);
        for event in &result.kernel_events {
            let _ = writeln!(out, "      kernel: {event}");
        }
    }
    let totals = report.totals();
    let _ = writeln!(
        out,
        "\n{} probes: {} passed, {} failed, {} unsupported, {} inconclusive",
        report.results.len(),
        totals.pass,
        totals.fail,
        totals.unsupported,
        totals.inconclusive
    );
    for leftover in &report.leftovers {
        let _ = writeln!(
            out,
            "{}",
            paint(&format!("left behind: {leftover}"), "1;31")
        );
    }
    out
}

/// TAP version 13 as the kernel's kselftest prints it: `ok N id # time`,
/// `# SKIP reason` for unsupported probes, diagnostics as `#` lines, and the
/// kselftest totals line.
pub fn tap(report: &Report) -> String {
    let mut out = String::from("TAP version 13\n");
    let _ = writeln!(out, "1..{}", report.results.len());
    let _ = writeln!(out, "# mydocker probes: {}", report.heading());
    for (i, result) in report.results.iter().enumerate() {
        let n = i + 1;
        match &result.verdict {
            Verdict::Pass => {
                let _ = writeln!(out, "ok {n} {} # {:.3}s", name(result), result.seconds);
            }
            Verdict::Unsupported(reason) => {
                // A directive is one line: a newline would end the TAP record.
                let reason = reason.replace(['\n', '\r'], " ");
                let _ = writeln!(out, "ok {n} {} # SKIP {reason}", name(result));
            }
            Verdict::Inconclusive(reason) => {
                let reason = reason.replace(['\n', '\r'], " ");
                let _ = writeln!(out, "ok {n} {} # SKIP inconclusive: {reason}", name(result));
                let mut diagnostics = String::new();
                write_evidence(&mut diagnostics, "", "evidence", &result.evidence);
                write_evidence(&mut diagnostics, "", "control", &result.control);
                for line in diagnostics.lines() {
                    let _ = writeln!(out, "#   {line}");
                }
            }
            Verdict::Fail(reason) => {
                let _ = writeln!(out, "not ok {n} {} # {:.3}s", name(result), result.seconds);
                let mut diagnostics = format!("why: {reason}\n");
                write_evidence(&mut diagnostics, "", "evidence", &result.evidence);
                write_evidence(&mut diagnostics, "", "control", &result.control);
                for line in diagnostics.lines() {
                    let _ = writeln!(out, "#   {line}");
                }
            }
        }
        let mut attempts = String::new();
        write_attempts(&mut attempts, "", result);
        for line in attempts.lines() {
            let _ = writeln!(out, "#   {line}");
        }
        for event in &result.kernel_events {
            let _ = writeln!(out, "# kernel: {event}");
        }
    }
    for leftover in &report.leftovers {
        let _ = writeln!(out, "# left behind: {leftover}");
    }
    let t = report.totals();
    let errors = usize::from(!report.leftovers.is_empty());
    if t.inconclusive > 0 {
        let _ = writeln!(
            out,
            "# inconclusive: {} (counted under skip below)",
            t.inconclusive
        );
    }
    let _ = writeln!(
        out,
        "# Totals: pass:{} fail:{} xfail:0 xpass:0 skip:{} error:{errors}",
        t.pass,
        t.fail,
        t.unsupported + t.inconclusive
    );
    out
}

/// Every verdict with its evidence, as pretty JSON.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("reports always serialize") + "\n"
}

/// JUnit XML, the format CI systems read: one test case per probe.
pub fn junit(report: &Report) -> String {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("mydocker probes ({})", report.heading()));
    for result in &report.results {
        let status = match &result.verdict {
            Verdict::Pass => TestCaseStatus::success(),
            Verdict::Fail(reason) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(reason.as_str());
                status
            }
            Verdict::Unsupported(reason) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(reason.as_str());
                status
            }
            Verdict::Inconclusive(reason) => {
                let mut status = TestCaseStatus::skipped();
                status.set_message(format!("inconclusive: {reason}"));
                status
            }
        };
        let mut case = TestCase::new(name(result), status);
        case.set_classname(result.id.split('.').next().unwrap_or("probe"));
        case.set_time(Duration::from_secs_f64(result.seconds));
        let mut out = String::new();
        write_evidence(&mut out, "", "evidence", &result.evidence);
        write_evidence(&mut out, "", "control", &result.control);
        write_attempts(&mut out, "", result);
        for event in &result.kernel_events {
            let _ = writeln!(out, "kernel: {event}");
        }
        if !out.is_empty() {
            case.set_system_out(out);
        }
        suite.add_test_case(case);
    }
    if !report.leftovers.is_empty() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(report.leftovers.join("; "));
        suite.add_test_case(TestCase::new("suite.leftovers", status));
    }
    let mut xml = quick_junit::Report::new("mydocker-probes");
    xml.add_test_suite(suite);
    xml.to_string().expect("JUnit always serializes")
}
