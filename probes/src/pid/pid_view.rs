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

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut evidence = Evidence::new();
    let mut session = lab.start(lab.spec(&["pid-view"]), Role::Isolated)?;
    let pid = session.expect("pid")?;
    let procs = session.expect("procs")?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", session.pid()))?;
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    evidence
        .saw("getpid() inside", &pid)
        .saw("pids in the container's /proc", &procs)
        .saw(format!("NSpid of host pid {}", session.pid()), &nspid);
    session.finish()?;

    let mut control = Evidence::new();
    let mut spec = lab.spec(&["pid-view"]);
    spec.namespaces.pid = false;
    let mut unisolated = lab.start(spec, Role::Control)?;
    let control_pid = unisolated.expect("pid")?;
    let control_procs = unisolated.expect("procs")?;
    unisolated.finish()?;
    control
        .saw("getpid() without CLONE_NEWPID", &control_pid)
        .saw("number of pids listed", control_procs.split(',').count());

    let holds = pid == "1" && procs == "1" && nspid.split_whitespace().last() == Some("1");
    let discriminates = control_pid != "1" && control_procs.split(',').count() > 1;
    Ok(Judgement {
        evidence,
        control,
        control_separated: discriminates,
        property: Property::held_if(
            holds,
            format!("the container saw itself as pid {pid} and listed pids {procs}"),
        ),
    }
    .finding())
}
