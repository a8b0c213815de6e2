//! Preparation: everything a launch makes before init exists (the record
//! and its reservations, the overlay's directories, volumes, the log, the
//! cgroup, the message for init) and the one guard that undoes all of it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::waitpid;
use nix::unistd::{geteuid, Pid};

use crate::cgroup::{ContainerCgroup, Mode};
use crate::channel::InitConfig;
use crate::error::{Error, Result};
use crate::network::{self, Endpoint, Network};
use crate::spec::{Fault, Spec, Volume};
use crate::store::{self, Record, Status, Store};
use crate::timeline::{Phase, Timeline};
use crate::userns::UserNs;

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
    /// Descriptors 3 to 3+N-1 of ours that the command inherits too
    /// (`create --preserve-fds N`).
    pub preserve_fds: u32,
}

/// A container ready to be cloned: what init will be told, and what has
/// been made for it so far.
pub(super) struct Prepared {
    pub rollback: Rollback,
    pub config: InitConfig,
    /// Held open until init has its own copies (after clone).
    pub stdio: Stdio,
    /// The exec fifo's `O_PATH` descriptor, for init to inherit.
    pub start_fifo: Option<OwnedFd>,
    /// The network the container joins, and its address there.
    pub network: Option<(Network, Endpoint)>,
    /// Where the overlay is mounted.
    pub merged: PathBuf,
    pub rootless: bool,
    /// How the host's cgroups are laid out.
    pub mode: Mode,
}

/// What a launch has made, undone in reverse order if it is dropped before
/// supervision takes over: the one cleanup path for every failure before
/// the container exists. Supervision's teardown is the other.
pub(super) struct Rollback {
    pub store: Store,
    pub record: Record,
    pub cgroup: Option<ContainerCgroup>,
    /// Init, once cloned: killed and reaped first.
    pub init: Option<Pid>,
    handed_over: bool,
    /// The process that made all this: a cloned child holds a copy of the
    /// guard, which must never undo the parent's work.
    owner: Pid,
    /// The container existed before this launch (a restart): it is put
    /// back as it was, exited, not removed.
    restarting: bool,
}

impl Rollback {
    /// Gives up the guard: from now on supervision owns these and tears
    /// them down.
    pub fn hand_over(mut self) -> (Store, Record, ContainerCgroup, Pid) {
        self.handed_over = true;
        let cgroup = self.cgroup.take().expect("handed over after the cgroup");
        let init = self.init.take().expect("handed over after clone");
        (self.store.clone(), self.record.clone(), cgroup, init)
    }
}

impl Drop for Rollback {
    fn drop(&mut self) {
        if self.handed_over || nix::unistd::getpid() != self.owner {
            return;
        }
        if let Some(pid) = self.init {
            let _ = kill(pid, Signal::SIGKILL);
            while let Err(nix::errno::Errno::EINTR) = waitpid(pid, None) {}
        }
        if let Some(cgroup) = &self.cgroup {
            let _ = cgroup.destroy();
        }
        let record = &mut self.record;
        if self.restarting {
            // It keeps its address and ids, as any exited container does.
            record.status = Status::Exited;
            record.restarting = false;
            let _ = self.store.write_keeping_edits(record);
            return;
        }
        let _ = network::forget(
            self.store.root(),
            &self.store,
            &record.id,
            record.endpoint.as_ref(),
        );
        let volumes = crate::volume::Volumes::new(self.store.root());
        let _ = volumes.remove_anonymous_of(&self.store, record);
        let _ = self.store.remove_dir(&record.id, record.userns);
    }
}

/// Checks `spec` against the host, reserves the container's name, ids and
/// address, and makes its directories and cgroup. Laps the timeline's state
/// and cgroup phases.
///
/// With `again`, the record of a container that exited (and that the
/// caller has claimed, see [`crate::store::Store::claim_restart`]) is
/// started again instead: its id, name, upper layer, log, address and ids
/// are kept, and a failure leaves it as it was rather than removing it.
pub(super) fn prepare(
    spec: &Spec,
    state_root: &Path,
    mut stdio: Stdio,
    timeline: &mut Timeline,
    again: Option<Record>,
) -> Result<Prepared> {
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
    let restarting = again.is_some();
    let mut record = again.unwrap_or_else(|| new_record(spec, &lower, rootless));
    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| record.id[..12].to_owned());
    let mut env = spec.environment(&hostname);
    if let Some(user) = &spec.user {
        let resolved = resolve_user(&lower, user, &spec.group_add)?;
        // HOME follows the user, unless the caller set it.
        if !spec.env.iter().any(|(k, _)| k == "HOME") {
            if let Some(home) = env.iter_mut().find(|(k, _)| k == "HOME") {
                home.1 = resolved.home;
            }
        }
        record.user = resolved.user;
    } else if !spec.group_add.is_empty() {
        // Root as it runs without --user (no memberships), plus these.
        record.user = resolve_user(&lower, "0:0", &spec.group_add)?.user;
    }
    record.env = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // The name (and a block of ids) is reserved here, under the store's lock.
    let reserve_ids = spec.userns == UserNs::Auto && !rootless;
    let dir = match restarting {
        true => store.container_dir(&record.id),
        false => store.create(&mut record, reserve_ids)?,
    };
    if let Some(map) = record.userns.filter(|_| restarting && reserve_ids) {
        let canonical = dir
            .canonicalize()
            .map_err(Error::io(format!("resolve {}", dir.display())))?;
        crate::userns::reclaim(map, &canonical)?;
    }
    let mut rollback = Rollback {
        store,
        record,
        cgroup: None,
        init: None,
        handed_over: false,
        owner: nix::unistd::getpid(),
        restarting,
    };
    // What `restart` starts again; an OCI container's bundle is its spec.
    if !restarting && spec.bundle.is_none() {
        let path = dir.join(store::SPEC_FILE);
        std::fs::write(&path, serde_json::to_vec(spec).expect("specs serialize"))
            .map_err(Error::io(format!("write {}", path.display())))?;
    }
    let network = match &spec.network {
        Some(request) => {
            let Rollback { store, record, .. } = &mut rollback;
            let id = record.id.clone();
            let network = network::reserve(state_root, store, &id, request, |endpoint| {
                record.endpoint = Some(endpoint.clone());
                // Started again, it may have been renamed meanwhile.
                match restarting {
                    true => store.write_keeping_edits(record),
                    false => store.write(record),
                }
            })?;
            let endpoint = record.endpoint.clone().expect("reserve records it");
            Some((network, endpoint))
        }
        None => None,
    };
    let record = &rollback.record;
    let layers = Layers::create(&dir, &lower, restarting && spec.auto_remove)?;
    // An OCI root is not an overlay: init binds it while it still has the
    // host root's credentials, and there is no layer to give away.
    if let Some(map) = record.userns.filter(|_| !rootless && spec.overlay) {
        // The container's root must own its layer and reach the image.
        crate::userns::check_reachable(&[&dir, &lower], map.uid)?;
    }
    // Host directories for volumes are made only now, after every check
    // that could refuse the run.
    let ids = record.userns.filter(|_| !rootless);
    let volumes = prepare_volumes(&spec.volumes, state_root, &lower, ids)?;
    if let Some((_, endpoint)) = &network {
        // Started again, the files it gets belong to its root at once (a
        // new container's whole upper layer is given to it below).
        let owner = record
            .userns
            .filter(|_| restarting && !rootless && spec.overlay);
        layers.write_etc(&hostname, &record.name, endpoint, owner)?;
    }
    if let Some(map) = record.userns.filter(|_| !rootless && spec.overlay) {
        // Started again, the upper layer is the container's already, owned
        // as its processes left it; only a new work directory is not.
        match restarting {
            false => crate::userns::give_to_root(&[&layers.upper, &layers.work], map)?,
            true => crate::userns::give_to_root(&[&layers.work], map)?,
        }
    }
    if stdio.log {
        let path = dir.join("container.log");
        let (out, err) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|f| Ok((OwnedFd::from(f.try_clone()?), OwnedFd::from(f))))
            .map_err(Error::io(format!("create {}", path.display())))?;
        stdio.stdout = stdio.stdout.or(Some(out));
        stdio.stderr = stdio.stderr.or(Some(err));
    }
    let start_fifo = if spec.wait_for_start {
        Some(make_start_fifo(&dir, record.userns)?)
    } else {
        None
    };
    let config = init_config(
        spec,
        record,
        &layers,
        volumes,
        hostname,
        rootless,
        &stdio,
        start_fifo.as_ref(),
    );
    timeline.lap(Phase::State);
    let mut cgroup = if rootless && !crate::cgroup::delegated(mode, &spec.cgroup_parent) {
        crate::cgroup::refuse_undelegated(mode, &spec.limits)?;
        ContainerCgroup::none(mode)
    } else {
        // OCI's cgroupsPath names the container's cgroup itself.
        let cgroups_path = spec.oci.as_ref().and_then(|p| p.cgroups_path.as_deref());
        let (parent, leaf) = match cgroups_path.map(|p| p.rsplit_once('/').unwrap_or(("", p))) {
            Some((parent, leaf)) => (parent, leaf),
            None => (spec.cgroup_parent.as_str(), record.id.as_str()),
        };
        // A start again killed half way left its cgroup behind, with no
        // record of it as running to have it reaped: it goes now (the
        // container has exited, so nothing of its runs there).
        if restarting {
            crate::cgroup::remove_recorded(&record.cgroups)?;
        }
        ContainerCgroup::create(mode, parent, leaf, &spec.limits)?
    };
    if spec.faults.has(Fault::SkipTeardownKill) {
        cgroup.skip_teardown_kill();
    }
    rollback.cgroup = Some(cgroup);
    timeline.lap(Phase::Cgroup);
    Ok(Prepared {
        rollback,
        config,
        stdio,
        start_fifo,
        network,
        merged: layers.merged,
        rootless,
        mode,
    })
}

/// The name of the exec fifo in the container's state directory: it
/// exists from `create` until `start` (runc keeps one too).
pub const START_FIFO: &str = "exec.fifo";

/// Makes the exec fifo and opens it without blocking (`O_PATH`): init
/// inherits the descriptor and, once set up, opens the fifo through it for
/// writing, which blocks until `start` opens it for reading.
/// In a user namespace the fifo belongs to the container's root, who opens it.
fn make_start_fifo(dir: &Path, ids: Option<crate::userns::IdMap>) -> Result<OwnedFd> {
    let path = dir.join(START_FIFO);
    // Writable by others, as runc's: init may open it as a user without
    // capabilities; only the owner (root, or the namespace's) reads it.
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o622))
        .map_err(Error::sys(format!("create {}", path.display())))?;
    if let Some(ids) = ids {
        nix::unistd::chown(
            &path,
            Some(nix::unistd::Uid::from_raw(ids.uid)),
            Some(nix::unistd::Gid::from_raw(ids.gid)),
        )
        .map_err(Error::sys(format!(
            "give {} to the container's root",
            path.display()
        )))?;
    }
    nix::fcntl::open(
        &path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(Error::sys(format!("open {}", path.display())))
}

/// The container's record as it is created: status Created, no process yet.
fn new_record(spec: &Spec, lower: &Path, rootless: bool) -> Record {
    let id = store::new_id();
    let monitor = std::process::id() as i32;
    Record {
        name: spec.name.clone().unwrap_or_else(|| id[..12].to_owned()),
        id,
        image: if spec.image.is_empty() {
            lower.display().to_string()
        } else {
            spec.image.clone()
        },
        lower: lower.to_owned(),
        args: spec.args.clone(),
        env: Vec::new(),
        limits: spec.limits.clone(),
        volumes: spec.volumes.clone(),
        status: Status::Created,
        pid: 0,
        pid_start: 0,
        monitor_pid: monitor,
        monitor_start: store::process_start(monitor).unwrap_or(0),
        pid_ns: store::own_pid_namespace(),
        exit_code: None,
        oom_killed: false,
        created: store::now(),
        finished: None,
        cgroups: Vec::new(),
        cgroup_parents: Vec::new(),
        detached: false,
        auto_remove: spec.auto_remove,
        labels: spec.labels.clone(),
        endpoint: None,
        // Without root, the only ids a user may map are its own; an OCI
        // configuration gives its maps, of which root's ids are recorded.
        userns: match spec.oci.as_deref() {
            Some(parts) if !parts.uid_mappings.is_empty() => {
                use crate::spec::userns::Mapping;
                Some(crate::userns::IdMap {
                    uid: Mapping::host_of(&parts.uid_mappings, 0).expect("checked by spec::oci"),
                    gid: Mapping::host_of(&parts.gid_mappings, 0).expect("checked by spec::oci"),
                    count: 1,
                })
            }
            _ => rootless.then(|| crate::userns::IdMap {
                uid: nix::unistd::getuid().as_raw(),
                gid: nix::unistd::getgid().as_raw(),
                count: 1,
            }),
        },
        security: Some(spec.security),
        user: Default::default(),
        stop_signal: spec.stop_signal.clone(),
        stop_timeout: spec.stop_timeout,
        rlimits: spec.rlimits.clone(),
        bundle: spec.bundle.clone(),
        started: None,
        restart: spec.restart,
        restart_count: 0,
        restarting: false,
        start_error: None,
    }
}

/// Translates the spec into what init needs: paths on the host, the
/// resolved environment, and the deliberate defects it is asked to commit.
#[allow(clippy::too_many_arguments)]
fn init_config(
    spec: &Spec,
    record: &Record,
    layers: &Layers,
    volumes: Vec<Volume>,
    hostname: String,
    rootless: bool,
    stdio: &Stdio,
    start_fifo: Option<&OwnedFd>,
) -> InitConfig {
    // Either an overlay, or the lower layer itself: an OCI bundle's root,
    // or the SkipOverlay fault.
    let (overlay, lower_bind) = if spec.faults.has(Fault::SkipOverlay) || !spec.overlay {
        (None, Some(layers.lower.to_string_lossy().into_owned()))
    } else {
        (Some(layers.options(spec.auto_remove)), None)
    };
    let path = record
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or_default()
        .to_owned();
    InitConfig {
        rootfs: layers.merged.to_string_lossy().into_owned(),
        overlay,
        lower_bind,
        volumes: volumes
            .into_iter()
            .map(|v| Volume {
                read_only: v.read_only && !spec.faults.has(Fault::IgnoreReadOnly),
                ..v
            })
            .collect(),
        args: spec.args.clone(),
        path,
        env: record.env.clone(),
        hostname: spec.namespaces.uts.then_some(hostname),
        workdir: spec.workdir.clone().unwrap_or_else(|| "/".to_owned()),
        tty: spec.tty,
        interactive: spec.interactive,
        report_setup: spec.split_init_phases || crate::timeline::tracing(),
        user_ns: record.userns.is_some(),
        drop_groups: !rootless,
        security: spec.security,
        user: record.user.clone(),
        init_process: spec.init_process,
        mounts: spec.mounts.clone(),
        devices: spec.devices.clone(),
        // Filled in once the cgroup exists.
        join_cgroup: Vec::new(),
        new_cgroup_ns: spec.namespaces.cgroup,
        new_net_ns: spec.namespaces.net,
        // A joined mount namespace is made private as a new one is: pivot_root
        // refuses a shared root, and our mounts are nobody else's.
        new_mount_ns: spec.namespaces.mount
            || spec
                .oci
                .as_deref()
                .is_some_and(|p| p.join_namespaces.iter().any(|(kind, _)| kind == "mnt")),
        faults: spec.faults.clone(),
        rlimits: spec.rlimits.clone(),
        start_fifo: start_fifo.as_ref().map(|fd| fd.as_raw_fd()),
        preserve_fds: stdio.preserve_fds,
        stdio: [&stdio.stdin, &stdio.stdout, &stdio.stderr]
            .map(|fd| fd.as_ref().map(|fd| fd.as_raw_fd())),
        oci: spec.oci.as_deref().cloned(),
    }
}

/// The overlay directories of one container, inside its state directory.
struct Layers {
    lower: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    merged: PathBuf,
}

impl Layers {
    /// The overlay's directories, made where missing. `after_volatile`: the
    /// container is started again after a `volatile` mount (a `--rm`
    /// container's, kept by `restart`).
    fn create(dir: &Path, lower: &Path, after_volatile: bool) -> Result<Layers> {
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
        // The work directory is overlayfs's scratch space, but a volatile
        // mount leaves a mark there (`work/incompat/volatile`) that makes
        // the next mount fail: it is started afresh.
        if after_volatile {
            store::remove_tree_same_fs(&layers.work)
                .map_err(Error::io(format!("clear {}", layers.work.display())))?;
        }
        for path in [&layers.upper, &layers.work, &layers.merged] {
            std::fs::create_dir_all(path)
                .map_err(Error::io(format!("create {}", path.display())))?;
        }
        Ok(layers)
    }

    /// Writes `/etc/hostname` and `/etc/hosts` into the upper layer, where
    /// they hide the image's own without changing it.
    ///
    /// Once the container has run, the upper layer is its own: its root
    /// may have made `/etc/hosts` (or `/etc`) a link to a host file, which
    /// a write by path, as root, would follow. So every step is taken from
    /// a descriptor and never follows a link, and the old file is replaced,
    /// not written through.
    fn write_etc(
        &self,
        hostname: &str,
        name: &str,
        endpoint: &Endpoint,
        owner: Option<crate::userns::IdMap>,
    ) -> Result<()> {
        use nix::fcntl::{openat, OFlag};
        use nix::sys::stat::Mode;
        fn refused(what: &str) -> impl Fn(nix::errno::Errno) -> Error + '_ {
            move |e| {
                Error::System(format!(
                    "cannot write the container's {what} ({e}): its upper layer must hold it as a plain file below a plain /etc"
                ))
            }
        }
        let directory = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let upper = nix::fcntl::open(&self.upper, directory, Mode::empty())
            .map_err(Error::sys(format!("open {}", self.upper.display())))?;
        let made = match nix::sys::stat::mkdirat(&upper, "etc", Mode::from_bits_truncate(0o755)) {
            Ok(()) => true,
            Err(nix::errno::Errno::EEXIST) => false,
            Err(e) => return Err(refused("/etc")(e)),
        };
        let etc = openat(&upper, "etc", directory, Mode::empty()).map_err(refused("/etc"))?;
        let give = |fd: &std::os::fd::OwnedFd, what: &str| -> Result<()> {
            let Some(map) = owner else { return Ok(()) };
            nix::unistd::fchown(
                fd,
                Some(nix::unistd::Uid::from_raw(map.uid)),
                Some(nix::unistd::Gid::from_raw(map.gid)),
            )
            .map_err(refused(what))
        };
        if made {
            give(&etc, "/etc")?;
        }
        let hosts = network::hosts_file(hostname, name, Some(endpoint));
        for (file, text) in [("hostname", format!("{hostname}\n")), ("hosts", hosts)] {
            let what = format!("/etc/{file}");
            match nix::unistd::unlinkat(&etc, file, nix::unistd::UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
                Err(e) => return Err(refused(&what)(e)),
            }
            let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
            let fd = openat(
                &etc,
                file,
                flags | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o644),
            )
            .map_err(refused(&what))?;
            give(&fd, &what)?;
            std::io::Write::write_all(&mut std::fs::File::from(fd), text.as_bytes())
                .map_err(Error::io(format!("write the container's {what}")))?;
        }
        Ok(())
    }

    /// The overlay's mount options. `volatile` (Linux 5.10) for a container
    /// removed when it exits, as podman does for `--rm`: without it, the
    /// unmount when the container's last process exits syncs the whole file
    /// system the upper layer is on (overlayfs passes `syncfs` down), so the
    /// exit waits for every dirty page of, here, the root file system. On an
    /// idle machine that is cheap, and the two directories a volatile mount
    /// makes cost as much (medians of 60 starts alike either way); with
    /// 300 MB written and not yet synced, one start took 157 ms without it
    /// and 14 ms with. Volatile also skips the container's own fsyncs; what a
    /// crash could leave half-written is a layer already meant to vanish.
    fn options(&self, volatile: bool) -> String {
        format!(
            "lowerdir={},upperdir={},workdir={}{}",
            self.lower.display(),
            self.upper.display(),
            self.work.display(),
            if volatile { ",volatile" } else { "" }
        )
    }
}

/// Resolves `--user` and `--group-add` against the image's `/etc/passwd`
/// and `/etc/group`, each opened inside the rootfs (a link in the image
/// leads inside it, never to the host's files). An image without them has
/// only numeric users and groups.
fn resolve_user(
    rootfs: &Path,
    user: &str,
    group_add: &[String],
) -> Result<crate::spec::passwd::Resolved> {
    // A fifo there would hang the start, a device read without end.
    const LARGEST: u64 = 4 << 20;
    let read = |file: &str| -> Result<String> {
        let Some(pinned) =
            crate::rootfs::open_if_in_root(rootfs, file).map_err(|f| Error::System(f.message))?
        else {
            return Ok(String::new());
        };
        // Checked before opening it: opening a fifo blocks.
        let meta = std::fs::metadata(pinned.path())
            .map_err(Error::io(format!("read the image's {file}")))?;
        if !meta.is_file() || meta.len() > LARGEST {
            return Err(Error::invalid(
                "--user",
                file,
                "the image's file must be a regular file of at most 4 MiB",
            ));
        }
        let opened = std::fs::File::open(pinned.path())
            .map_err(Error::io(format!("open the image's {file}")))?;
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(opened, LARGEST), &mut text)
            .map_err(Error::io(format!("read the image's {file}")))?;
        Ok(text)
    };
    Ok(crate::spec::passwd::resolve(
        user,
        group_add,
        &read("/etc/passwd")?,
        &read("/etc/group")?,
    )?)
}

/// Creates missing host directories of volumes and resolves their paths.
/// A named volume is made on first use and, unless `volume-nocopy`, given
/// what the image `lower` holds at its mount point, as docker does; under
/// a user namespace (`ids`), a new one belongs to the container's root.
fn prepare_volumes(
    volumes: &[Volume],
    state_root: &Path,
    lower: &Path,
    ids: Option<crate::userns::IdMap>,
) -> Result<Vec<Volume>> {
    let named = crate::volume::Volumes::new(state_root);
    volumes
        .iter()
        .map(|v| {
            let host = match &v.name {
                Some(name) => named_volume(&named, name, v, lower, ids)?,
                None => {
                    std::fs::create_dir_all(&v.host).map_err(Error::io(format!(
                        "create volume directory {}",
                        v.host.display()
                    )))?;
                    v.host.clone()
                }
            };
            let host = host
                .canonicalize()
                .map_err(Error::io(format!("resolve volume {}", host.display())))?;
            Ok(Volume { host, ..v.clone() })
        })
        .collect()
}

/// The data directory of the named volume `v`, made and filled if it is
/// new, and reachable by the root of a container under a user namespace.
fn named_volume(
    named: &crate::volume::Volumes,
    name: &str,
    v: &Volume,
    lower: &Path,
    ids: Option<crate::userns::IdMap>,
) -> Result<PathBuf> {
    let fill = |staged: &Path| {
        copy_image_files(lower, &v.container, staged)?;
        // Inside, the files keep their owners: shifted into the
        // container's ids, as its image's own look to it.
        match ids {
            Some(map) => crate::userns::shift_into(staged, map),
            None => Ok(()),
        }
    };
    // nocopy leaves it to be filled by the next container without.
    let fill: Option<crate::volume::Fill> = match v.no_copy {
        true => None,
        false => Some(&fill),
    };
    named.create(name, v.anonymous, fill)?;
    let data = named.data(name);
    if let Some(map) = ids {
        // Its root must reach the data: the volume's directory is given to
        // it, unless another container's root has it.
        let dir = data.parent().expect("a volume's data has a parent");
        let meta = std::fs::metadata(dir).map_err(Error::io(format!("read {}", dir.display())))?;
        if std::os::unix::fs::MetadataExt::uid(&meta) == 0 {
            named.give_to(name, map)?;
        }
        crate::userns::check_reachable(&[&data], map.uid)?;
    }
    Ok(data)
}

/// Copies what the image holds at `path` (looked up inside it: a link in
/// the image leads inside it) into a new volume's `data`, with owners,
/// modes and links as they are (`cp -a`). Nothing when the image has no
/// directory there.
fn copy_image_files(lower: &Path, path: &str, data: &Path) -> Result<()> {
    let Some(pinned) =
        crate::rootfs::open_if_in_root(lower, path).map_err(|f| Error::System(f.message))?
    else {
        return Ok(());
    };
    // `cp` runs in a process of its own: the pinned directory is reached
    // through our descriptor table by pid. It writes only into a new
    // directory no container can reach yet.
    let source =
        pinned
            .path()
            .replacen("/proc/self/", &format!("/proc/{}/", std::process::id()), 1);
    if !Path::new(&source).is_dir() {
        return Ok(());
    }
    let copied = std::process::Command::new("/bin/cp")
        .env_clear()
        .arg("-a")
        .arg(format!("{source}/."))
        .arg(data)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(Error::io("run cp to fill a new volume"))?;
    if !copied.status.success() {
        return Err(Error::System(format!(
            "could not copy the image's {path} into the new volume {}: {}",
            data.display(),
            String::from_utf8_lossy(&copied.stderr).trim()
        )));
    }
    Ok(())
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
