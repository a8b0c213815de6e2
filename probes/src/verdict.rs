//! What a probe concludes, and the evidence it saw.

use serde::{Deserialize, Serialize};

/// A probe's conclusion about one property of the running kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    /// The property holds and the control showed the opposite.
    Pass,
    /// The property does not hold, or the probe could not show that it does.
    Fail(String),
    /// The kernel lacks the feature; the reason names what is missing.
    Unsupported(String),
}

impl Verdict {
    pub fn label(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail(_) => "FAIL",
            Verdict::Unsupported(_) => "unsupported",
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
    /// The control showed the same as the isolated run: no proof either way.
    NoControl,
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
    /// The verdict rule every probe shares. A control that does not show the
    /// opposite proves nothing, so it fails the probe whatever the isolated
    /// run saw. Otherwise the isolated run decides.
    pub fn judge(
        evidence: Evidence,
        control: Evidence,
        control_discriminates: bool,
        property_holds: bool,
        failure: impl Into<String>,
    ) -> Finding {
        const NO_CONTROL: &str =
            "control did not discriminate: without the isolation the kernel showed the same";
        let (verdict, cause) = if !control_discriminates {
            (Verdict::Fail(NO_CONTROL.into()), Some(Cause::NoControl))
        } else if property_holds {
            (Verdict::Pass, None)
        } else {
            (Verdict::Fail(failure.into()), Some(Cause::Property))
        };
        Finding {
            verdict,
            cause,
            evidence,
            control,
        }
    }

    /// A probe that could not reach a conclusion: a fail, with the reason.
    pub fn broken(reason: impl Into<String>, evidence: Evidence, control: Evidence) -> Finding {
        Finding {
            verdict: Verdict::Fail(reason.into()),
            cause: Some(Cause::Broken),
            evidence,
            control,
        }
    }
}
