//! Renderings of the matrix: for a terminal, for a CI summary (Markdown),
//! and for CI test reporting (JUnit XML). JSON is the serde form.

use std::fmt::Write;
use std::time::Duration;

use crate::matrix::{Changes, Entry, Matrix};

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
            let code = match entry {
                Entry::Pass => "32",
                Entry::Unsupported(..) => "33",
                Entry::Inconclusive(_) => "35",
                _ => "1;31",
            };
            let _ = write!(
                out,
                "  {}",
                paint(&format!("{:width$}", entry.label()), code)
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
                Entry::Pass => {}
            }
        }
    }
    if !details.is_empty() {
        out.push_str("\ndetails:\n");
        out.push_str(&details);
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
    for probe in matrix.probe_ids() {
        let _ = write!(out, "| `{probe}` |");
        for cell in &matrix.cells {
            let entry = matrix.entry(cell, &probe);
            let text = match &entry {
                Entry::Pass => "pass".to_owned(),
                Entry::Unsupported(_, options) if !options.is_empty() => {
                    format!("unsupported ({})", options.join(", "))
                }
                Entry::Inconclusive(_) => "_inconclusive_".to_owned(),
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
        for probe in matrix.probe_ids() {
            if let Entry::Inconclusive(reason) = matrix.entry(cell, &probe) {
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
    out
}

/// JUnit XML: one test suite per cell, one test case per probe.
pub fn junit(matrix: &Matrix) -> String {
    use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
    let mut report = quick_junit::Report::new("mydocker-vm-test");
    for cell in &matrix.cells {
        let mut suite = TestSuite::new(cell.column());
        suite.set_time(Duration::from_secs_f64(cell.seconds));
        for probe in matrix.probe_ids() {
            let status = match matrix.entry(cell, &probe) {
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
