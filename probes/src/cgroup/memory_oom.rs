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
use runtime::spec::SwapLimit;

use crate::counters::MemoryEvents;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "cgroup.memory_oom",
    property: "a process over its memory limit is OOM-killed and the kernel counts the kill",
    needs: Needs {
        config: &["MEMCG"],
        config_v1: &["MEMCG_V1"],
        modules: &[],
        since: None,
    },
    mutations: &[Mutation::SkipLimits],
    why_no_mutation: None,
    selftests: &["cgroup/test_memcg_oom_events"],
    run,
    inside,
};

/// The memory limit (and memory plus swap limit) of the isolated run.
const LIMIT: u64 = 32 << 20;
/// What the helper allocates (its request), in MiB: twice the limit.
const ALLOCATION_MIB: u64 = 64;

/// The helper's first report: ready, nothing touched yet.
#[derive(Debug, Serialize, Deserialize)]
struct Ready;

/// The helper's second report, if it lives to make it: every page of the
/// allocation was written.
#[derive(Debug, Serialize, Deserialize)]
struct Touched {
    mib: u64,
}

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let hog = allocate(lab, Some(LIMIT), Role::Isolated)?;
    let unlimited = allocate(lab, None, Role::Control)?;
    let killed = hog.death == Some(Signal::SIGKILL);
    let (before, after) = hog.events;
    let (control_before, control_after) = unlimited.events;
    Ok(Judgement {
        evidence: hog.describe(&format!("{ALLOCATION_MIB} MiB")),
        control: unlimited.describe(&format!("{ALLOCATION_MIB} MiB, no limit")),
        control_separated: unlimited.touched.is_some()
            && control_after.oom_kills == control_before.oom_kills,
        property: Property::held_if(
            killed && after.oom_kills > before.oom_kills && after.limit_hits > before.limit_hits,
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

/// What one allocation did, by the helper's and the kernel's account.
struct Allocation {
    /// The limit as the kernel holds it.
    limit: String,
    /// The cgroup's OOM kills and limit hits (before, after) the allocation.
    events: (MemoryEvents, MemoryEvents),
    /// v1's `memory.failcnt / memory.memsw.failcnt`, reported as seen.
    failcnts: Option<String>,
    /// MiB the helper reported touching, if it lived to say so.
    touched: Option<u64>,
    /// The signal that killed the helper, by the kernel's account.
    death: Option<Signal>,
}

impl Allocation {
    /// The evidence of this allocation of `amount`.
    fn describe(&self, amount: &str) -> Evidence {
        let (before, after) = self.events;
        let mut evidence = evidence![
            "memory limit in the kernel" => &self.limit,
            "helper touched" => self
                .touched
                .map_or("(died first)".to_owned(), |t| format!("{t} MiB of {amount}")),
            "helper ended by" => self.death.map_or("still alive".to_owned(), |s| s.to_string()),
            "oom_kill before → after" => format!("{} → {}", before.oom_kills, after.oom_kills),
            "limit reached (v2 oom events; v1 max_usage ≥ limit) before → after" =>
                format!("{} → {}", before.limit_hits, after.limit_hits),
        ];
        if let Some(failcnts) = &self.failcnts {
            evidence.saw("v1 memory.failcnt / memory.memsw.failcnt", failcnts);
        }
        evidence
    }
}

/// Lets the helper touch [`ALLOCATION_MIB`], under `limit` (memory and swap
/// together).
fn allocate(lab: &Lab, limit: Option<u64>, role: Role) -> Result<Allocation, LabError> {
    let mut spec = lab.spec(&ALLOCATION_MIB);
    spec.limits.memory = limit;
    spec.limits.memory_swap = limit.map(SwapLimit::Total);
    let mut session = lab.start(spec, role)?;
    let Ready = session.receive()?;
    let counters = Counters::of(session.pid());
    let limit = counters
        .memory_limit()?
        .unwrap_or_else(|| "none: the memory controller does not govern the cgroup".into());
    // Without the controller nothing was counted, and nothing can be.
    let before = counters.memory_events()?.unwrap_or_default();
    session.send_line("go")?;
    // Either the helper reports the allocation, or it dies and its output ends.
    let touched = session
        .receive_unless_ended::<Touched>()?
        .map(|Touched { mib }| mib);
    // WNOWAIT leaves the dead helper a zombie: its cgroup, and so the
    // counters read below, stay until the runtime collects it.
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
    let after = counters.memory_events()?.unwrap_or_default();
    let failcnts = counters.memory_failcnts();
    session.finish()?;
    Ok(Allocation {
        limit,
        events: (before, after),
        failcnts,
        touched,
        death,
    })
}

/// Inside: reports ready, waits for the probe's go, then allocates the MiB
/// it asked for and writes to every page, so that each one is charged to
/// the memory cgroup; reports what it touched if it lives, and waits.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    const PAGE: usize = 4096;
    let mib: u64 = helper.ask()?;
    // The probe reads the cgroup's counters before the first page is touched.
    helper.say(&Ready)?;
    helper.hear()?;
    let mut chunks = Vec::new();
    for _ in 0..mib {
        let mut chunk = vec![0u8; 1 << 20];
        for offset in (0..chunk.len()).step_by(PAGE) {
            chunk[offset] = 1;
        }
        chunks.push(std::hint::black_box(chunk));
    }
    helper.say(&Touched { mib })
}
