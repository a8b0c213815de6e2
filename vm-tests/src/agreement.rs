//! Probes beside the kernel's own selftests of the same property: where
//! both ran on one kernel in one cgroup mode, a pass on one side and a
//! FAIL on the other is a disagreement, and the cell must say why.
//!
//! Each probe names its counterparts in its declaration
//! ([`probes::Probe::selftests`]); this module only compares verdicts.

use probes::Verdict;

use crate::kselftest::split_row_id;
use crate::matrix::{results, Matrix};

/// What a probe and its counterpart selftests say together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    /// Both sides passed, or both saw the property broken.
    Agree,
    /// One side passed where the other failed; the text names which.
    Disagree(String),
    /// No verdict on one side could be compared (none ran, or each was
    /// unsupported or inconclusive); the text says which.
    NotCompared(String),
}

/// Compares a probe's verdict with its counterparts' (`(name, verdict)`).
/// Only pass and FAIL are compared: an unsupported or inconclusive verdict
/// on either side says nothing about the property.
pub fn agree(probe: &Verdict, counterparts: &[(String, Verdict)]) -> Agreement {
    let decisive: Vec<&(String, Verdict)> = counterparts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Pass | Verdict::Fail(_)))
        .collect();
    if counterparts.is_empty() {
        return Agreement::NotCompared("no counterpart selftest ran".into());
    }
    if decisive.is_empty() {
        return Agreement::NotCompared(
            "no counterpart selftest passed or failed (each was unsupported or inconclusive)"
                .into(),
        );
    }
    let failed: Vec<&(String, Verdict)> = decisive
        .iter()
        .copied()
        .filter(|(_, v)| matches!(v, Verdict::Fail(_)))
        .collect();
    match probe {
        Verdict::Pass if failed.is_empty() => Agreement::Agree,
        Verdict::Pass => Agreement::Disagree(format!(
            "the probe passed, while the kernel's own {} failed",
            named_failures(&failed)
        )),
        Verdict::Fail(_) if !failed.is_empty() => Agreement::Agree,
        Verdict::Fail(why) => {
            let passed: Vec<&str> = decisive.iter().map(|(name, _)| name.as_str()).collect();
            Agreement::Disagree(format!(
                "the probe failed ({why}), while the kernel's own {} passed",
                passed.join(", ")
            ))
        }
        other => Agreement::NotCompared(format!("the probe was {}", other.label())),
    }
}

/// The failed counterparts for a sentence: the first with its reason, then
/// up to two more by name, then how many others.
fn named_failures(failed: &[&(String, Verdict)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for (i, (name, verdict)) in failed.iter().enumerate().take(3) {
        parts.push(if i == 0 {
            format!("{name} ({})", verdict.reason().unwrap_or(""))
        } else {
            name.clone()
        });
    }
    if failed.len() > 3 {
        parts.push(format!("{} more", failed.len() - 3));
    }
    parts.join(", ")
}

/// One probe beside its counterparts in one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellAgreement {
    pub column: String,
    /// `(suite/name, verdict)` of each counterpart that has a row there.
    pub counterparts: Vec<(String, Verdict)>,
    pub agreement: Agreement,
}

/// A probe that names counterparts, over the cells where it ran beside
/// the selftests of a suite it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub probe: &'static str,
    /// The declaration's patterns (`cgroup/test_cgkill_*`).
    pub patterns: &'static [&'static str],
    pub cells: Vec<CellAgreement>,
}

/// The agreement table of a matrix: a row per probe that names
/// counterparts, in catalog order, leaving out probes that never ran
/// beside a suite they name.
pub fn table(matrix: &Matrix) -> Vec<Row> {
    let mut rows = Vec::new();
    for probe in probes::PROBES.iter().filter(|p| !p.selftests.is_empty()) {
        let suites: Vec<&str> = probe
            .selftests
            .iter()
            .filter_map(|p| p.split_once('/').map(|(suite, _)| suite))
            .collect();
        let mut cells = Vec::new();
        for cell in &matrix.cells {
            let ran_suite = cell
                .guest
                .iter()
                .flat_map(|g| &g.kselftests)
                .any(|s| suites.contains(&s.suite.as_str()));
            let Some(own) = results(cell).find(|r| r.id == probe.id) else {
                continue;
            };
            if !ran_suite {
                continue;
            }
            let counterparts: Vec<(String, Verdict)> = results(cell)
                .filter_map(|r| {
                    let (suite, name) = split_row_id(&r.id)?;
                    probe
                        .has_counterpart(suite, name)
                        .then(|| (format!("{suite}/{name}"), r.verdict.clone()))
                })
                .collect();
            cells.push(CellAgreement {
                column: cell.column(),
                agreement: agree(&own.verdict, &counterparts),
                counterparts,
            });
        }
        if !cells.is_empty() {
            rows.push(Row {
                probe: probe.id,
                patterns: probe.selftests,
                cells,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(pairs: &[(&str, Verdict)]) -> Vec<(String, Verdict)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn both_passing_or_both_failing_agree() {
        let pass = named(&[("test_cgkill_simple", Verdict::Pass)]);
        assert_eq!(agree(&Verdict::Pass, &pass), Agreement::Agree);
        let fail = named(&[("test_cgkill_tree", Verdict::Fail("x".into()))]);
        assert_eq!(agree(&Verdict::Fail("y".into()), &fail), Agreement::Agree);
    }

    #[test]
    fn a_pass_against_a_fail_is_a_disagreement_either_way() {
        let mixed = named(&[
            ("test_cgkill_simple", Verdict::Pass),
            ("test_cgkill_forkbomb", Verdict::Fail("timed out".into())),
            ("test_cgkill_a", Verdict::Fail("a".into())),
            ("test_cgkill_b", Verdict::Fail("b".into())),
            ("test_cgkill_c", Verdict::Fail("c".into())),
        ]);
        let Agreement::Disagree(why) = agree(&Verdict::Pass, &mixed) else {
            panic!("a failed counterpart must disagree with a pass");
        };
        assert!(
            why.contains(
                "test_cgkill_forkbomb (timed out), test_cgkill_a, test_cgkill_b, 1 more failed"
            ),
            "{why}"
        );
        let passing = named(&[("test_memcg_oom_events", Verdict::Pass)]);
        assert!(matches!(
            agree(&Verdict::Fail("no kill".into()), &passing),
            Agreement::Disagree(_)
        ));
    }

    #[test]
    fn unsupported_or_inconclusive_is_never_compared() {
        let skipped = named(&[("test_cgfreezer_simple", Verdict::Unsupported("skip".into()))]);
        assert!(matches!(
            agree(&Verdict::Pass, &skipped),
            Agreement::NotCompared(_)
        ));
        let pass = named(&[("test_cpucg_max", Verdict::Pass)]);
        assert!(matches!(
            agree(&Verdict::Inconclusive("starved".into()), &pass),
            Agreement::NotCompared(_)
        ));
        assert!(matches!(
            agree(&Verdict::Pass, &[]),
            Agreement::NotCompared(_)
        ));
    }

    fn cell_with_selftests(verdicts: &[(&str, Verdict)]) -> crate::CellReport {
        let mut cell = crate::CellReport::sample(
            "debian-6.12",
            crate::CgroupMode::V2,
            "6.12.118+deb13-amd64",
            verdicts,
        );
        let guest = cell.guest.as_mut().unwrap();
        guest.kselftests.push(crate::kselftest::SuiteRun {
            suite: "cgroup".into(),
            ..Default::default()
        });
        cell
    }

    #[test]
    fn the_table_pairs_a_probe_with_the_rows_its_declaration_names() {
        let cell = cell_with_selftests(&[
            ("cgroup.kill", Verdict::Pass),
            ("kselftest.cgroup.test_cgkill_simple", Verdict::Pass),
            (
                "kselftest.cgroup.test_cgkill_tree",
                Verdict::Fail("alive".into()),
            ),
            (
                "kselftest.cgroup.test_memcg_min",
                Verdict::Fail("not ours".into()),
            ),
        ]);
        let matrix = Matrix {
            kernels: Vec::new(),
            cells: vec![cell],
        };
        let rows = table(&matrix);
        assert_eq!(rows.len(), 1, "only cgroup.kill ran: {rows:?}");
        let cell = &rows[0].cells[0];
        assert_eq!(cell.counterparts.len(), 2, "test_memcg_min is not kill's");
        let Agreement::Disagree(why) = &cell.agreement else {
            panic!("a failing counterpart disagrees with a pass");
        };
        assert!(why.contains("cgroup/test_cgkill_tree (alive)"), "{why}");
    }

    #[test]
    fn a_cell_without_the_suite_has_no_agreement_row() {
        let mut cell = cell_with_selftests(&[("cgroup.kill", Verdict::Pass)]);
        cell.guest.as_mut().unwrap().kselftests.clear();
        let matrix = Matrix {
            kernels: Vec::new(),
            cells: vec![cell],
        };
        assert!(table(&matrix).is_empty());
    }
}
