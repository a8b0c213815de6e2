//! What a probe concludes, the evidence it saw, and the one rule that turns
//! observations into a verdict.

use serde::{Deserialize, Serialize};

/// A probe's conclusion about one property of the running kernel.
///
/// As LTP separates TFAIL from TBROK and TCONF, a verdict says who is to
/// blame: FAIL only when the kernel or the runtime broke the promise,
/// inconclusive when the machine kept the probe from telling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    /// The property held and the control showed that it could have failed.
    Pass,
    /// The property did not hold, or the runtime or the probe broke.
    Fail(String),
    /// The kernel lacks the feature; the reason names what is missing.
    Unsupported(String),
    /// The measurement could not tell: the control did not separate, the
    /// probe was starved, or a wait ran out. Never counted as pass or FAIL;
    /// the runner tries again.
    Inconclusive(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "FAIL",
            Verdict::Unsupported(_) => "unsupported",
            Verdict::Inconclusive(_) => "inconclusive",
        }
    }

    /// The reason given, for every verdict but pass.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Pass => None,
            Verdict::Fail(why) | Verdict::Unsupported(why) | Verdict::Inconclusive(why) => {
                Some(why)
            }
        }
    }
}

/// Why a probe failed. Only `Property` means the kernel (or the runtime)
/// broke the promise; a mutation case must fail for that reason and no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The isolation did not hold.
    Property,
    /// The runtime, the helper or the probe itself failed.
    Broken,
}

/// One observation: what was looked at, and what the kernel showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub name: String,
    pub value: String,
}

/// Observations in the order they were made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Evidence(pub Vec<Fact>);

impl Evidence {
    pub fn new() -> Evidence {
        Evidence::default()
    }

    /// Records an observation.
    pub fn saw(&mut self, name: impl Into<String>, value: impl ToString) -> &mut Evidence {
        self.0.push(Fact {
            name: name.into(),
            value: value.to_string(),
        });
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Evidence in one expression: `evidence!["pid inside" => pid, "procs" => &list]`.
#[macro_export]
macro_rules! evidence {
    ($($name:expr => $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut evidence = $crate::verdict::Evidence::new();
        $(evidence.saw($name, $value);)*
        evidence
    }};
}

/// What the isolated run showed about the property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    /// The kernel's own interfaces showed the property holding.
    Held,
    /// The kernel's own interfaces showed it broken; the reason says how.
    Broken(String),
    /// The run could not observe it (a wait ran out, the probe was
    /// starved): nobody is to blame, and nothing is proven.
    Unclear(String),
}

impl Property {
    /// `Held` when `holds`, else `Broken(why)`.
    pub fn held_if(holds: bool, why: impl Into<String>) -> Property {
        if holds {
            Property::Held
        } else {
            Property::Broken(why.into())
        }
    }
}

/// Everything a probe weighs, each part by name: what the isolated run and
/// the control run saw, whether the control showed the opposite, and what
/// became of the property.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub evidence: Evidence,
    pub control: Evidence,
    /// The control, run without the isolation or feature, showed the
    /// opposite: proof that this probe could have failed.
    pub control_separated: bool,
    pub property: Property,
}

impl Judgement {
    /// The verdict rule every probe shares:
    ///
    /// - the kernel showed the property broken: FAIL, whatever the control
    ///   did (a broken promise needs no contrast to be seen);
    /// - the run could not observe the property: inconclusive;
    /// - it held, but the control showed the same: inconclusive, for a
    ///   probe that could not have failed proves nothing;
    /// - it held and the control separated: pass.
    pub fn finding(self) -> Finding {
        const NO_CONTRAST: &str = "the control did not separate: without the isolation the kernel showed the same, so this run proves nothing";
        let (verdict, cause) = match self.property {
            Property::Broken(why) => (Verdict::Fail(why), Some(Cause::Property)),
            Property::Unclear(why) => (Verdict::Inconclusive(why), None),
            Property::Held if !self.control_separated => {
                (Verdict::Inconclusive(NO_CONTRAST.into()), None)
            }
            Property::Held => (Verdict::Pass, None),
        };
        Finding {
            verdict,
            cause,
            evidence: self.evidence,
            control: self.control,
        }
    }
}

/// Everything a probe returns: its verdict, and the evidence from the
/// isolated run and from the control run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub verdict: Verdict,
    /// Why it failed, when it did.
    pub cause: Option<Cause>,
    pub evidence: Evidence,
    pub control: Evidence,
}

impl Finding {
    /// A probe that could not reach a conclusion because something of ours
    /// broke: a FAIL, with the reason.
    pub fn broken(reason: impl Into<String>, evidence: Evidence, control: Evidence) -> Finding {
        Finding {
            verdict: Verdict::Fail(reason.into()),
            cause: Some(Cause::Broken),
            evidence,
            control,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(control_separated: bool, property: Property) -> Verdict {
        Judgement {
            evidence: Evidence::new(),
            control: Evidence::new(),
            control_separated,
            property,
        }
        .finding()
        .verdict
    }

    #[test]
    fn a_broken_property_fails_whatever_the_control_did() {
        for separated in [true, false] {
            assert_eq!(
                judge(separated, Property::Broken("leaked".into())),
                Verdict::Fail("leaked".into())
            );
        }
    }

    #[test]
    fn no_pass_without_a_control_that_separated() {
        assert_eq!(judge(true, Property::Held), Verdict::Pass);
        assert!(matches!(
            judge(false, Property::Held),
            Verdict::Inconclusive(_)
        ));
    }

    #[test]
    fn an_unclear_run_is_inconclusive_never_fail() {
        for separated in [true, false] {
            assert_eq!(
                judge(separated, Property::Unclear("starved".into())),
                Verdict::Inconclusive("starved".into())
            );
        }
    }
}
