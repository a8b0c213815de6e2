//! # `cgroup.freeze`: a frozen cgroup's tasks stop running, and run again when thawed
//!
//! **The feature.** Since Linux 5.2 every cgroup v2 directory but the root
//! has a file `cgroup.freeze`. Writing `1` freezes the cgroup and all its
//! descendants: each task is made to stop at its next return to user space
//! (the kernel sends it a signal-like trap, `JOBCTL_TRAP_FREEZE`, so even a
//! loop that makes no system call is stopped) and sleeps there,
//! interruptibly, until `0` is written. The tasks keep their memory and
//! their open files; only the CPU is taken from them. Freezing is not
//! instant: the kernel counts the tasks that have reached the trap, and
//! `cgroup.events` says `frozen 1` once every one of them has. This is what
//! `docker pause` does on cgroup v2. (v1 has a separate `freezer` controller
//! with its own hierarchy and files; the runtime places containers in no
//! v1 freezer cgroup, so on v1 there is nothing of the container's to
//! freeze.)
//!
//! **What shows it.** The probe does not ask the frozen helper whether it
//! runs (a stopped program cannot say so); it reads the kernel's own
//! accounting: the CPU time charged to the container's cgroup (`usage_usec`
//! of `cpu.stat`, which v2 keeps for every cgroup), and the state of each of
//! the helper's threads in `/proc/<pid>/task/<tid>/stat`. A spinning
//! thread shows `R`; a frozen one sleeps in the trap and shows `S`.
//!
//! **How the probe proves it.** The helper starts a thread that counts in
//! a loop forever.
//!
//! 1. The control: before anything is frozen, the cgroup's CPU time must
//!    grow by 20 ms (waiting up to 10 s for a busy machine to give it
//!    that): a spinner that runs is visible in the books.
//! 2. The probe writes `1` to `cgroup.freeze` and waits (up to 10 s) for
//!    `frozen 1`. It lets 100 ms pass, so that the last slice each task ran
//!    before reaching the trap is charged, and then reads the CPU time twice,
//!    as far apart as the control took (500 ms to 5 s). A frozen task is
//!    never on a CPU, so nothing should be charged: the bound is 1 ms, where
//!    the control's spinner was charged 20 ms in that time. A slice that
//!    ran into the trap is charged when the task leaves the CPU, which a
//!    host that stalled the guest's vCPU can delay past the 100 ms; so a
//!    charged window is measured again, and only a second charge counts.
//! 3. The probe writes `0`, waits for `frozen 0`, and the CPU time must grow
//!    by 20 ms again: the tasks were stopped, not killed or lost.
//!
//! A thaw is written on every path out of step 2, so that the helper can
//! end and the runtime remove the cgroup.
//!
//! **Verdict.** FAIL when the kernel said `frozen 1`, still says it, and
//! the cgroup was charged more than 1 ms of CPU in both frozen windows. Inconclusive when a wait ran out
//! (the spinner got no CPU before freezing or after thawing, or `frozen`
//! never changed): on a starved machine slow cannot be told from broken.
//! Pass otherwise. Unsupported on cgroup v1, and where writing
//! `cgroup.freeze` gives ENOENT (before 5.2; every Debian kernel from 5.10
//! has it).
//!
//! **No mutation.** The runtime never freezes a container (it has no
//! `pause`), so no defect of it can break this property.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::counters::require_v2;
use crate::inside::errno_name;
use crate::kernel;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.freeze",
    property: "writing 1 to cgroup.freeze stops every task of the cgroup until 0 thaws it",
    needs: Needs {
        config: &["CGROUPS"],
        config_v1: &[],
        modules: &[],
        since: Some((5, 2)),
    },
    mutations: &[],
    why_no_mutation: Some(
        "the runtime has no pause yet; freezing is the kernel's alone here, written by the probe itself",
    ),
    selftests: &["cgroup/test_cgfreezer_*"],
    run,
    inside,
};

/// CPU time that shows the spinner running: far above anything a frozen
/// cgroup could be charged by the kernel's rounding.
const ADVANCE: Duration = Duration::from_millis(20);
/// The most a frozen cgroup may be charged over the frozen window.
const TOLERANCE: Duration = Duration::from_millis(1);
/// How long the probe waits for the kernel (`frozen`, the spinner's CPU
/// time): a loaded TCG guest can take seconds.
const PATIENCE: Duration = Duration::from_secs(10);
/// Time for each task's last slice before the trap to be charged.
const SETTLE: Duration = Duration::from_millis(100);
/// The shortest frozen window the CPU time is watched over.
const FROZEN_WINDOW: Duration = Duration::from_millis(500);
/// The longest, however long the control took to see the spinner run.
const LONGEST_FROZEN_WINDOW: Duration = Duration::from_secs(5);

/// The helper's report: its spinning thread runs.
#[derive(Debug, Serialize, Deserialize)]
struct Spinning;

/// CPU time the cgroup was charged over a stretch of wall-clock time.
#[derive(Debug, Clone, Copy)]
struct Charged {
    cpu: Duration,
    wall: Duration,
}

impl std::fmt::Display for Charged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.3} ms of CPU in {:.3} s",
            self.cpu.as_secs_f64() * 1e3,
            self.wall.as_secs_f64()
        )
    }
}

/// What the kernel showed through the freeze and the thaw.
struct Observed {
    /// Before freezing: the spinner's growth, if it reached [`ADVANCE`].
    running: Option<Charged>,
    states_running: String,
    /// How long `frozen 1` took, if it came.
    frozen_after: Option<Duration>,
    states_frozen: String,
    /// Charged while `frozen 1`: the first window, and a second one when
    /// the first was charged (a slice the host stalled may be charged late).
    while_frozen: Option<Charged>,
    again_frozen: Option<Charged>,
    /// `frozen` as read at the end of the frozen window.
    still_frozen: Option<bool>,
    /// How long `frozen 0` took after the thaw, if it came.
    thawed_after: Option<Duration>,
    /// After thawing: the spinner's growth, if it reached [`ADVANCE`].
    after_thaw: Option<Charged>,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    require_v2(
        "cgroup.freeze is a cgroup v2 file (Linux 5.2); v1's freezer is a controller of its own, in which the runtime places no container",
    )?;
    let mut session = lab.start(lab.spec(&()), Role::Isolated)?;
    let Spinning = session.receive()?;
    let counters = Counters::of(session.pid());
    let observed = observe(&counters, session.pid().as_raw());
    // Thawed by now on every path, so the helper can end.
    session.finish()?;
    let observed = observed?;

    let control = evidence![
        "thread states (R runs, S sleeps)" => &observed.states_running,
        format!("CPU charged before freezing (until {} ms or {PATIENCE:?})", ADVANCE.as_millis()) =>
            shown(observed.running),
    ];
    let mut evidence = evidence![
        "cgroup.freeze written" => "1",
        "frozen 1 in cgroup.events after" =>
            observed.frozen_after.map_or(format!("not within {PATIENCE:?}"), |d| format!("{d:?}")),
    ];
    if observed.frozen_after.is_some() {
        evidence
            .saw("thread states while frozen", &observed.states_frozen)
            .saw("CPU charged while frozen", shown(observed.while_frozen))
            .saw(
                "CPU charged in a second frozen window (measured when the first was charged)",
                observed.again_frozen.map_or("not needed".into(), |a| a.to_string()),
            )
            .saw(
                "still frozen at the end of the window",
                observed.still_frozen.map_or("?".into(), |f| f.to_string()),
            )
            .saw("cgroup.freeze written", "0")
            .saw(
                "frozen 0 after",
                observed
                    .thawed_after
                    .map_or(format!("not within {PATIENCE:?}"), |d| format!("{d:?}")),
            )
            .saw("CPU charged after thawing", shown(observed.after_thaw));
    }

    let property = match (observed.frozen_after, observed.while_frozen) {
        (None, _) | (_, None) => Property::Unclear(format!(
            "cgroup.events did not say frozen 1 within {PATIENCE:?} of writing cgroup.freeze: the machine may be too slow to tell"
        )),
        (Some(_), Some(charged))
            if charged.cpu > TOLERANCE
                && observed.again_frozen.is_none_or(|again| again.cpu > TOLERANCE) =>
        {
            if observed.still_frozen == Some(true) {
                Property::Broken(format!(
                    "the kernel said frozen 1, yet charged the cgroup {charged}, and again {} (bound {} ms)",
                    observed.again_frozen.map_or("?".into(), |a| a.to_string()),
                    TOLERANCE.as_millis()
                ))
            } else {
                Property::Unclear(
                    "the cgroup was charged while frozen, but cgroup.events no longer says frozen 1: something thawed it".into(),
                )
            }
        }
        _ if observed.thawed_after.is_none() => Property::Unclear(format!(
            "cgroup.events did not say frozen 0 within {PATIENCE:?} of the thaw"
        )),
        _ if observed.after_thaw.is_none() => Property::Unclear(format!(
            "after the thaw the spinner was not charged {} ms of CPU within {PATIENCE:?}: starved, or too slow to tell",
            ADVANCE.as_millis()
        )),
        _ => Property::Held,
    };
    Ok(Judgement {
        evidence,
        control,
        control_separated: observed.running.is_some(),
        property,
    }
    .finding())
}

/// The CPU time charged to the cgroup over `window` of wall-clock time.
fn charged_over(counters: &Counters, window: Duration) -> Result<Charged, LabError> {
    let before = counters.cpu_usage()?;
    let start = Instant::now();
    std::thread::sleep(window);
    let after = counters.cpu_usage()?;
    Ok(Charged {
        cpu: after.saturating_sub(before),
        wall: start.elapsed(),
    })
}

/// Watches the spinner run, freezes the cgroup, watches it not run, thaws
/// it, and watches it run again. The cgroup is thawed on every path out.
fn observe(counters: &Counters, pid: i32) -> Result<Observed, LabError> {
    let dir = counters.container_dir()?;
    let running = charged_until_advance(counters)?;
    let states_running = thread_states(pid);

    let freeze = dir.join("cgroup.freeze");
    if let Err(e) = kernel::write_existing(&freeze, "1") {
        return Err(match e.raw_os_error() {
            Some(libc::ENOENT) => LabError::Unsupported(
                "writing cgroup.freeze: ENOENT: the kernel has no cgroup.freeze (Linux 5.2)".into(),
            ),
            _ => LabError::broken(format!("write 1 to cgroup.freeze: {}", errno_name(&e))),
        });
    }
    let thaw = Thaw(&freeze);
    let frozen_after = wait_for_frozen(&dir, true)?;
    let (states_frozen, while_frozen, again_frozen, still_frozen) = if frozen_after.is_some() {
        std::thread::sleep(SETTLE);
        let states = thread_states(pid);
        let control_took = running.map_or(Duration::ZERO, |r| r.wall);
        let window = control_took.clamp(FROZEN_WINDOW, LONGEST_FROZEN_WINDOW);
        let first = charged_over(counters, window)?;
        let second = if first.cpu > TOLERANCE {
            Some(charged_over(counters, window)?)
        } else {
            None
        };
        let still = frozen(&dir)?;
        (states, Some(first), second, Some(still))
    } else {
        (String::new(), None, None, None)
    };

    thaw.now()?;
    let thawed_after = wait_for_frozen(&dir, false)?;
    let after_thaw = match thawed_after {
        Some(_) => charged_until_advance(counters)?,
        None => None,
    };
    Ok(Observed {
        running,
        states_running,
        frozen_after,
        states_frozen,
        while_frozen,
        again_frozen,
        still_frozen,
        thawed_after,
        after_thaw,
    })
}

/// Writes `0` to `cgroup.freeze` when dropped, so that no path leaves the
/// helper frozen (it could then never end, nor the runtime remove it).
struct Thaw<'a>(&'a Path);

impl Thaw<'_> {
    /// Thaws now, saying whether the kernel took the write.
    fn now(self) -> Result<(), LabError> {
        let written = kernel::write_existing(self.0, "0");
        std::mem::forget(self);
        written.or_broken("write 0 to cgroup.freeze")
    }
}

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        let _ = kernel::write_existing(self.0, "0");
    }
}

/// Polls the cgroup's CPU time until it has grown by [`ADVANCE`], for up to
/// [`PATIENCE`]; the growth and how long it took, or None.
fn charged_until_advance(counters: &Counters) -> Result<Option<Charged>, LabError> {
    let start = Instant::now();
    let before = counters.cpu_usage()?;
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let cpu = counters.cpu_usage()?.saturating_sub(before);
        if cpu >= ADVANCE {
            return Ok(Some(Charged {
                cpu,
                wall: start.elapsed(),
            }));
        }
        if start.elapsed() > PATIENCE {
            return Ok(None);
        }
    }
}

/// `frozen` of `cgroup.events`: whether every task of the cgroup has
/// reached the freezer's trap, by the kernel's own count.
fn frozen(dir: &Path) -> Result<bool, LabError> {
    let events =
        std::fs::read_to_string(dir.join("cgroup.events")).or_broken("read cgroup.events")?;
    let value = events
        .lines()
        .find_map(|l| l.strip_prefix("frozen "))
        .or_broken(format!("cgroup.events has no frozen line: {events:?}"))?;
    Ok(value.trim() == "1")
}

/// Waits up to [`PATIENCE`] for `frozen` to read `want`; how long it took.
fn wait_for_frozen(dir: &Path, want: bool) -> Result<Option<Duration>, LabError> {
    let start = Instant::now();
    while frozen(dir)? != want {
        if start.elapsed() > PATIENCE {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Some(start.elapsed()))
}

/// Each thread of `pid` with its state letter from `/proc/<pid>/task/<tid>/stat`.
fn thread_states(pid: i32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "(gone)".into();
    };
    let mut states: Vec<(i32, String)> = tasks
        .filter_map(|t| {
            let tid: i32 = t.ok()?.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).ok()?;
            let state = crate::kernel::stat_fields(&stat).first()?.to_string();
            Some((tid, state))
        })
        .collect();
    states.sort();
    let shown: Vec<String> = states.iter().map(|(t, s)| format!("{t} {s}")).collect();
    shown.join(", ")
}

/// A growth as evidence shows it, or that it never came.
fn shown(charged: Option<Charged>) -> String {
    charged.map_or(
        format!("less than {} ms within {PATIENCE:?}", ADVANCE.as_millis()),
        |c| c.to_string(),
    )
}

/// Inside: starts a thread that counts in a loop forever, making no system
/// call, and reports; the thread runs until the helper ends.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("spinner".into())
        .spawn(|| {
            let mut count: u64 = 0;
            loop {
                count = std::hint::black_box(count.wrapping_add(1));
            }
        })
        .context("start the spinning thread")?;
    helper.say(&Spinning)
}
