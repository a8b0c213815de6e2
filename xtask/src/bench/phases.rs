//! Where mydocker's start goes: containers run through the `runtime` library in-process, timed phase by phase.

use std::path::Path;
use std::time::Duration;

use runtime::Phase;

/// The time one phase took, once per container.
#[derive(serde::Serialize)]
pub struct PhaseSamples {
    pub phase: &'static str,
    pub millis: Vec<f64>,
}

/// Runs `count` containers like `mydocker run --rm -m 64m /bin/true` through
/// `runtime::run`, each after `settle` idle like the latency samples, and
/// returns each phase's times.
///
/// `runtime::run` clones a child that runs Rust code before it execs, which
/// is only safe while this process has a single thread (another thread could
/// hold the allocator's lock at the clone, and the child would wait forever),
/// so this refuses to run otherwise.
pub fn measure(
    rootfs: &Path,
    state_root: &Path,
    count: u32,
    settle: Duration,
) -> Result<Vec<PhaseSamples>, String> {
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:")?.trim().parse().ok())
        });
    if threads != Some(1) {
        return Err(format!(
            "the phase breakdown needs a single-threaded process, but xtask has {threads:?} threads"
        ));
    }
    let mut spec = runtime::Spec::new(rootfs, vec!["/bin/true".into()]);
    spec.limits.memory = Some(super::MEMORY_LIMIT);
    spec.cgroup_parent = super::CGROUP_PARENT.into();
    spec.split_init_phases = true;
    let mut phases: Vec<PhaseSamples> = Phase::ALL
        .iter()
        .map(|p| PhaseSamples {
            phase: p.name(),
            millis: Vec::new(),
        })
        .collect();
    for _ in 0..count {
        std::thread::sleep(settle);
        let outcome = runtime::run(&spec, state_root).map_err(|e| {
            format!("mydocker (the library, in-process) failed to run /bin/true: {e}")
        })?;
        if outcome.exit_code != 0 {
            return Err(format!(
                "mydocker (the library, in-process): /bin/true exited with {}",
                outcome.exit_code
            ));
        }
        if let Some(e) = outcome.cleanup_error {
            return Err(format!(
                "mydocker (the library, in-process) left something behind: {e}"
            ));
        }
        for (samples, phase) in phases.iter_mut().zip(Phase::ALL) {
            samples
                .millis
                .push(outcome.timeline.spent(phase).as_secs_f64() * 1e3);
        }
    }
    Ok(phases)
}
