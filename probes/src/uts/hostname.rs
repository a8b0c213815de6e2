//! # `uts.hostname`: a hostname set inside does not change the host's
//!
//! **The feature.** The hostname and NIS domain name that `uname(2)` reports
//! live in a UTS namespace ("UNIX Time-sharing System", after the `utsname`
//! struct). `clone(CLONE_NEWUTS)` gives the child a copy; `sethostname(2)`
//! then changes only that copy.
//!
//! **How the probe looks.** The helper calls `sethostname` with a fresh name
//! and reports `uname().nodename`; the probe calls `uname` on the host side.
//! `sethostname` takes CAP_SYS_ADMIN, which containers lose by default
//! (`sec.caps`), so both runs keep it, as `--cap-add SYS_ADMIN` would.
//!
//! **The control.** The same helper without `CLONE_NEWUTS` renames the host.
//! That is why every probe runs in a process with a throwaway UTS namespace
//! of its own: the "host" renamed here is that copy, never the real machine.
//!
//! **Verdict.** Pass when the name took effect inside and the host's
//! hostname is unchanged.

use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "uts.hostname",
    property: "a hostname set inside does not change the host's",
    needs: Needs::config(&["UTS_NS"]),
    mutations: &[Mutation::SkipUtsNamespace],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The helper's report: `uname().nodename` after its `sethostname`.
#[derive(Debug, Serialize, Deserialize)]
struct Renamed {
    nodename: String,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let name = format!("probe-{}", std::process::id());
    let before = host_name();
    let (inside, after) = rename(lab, lab.admin_spec(&name), Role::Isolated)?;

    // A name of its own, so that a rename left by the run above cannot pass
    // for the control's.
    let control_name = format!("probe-control-{}", std::process::id());
    let mut spec = lab.admin_spec(&control_name);
    spec.namespaces.uts = false;
    let (_, control_after) = rename(lab, spec, Role::Control)?;

    Ok(Judgement {
        evidence: evidence![
            "host hostname before" => &before,
            "nodename inside after sethostname" => &inside,
            "host hostname after" => &after,
        ],
        control: evidence![
            "host hostname after sethostname without CLONE_NEWUTS" => &control_after,
        ],
        control_separated: control_after == control_name,
        property: Property::held_if(
            inside == name && after == before,
            format!("the host's hostname changed from {before:?} to {after:?}"),
        ),
    }
    .finding())
}

/// Runs the helper; returns (nodename inside, host hostname afterwards).
fn rename(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(String, String), LabError> {
    let Renamed { nodename } = lab.report(spec, role)?;
    Ok((nodename, host_name()))
}

/// The hostname of the probe's own (throwaway) UTS namespace.
fn host_name() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Inside: sets the hostname the probe asks for (its request, a string)
/// and reports the nodename `uname` gives back.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let name: String = helper.ask()?;
    nix::unistd::sethostname(&name).with_context(|| format!("sethostname {name:?}"))?;
    let uts = nix::sys::utsname::uname().context("uname")?;
    helper.say(&Renamed {
        nodename: uts.nodename().to_string_lossy().into_owned(),
    })
}
