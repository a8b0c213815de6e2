//! # `sec.no_new_privs`: nothing the container execs can gain privileges
//!
//! **The feature.** `prctl(PR_SET_NO_NEW_PRIVS, 1)` sets a one-way flag on
//! a process and everything it starts: from then on `execve` never grants
//! more than the caller had. A setuid-root binary runs with the caller's uid,
//! file capabilities are ignored, and an LSM cannot switch to a more
//! privileged domain on exec. It is also what lets an unprivileged process
//! install a seccomp filter. The flag can be set but never cleared.
//!
//! **How the probe looks.** The helper reads the `NoNewPrivs` line of its own
//! `/proc/self/status`, which is the kernel's record of the flag (1 or 0),
//! and reports whether it is set.
//!
//! **The control.** The same helper with `no-new-privileges=false` shows it
//! unset (0).
//!
//! **Verdict.** Pass when the flag is set (1) inside.

use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "sec.no_new_privs",
    property: "no_new_privs is set, so no exec inside can gain privileges",
    needs: Needs::NOTHING,
    mutations: &[Mutation::SkipNoNewPrivs],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The helper's report: whether `NoNewPrivs` is 1 in its `/proc/self/status`.
#[derive(Debug, Serialize, Deserialize)]
struct NoNewPrivs(bool);

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let NoNewPrivs(inside) = lab.report(lab.spec(&()), Role::Isolated)?;

    let mut spec = lab.spec(&());
    spec.security.no_new_privileges = false;
    let NoNewPrivs(without) = lab.report(spec, Role::Control)?;

    Ok(Judgement {
        evidence: evidence!["NoNewPrivs inside" => inside],
        control: evidence!["NoNewPrivs with no-new-privileges=false" => without],
        control_separated: !without,
        property: Property::held_if(inside, "NoNewPrivs is not set inside the container"),
    }
    .finding())
}

/// Inside: reports whether the kernel records no_new_privs for us.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let flag = crate::inside::status_field("NoNewPrivs")?;
    let set = match flag.as_str() {
        "1" => true,
        "0" => false,
        other => anyhow::bail!("NoNewPrivs is neither 0 nor 1: {other:?}"),
    };
    helper.say(&NoNewPrivs(set))
}
