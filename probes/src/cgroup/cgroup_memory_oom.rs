//! # `cgroup.memory_oom`: a process over its memory limit is OOM-killed, and the kernel counts it
//!
//! **The feature.** The memory controller charges every page a cgroup's
//! tasks touch to that cgroup. At the hard limit (`memory.max` on v2,
//! `memory.limit_in_bytes` on v1) the kernel first reclaims; when nothing more
//! can be reclaimed it invokes the OOM killer *inside the cgroup*, which
//! SIGKILLs a task of that cgroup and nothing outside it. The kernel counts
//! each kill: `oom_kill` in `memory.events` (v2) or in `memory.oom_control`
//! (v1, since 4.13), and v1's `memory.failcnt` counts hits of the limit.
//! Swap is limited to zero here (`--memory-swap` equal to `--memory`), so
//! the pages cannot escape to swap.
//!
//! **How the probe looks.** With a 32 MiB limit, the helper reports ready;
//! the probe reads the counters, tells it to go, and it allocates 64 MiB,
//! writing to every page. The probe reads the counters again once the helper
//! has died (before the runtime removes the cgroup) and reads how it died.
//!
//! **The control.** The helper touches 16 MiB, half the limit: it survives,
//! and `oom_kill` does not move.
//!
//! **Verdict.** Pass when the helper died of SIGKILL and `oom_kill` grew.
//! A kernel without a memory controller for this cgroup mode (Debian's 6.12
//! has no `CONFIG_MEMCG_V1`) gives Unsupported, not Fail.

use runtime::cgroup::Mode;
use runtime::spec::SwapLimit;

use crate::kernel;
use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding};

const LIMIT: u64 = 32 << 20;

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let hog = allocate(lab, "64", Role::Isolated)?;
    let modest = allocate(lab, "16", Role::Control)?;
    let mut evidence = Evidence::new();
    hog.describe(&mut evidence, "64 MiB");
    let mut control = Evidence::new();
    modest.describe(&mut control, "16 MiB");
    Ok(Finding::judge(
        evidence,
        control,
        modest.survived() && modest.oom_kills_after == modest.oom_kills_before,
        hog.killed_by_sigkill() && hog.oom_kills_after > hog.oom_kills_before,
        match hog.signal {
            None => "the allocation over the limit succeeded".to_owned(),
            Some(_) => "the process died, but the kernel counted no OOM kill".to_owned(),
        },
    ))
}

struct Allocation {
    oom_kills_before: u64,
    oom_kills_after: u64,
    failcnt: Option<u64>,
    touched: Option<String>,
    signal: Option<String>,
}

impl Allocation {
    fn survived(&self) -> bool {
        self.touched.is_some() && self.signal.is_none()
    }

    fn killed_by_sigkill(&self) -> bool {
        self.signal.as_deref() == Some("SIGKILL")
    }

    fn describe(&self, evidence: &mut Evidence, amount: &str) {
        evidence
            .saw("memory limit", "32 MiB, no swap")
            .saw(
                "helper touched",
                self.touched
                    .as_deref()
                    .map_or("(died first)".to_owned(), |t| {
                        format!("{t} MiB of {amount}")
                    }),
            )
            .saw("helper ended by", self.signal.as_deref().unwrap_or("exit"))
            .saw("oom_kill before", self.oom_kills_before)
            .saw("oom_kill after", self.oom_kills_after);
        if let Some(failcnt) = self.failcnt {
            evidence.saw("memory.failcnt", failcnt);
        }
    }
}

fn allocate(lab: &Lab, mib: &str, role: Role) -> Result<Allocation, LabError> {
    let mut spec = lab.spec(&["alloc", mib]);
    spec.limits.memory = Some(LIMIT);
    spec.limits.memory_swap = Some(SwapLimit::Total(LIMIT));
    let mut session = lab.start(spec, role)?;
    session.expect("ready")?;
    let v2 = Mode::detect().map(Mode::is_v2).unwrap_or(false);
    let dir = kernel::cgroup_dir(session.pid().as_raw(), "memory")
        .ok_or_else(|| LabError::Broken("no memory cgroup for the helper".into()))?;
    let (events, key) = if v2 {
        (dir.join("memory.events"), "oom_kill")
    } else {
        (dir.join("memory.oom_control"), "oom_kill")
    };
    let oom_kills_before = kernel::cgroup_stat(&events, key).unwrap_or(0);
    session.send_line("go")?;
    // Either the helper reports the allocation, or it dies and its output ends.
    let touched = session.expect("touched_mib").ok();
    if touched.is_none() {
        // The helper is dead but not yet reaped, so its cgroup still exists.
        let status = nix::sys::wait::waitid(
            nix::sys::wait::Id::Pid(session.pid()),
            nix::sys::wait::WaitPidFlag::WEXITED | nix::sys::wait::WaitPidFlag::WNOWAIT,
        )?;
        let _ = status;
    }
    let oom_kills_after = kernel::cgroup_stat(&events, key).unwrap_or(0);
    let failcnt = (!v2)
        .then(|| {
            std::fs::read_to_string(dir.join("memory.failcnt"))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
        .flatten();
    let (_, outcome) = session.finish()?;
    Ok(Allocation {
        oom_kills_before,
        oom_kills_after,
        failcnt,
        touched,
        signal: outcome.signal.map(|s| s.as_str().to_owned()),
    })
}
