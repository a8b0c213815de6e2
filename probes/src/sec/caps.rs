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
//! **How the probe looks.** The helper reads `CapBnd`, `CapEff`, `CapInh`
//! and `CapAmb` from its own `/proc/self/status`: hex masks in which bit N
//! is capability N (`include/uapi/linux/capability.h`), and reports them as
//! numbers.
//!
//! **The control.** The same helper with every capability kept (what
//! `--privileged` does) shows the host's full bounding set.
//!
//! **Verdict.** Pass when the bounding and effective sets are exactly
//! docker's default list and the inheritable and ambient sets, which could
//! carry capabilities across an exec, are empty.

use crate::inside::status_field;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "sec.caps",
    property: "the container runs with docker's default capability set, no more",
    needs: Needs::NOTHING,
    mutations: &[Mutation::KeepAllCapabilities],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

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

/// The helper's capability sets, as `/proc/self/status` shows them (bit N
/// is capability N).
#[derive(Debug, Serialize, Deserialize)]
struct CapSets {
    /// `CapBnd`: the ceiling for everything the process execs.
    bounding: u64,
    /// `CapEff`: what the kernel checks on each operation.
    effective: u64,
    /// `CapInh`: what an exec may pass on to a file's inheritable set.
    inheritable: u64,
    /// `CapAmb`: what an exec passes on to a program without file caps.
    ambient: u64,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let expected: u64 = EXPECTED.iter().map(|(bit, _)| 1u64 << bit).sum();
    let sets: CapSets = lab.report(lab.spec(&()), Role::Isolated)?;

    let mut spec = lab.spec(&());
    spec.security.capabilities = runtime::security::caps::ALL;
    let kept: CapSets = lab.report(spec, Role::Control)?;

    let beyond = (sets.bounding & !expected).count_ones();
    Ok(Judgement {
        evidence: evidence![
            "expected (docker's default)" => format!("{expected:016x}"),
            "CapBnd inside" => format!("{:016x}", sets.bounding),
            "CapEff inside" => format!("{:016x}", sets.effective),
            "CapInh inside" => format!("{:016x}", sets.inheritable),
            "CapAmb inside" => format!("{:016x}", sets.ambient),
        ],
        control: evidence![
            "CapBnd with every capability kept" => format!("{:016x}", kept.bounding),
        ],
        control_separated: kept.bounding & !expected != 0,
        property: Property::held_if(
            sets.bounding == expected
                && sets.effective == expected
                && sets.inheritable == 0
                && sets.ambient == 0,
            format!(
                "the container's bounding set is {:016x}, not {expected:016x} ({beyond} beyond the default)",
                sets.bounding
            ),
        ),
    }
    .finding())
}

/// Inside: reports our four capability sets.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let mask = |name: &str| -> anyhow::Result<u64> {
        let text = status_field(name)?;
        u64::from_str_radix(&text, 16)
            .with_context(|| format!("{name} is not a hex mask: {text:?}"))
    };
    helper.say(&CapSets {
        bounding: mask("CapBnd")?,
        effective: mask("CapEff")?,
        inheritable: mask("CapInh")?,
        ambient: mask("CapAmb")?,
    })
}
