//! The OCI lifecycle: create, start, state, kill and delete, the five
//! operations of the runtime specification, on the same store as `run`.
//!
//! `create` sets the container up from a bundle and leaves init waiting,
//! already in its namespaces, cgroup and root, just short of exec; the
//! `create` process then exits, and init outlives it (conmon, as a
//! subreaper, becomes its parent). `start` lets it exec through the exec
//! fifo; `delete` tears down what `create` made. An OCI container has no
//! monitor: its status is read from the kernel each time (is init alive,
//! has it been started), never kept in memory.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::hooks::Point;
use crate::launch::{launch_with, Stdio, START_FIFO};
use crate::store::{self, Record, Status, Store};

/// The runtime specification version whose state `state` reports.
pub const OCI_VERSION: &str = "1.0.2";

/// How long `start` waits for init to take the fifo, which it is normally
/// blocked on already.
const START_WAIT: Duration = Duration::from_secs(10);

/// `create`'s options, as runc takes them.
#[derive(Debug, Default)]
pub struct Create {
    pub bundle: PathBuf,
    /// Where to write init's host pid, before `create` returns.
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// How many descriptors after stderr (3, 4, …) the process inherits
    /// (runc's `--preserve-fds`); conmon passes sockets this way.
    pub preserve_fds: i32,
}

/// Creates container `id` from the bundle: set up, waiting for `start`.
pub fn create(state_root: &Path, id: &str, options: &Create) -> Result<()> {
    // A leading dot marks the store's own entries (locks, tombstones), and
    // `.` and `..` are not names at all.
    if !crate::parse::is_plain_name(id, 64) || id.starts_with('.') {
        return Err(Error::invalid(
            "container id",
            id,
            "expected 1 to 64 of letters, digits, '_', '.' and '-', not starting with '.'",
        ));
    }
    let bundle = options.bundle.canonicalize().map_err(|e| {
        Error::not_found(
            "bundle",
            options.bundle.display().to_string(),
            format!("{e}: give the directory that holds config.json"),
        )
    })?;
    let path = bundle.join("config.json");
    let text =
        std::fs::read_to_string(&path).map_err(Error::io(format!("read {}", path.display())))?;
    let mut spec = crate::spec::oci::from_config(&text, &bundle)?;
    spec.name = Some(id.to_owned());
    // A terminal is handed to whoever listens on the console socket; it is
    // the only way the caller can reach it once create has exited.
    let console_socket = match (spec.tty, &options.console_socket) {
        (true, Some(socket)) => Some(socket.clone()),
        (false, None) => None,
        (true, None) => {
            return Err(Error::invalid(
                "--console-socket",
                "(none)",
                "required when process.terminal is true: the terminal's master goes there",
            ))
        }
        (false, Some(socket)) => {
            return Err(Error::invalid(
                "--console-socket",
                socket.display().to_string(),
                "only with process.terminal true: there is no terminal to hand over",
            ))
        }
    };
    let preserve_fds = preserved_fds(options.preserve_fds)?;
    refuse_own_mount_namespace(&spec)?;
    let stdio = Stdio {
        preserve_fds,
        ..Stdio::default()
    };
    let mut container = launch_with(&spec, state_root, stdio)?;
    container.created()?;
    // Init is set up and waits: the hooks may act on its namespaces. A
    // failure fails create, and dropping the container tears it down.
    let config: oci_spec::runtime::Spec =
        serde_json::from_str(&text).map_err(|e| Error::System(format!("config.json: {e}")))?;
    for point in [Point::CreateRuntime, Point::Prestart] {
        let hooks = point.of(&config);
        if !hooks.is_empty() {
            crate::hooks::run(point, &hooks, &state(state_root, id)?)?;
        }
    }
    if let Some(socket) = &console_socket {
        let master = container
            .take_pty_master()
            .ok_or_else(|| Error::System("init was set up without sending its terminal".into()))?;
        crate::tty::send_to_console_socket(socket, &master).map_err(Error::io(format!(
            "send the terminal to the console socket {}",
            socket.display()
        )))?;
    }
    if let Some(pid_file) = &options.pid_file {
        // Written before create returns: the caller reads it at once.
        crate::files::write_atomic(pid_file, container.pid.to_string().as_bytes())?;
    }
    if let Err(e) = container.leave() {
        if let Some(pid_file) = &options.pid_file {
            let _ = std::fs::remove_file(pid_file);
        }
        return Err(e);
    }
    Ok(())
}

/// Checks that descriptors 3 to 3+`count`-1 are all open. Each must be the
/// caller's: were one closed, the first descriptor create opened would take
/// its number, and a runtime file would leak into the container.
fn preserved_fds(count: i32) -> Result<u32> {
    let expected = "a count of open descriptors after stderr, such as 1 for descriptor 3";
    let Ok(count) = u32::try_from(count) else {
        return Err(Error::invalid(
            "--preserve-fds",
            count.to_string(),
            expected,
        ));
    };
    for fd in 3..3u64 + u64::from(count) {
        let open = i32::try_from(fd)
            // SAFETY: F_GETFD only reads the flags of a descriptor number.
            .is_ok_and(|fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
        if !open {
            return Err(Error::invalid(
                "--preserve-fds",
                count.to_string(),
                format!("{expected}: descriptor {fd} is not open"),
            ));
        }
    }
    Ok(count)
}

/// Writes the default `config.json` (see `spec::oci::default_config`) into
/// `dir`, which must not hold one already; returns its path.
pub fn write_default_config(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&crate::spec::oci::default_config())
        .expect("a JSON value prints");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::conflict(
                "bundle",
                dir.display().to_string(),
                "it holds a config.json already: remove it first",
            ),
            _ => Error::io(format!("create {}", path.display()))(e),
        })?;
    std::io::Write::write_all(&mut file, format!("{text}\n").as_bytes())
        .map_err(Error::io(format!("write {}", path.display())))?;
    Ok(path)
}

/// Lets a created container exec its process.
pub fn start(state_root: &Path, id: &str) -> Result<()> {
    let store = Store::new(state_root);
    let mut record = find(&store, id)?;
    let status = status_word(&store, &record);
    if status != "created" {
        return Err(Error::conflict(
            "container",
            id,
            format!("it is {status}: start runs a created container, once"),
        ));
    }
    let fifo = store.container_dir(&record.id).join(START_FIFO);
    // Non-blocking, so that an init that died cannot hang us; init, blocked
    // opening the other end for writing, goes on as soon as we are here.
    let reader = open(
        &fifo,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Error::sys(format!("open {}", fifo.display())))?;
    let deadline = Instant::now() + START_WAIT;
    loop {
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(100u8)).unwrap_or(0) > 0;
        if ready {
            let mut byte = [0u8; 1];
            if matches!(nix::unistd::read(&reader, &mut byte), Ok(1)) {
                break;
            }
        }
        if !store::process_is(record.pid, record.pid_start) {
            return Err(Error::conflict(
                "container",
                id,
                "its init died before it could start",
            ));
        }
        if Instant::now() > deadline {
            return Err(Error::System(format!(
                "container {id}: init did not take the start signal within {} s",
                START_WAIT.as_secs()
            )));
        }
    }
    // Gone at once: from here on the container reads as running.
    let _ = std::fs::remove_file(&fifo);
    record.status = Status::Running;
    match store.write(&record) {
        // Deleted meanwhile: the start itself happened.
        Err(_) if !store.container_dir(&record.id).exists() => return Ok(()),
        other => other?,
    }
    // The process runs: a failing poststart hook is a warning only.
    if let Some(config) = config_of(&record) {
        let hooks = Point::Poststart.of(&config);
        if !hooks.is_empty() {
            // The state the start left, not a fresh look: a command that
            // ends at once would otherwise read as stopped, with no pid.
            let state = document(&record, "running");
            if let Err(e) = crate::hooks::run(Point::Poststart, &hooks, &state) {
                eprintln!("mydocker: warning: {e}");
            }
        }
    }
    Ok(())
}

/// A mount namespace joined by path is the container's to rebuild: init
/// makes it private and switches its root. The runtime's own (the host's,
/// as a rule) must never be that one.
fn refuse_own_mount_namespace(spec: &crate::spec::Spec) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Some(parts) = spec.oci.as_deref() else {
        return Ok(());
    };
    let own = std::fs::metadata("/proc/self/ns/mnt")
        .map_err(Error::io("read our own mount namespace"))?;
    for (_, path) in parts
        .join_namespaces
        .iter()
        .filter(|(kind, _)| kind == "mnt")
    {
        let target = std::fs::metadata(path).map_err(Error::io(format!(
            "linux.namespaces.path: read the mount namespace {path}"
        )))?;
        if (target.dev(), target.ino()) == (own.dev(), own.ino()) {
            return Err(Error::invalid(
                "linux.namespaces.path",
                path,
                "a mount namespace other than the runtime's own: the container's root switch would re-root the host",
            ));
        }
    }
    Ok(())
}

/// The bundle's configuration as it is now, for its hooks; none when it
/// can no longer be read (hooks are then not run).
fn config_of(record: &Record) -> Option<oci_spec::runtime::Spec> {
    let path = record.bundle.as_ref()?.dir.join("config.json");
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The state document of the runtime specification.
pub fn state(state_root: &Path, id: &str) -> Result<serde_json::Value> {
    let store = Store::new(state_root);
    let record = find(&store, id)?;
    Ok(document(&record, status_word(&store, &record)))
}

/// The specification's state document of `record`, in `status`.
fn document(record: &Record, status: &str) -> serde_json::Value {
    let mut state = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": record.name,
        "status": status,
        "bundle": record.bundle.as_ref().map(|b| b.dir.clone()).unwrap_or_default(),
    });
    if status != "stopped" {
        state["pid"] = record.pid.into();
    }
    if let Some(bundle) = record.bundle.as_ref().filter(|b| !b.annotations.is_empty()) {
        state["annotations"] = serde_json::json!(bundle.annotations);
    }
    state
}

/// Sends `signal` to init, or with `all` to every process in its cgroup.
pub fn kill_container(state_root: &Path, id: &str, signal: Signal, all: bool) -> Result<()> {
    let store = Store::new(state_root);
    let record = find(&store, id)?;
    if status_word(&store, &record) == "stopped" {
        return Err(Error::conflict(
            "container",
            id,
            "it is stopped: kill signals a created or running container",
        ));
    }
    kill(Pid::from_raw(record.pid), signal).map_err(Error::sys(format!(
        "send {signal} to {id} (pid {})",
        record.pid
    )))?;
    if all {
        // Every process of the container is in each of its cgroups; one
        // that exits meanwhile (ESRCH) has nothing left to signal.
        let mut pids = std::collections::BTreeSet::new();
        for dir in &record.cgroups {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(procs.lines().filter_map(|l| l.parse::<i32>().ok()));
        }
        for pid in pids.into_iter().filter(|p| *p != record.pid) {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => return Err(Error::sys(format!("send {signal} to {id} (pid {pid})"))(e)),
            }
        }
    }
    Ok(())
}

/// The OCI containers of this state root, as `state` shows each.
pub fn list(state_root: &Path) -> Result<Vec<serde_json::Value>> {
    let store = Store::new(state_root);
    let mut states = Vec::new();
    for record in store.list()?.into_iter().filter(|r| r.bundle.is_some()) {
        let mut one = state(state_root, &record.name)?;
        one["created"] = record.created.into();
        states.push(one);
    }
    Ok(states)
}

/// What this runtime can do, in the shape of the specification's
/// `features` document: what a client may ask for without being refused.
pub fn features() -> serde_json::Value {
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompOperator};
    let name = |v: serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let actions: Vec<String> = [
        LinuxSeccompAction::ScmpActAllow,
        LinuxSeccompAction::ScmpActErrno,
        LinuxSeccompAction::ScmpActKill,
        LinuxSeccompAction::ScmpActKillThread,
        LinuxSeccompAction::ScmpActKillProcess,
        LinuxSeccompAction::ScmpActTrap,
        LinuxSeccompAction::ScmpActTrace,
        LinuxSeccompAction::ScmpActLog,
    ]
    .into_iter()
    .map(|a| name(serde_json::json!(a)))
    .collect();
    let operators: Vec<String> = [
        LinuxSeccompOperator::ScmpCmpNe,
        LinuxSeccompOperator::ScmpCmpLt,
        LinuxSeccompOperator::ScmpCmpLe,
        LinuxSeccompOperator::ScmpCmpEq,
        LinuxSeccompOperator::ScmpCmpGe,
        LinuxSeccompOperator::ScmpCmpGt,
        LinuxSeccompOperator::ScmpCmpMaskedEq,
    ]
    .into_iter()
    .map(|o| name(serde_json::json!(o)))
    .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": [],
        "mountOptions": crate::spec::mount::OPTIONS.to_vec(),
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": crate::spec::security::names(crate::spec::security::ALL),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": actions,
                "operators": operators,
                "archs": [std::env::consts::ARCH],
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
        },
    })
}

/// What OCI's `exec` is asked: the process (from `--process`'s JSON, or
/// the command and flags), and how to leave it.
pub struct Exec {
    /// A `process` object of the runtime specification, as a file.
    pub process: Option<PathBuf>,
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub tty: bool,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
}

/// Runs a process in the running container `id`, confined as its
/// configuration says (the process's capability sets and user, the
/// container's seccomp profile and masks); its exit code, or 0 at once
/// with `detach`.
pub fn exec(state_root: &Path, id: &str, options: &Exec) -> Result<i32> {
    let store = Store::new(state_root);
    let record = find(&store, id)?;
    let status = status_word(&store, &record);
    if status != "running" {
        return Err(Error::conflict(
            "container",
            id,
            format!("it is {status}: exec runs a process in a running container"),
        ));
    }
    let bundle = record.bundle.as_ref().expect("find returns OCI containers");
    let path = bundle.dir.join("config.json");
    let text =
        std::fs::read_to_string(&path).map_err(Error::io(format!("read {}", path.display())))?;
    let mut config: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::System(format!("{}: not JSON any more: {e}", path.display())))?;
    match &options.process {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(Error::io(format!("read --process {}", file.display())))?;
            config["process"] = serde_json::from_str(&text).map_err(|e| {
                Error::invalid(
                    "--process",
                    file.display().to_string(),
                    format!("a JSON process object of the runtime specification ({e})"),
                )
            })?;
        }
        None => {
            let process = &mut config["process"];
            process["args"] = serde_json::json!(options.command);
            process["terminal"] = options.tty.into();
            if let Some(cwd) = &options.cwd {
                process["cwd"] = cwd.to_string_lossy().into_owned().into();
            }
            if let Some(env) = process["env"].as_array_mut() {
                env.extend(options.env.iter().map(|(k, v)| format!("{k}={v}").into()));
            }
        }
    }
    let spec = crate::spec::oci::from_config(&config.to_string(), &bundle.dir)?;
    if spec.tty != options.console_socket.is_some() {
        return Err(Error::invalid(
            "--console-socket",
            options
                .console_socket
                .as_ref()
                .map_or("(none)".into(), |p| p.display().to_string()),
            "given exactly when the process has a terminal",
        ));
    }
    let parts = spec.oci.as_deref().cloned().unwrap_or_default();
    let request = crate::exec::ExecRequest {
        args: spec.args.clone(),
        env: spec.env.clone(),
        workdir: spec.workdir.clone(),
        interactive: true,
        tty: spec.tty,
        oci: Some((spec.security, parts, spec.rlimits.clone())),
        detach: options.detach,
        pid_file: options.pid_file.clone(),
        console_socket: options.console_socket.clone(),
    };
    crate::exec::exec(&store, &record.id, &request)
}

/// Freezes every process of a running container (`pause`), or thaws a
/// paused one (`resume`), waiting until the kernel reports it done.
///
/// `pause` is one command for both command lines (podman calls it bare, as
/// a docker user would), so a docker container is found too, by name or
/// id as `docker pause` finds it.
pub fn set_paused(state_root: &Path, id: &str, paused: bool) -> Result<()> {
    let store = Store::new(state_root);
    let record = match find(&store, id) {
        Ok(record) => record,
        Err(not_oci) => store
            .resolve(id)
            .ok()
            .filter(|r| r.bundle.is_none())
            .ok_or(not_oci)?,
    };
    let status = status_word(&store, &record);
    let (from, verb) = if paused {
        ("running", "pause")
    } else {
        ("paused", "resume")
    };
    if status != from {
        return Err(Error::conflict(
            "container",
            id,
            format!("it is {status}: {verb} acts on a {from} container"),
        ));
    }
    crate::cgroup::set_frozen(&record.cgroups, paused)?;
    Ok(())
}

/// Removes a stopped container and everything `create` made; with `force`,
/// a created or running one too (`rm -f`'s removal kills it first).
pub fn delete(state_root: &Path, id: &str, force: bool) -> Result<()> {
    let store = Store::new(state_root);
    let record = find(&store, id)?;
    let status = status_word(&store, &record);
    if status != "stopped" && !force {
        return Err(Error::conflict(
            "container",
            id,
            format!("it is {status}: stop it first, or delete --force"),
        ));
    }
    if status == "paused" {
        // A frozen task dies only once thawed: kill first, so that nothing
        // of the container runs again, then thaw.
        let _ = kill_container(state_root, id, Signal::SIGKILL, true);
        crate::cgroup::set_frozen(&record.cgroups, false)?;
    }
    let poststop = config_of(&record)
        .map(|config| Point::Poststop.of(&config))
        .unwrap_or_default();
    let mut last_state = state(state_root, id)?;
    crate::lifecycle::remove(&store, &record.id, true, false)?;
    if !poststop.is_empty() {
        last_state["status"] = "stopped".into();
        if let Err(e) = crate::hooks::run(Point::Poststop, &poststop, &last_state) {
            eprintln!("mydocker: warning: {e}");
        }
    }
    Ok(())
}

/// The OCI container `id`: by its exact name, never by an id prefix.
fn find(store: &Store, id: &str) -> Result<Record> {
    store
        .list()?
        .into_iter()
        .find(|r| r.name == id && r.bundle.is_some())
        .ok_or_else(|| {
            Error::not_found(
                "container",
                id,
                "the container does not exist (no OCI container of that id in this --root)",
            )
        })
}

/// The specification's word for the container's status, from the kernel
/// and the exec fifo: an init alive whose fifo still exists has not been
/// started; `start` removes the fifo as soon as init has taken it.
fn status_word(store: &Store, record: &Record) -> &'static str {
    if !store::process_is(record.pid, record.pid_start) {
        return "stopped";
    }
    if store.container_dir(&record.id).join(START_FIFO).exists() {
        "created"
    } else if crate::cgroup::is_frozen(&record.cgroups) {
        "paused"
    } else {
        "running"
    }
}
