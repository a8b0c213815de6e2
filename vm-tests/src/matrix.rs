//! The kernel × cgroup-mode × probe matrix: assembled from cells, merged
//! across machines, and compared with a baseline.

use std::collections::BTreeMap;

use probes::Verdict;
use serde::{Deserialize, Serialize};

use crate::cell::CellReport;
use crate::config::{self, Tristate};

/// A kernel under test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelInfo {
    /// The label used in column headings, such as `debian-6.12`.
    pub label: String,
    /// Where it came from: a Debian package name, a bzImage path, or `host`.
    pub source: String,
    /// The container-relevant config options, when a config file was found.
    pub config: BTreeMap<String, Tristate>,
}

/// Every cell of one or more runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    pub kernels: Vec<KernelInfo>,
    pub cells: Vec<CellReport>,
}

/// One entry of the matrix, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Pass,
    Fail(String),
    /// With the reason, and the config options that explain it.
    Unsupported(String, Vec<String>),
    /// The probe could not tell, even after its retries.
    Inconclusive(String),
    /// The cell produced no result for this probe.
    Missing(String),
    /// A selftest row this cell has no result for, and none was owed:
    /// its kernel's suite has no such test, or the suite did not run there.
    Absent(String),
}

impl Entry {
    pub fn label(&self) -> &'static str {
        match self {
            Entry::Pass => "pass",
            Entry::Fail(_) => "FAIL",
            Entry::Unsupported(..) => "unsupported",
            Entry::Inconclusive(_) => "inconclusive",
            Entry::Missing(_) => "missing",
            Entry::Absent(_) => "-",
        }
    }

    /// The ANSI SGR colour a terminal shows this entry in.
    pub fn color_code(&self) -> &'static str {
        match self {
            Entry::Pass => "32",
            Entry::Unsupported(..) => "33",
            Entry::Inconclusive(_) => "35",
            Entry::Absent(_) => "2",
            Entry::Fail(_) | Entry::Missing(_) => "1;31",
        }
    }

    /// FAIL and missing fail the run; inconclusive only when `strict`.
    pub fn is_failure(&self, strict: bool) -> bool {
        match self {
            Entry::Fail(_) | Entry::Missing(_) => true,
            Entry::Inconclusive(_) => strict,
            Entry::Pass | Entry::Unsupported(..) | Entry::Absent(_) => false,
        }
    }
}

/// How a matrix differs from its baseline, over the cells both have.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Passed in the baseline, FAIL (or missing) now: a broken promise.
    pub regressions: Vec<Change>,
    /// Passed in the baseline, inconclusive now: the machine kept the probe
    /// from telling, which is not a regression.
    pub unsettled: Vec<Change>,
    /// Unsupported in the baseline, passing now.
    pub improvements: Vec<Change>,
}

/// A cell that passed in the baseline and does not now, or the reverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub column: String,
    pub probe: String,
    pub was: String,
    pub now: String,
}

impl Matrix {
    /// Probe ids in catalog order, then any others the cells name.
    pub fn probe_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = probes::PROBES.iter().map(|p| p.id.to_owned()).collect();
        for cell in &self.cells {
            for result in cell
                .guest
                .iter()
                .flat_map(|g| g.probes.iter())
                .flat_map(|r| &r.results)
            {
                if !ids.contains(&result.id) {
                    ids.push(result.id.clone());
                }
            }
        }
        // Keep only probes some cell ran, so a filtered run has no empty rows.
        ids.retain(|id| self.cells.iter().any(|c| results(c).any(|r| &r.id == id)));
        ids
    }

    pub fn kernel(&self, label: &str) -> Option<&KernelInfo> {
        self.kernels.iter().find(|k| k.label == label)
    }

    /// What `cell` says about `probe`.
    pub fn entry(&self, cell: &CellReport, probe: &str) -> Entry {
        if let Some(failure) = &cell.failure {
            return Entry::Missing(
                failure
                    .lines()
                    .next()
                    .unwrap_or("the cell failed")
                    .to_owned(),
            );
        }
        let Some(result) = results(cell).find(|r| r.id == probe) else {
            if let Some((suite, _)) = crate::kselftest::split_row_id(probe) {
                // Each kernel's selftests are its own: a test another
                // kernel's suite has is not missing from this one.
                let ran = cell
                    .guest
                    .iter()
                    .flat_map(|g| &g.kselftests)
                    .any(|s| s.suite == suite);
                let why = if ran {
                    format!("this kernel's own {suite} selftests have no such test")
                } else {
                    format!("the {suite} selftests did not run in this cell")
                };
                return Entry::Absent(why);
            }
            let why = cell
                .guest
                .as_ref()
                .and_then(|g| g.error.clone())
                .unwrap_or_else(|| "not run".into());
            return Entry::Missing(why);
        };
        match &result.verdict {
            Verdict::Pass => Entry::Pass,
            Verdict::Fail(reason) => Entry::Fail(reason.clone()),
            Verdict::Inconclusive(reason) => Entry::Inconclusive(reason.clone()),
            Verdict::Unsupported(reason) => {
                let options = self
                    .kernel(&cell.kernel)
                    .map(|k| {
                        let release = cell.guest.as_ref().map(|g| g.kernel_release.as_str());
                        config::explain(probe, cell.cgroup_mode, &k.config, release)
                    })
                    .unwrap_or_default();
                Entry::Unsupported(reason.clone(), options)
            }
        }
    }

    /// True when any probe failed or any cell produced no report; with
    /// `strict`, also when a probe stayed inconclusive.
    pub fn failed(&self, strict: bool) -> bool {
        self.cells.iter().any(|c| c.failure.is_some())
            || self.cells.iter().any(|c| !selftest_errors(c).is_empty())
            || {
                let ids = self.probe_ids();
                self.cells
                    .iter()
                    .any(|c| ids.iter().any(|p| self.entry(c, p).is_failure(strict)))
            }
    }

    /// Adds another run's kernels and cells; a later cell replaces an earlier
    /// one with the same column.
    pub fn merge(&mut self, other: Matrix) {
        for kernel in other.kernels {
            match self.kernels.iter_mut().find(|k| k.label == kernel.label) {
                Some(slot) => *slot = kernel,
                None => self.kernels.push(kernel),
            }
        }
        for cell in other.cells {
            match self.cells.iter_mut().find(|c| c.column() == cell.column()) {
                Some(slot) => *slot = cell,
                None => self.cells.push(cell),
            }
        }
        self.cells
            .sort_by_key(|c| (c.kernel.clone(), c.cgroup_mode));
    }

    /// The columns of `baseline` that this matrix has no cell for at all,
    /// such as a CI shard that crashed before it wrote one.
    pub fn missing_from(&self, baseline: &Matrix) -> Vec<String> {
        baseline
            .cells
            .iter()
            .map(CellReport::column)
            .filter(|column| !self.cells.iter().any(|c| c.column() == *column))
            .collect()
    }

    /// What changed against `baseline`, over the cells both have.
    pub fn compare(&self, baseline: &Matrix) -> Changes {
        let mut changes = Changes::default();
        let ids = baseline.probe_ids();
        for cell in &self.cells {
            let Some(old) = baseline.cells.iter().find(|c| c.column() == cell.column()) else {
                continue;
            };
            for probe in &ids {
                let (was, now) = (baseline.entry(old, probe), self.entry(cell, probe));
                // A selftest this run did not run, or this kernel's suite
                // does not have, was promised nothing.
                if matches!(now, Entry::Absent(_)) {
                    continue;
                }
                if matches!(now, Entry::Missing(_))
                    && !results(cell).any(|r| &r.id == probe)
                    && cell.failure.is_none()
                {
                    continue; // filtered out of this run
                }
                let change = Change {
                    column: cell.column(),
                    probe: probe.clone(),
                    was: was.label().to_owned(),
                    now: now.label().to_owned(),
                };
                match (&was, &now) {
                    (Entry::Pass, Entry::Pass) => {}
                    (Entry::Pass, Entry::Inconclusive(_)) => changes.unsettled.push(change),
                    (Entry::Pass, _) => changes.regressions.push(change),
                    (Entry::Unsupported(..), Entry::Pass) => changes.improvements.push(change),
                    _ => {}
                }
            }
        }
        changes
    }
}

/// The selftest suites a cell was asked to run and could not, with why.
pub fn selftest_errors(cell: &CellReport) -> Vec<(String, String)> {
    cell.guest
        .iter()
        .flat_map(|g| &g.kselftests)
        .filter_map(|s| Some((s.suite.clone(), s.error.clone()?)))
        .collect()
}

pub(crate) fn results(cell: &CellReport) -> impl Iterator<Item = &probes::ProbeResult> {
    cell.guest
        .iter()
        .flat_map(|g| g.probes.iter())
        .flat_map(|r| r.results.iter())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::CgroupMode;

    fn cell(kernel: &str, mode: CgroupMode, verdicts: &[(&str, Verdict)]) -> CellReport {
        CellReport::sample(kernel, mode, "6.12", verdicts)
    }

    fn unsupported() -> Verdict {
        Verdict::Unsupported("no memory controller".into())
    }

    #[test]
    fn a_baseline_cell_with_no_cell_now_is_missing() {
        let both = |kernel| cell(kernel, CgroupMode::V1, &[("pid.view", Verdict::Pass)]);
        let baseline = Matrix {
            kernels: vec![],
            cells: vec![both("a"), both("b")],
        };
        let now = Matrix {
            kernels: vec![],
            cells: vec![both("a")],
        };
        assert_eq!(now.missing_from(&baseline), ["b/v1"]);
        assert!(baseline.missing_from(&baseline).is_empty());
    }

    #[test]
    fn regressions_and_improvements_are_found() {
        let baseline = Matrix {
            kernels: vec![],
            cells: vec![cell(
                "k",
                CgroupMode::V1,
                &[
                    ("pid.view", Verdict::Pass),
                    ("cgroup.memory_oom", unsupported()),
                ],
            )],
        };
        let now = Matrix {
            kernels: vec![],
            cells: vec![cell(
                "k",
                CgroupMode::V1,
                &[
                    ("pid.view", Verdict::Fail("x".into())),
                    ("cgroup.memory_oom", Verdict::Pass),
                ],
            )],
        };
        let changes = now.compare(&baseline);
        assert_eq!(changes.regressions.len(), 1);
        assert_eq!(
            (
                changes.regressions[0].probe.as_str(),
                changes.regressions[0].now.as_str()
            ),
            ("pid.view", "FAIL")
        );
        assert_eq!(changes.improvements[0].probe, "cgroup.memory_oom");
        assert!(now.failed(false));
        assert!(!baseline.failed(false));
    }

    #[test]
    fn pass_to_inconclusive_is_not_a_regression() {
        let baseline = Matrix {
            kernels: vec![],
            cells: vec![cell("k", CgroupMode::V2, &[("pid.view", Verdict::Pass)])],
        };
        let now = Matrix {
            kernels: vec![],
            cells: vec![cell(
                "k",
                CgroupMode::V2,
                &[("pid.view", Verdict::Inconclusive("starved".into()))],
            )],
        };
        let changes = now.compare(&baseline);
        assert!(changes.regressions.is_empty());
        assert_eq!(changes.unsettled.len(), 1);
        assert_eq!(changes.unsettled[0].now, "inconclusive");
        assert!(!now.failed(false));
        assert!(now.failed(true));
    }

    #[test]
    fn unsupported_cells_name_the_missing_config() {
        let mut config = BTreeMap::new();
        config.insert("MEMCG".into(), Tristate::Y);
        config.insert("MEMCG_V1".into(), Tristate::No);
        let matrix = Matrix {
            kernels: vec![KernelInfo {
                label: "k".into(),
                source: "test".into(),
                config,
            }],
            cells: vec![cell(
                "k",
                CgroupMode::V1,
                &[("cgroup.memory_oom", unsupported())],
            )],
        };
        let entry = matrix.entry(&matrix.cells[0], "cgroup.memory_oom");
        assert_eq!(
            entry,
            Entry::Unsupported(
                "no memory controller".into(),
                vec!["CONFIG_MEMCG_V1 is not set".into()]
            )
        );
        assert!(!matrix.failed(false));
    }

    #[test]
    fn merging_replaces_cells_of_the_same_column() {
        let mut a = Matrix {
            kernels: vec![],
            cells: vec![cell(
                "k",
                CgroupMode::V1,
                &[("pid.view", Verdict::Fail("x".into()))],
            )],
        };
        a.merge(Matrix {
            kernels: vec![],
            cells: vec![
                cell("k", CgroupMode::V1, &[("pid.view", Verdict::Pass)]),
                cell("k", CgroupMode::V2, &[("pid.view", Verdict::Pass)]),
            ],
        });
        assert_eq!(a.cells.len(), 2);
        assert!(!a.failed(false));
    }

    #[test]
    fn a_selftest_another_kernel_has_is_absent_here_not_missing() {
        let mut old = cell(
            "debian-5.10",
            CgroupMode::V2,
            &[("uts.hostname", Verdict::Pass)],
        );
        old.guest
            .as_mut()
            .unwrap()
            .kselftests
            .push(crate::kselftest::SuiteRun {
                suite: "cgroup".into(),
                ..Default::default()
            });
        let new = cell(
            "debian-6.12",
            CgroupMode::V2,
            &[
                ("uts.hostname", Verdict::Pass),
                ("kselftest.cgroup.test_cgkill_simple", Verdict::Pass),
            ],
        );
        let matrix = Matrix {
            kernels: Vec::new(),
            cells: vec![old, new],
        };
        let entry = matrix.entry(&matrix.cells[0], "kselftest.cgroup.test_cgkill_simple");
        let Entry::Absent(why) = entry else {
            panic!("expected absent, got {entry:?}");
        };
        assert!(why.contains("have no such test"), "{why}");
        assert!(!matrix.failed(false));
    }

    #[test]
    fn a_suite_that_could_not_run_fails_the_matrix() {
        let mut broken = cell(
            "debian-6.12",
            CgroupMode::V2,
            &[("uts.hostname", Verdict::Pass)],
        );
        broken
            .guest
            .as_mut()
            .unwrap()
            .kselftests
            .push(crate::kselftest::SuiteRun {
                suite: "cgroup".into(),
                error: Some("no selftest disk".into()),
                ..Default::default()
            });
        let matrix = Matrix {
            kernels: Vec::new(),
            cells: vec![broken],
        };
        assert!(matrix.failed(false));
    }

    #[test]
    fn a_selftest_not_run_now_is_no_regression_against_a_baseline_that_ran_it() {
        let mut was = cell(
            "debian-6.12",
            CgroupMode::V2,
            &[("uts.hostname", Verdict::Pass)],
        );
        was.guest.as_mut().unwrap().probes.as_mut().unwrap().results[0].id =
            "kselftest.cgroup.test_cgkill_simple".into();
        let baseline = Matrix {
            kernels: Vec::new(),
            cells: vec![was],
        };
        let now = Matrix {
            kernels: Vec::new(),
            cells: vec![cell(
                "debian-6.12",
                CgroupMode::V2,
                &[("uts.hostname", Verdict::Pass)],
            )],
        };
        assert_eq!(now.compare(&baseline), Changes::default());
    }
}
