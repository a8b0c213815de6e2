//! # `pid.init_reaps`: killing PID 1 of a namespace kills every process in it
//!
//! **The feature.** PID 1 of a PID namespace is that namespace's init. When
//! it dies, the kernel sends SIGKILL to every other process of the namespace
//! (`zap_pid_ns_processes` in `kernel/pid_namespace.c`) and waits for them:
//! nothing can outlive the container's init. Without a PID namespace, an
//! orphan is simply handed to the host's init and keeps running.
//!
//! **How the probe looks.** The helper, as the container's init, forks a
//! child that sleeps forever. The probe finds the child's host pid in
//! `/proc/<init>/task/<init>/children`, kills init from the host with
//! SIGKILL, and watches `/proc/<child>` for up to 2 s.
//!
//! **The control.** The same helper without `CLONE_NEWPID`: the child
//! survives its parent's death (the runtime's cgroup teardown then kills it).
//!
//! **Verdict.** Pass when the child is gone within 2 s of init's death.

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding};

/// How long the kernel gets to kill the orphan, as the catalog states.
const GRACE: Duration = Duration::from_secs(2);

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let (survived, evidence) =
        child_survives_init(lab, lab.spec(&["spawn-and-wait"]), Role::Isolated)?;
    let mut spec = lab.spec(&["spawn-and-wait"]);
    spec.namespaces.pid = false;
    let (control_survived, control) = child_survives_init(lab, spec, Role::Control)?;
    Ok(Finding::judge(
        evidence,
        control,
        control_survived,
        !survived,
        format!("the child was still alive {GRACE:?} after init was killed"),
    ))
}

/// Starts the helper, kills it from the host, and reports whether its child
/// was still alive after the grace period.
fn child_survives_init(
    lab: &Lab,
    spec: runtime::Spec,
    role: Role,
) -> Result<(bool, Evidence), LabError> {
    let mut evidence = Evidence::new();
    let mut session = lab.start(spec, role)?;
    let inner = session.expect("child")?;
    let init = session.pid();
    let children = std::fs::read_to_string(format!("/proc/{init}/task/{init}/children"))?;
    let child: i32 = children
        .split_whitespace()
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| LabError::Broken(format!("init {init} lists no children ({children:?})")))?;
    evidence
        .saw("child pid inside", &inner)
        .saw("child pid on the host", child);
    kill(init, Signal::SIGKILL)?;
    let deadline = Instant::now() + GRACE;
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    };
    while alive(child) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let survived = alive(child);
    evidence.saw(
        format!("child alive {GRACE:?} after SIGKILL to init"),
        survived,
    );
    session.finish()?;
    Ok((survived, evidence))
}
