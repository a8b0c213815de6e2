//! Probes beside the kernel's own selftests of the same property: where
//! both ran on one kernel in one cgroup mode, a pass on one side and a
//! FAIL on the other is a disagreement, and the cell must say why.
//!
//! Each probe names its counterparts in its declaration
//! ([`probes::Probe::selftests`]); this module only compares verdicts.

use probes::Verdict;

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
    let failed: Vec<String> = decisive
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Fail(_)))
        .map(|(name, v)| format!("{name} ({})", v.reason().unwrap_or("")))
        .collect();
    match probe {
        Verdict::Pass if failed.is_empty() => Agreement::Agree,
        Verdict::Pass => Agreement::Disagree(format!(
            "the probe passed, while the kernel's own {} failed",
            failed.join(", ")
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
        ]);
        let Agreement::Disagree(why) = agree(&Verdict::Pass, &mixed) else {
            panic!("a failed counterpart must disagree with a pass");
        };
        assert!(why.contains("test_cgkill_forkbomb (timed out)"), "{why}");
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
}
