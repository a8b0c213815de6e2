//! The on-disk state: one directory per container under `<root>/containers`,
//! holding a JSON record written atomically, the container's overlay layers
//! and its log. Liveness is always checked against the kernel (the pid and
//! that process's start time), never assumed from the record.

use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::restart::RestartPolicy;
use crate::spec::{Limits, Volume};

/// Where state lives unless `--root` or `MYDOCKER_ROOT` says otherwise.
pub const DEFAULT_ROOT: &str = "/var/lib/mydocker";

/// [`DEFAULT_ROOT`] for root; for anyone else `$XDG_DATA_HOME/mydocker`
/// (or `~/.local/share/mydocker`), since a rootless user cannot write there.
pub fn default_root() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from(DEFAULT_ROOT);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    data.join("mydocker")
}

/// The spec a container was run with, in its state directory, for
/// `restart` and the restart policies to start it again.
pub const SPEC_FILE: &str = "spec.json";

/// The file in a container's directory that says the user ended it by hand.
const STOP_REQUEST: &str = "stop.request";

/// Why the user ended a container (see [`Store::request_stop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// `stop`, `kill` or `rm -f`: it stays exited (or is removed, with `--rm`).
    Stop,
    /// `restart`: it is kept, even with `--rm`, and `restart` starts it.
    Restart,
}

/// Who starts an exited container again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartBy {
    /// The user (`restart`): a note of an earlier stop is forgotten, and
    /// the policy's count starts over.
    Hand,
    /// Its restart policy, in its monitor: not after a stop by hand.
    Policy,
}

/// A container's lifecycle state as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

/// Everything the runtime knows about one container, as stored in `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    /// The image name or rootfs directory given to `run`.
    pub image: String,
    /// The overlay's lower layer.
    pub lower: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub limits: Limits,
    pub volumes: Vec<Volume>,
    pub status: Status,
    /// Host pid of the container's init, and its start time in clock ticks
    /// after boot (field 22 of `/proc/<pid>/stat`), which tells it apart
    /// from a later process that reuses the pid.
    pub pid: i32,
    pub pid_start: u64,
    /// The process that waits for the container: the monitor of a detached
    /// run, or `mydocker run` itself.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    /// The pid namespace (inode of `/proc/self/ns/pid`) of whoever made the
    /// record, in which `pid` and `monitor_pid` mean what they say; 0 when
    /// unknown (older records). Only a command in the same namespace may
    /// judge them dead.
    #[serde(default)]
    pub pid_ns: u64,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    /// Seconds since the Unix epoch.
    pub created: u64,
    pub finished: Option<u64>,
    /// Cgroup directories, one per hierarchy.
    pub cgroups: Vec<PathBuf>,
    /// Their ancestors the container's creation made, removed with it.
    #[serde(default)]
    pub cgroup_parents: Vec<PathBuf>,
    pub detached: bool,
    pub auto_remove: bool,
    /// The container's place on a network, if it joined one.
    #[serde(default)]
    pub endpoint: Option<crate::spec::network::Endpoint>,
    /// The host ids the container's ids map to, when it has a user namespace.
    #[serde(default)]
    pub userns: Option<crate::userns::IdMap>,
    /// The confinement its processes get; `exec` applies it too. `None` in
    /// records written before confinement existed, whose containers run
    /// without it: exec leaves their commands as they were.
    #[serde(default)]
    pub security: Option<crate::security::Security>,
    /// Resource limits; `exec` sets them on its commands too.
    #[serde(default)]
    pub rlimits: Vec<crate::spec::rlimit::Rlimit>,
    /// An OCI container's bundle; such a container has no monitor, and
    /// lives from `create` to `delete`.
    #[serde(default)]
    pub bundle: Option<crate::spec::Bundle>,
    /// Who the command runs as (`--user`), resolved at `run`; `exec`
    /// runs as it too. Root in records written before it existed.
    #[serde(default)]
    pub user: crate::spec::User,
    /// What `stop` sends first, and how long it waits before SIGKILL,
    /// when the container was run with `--stop-signal`/`--stop-timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u64>,
    /// `--label`s, for `ps --filter label=...` and `inspect`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// When the command last started (seconds since the Unix epoch): the
    /// creation for a first run, later each restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<u64>,
    /// `--restart`: whether the monitor starts the container again when
    /// it exits.
    #[serde(default, skip_serializing_if = "RestartPolicy::is_no")]
    pub restart: RestartPolicy,
    /// How many times the policy restarted it since it was last started by
    /// hand (`run` or `restart`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_count: u32,
    /// Exited, and its monitor is waiting to start it again (or starting
    /// it): docker's `Restarting` state.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarting: bool,
    /// Why its restart policy's last start failed (`inspect`'s `State.Error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_error: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Record {
    /// The status the kernel confirms: a record that says running whose
    /// process is gone (a killed monitor, a reboot) reads as exited.
    pub fn live_status(&self) -> Status {
        match self.status {
            Status::Running if !process_is(self.pid, self.pid_start) => Status::Exited,
            // An OCI container waits for `start` with no monitor: its init is
            // what must be alive.
            Status::Created if self.bundle.is_some() => {
                match process_is(self.pid, self.pid_start) {
                    true => Status::Created,
                    false => Status::Exited,
                }
            }
            // A launch whose launcher died before the command started.
            Status::Created if !self.monitor_alive() => Status::Exited,
            status => status,
        }
    }

    /// Exited, with its monitor alive and starting it again, or about to
    /// (or, for a moment, deciding not to: a restart policy's monitor
    /// ends once it has).
    pub fn is_restarting(&self) -> bool {
        (self.restarting || !self.restart.is_no())
            && self.live_status() == Status::Exited
            && self.monitor_alive()
    }

    /// True while the monitor (or foreground `mydocker run`) still waits on it.
    pub fn monitor_alive(&self) -> bool {
        process_is(self.monitor_pid, self.monitor_start)
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12]
    }
}

/// Whether `pid` is the same process that started at `start` (and not a zombie).
pub fn process_is(pid: i32, start: u64) -> bool {
    pid > 0 && process_start(pid).is_some_and(|s| s == start)
}

/// The inode of our pid namespace, which names it; 0 if unreadable.
pub fn own_pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self/ns/pid").map_or(0, |m| m.ino())
}

/// The start time of a live (non-zombie) process, from `/proc/<pid>/stat`.
pub fn process_start(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields follow the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// The state root and the operations on its containers.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }

    /// Creates the container's directory and first record while holding the
    /// store lock, so that two runs can never take the same name.
    ///
    /// With `reserve_ids`, it also takes a free block of ids for the
    /// container's user namespace into `record.userns`, under the same lock,
    /// so two containers never get the same block.
    pub fn create(&self, record: &mut Record, reserve_ids: bool) -> Result<PathBuf> {
        self.create_record(record, reserve_ids)
            .map_err(|e| self.unwritable(e))
    }

    /// A state root that cannot take a write (full, read-only, not ours)
    /// is said to be so, with what to do, rather than as the file it failed on.
    fn unwritable(&self, e: Error) -> Error {
        use std::io::ErrorKind::{
            PermissionDenied, QuotaExceeded, ReadOnlyFilesystem, StorageFull,
        };
        match &e {
            // Only a path of the state root's: the user-namespace claims
            // and /etc/subuid live elsewhere.
            Error::Io { context, source } if context.contains(&*self.root.to_string_lossy()) => {
                let fix = match source.kind() {
                    StorageFull => "free space there",
                    QuotaExceeded => "free space within its disk quota",
                    ReadOnlyFilesystem => "make it writable",
                    PermissionDenied => "run as its owner",
                    _ => return e,
                };
                Error::System(format!(
                    "the state root {} cannot be written ({source}): {fix}, or give another --root",
                    self.root.display(),
                ))
            }
            _ => e,
        }
    }

    fn create_record(&self, record: &mut Record, reserve_ids: bool) -> Result<PathBuf> {
        let _lock = self.lock()?;
        // `rmi` decides under this lock too: its image is there now, and
        // stays while this record names it.
        if !record.lower.exists() {
            return Err(Error::not_found(
                "image",
                &record.image,
                "it was removed while the container was being created",
            ));
        }
        let records = self.list()?;
        if let Some(other) = records.iter().find(|r| r.name == record.name) {
            return Err(Error::conflict(
                "--name",
                &record.name,
                format!(
                    "that name is in use by container {}: remove it first or pick another name",
                    other.short_id()
                ),
            ));
        }
        let dir = self.container_dir(&record.id);
        fs::create_dir_all(&dir).map_err(Error::io(format!("create {}", dir.display())))?;
        if reserve_ids {
            // The directory exists first: a claim naming a missing one is stale.
            let claimed = self.claim_ids(&records, &dir);
            match claimed {
                Ok(map) => record.userns = Some(map),
                Err(e) => {
                    let _ = fs::remove_dir(&dir);
                    return Err(e);
                }
            }
        }
        if let Err(e) = self.write(record) {
            // Without a record nothing would ever release the claim.
            if let (Some(map), Ok(canonical)) = (record.userns, dir.canonicalize()) {
                crate::userns::release(map, &canonical);
            }
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(dir)
    }

    /// A block of ids for a new container in `dir`: one that no record here
    /// holds (claims do not survive a reboot; records do) and no container on
    /// the host has claimed.
    fn claim_ids(&self, records: &[Record], dir: &Path) -> Result<crate::userns::IdMap> {
        use crate::userns;
        let used: Vec<_> = records.iter().filter_map(|r| r.userns).collect();
        let (subuid, subgid) = userns::id_files();
        let (uids, gids) = (userns::read_pool(&subuid)?, userns::read_pool(&subgid)?);
        let dir = dir
            .canonicalize()
            .map_err(Error::io(format!("resolve {}", dir.display())))?;
        userns::claim(&userns::candidates(&uids, &gids, &used), &dir)?
            .ok_or_else(|| userns::exhausted(used.len()))
    }

    /// Replaces a record atomically: readers see the old or the new one.
    pub fn write(&self, record: &Record) -> Result<()> {
        let path = self.container_dir(&record.id).join("state.json");
        crate::files::write_atomic(
            &path,
            &serde_json::to_vec_pretty(record).expect("records always serialize"),
        )
    }

    pub fn load(&self, id: &str) -> Result<Record> {
        let path = self.container_dir(id).join("state.json");
        let text =
            fs::read_to_string(&path).map_err(Error::io(format!("read {}", path.display())))?;
        serde_json::from_str(&text).map_err(Error::corrupt(&path))
    }

    /// Every container with a readable record, oldest first.
    pub fn list(&self) -> Result<Vec<Record>> {
        let entries = match fs::read_dir(self.containers()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::io(format!("read {}", self.containers().display()))(
                    e,
                ))
            }
        };
        let mut records: Vec<Record> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| self.load(&e.file_name().to_string_lossy()).ok())
            .collect();
        records.sort_by_key(|r| r.created);
        Ok(records)
    }

    /// The containers whose record does not parse (or cannot be read), with
    /// the error that says which file and what to do. `list` leaves them
    /// out: a damaged record must not hide, or stop, any other container.
    pub fn damaged(&self) -> Vec<(String, Error)> {
        let Ok(entries) = fs::read_dir(self.containers()) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let id = e.file_name().to_string_lossy().into_owned();
                // Only a record that exists and does not parse: a directory
                // without one yet is a container being created (records are
                // written whole, by rename).
                match self.load(&id) {
                    Err(error @ Error::Corrupt { .. }) => Some((id, error)),
                    _ => None,
                }
            })
            .collect()
    }

    /// Gives a container a new name (`rename`), under the store's lock, so
    /// that no run can take the same name meanwhile. An OCI container's
    /// name is the id its caller knows it by, and is never changed.
    pub fn rename(&self, query: &str, new_name: &str) -> Result<Record> {
        if !crate::parse::is_plain_name(new_name, 64) {
            return Err(Error::invalid(
                "name",
                new_name,
                "expected 1 to 64 of letters, digits, '_', '.' and '-'",
            ));
        }
        let _lock = self.lock()?;
        let mut record = self.resolve(query)?;
        // Until its monitor has recorded it started, the monitor writes
        // the record without this lock; after that, only under it.
        if record.status == Status::Created && record.monitor_alive() {
            return Err(Error::conflict(
                "container",
                query,
                "it is still starting: try again in a moment",
            ));
        }
        if record.bundle.is_some() {
            return Err(Error::conflict(
                "container",
                query,
                "it is an OCI container, whose id is its caller's to keep",
            ));
        }
        if let Some(other) = self.list()?.iter().find(|r| r.name == new_name) {
            return Err(Error::conflict(
                "name",
                new_name,
                format!("that name is in use by container {}", other.short_id()),
            ));
        }
        record.name = new_name.to_owned();
        self.write(&record)?;
        Ok(record)
    }

    /// Writes a record whose writer has held it since the start (a
    /// container's monitor), keeping the name and limits on disk: a
    /// `rename` or `update` made meanwhile, under the same lock, is not undone.
    pub fn write_keeping_edits(&self, record: &mut Record) -> Result<()> {
        let _lock = self.lock()?;
        if let Ok(current) = self.load(&record.id) {
            record.name = current.name;
            record.limits = current.limits;
        }
        self.write(record)
    }

    /// Notes that the user ended the container by hand (`stop`, `kill`,
    /// `rm -f`, or `restart`, which starts it again itself): its monitor
    /// must not start it again by its policy. The note lasts until the
    /// container is started by hand.
    pub fn request_stop(&self, id: &str, request: StopRequest) {
        let word = match request {
            StopRequest::Stop => "stop",
            StopRequest::Restart => "restart",
        };
        // Best effort: a container removed meanwhile needs no note.
        let _ = fs::write(self.container_dir(id).join(STOP_REQUEST), word);
    }

    /// The note [`Store::request_stop`] left, if any.
    pub fn stop_request(&self, id: &str) -> Option<StopRequest> {
        match fs::read(self.container_dir(id).join(STOP_REQUEST)) {
            Ok(word) if word == b"restart" => Some(StopRequest::Restart),
            Ok(_) => Some(StopRequest::Stop),
            Err(_) => None,
        }
    }

    /// Marks an exited container as waiting to be started again by its
    /// policy (`restarting`), or no longer.
    pub fn set_restarting(&self, id: &str, restarting: bool) -> Result<()> {
        let _lock = self.lock()?;
        let mut record = self.load(id)?;
        record.restarting = restarting;
        self.write(&record)
    }

    /// Notes why a start again failed (`inspect`'s `State.Error`); it
    /// stays exited, and not restarting.
    pub fn set_start_error(&self, id: &str, error: &str) -> Result<()> {
        let _lock = self.lock()?;
        let mut record = self.load(id)?;
        record.start_error = Some(error.to_owned());
        record.restarting = false;
        self.write(&record)
    }

    /// An exclusive lock on one container's directory, held until the
    /// guard drops: whoever mounts its layers outside a run of it (`cp`
    /// into a stopped container, a start again) holds it.
    pub fn hold_dir(&self, id: &str) -> Result<nix::fcntl::Flock<fs::File>> {
        let dir = self.container_dir(id);
        hold(&dir, nix::fcntl::FlockArg::LockExclusive)
            .map_err(Error::sys(format!("lock {}", dir.display())))
    }

    /// The spec to start `record`'s container again with: the one it was
    /// run with, with what `rename` and `update` changed since, on the
    /// image layer its record names. Refused for what cannot start again
    /// detached.
    pub fn restart_spec(&self, record: &Record) -> Result<crate::spec::Spec> {
        let refuse = |why: &str| Err(Error::conflict("container", &record.name, why.to_owned()));
        if record.bundle.is_some() {
            return refuse(
                "it is an OCI container: its client starts it (runc's create and start)",
            );
        }
        let path = self.container_dir(&record.id).join(SPEC_FILE);
        let mut spec: crate::spec::Spec = match fs::read(&path) {
            Ok(text) => serde_json::from_slice(&text).map_err(Error::corrupt(&path))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return refuse(
                    "it was run by an older mydocker, which did not keep its spec: run it anew",
                )
            }
            Err(e) => return Err(Error::io(format!("read {}", path.display()))(e)),
        };
        if spec.tty || spec.interactive {
            return refuse("it was run with -i or -t, attached to a terminal; started again it would run detached, without one: run it anew");
        }
        spec.name = Some(record.name.clone());
        spec.limits = record.limits.clone();
        spec.rootfs = record.lower.clone();
        Ok(spec)
    }

    /// Claims an exited container to start it again, under the store's
    /// lock, for the calling process (which becomes its monitor): `by`
    /// the user (`restart`) or by its policy. Returns its record, marked
    /// restarting, and the spec it was run with (with the name and limits
    /// it has now), or `None` when a policy restart is no longer wanted
    /// (the user stopped it meanwhile).
    pub fn claim_restart(
        &self,
        query: &str,
        by: RestartBy,
    ) -> Result<Option<(Record, crate::spec::Spec)>> {
        let _lock = self.lock()?;
        let mut record = self.resolve(query)?;
        let me = std::process::id() as i32;
        if record.live_status() != Status::Exited
            || (record.monitor_alive() && record.monitor_pid != me)
        {
            return Err(Error::conflict(
                "container",
                query,
                "another command is starting or running it: try again in a moment",
            ));
        }
        match by {
            RestartBy::Policy if self.stop_request(&record.id).is_some() => return Ok(None),
            RestartBy::Policy => record.restart_count += 1,
            // `restart` asked for it; a stop that came since wins.
            RestartBy::Hand if self.stop_request(&record.id) == Some(StopRequest::Stop) => {
                return Err(Error::conflict(
                    "container",
                    query,
                    "it was stopped while it was being restarted",
                ))
            }
            RestartBy::Hand => {
                let _ = fs::remove_file(self.container_dir(&record.id).join(STOP_REQUEST));
                record.restart_count = 0;
            }
        }
        // Refuses an OCI container, among others.
        let spec = self.restart_spec(&record)?;
        record.monitor_pid = me;
        record.monitor_start = process_start(me).unwrap_or(0);
        record.pid_ns = own_pid_namespace();
        record.restarting = true;
        record.detached = true;
        self.write(&record)?;
        Ok(Some((record, spec)))
    }

    /// Finds a container by exact name, or by a unique id prefix of at least 12 digits.
    pub fn resolve(&self, query: &str) -> Result<Record> {
        let records = self.list()?;
        if let Some(record) = records.iter().find(|r| r.name == query || r.id == query) {
            return Ok(record.clone());
        }
        let matches: Vec<&Record> = if query.len() >= 12 {
            records.iter().filter(|r| r.id.starts_with(query)).collect()
        } else {
            Vec::new()
        };
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::not_found(
                "container",
                query,
                "no such container: give its name or at least 12 digits of its id (`mydocker ps -a` lists them)",
            )),
            many => Err(Error::invalid(
                "container",
                query,
                format!("the id prefix matches {} containers: give more digits", many.len()),
            )),
        }
    }

    /// Removes the container's directory (record, layers, log). Never crosses
    /// into another filesystem: a mount left inside (a volume, say) is
    /// detached first, and anything still on another device is left alone,
    /// so removal can never delete host data through a bind mount. `ids`,
    /// the record's user namespace block, has its host-wide claim released.
    pub fn remove_dir(&self, id: &str, ids: Option<crate::userns::IdMap>) -> Result<()> {
        let dir = self.container_dir(id);
        if let (Some(map), Ok(canonical)) = (ids, dir.canonicalize()) {
            crate::userns::release(map, &canonical);
        }
        detach_mounts_below(&dir);
        // Held by the directory itself, so it follows the rename: a tombstone
        // nobody holds was left by a removal that was killed.
        let _held = match hold(&dir, nix::fcntl::FlockArg::LockExclusive) {
            Ok(held) => held,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(Error::sys(format!("lock {}", dir.display()))(e)),
        };
        // Out of the listing in one step, so that a removal that fails half
        // way never leaves a container without its record but with its files.
        let tombstone = self.containers().join(format!(".removing-{id}"));
        let doomed = match fs::rename(&dir, &tombstone) {
            Ok(()) => tombstone,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => dir,
        };
        remove_tree_same_fs(&doomed).map_err(Error::io(format!("remove {}", doomed.display())))
    }

    /// Finishes what a killed command left in the container directory: a
    /// removal's tombstone that nobody holds, and a directory whose record
    /// was never written (a create killed between the two, under the store
    /// lock), with the user-namespace ids it may have claimed. Returns how
    /// many it removed. Costs one directory read when there is nothing.
    pub fn finish_interrupted(&self) -> Result<usize> {
        let Ok(entries) = fs::read_dir(self.containers()) else {
            return Ok(0);
        };
        let (mut tombstones, mut unwritten) = (Vec::new(), Vec::new());
        let record_missing = |dir: &Path| matches!(fs::symlink_metadata(dir.join("state.json")), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        for entry in entries.flatten() {
            // A real directory, never a link leading elsewhere.
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".removing-") {
                tombstones.push(entry.path());
            } else if !name.starts_with('.') && record_missing(&entry.path()) {
                unwritten.push(entry.path());
            }
        }
        let mut finished = 0;
        let mut first_error = Ok(());
        let mut remove = |dir: &Path| {
            detach_mounts_below(dir);
            match remove_tree_same_fs(dir) {
                Ok(()) => finished += 1,
                Err(e) if first_error.is_ok() => {
                    first_error = Err(Error::io(format!("remove {}", dir.display()))(e))
                }
                Err(_) => {}
            }
        };
        for tombstone in tombstones {
            if let Ok(_held) = hold(&tombstone, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                remove(&tombstone);
            }
        }
        if !unwritten.is_empty() {
            let _lock = self.lock()?;
            for dir in unwritten.iter().filter(|d| record_missing(d)) {
                if let Ok(canonical) = dir.canonicalize() {
                    crate::userns::release_held_by(&canonical);
                }
                remove(dir);
            }
        }
        first_error.map(|()| finished)
    }

    /// An exclusive lock on the store, held until the guard drops.
    pub(crate) fn lock(&self) -> Result<nix::fcntl::Flock<fs::File>> {
        fs::create_dir_all(self.containers())
            .map_err(Error::io(format!("create {}", self.containers().display())))?;
        crate::files::lock_file(&self.containers().join(".lock"))
    }
}

/// A lock on the directory `dir` itself (never through a link); EWOULDBLOCK
/// if it is taken and `how` does not wait.
fn hold(dir: &Path, how: nix::fcntl::FlockArg) -> nix::Result<nix::fcntl::Flock<fs::File>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(dir)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    nix::fcntl::Flock::lock(file, how).map_err(|(_, e)| e)
}

/// Lazily unmounts every mount at or below `dir` in our mount namespace.
fn detach_mounts_below(dir: &Path) {
    let Ok(table) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    // mountinfo's paths are canonical; a --root given as ./state or through
    // a link must match them too.
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    let prefix = dir.to_string_lossy().into_owned();
    let mut points: Vec<String> = table
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_point)
        .filter(|p| *p == prefix || p.starts_with(&format!("{prefix}/")))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
    }
}

/// mountinfo writes space, tab, newline and backslash in paths as octal
/// escapes (`\040` and so on).
fn unescape_mount_point(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The id of the mount `path` is on (statx's `STATX_MNT_ID`, Linux 5.8+).
fn mount_id(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    crate::files::mount_of(libc::AT_FDCWD, &path).map(|(id, _)| id)
}

/// `rm -rf` that stays on the mount of `dir`: a directory on another mount
/// (another device, or a bind of this same filesystem, which only the
/// mount id tells apart) is a mount point, and is neither entered nor
/// removed.
pub(crate) fn remove_tree_same_fs(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let top = match fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    fn walk(dir: &Path, device: u64, mount: Option<u64>) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            let meta = fs::symlink_metadata(&path)?;
            if meta.is_dir() {
                if meta.dev() != device || (mount.is_some() && mount_id(&path) != mount) {
                    return Err(std::io::Error::other(format!(
                        "{} is a mount point; refusing to remove it",
                        path.display()
                    )));
                }
                // overlayfs leaves `work/work` with mode 000; root reads it
                // anyway, a rootless owner must first give itself access.
                if meta.mode() & 0o700 != 0o700 {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o700));
                }
                walk(&path, device, mount)?;
                fs::remove_dir(&path)?;
            } else {
                fs::remove_file(&path)?;
            }
        }
        Ok(())
    }
    walk(dir, top.dev(), mount_id(dir))?;
    fs::remove_dir(dir)
}

pub use crate::ident::{new_id, now};

/// The network layer's view of the records: it asks, the store answers.
impl crate::network::Holders for Store {
    fn holders(&self) -> Result<Vec<crate::network::Holder>> {
        Ok(self
            .list()?
            .into_iter()
            .filter_map(|r| {
                // Only a record with an endpoint is asked about liveness.
                let endpoint = r.endpoint.clone()?;
                // live_status already reads Created with a dead launcher as
                // Exited: what is left holds its ports.
                let status = r.live_status();
                let restarting = r.is_restarting();
                Some(crate::network::Holder {
                    endpoint,
                    id: r.id,
                    name: r.name,
                    running: status == Status::Running,
                    // Between two runs by its policy too.
                    holds_ports: status != Status::Exited || restarting,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> Record {
        Record {
            id: new_id(),
            name: name.into(),
            image: "img".into(),
            lower: "/".into(),
            args: vec!["true".into()],
            env: vec![],
            limits: Limits::default(),
            volumes: vec![],
            status: Status::Running,
            pid: std::process::id() as i32,
            pid_start: process_start(std::process::id() as i32).unwrap(),
            monitor_pid: 0,
            monitor_start: 0,
            pid_ns: 0,
            exit_code: None,
            oom_killed: false,
            created: now(),
            finished: None,
            cgroups: vec![],
            cgroup_parents: vec![],
            detached: false,
            auto_remove: false,
            endpoint: None,
            userns: None,
            security: None,
            stop_signal: None,
            stop_timeout: None,
            user: Default::default(),
            rlimits: Vec::new(),
            bundle: None,
            labels: Default::default(),
            started: None,
            restart: RestartPolicy::No,
            restart_count: 0,
            restarting: false,
            start_error: None,
        }
    }

    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let (a, b) = (new_id(), new_id());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn names_are_unique_and_prefixes_resolve() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path());
        let mut web = record("web");
        store.create(&mut web, false).unwrap();
        let err = store
            .create(&mut record("web"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"web\"") && err.contains("in use"), "{err}");
        assert_eq!(store.resolve("web").unwrap().id, web.id);
        assert_eq!(store.resolve(&web.id[..12]).unwrap().id, web.id);
        assert!(store
            .resolve(&web.id[..11])
            .unwrap_err()
            .to_string()
            .contains("at least 12"));
        assert!(store.resolve("nope").is_err());
        store.remove_dir(&web.id, None).unwrap();
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn an_ambiguous_prefix_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let store = Store::new(root.path());
        let (mut a, mut b) = (record("a"), record("b"));
        a.id = format!("{}{}", "ab".repeat(8), "0".repeat(48));
        b.id = format!("{}{}", "ab".repeat(8), "1".repeat(48));
        store.create(&mut a, false).unwrap();
        store.create(&mut b, false).unwrap();
        let err = store.resolve(&a.id[..12]).unwrap_err().to_string();
        assert!(err.contains("matches 2 containers"), "{err}");
        assert_eq!(store.resolve(&a.id[..17]).unwrap().name, "a");
    }

    #[test]
    fn a_record_whose_process_is_gone_reads_as_exited() {
        let mut r = record("x");
        assert_eq!(r.live_status(), Status::Running);
        r.pid_start += 1;
        assert_eq!(r.live_status(), Status::Exited);
    }
}
