//! # `sec.caps`: the container runs with a reduced capability set
//!
//! **The feature.** Linux splits root's power into about forty capabilities:
//! CAP_SYS_ADMIN (mounts, namespaces, most of the rest), CAP_NET_ADMIN
//! (interfaces and routes), CAP_SYS_MODULE (load kernel code), and so on. A
//! process carries several sets of them. The *bounding* set is the ceiling:
//! nothing the process execs can ever hold a capability outside it, even as
//! uid 0. The *effective* set is what the kernel checks on each operation.
//! Namespaces do not make root harmless (CAP_SYS_MODULE loads code into the
//! one kernel everybody shares), so container runtimes cut the sets down to
//! a short list that ordinary programs need: docker's fourteen, below.
//!
//! **How the probe looks.** The helper reads `CapBnd`, `CapEff` and `CapAmb`
//! from its own `/proc/self/status`: hex masks in which bit N is capability
//! N (`include/uapi/linux/capability.h`).
//!
//! **The control.** The same helper with every capability kept (what
//! `--privileged` does) shows the host's full bounding set.
//!
//! **Verdict.** Pass when the bounding and effective sets are exactly
//! docker's default list and the inheritable and ambient sets, which could
//! carry capabilities across an exec, are empty.

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

/// docker's default capabilities, by their numbers in `capability.h`.
const EXPECTED: [(u32, &str); 14] = [
    (0, "CHOWN"),
    (1, "DAC_OVERRIDE"),
    (3, "FOWNER"),
    (4, "FSETID"),
    (5, "KILL"),
    (6, "SETGID"),
    (7, "SETUID"),
    (8, "SETPCAP"),
    (10, "NET_BIND_SERVICE"),
    (13, "NET_RAW"),
    (18, "SYS_CHROOT"),
    (27, "MKNOD"),
    (29, "AUDIT_WRITE"),
    (31, "SETFCAP"),
];

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let expected: u64 = EXPECTED.iter().map(|(bit, _)| 1u64 << bit).sum();
    let (facts, _) = lab.run(lab.spec(&["status"]), Role::Isolated)?;
    let mask = |key: &str| -> Result<u64, LabError> {
        let text = facts
            .get(key)
            .ok_or_else(|| LabError::Broken(format!("no {key} in /proc/self/status")))?;
        u64::from_str_radix(text, 16)
            .map_err(|_| LabError::Broken(format!("{key} is not a hex mask: {text:?}")))
    };
    let (bounding, effective) = (mask("CapBnd")?, mask("CapEff")?);
    let (inheritable, ambient) = (mask("CapInh")?, mask("CapAmb")?);
    let mut evidence = Evidence::new();
    evidence
        .saw("expected (docker's default)", format!("{expected:016x}"))
        .saw("CapBnd inside", format!("{bounding:016x}"))
        .saw("CapEff inside", format!("{effective:016x}"))
        .saw("CapInh inside", format!("{inheritable:016x}"))
        .saw("CapAmb inside", format!("{ambient:016x}"));

    let mut spec = lab.spec(&["status"]);
    spec.security.capabilities = runtime::security::caps::ALL;
    let (control_facts, _) = lab.run(spec, Role::Control)?;
    let control_bounding = control_facts.get("CapBnd").unwrap_or("?").to_owned();
    let mut control = Evidence::new();
    control.saw("CapBnd with every capability kept", &control_bounding);

    let extra: Vec<&str> = (0..64)
        .filter(|bit| bounding & !expected & (1 << bit) != 0)
        .map(|bit| {
            EXPECTED
                .iter()
                .find(|(b, _)| *b == bit)
                .map_or("a capability outside the list", |(_, n)| n)
        })
        .collect();
    Ok(Judgement {
        evidence,
        control,
        control_separated: u64::from_str_radix(&control_bounding, 16).is_ok_and(|c| c & !expected != 0),
        property: Property::held_if(bounding == expected && effective == expected && inheritable == 0 && ambient == 0, format!(
            "the container's bounding set is {bounding:016x}, not {expected:016x} ({} beyond the default)",
            extra.len()
        )),
    }
    .finding())
}
