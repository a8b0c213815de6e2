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
//! a capability, so only a filter can refuse it. It reports what the call
//! gave (ok or the errno) and the `Seccomp` line of `/proc/self/status`
//! (2 means a filter is installed).
//!
//! **The control.** The same helper with `seccomp=unconfined` gets a keyring
//! (or, on a kernel built without keyrings, ENOSYS): anything but EPERM.
//!
//! **Verdict.** Pass when the call fails with EPERM inside, the status shows
//! filter mode, and the control's call did not fail with EPERM.

use crate::inside::{errno_of_rc, shown, Errno};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "sec.seccomp",
    property: "a system call on the deny list fails with EPERM inside",
    needs: Needs::config(&["SECCOMP", "SECCOMP_FILTER"]),
    mutations: &[Mutation::SkipSeccomp],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The errno a seccomp deny list answers with.
const DENIED: &str = "EPERM";

/// The helper's report: the keyring call's outcome and its seccomp mode.
#[derive(Debug, Serialize, Deserialize)]
struct Filtered {
    /// What `keyctl(KEYCTL_JOIN_SESSION_KEYRING, NULL)` gave.
    keyctl: Errno,
    /// The `Seccomp` line of `/proc/self/status`: 0 none, 1 strict, 2 filter.
    mode: u32,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let inside: Filtered = lab.report(lab.spec(&()), Role::Isolated)?;

    let mut spec = lab.spec(&());
    spec.security.seccomp = false;
    let unfiltered: Filtered = lab.report(spec, Role::Control)?;

    let denied = |outcome: &Errno| outcome.as_ref().err().is_some_and(|e| e == DENIED);
    Ok(Judgement {
        evidence: evidence![
            "keyctl(JOIN_SESSION_KEYRING) inside" => shown(&inside.keyctl),
            "Seccomp mode inside" => inside.mode,
        ],
        control: evidence![
            "keyctl with seccomp=unconfined" => shown(&unfiltered.keyctl),
            "Seccomp mode with seccomp=unconfined" => unfiltered.mode,
        ],
        control_separated: !denied(&unfiltered.keyctl),
        property: Property::held_if(
            denied(&inside.keyctl) && inside.mode == 2,
            format!(
                "keyctl inside gave {}, with seccomp mode {}",
                shown(&inside.keyctl),
                inside.mode
            ),
        ),
    }
    .finding())
}

/// Inside: asks for a new anonymous session keyring, then reports what
/// that gave and our seccomp mode. The call is harmless, needs no
/// capability, and is on every seccomp deny list because the kernel's
/// keyrings are not namespaced.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: a null name asks for an anonymous keyring; nothing is read from us.
    let id = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<libc::c_char>(),
        )
    };
    let keyctl = errno_of_rc(id);
    let mode = crate::inside::status_field("Seccomp")?;
    let mode = mode
        .parse()
        .with_context(|| format!("Seccomp is not a number: {mode:?}"))?;
    helper.say(&Filtered { keyctl, mode })
}
