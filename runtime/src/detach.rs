//! Detached runs: a small monitor process stays as the container's parent,
//! in the spirit of conmon or containerd-shim. It waits for the exit,
//! records the exit code, the finish time and whether the OOM killer
//! struck, and tears down (removing everything with `--rm`). `run -d`
//! returns as soon as the monitor reports that the command started.
//! With a restart policy (`--restart`), the monitor then starts the
//! container again as the policy says; `restart` starts one again under a
//! new monitor.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::unistd::{fork, setsid, ForkResult};
use serde::{Deserialize, Serialize};

use crate::channel::{self, Channel};
use crate::error::{Error, Kind, Result, EXIT_RUNTIME};
use crate::launch::{launch_with, relaunch_with, Container, Stdio};
use crate::spec::{restart, Spec};
use crate::store::{RestartBy, Store};

/// The monitor's one message to `run -d`, over the same typed channel that
/// launch and init speak.
#[derive(Debug, Serialize, Deserialize)]
enum MonitorReport {
    /// The command runs; the monitor now supervises it.
    Started { id: String },
    /// The container could not start; nothing of it is left.
    Failed {
        kind: Kind,
        code: i32,
        message: String,
    },
}

/// Starts the container under a new monitor and returns its id once the
/// command runs. A failure to start (a missing command: 127) is returned
/// here, with its kind and exit code, the monitor gone and nothing left
/// behind.
///
/// Call it from a single-threaded process: it forks.
pub fn run_detached(spec: &Spec, state_root: &Path) -> Result<String> {
    under_new_monitor(state_root, Start::New(spec))
}

/// Starts an exited container again under a new monitor (`restart`), from
/// the spec it was run with, and returns once its command runs. A failure
/// leaves it exited, with the code the start failed with.
///
/// Call it from a single-threaded process: it forks.
pub fn start_again(state_root: &Path, query: &str) -> Result<String> {
    under_new_monitor(state_root, Start::Again(query))
}

/// What a new monitor starts.
enum Start<'a> {
    New(&'a Spec),
    /// An exited container, by name or id.
    Again(&'a str),
}

fn under_new_monitor(state_root: &Path, start: Start) -> Result<String> {
    let (ours, monitors) = channel::pair().map_err(Error::sys("create the monitor's channel"))?;
    // SAFETY: the caller is single-threaded, so the child may run Rust code.
    match unsafe { fork() }.map_err(Error::sys("fork the monitor"))? {
        ForkResult::Child => {
            drop(ours);
            monitor(start, state_root, monitors)
        }
        ForkResult::Parent { .. } => {
            drop(monitors);
            match ours.recv::<MonitorReport>() {
                Ok(Some((MonitorReport::Started { id }, _))) => Ok(id),
                Ok(Some((
                    MonitorReport::Failed {
                        kind,
                        code,
                        message,
                    },
                    _,
                ))) => Err(Error::Reported {
                    kind,
                    message,
                    code,
                }),
                Ok(None) | Err(_) => Err(Error::System(
                    "the container's monitor died before it reported the start".into(),
                )),
            }
        }
    }
}

/// The monitor's whole life: start the container, report, supervise it,
/// and start it again for as long as its restart policy says. Never returns.
fn monitor(start: Start, state_root: &Path, report: Channel) -> ! {
    // A session of its own: the terminal's hang-up and Ctrl-C never reach it.
    let _ = setsid();
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
    let store = Store::new(state_root);
    let started = match start {
        Start::New(spec) => launch_with(spec, state_root, logged()).and_then(|mut container| {
            container.set_detached()?;
            container.started()?;
            Ok(container)
        }),
        Start::Again(query) => match relaunch(&store, query, RestartBy::Hand) {
            Ok(Some(container)) => Ok(container),
            Ok(None) => unreachable!("a restart by hand is always wanted"),
            Err(e) => Err(e),
        },
    };
    let container = match started {
        Ok(container) => container,
        Err(e) => {
            let failed = MonitorReport::Failed {
                kind: e.kind(),
                code: e.exit_code(),
                message: e.to_string(),
            };
            let _ = report.send(&failed, &[]);
            std::process::exit(e.exit_code())
        }
    };
    let id = container.id.clone();
    let _ = report.send(&MonitorReport::Started { id: id.clone() }, &[]);
    drop(report);
    let code = match keep_running(container, &store) {
        Ok(()) => 0,
        Err(_) => EXIT_RUNTIME,
    };
    std::process::exit(code)
}

/// Output to the container's log, as every detached container's.
fn logged() -> Stdio {
    Stdio {
        log: true,
        ..Stdio::default()
    }
}

/// Supervises the container to its exit, then, while its restart policy
/// says so and nobody stopped it by hand, waits (100 ms, doubling for each
/// restart in a row, at most a minute) and starts it again from its spec.
/// Each exit is recorded before the wait, so `ps` and `wait` see it.
fn keep_running(mut container: Container, store: &Store) -> Result<()> {
    let id = container.id.clone();
    let mut delay = None;
    loop {
        // A stop (or rm, or restart) that came while it started saw no
        // process to signal: the request is for this run.
        if store.stop_request(&id).is_some() {
            let _ = nix::sys::signal::kill(container.pid, nix::sys::signal::Signal::SIGKILL);
        }
        let ran_since = Instant::now();
        let outcome = container.wait()?;
        // Removed (--rm, or rm -f), stopped by hand, or its policy is done.
        let Ok(record) = store.load(&id) else {
            return Ok(());
        };
        if store.stop_request(&id).is_some()
            || !record
                .restart
                .restarts_after(outcome.exit_code, record.restart_count)
        {
            return Ok(());
        }
        let wait = restart::next_delay(delay, ran_since.elapsed());
        delay = Some(wait);
        store.set_restarting(&id, true)?;
        if !sleep_unless_stopped(store, &id, wait) {
            let _ = store.set_restarting(&id, false);
            return Ok(());
        }
        container = match relaunch(store, &id, RestartBy::Policy) {
            Ok(Some(container)) => container,
            // Stopped by hand meanwhile.
            Ok(None) => {
                let _ = store.set_restarting(&id, false);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
    }
}

/// Claims the exited container `query` and starts it again from its spec,
/// returning once its command runs; `None` when its policy no longer
/// wants it. Its directory stays locked until then, so that `cp` into the
/// stopped container never mounts its layers at the same time. A failure
/// leaves it exited, with the reason in its record (`State.Error`).
fn relaunch(store: &Store, query: &str, by: RestartBy) -> Result<Option<Container>> {
    let Some((record, spec)) = store.claim_restart(query, by)? else {
        return Ok(None);
    };
    let id = record.id.clone();
    // Once it is recorded as running, `cp` leaves its layers alone without
    // the lock; a container that fails to start is dropped after it.
    let launched = store
        .hold_dir(&id)
        .and_then(|_held| relaunch_with(&spec, store.root(), logged(), record));
    let started = launched.and_then(|mut container| {
        container.set_detached()?;
        container.started()?;
        Ok(container)
    });
    if let Err(e) = &started {
        let _ = store.set_start_error(&id, &e.to_string());
    }
    started.map(Some)
}

/// Sleeps for `wait`, in short steps, and says whether the container is
/// still to be started: false once it was stopped by hand or removed.
fn sleep_unless_stopped(store: &Store, id: &str, wait: Duration) -> bool {
    const STEP: Duration = Duration::from_millis(50);
    let deadline = Instant::now() + wait;
    loop {
        if store.stop_request(id).is_some() || !store.container_dir(id).exists() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(STEP));
    }
}
