//! # `user.map`: uid 0 inside is an unprivileged uid outside
//!
//! **The feature.** A user namespace gives its processes their own table of
//! user and group ids. The kernel stores one id per process and file, the
//! host's, and translates at the boundary through `/proc/<pid>/uid_map` and
//! `gid_map`: the line `0 1000000000 65536` says ids 0..65535 inside are
//! 1000000000..1000065535 outside. Root inside holds capabilities only over
//! what its namespace owns; to the rest of the machine, and on disk, it is
//! uid 1000000000, a nobody. That is the whole point: a process that breaks
//! out of every other namespace still is not root.
//!
//! **How the probe looks.** The container (`--userns=auto`) creates a file
//! and waits. From the host, the probe reads the container's `uid_map` and
//! `stat`s the file through `/proc/<pid>/root`, the kernel's view of the
//! container's root from outside: the owner it reports is the host's.
//!
//! **The control.** Without a user namespace the same file is owned by uid
//! 0 on the host.
//!
//! **Verdict.** Pass when the map sends 0 to a nonzero host uid and the
//! file's host owner is that uid.

use std::os::unix::fs::MetadataExt;

use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "user.map",
    property: "uid 0 inside a user namespace is an unprivileged uid on the host",
    needs: Needs::config(&["USER_NS"]),
    mutations: &[Mutation::SkipUserNamespace],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The file the helper creates, as root inside, for the probe to `stat`.
const FILE: &str = "/probe-owned";

/// The helper's report: [`FILE`] exists, created by its root.
#[derive(Debug, Serialize, Deserialize)]
struct Created;

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut spec = lab.spec(&());
    spec.userns = runtime::userns::UserNs::Auto;
    let (map, owner) = observe(lab, spec, Role::Isolated)?;
    let mapped_root = map
        .split_whitespace()
        .collect::<Vec<_>>()
        .chunks(3)
        .find(|line| line.first() == Some(&"0"))
        .and_then(|line| line.get(1)?.parse::<u32>().ok());

    let (_, control_owner) = observe(lab, lab.spec(&()), Role::Control)?;

    Ok(Judgement {
        evidence: evidence![
            "uid_map of the container's init" => map.split_whitespace().collect::<Vec<_>>().join(" "),
            format!("host owner of {FILE}") => owner,
        ],
        control: evidence![
            format!("host owner of {FILE} without CLONE_NEWUSER") => control_owner,
        ],
        control_separated: control_owner == 0,
        property: Property::held_if(
            mapped_root.is_some_and(|uid| uid != 0 && uid == owner),
            format!(
                "uid 0 inside maps to {mapped_root:?}, and the file is owned by {owner} on the host"
            ),
        ),
    }
    .finding())
}

/// Starts the container; returns its init's uid_map and the host uid that
/// owns the file it created.
fn observe(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(String, u32), LabError> {
    let mut session = lab.start(spec, role)?;
    let Created = session.receive()?;
    let pid = session.pid();
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map"))?;
    let owner = std::fs::metadata(format!("/proc/{pid}/root{FILE}"))?.uid();
    session.finish()?;
    Ok((map, owner))
}

/// Inside: creates [`FILE`] (empty), says so, and waits while the probe
/// looks at its owner from the host.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    std::fs::File::create(FILE).with_context(|| format!("create {FILE}"))?;
    helper.say(&Created)
}
