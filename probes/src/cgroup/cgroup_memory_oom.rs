//! # `cgroup.memory_oom`: a process over its memory limit is OOM-killed, and the kernel counts it
//!
//! **The feature.** The memory controller charges every page a cgroup's
//! tasks touch to that cgroup. At the hard limit (`memory.max` on v2,
//! `memory.limit_in_bytes` on v1) the kernel first reclaims; when nothing more
//! can be reclaimed it invokes the OOM killer *inside the cgroup*, which
//! SIGKILLs a task of that cgroup and nothing outside it. The kernel counts
//! both steps: hitting the limit (`oom` in `memory.events` on v2; on v1 the
//! high-water mark `memory.max_usage_in_bytes` reaching the limit) and each
//! kill (`oom_kill` in `memory.events`, or in
//! `memory.oom_control` on v1 since 4.13). Swap is limited to zero here
//! (`--memory-swap` equal to `--memory`), so the pages cannot escape to swap.
//!
//! **How the probe looks.** With a 32 MiB limit, the helper reports ready;
//! the probe reads the counters, tells it to go, and it allocates 64 MiB,
//! writing to every page. Once the helper has died, the probe takes the
//! kernel's word for how: `waitid(WNOWAIT)` reports the exit status without
//! collecting it, so the cgroup still exists and its counters can be read
//! before the runtime removes it.
//!
//! **Why two counters.** A kill by the machine-wide OOM killer also bumps
//! `oom_kill` of the victim's cgroup; only the limit being reached shows
//! that the cgroup's own limit did it. v1 also has `memory.failcnt` (and
//! `memory.memsw.failcnt`, charged first when memory plus swap is limited),
//! but kernel 6.18 leaves both at 0 through an OOM kill at the limit, so the
//! probe reports them and judges by the high-water mark instead.
//!
//! **The control.** The same 64 MiB with no limit: the helper survives, and
//! `oom_kill` does not move.
//!
//! **Verdict.** Pass when the helper died of SIGKILL, `oom_kill` grew, and
//! the limit was hit. A kernel without a memory controller for this cgroup
//! mode (Debian's 6.12 has no `CONFIG_MEMCG_V1`) gives Unsupported, not Fail.

use nix::sys::signal::Signal;
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use runtime::cgroup::Mode;
use runtime::spec::SwapLimit;

use crate::kernel;
use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

const LIMIT: u64 = 32 << 20;

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let hog = allocate(lab, Some(LIMIT), Role::Isolated)?;
    let unlimited = allocate(lab, None, Role::Control)?;
    let mut evidence = Evidence::new();
    hog.describe(&mut evidence, "64 MiB");
    let mut control = Evidence::new();
    unlimited.describe(&mut control, "64 MiB, no limit");
    let killed = hog.death == Some(Signal::SIGKILL);
    Ok(Judgement {
        evidence,
        control,
        control_separated: unlimited.touched.is_some()
            && unlimited.oom_kills.1 == unlimited.oom_kills.0,
        property: Property::held_if(
            killed && hog.oom_kills.1 > hog.oom_kills.0 && hog.limit_hits.1 > hog.limit_hits.0,
            if hog.touched.is_some() {
                "the allocation over the limit succeeded".to_owned()
            } else if !killed {
                format!("the helper died, but of {:?}, not SIGKILL", hog.death)
            } else {
                "the helper was SIGKILLed, but the cgroup's counters show no OOM kill at its limit"
                    .to_owned()
            },
        ),
    }
    .finding())
}

struct Allocation {
    /// The limit as the kernel holds it.
    limit: String,
    /// (before, after) the allocation.
    oom_kills: (u64, u64),
    /// v2: `oom` events; v1: 1 once the high-water mark reached the limit.
    limit_hits: (u64, u64),
    /// v1's `memory.failcnt / memory.memsw.failcnt`, reported as seen.
    failcnts: Option<String>,
    touched: Option<String>,
    /// The signal that killed the helper, by the kernel's account.
    death: Option<Signal>,
}

impl Allocation {
    fn describe(&self, evidence: &mut Evidence, amount: &str) {
        evidence
            .saw("memory limit in the kernel", &self.limit)
            .saw(
                "helper touched",
                self.touched
                    .as_deref()
                    .map_or("(died first)".to_owned(), |t| {
                        format!("{t} MiB of {amount}")
                    }),
            )
            .saw(
                "helper ended by",
                self.death
                    .map_or("still alive".to_owned(), |s| s.to_string()),
            )
            .saw(
                "oom_kill before → after",
                format!("{} → {}", self.oom_kills.0, self.oom_kills.1),
            )
            .saw(
                "limit reached (v2 oom events; v1 max_usage ≥ limit) before → after",
                format!("{} → {}", self.limit_hits.0, self.limit_hits.1),
            );
        if let Some(failcnts) = &self.failcnts {
            evidence.saw("v1 memory.failcnt / memory.memsw.failcnt", failcnts);
        }
    }
}

/// Lets the helper touch 64 MiB, under `limit` (memory and swap together).
fn allocate(lab: &Lab, limit: Option<u64>, role: Role) -> Result<Allocation, LabError> {
    let mut spec = lab.spec(&["alloc", "64"]);
    spec.limits.memory = limit;
    spec.limits.memory_swap = limit.map(SwapLimit::Total);
    let mut session = lab.start(spec, role)?;
    session.expect("ready")?;
    let v2 = Mode::detect().map(Mode::is_v2).unwrap_or(false);
    let dir = kernel::cgroup_dir(session.pid().as_raw(), "memory")
        .ok_or_else(|| LabError::Broken("no memory cgroup for the helper".into()))?;
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .map(|t| t.trim().to_owned())
            .unwrap_or_default()
    };
    // (oom kills, limit hits, v1 failcnts for the record)
    let counters = || {
        if v2 {
            let events = dir.join("memory.events");
            (
                kernel::cgroup_stat(&events, "oom_kill").unwrap_or(0),
                kernel::cgroup_stat(&events, "oom").unwrap_or(0),
                None,
            )
        } else {
            let number = |f: &str| read(f).parse::<u64>().unwrap_or(0);
            let reached = number("memory.max_usage_in_bytes") >= number("memory.limit_in_bytes");
            let failcnts = format!(
                "{} / {}",
                number("memory.failcnt"),
                number("memory.memsw.failcnt")
            );
            (
                kernel::cgroup_stat(&dir.join("memory.oom_control"), "oom_kill").unwrap_or(0),
                u64::from(reached),
                Some(failcnts),
            )
        }
    };
    let limit = read(if v2 {
        "memory.max"
    } else {
        "memory.limit_in_bytes"
    });
    let before = counters();
    session.send_line("go")?;
    // Either the helper reports the allocation, or it dies and its output ends.
    let touched = session.expect_unless_ended("touched_mib")?;
    let death = if touched.is_none() {
        match waitid(
            Id::Pid(session.pid()),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        )? {
            WaitStatus::Signaled(_, signal, _) => Some(signal),
            _ => None,
        }
    } else {
        None
    };
    let after = counters();
    session.finish()?;
    Ok(Allocation {
        limit,
        oom_kills: (before.0, after.0),
        limit_hits: (before.1, after.1),
        failcnts: after.2,
        touched,
        death,
    })
}
