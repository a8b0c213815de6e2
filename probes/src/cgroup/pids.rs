//! # `cgroup.pids`: `pids.max` bounds fork
//!
//! **The feature.** The pids controller counts the tasks (processes and
//! threads) of a cgroup and its descendants. Once the count reaches
//! `pids.max`, `fork(2)` and `clone(2)` in that cgroup fail with EAGAIN, the
//! same error as hitting `RLIMIT_NPROC`; this is what stops a fork bomb in one
//! container from taking the whole machine's pid space.
//!
//! **How the probe looks.** With `pids.max = 8`, the helper forks sleeping
//! children until a fork fails (or 64 succeed), and reports how many it made
//! and the error. The probe also reads `pids.max` and `pids.current` from the
//! container's cgroup.
//!
//! **The control.** Without the limit, all 64 forks succeed.
//!
//! **Verdict.** Pass when fork failed with EAGAIN exactly at the bound: the
//! helper plus 7 children make 8 tasks.

use crate::inside::{errno_name, Errno};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.pids",
    property: "pids.max bounds fork, which fails with EAGAIN at the bound",
    needs: Needs::config(&["CGROUP_PIDS"]),
    mutations: &[Mutation::SkipLimits],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The `pids.max` the container gets.
const MAX: u64 = 8;
/// How many children the helper tries to fork (its request): far above
/// [`MAX`], so that only a limit stops it.
const ATTEMPTS: u32 = 64;

/// The helper's report once it stopped forking.
#[derive(Debug, Serialize, Deserialize)]
struct Forked {
    /// Children forked, all still alive.
    children: u32,
    /// The fork that stopped it: `Ok` when none failed, else the errno.
    stopped_by: Errno,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut spec = lab.spec(&ATTEMPTS);
    spec.limits.pids = Some(MAX);
    let (forked, evidence) = fork(lab, spec, Role::Isolated)?;
    let (control_forked, control) = fork(lab, lab.spec(&ATTEMPTS), Role::Control)?;
    let error = failure(&forked.stopped_by);
    Ok(Judgement {
        evidence,
        control,
        control_separated: control_forked.children == ATTEMPTS,
        property: Property::held_if(
            forked.stopped_by.as_ref().err().map(String::as_str) == Some("EAGAIN")
                && u64::from(forked.children) + 1 == MAX,
            format!(
                "with pids.max={MAX} the helper forked {} children and then saw {error}",
                forked.children
            ),
        ),
    }
    .finding())
}

/// How forking ended, in words: `none` when every fork succeeded.
fn failure(stopped_by: &Errno) -> &str {
    match stopped_by {
        Ok(()) => "none",
        Err(errno) => errno,
    }
}

/// Runs the forking helper and reads its pids cgroup while the children live.
fn fork(lab: &Lab, spec: runtime::Spec, role: Role) -> Result<(Forked, Evidence), LabError> {
    let mut session = lab.start(spec, role)?;
    let forked: Forked = session.receive()?;
    let mut evidence = evidence![
        "children forked" => forked.children,
        "fork error" => failure(&forked.stopped_by),
    ];
    // Without a pids cgroup (no limit asked) there is nothing to show.
    if let Ok((max, current)) = Counters::of(session.pid()).pids() {
        evidence.saw("pids.max", max).saw("pids.current", current);
    }
    session.finish()?;
    Ok((forked, evidence))
}

/// Inside: forks children that sleep until a fork fails or as many as
/// asked are running, reports how far it got, and waits, so that the probe
/// reads `pids.current` while they live.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let attempts: u32 = helper.ask()?;
    let mut children = 0;
    let mut stopped_by = Ok(());
    while children < attempts {
        // SAFETY: the child only calls async-signal-safe pause().
        match unsafe { libc::fork() } {
            0 => loop {
                unsafe { libc::pause() };
            },
            -1 => {
                stopped_by = Err(errno_name(&std::io::Error::last_os_error()));
                break;
            }
            _ => children += 1,
        }
    }
    helper.say(&Forked {
        children,
        stopped_by,
    })
}
