//! Detached runs: a small monitor process stays as the container's parent,
//! in the spirit of conmon or containerd-shim. It waits for the exit,
//! records the exit code, the finish time and whether the OOM killer
//! struck, and tears down (removing everything with `--rm`). `run -d`
//! returns as soon as the monitor reports that the command started.

use std::path::Path;

use nix::unistd::{fork, setsid, ForkResult};
use serde::{Deserialize, Serialize};

use crate::channel::{self, Channel};
use crate::error::{Error, Kind, Result, EXIT_RUNTIME};
use crate::launch::{launch_with, Stdio};
use crate::spec::Spec;

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
    let (ours, monitors) = channel::pair().map_err(Error::sys("create the monitor's channel"))?;
    // SAFETY: the caller is single-threaded, so the child may run Rust code.
    match unsafe { fork() }.map_err(Error::sys("fork the monitor"))? {
        ForkResult::Child => {
            drop(ours);
            monitor(spec, state_root, monitors)
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

/// The monitor's whole life. Never returns.
fn monitor(spec: &Spec, state_root: &Path, report: Channel) -> ! {
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
    let started = launch_with(
        spec,
        state_root,
        Stdio {
            log: true,
            ..Stdio::default()
        },
    )
    .and_then(|mut container| {
        container.set_detached()?;
        container.started()?;
        Ok(container)
    });
    match started {
        Ok(container) => {
            let id = container.id.clone();
            let _ = report.send(&MonitorReport::Started { id }, &[]);
            drop(report);
            let code = if container.wait().is_ok() {
                0
            } else {
                EXIT_RUNTIME
            };
            std::process::exit(code)
        }
        Err(e) => {
            let failed = MonitorReport::Failed {
                kind: e.kind(),
                code: e.exit_code(),
                message: e.to_string(),
            };
            let _ = report.send(&failed, &[]);
            std::process::exit(e.exit_code())
        }
    }
}
