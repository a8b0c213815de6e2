//! Run mode (`cargo xtask vm-test run -- CMD ARG...`): instead of the
//! probes, PID 1 runs the one command the host packed in `/run-cmd`, streams
//! its stdout and stderr to the report port as they come, and ends with its
//! exit status (see `run_wire.rs` for the format).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::run_wire::{self, Frame};

/// How long output may keep coming after the command exited (a background
/// child of it still holding the pipes): then the status is sent anyway.
const DRAIN: Duration = Duration::from_millis(500);

/// Runs the command and streams it to `port`. Every path writes a status.
pub fn run(port: &mut std::fs::File, accelerator: Option<&str>) {
    let status = match start(accelerator) {
        Ok(child) => stream(child, port),
        Err(why) => Frame::Failed(why),
    };
    if let Frame::Failed(why) = &status {
        eprintln!("mydocker-vm-init: {why}");
    }
    send(port, &status);
}

fn start(accelerator: Option<&str>) -> Result<Child, String> {
    let path = format!("/{}", run_wire::ARGV_FILE);
    let bytes = std::fs::read(&path).map_err(|e| format!("read {path}: {e}"))?;
    let argv = run_wire::decode_argv(&bytes)?;
    let mut command = Command::new(&argv[0]);
    command
        .arg0(&argv[0])
        .args(&argv[1..])
        .current_dir("/")
        .env("PATH", format!("/{}:/bin", run_wire::DIR))
        // So that `mydocker-probe run` finds what a matrix cell gives it.
        .env("MYDOCKER_PROBE_HELPER", crate::PROBE_HELPER)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(accelerator) = accelerator {
        command.env(probes::accelerator::ENV, accelerator);
    }
    println!(
        "mydocker-vm-init: running {}",
        argv.iter()
            .map(|a| format!("{:?}", a))
            .collect::<Vec<_>>()
            .join(" ")
    );
    command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", argv[0].to_string_lossy()))
}

/// Forwards the child's output until it has exited and its pipes are done.
fn stream(mut child: Child, port: &mut std::fs::File) -> Frame {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut exited: Option<(std::process::ExitStatus, Instant)> = None;
    let mut buffer = vec![0u8; 4096];
    loop {
        if exited.is_none() {
            if let Ok(Some(status)) = child.try_wait() {
                exited = Some((status, Instant::now()));
            }
        }
        let open = stdout.is_some() || stderr.is_some();
        match exited {
            Some((status, at)) if !open || at.elapsed() > DRAIN => return status_frame(status),
            _ => {}
        }
        if !open {
            // Pipes closed but the command still runs: wait for it.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let (out_ready, err_ready) = {
            let mut fds = Vec::new();
            if let Some(out) = &stdout {
                fds.push(PollFd::new(out.as_fd(), PollFlags::POLLIN));
            }
            if let Some(err) = &stderr {
                fds.push(PollFd::new(err.as_fd(), PollFlags::POLLIN));
            }
            // A short timeout: the child's exit is noticed by polling it.
            let _ = poll(&mut fds, PollTimeout::from(50u16));
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let mut it = fds.iter();
            let out_ready = stdout.is_some() && it.next().is_some_and(ready);
            let err_ready = stderr.is_some() && it.next().is_some_and(ready);
            (out_ready, err_ready)
        };
        if out_ready {
            forward(&mut stdout, &mut buffer, port, Frame::Stdout);
        }
        if err_ready {
            forward(&mut stderr, &mut buffer, port, Frame::Stderr);
        }
    }
}

/// Reads what one pipe has and sends it; closes the pipe at its end.
fn forward<R: Read + AsRawFd>(
    pipe: &mut Option<R>,
    buffer: &mut [u8],
    port: &mut std::fs::File,
    frame: fn(Vec<u8>) -> Frame,
) {
    let Some(reader) = pipe.as_mut() else {
        return;
    };
    match reader.read(buffer) {
        Ok(0) => *pipe = None,
        Ok(n) => send(port, &frame(buffer[..n].to_vec())),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
        Err(e) => {
            eprintln!("mydocker-vm-init: reading the command's output: {e}");
            *pipe = None;
        }
    }
}

fn status_frame(status: std::process::ExitStatus) -> Frame {
    match (status.code(), status.signal()) {
        (Some(code), _) => Frame::Exited(code),
        (None, Some(signal)) => Frame::Signaled(signal),
        (None, None) => Frame::Failed(format!("the command ended with {status}")),
    }
}

fn send(port: &mut std::fs::File, frame: &Frame) {
    if let Err(e) = port
        .write_all(frame.encode().as_bytes())
        .and_then(|()| port.flush())
    {
        eprintln!("mydocker-vm-init: write to the report port: {e}");
    }
}

/// Brings the loopback device up, as a host's init does: the command sees
/// a working 127.0.0.1.
pub fn loopback_up() -> Result<(), String> {
    // SAFETY: plain socket and ioctl calls on a zeroed ifreq that names "lo".
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(format!("socket: {}", std::io::Error::last_os_error()));
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = *byte as libc::c_char;
        }
        let result = if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) < 0 {
            Err(format!(
                "SIOCGIFFLAGS lo: {}",
                std::io::Error::last_os_error()
            ))
        } else {
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) < 0 {
                Err(format!(
                    "SIOCSIFFLAGS lo: {}",
                    std::io::Error::last_os_error()
                ))
            } else {
                Ok(())
            }
        };
        libc::close(fd);
        result
    }
}
