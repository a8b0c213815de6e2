//! # `pid.view`: a PID namespace shows its first process as PID 1 and hides every host process
//!
//! **The feature.** `clone(CLONE_NEWPID)` makes the child the first process
//! of a new PID namespace. Inside, it is PID 1, and it can see (in `/proc`,
//! with `kill`, with `ptrace`) only the processes of its own namespace and
//! those below it. The same process still has an ordinary pid on the host:
//! the kernel keeps one number per namespace level and prints the whole
//! chain in the `NSpid:` line of `/proc/<pid>/status`.
//!
//! **How the probe looks.** The helper reports `getpid()` and the numeric
//! entries of the container's `/proc`, a procfs that init mounted inside the
//! namespace, so it lists that namespace's processes only. From the host, the
//! probe reads `NSpid:` of the container's init.
//!
//! **The control.** The same helper without `CLONE_NEWPID` has its host pid
//! and sees every process on the machine.
//!
//! **Verdict.** Pass when the helper is PID 1, its `/proc` lists nothing but
//! itself, and the host's `NSpid:` maps its host pid to 1.

use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "pid.view",
    property: "a PID namespace shows its first process as PID 1 and hides every host process",
    needs: Needs::config(&["PID_NS"]),
    mutations: &[Mutation::SkipPidNamespace],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// What the helper sees of the processes around it.
#[derive(Debug, Serialize, Deserialize)]
struct View {
    /// `getpid()`.
    pid: u32,
    /// The numeric entries of its `/proc`, sorted.
    procs: Vec<u32>,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut session = lab.start(lab.spec(&()), Role::Isolated)?;
    let view: View = session.receive()?;
    let host_pid = session.pid();
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status"))?;
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    session.finish()?;

    let mut spec = lab.spec(&());
    spec.namespaces.pid = false;
    let mut unisolated = lab.start(spec, Role::Control)?;
    let control_view: View = unisolated.receive()?;
    unisolated.finish()?;

    let holds = view.pid == 1 && view.procs == [1] && nspid.split_whitespace().last() == Some("1");
    Ok(Judgement {
        evidence: evidence![
            "getpid() inside" => view.pid,
            "pids in the container's /proc" => format!("{:?}", view.procs),
            format!("NSpid of host pid {host_pid}") => &nspid,
        ],
        control: evidence![
            "getpid() without CLONE_NEWPID" => control_view.pid,
            "number of pids listed" => control_view.procs.len(),
        ],
        control_separated: control_view.pid != 1 && control_view.procs.len() > 1,
        property: Property::held_if(
            holds,
            format!(
                "the container saw itself as pid {} and listed pids {:?}",
                view.pid, view.procs
            ),
        ),
    }
    .finding())
}

/// Inside: reports our pid and every pid our `/proc` lists, then waits.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let mut procs: Vec<u32> = std::fs::read_dir("/proc")
        .context("read /proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    procs.sort_unstable();
    helper.say(&View {
        pid: std::process::id(),
        procs,
    })
}
