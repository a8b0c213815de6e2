//! # `sec.seccomp`: a denied system call fails with EPERM inside
//!
//! **The feature.** seccomp lets a process give the kernel a small BPF
//! program that inspects every system call it (and all its descendants)
//! makes, and answers allow or "fail with this errno". Once installed it
//! cannot be removed. Runtimes use it to take away calls that namespaces do
//! not cover, such as the kernel keyrings, which are shared by the whole
//! machine.
//!
//! **How the probe looks.** The helper calls
//! `keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)`, which asks for a new,
//! anonymous session keyring: harmless, and allowed to any process without
//! a capability, so only a filter can refuse it. It also reports the
//! `Seccomp` line of `/proc/self/status` (2 means a filter is installed).
//!
//! **The control.** The same helper with `seccomp=unconfined` gets a keyring
//! (or, on a kernel built without keyrings, ENOSYS): anything but EPERM.
//!
//! **Verdict.** Pass when the call fails with EPERM inside, the status shows
//! filter mode, and the control's call did not fail with EPERM.

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let observe = |spec: runtime::Spec, role: Role| -> Result<(String, String), LabError> {
        let (facts, _) = lab.run(spec, role)?;
        let get = |key: &str| facts.get(key).unwrap_or("?").to_owned();
        Ok((get("keyctl"), get("Seccomp")))
    };
    let (inside, mode) = observe(lab.spec(&["keyctl"]), Role::Isolated)?;
    let mut evidence = Evidence::new();
    evidence
        .saw("keyctl(JOIN_SESSION_KEYRING) inside", &inside)
        .saw("Seccomp mode inside", &mode);

    let mut spec = lab.spec(&["keyctl"]);
    spec.security.seccomp = false;
    let (unfiltered, control_mode) = observe(spec, Role::Control)?;
    let mut control = Evidence::new();
    control
        .saw("keyctl with seccomp=unconfined", &unfiltered)
        .saw("Seccomp mode with seccomp=unconfined", &control_mode);

    Ok(Judgement {
        evidence,
        control,
        control_separated: unfiltered != "error:EPERM",
        property: Property::held_if(
            inside == "error:EPERM" && mode == "2",
            format!("keyctl inside gave {inside}, with seccomp mode {mode}"),
        ),
    }
    .finding())
}
