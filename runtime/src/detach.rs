//! Detached runs: a small monitor process stays as the container's parent,
//! in the spirit of conmon or containerd-shim. It waits for the exit,
//! records the exit code, the finish time and whether the OOM killer
//! struck, and tears down (removing everything with `--rm`). `run -d`
//! returns as soon as the monitor reports that the command started.

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::OFlag;
use nix::unistd::{fork, pipe2, setsid, ForkResult};

use crate::error::{Error, Result, EXIT_RUNTIME};
use crate::launch::{launch_with, Stdio};
use crate::spec::Spec;

/// Starts the container under a new monitor and returns its id once the
/// command runs. A failure to start (a missing command: 127) is returned
/// here, with the monitor gone and nothing left behind.
///
/// Call it from a single-threaded process: it forks.
pub fn run_detached(spec: &Spec, state_root: &Path) -> Result<String> {
    let (reader, writer) =
        pipe2(OFlag::O_CLOEXEC).map_err(Error::sys("create the monitor's pipe"))?;
    // SAFETY: the caller is single-threaded, so the child may run Rust code.
    match unsafe { fork() }.map_err(Error::sys("fork the monitor"))? {
        ForkResult::Child => {
            drop(reader);
            monitor(spec, state_root, writer)
        }
        ForkResult::Parent { .. } => {
            drop(writer);
            let mut message = String::new();
            let _ = std::fs::File::from(reader).read_to_string(&mut message);
            match message.split_once('\n') {
                Some(("ok", id)) => Ok(id.trim().to_owned()),
                Some((code, text)) => match code.parse::<i32>() {
                    Ok(126 | 127) => Err(Error::Exec {
                        message: text.to_owned(),
                        code: code.parse().expect("checked"),
                    }),
                    _ => Err(Error::Setup(text.to_owned())),
                },
                None => Err(Error::Setup(
                    "the container's monitor died before it reported the start".into(),
                )),
            }
        }
    }
}

/// The monitor's whole life. Never returns.
fn monitor(spec: &Spec, state_root: &Path, report: OwnedFd) -> ! {
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
    let mut report = std::fs::File::from(report);
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
            let _ = write!(report, "ok\n{id}");
            drop(report);
            let code = if container.wait().is_ok() {
                0
            } else {
                EXIT_RUNTIME
            };
            std::process::exit(code)
        }
        Err(e) => {
            let _ = write!(report, "{}\n{e}", e.exit_code());
            std::process::exit(e.exit_code())
        }
    }
}
