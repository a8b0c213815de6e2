//! Renderings of the matrix: for a terminal, for a CI summary (Markdown),
//! and for CI test reporting (JUnit XML). JSON is the serde form.

use std::fmt::Write;
use std::time::Duration;

use probes::Verdict;

use crate::agreement::{self, Agreement, CellAgreement};
use crate::cell::CellReport;
use crate::kselftest::{split_row_id, Ending};
use crate::matrix::{results, Changes, Entry, Matrix};

/// The matrix for a terminal: probes down, kernel/mode across, then cell
/// timings and accelerators, every unsupported cell's reason, and the
/// evidence of every failure. `color` adds ANSI colours.
pub fn human(matrix: &Matrix, color: bool) -> String {
    let paint = |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let probes = matrix.probe_ids();
    let columns: Vec<String> = matrix.cells.iter().map(|c| c.column()).collect();
    let first = probes.iter().map(String::len).max().unwrap_or(5).max(5);
    let widths: Vec<usize> = columns.iter().map(|c| c.len().max(11)).collect();
    let mut out = format!("{:first$}", "probe");
    for (column, width) in columns.iter().zip(&widths) {
        let _ = write!(out, "  {column:width$}");
    }
    out.push('\n');
    for probe in &probes {
        let _ = write!(out, "{probe:first$}");
        for (cell, width) in matrix.cells.iter().zip(&widths) {
            let entry = matrix.entry(cell, probe);
            let _ = write!(
                out,
                "  {}",
                paint(&format!("{:width$}", entry.label()), entry.color_code())
            );
        }
        out.push('\n');
    }
    out.push_str("\ncells:\n");
    for cell in &matrix.cells {
        let (release, boot, probing) = cell.guest.as_ref().map_or(("?", 0.0, 0.0), |g| {
            (g.kernel_release.as_str(), g.boot_seconds, g.probe_seconds)
        });
        let _ = writeln!(
            out,
            "  {:18} {:>5.1}s: boot to PID 1 {boot:.1}s, probes {probing:.1}s; accelerator {}, kernel {release}",
            cell.column(),
            cell.seconds,
            cell.accelerator
        );
        for crash in &cell.crashes {
            let _ = writeln!(out, "      booted again after: {crash}");
        }
        if let Some(guest) = &cell.guest {
            for (controller, error) in &guest.controllers_missing {
                let _ = writeln!(out, "      no {controller} controller: {error}");
            }
        }
        for line in selftest_lines(cell) {
            let _ = writeln!(out, "      {line}");
        }
    }
    let mut details = String::new();
    for cell in &matrix.cells {
        if let Some(failure) = &cell.failure {
            let _ = writeln!(
                details,
                "  {} produced no report: {}",
                cell.column(),
                failure.replace('\n', "\n      ")
            );
            continue;
        }
        for probe in &probes {
            match matrix.entry(cell, probe) {
                Entry::Unsupported(reason, options) => {
                    let because = if options.is_empty() {
                        String::new()
                    } else {
                        format!(" [{}]", options.join(", "))
                    };
                    let _ = writeln!(
                        details,
                        "  {} {probe}: unsupported: {reason}{because}",
                        cell.column()
                    );
                }
                entry @ (Entry::Fail(_) | Entry::Missing(_) | Entry::Inconclusive(_)) => {
                    let (label, reason, code) = match &entry {
                        Entry::Inconclusive(reason) => ("inconclusive", reason, "35"),
                        Entry::Fail(reason) | Entry::Missing(reason) => ("FAIL", reason, "1;31"),
                        _ => unreachable!("matched above"),
                    };
                    let _ = writeln!(
                        details,
                        "  {} {probe}: {}",
                        cell.column(),
                        paint(&format!("{label}: {reason}"), code)
                    );
                    if let Some(result) = cell
                        .guest
                        .iter()
                        .flat_map(|g| &g.probes)
                        .flat_map(|r| &r.results)
                        .find(|r| &r.id == probe)
                    {
                        for fact in result.evidence.0.iter().chain(&result.control.0) {
                            let _ = writeln!(details, "      {}: {}", fact.name, fact.value);
                        }
                    }
                }
                Entry::Pass | Entry::Absent(_) => {}
            }
        }
    }
    if !details.is_empty() {
        out.push_str("\ndetails:\n");
        out.push_str(&details);
    }
    out.push_str(&agreement_human(matrix, color));
    out
}

/// What a cell's selftest suites did, one line each: where they ran, how
/// their tests ended, what was not run and why, and any binary that ended
/// badly, ran again or printed output that did not add up.
pub fn selftest_lines(cell: &CellReport) -> Vec<String> {
    let mut lines = Vec::new();
    for suite in cell.guest.iter().flat_map(|g| &g.kselftests) {
        let name = &suite.suite;
        if let Some(error) = &suite.error {
            lines.push(format!("kselftest {name}: could not run: {error}"));
            continue;
        }
        let (mut pass, mut fail, mut unsupported, mut inconclusive) = (0, 0, 0, 0);
        for result in results(cell).filter(|r| split_row_id(&r.id).is_some_and(|(s, _)| s == name))
        {
            match result.verdict {
                Verdict::Pass => pass += 1,
                Verdict::Fail(_) => fail += 1,
                Verdict::Unsupported(_) => unsupported += 1,
                Verdict::Inconclusive(_) => inconclusive += 1,
            }
        }
        let mut binaries: Vec<&str> = suite.runs.iter().map(|r| r.binary.as_str()).collect();
        binaries.dedup();
        lines.push(format!(
            "kselftest {name} ({}): {} binaries, {} tests in {:.1}s: {pass} pass, {fail} FAIL, {unsupported} unsupported, {inconclusive} inconclusive",
            suite.source,
            binaries.len(),
            pass + fail + unsupported + inconclusive,
            suite.seconds
        ));
        for setup in &suite.setup {
            lines.push(format!("kselftest {name}: {setup}"));
        }
        for binary in &binaries {
            let runs: Vec<_> = suite.runs.iter().filter(|r| r.binary == *binary).collect();
            if runs.len() > 1 {
                lines.push(format!(
                    "kselftest {name}/{binary}: ran {} times (tests stayed inconclusive)",
                    runs.len()
                ));
            }
            for run in runs {
                match run.ending {
                    Ending::Exited(_) => {}
                    other => lines.push(format!(
                        "kselftest {name}/{binary}: {} after {:.1}s",
                        other.describe(),
                        run.seconds
                    )),
                }
                for note in &run.notes {
                    lines.push(format!("kselftest {name}/{binary}: {note}"));
                }
            }
        }
        for (test, why) in &suite.not_run {
            lines.push(format!("kselftest {name}: not run: {test}: {why}"));
        }
    }
    lines
}

/// How an agreement reads in a table cell.
fn agreement_label(cell: &CellAgreement) -> String {
    let decisive = cell
        .counterparts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Pass | Verdict::Fail(_)))
        .count();
    match cell.agreement {
        Agreement::Agree => format!("agree ({decisive})"),
        Agreement::Disagree(_) => "DISAGREE".into(),
        Agreement::NotCompared(_) => "-".into(),
    }
}

/// The agreement table for a terminal, with every disagreement's
/// explanation and why a cell could not compare; empty when no probe ran
/// beside its counterparts.
pub fn agreement_human(matrix: &Matrix, color: bool) -> String {
    let rows = agreement::table(matrix);
    if rows.is_empty() {
        return String::new();
    }
    let columns: Vec<String> = matrix.cells.iter().map(|c| c.column()).collect();
    let first = rows.iter().map(|r| r.probe.len()).max().unwrap_or(5).max(5);
    let second = rows
        .iter()
        .map(|r| r.patterns.join(" ").len())
        .max()
        .unwrap_or(9)
        .max(9);
    let widths: Vec<usize> = columns.iter().map(|c| c.len().max(11)).collect();
    let mut out = String::from(
        "\nagreement with the kernel's own selftests of the same property\n(agree (n): both sides passed, or both failed, over n decisive selftests; -: nothing to compare):\n",
    );
    let _ = write!(out, "{:first$}  {:second$}", "probe", "selftests");
    for (column, width) in columns.iter().zip(&widths) {
        let _ = write!(out, "  {column:width$}");
    }
    out.push('\n');
    let mut explained = String::new();
    for row in &rows {
        let _ = write!(
            out,
            "{:first$}  {:second$}",
            row.probe,
            row.patterns.join(" ")
        );
        for (column, width) in columns.iter().zip(&widths) {
            let Some(cell) = row.cells.iter().find(|c| &c.column == column) else {
                let _ = write!(out, "  {:width$}", "");
                continue;
            };
            let text = format!("{:width$}", agreement_label(cell));
            let text = match (&cell.agreement, color) {
                (Agreement::Disagree(_), true) => format!("\x1b[1;31m{text}\x1b[0m"),
                (Agreement::Agree, true) => format!("\x1b[32m{text}\x1b[0m"),
                _ => text,
            };
            let _ = write!(out, "  {text}");
            match &cell.agreement {
                Agreement::Disagree(why) => {
                    let _ = writeln!(explained, "  {column} {}: DISAGREE: {why}", row.probe);
                }
                Agreement::NotCompared(why) => {
                    let _ = writeln!(explained, "  {column} {}: not compared: {why}", row.probe);
                }
                Agreement::Agree => {}
            }
        }
        out.push('\n');
    }
    out.push_str(&explained);
    out
}

/// The agreement table in Markdown, with every disagreement explained.
pub fn agreement_markdown(matrix: &Matrix) -> String {
    let rows = agreement::table(matrix);
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nProbes beside the kernel's own selftests of the same property:\n\n| probe | selftests |",
    );
    for cell in &matrix.cells {
        let _ = write!(out, " {} |", cell.column());
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(matrix.cells.len()));
    out.push('\n');
    let mut disagreements = Vec::new();
    for row in &rows {
        let patterns: Vec<String> = row.patterns.iter().map(|p| format!("`{p}`")).collect();
        let _ = write!(out, "| `{}` | {} |", row.probe, patterns.join(" "));
        for column in matrix.cells.iter().map(|c| c.column()) {
            let text = match row.cells.iter().find(|c| c.column == column) {
                Some(cell) => {
                    if let Agreement::Disagree(why) = &cell.agreement {
                        disagreements.push(format!("- {column} `{}`: {why}", row.probe));
                        format!("**{}**", agreement_label(cell))
                    } else {
                        agreement_label(cell)
                    }
                }
                None => String::new(),
            };
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    if !disagreements.is_empty() {
        out.push_str("\nDisagreements:\n\n");
        out.push_str(&disagreements.join("\n"));
        out.push('\n');
    }
    out
}

/// The container options of each kernel, as a table.
pub fn config_table(matrix: &Matrix) -> String {
    let mut out = format!("{:32}", "kernel config");
    for kernel in &matrix.kernels {
        let _ = write!(out, "  {:14}", kernel.label);
    }
    out.push('\n');
    for option in crate::config::container_options() {
        let _ = write!(out, "{:32}", format!("CONFIG_{option}"));
        for kernel in &matrix.kernels {
            let value = kernel.config.get(option).map_or("?", |t| t.label());
            let _ = write!(out, "  {value:14}");
        }
        out.push('\n');
    }
    out
}

/// A Markdown table fit for a CI job summary.
pub fn markdown(matrix: &Matrix) -> String {
    let mut out = String::from("| probe |");
    for cell in &matrix.cells {
        let _ = write!(out, " {} |", cell.column());
    }
    out.push_str("\n|---|");
    out.push_str(&"---|".repeat(matrix.cells.len()));
    out.push('\n');
    let ids = matrix.probe_ids();
    for probe in &ids {
        let _ = write!(out, "| `{probe}` |");
        for cell in &matrix.cells {
            let entry = matrix.entry(cell, probe);
            let text = match &entry {
                Entry::Pass => "pass".to_owned(),
                Entry::Unsupported(_, options) if !options.is_empty() => {
                    format!("unsupported ({})", options.join(", "))
                }
                Entry::Inconclusive(_) => "_inconclusive_".to_owned(),
                Entry::Absent(_) => "–".to_owned(),
                other => format!("**{}**", other.label()),
            };
            let _ = write!(out, " {text} |");
        }
        out.push('\n');
    }
    out.push_str("\n| cell | accelerator | boot to PID 1 (s) | probes (s) | whole cell (s) |\n|---|---|---|---|---|\n");
    for cell in &matrix.cells {
        let (boot, probing) = cell
            .guest
            .as_ref()
            .map_or((0.0, 0.0), |g| (g.boot_seconds, g.probe_seconds));
        let _ = writeln!(
            out,
            "| {} | {} | {boot:.1} | {probing:.1} | {:.1} |",
            cell.column(),
            cell.accelerator,
            cell.seconds
        );
    }
    let mut unsettled = Vec::new();
    for cell in &matrix.cells {
        for probe in &ids {
            if let Entry::Inconclusive(reason) = matrix.entry(cell, probe) {
                unsettled.push(format!("- {} `{probe}`: {reason}", cell.column()));
            }
        }
    }
    if !unsettled.is_empty() {
        out.push_str("\nInconclusive after every retry (neither pass nor FAIL):\n\n");
        out.push_str(&unsettled.join("\n"));
        out.push('\n');
    }
    let crashes: Vec<String> = matrix
        .cells
        .iter()
        .flat_map(|c| {
            c.crashes
                .iter()
                .map(move |crash| format!("- {}: {crash}", c.column()))
        })
        .collect();
    if !crashes.is_empty() {
        out.push_str(
            "
Guest kernel crashes and hangs (each cell was booted again):

",
        );
        out.push_str(&crashes.join("\n"));
        out.push('\n');
    }
    let selftests: Vec<String> = matrix
        .cells
        .iter()
        .flat_map(|c| {
            selftest_lines(c)
                .into_iter()
                .map(move |line| format!("- {}: {line}", c.column()))
        })
        .collect();
    if !selftests.is_empty() {
        out.push_str("\nThe kernel's own selftests in each cell:\n\n");
        out.push_str(&selftests.join("\n"));
        out.push('\n');
    }
    out.push_str(&agreement_markdown(matrix));
    out
}

/// JUnit XML: one test suite per cell, one test case per probe.
pub fn junit(matrix: &Matrix) -> String {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut report = quick_junit::Report::new("mydocker-vm-test");
    let ids = matrix.probe_ids();
    for cell in &matrix.cells {
        let mut suite = TestSuite::new(cell.column());
        suite.set_time(Duration::from_secs_f64(cell.seconds));
        for probe in &ids {
            let status = match matrix.entry(cell, probe) {
                // Another kernel's selftest: no test case in this suite.
                Entry::Absent(_) => continue,
                Entry::Pass => TestCaseStatus::success(),
                Entry::Unsupported(reason, options) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!("{reason} {}", options.join(", ")).trim().to_owned());
                    s
                }
                Entry::Fail(reason) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(reason);
                    s
                }
                Entry::Inconclusive(reason) => {
                    let mut s = TestCaseStatus::skipped();
                    s.set_message(format!("inconclusive: {reason}"));
                    s
                }
                Entry::Missing(reason) => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(reason);
                    s
                }
            };
            let mut case = TestCase::new(probe.clone(), status);
            case.set_classname(cell.column());
            suite.add_test_case(case);
        }
        report.add_test_suite(suite);
    }
    report.to_string().expect("JUnit always serializes")
}

/// The baseline comparison, for a terminal.
pub fn changes(changes: &Changes) -> String {
    let mut out = String::new();
    for (title, list) in [
        ("regressions against the baseline", &changes.regressions),
        (
            "inconclusive where the baseline passed (not a regression)",
            &changes.unsettled,
        ),
        ("improvements over the baseline", &changes.improvements),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(out, "{title}:");
        for c in list {
            let _ = writeln!(out, "  {} {}: {} -> {}", c.column, c.probe, c.was, c.now);
        }
    }
    out
}
