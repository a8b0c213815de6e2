//! # `cgroup.kill`: one write kills every process of a cgroup, however it was forked
//!
//! **The feature.** Since Linux 5.14 every cgroup v2 directory (but the
//! root) has a file `cgroup.kill`. Writing `1` to it makes the kernel send
//! SIGKILL to every task in the cgroup and in all its descendants, and it
//! does so as one operation: while it walks the tasks, a task that forks
//! gets a child that is killed too, so a fork bomb cannot outrun it. Before
//! 5.14 the only way was to read `cgroup.procs` and kill each pid, and
//! repeat, racing every fork in between. runc and crun tear a container down
//! with `cgroup.kill` where it exists, and so does this runtime.
//!
//! **Why it matters to a container.** Inside a PID namespace, the death of
//! the container's init kills every other process of the namespace
//! (`pid.init_reaps`). Without one (`--pid host`), a process whose parent
//! died is handed to the nearest subreaper and lives on: only the cgroup
//! still knows it belongs to the container.
//!
//! **How the probe looks.** Each run starts a container without a PID
//! namespace. Its helper forks a child that forks a grandchild and exits;
//! the grandchild, an orphan now, sleeps. `cgroup.events` says `populated
//! 1` as long as any task is in the cgroup: the kernel's own count.
//!
//! 1. The control: the probe kills the helper, the container's init, with
//!    SIGKILL. The grandchild must survive, and `populated` stay 1: killing
//!    the leader alone leaves the container's other processes running.
//! 2. The feature: the probe writes `1` to `cgroup.kill`, and waits (up to
//!    10 s, a TCG guest is slow) for `populated 0`.
//! 3. The runtime: a second container, set up the same way, is torn down by
//!    the runtime (its init exits, the runtime removes the cgroup). Every
//!    process of it, the grandchild too, must be gone afterwards. The
//!    mutation `skip-teardown-kill` tears down without killing.
//!
//! **Dying is not dead.** A killed task leaves its cgroup as it begins to
//! exit, so `populated 0` (and the runtime's `rmdir`) can come a moment
//! before the task is a zombie. The probe therefore asks each process
//! itself: gone or a zombie is dead; still running with SIGKILL pending, or
//! with `PF_EXITING` in its flags, is dying.
//!
//! **Verdict.** Pass when the control's grandchild survived its leader,
//! `cgroup.kill` emptied the cgroup, and the runtime's teardown left no
//! process behind. FAIL when, 10 s after `cgroup.kill` or the teardown, a
//! process is alive and neither killed nor exiting. One still dying then has
//! not been scheduled to finish: inconclusive. Unsupported on cgroup v1 (no
//! `cgroup.kill` there) and where writing it gives ENOENT (before 5.14).

use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;

use crate::kernel;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.kill",
    property: "writing cgroup.kill SIGKILLs every process of the cgroup, and the runtime's teardown leaves none behind",
    needs: Needs {
        config: &["CGROUPS"],
        config_v1: &[],
        modules: &[],
        since: Some((5, 14)),
    },
    mutations: &[Mutation::Fault(Fault::SkipTeardownKill)],
    why_no_mutation: None,
    selftests: &["cgroup/test_cgkill_*"],
    run,
    inside,
};

/// How long the cgroup may take to empty after SIGKILL: the killed tasks
/// must each be scheduled once to die, which a loaded TCG guest delays.
const EMPTYING: Duration = Duration::from_secs(10);

/// The helper's report: its orphaned grandchild, by host pid (there is no
/// PID namespace, so the pid the helper sees is the host's).
#[derive(Debug, Serialize, Deserialize)]
struct Orphan {
    grandchild: i32,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut spec = lab.spec(&());
    spec.namespaces.pid = false;
    let mut session = lab.start(spec, Role::Control)?;
    let Orphan { grandchild } = session.receive()?;
    let init = session.pid();
    let counters = Counters::of(init);
    if !counters.is_v2() {
        // Let the runtime clean up; nothing was asked of the kernel.
        session.finish()?;
        return Err(LabError::Unsupported(
            "this host's cgroups are v1: cgroup.kill is a cgroup v2 file (Linux 5.14)".into(),
        ));
    }
    let dir = counters.container_dir()?;
    let grandchild = member(&counters, grandchild)?;

    // 1. The control: the leader dies alone.
    kill(init, Signal::SIGKILL)?;
    waitid(Id::Pid(init), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)?;
    let survived = kernel::alive(grandchild);
    let populated_after_leader = populated(&dir)?;

    // 2. The feature.
    let written = kernel::write_existing(&dir.join("cgroup.kill"), "1");
    if let Err(e) = &written {
        // Empty the cgroup the old way before saying why.
        let _ = kill(Pid::from_raw(grandchild), Signal::SIGKILL);
        session.finish()?;
        if e.kind() == std::io::ErrorKind::NotFound {
            return Err(LabError::Unsupported(
                "writing cgroup.kill: ENOENT: the kernel has no cgroup.kill (Linux 5.14)".into(),
            ));
        }
        return Err(LabError::broken(format!("write cgroup.kill: {e}")));
    }
    let emptied = wait_until_empty(&dir)?;
    let killed = fate(grandchild);
    session.finish()?;

    // 3. The runtime's teardown, where a mutation applies.
    let mut spec = lab.spec(&());
    spec.namespaces.pid = false;
    let mut torn = lab.start(spec, Role::Isolated)?;
    let Orphan { grandchild: second } = torn.receive()?;
    let torn_counters = Counters::of(torn.pid());
    let torn_dir = torn_counters.container_dir()?;
    let second = member(&torn_counters, second)?;
    let teardown = torn.finish();
    let after_teardown = fate(second);
    if after_teardown != Fate::Dead {
        // The runtime left it: ours to clean, so that nothing outlives the probe.
        let _ = kill(Pid::from_raw(second), Signal::SIGKILL);
        let _ = wait_until_empty(&torn_dir);
        let _ = std::fs::remove_dir(&torn_dir);
    }

    let property = if killed == Fate::Alive {
        Property::Broken(format!(
            "after writing cgroup.kill, process {grandchild} is alive, neither killed nor exiting"
        ))
    } else if after_teardown == Fate::Alive {
        Property::Broken(format!(
            "the runtime tore the container down and process {second} of it is alive, neither killed nor exiting"
        ))
    } else if !emptied || killed == Fate::Dying || after_teardown == Fate::Dying {
        Property::Unclear(format!(
            "a killed process had not finished dying within {EMPTYING:?}: the machine may be too slow to tell"
        ))
    } else {
        Property::Held
    };
    Ok(Judgement {
        evidence: evidence![
            "cgroup" => dir.display(),
            "cgroup.kill written" => "1",
            format!("populated 0 within {EMPTYING:?}") => emptied,
            format!("grandchild {grandchild} afterwards") => format!("{killed:?}"),
            "runtime's teardown" => match &teardown {
                Err(e) => format!("{e:?}"),
                Ok(outcome) => outcome.cleanup_error.clone().unwrap_or_else(|| "ok".into()),
            },
            format!("grandchild {second} after the teardown") => format!("{after_teardown:?}"),
        ],
        control: evidence![
            "leader killed alone with SIGKILL" => init,
            format!("grandchild {grandchild} alive afterwards") => survived,
            "populated afterwards" => populated_after_leader,
        ],
        control_separated: survived && populated_after_leader,
        property,
    }
    .finding())
}

/// The helper's word for its grandchild, checked against the kernel's: a
/// pid the cgroup lists, never one the probe would signal blindly.
fn member(counters: &Counters, pid: i32) -> Result<i32, LabError> {
    let procs = counters.procs("cgroup")?;
    if pid > 0 && procs.contains(&pid) {
        Ok(pid)
    } else {
        Err(LabError::broken(format!(
            "the helper named {pid} as its grandchild, but the cgroup holds {procs:?}"
        )))
    }
}

/// What became of a process that should have been killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Gone, or a zombie.
    Dead,
    /// Still there after [`EMPTYING`], but killed (SIGKILL pending) or
    /// exiting: the machine has not yet let it finish.
    Dying,
    /// Still there after [`EMPTYING`], with no SIGKILL and not exiting.
    Alive,
}

/// Waits up to [`EMPTYING`] for `pid` to die. A task leaves its cgroup as
/// it begins to exit, before it is a zombie, so an empty cgroup does not
/// mean every member has finished dying; this asks the process itself.
fn fate(pid: i32) -> Fate {
    let deadline = Instant::now() + EMPTYING;
    loop {
        if !kernel::alive(pid) {
            return Fate::Dead;
        }
        if Instant::now() > deadline {
            return if kernel::sigkill_pending(pid) || kernel::exiting(pid) {
                Fate::Dying
            } else {
                Fate::Alive
            };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `populated` of `cgroup.events`: whether any task is in the cgroup or
/// below it, by the kernel's own count.
fn populated(dir: &std::path::Path) -> Result<bool, LabError> {
    let events =
        std::fs::read_to_string(dir.join("cgroup.events")).or_broken("read cgroup.events")?;
    let value = events
        .lines()
        .find_map(|l| l.strip_prefix("populated "))
        .or_broken(format!("cgroup.events has no populated line: {events:?}"))?;
    Ok(value.trim() == "1")
}

/// Waits up to [`EMPTYING`] for the cgroup to hold no task; true if it did.
fn wait_until_empty(dir: &std::path::Path) -> Result<bool, LabError> {
    let deadline = Instant::now() + EMPTYING;
    while populated(dir)? {
        if Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(true)
}

/// Inside: forks a child that forks a sleeping grandchild and exits, reaps
/// the child, and reports the orphan.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let (read, write) = nix::unistd::pipe().context("pipe")?;
    // SAFETY: the child only forks, writes a number to a pipe and exits.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: the grandchild only calls async-signal-safe pause().
            match unsafe { libc::fork() } {
                0 => loop {
                    unsafe { libc::pause() };
                },
                grandchild => {
                    let _ = nix::unistd::write(&write, &grandchild.to_ne_bytes());
                    unsafe { libc::_exit(0) };
                }
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write);
            nix::sys::wait::waitpid(child, None).context("wait for the child")?;
            let mut bytes = [0u8; 4];
            let got = nix::unistd::read(&read, &mut bytes).context("read the grandchild's pid")?;
            anyhow::ensure!(got == 4, "the child exited without naming its child");
            let grandchild = i32::from_ne_bytes(bytes);
            anyhow::ensure!(grandchild > 0, "the child could not fork: {grandchild}");
            helper.say(&Orphan { grandchild })
        }
    }
}
