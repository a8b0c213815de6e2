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
//! `/proc/self/status`, which is the kernel's record of the flag.
//!
//! **The control.** The same helper with `no-new-privileges=false` shows 0.
//!
//! **Verdict.** Pass when the flag is 1 inside.

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let inside = lab.report(lab.spec(&["status"]), Role::Isolated, "NoNewPrivs")?;
    let mut evidence = Evidence::new();
    evidence.saw("NoNewPrivs inside", &inside);

    let mut spec = lab.spec(&["status"]);
    spec.security.no_new_privileges = false;
    let without = lab.report(spec, Role::Control, "NoNewPrivs")?;
    let mut control = Evidence::new();
    control.saw("NoNewPrivs with no-new-privileges=false", &without);

    Ok(Judgement {
        evidence,
        control,
        control_separated: without == "0",
        property: Property::held_if(
            inside == "1",
            format!("NoNewPrivs is {inside:?} inside the container"),
        ),
    }
    .finding())
}
