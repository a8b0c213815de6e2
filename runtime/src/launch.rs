//! Launch: the parent side. Creates the cgroup, clones init into its
//! namespaces, releases it, supervises it, and tears everything down.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{clone, CloneFlags};
use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{geteuid, Pid};

use crate::cgroup::{ContainerCgroup, Mode};
use crate::channel::{self, Channel, InitConfig, Report};
use crate::error::{Error, Result};
use crate::spec::{Fault, Spec, Volume};
use crate::store::{self, Record, Status, Store};
use crate::timeline::{Phase, Timeline};
use crate::userns::UserNs;
use crate::{init, network, tty};

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
    /// Where the time went, from the call to [`launch`] to the end of teardown.
    pub timeline: Timeline,
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
    store: Store,
    /// Where the overlay is mounted (inside the container's mount namespace).
    merged: PathBuf,
    auto_remove: bool,
    /// The container's record, updated when it exits.
    record: Option<Record>,
    pty_master: Option<OwnedFd>,
    /// Init's report that it failed: exit code, message, whether the kernel lacked something.
    failure: Option<(i32, String, bool)>,
    signals: BlockedSignals,
    /// Keystrokes read from our stdin that the pty has not accepted yet.
    pending_input: Vec<u8>,
    exit: Option<WaitStatus>,
    torn_down: bool,
    timeline: Timeline,
}

/// Where the container's standard streams go. `None` keeps mydocker's own
/// (stdin becomes `/dev/null` unless the spec is interactive).
#[derive(Debug, Default)]
pub struct Stdio {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// Send stdout and stderr to `container.log` in the container's state
    /// directory (where they were not given), as detached runs do.
    pub log: bool,
}

/// Creates and starts a container from `spec`, keeping its state under `state_root`.
///
/// Returns once init has been released; [`Container::wait`] learns whether the
/// exec succeeded and supervises it to the end. Call it from a single-threaded
/// process: the child runs Rust code (and allocates) between clone and exec,
/// which is only safe when no other thread can hold a lock at clone time.
pub fn launch(spec: &Spec, state_root: &Path) -> Result<Container> {
    launch_with(spec, state_root, Stdio::default())
}

/// [`launch`] with the container's stdio connected to the given descriptors.
pub fn launch_with(spec: &Spec, state_root: &Path, stdio: Stdio) -> Result<Container> {
    let mut timeline = Timeline::start();
    crate::host::check_rootfs(&spec.rootfs)?;
    spec.validate(&crate::host::facts()?)?;
    let rootless = !geteuid().is_root();
    check_user_namespace(spec, rootless)?;
    let lower = spec.rootfs.canonicalize().map_err(Error::io(format!(
        "resolve rootfs {}",
        spec.rootfs.display()
    )))?;
    let mode = Mode::detect()?;
    let store = Store::new(state_root);
    let id = store::new_id();
    let hostname = spec.hostname.clone().unwrap_or_else(|| id[..12].to_owned());
    let env = spec.environment(&hostname);
    let mut record = Record {
        id: id.clone(),
        name: spec.name.clone().unwrap_or_else(|| id[..12].to_owned()),
        image: if spec.image.is_empty() {
            lower.display().to_string()
        } else {
            spec.image.clone()
        },
        lower: lower.clone(),
        args: spec.args.clone(),
        env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        limits: spec.limits.clone(),
        volumes: spec.volumes.clone(),
        status: Status::Created,
        pid: 0,
        pid_start: 0,
        monitor_pid: std::process::id() as i32,
        monitor_start: store::process_start(std::process::id() as i32).unwrap_or(0),
        exit_code: None,
        oom_killed: false,
        created: store::now(),
        finished: None,
        cgroups: Vec::new(),
        detached: false,
        auto_remove: spec.auto_remove,
        endpoint: None,
        // Without root, the only ids a user may map are its own.
        userns: rootless.then(|| crate::userns::IdMap {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            count: 1,
        }),
        security: Some(spec.security),
    };
    // The name (and a block of ids) is reserved here, under the store's lock.
    let reserve_ids = spec.userns == UserNs::Auto && !rootless;
    let dir = store.create(&mut record, reserve_ids)?;
    let joined = match &spec.network {
        Some(request) => match network::reserve(state_root, &store, &id, request, |endpoint| {
            record.endpoint = Some(endpoint.clone());
            store.write(&record)
        }) {
            Ok(network) => Some((
                network,
                record.endpoint.clone().expect("reserve records it"),
            )),
            Err(e) => {
                let _ = store.remove_dir(&id, record.userns);
                return Err(e);
            }
        },
        None => None,
    };
    // Undoes the reservation and the directory, for failures before clone.
    let undo = |e: Error| {
        let _ = network::forget(state_root, &store, &record.id, record.endpoint.as_ref());
        let _ = store.remove_dir(&id, record.userns);
        e
    };
    let layers = Layers::create(&dir, &lower).map_err(undo)?;
    if let Some(map) = record.userns.filter(|_| !rootless) {
        // The container's root must own its layer and reach the image.
        crate::userns::check_reachable(&[&dir, &lower], map.uid).map_err(undo)?;
    }
    // Host directories for volumes are made only now, after every check
    // that could refuse the run.
    let volumes = prepare_volumes(&spec.volumes).map_err(undo)?;
    if record.endpoint.is_some() {
        layers
            .write_etc(&hostname, &record.name, record.endpoint.as_ref())
            .map_err(undo)?;
    }
    if let Some(map) = record.userns.filter(|_| !rootless) {
        crate::userns::give_to_root(&[&layers.upper, &layers.work], map).map_err(undo)?;
    }
    let mut stdio = stdio;
    if stdio.log {
        let path = dir.join("container.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|f| Ok((OwnedFd::from(f.try_clone()?), OwnedFd::from(f))));
        match log {
            Ok((out, err)) => {
                stdio.stdout = stdio.stdout.or(Some(out));
                stdio.stderr = stdio.stderr.or(Some(err));
            }
            Err(e) => {
                return Err(undo(Error::io(format!("create {}", path.display()))(e)));
            }
        }
    }
    // Either an overlay, or (the SkipOverlay fault) the lower layer itself.
    let (overlay, lower_bind) = if spec.faults.has(Fault::SkipOverlay) {
        (None, Some(lower.to_string_lossy().into_owned()))
    } else {
        (Some(layers.options()), None)
    };
    let mut config = InitConfig {
        rootfs: layers.merged.to_string_lossy().into_owned(),
        overlay,
        lower_bind,
        volumes: volumes
            .iter()
            .map(|v| Volume {
                read_only: v.read_only && !spec.faults.has(Fault::IgnoreReadOnly),
                ..v.clone()
            })
            .collect(),
        args: spec.args.clone(),
        path: env
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone())
            .unwrap_or_default(),
        env: record.env.clone(),
        hostname: spec.namespaces.uts.then_some(hostname),
        workdir: spec.workdir.clone().unwrap_or_else(|| "/".to_owned()),
        tty: spec.tty,
        interactive: spec.interactive,
        report_setup: spec.split_init_phases,
        user_ns: record.userns.is_some(),
        drop_groups: !rootless,
        security: spec.security,
        join_cgroup: Vec::new(),
        new_cgroup_ns: spec.namespaces.cgroup,
        new_mount_ns: spec.namespaces.mount,
        faults: spec.faults.clone(),
        stdio: [&stdio.stdin, &stdio.stdout, &stdio.stderr]
            .map(|fd| fd.as_ref().map(|fd| fd.as_raw_fd())),
    };

    // Block the signals we forward (and SIGCHLD) before the child exists, so
    // none is lost between clone and the signalfd; init unblocks them. The
    // guard restores the caller's mask on every path out.
    let signals = BlockedSignals::block().map_err(undo)?;
    timeline.lap(Phase::State);
    let mut cgroup = if rootless && !crate::cgroup::delegated(mode, &spec.cgroup_parent) {
        crate::cgroup::refuse_undelegated(mode, &spec.limits).map_err(|e| undo(e.into()))?;
        ContainerCgroup::none(mode)
    } else {
        ContainerCgroup::create(mode, &spec.cgroup_parent, &id, &spec.limits)
            .map_err(|e| undo(e.into()))?
    };
    if spec.faults.has(Fault::SkipTeardownKill) {
        cgroup.skip_teardown_kill();
    }
    config.join_cgroup = cgroup.self_join_files();
    timeline.lap(Phase::Cgroup);
    let started = channel::pair()
        .map_err(Error::sys("create the launch channel"))
        .and_then(|(parent_end, child_end)| {
            // On v2, init is born in its cgroup; v1 init joins by itself.
            // Not with a cpuset: a task born into a cpuset cgroup by
            // CLONE_INTO_CGROUP kept its parent's CPUs until cpuset_fork
            // learned that flag (Linux 6.3, and some stable series; Debian's
            // 5.10 pins nothing that way), while a task moved in gets the
            // cgroup's CPUs on every kernel.
            let pins = spec.limits.cpuset_cpus.is_some() || spec.limits.cpuset_mems.is_some();
            let born_in = cgroup.dirs().first().filter(|_| mode.is_v2() && !pins);
            let (pid, in_cgroup) = clone_init(
                spec,
                record.userns.is_some(),
                born_in.map(PathBuf::as_path),
                &parent_end,
                &child_end,
            )?;
            if let Some(map) = record.userns {
                // Init waits for its release, so it cannot act before it has ids.
                if let Err(e) = crate::userns::write_maps(pid.as_raw(), map, rootless) {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    return Err(e);
                }
            }
            Ok((pid, in_cgroup, parent_end))
        });
    let (pid, in_cgroup, parent_end) = match started {
        Ok(started) => started,
        Err(e) => {
            let _ = cgroup.destroy();
            return Err(undo(e));
        }
    };
    // The child holds its own copies of the channel's end and of stdio now.
    drop(stdio);
    timeline.lap(Phase::Clone);
    // From here on, dropping `container` cleans up after us.
    let mut container = Container {
        id,
        pid,
        tty: spec.tty,
        interactive: spec.interactive,
        cgroup,
        channel: Some(parent_end),
        store,
        merged: layers.merged,
        auto_remove: spec.auto_remove,
        record: None,
        pty_master: None,
        failure: None,
        signals,
        pending_input: Vec::new(),
        exit: None,
        torn_down: false,
        timeline,
    };
    // Known to teardown from here on, so that any failure releases the address.
    container.record = Some(record.clone());
    if config.join_cgroup.is_empty() && !in_cgroup {
        container.cgroup.attach(pid)?;
    }
    container.timeline.lap(Phase::Cgroup);
    if let Some((net, endpoint)) = joined
        .as_ref()
        .filter(|_| !spec.faults.has(Fault::SkipNetworkAttach))
    {
        network::attach(net, endpoint, pid.as_raw(), &container.id)?;
    }
    container.timeline.lap(Phase::Network);
    // Released before its record is rewritten: init's mounts and the record
    // write (an ext4 rename) then overlap. The timeline charges the write to
    // init's phase, which it runs beside.
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
    record.status = Status::Running;
    record.pid = pid.as_raw();
    record.pid_start = store::process_start(pid.as_raw()).unwrap_or(0);
    record.cgroups = container.cgroup.dirs().to_vec();
    container.store.write(&record)?;
    let publishes = record
        .endpoint
        .as_ref()
        .is_some_and(|e| !e.publish.is_empty());
    container.record = Some(record);
    // The NAT rules are made from the records of running containers, this
    // one's included, so they follow its write.
    if publishes {
        network::sync(&container.store.root().join("networks"), &container.store)?;
    }
    Ok(container)
}

/// The overlay directories of one container, inside its state directory.
struct Layers {
    lower: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    merged: PathBuf,
}

impl Layers {
    fn create(dir: &Path, lower: &Path) -> Result<Layers> {
        let layers = Layers {
            lower: lower.to_owned(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
        };
        for path in [&layers.lower, &layers.upper] {
            // overlayfs separates its options with ',' and layers with ':'.
            if path.to_string_lossy().contains([',', ':']) {
                return Err(Error::Rootfs {
                    path: path.clone(),
                    problem: "contains ',' or ':', which an overlay mount cannot express".into(),
                });
            }
        }
        for path in [&layers.upper, &layers.work, &layers.merged] {
            std::fs::create_dir_all(path)
                .map_err(Error::io(format!("create {}", path.display())))?;
        }
        Ok(layers)
    }

    /// Writes `/etc/hostname` and `/etc/hosts` into the upper layer, where
    /// they hide the image's own without changing it.
    fn write_etc(
        &self,
        hostname: &str,
        name: &str,
        endpoint: Option<&network::Endpoint>,
    ) -> Result<()> {
        let etc = self.upper.join("etc");
        std::fs::create_dir_all(&etc).map_err(Error::io(format!("create {}", etc.display())))?;
        std::fs::write(etc.join("hostname"), format!("{hostname}\n"))
            .map_err(Error::io("write /etc/hostname"))?;
        std::fs::write(
            etc.join("hosts"),
            network::hosts_file(hostname, name, endpoint),
        )
        .map_err(Error::io("write /etc/hosts"))
    }

    fn options(&self) -> String {
        format!(
            "lowerdir={},upperdir={},workdir={}",
            self.lower.display(),
            self.upper.display(),
            self.work.display()
        )
    }
}

/// Creates missing host directories of volumes and resolves their paths.
fn prepare_volumes(volumes: &[Volume]) -> Result<Vec<Volume>> {
    volumes
        .iter()
        .map(|v| {
            std::fs::create_dir_all(&v.host).map_err(Error::io(format!(
                "create volume directory {}",
                v.host.display()
            )))?;
            let host = v
                .host
                .canonicalize()
                .map_err(Error::io(format!("resolve volume {}", v.host.display())))?;
            Ok(Volume { host, ..v.clone() })
        })
        .collect()
}

/// Clones init into its namespaces, and on v2 straight into `cgroup`;
/// returns its pid and whether it was born there. The cgroup namespace is
/// left to init, which unshares it once it is in its cgroup.
fn clone_init(
    spec: &Spec,
    user_ns: bool,
    cgroup: Option<&Path>,
    parent_end: &Channel,
    child_end: &Channel,
) -> Result<(Pid, bool)> {
    let ns = spec.namespaces;
    let mut flags = CloneFlags::empty();
    for (on, flag) in [
        (user_ns, CloneFlags::CLONE_NEWUSER),
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
    // The return type is clone's; init::main never returns.
    let start_init = || -> isize {
        // The parent's end belongs to the parent; holding it would hide its EOF.
        let _ = nix::unistd::close(parent_fd);
        init::main(child_end)
    };
    let refused = |e: Errno| match e {
        Errno::EPERM | Errno::EINVAL | Errno::ENOSPC | Errno::EUSERS => Error::Privilege(format!(
            "cannot create namespaces ({flags:?}): {}: the kernel or a sandbox refuses them",
            e.desc()
        )),
        e => Error::sys("clone the container's init")(e),
    };
    // Before 5.7 there is no clone3 or no CLONE_INTO_CGROUP, and an outer
    // seccomp profile may refuse clone3 outright: on any failure, clone and
    // let launch move init. If namespaces are what the kernel refuses, clone
    // says so below.
    if let Some(Ok(pid)) = cgroup.map(|dir| clone_into_cgroup(flags, dir, start_init)) {
        return Ok((pid, true));
    }
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: without CLONE_VM the child runs on its own copy of our memory;
    // `start_init` never returns into the parent's frames.
    let pid = unsafe { clone(Box::new(start_init), &mut stack, flags, Some(libc::SIGCHLD)) }
        .map_err(refused)?;
    Ok((pid, false))
}

/// `CLONE_INTO_CGROUP` as clone3's 64-bit flags word takes it (libc's
/// constant is an `i32`, which the flag overflows).
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Clones init straight into the v2 cgroup at `dir`. Moving a process in
/// afterwards takes the kernel's global threadgroup lock for writing, which
/// can wait for an RCU grace period (5 to 15 ms); a child born in its cgroup
/// is never moved.
fn clone_into_cgroup(
    flags: CloneFlags,
    dir: &Path,
    start_init: impl FnOnce() -> isize,
) -> std::result::Result<Pid, Errno> {
    let cgroup = nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    // SAFETY: clone_args is plain integers; all zero is "no such field".
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags.bits() as u64 | CLONE_INTO_CGROUP;
    args.exit_signal = libc::SIGCHLD as u64;
    args.cgroup = cgroup.as_raw_fd() as u64;
    // SAFETY: without CLONE_VM or a stack, clone3 behaves like fork: the
    // child returns here with 0 on a copy of our memory and runs
    // `start_init`, which never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match pid {
        0 => {
            // The handle on the host's cgroup tree must not reach the
            // container: `-w /proc/self/fd/N` would start the command there,
            // outside its root (runc's CVE-2024-21626).
            drop(cgroup);
            start_init();
            unreachable!("init::main never returns")
        }
        -1 => Err(Errno::last()),
        pid => Ok(Pid::from_raw(pid as i32)),
    }
}

impl Container {
    /// Blocks until init has exec'd the command (or failed to). A detached
    /// run calls this before it reports the container as started, so that a
    /// missing command still fails the `run` with 127.
    pub fn started(&mut self) -> Result<()> {
        while self.channel.is_some() && self.failure.is_none() {
            self.read_report()?;
        }
        match self.failure.take() {
            Some((code, message, lacks)) => Err(start_failure(code, message, lacks)),
            None => Ok(()),
        }
    }

    /// The container's record as it stands.
    pub fn record(&self) -> Option<&Record> {
        self.record.as_ref()
    }

    /// Marks the container as detached in its record.
    pub fn set_detached(&mut self) -> Result<()> {
        match self.record.as_mut() {
            Some(record) => {
                record.detached = true;
                self.store.write(record)
            }
            None => Ok(()),
        }
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
        if let (Ok(outcome), Some(record)) = (&result, self.record.as_mut()) {
            record.exit_code = Some(outcome.exit_code);
            record.oom_killed = outcome.oom_killed;
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
        let raw_mode = if self.tty && self.interactive {
            tty::RawMode::enter(stdin.as_fd())
        } else {
            None
        };
        let mut stdin_open = self.tty && self.interactive;
        let mut pty_open = true;
        while self.exit.is_none() {
            let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            let channel_slot = self
                .channel
                .as_ref()
                .map(|c| slot(&mut fds, c.as_fd(), PollFlags::POLLIN));
            let master_events = if self.pending_input.is_empty() {
                PollFlags::POLLIN
            } else {
                PollFlags::POLLIN | PollFlags::POLLOUT
            };
            let pty_slot = self
                .pty_master
                .as_ref()
                .filter(|_| pty_open)
                .map(|m| slot(&mut fds, m.as_fd(), master_events));
            // Read more keystrokes only once the pty took the last ones.
            let stdin_slot =
                (stdin_open && self.pty_master.is_some() && self.pending_input.is_empty())
                    .then(|| slot(&mut fds, stdin.as_fd(), PollFlags::POLLIN));
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
            let (signal_ready, channel_ready) = (
                !revents(Some(0)).is_empty(),
                !revents(channel_slot).is_empty(),
            );
            let (pty_events, stdin_ready) = (revents(pty_slot), !revents(stdin_slot).is_empty());
            drop(fds);
            if woke == 0 {
                self.reap()?;
                continue;
            }
            if channel_ready {
                self.read_report()?;
            }
            if pty_events.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                pty_open = self.relay_pty_output();
            }
            if pty_events.contains(PollFlags::POLLOUT) {
                self.flush_input();
            }
            if stdin_ready {
                stdin_open = self.read_stdin(stdin.as_fd());
                self.flush_input();
            }
            if signal_ready {
                self.handle_signals(&signals)?;
            }
        }
        if pty_open {
            while self.relay_pty_output() {}
        }
        drop(raw_mode);
        if let Some((exit_code, message, lacks)) = self.failure.take() {
            return Err(start_failure(exit_code, message, lacks));
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
        let channel = self.channel.as_ref().expect("polled only while open");
        match channel.recv::<Report>() {
            Ok(Some((Report::PtyMaster, mut fds))) if fds.len() == 1 => {
                let master = fds.pop().expect("one fd");
                let flags = OFlag::from_bits_truncate(
                    fcntl(&master, FcntlArg::F_GETFL).map_err(Error::sys("fcntl F_GETFL"))?,
                );
                fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))
                    .map_err(Error::sys("make the pty non-blocking"))?;
                tty::copy_window_size(std::io::stdin(), &master);
                self.pty_master = Some(master);
            }
            Ok(Some((
                Report::Failed {
                    exit_code,
                    message,
                    kernel_lacks,
                },
                _,
            ))) => self.failure = Some((exit_code, message, kernel_lacks)),
            Ok(Some((Report::SetUp { at }, _))) => self.timeline.lap_at(Phase::Rootfs, at),
            Ok(Some((Report::PtyMaster, _))) => {
                return Err(Error::Setup("init sent a pty report without its fd".into()))
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
                self.timeline.lap(Phase::Wait);
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
                tty::write_all(std::io::stdout().as_fd(), &buffer[..n]);
                true
            }
            Err(Errno::EINTR | Errno::EAGAIN) => true,
            Err(_) => false,
        }
    }

    /// Reads what the user typed into the pending buffer. At end of input it
    /// queues the terminal's end-of-file character, as typing Ctrl-D would.
    fn read_stdin(&mut self, stdin: BorrowedFd<'_>) -> bool {
        let mut buffer = [0u8; 16 * 1024];
        match nix::unistd::read(stdin, &mut buffer) {
            Ok(0) | Err(_) => {
                self.pending_input.push(0x04);
                false
            }
            Ok(n) => {
                self.pending_input.extend_from_slice(&buffer[..n]);
                true
            }
        }
    }

    /// Writes as much pending input to the pty as it takes without blocking.
    /// A container that is busy writing and not reading must not stall the
    /// relay of its output, or both sides would wait on each other.
    fn flush_input(&mut self) {
        let Some(master) = &self.pty_master else {
            self.pending_input.clear();
            return;
        };
        while !self.pending_input.is_empty() {
            match nix::unistd::write(master, &self.pending_input) {
                Ok(n) => drop(self.pending_input.drain(..n)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                Err(_) => {
                    self.pending_input.clear();
                    return;
                }
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
        if self.record.as_ref().is_some_and(|r| r.endpoint.is_some()) {
            network::detach(&self.id);
        }
        // A container that never ran its command, or asked for --rm, leaves
        // nothing; any other keeps its record and upper layer until `rm`.
        let keep = !self.auto_remove && self.record.as_ref().is_some_and(|r| r.exit_code.is_some());
        let state = match self.record.as_mut().filter(|_| keep) {
            Some(record) => {
                record.status = Status::Exited;
                record.finished = Some(store::now());
                self.store.write(record)
            }
            None => {
                if let Some(record) = &self.record {
                    let _ = network::forget(
                        self.store.root(),
                        &self.store,
                        &record.id,
                        record.endpoint.as_ref(),
                    );
                }
                let ids = self.record.as_ref().and_then(|r| r.userns);
                self.store.remove_dir(&self.id, ids)
            }
        };
        // An exited container's published ports go with it.
        if keep
            && self
                .record
                .as_ref()
                .is_some_and(|r| r.endpoint.as_ref().is_some_and(|e| !e.publish.is_empty()))
        {
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

/// The error for init's report that it could not start the command.
fn start_failure(exit_code: i32, message: String, kernel_lacks: bool) -> Error {
    if kernel_lacks {
        return Error::KernelLacks(message);
    }
    match exit_code {
        crate::error::EXIT_NOT_EXECUTABLE | crate::error::EXIT_NOT_FOUND => Error::Exec {
            message,
            code: exit_code,
        },
        _ => Error::Setup(message),
    }
}

/// The signals launch blocks, and the caller's mask to go back to.
struct BlockedSignals {
    set: SigSet,
    saved: Option<SigSet>,
}

impl BlockedSignals {
    fn block() -> Result<BlockedSignals> {
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

/// Adds `fd` to a poll set and returns its index.
fn slot<'fd>(fds: &mut Vec<PollFd<'fd>>, fd: BorrowedFd<'fd>, events: PollFlags) -> usize {
    fds.push(PollFd::new(fd, events));
    fds.len() - 1
}

/// Refuses the combinations a user namespace cannot serve, before anything
/// is created: no root without one, and no host network inside one.
fn check_user_namespace(spec: &Spec, rootless: bool) -> Result<()> {
    let uid = geteuid();
    if rootless && spec.userns == UserNs::Host {
        return Err(Error::Privilege(format!(
            "uid {uid} is not root: without root, mydocker runs containers only in a user namespace of their own; add --userns=auto"
        )));
    }
    if rootless && spec.network.is_some() {
        return Err(Error::Privilege(format!(
            "--network with a bridge needs root (uid {uid} is not): bridges, veth pairs and NAT rules are the host's; a rootless container has only lo"
        )));
    }
    if spec.userns == UserNs::Auto && !spec.namespaces.net {
        return Err(Error::invalid(
            "--network",
            "host",
            "not with --userns=auto: a user namespace may mount /sys only for a network namespace it owns",
        ));
    }
    Ok(())
}

/// Runs `spec` in the foreground to completion: launch, wait, tear down.
pub fn run(spec: &Spec, state_root: &Path) -> Result<Outcome> {
    launch(spec, state_root)?.wait()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first cgroup2 mount (the unified tree of a hybrid host, or `/sys/fs/cgroup`).
    fn cgroup2_mount() -> PathBuf {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        table
            .lines()
            .find_map(|line| {
                let (fields, rest) = line.split_once(" - ")?;
                rest.starts_with("cgroup2 ")
                    .then(|| PathBuf::from(fields.split(' ').nth(4).unwrap()))
            })
            .expect("this test needs a cgroup2 mount (a v2 or hybrid host)")
    }

    #[test]
    fn a_child_cloned_into_a_v2_cgroup_is_born_in_it() {
        assert!(
            geteuid().is_root(),
            "this test creates a cgroup: run it as root"
        );
        let dir = cgroup2_mount().join(format!("mydocker-clone3-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let (ready_read, ready_write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let child = clone_into_cgroup(CloneFlags::empty(), &dir, || {
            // No descriptor of the child may lead to the cgroup directory:
            // a container could start its command there, outside its root.
            let leaked = std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .any(|fd| std::fs::read_link(fd.unwrap().path()).is_ok_and(|target| target == dir));
            // Held until the parent has looked, then gone without unwinding.
            let mut byte = [0u8; 1];
            let _ = nix::unistd::read(&ready_read, &mut byte);
            // SAFETY: ends the cloned child without running the test's destructors.
            unsafe { libc::_exit(if leaked { 3 } else { 0 }) }
        });
        let members = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        let pid = child.expect("clone3 with CLONE_INTO_CGROUP");
        nix::unistd::write(&ready_write, &[1]).unwrap();
        let status = waitpid(pid, None).unwrap();
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(
            members.trim(),
            pid.to_string(),
            "the child was not in the cgroup at birth"
        );
        assert_eq!(
            status,
            WaitStatus::Exited(pid, 0),
            "the child held a descriptor of the cgroup directory"
        );
    }
}
