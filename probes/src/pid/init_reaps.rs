//! # `pid.init_reaps`: killing PID 1 of a namespace kills every process in it
//!
//! **The feature.** PID 1 of a PID namespace is that namespace's init. When
//! it dies, the kernel sends SIGKILL to every other process of the namespace
//! and waits for them to die (`zap_pid_ns_processes` in
//! `kernel/pid_namespace.c`), and only then does init itself become a zombie
//! its parent can collect. Nothing can outlive the container's init. Without
//! a PID namespace, an orphan is simply handed to the nearest "child
//! subreaper" or to the host's init, and keeps running.
//!
//! **How the probe looks.** The helper, as the container's init, forks a
//! child that sleeps forever. The probe finds the child's host pid in the
//! container's `cgroup.procs`, kills init from the host with SIGKILL, waits
//! until init has died (`waitid(WEXITED | WNOWAIT)`, which observes the death
//! without collecting it), and then checks `/proc/<child>` once. Because the
//! kernel finishes the killing before init's death is visible, one check is
//! exact: no grace period, no race.
//!
//! **The control.** The same helper without `CLONE_NEWPID`: the child is
//! still alive after its parent died (the runtime's cgroup teardown then
//! kills it).
//!
//! **Verdict.** Pass when the child is gone by the time init is dead.

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};

use crate::kernel;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "pid.init_reaps",
    property: "killing PID 1 of the namespace kills every process in it",
    needs: Needs::config(&["PID_NS"]),
    mutations: &[Mutation::SkipPidNamespace],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The helper's report: the pid of the child it forked, as it sees it.
#[derive(Debug, Serialize, Deserialize)]
struct Forked {
    child: i32,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let (survived, evidence) = child_survives_init(lab, lab.spec(&()), Role::Isolated)?;
    let mut spec = lab.spec(&());
    spec.namespaces.pid = false;
    let (control_survived, control) = child_survives_init(lab, spec, Role::Control)?;
    Ok(Judgement {
        evidence,
        control,
        control_separated: control_survived,
        property: Property::held_if(
            !survived,
            "the child was still alive after the namespace's init had died",
        ),
    }
    .finding())
}

/// Starts the helper, kills it from the host, and reports whether its child
/// was alive once the kernel had let init die.
fn child_survives_init(
    lab: &Lab,
    spec: runtime::Spec,
    role: Role,
) -> Result<(bool, Evidence), LabError> {
    let mut session = lab.start(spec, role)?;
    let forked: Forked = session.receive()?;
    let init = session.pid();
    let child = other_member(init)?;
    kill(init, Signal::SIGKILL)?;
    waitid(Id::Pid(init), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)?;
    let survived = kernel::alive(child);
    session.finish()?;
    Ok((
        survived,
        evidence![
            "child pid inside" => forked.child,
            "child pid on the host" => child,
            "child alive once init was dead" => survived,
        ],
    ))
}

/// The one process of init's cgroup that is not init, from the kernel's
/// `cgroup.procs` (or, without a pids cgroup, init's `children` list).
fn other_member(init: nix::unistd::Pid) -> Result<i32, LabError> {
    let counters = Counters::of(init);
    let listed = ["pids", "memory", "cpu"]
        .iter()
        .find_map(|c| counters.procs(c).ok())
        .or_else(|| {
            let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"));
            children
                .ok()
                .map(|t| t.split_whitespace().filter_map(|p| p.parse().ok()).collect())
        })
        .unwrap_or_default();
    listed
        .iter()
        .copied()
        .find(|&p| p != init.as_raw())
        .or_broken(format!("init {init} has no child in its cgroup ({listed:?})"))
}

/// Inside: forks a child that sleeps forever, reports its pid, and waits.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    // SAFETY: the child only calls async-signal-safe pause().
    match unsafe { libc::fork() } {
        0 => loop {
            unsafe { libc::pause() };
        },
        -1 => Err(std::io::Error::last_os_error()).context("fork"),
        child => {
            helper.say(&Forked { child })
        }
    }
}
