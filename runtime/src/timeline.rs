//! Timeline: where one container start spends its time, phase by phase.
//!
//! Launch takes a lap at each phase boundary it crosses. Init's own work
//! (mounts and `pivot_root`) happens in another process, so when a spec asks
//! for it, init sends the moment it is about to exec; both sides read the
//! same clock, `CLOCK_MONOTONIC`, so the two sides' laps line up.
//!
//! With `MYDOCKER_TRACE_PHASES=FILE` in the environment, each lap is also
//! appended to FILE as `PID PHASE NANOSECONDS` the moment it is taken (and
//! `PID start NANOSECONDS` first): how the chaos test knows which phase a
//! kill interrupted. Unset, it costs one read of the environment.

use std::time::Duration;

use nix::time::{clock_gettime, ClockId};

/// The phases of a start, in the order they happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// State directory, record writes, overlay directories, address lease.
    State,
    /// Creating the cgroup, writing its limits, moving init into it.
    Cgroup,
    /// `clone` with the new namespaces.
    Clone,
    /// veth pair, bridge port, addresses and routes, NAT rules.
    Network,
    /// Init's setup: overlay and volume mounts, `pivot_root`, `/proc`,
    /// `/sys`, `/dev`. Without init's report this is counted under `Exec`.
    Rootfs,
    /// From init's last step to launch seeing the exec succeed.
    Exec,
    /// The command runs until launch has reaped it.
    Wait,
    /// Removing the cgroup, the network endpoint and the state.
    Teardown,
}

impl Phase {
    pub const ALL: [Phase; 8] = [
        Phase::State,
        Phase::Cgroup,
        Phase::Clone,
        Phase::Network,
        Phase::Rootfs,
        Phase::Exec,
        Phase::Wait,
        Phase::Teardown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::State => "state",
            Phase::Cgroup => "cgroup",
            Phase::Clone => "clone",
            Phase::Network => "network",
            Phase::Rootfs => "rootfs",
            Phase::Exec => "exec",
            Phase::Wait => "wait",
            Phase::Teardown => "teardown",
        }
    }
}

/// Time spent in each phase of one container's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    spent: [Duration; 8],
    last: u64,
}

/// Nanoseconds on the clock both launch and init read.
pub fn now() -> u64 {
    // CLOCK_MONOTONIC cannot fail on Linux; a zero would only blur one lap.
    clock_gettime(ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

impl Timeline {
    /// A timeline whose first phase starts now.
    pub fn start() -> Timeline {
        let last = now();
        trace("start", last);
        Timeline {
            spent: [Duration::ZERO; 8],
            last,
        }
    }

    /// Charges the time since the last lap to `phase`.
    pub fn lap(&mut self, phase: Phase) {
        self.lap_at(phase, now());
    }

    /// Charges the time up to `at` (from [`now`], possibly in another
    /// process) to `phase`.
    pub fn lap_at(&mut self, phase: Phase, at: u64) {
        let at = at.max(self.last);
        trace(phase.name(), at);
        self.spent[phase as usize] += Duration::from_nanos(at - self.last);
        self.last = at;
    }

    /// Time charged to `phase`.
    pub fn spent(&self, phase: Phase) -> Duration {
        self.spent[phase as usize]
    }

    /// Time across all phases.
    pub fn total(&self) -> Duration {
        self.spent.iter().sum()
    }

    /// The phase that took longest.
    pub fn costliest(&self) -> Phase {
        Phase::ALL
            .into_iter()
            .max_by_key(|p| self.spent(*p))
            .expect("eight phases")
    }
}

/// Whether laps are traced (`MYDOCKER_TRACE_PHASES`): init then reports
/// the end of its own setup, so that the rootfs phase is told apart.
pub fn tracing() -> bool {
    trace_file().is_some()
}

fn trace_file() -> Option<&'static std::ffi::OsString> {
    static FILE: std::sync::OnceLock<Option<std::ffi::OsString>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| std::env::var_os("MYDOCKER_TRACE_PHASES"))
        .as_ref()
}

/// Appends one lap to the trace file, if the environment names one. A
/// trace that cannot be written is no reason to fail a start.
fn trace(what: &str, at: u64) {
    use std::io::Write;
    let Some(path) = trace_file() else {
        return;
    };
    use std::os::unix::fs::OpenOptionsExt;
    // Never through a link, and readable only by its owner: root may be
    // handed a path in a directory others can write.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        // One write per line: O_APPEND keeps concurrent writers' lines whole.
        let _ = file.write_all(format!("{} {what} {at}\n", std::process::id()).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_charge_the_time_between_them_to_each_phase() {
        let mut timeline = Timeline {
            spent: Default::default(),
            last: 1_000,
        };
        timeline.lap_at(Phase::State, 1_500);
        timeline.lap_at(Phase::Cgroup, 1_700);
        timeline.lap_at(Phase::State, 2_000);
        assert_eq!(timeline.spent(Phase::State), Duration::from_nanos(800));
        assert_eq!(timeline.spent(Phase::Cgroup), Duration::from_nanos(200));
        assert_eq!(timeline.total(), Duration::from_nanos(1_000));
        assert_eq!(timeline.costliest(), Phase::State);
    }

    #[test]
    fn a_mark_from_before_the_last_lap_charges_nothing() {
        let mut timeline = Timeline {
            spent: Default::default(),
            last: 1_000,
        };
        timeline.lap_at(Phase::Rootfs, 900);
        assert_eq!(timeline.total(), Duration::ZERO);
        timeline.lap_at(Phase::Exec, 1_100);
        assert_eq!(timeline.spent(Phase::Exec), Duration::from_nanos(100));
    }
}
