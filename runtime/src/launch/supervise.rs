//! Supervision: from init's release to the end of teardown. The parent
//! learns whether init reached exec, forwards signals, relays the terminal,
//! reaps init, records how it ended, and removes whatever the run made.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cgroup::ContainerCgroup;
use crate::channel::{Channel, Report};
use crate::error::{Error, Result};
use crate::network;
use crate::store::{self, Record, Status, Store};
use crate::timeline::{Phase, Timeline};
use crate::tty::{self, Relay};
use std::os::fd::OwnedFd;

/// Signals sent to mydocker that are passed on to the container's init.
const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// How a container ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The code docker would exit with: the command's own, or 128+N for signal N.
    pub exit_code: i32,
    /// The signal that ended init, if one did.
    pub signal: Option<Signal>,
    /// The kernel's OOM killer killed a task of the container (from the cgroup's counter).
    pub oom_killed: bool,
    /// What teardown could not remove, if anything. The container's own exit
    /// code still stands; the caller should warn.
    pub cleanup_error: Option<String>,
    /// Where the time went, from the call to [`super::launch`] to the end of teardown.
    pub timeline: Timeline,
}

/// Init's report that it could not reach exec.
struct StartFailure {
    exit_code: i32,
    message: String,
    kernel_lacks: bool,
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
    /// Open until init execs (or dies): end-of-file is the news that it did.
    channel: Option<Channel>,
    store: Store,
    /// Where the overlay is mounted (inside the container's mount namespace).
    merged: PathBuf,
    /// The container's record, updated when it exits.
    record: Record,
    /// The container's terminal, once init has sent its master.
    relay: Option<Relay>,
    /// Keep the master as it came instead of relaying it: OCI's create
    /// hands it to the console socket's listener.
    hand_out_pty: bool,
    pty_master: Option<OwnedFd>,
    failure: Option<StartFailure>,
    /// Init is set up and waits for `start` (OCI).
    ready: bool,
    /// Init no longer dies with us (OCI).
    detached: bool,
    signals: BlockedSignals,
    exit: Option<WaitStatus>,
    torn_down: bool,
    timeline: Timeline,
    /// For a logged (detached) container: the times its log was written.
    log_clock: Option<crate::log_times::LogClock>,
    /// It existed before this launch (a restart): a failed start leaves it
    /// exited rather than removing it.
    restarted: bool,
    /// Its command ran and its exit was seen (not a failed start).
    ran_to_exit: bool,
}

/// What supervision takes over from a launch.
pub(super) struct Parts {
    pub store: Store,
    pub record: Record,
    pub cgroup: ContainerCgroup,
    pub pid: Pid,
    pub channel: Channel,
    pub signals: BlockedSignals,
    pub merged: PathBuf,
    pub tty: bool,
    pub interactive: bool,
    pub hand_out_pty: bool,
    pub timeline: Timeline,
    /// Its output goes to `container.log`, whose write times are kept.
    pub log: bool,
    pub restarted: bool,
}

impl Container {
    pub(super) fn new(parts: Parts) -> Container {
        // Without it, `logs --timestamps` falls back on the log's mtime.
        let log_clock = parts
            .log
            .then(|| {
                let log = parts
                    .store
                    .container_dir(&parts.record.id)
                    .join("container.log");
                crate::log_times::LogClock::start(&log).ok()
            })
            .flatten();
        Container {
            id: parts.record.id.clone(),
            pid: parts.pid,
            tty: parts.tty,
            interactive: parts.interactive,
            cgroup: parts.cgroup,
            channel: Some(parts.channel),
            store: parts.store,
            merged: parts.merged,
            record: parts.record,
            relay: None,
            hand_out_pty: parts.hand_out_pty,
            pty_master: None,
            failure: None,
            ready: false,
            detached: false,
            signals: parts.signals,
            exit: None,
            torn_down: false,
            timeline: parts.timeline,
            log_clock,
            restarted: parts.restarted,
            ran_to_exit: false,
        }
    }

    /// The channel to init, while it is open.
    pub(super) fn channel(&self) -> &Channel {
        self.channel.as_ref().expect("open until init reports")
    }

    /// Records the started container: its pid, start time and cgroups,
    /// and its status, running (or created, waiting for OCI's `start`).
    pub(super) fn record_started(&mut self, waits_for_start: bool) -> Result<()> {
        let record = &mut self.record;
        record.status = if waits_for_start {
            Status::Created
        } else {
            Status::Running
        };
        record.pid = self.pid.as_raw();
        record.pid_start = store::process_start(self.pid.as_raw()).unwrap_or(0);
        record.started = Some(store::now());
        // A container started again keeps how its last run ended, for a
        // `wait` that saw that run end only once this one had started.
        if !self.restarted {
            record.exit_code = None;
        }
        record.finished = None;
        record.oom_killed = false;
        record.restarting = false;
        record.start_error = None;
        record.cgroups = self.cgroup.dirs().to_vec();
        record.cgroup_parents = self.cgroup.made_parents().to_vec();
        // A container started again existed all along: a `rename` made
        // meanwhile, under the store's lock, is kept.
        match self.restarted {
            true => self.store.write_keeping_edits(record),
            false => self.store.write(record),
        }
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    pub(super) fn timeline(&mut self) -> &mut Timeline {
        &mut self.timeline
    }

    /// Blocks until init has exec'd the command (or failed to). A detached
    /// run calls this before it reports the container as started, so that a
    /// missing command still fails the `run` with 127.
    pub fn started(&mut self) -> Result<()> {
        while self.channel.is_some() && self.failure.is_none() {
            self.read_report()?;
        }
        match self.failure.take() {
            Some(failure) => {
                // A restart that fails keeps its container, which shows the
                // code the start failed with (127: no such command).
                if self.restarted {
                    self.record.exit_code = Some(failure.exit_code);
                }
                Err(failure.into_error())
            }
            None => Ok(()),
        }
    }

    /// For a spec that waits for start (OCI's create): blocks until init is
    /// set up and waiting, or has failed (its error: 127 for a command not
    /// found, as at exec).
    pub fn created(&mut self) -> Result<()> {
        while self.channel.is_some() && self.failure.is_none() && !self.ready {
            self.read_report()?;
        }
        if let Some(failure) = self.failure.take() {
            return Err(failure.into_error());
        }
        if !self.ready {
            return Err(Error::System(
                "init ended before it was set up: see the messages above".into(),
            ));
        }
        Ok(())
    }

    /// Leaves a created container to live on without us (OCI's create
    /// exits while init waits for `start`): init is told to stop dying
    /// with us, and once it has, nothing is torn down; its teardown becomes
    /// `delete`'s. Returns its record. If init is gone instead, the
    /// container is torn down as any failed start is.
    pub fn leave(mut self) -> Result<Record> {
        self.channel()
            .send(&crate::channel::Detach, &[])
            .map_err(Error::sys("tell init to outlive create"))?;
        while !self.detached {
            if self.channel.is_none() || self.failure.is_some() {
                return Err(Error::System(
                    "init ended before create could leave it waiting for start".into(),
                ));
            }
            self.read_report()?;
        }
        self.torn_down = true;
        self.channel = None;
        self.signals.restore();
        Ok(self.record.clone())
    }

    /// The master side of the container's terminal, kept for the caller
    /// (OCI's console socket) once init has sent it.
    pub fn take_pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// The container's record as it stands.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Marks the container as detached in its record.
    pub fn set_detached(&mut self) -> Result<()> {
        self.record.detached = true;
        self.store.write_keeping_edits(&mut self.record)
    }

    /// Where the container's root (the overlay) is mounted, seen from the
    /// host's side of the mount namespaces: an empty directory unless the
    /// container shares the caller's mount namespace.
    pub fn merged_dir(&self) -> &Path {
        &self.merged
    }

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
        if let Ok(outcome) = &result {
            self.record.exit_code = Some(outcome.exit_code);
            self.record.oom_killed = outcome.oom_killed;
            self.ran_to_exit = true;
        }
        let teardown = self.teardown();
        self.timeline.lap(Phase::Teardown);
        let mut outcome = result?;
        outcome.cleanup_error = teardown.err().map(|e| e.to_string());
        outcome.timeline = self.timeline.clone();
        Ok(outcome)
    }

    fn supervise(&mut self) -> Result<Outcome> {
        let signals = SignalFd::with_flags(
            &self.signals.set,
            SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
        )
        .map_err(Error::sys("signalfd"))?;
        let stdin = std::io::stdin();
        // Raw before the terminal exists, so that no keystroke is cooked.
        let raw_mode = (self.tty && self.interactive)
            .then(|| tty::RawMode::enter(stdin.as_fd()))
            .flatten();
        while self.exit.is_none() {
            let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            let mut slot = |fd, events| {
                fds.push(PollFd::new(fd, events));
                Some(fds.len() - 1)
            };
            let channel_slot = match &self.channel {
                Some(channel) => slot(channel.as_fd(), PollFlags::POLLIN),
                None => None,
            };
            let master = self.relay.as_ref().and_then(Relay::master_interest);
            let master_slot = master.and_then(|(fd, events)| slot(fd, events));
            let stdin_slot = match self.relay.as_ref().is_some_and(Relay::wants_input) {
                true => slot(stdin.as_fd(), PollFlags::POLLIN),
                false => None,
            };
            let clock_slot = match &self.log_clock {
                Some(clock) => slot(clock.fd(), PollFlags::POLLIN),
                None => None,
            };
            // SIGCHLD is process-directed: if the caller has a thread that does
            // not block it, that thread takes it and our signalfd never sees
            // it. Polling with a timeout and reaping on it closes that gap.
            let woke = match poll(&mut fds, PollTimeout::from(250u16)) {
                Err(Errno::EINTR) => continue,
                other => other.map_err(Error::sys("poll"))?,
            };
            let revents = |slot: Option<usize>| {
                slot.and_then(|i| fds[i].revents())
                    .unwrap_or(PollFlags::empty())
            };
            let signal_ready = !revents(Some(0)).is_empty();
            let channel_ready = !revents(channel_slot).is_empty();
            let master_events = revents(master_slot);
            let stdin_ready = !revents(stdin_slot).is_empty();
            let log_written = !revents(clock_slot).is_empty();
            drop(fds);
            if woke == 0 {
                if let Some(clock) = &mut self.log_clock {
                    clock.note();
                }
                self.reap()?;
                continue;
            }
            if channel_ready {
                self.read_report()?;
            }
            if let Some(relay) = &mut self.relay {
                relay.on_master(master_events);
                if stdin_ready {
                    relay.on_stdin();
                }
            }
            if log_written {
                if let Some(clock) = &mut self.log_clock {
                    clock.on_ready();
                }
            }
            if signal_ready {
                self.handle_signals(&signals)?;
            }
        }
        if let Some(clock) = &mut self.log_clock {
            clock.note();
        }
        if let Some(relay) = &mut self.relay {
            relay.drain();
        }
        drop(raw_mode);
        if let Some(failure) = self.failure.take() {
            return Err(failure.into_error());
        }
        let oom_killed = self.cgroup.oom_kills() > 0;
        let (exit_code, signal) = match self.exit.expect("loop ends on exit") {
            WaitStatus::Exited(_, code) => (code, None),
            WaitStatus::Signaled(_, signal, _) => (128 + signal as i32, Some(signal)),
            other => unreachable!("waitpid without WUNTRACED reported {other:?}"),
        };
        Ok(Outcome {
            exit_code,
            signal,
            oom_killed,
            cleanup_error: None,
            timeline: Timeline::default(),
        })
    }

    /// Reads one report from init. End-of-file means init exec'd (or died).
    fn read_report(&mut self) -> Result<()> {
        match self.channel().recv::<Report>() {
            Ok(Some((Report::PtyMaster, mut fds))) if fds.len() == 1 && self.hand_out_pty => {
                self.pty_master = fds.pop();
            }
            Ok(Some((Report::PtyMaster, mut fds))) if fds.len() == 1 => {
                let master = fds.pop().expect("one fd");
                let relay = Relay::new(master, self.interactive)
                    .map_err(Error::sys("make the pty non-blocking"))?;
                self.relay = Some(relay);
            }
            Ok(Some((
                Report::Failed {
                    exit_code,
                    message,
                    kernel_lacks,
                },
                _,
            ))) => {
                self.failure = Some(StartFailure {
                    exit_code,
                    message,
                    kernel_lacks,
                })
            }
            Ok(Some((Report::SetUp { at }, _))) => self.timeline.lap_at(Phase::Rootfs, at),
            Ok(Some((Report::Ready, _))) => self.ready = true,
            Ok(Some((Report::Detached, _))) => self.detached = true,
            Ok(Some((Report::PtyMaster, _))) => {
                return Err(Error::System(
                    "init sent a pty report without its fd".into(),
                ))
            }
            Ok(None) | Err(_) => {
                self.channel = None;
                self.timeline.lap(Phase::Exec);
            }
        }
        Ok(())
    }

    fn handle_signals(&mut self, signals: &SignalFd) -> Result<()> {
        while let Ok(Some(info)) = signals.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGCHLD) => self.reap()?,
                Ok(Signal::SIGWINCH) => {
                    if let Some(relay) = &self.relay {
                        relay.resize();
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
                self.timeline.lap(Phase::Wait);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) => Err(Error::sys(format!("wait for init (pid {})", self.pid))(e)),
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
        self.relay = None;
        let cgroup = self.cgroup.destroy();
        let endpoint = self.record.endpoint.clone();
        if endpoint.is_some() {
            network::detach(&self.id);
        }
        // A container that never ran its command, or asked for --rm, leaves
        // nothing; any other keeps its record and upper layer until `rm`.
        // So does one that `restart` ends, to start it again, and one
        // started again, whose start failed.
        let restart_asked =
            || self.store.stop_request(&self.id) == Some(store::StopRequest::Restart);
        let keep = match self.ran_to_exit {
            true => !self.record.auto_remove || restart_asked(),
            false => self.restarted,
        };
        if keep && self.record.exit_code.is_none() {
            self.record.exit_code = Some(crate::error::EXIT_RUNTIME);
        }
        let state = if keep {
            self.record.status = Status::Exited;
            self.record.restarting = false;
            self.record.finished = Some(store::now());
            self.store.write_keeping_edits(&mut self.record)
        } else {
            let root = self.store.root();
            let _ = network::forget(root, &self.store, &self.id, endpoint.as_ref());
            // As docker's --rm: its anonymous volumes go with it.
            let volumes = crate::volume::Volumes::new(root);
            let _ = volumes.remove_anonymous_of(&self.store, &self.record);
            self.store.remove_dir(&self.id, self.record.userns)
        };
        // An exited container's published ports go with it.
        if keep && endpoint.is_some_and(|e| !e.publish.is_empty()) {
            let _ = network::sync(&self.store.root().join("networks"), &self.store);
        }
        self.signals.restore();
        cgroup.map_err(Error::from).and(state)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

impl StartFailure {
    /// The error for the run: the kernel lacks something, the command could
    /// not be executed (126) or found (127), or setup failed.
    fn into_error(self) -> Error {
        if self.kernel_lacks {
            return Error::KernelLacks(self.message);
        }
        match self.exit_code {
            crate::error::EXIT_NOT_EXECUTABLE | crate::error::EXIT_NOT_FOUND => Error::Exec {
                message: self.message,
                code: self.exit_code,
            },
            _ => Error::Setup(self.message),
        }
    }
}

/// The signals a launch blocks, and the caller's mask to go back to.
pub(super) struct BlockedSignals {
    set: SigSet,
    saved: Option<SigSet>,
}

impl BlockedSignals {
    /// Blocks the signals we forward (and SIGCHLD, SIGWINCH). Called before
    /// the child exists, so none is lost between clone and the signalfd;
    /// init unblocks them.
    pub fn block() -> Result<BlockedSignals> {
        let mut set = SigSet::empty();
        FORWARDED
            .iter()
            .chain(&[Signal::SIGCHLD, Signal::SIGWINCH])
            .for_each(|s| set.add(*s));
        let mut saved = SigSet::empty();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut saved))
            .map_err(Error::sys("block signals"))?;
        Ok(BlockedSignals {
            set,
            saved: Some(saved),
        })
    }

    /// Discards what is still pending (a second Ctrl-C that arrived after
    /// the container ended must not kill us halfway out), then restores the
    /// caller's mask. Only the first call does anything.
    fn restore(&mut self) {
        let Some(saved) = self.saved.take() else {
            return;
        };
        if let Ok(pending) =
            SignalFd::with_flags(&self.set, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        {
            while let Ok(Some(_)) = pending.read_signal() {}
        }
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&saved), None);
    }
}

impl Drop for BlockedSignals {
    fn drop(&mut self) {
        self.restore();
    }
}
