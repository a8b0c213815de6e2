//! `exec`: a new process inside a running container, in every one of its
//! namespaces and its cgroup, with argv passed as it is (no shell between).

use std::os::fd::AsFd;

use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{chdir, fork, ForkResult};

use crate::error::{Error, Result};
use crate::init::{exec_in_path, to_cstrings};
use crate::store::{Status, Store};
use crate::syscall::{Linux, Syscall};
use crate::tty;

/// What to run, and how.
pub struct ExecRequest {
    pub args: Vec<String>,
    /// Extra `KEY=VALUE` pairs on top of the container's environment.
    pub env: Vec<(String, String)>,
    pub workdir: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    /// OCI's `exec`: the process's own confinement (its capability sets and
    /// user, the container's seccomp profile) and rlimits, in place of the
    /// record's docker-shaped ones.
    pub oci: Option<(
        crate::spec::security::Security,
        crate::spec::OciParts,
        Vec<crate::spec::rlimit::Rlimit>,
    )>,
    /// Return once the command runs, leaving it to our parent (a
    /// subreaper such as conmon) instead of waiting for it.
    pub detach: bool,
    /// Where to write the command's pid before waiting or returning.
    pub pid_file: Option<std::path::PathBuf>,
    /// Hand the terminal's master to this socket instead of relaying it.
    pub console_socket: Option<std::path::PathBuf>,
}

/// The namespaces entered, in order. The mount namespace comes last: once
/// in it, the host's `/proc` and `/sys/fs/cgroup` paths are out of sight.
const NAMESPACES: [(&str, CloneFlags); 6] = [
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("pid", CloneFlags::CLONE_NEWPID),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Runs the request in the container and returns its exit code (128+N for
/// death by signal N). Must be called before any thread exists: `setns`
/// into a mount namespace refuses a process that shares its filesystem
/// context with threads.
pub fn exec(store: &Store, query: &str, request: &ExecRequest) -> Result<i32> {
    let record = store.resolve(query)?;
    if record.live_status() != Status::Running {
        return Err(Error::conflict(
            "container",
            query,
            "it is not running: `mydocker ps -a` shows its state",
        ));
    }
    // The command would join the frozen cgroup and stop at once, as runc
    // and docker refuse to let it.
    if crate::cgroup::is_frozen(&record.cgroups) {
        return Err(Error::conflict(
            "container",
            query,
            "it is paused: unpause it first",
        ));
    }
    if let Some(dir) = request.workdir.as_deref().filter(|d| !d.starts_with('/')) {
        return Err(Error::invalid(
            "exec -w",
            dir,
            "expected an absolute path inside the container, such as /app",
        ));
    }
    if request.args.is_empty() {
        return Err(spec::Error::NoCommand(format!("container {query}")).into());
    }
    // Every handle first, while the host's /proc is still ours to read. A
    // user namespace goes first: joining it gives us the capabilities that
    // joining the namespaces it owns requires.
    let user = record
        .userns
        .is_some()
        .then_some(("user", CloneFlags::CLONE_NEWUSER));
    // A rootless container's namespace forbids setgroups (see userns).
    let may_setgroups = std::fs::read_to_string(format!("/proc/{}/setgroups", record.pid))
        .is_ok_and(|s| s.trim() == "allow");
    // A container made without a mount namespace (an OCI configuration may
    // ask that) shares its caller's, and init entered its root with
    // chroot: joining the namespace would leave the command at the host's
    // root, so it follows init's instead. Opened first, with the
    // namespaces, and init checked alive after: all are that process's.
    let in_callers_table = record
        .bundle
        .as_ref()
        .is_some_and(|b| b.in_callers_mount_table);
    let init_root = match in_callers_table {
        true => {
            let root = format!("/proc/{}/root", record.pid);
            Some(
                open(
                    root.as_str(),
                    OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(Error::sys(format!("open {root}")))?,
            )
        }
        false => None,
    };
    let mut handles = Vec::new();
    for (name, flag) in user.into_iter().chain(NAMESPACES) {
        let path = format!("/proc/{}/ns/{name}", record.pid);
        let fd = open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Error::sys(format!("open {path}")))?;
        handles.push((name, flag, fd));
    }
    if !crate::store::process_is(record.pid, record.pid_start) {
        return Err(Error::conflict(
            "container",
            query,
            "its init exited while exec was joining it",
        ));
    }
    // The command joins the container's cgroups, so that it counts against
    // its limits; mydocker itself stays out, or stopping the container would
    // kill this process too. The files are opened now, while the host's
    // /sys/fs/cgroup is still in sight, and written once the child exists.
    let mut memberships = Vec::new();
    for dir in &record.cgroups {
        let path = dir.join("cgroup.procs");
        memberships.push(
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(Error::io(format!("open {}", path.display())))?,
        );
    }
    // The pid file and the console socket are host paths: reached before
    // the container's mount namespace hides them.
    let pid_dir = match &request.pid_file {
        Some(file) => {
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
            let dir = dir.unwrap_or(std::path::Path::new("."));
            Some(
                open(
                    dir,
                    OFlag::O_DIRECTORY | OFlag::O_PATH | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(Error::sys(format!(
                    "open the pid file's directory {}",
                    dir.display()
                )))?,
            )
        }
        None => None,
    };
    let console = match &request.console_socket {
        Some(socket) => Some(std::os::unix::net::UnixStream::connect(socket).map_err(
            Error::io(format!(
                "connect to the console socket {}",
                socket.display()
            )),
        )?),
        None => None,
    };
    for (name, flag, fd) in &handles {
        setns(fd.as_fd(), *flag).map_err(Error::sys(format!(
            "enter the container's {name} namespace"
        )))?;
    }
    drop(handles);
    if let Some(root) = init_root {
        nix::unistd::fchdir(&root).map_err(Error::sys("enter the container's root"))?;
        nix::unistd::chroot(".").map_err(Error::sys("chroot into the container's root"))?;
        nix::unistd::chdir("/").map_err(Error::sys("chdir /"))?;
    }
    let mut env: Vec<(String, String)> = record
        .env
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for (key, value) in &request.env {
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => env.push((key.clone(), value.clone())),
        }
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let env: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if let Some(bad) = request.args.iter().chain(&env).find(|s| s.contains('\0')) {
        return Err(Error::invalid(
            "exec argument",
            bad,
            "a string without NUL bytes (the kernel ends strings there)",
        ));
    }
    let (argv, envp) = (
        to_cstrings(&request.args).map_err(|f| Error::System(f.message))?,
        to_cstrings(&env).map_err(|f| Error::System(f.message))?,
    );
    let workdir = request.workdir.clone().unwrap_or_else(|| "/".into());
    // The terminal comes from the container's own devpts, now visible as
    // /dev/ptmx. The child opens it, once it is in the container's cgroup
    // (whose device rules then apply), and sends the master back: the
    // container's root may have made /dev/ptmx whatever it likes.
    let pty_channel = if request.tty {
        Some(crate::channel::pair().map_err(Error::sys("create the terminal channel"))?)
    } else {
        None
    };
    // The child waits on this pipe until it has been moved into the cgroups.
    let (go_read, go_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(Error::sys("create a pipe"))?;
    // SAFETY: single-threaded (see above), so the child may run Rust code.
    match unsafe { fork() }.map_err(Error::sys("fork"))? {
        ForkResult::Child => {
            // Not dumpable until execve resets it: a process of the container
            // (same uid, same capabilities once we are confined) must not
            // open /proc/<pid>/exe, which is the host's mydocker binary
            // (runc's CVE-2019-5736).
            let _ = nix::sys::prctl::set_dumpable(false);
            drop(go_write);
            let mut byte = [0u8; 1];
            if !matches!(nix::unistd::read(&go_read, &mut byte), Ok(1)) {
                // SAFETY: leaving the forked child without running destructors.
                unsafe { libc::_exit(crate::error::EXIT_RUNTIME) }
            }
            // Confinement comes last, just before execve, as for init.
            let failure = match open_terminal(pty_channel.as_ref().map(|(_, child)| child))
                .and_then(|slave| prepare_child(&workdir, request, slave))
                .and_then(|()| confine_like_the_container(&record, request, may_setgroups))
            {
                Ok(()) => exec_in_path(&request.args[0], &argv, &envp, &path),
                Err(failure) => failure,
            };
            eprintln!("mydocker: {}", failure.message);
            // SAFETY: leaving the forked child without running destructors.
            unsafe { libc::_exit(failure.exit_code) }
        }
        ForkResult::Parent { child } => {
            drop(go_read);
            for mut membership in memberships {
                use std::io::Write;
                if let Err(e) = membership.write_all(child.as_raw().to_string().as_bytes()) {
                    let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                    let _ = waitpid(child, None);
                    return Err(Error::io("move the command into the container's cgroup")(e));
                }
            }
            nix::unistd::write(&go_write, &[1]).map_err(Error::sys("release the command"))?;
            drop(go_write);
            let pty = match pty_channel {
                Some((ours, theirs)) => {
                    drop(theirs);
                    match ours.recv::<crate::channel::Report>() {
                        Ok(Some((crate::channel::Report::PtyMaster, mut fds)))
                            if fds.len() == 1 =>
                        {
                            Some((fds.pop().expect("one fd"), ()))
                        }
                        // The child failed before it had a terminal and says why.
                        _ => None,
                    }
                }
                None => None,
            };
            if let (Some(dir), Some(file)) = (&pid_dir, &request.pid_file) {
                write_pid_file(dir, file, child.as_raw())?;
            }
            let pty = match (pty, &console) {
                (Some((master, _)), Some(socket)) => {
                    tty::send_to_console(socket, &master)
                        .map_err(Error::io("send the terminal to the console socket"))?;
                    None
                }
                (pty, _) => pty,
            };
            if request.detach {
                return Ok(0);
            }
            let status = match pty {
                Some((master, _)) => tty::relay_until_exit(master, child, request.interactive),
                None => loop {
                    match waitpid(child, None) {
                        Err(nix::Error::EINTR) => continue,
                        other => break other.map_err(Error::sys("wait for the command"))?,
                    }
                },
            };
            Ok(match status {
                WaitStatus::Exited(_, code) => code,
                WaitStatus::Signaled(_, signal, _) => 128 + signal as i32,
                _ => crate::error::EXIT_RUNTIME,
            })
        }
    }
}

/// Writes `pid` to `file` in `dir` (a descriptor opened while the host's
/// paths were in sight): a temporary name, then a rename, so that a reader
/// never sees half of it.
fn write_pid_file(dir: &std::os::fd::OwnedFd, file: &std::path::Path, pid: i32) -> Result<()> {
    let name = file
        .file_name()
        .ok_or_else(|| Error::invalid("--pid-file", file.display().to_string(), "a file name"))?;
    let temp = format!(".{}.{}", name.to_string_lossy(), std::process::id());
    let fd = nix::fcntl::openat(
        dir,
        temp.as_str(),
        // Never through a planted link, never into a file that was there.
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(Error::sys(format!(
        "create the pid file {}",
        file.display()
    )))?;
    let written = nix::unistd::write(&fd, pid.to_string().as_bytes())
        .map_err(Error::sys(format!("write the pid file {}", file.display())));
    drop(fd);
    written?;
    nix::fcntl::renameat(dir, temp.as_str(), dir, name).map_err(Error::sys(format!(
        "rename the pid file into {}",
        file.display()
    )))
}

/// Gives the forked child the container's root (in its user namespace),
/// capabilities, no_new_privs and seccomp filter: an exec'd command is no
/// more privileged than the container's own processes.
fn confine_like_the_container(
    record: &crate::store::Record,
    request: &ExecRequest,
    may_setgroups: bool,
) -> std::result::Result<(), crate::setup::Failure> {
    if record.userns.is_some() {
        Linux.become_namespace_root(may_setgroups)?;
    }
    if let Some((security, parts, rlimits)) = &request.oci {
        crate::rlimits::apply(rlimits)?;
        return crate::security::confine(&Linux, security, &record.user, Some(parts));
    }
    crate::rlimits::apply(&record.rlimits)?;
    record.security.map_or(Ok(()), |s| {
        crate::security::confine(&Linux, &s, &record.user, None)
    })
}

/// Opens a terminal in the container (the child, in its cgroup) and sends
/// the master to the parent; returns the slave's path.
fn open_terminal(
    channel: Option<&crate::channel::Channel>,
) -> std::result::Result<Option<String>, crate::setup::Failure> {
    use crate::setup::Failure;
    let Some(channel) = channel else {
        return Ok(None);
    };
    let (master, slave) =
        tty::open_pty().map_err(Failure::sys("open a terminal in the container"))?;
    channel
        .send(
            &crate::channel::Report::PtyMaster,
            &[std::os::fd::AsRawFd::as_raw_fd(&master)],
        )
        .map_err(Failure::sys("send the terminal to mydocker"))?;
    Ok(Some(slave))
}

/// The forked child's terminal or stdin, and its working directory.
fn prepare_child(
    workdir: &str,
    request: &ExecRequest,
    slave: Option<String>,
) -> std::result::Result<(), crate::setup::Failure> {
    use crate::setup::Failure;
    if let Some(slave) = slave {
        tty::become_terminal_session(&slave)
            .map_err(|e| Failure::runtime(format!("attach the terminal {slave}: {e}")))?;
    } else if !request.interactive {
        if let Ok(null) = open("/dev/null", OFlag::O_RDONLY, Mode::empty()) {
            let _ = nix::unistd::dup2_stdin(&null);
        }
    }
    chdir(workdir).map_err(Failure::sys(format!("chdir to {workdir} in the container")))
}
