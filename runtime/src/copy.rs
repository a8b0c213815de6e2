//! `cp`: files between the host and a container's filesystem, as docker
//! copies them: a tar stream from one side, unpacked on the other.
//!
//! The container's side never runs in the host's view of the filesystem. A
//! forked child enters it first: the mount namespace of a running container
//! (where `/` is the container's root, with its volumes), or, for a stopped
//! one, a private mount namespace of its own with the container's overlay
//! mounted and `chroot`ed into. Every path the container's side names is
//! then looked up by the kernel inside that root, so a symlink the
//! container made (`/data -> /`) leads to the container's `/`, never the
//! host's. The child's namespace, and the overlay in it, end with the child:
//! a killed `cp` leaves no mount behind.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use crate::error::{Error, Result};
use crate::store::{Record, Status, Store};

/// One end of a copy, as `cp` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A path on the host.
    Host(PathBuf),
    /// `-`: a tar stream on stdin or stdout.
    Stream,
    /// `CONTAINER:PATH`.
    Container { container: String, path: String },
}

impl Location {
    /// docker's reading: `-` is a stream; `NAME:PATH` is in a container
    /// unless what precedes the colon looks like a path (holds a `/`), so
    /// `./a:b` stays a local file.
    pub fn parse(text: &str) -> Location {
        if text == "-" {
            return Location::Stream;
        }
        match text.split_once(':') {
            Some((container, path)) if !container.is_empty() && !container.contains('/') => {
                Location::Container {
                    container: container.to_owned(),
                    path: path.to_owned(),
                }
            }
            _ => Location::Host(PathBuf::from(text)),
        }
    }
}

/// What a path is, on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Missing {
        parent_exists: bool,
    },
    Directory,
    /// A file, a symbolic link (copied as a link) or anything else.
    Other,
}

impl Kind {
    fn of(path: &Path, follow: bool) -> Kind {
        let meta = if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        };
        match meta {
            Ok(m) if m.is_dir() => Kind::Directory,
            Ok(_) => Kind::Other,
            Err(_) => Kind::Missing {
                parent_exists: parent(path).is_dir(),
            },
        }
    }

    fn code(self) -> i32 {
        match self {
            Kind::Missing {
                parent_exists: false,
            } => 10,
            Kind::Missing {
                parent_exists: true,
            } => 11,
            Kind::Directory => 12,
            Kind::Other => 13,
        }
    }

    fn from_code(code: i32) -> Option<Kind> {
        [
            Kind::Missing {
                parent_exists: false,
            },
            Kind::Missing {
                parent_exists: true,
            },
            Kind::Directory,
            Kind::Other,
        ]
        .into_iter()
        .find(|k| k.code() == code)
    }
}

/// Copies `source` to `destination` (`cp SRC DEST`): one of them in a
/// container, the other a host path or `-`. With `follow`, a source that
/// is a symbolic link is copied as what it points to (`-L`).
pub fn copy(store: &Store, source: &str, destination: &str, follow: bool) -> Result<()> {
    let between_containers = || {
        Error::invalid(
            "cp",
            format!("{source} {destination}"),
            "copying between containers is not supported: copy through the host",
        )
    };
    match (Location::parse(source), Location::parse(destination)) {
        (Location::Container { container, path }, to) => {
            let side = ContainerSide::open(store, &container, false)?;
            let from = side.path(&path)?;
            let kind = side.probe(&from, follow)?;
            if let Kind::Missing { .. } = kind {
                return Err(Error::not_found(
                    "path",
                    format!("{container}:{path}"),
                    "no such file or directory in the container",
                ));
            }
            match to {
                Location::Stream => {
                    let out = stdio_fd(libc::STDOUT_FILENO)?;
                    side.spawn_tar(&from, &archive_name(&path), follow, out, None)?
                        .finish()
                }
                Location::Host(dest) => {
                    let (dir, name) = plan(kind, &path, Kind::of(&dest, true), &dest)?;
                    let (reader, writer) = pipe()?;
                    let child =
                        side.spawn_tar(&from, &name, follow, writer, Some(reader.as_raw_fd()))?;
                    let unpacked = unpack(File::from(reader), &dir, Some(&name), None);
                    if unpacked.is_err() {
                        // It may be blocked writing what nobody reads now.
                        child.abort();
                    }
                    let written = child.finish();
                    unpacked.and(written)
                }
                Location::Container { .. } => Err(between_containers()),
            }
        }
        (from, Location::Container { container, path }) => {
            let side = ContainerSide::open(store, &container, true)?;
            let to = side.path(&path)?;
            let dest_kind = side.probe(&to, true)?;
            match from {
                Location::Stream => {
                    if dest_kind != Kind::Directory {
                        return Err(Error::invalid(
                            "destination",
                            format!("{container}:{path}"),
                            "a tar stream from stdin is unpacked into a directory that exists",
                        ));
                    }
                    let input = stdio_fd(libc::STDIN_FILENO)?;
                    side.spawn_unpack(input, &to, None, None)?.finish()
                }
                Location::Host(src) => {
                    let kind = Kind::of(&src, follow);
                    if let Kind::Missing { .. } = kind {
                        return Err(Error::not_found(
                            "path",
                            src.display().to_string(),
                            "no such file or directory on the host",
                        ));
                    }
                    let source_text = src.to_string_lossy().into_owned();
                    let (dir, name) = plan(kind, &source_text, dest_kind, &to)?;
                    let (reader, writer) = pipe()?;
                    let child =
                        side.spawn_unpack(reader, &dir, Some(&name), Some(writer.as_raw_fd()))?;
                    let written = write_tar(&src, &name, follow, File::from(writer));
                    let unpacked = child.finish();
                    unpacked.and(written.map_err(Error::io(format!(
                        "copy {} into the container",
                        src.display()
                    ))))
                }
                Location::Container { .. } => Err(between_containers()),
            }
        }
        _ => Err(Error::invalid(
            "cp",
            format!("{source} {destination}"),
            "one side must be in a container, written CONTAINER:PATH",
        )),
    }
}

/// Where a copy lands, by docker's rules: the directory to unpack into and
/// the name the source takes there (`.` for `SRC/.`, whose contents go
/// into an existing directory).
fn plan(
    source: Kind,
    source_text: &str,
    dest: Kind,
    dest_path: &Path,
) -> Result<(PathBuf, String)> {
    let shown = dest_path.display().to_string();
    let wants_directory = shown.ends_with('/');
    match dest {
        Kind::Directory => Ok((dest_path.to_owned(), archive_name(source_text))),
        Kind::Other if source == Kind::Directory => Err(Error::invalid(
            "destination",
            shown,
            "cannot copy a directory onto a file",
        )),
        Kind::Other if wants_directory => Err(Error::invalid(
            "destination",
            shown,
            "it is not a directory",
        )),
        Kind::Missing {
            parent_exists: false,
        } => Err(Error::not_found(
            "destination",
            shown,
            "its parent directory does not exist",
        )),
        Kind::Missing { .. } if wants_directory && source != Kind::Directory => {
            Err(Error::not_found(
                "destination",
                shown,
                "the directory does not exist (a file is copied into an existing one)",
            ))
        }
        Kind::Missing { .. } | Kind::Other => Ok((parent(dest_path), base_name(dest_path))),
    }
}

/// The name a source takes in the archive: its last component, or `.` when
/// it ends in `/.` (its contents, as docker reads that suffix).
fn archive_name(path: &str) -> String {
    if path.ends_with("/.") || path == "." {
        return ".".to_owned();
    }
    base_name(Path::new(path))
}

fn base_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".to_owned())
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ if path.is_absolute() => PathBuf::from("/"),
        _ => PathBuf::from("."),
    }
}

/// Writes `path` as a tar stream whose top entry is called `name`.
/// Symbolic links inside are archived as links, never followed.
///
/// Every file's data is exactly the size its header gives, read through a
/// bound and checked: the tar crate's own `append_file` copies until the
/// file ends, so a file that grows after its header is written (or one
/// whose size the kernel states falsely, as `/proc` files do) would run on
/// into what the reader takes for further entries, chosen by whoever wrote
/// the file. From a container, that is the container.
fn write_tar(path: &Path, name: &str, follow: bool, out: impl Write) -> std::io::Result<()> {
    let mut tar = tar::Builder::new(out);
    let path = if follow && std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        std::fs::canonicalize(path)?
    } else {
        path.to_owned()
    };
    append_tree(&mut tar, &path, Path::new(name))?;
    tar.into_inner()?.flush()
}

/// Appends `path` as `name`, then, for a directory, what it holds.
fn append_tree(
    tar: &mut tar::Builder<impl Write>,
    path: &Path,
    name: &Path,
) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(path)?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&meta, tar::HeaderMode::Complete);
    let kind = meta.file_type();
    if kind.is_symlink() {
        header.set_size(0);
        return tar.append_link(&mut header, name, std::fs::read_link(path)?);
    }
    if kind.is_file() {
        let size = meta.len();
        header.set_size(size);
        let file = std::fs::File::open(path)?;
        return tar.append_data(&mut header, name, Exactly::new(file, size, path));
    }
    // A directory, or a node with no data (fifo, device, socket).
    header.set_size(0);
    tar.append_data(&mut header, name, std::io::empty())?;
    if kind.is_dir() {
        let mut children: Vec<_> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<std::io::Result<_>>()?;
        children.sort();
        for child in children {
            append_tree(tar, &path.join(&child), &name.join(&child))?;
        }
    }
    Ok(())
}

/// A reader that yields exactly `left` bytes of `inner`, and fails if it
/// ends sooner (a file that shrank after its header was written).
struct Exactly<'a, R> {
    inner: std::io::Take<R>,
    left: u64,
    path: &'a Path,
}

impl<'a, R: Read> Exactly<'a, R> {
    fn new(inner: R, size: u64, path: &'a Path) -> Self {
        Exactly {
            inner: inner.take(size),
            left: size,
            path,
        }
    }
}

impl<R: Read> Read for Exactly<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(std::io::Error::other(format!(
                "{} shrank while it was copied",
                self.path.display()
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Unpacks a tar stream into `dir`, merging into directories there and
/// replacing files. The stream is not trusted: every entry must lie below
/// `top` (the name the copy was given; `.` for a directory's contents),
/// and the tar crate refuses any that would land outside `dir` (`..`, or
/// through a link). With `owner`, each entry made is given to those ids
/// (the container's root) and keeps its mode whole; without (the host's
/// side), it belongs to whoever runs `cp`, and setuid and setgid bits are
/// dropped, so that no container can leave a setuid-root file on the host.
fn unpack(
    input: impl Read,
    dir: &Path,
    top: Option<&str>,
    owner: Option<(u32, u32)>,
) -> Result<()> {
    // The tar crate wraps the cause in two layers of "failed to unpack".
    let failed = |e: std::io::Error| {
        let mut text = format!("unpack into {}: {e}", dir.display());
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        Error::System(text)
    };
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(owner.is_some());
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(failed)? {
        let mut entry = entry.map_err(failed)?;
        let raw = entry.path().map_err(failed)?.into_owned();
        let Some(relative) = inside(&raw) else {
            return Err(outside(&raw));
        };
        if let Some(top) = top.filter(|t| *t != ".") {
            if relative.components().next() != Some(std::path::Component::Normal(top.as_ref())) {
                return Err(outside(&raw));
            }
        }
        let path = dir.join(&relative);
        // What was there before keeps its owner (a directory merged into).
        let existed = relative.as_os_str().is_empty() || std::fs::symlink_metadata(&path).is_ok();
        if !entry.unpack_in(dir).map_err(failed)? {
            return Err(outside(&raw));
        }
        if let (Some((uid, gid)), false) = (owner, existed) {
            nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                &path,
                Some(uid.into()),
                Some(gid.into()),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(Error::sys(format!(
                "give {} to the container's root",
                path.display()
            )))?;
            // chown clears setuid and setgid: the mode goes back on after.
            if !entry.header().entry_type().is_symlink() {
                let mode = entry.header().mode().map_err(failed)? & 0o7777;
                nix::sys::stat::fchmodat(
                    nix::fcntl::AT_FDCWD,
                    &path,
                    nix::sys::stat::Mode::from_bits_truncate(mode),
                    // Not a link (checked above); a link made since leads only
                    // inside the root this side is confined to.
                    nix::sys::stat::FchmodatFlags::FollowSymlink,
                )
                .map_err(Error::sys(format!("set the mode of {}", path.display())))?;
            }
        }
    }
    Ok(())
}

/// An entry's path as the tar crate places it: a leading `/` and `.`
/// components dropped; `None` with a `..`.
fn inside(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut relative = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return None,
        }
    }
    Some(relative)
}

fn outside(path: &Path) -> Error {
    Error::invalid(
        "archive entry",
        path.display().to_string(),
        "a path below what is being copied",
    )
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(Error::sys("create a pipe"))
}

/// A container's filesystem, reached from a forked child.
struct ContainerSide {
    record: Record,
    running: bool,
    /// Where a stopped container's overlay is mounted in the child.
    view: PathBuf,
    upper: PathBuf,
    work: PathBuf,
    /// Host ids of the container's root: what a file copied in belongs to.
    root_ids: (u32, u32),
    /// Writes are wanted: a stopped container's overlay is mounted writable.
    writable: bool,
    /// For a stopped container: a lock on its directory, so that two
    /// copies never mount its layers at once.
    _lock: Option<nix::fcntl::Flock<File>>,
}

impl ContainerSide {
    fn open(store: &Store, query: &str, writable: bool) -> Result<ContainerSide> {
        let record = store.resolve(query)?;
        let running = record.live_status() == Status::Running;
        if !running && record.bundle.is_some() {
            return Err(Error::conflict(
                "container",
                query,
                "it is a stopped OCI container: its files are in its bundle's rootfs",
            ));
        }
        if !running && record.status == Status::Created && record.monitor_alive() {
            return Err(Error::conflict(
                "container",
                query,
                "it is still starting: try again in a moment",
            ));
        }
        let dir = store.container_dir(&record.id);
        // A running container's side joins its user namespace, where its
        // root is 0; a stopped one's works from the host's, with its ids.
        let root_ids = match record.userns {
            Some(map) if !running => (map.uid, map.gid),
            _ => (0, 0),
        };
        let lock = if running {
            None
        } else {
            let held = store.hold_dir(&record.id)?;
            // Its restart policy (or `restart`) may have started it since:
            // its layers are then a live overlay's, not ours to mount.
            let now = store.load(&record.id)?;
            if now.live_status() != Status::Exited || now.is_restarting() {
                return Err(Error::conflict(
                    "container",
                    query,
                    "it is restarting (its restart policy, or `restart`): try again once it runs",
                ));
            }
            Some(held)
        };
        Ok(ContainerSide {
            _lock: lock,
            running,
            view: dir.join("merged"),
            upper: dir.join("upper"),
            work: dir.join("work"),
            root_ids,
            writable,
            record,
        })
    }

    /// A container path, which must be absolute (docker reads a relative
    /// one from `/` too; mydocker asks for what it means).
    fn path(&self, path: &str) -> Result<PathBuf> {
        if !path.starts_with('/') {
            return Err(Error::invalid(
                "container path",
                path,
                "expected an absolute path inside the container, such as /etc/hosts",
            ));
        }
        Ok(PathBuf::from(path))
    }

    fn probe(&self, path: &Path, follow: bool) -> Result<Kind> {
        let path = path.to_owned();
        let code = self
            .spawn(None, move || Ok(Kind::of(&path, follow).code()))?
            .finish_code()?;
        Kind::from_code(code).ok_or_else(|| {
            Error::System(format!(
                "cp: unexpected answer {code} from the container's side"
            ))
        })
    }

    /// Writes the tar of `path` to `out` from a child; `unused` is a
    /// descriptor the child must close (the parent's end of the pipe).
    fn spawn_tar(
        &self,
        path: &Path,
        name: &str,
        follow: bool,
        out: OwnedFd,
        unused: Option<RawFd>,
    ) -> Result<Confined> {
        let (path, name) = (path.to_owned(), name.to_owned());
        self.spawn(unused, move || {
            write_tar(&path, &name, follow, File::from(out))
                .map(|()| 0)
                .map_err(|e| format!("archive {}: {e}", path.display()))
        })
    }

    /// Unpacks the tar stream on `input` into `dir` from a child, every
    /// entry below `top` when given; `unused` as for [`Self::spawn_tar`].
    fn spawn_unpack(
        &self,
        input: OwnedFd,
        dir: &Path,
        top: Option<&str>,
        unused: Option<RawFd>,
    ) -> Result<Confined> {
        let (dir, top, owner) = (dir.to_owned(), top.map(str::to_owned), self.root_ids);
        self.spawn(unused, move || {
            unpack(File::from(input), &dir, top.as_deref(), Some(owner))
                .map(|()| 0)
                .map_err(|e| e.to_string())
        })
    }

    /// Runs `body` in a forked child inside the container's filesystem;
    /// its `Ok` is the child's exit code, its `Err` the message the parent
    /// reports. The descriptors `body` owns are closed in the parent as the
    /// closure is dropped there; `unused`, the parent's end of a pipe the
    /// child also got, is closed in the child, or neither would see the
    /// other end close.
    fn spawn(
        &self,
        unused: Option<RawFd>,
        body: impl FnOnce() -> std::result::Result<i32, String>,
    ) -> Result<Confined> {
        let (error_reader, error_writer) = pipe()?;
        let parent = nix::unistd::getpid();
        // SAFETY: the `mydocker` command is single-threaded here; the child
        // only enters the container's filesystem and runs `body`.
        match unsafe { fork() }.map_err(Error::sys("fork the container's side of cp"))? {
            ForkResult::Child => {
                drop(error_reader);
                if let Some(fd) = unused {
                    // SAFETY: the child's copy of the parent's end, unused here.
                    unsafe { libc::close(fd) };
                }
                // A killed `cp` takes its child along, and with it the
                // child's mount namespace and any overlay mounted there.
                let orphaned = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .is_err()
                    || nix::unistd::getppid() != parent;
                let outcome = if orphaned {
                    Err("cp ended before its container side started".to_owned())
                } else {
                    self.enter().and_then(|()| body())
                };
                let code = match outcome {
                    Ok(code) => code,
                    Err(message) => {
                        let _ = File::from(error_writer).write_all(message.as_bytes());
                        1
                    }
                };
                // SAFETY: leaves without unwinding into the parent's code.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => {
                drop(error_writer);
                drop(body);
                Ok(Confined {
                    pid: child,
                    errors: File::from(error_reader),
                    name: self.record.name.clone(),
                })
            }
        }
    }

    /// In the child: makes `/` the container's root.
    fn enter(&self) -> std::result::Result<(), String> {
        use nix::sched::CloneFlags;
        if self.running {
            let open = |kind: &str| {
                File::open(format!("/proc/{}/ns/{kind}", self.record.pid))
                    .map_err(|e| format!("open the container's {kind} namespace: {e}"))
            };
            let mount_ns = open("mnt")?;
            let user_ns = self.record.userns.map(|_| open("user")).transpose()?;
            // The pid may have been reused between the check and the open.
            // (Checked before joining: inside, /proc is the container's.)
            if !crate::store::process_is(self.record.pid, self.record.pid_start) {
                return Err("the container stopped while cp was starting".to_owned());
            }
            // In a container with its own user namespace, host root owns
            // nothing its filesystem can record (files would fail with
            // EOVERFLOW): become the container's root first, as nsenter does.
            if let Some(user_ns) = user_ns {
                nix::sched::setns(&user_ns, CloneFlags::CLONE_NEWUSER)
                    .map_err(|e| format!("enter the container's user namespace: {e}"))?;
                let root = (nix::unistd::Gid::from_raw(0), nix::unistd::Uid::from_raw(0));
                // The host's groups (gid 0 among them) must not come along.
                nix::unistd::setgroups(&[])
                    .and_then(|()| nix::unistd::setresgid(root.0, root.0, root.0))
                    .and_then(|()| nix::unistd::setresuid(root.1, root.1, root.1))
                    .map_err(|e| format!("become the container's root: {e}"))?;
            }
            // Joining a mount namespace makes its root our `/` and `.`.
            nix::sched::setns(&mount_ns, CloneFlags::CLONE_NEWNS)
                .map_err(|e| format!("enter the container's mount namespace: {e}"))?;
            return std::env::set_current_dir("/").map_err(|e| e.to_string());
        }
        crate::rootfs::private_mount_namespace().map_err(|f| f.message)?;
        // Reading needs no work directory: the upper layer is then one more
        // lower layer of a read-only view, as `commit` mounts it.
        let (options, flags) = if self.writable {
            (
                format!(
                    "lowerdir={},upperdir={},workdir={}",
                    self.record.lower.display(),
                    self.upper.display(),
                    self.work.display()
                ),
                nix::mount::MsFlags::empty(),
            )
        } else {
            (
                format!(
                    "lowerdir={}:{}",
                    self.upper.display(),
                    self.record.lower.display()
                ),
                nix::mount::MsFlags::MS_RDONLY,
            )
        };
        nix::mount::mount(
            Some("overlay"),
            &self.view,
            Some("overlay"),
            flags,
            Some(options.as_str()),
        )
        .map_err(|e| format!("mount the container's filesystem ({options}): {e}"))?;
        nix::unistd::chroot(&self.view).map_err(|e| format!("enter the container's root: {e}"))?;
        std::env::set_current_dir("/").map_err(|e| e.to_string())
    }
}

/// A child working inside a container's filesystem.
struct Confined {
    pid: Pid,
    errors: File,
    name: String,
}

impl Confined {
    /// Ends the child at once (the copy has failed on our side).
    fn abort(&self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
    }

    /// Waits for the child; its failure is reported in its own words.
    fn finish(self) -> Result<()> {
        self.finish_code().and_then(|code| match code {
            0 => Ok(()),
            code => Err(Error::System(format!(
                "cp in container {}: its side exited with {code}",
                self.name
            ))),
        })
    }

    fn finish_code(&self) -> Result<i32> {
        let mut message = String::new();
        let _ = (&self.errors).read_to_string(&mut message);
        let status = loop {
            match waitpid(self.pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other.map_err(Error::sys("wait for the container's side of cp"))?,
            }
        };
        match status {
            WaitStatus::Exited(_, _) if !message.is_empty() => Err(Error::System(format!(
                "cp in container {}: {message}",
                self.name
            ))),
            WaitStatus::Exited(_, code) => Ok(code),
            other => Err(Error::System(format!(
                "cp in container {}: its side ended with {other:?}",
                self.name
            ))),
        }
    }
}

/// A copy of one of our standard descriptors, for a child to own.
fn stdio_fd(fd: RawFd) -> Result<OwnedFd> {
    // SAFETY: dup of a standard descriptor; the result is checked, then owned.
    let copy = unsafe { libc::dup(fd) };
    if copy < 0 {
        return Err(Error::sys("duplicate a standard descriptor")(
            nix::errno::Errno::last(),
        ));
    }
    // SAFETY: a descriptor we just made and nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_is_a_container_path_only_before_a_colon_without_slash() {
        assert_eq!(Location::parse("-"), Location::Stream);
        assert_eq!(
            Location::parse("web:/etc/hosts"),
            Location::Container {
                container: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(Location::parse("./a:b"), Location::Host("./a:b".into()));
        assert_eq!(Location::parse("/tmp/x"), Location::Host("/tmp/x".into()));
        assert_eq!(Location::parse(":x"), Location::Host(":x".into()));
    }

    #[test]
    fn a_file_gives_exactly_the_size_its_header_states() {
        let path = Path::new("/f");
        let mut grown = String::new();
        Exactly::new(&b"abcdef"[..], 3, path)
            .read_to_string(&mut grown)
            .unwrap();
        assert_eq!(grown, "abc", "what a file grew by is never read");
        let mut shrunk = String::new();
        let error = Exactly::new(&b"ab"[..], 3, path)
            .read_to_string(&mut shrunk)
            .unwrap_err();
        assert!(error.to_string().contains("shrank"), "{error}");
    }

    /// A tar stream with one file entry per (name, mode).
    fn stream(entries: &[(&str, u32)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, mode) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(2);
            header.set_mode(*mode);
            header.set_cksum();
            tar.append_data(&mut header, name, &b"x\n"[..]).unwrap();
        }
        tar.into_inner().unwrap()
    }

    #[test]
    fn an_entry_outside_what_is_copied_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = stream(&[("copied/a", 0o644), ("elsewhere/b", 0o644)]);
        let error = unpack(&bytes[..], dir.path(), Some("copied"), None).unwrap_err();
        assert!(error.to_string().contains("elsewhere/b"), "{error}");
        assert!(dir.path().join("copied/a").exists(), "the control entry");
        assert!(!dir.path().join("elsewhere").exists());
        // The builder refuses `..`; a stream from a container need not.
        let mut header = tar::Header::new_gnu();
        let name = b"copied/../../x";
        header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        header.set_size(0);
        header.set_cksum();
        let mut climbing = tar::Builder::new(Vec::new());
        climbing.append(&header, std::io::empty()).unwrap();
        let climbing = climbing.into_inner().unwrap();
        assert!(unpack(&climbing[..], dir.path(), Some("copied"), None).is_err());
        assert!(!dir.path().parent().unwrap().join("x").exists());
    }

    #[test]
    fn the_hosts_side_drops_setuid_and_the_containers_keeps_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bytes = stream(&[("tool", 0o4755)]);
        unpack(&bytes[..], dir.path(), Some("tool"), None).unwrap();
        let mode = std::fs::metadata(dir.path().join("tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o755);
        let inside = tempfile::tempdir().unwrap();
        unpack(&bytes[..], inside.path(), Some("tool"), Some((0, 0))).unwrap();
        let mode = std::fs::metadata(inside.path().join("tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o4755);
    }

    #[test]
    fn the_destination_decides_the_name_as_under_docker() {
        let missing = Kind::Missing {
            parent_exists: true,
        };
        let dest = Path::new("/data/new");
        // Into an existing directory, under the source's own name.
        assert_eq!(
            plan(Kind::Other, "/etc/hosts", Kind::Directory, dest).unwrap(),
            (dest.to_owned(), "hosts".into())
        );
        // The contents of a directory, with `/.`.
        assert_eq!(
            plan(Kind::Directory, "/etc/.", Kind::Directory, dest).unwrap(),
            (dest.to_owned(), ".".into())
        );
        // A new name.
        assert_eq!(
            plan(Kind::Directory, "/etc", missing, dest).unwrap(),
            (PathBuf::from("/data"), "new".into())
        );
        assert_eq!(
            plan(Kind::Other, "/etc/hosts", Kind::Other, dest).unwrap(),
            (PathBuf::from("/data"), "new".into())
        );
        assert!(plan(Kind::Directory, "/etc", Kind::Other, dest).is_err());
        assert!(plan(Kind::Other, "/a", missing, Path::new("/data/new/")).is_err());
        let orphan = Kind::Missing {
            parent_exists: false,
        };
        assert!(plan(Kind::Other, "/a", orphan, dest).is_err());
    }
}
