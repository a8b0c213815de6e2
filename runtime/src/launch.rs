//! Launch: the parent side. Creates the cgroup, clones init into its
//! namespaces, releases it, supervises it, and tears everything down.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{clone, CloneFlags};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{geteuid, Pid};

use crate::cgroup::{ContainerCgroup, Mode};
use crate::channel::{self, Channel, InitConfig, Report};
use crate::error::{Error, Result};
use crate::spec::{HostFacts, Spec};
use crate::store::{self, Record, StateDir};
use crate::{init, tty};

/// Signals sent to mydocker that are passed on to the container's init.
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Stack for the cloned child until it execs. The pages are only touched as
/// used, so a generous size costs nothing.
const CHILD_STACK: usize = 1 << 20;

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The code docker would exit with: the command's own, or 128+N for signal N.
    pub exit_code: i32,
    /// The signal that ended init, if one did.
    pub signal: Option<Signal>,
    /// The kernel's OOM killer killed a task of the container (from the cgroup's counter).
    pub oom_killed: bool,
}

/// A container whose init has been released. Dropping it kills and removes
/// whatever is left, so no path leaves a process, cgroup or state file behind.
pub struct Container {
    pub id: String,
    /// Host pid of the container's init.
    pub pid: Pid,
    tty: bool,
    interactive: bool,
    cgroup: ContainerCgroup,
    channel: Option<Channel>,
    state: Option<StateDir>,
    pty_master: Option<OwnedFd>,
    failure: Option<(i32, String)>,
    blocked: SigSet,
    saved_mask: SigSet,
    exit: Option<WaitStatus>,
    torn_down: bool,
}

/// Creates and starts a container from `spec`, keeping its state under `state_root`.
///
/// Returns once init has been released; [`Container::wait`] learns whether the
/// exec succeeded and supervises it to the end. Call it from a single-threaded
/// process: the child runs Rust code (and allocates) between clone and exec,
/// which is only safe when no other thread can hold a lock at clone time.
pub fn launch(spec: &Spec, state_root: &Path) -> Result<Container> {
    spec.validate(&HostFacts::read()?)?;
    if !geteuid().is_root() {
        return Err(Error::Privilege(format!(
            "mydocker must run as root (uid {} is not): creating namespaces and cgroups needs it, and rootless runs with user namespaces are not supported yet",
            geteuid()
        )));
    }
    let rootfs = spec.rootfs.canonicalize().map_err(Error::io(format!(
        "resolve rootfs {}",
        spec.rootfs.display()
    )))?;
    let mode = Mode::detect()?;
    let id = store::new_id();
    let hostname = spec.hostname.clone().unwrap_or_else(|| id[..12].to_owned());
    let env = spec.environment(&hostname);
    let config = InitConfig {
        rootfs: rootfs.to_string_lossy().into_owned(),
        args: spec.args.clone(),
        path: env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        hostname: spec.namespaces.uts.then_some(hostname),
        workdir: spec.workdir.clone().unwrap_or_else(|| "/".to_owned()),
        tty: spec.tty,
        interactive: spec.interactive,
        new_cgroup_ns: spec.namespaces.cgroup,
    };

    let cgroup = ContainerCgroup::create(mode, &spec.cgroup_parent, &id, &spec.limits)?;
    let (parent_end, child_end) = match channel::pair() {
        Ok(pair) => pair,
        Err(e) => {
            let _ = cgroup.destroy();
            return Err(Error::sys("create the launch channel")(e));
        }
    };

    // Block the signals we forward (and SIGCHLD) before the child exists, so
    // none is lost between clone and the signalfd; init unblocks them.
    let mut blocked = SigSet::empty();
    FORWARDED
        .iter()
        .chain(&[Signal::SIGCHLD, Signal::SIGWINCH])
        .for_each(|s| blocked.add(*s));
    let mut saved_mask = SigSet::empty();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&blocked), Some(&mut saved_mask))
        .map_err(Error::sys("block signals"))?;

    let pid = match clone_init(spec, &parent_end, &child_end) {
        Ok(pid) => pid,
        Err(e) => {
            let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&saved_mask), None);
            let _ = cgroup.destroy();
            return Err(e);
        }
    };
    drop(child_end);
    // From here on, dropping `container` cleans up after us.
    let mut container = Container {
        id,
        pid,
        tty: spec.tty,
        interactive: spec.interactive,
        cgroup,
        channel: Some(parent_end),
        state: None,
        pty_master: None,
        failure: None,
        blocked,
        saved_mask,
        exit: None,
        torn_down: false,
    };
    container.cgroup.attach(pid)?;
    let record = Record {
        id: container.id.clone(),
        pid: pid.as_raw(),
        rootfs,
        args: spec.args.clone(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        cgroups: container.cgroup.dirs().to_vec(),
    };
    container.state = Some(StateDir::create(state_root, &record)?);
    let sent = container
        .channel
        .as_ref()
        .expect("set above")
        .send(&config, &[]);
    sent.map_err(|e| match e {
        Errno::E2BIG => Error::invalid(
            "command and environment",
            format!("{} arguments", spec.args.len()),
            format!("together at most {} KiB", channel::MAX_MESSAGE / 1024),
        ),
        e => Error::sys("release init")(e),
    })?;
    Ok(container)
}

/// Clones init into its namespaces. The cgroup namespace is left to init,
/// which unshares it after the parent has moved it into its cgroup.
fn clone_init(spec: &Spec, parent_end: &Channel, child_end: &Channel) -> Result<Pid> {
    let ns = spec.namespaces;
    let mut flags = CloneFlags::empty();
    for (on, flag) in [
        (ns.uts, CloneFlags::CLONE_NEWUTS),
        (ns.pid, CloneFlags::CLONE_NEWPID),
        (ns.mount, CloneFlags::CLONE_NEWNS),
        (ns.ipc, CloneFlags::CLONE_NEWIPC),
        (ns.net, CloneFlags::CLONE_NEWNET),
    ] {
        if on {
            flags |= flag;
        }
    }
    let parent_fd = parent_end.as_raw_fd();
    let mut stack = vec![0u8; CHILD_STACK];
    let child = Box::new(|| {
        // The parent's end belongs to the parent; holding it would hide its EOF.
        let _ = nix::unistd::close(parent_fd);
        init::main(child_end)
    });
    // SAFETY: without CLONE_VM the child runs on its own copy of our memory;
    // `init::main` never returns into the parent's frames.
    unsafe { clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }.map_err(|e| match e {
        Errno::EPERM | Errno::EINVAL | Errno::ENOSPC | Errno::EUSERS => Error::Privilege(format!(
            "cannot create namespaces ({flags:?}): {}: the kernel or a sandbox refuses them",
            e.desc()
        )),
        e => Error::sys("clone the container's init")(e),
    })
}

impl Container {
    /// The container's cgroup (for probes and tests that observe the kernel).
    pub fn cgroup(&self) -> &ContainerCgroup {
        &self.cgroup
    }

    /// Supervises the container until init exits, then tears everything down.
    ///
    /// Forwards [`FORWARDED`] signals to init, relays the pseudo-terminal when
    /// there is one, and turns a failed setup or exec into the matching error.
    pub fn wait(mut self) -> Result<Outcome> {
        let result = self.supervise();
        let teardown = self.teardown();
        let outcome = result?;
        teardown?;
        Ok(outcome)
    }

    fn supervise(&mut self) -> Result<Outcome> {
        let signals = SignalFd::with_flags(&self.blocked, SfdFlags::SFD_CLOEXEC)
            .map_err(Error::sys("signalfd"))?;
        let stdin = std::io::stdin();
        let raw_mode = if self.tty && self.interactive {
            tty::RawMode::enter(stdin.as_fd())
        } else {
            None
        };
        let mut stdin_open = self.tty && self.interactive;
        let mut pty_open = true;
        while self.exit.is_none() {
            let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            let channel_slot = self.channel.as_ref().map(|c| {
                fds.push(PollFd::new(c.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let pty_slot = self.pty_master.as_ref().filter(|_| pty_open).map(|m| {
                fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            let stdin_slot = (stdin_open && self.pty_master.is_some()).then(|| {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
                fds.len() - 1
            });
            match poll(&mut fds, PollTimeout::NONE) {
                Err(Errno::EINTR) => continue,
                other => other.map_err(Error::sys("poll"))?,
            };
            let ready = |slot: Option<usize>| {
                slot.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            };
            let (signal_ready, channel_ready, pty_ready, stdin_ready) = (
                ready(Some(0)),
                ready(channel_slot),
                ready(pty_slot),
                ready(stdin_slot),
            );
            drop(fds);
            if channel_ready {
                self.read_report()?;
            }
            if pty_ready {
                pty_open = self.relay_pty_output();
            }
            if stdin_ready {
                stdin_open = self.relay_stdin(stdin.as_fd());
            }
            if signal_ready {
                self.handle_signals(&signals)?;
            }
        }
        if pty_open {
            while self.relay_pty_output() {}
        }
        drop(raw_mode);
        if let Some((exit_code, message)) = self.failure.take() {
            return Err(match exit_code {
                crate::error::EXIT_NOT_EXECUTABLE | crate::error::EXIT_NOT_FOUND => Error::Exec {
                    message,
                    code: exit_code,
                },
                _ => Error::Setup(message),
            });
        }
        let oom_killed = self.cgroup.oom_kills() > 0;
        Ok(match self.exit.expect("loop ends on exit") {
            WaitStatus::Exited(_, code) => Outcome {
                exit_code: code,
                signal: None,
                oom_killed,
            },
            WaitStatus::Signaled(_, signal, _) => Outcome {
                exit_code: 128 + signal as i32,
                signal: Some(signal),
                oom_killed,
            },
            other => unreachable!("waitpid without WUNTRACED reported {other:?}"),
        })
    }

    /// Reads one report from init. End-of-file means init exec'd (or died).
    fn read_report(&mut self) -> Result<()> {
        let channel = self.channel.as_ref().expect("polled only while open");
        match channel.recv::<Report>() {
            Ok(Some((Report::PtyMaster, mut fds))) if fds.len() == 1 => {
                let master = fds.pop().expect("one fd");
                tty::copy_window_size(std::io::stdin(), &master);
                self.pty_master = Some(master);
            }
            Ok(Some((Report::Failed { exit_code, message }, _))) => {
                self.failure = Some((exit_code, message))
            }
            Ok(Some((Report::PtyMaster, _))) => {
                return Err(Error::Setup("init sent a pty report without its fd".into()))
            }
            Ok(None) | Err(_) => self.channel = None,
        }
        Ok(())
    }

    fn handle_signals(&mut self, signals: &SignalFd) -> Result<()> {
        while let Ok(Some(info)) = signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap()?,
                Ok(Signal::SIGWINCH) => {
                    if let Some(master) = &self.pty_master {
                        tty::copy_window_size(std::io::stdin(), master);
                    }
                }
                // The container may already be gone; its exit is on its way as SIGCHLD.
                Ok(signal) => drop(kill(self.pid, signal)),
                Err(_) => {}
            }
            if self.exit.is_some() {
                break;
            }
        }
        Ok(())
    }

    fn reap(&mut self) -> Result<()> {
        match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => Ok(()),
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => {
                self.exit = Some(status);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(Error::sys(format!("wait for init (pid {})", self.pid))(e)),
        }
    }

    /// Copies what the container wrote to its terminal to our stdout. Returns
    /// false once the terminal is closed (EIO when no process holds it any more).
    fn relay_pty_output(&mut self) -> bool {
        let Some(master) = &self.pty_master else {
            return false;
        };
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        if self.exit.is_some()
            && !matches!(poll(&mut fds, PollTimeout::from(100u8)), Ok(n) if n > 0)
        {
            return false;
        }
        let mut buffer = [0u8; 16 * 1024];
        match nix::unistd::read(master, &mut buffer) {
            Ok(0) | Err(Errno::EIO) => false,
            Ok(n) => {
                write_all(std::io::stdout().as_fd(), &buffer[..n]);
                true
            }
            Err(Errno::EINTR | Errno::EAGAIN) => true,
            Err(_) => false,
        }
    }

    /// Copies our stdin to the container's terminal. At end of input it sends
    /// the terminal's end-of-file character, as typing Ctrl-D would.
    fn relay_stdin(&mut self, stdin: BorrowedFd<'_>) -> bool {
        let Some(master) = &self.pty_master else {
            return false;
        };
        let mut buffer = [0u8; 16 * 1024];
        match nix::unistd::read(stdin, &mut buffer) {
            Ok(0) | Err(_) => {
                write_all(master.as_fd(), &[0x04]);
                false
            }
            Ok(n) => {
                write_all(master.as_fd(), &buffer[..n]);
                true
            }
        }
    }

    /// Kills and reaps init if it still runs, then removes the cgroup and the
    /// state directory. Runs once; later calls do nothing.
    fn teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        if self.exit.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            while let Err(Errno::EINTR) = waitpid(self.pid, None) {}
        }
        self.channel = None;
        self.pty_master = None;
        let cgroup = self.cgroup.destroy();
        let state = self.state.take().map_or(Ok(()), |s| s.remove());
        let _ =
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&self.saved_mask), None);
        cgroup.and(state)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

/// Writes all of `bytes`, giving up silently if the reader has gone away.
fn write_all(fd: BorrowedFd<'_>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        match nix::unistd::write(fd, bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Runs `spec` in the foreground to completion: launch, wait, tear down.
pub fn run(spec: &Spec, state_root: &Path) -> Result<Outcome> {
    launch(spec, state_root)?.wait()
}
