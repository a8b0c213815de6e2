//! Init: the child side of the handshake, from the release message to `execve`.
//!
//! The child is cloned into its new namespaces and then blocks on the channel
//! until the parent has placed it in its cgroup. Only then does it build the
//! container around itself and exec the user's command, which replaces it. Any
//! failure is reported to the parent as a [`Report::Failed`] with the exit code
//! docker would use, and the child exits without running destructors.

use std::convert::Infallible;
use std::ffi::CString;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{chdir, dup2_stdin, execve, sethostname, setsid};

use crate::channel::{Channel, Detach, InitConfig, Report};
use crate::error::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_RUNTIME};
use crate::setup::Failure;
use crate::syscall::{Linux, Syscall};
use crate::{rootfs, security, Fault};

/// The body of the cloned child. Never returns: it execs or exits.
pub fn main(channel: &Channel) -> ! {
    let failure = match prepare_and_exec(channel) {
        Ok(never) => match never {},
        Err(failure) => failure,
    };
    if !failure.message.is_empty() {
        let _ = channel.send(
            &Report::Failed {
                exit_code: failure.exit_code,
                message: failure.message,
                kernel_lacks: failure.kernel_lacks,
            },
            &[],
        );
    }
    // SAFETY: _exit ends this process at once; the parent's state, which we
    // share copy-on-write, must not be torn down by destructors here.
    unsafe { libc::_exit(failure.exit_code) }
}

fn prepare_and_exec(channel: &Channel) -> Result<Infallible, Failure> {
    // If the parent dies, so do we (and, as PID 1, the whole namespace).
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(Failure::sys("set the parent-death signal"))?;
    let config: InitConfig = match channel.recv() {
        Ok(Some((config, _))) => config,
        // The parent went away or gave up before releasing us: leave quietly.
        _ => return Err(Failure::quiet()),
    };
    // The exec fifo is reopened for writing through /proc/self/fd; this
    // handle on that directory outlives the switch into a root that may
    // mount no /proc at all.
    let fd_dir = match config.start_fifo {
        Some(_) => Some(
            open(
                "/proc/self/fd",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(Failure::sys("open /proc/self/fd"))?,
        ),
        None => None,
    };
    // Existing namespaces first: a mount namespace joined is the one the
    // root is built in. The paths are opened before any is joined, since
    // joining a mount namespace changes what a path names.
    if let Some(parts) = &config.oci {
        join_namespaces(&parts.join_namespaces)?;
    }
    enter_cgroup(&Linux, &config)?;
    if config.oci.is_some() && config.new_net_ns {
        // A new network namespace has only lo, and down; runc brings it
        // up, and podman's `--network none` expects that.
        loopback_up()?;
    }
    if let Some(name) = &config.hostname {
        sethostname(name).map_err(Failure::sys(format!("set hostname {name:?}")))?;
    }
    // Device nodes and mount points must get exactly the modes we ask for.
    umask(Mode::empty());
    let keep_shared = config.faults.has(Fault::KeepSharedPropagation);
    // An OCI configuration may ask for no mount namespace (runtime-tools'
    // linux_ns_itype does): the caller's mount table is the container's.
    let in_callers_mount_ns = config.oci.is_some() && !config.new_mount_ns;
    if !keep_shared && config.new_mount_ns {
        // Before the overlay and the volumes are mounted: none of them may
        // propagate back to the host.
        rootfs::make_private()?;
    }
    if let Some(options) = &config.overlay {
        rootfs::mount_overlay(&config.rootfs, options, config.user_ns)?;
    }
    if let Some(lower) = &config.lower_bind {
        if in_callers_mount_ns {
            rootfs::bind_root_privately(lower, &config.rootfs)?;
        } else {
            let (none, flags) = (
                None::<&str>,
                nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
            );
            nix::mount::mount(
                Some(lower.as_str()),
                config.rootfs.as_str(),
                none,
                flags,
                none,
            )
            .map_err(Failure::sys(format!("bind {lower} as the root")))?;
        }
    }
    if config.user_ns && config.oci.is_some() {
        Linux.become_namespace_root(config.drop_groups)?;
    }
    for volume in &config.volumes {
        rootfs::bind_volume(&config.rootfs, volume)?;
    }
    match &config.oci {
        // An OCI configuration lists its mounts; only the devices are ours.
        Some(parts) => {
            let cgroup_dirs: Vec<std::path::PathBuf> = config
                .join_cgroup
                .iter()
                .filter_map(|tasks| Some(std::path::Path::new(tasks).parent()?.to_owned()))
                .collect();
            crate::mounts::make(
                std::path::Path::new(&config.rootfs),
                &parts.mounts,
                &parts.devices,
                &cgroup_dirs,
                config.user_ns,
                in_callers_mount_ns,
            )?;
            // Still outside the root, through the root's own lookup (see
            // `protect_listed`). The sysctls go first: /proc/sys may become
            // read-only. The container's /proc shows the sysctls of the
            // namespaces of whoever writes, and init is in the container's.
            let root = std::path::Path::new(&config.rootfs);
            for (key, value) in &parts.sysctl {
                let path = format!("/proc/sys/{key}");
                let file = rootfs::open_in_root(root, &path)?;
                std::fs::write(file.path(), value).map_err(Failure::io(format!(
                    "set sysctl {key} to {value:?} ({path})"
                )))?;
            }
            security::paths::protect_listed(root, &parts.masked_paths, &parts.readonly_paths)?;
        }
        None => {
            let kernel_mounts = rootfs::mount_kernel_filesystems(&config.rootfs, config.user_ns)?;
            if config.security.mask_paths {
                security::paths::mask(&kernel_mounts, &config.faults)?;
            }
            crate::mounts::make_extra(
                std::path::Path::new(&config.rootfs),
                &config.mounts,
                &config.devices,
                config.user_ns,
            )?;
        }
    }
    if in_callers_mount_ns {
        // pivot_root here would move the root of every process that shares
        // the caller's mount table.
        rootfs::chroot_into(&config.rootfs, false)?;
    } else if config.faults.enters_with_chroot() {
        rootfs::chroot_into(&config.rootfs, config.new_mount_ns && !keep_shared)?;
    } else {
        rootfs::pivot_into(&config.rootfs, config.faults.has(Fault::KeepOldRoot))?;
    }
    if let Some(parts) = &config.oci {
        if let Some(propagation) = parts.root_propagation {
            crate::mounts::set_root_propagation(propagation)?;
        }
    }
    if config.security.read_only_rootfs {
        let mounted: Vec<&str> = config
            .volumes
            .iter()
            .map(|v| v.container.as_str())
            .chain(config.mounts.iter().map(|m| m.destination.as_str()))
            .collect();
        security::paths::make_root_read_only(config.oci.is_none(), &mounted)?;
    }

    let mask = config
        .oci
        .as_ref()
        .and_then(|p| p.user.umask)
        .unwrap_or(0o022);
    umask(Mode::from_bits_truncate(mask as libc::mode_t));

    // A session of its own: terminal job control of the caller does not reach
    // the container, only the signals the parent forwards.
    if !config.tty {
        // The pty path makes its own session, with the terminal as its
        // controlling one.
        setsid().map_err(Failure::sys("setsid"))?;
    }
    for (target, fd) in config.stdio.iter().enumerate() {
        if let Some(fd) = fd {
            // SAFETY: dup2 onto 0..=2 only replaces our own stdio slots.
            Errno::result(unsafe { libc::dup2(*fd, target as i32) })
                .map_err(Failure::sys("install stdio"))?;
        }
    }
    if config.tty {
        attach_new_pty(channel, config.oci.is_some())?;
    } else if !config.interactive && config.stdio[0].is_none() {
        let null = open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Failure::sys("open /dev/null"))?;
        dup2_stdin(&null).map_err(Failure::sys("dup2 /dev/null to stdin"))?;
    }
    rootfs::ensure_dir(&config.workdir)?;
    chdir(config.workdir.as_str())
        .map_err(Failure::sys(format!("chdir to workdir {}", config.workdir)))?;
    // A path through an open descriptor (`/proc/self/fd/N`) could lead
    // outside the root; the kernel then has no path for the directory from
    // our root, and getcwd fails (runc checks the same).
    if !nix::unistd::getcwd().is_ok_and(|cwd| cwd.is_absolute()) {
        return Err(Failure::runtime(format!(
            "the workdir {} is outside the container's root",
            config.workdir
        )));
    }

    let args = to_cstrings(&config.args)?;
    let env = to_cstrings(&config.env)?;
    reset_signals()?;
    close_inherited_fds(config.preserve_fds)?;
    if config.report_setup {
        let _ = channel.send(
            &Report::SetUp {
                at: crate::timeline::now(),
            },
            &[],
        );
    }
    if config.start_fifo.is_some() {
        // A create that succeeds promises a start that can exec.
        find_command(&config.args[0], &config.path)?;
    }
    // Before the capabilities drop: raising a hard limit needs CAP_SYS_RESOURCE,
    // and so does lowering the OOM score.
    crate::rlimits::apply(&config.rlimits)?;
    if let Some(score) = config.oci.as_ref().and_then(|p| p.oom_score_adj) {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .map_err(Failure::io(format!("set oom_score_adj to {score}")))?;
    }
    security::confine(&Linux, &config.security, &config.user, config.oci.as_ref())?;
    // Taking on other ids cleared the parent-death signal for a moment (see
    // `syscall`); a launcher that died then would have sent nothing.
    if channel.peer_gone() {
        return Err(Failure::quiet());
    }
    if let (Some(fifo), Some(fd_dir)) = (config.start_fifo, &fd_dir) {
        // Confined already: whatever could fail has, while create still
        // listens; start only lets the exec happen.
        wait_for_start(channel, fd_dir, fifo)?;
    }
    if config.init_process {
        return Err(crate::reaper::run(
            || exec_in_path(&config.args[0], &args, &env, &config.path),
            || crate::reaper::close(channel),
        ));
    }
    Err(exec_in_path(&config.args[0], &args, &env, &config.path))
}

/// OCI's create/start split, init's half, once set up and confined.
///
/// Init tells create it is ready and waits for create's word that the
/// container is recorded; only then does it stop depending on create (the
/// parent-death signal), so that a create killed at any moment leaves either
/// a recorded container or none, never an init waiting for a start nobody
/// can give. Then it blocks opening the exec fifo for writing: the kernel
/// completes that open only when `start` opens the fifo for reading.
/// Meanwhile it is not dumpable: nobody may read a runtime's memory through
/// /proc (exec makes it dumpable again).
fn wait_for_start(
    channel: &Channel,
    fd_dir: &std::os::fd::OwnedFd,
    fifo: i32,
) -> Result<(), Failure> {
    let _ = nix::sys::prctl::set_dumpable(false);
    if channel.send(&Report::Ready, &[]).is_err() {
        // The launcher is gone: nobody will ever start us.
        return Err(Failure::quiet());
    }
    match channel.recv::<Detach>() {
        Ok(Some(_)) => {}
        // create gave up: its teardown (or our parent-death signal) ends us.
        _ => return Err(Failure::quiet()),
    }
    nix::sys::prctl::set_pdeathsig(None).map_err(Failure::sys("clear the parent-death signal"))?;
    // If create died after asking, it had recorded us: we are created.
    let _ = channel.send(&Report::Detached, &[]);
    let name = fifo.to_string();
    let writer = loop {
        match nix::fcntl::openat(
            fd_dir,
            name.as_str(),
            OFlag::O_WRONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Err(Errno::EINTR) => continue,
            other => break other.map_err(Failure::sys("open the exec fifo"))?,
        }
    };
    let _ = nix::unistd::write(&writer, b"0");
    let _ = nix::unistd::close(fifo);
    Ok(())
}

/// Brings up `lo` in our network namespace (SIOCSIFFLAGS, IFF_UP).
fn loopback_up() -> Result<(), Failure> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(Failure::sys("open a socket to bring lo up"))?;
    // SAFETY: an all-zero ifreq is valid; the name fits with its NUL.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    request.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as i16;
    // SAFETY: the ioctl reads the ifreq we own for the call's duration.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &request) };
    Errno::result(rc)
        .map(drop)
        .map_err(Failure::sys("bring lo up"))
}

/// Joins the namespaces an OCI configuration names by path (but the pid
/// namespace, which launch joined for init to be born in).
fn join_namespaces(joined: &[(String, String)]) -> Result<(), Failure> {
    use nix::sched::CloneFlags;
    let mut opened = Vec::new();
    for (kind, path) in joined.iter().filter(|(kind, _)| kind != "pid") {
        let flag = match kind.as_str() {
            "net" => CloneFlags::CLONE_NEWNET,
            "ipc" => CloneFlags::CLONE_NEWIPC,
            "uts" => CloneFlags::CLONE_NEWUTS,
            "mnt" => CloneFlags::CLONE_NEWNS,
            "cgroup" => CloneFlags::CLONE_NEWCGROUP,
            _ => continue,
        };
        let file = std::fs::File::open(path).map_err(Failure::io(format!(
            "open the {kind} namespace {path} to join"
        )))?;
        opened.push((flag, file, path));
    }
    // The mount namespace last: its root and working directory become ours.
    opened.sort_by_key(|(flag, _, _)| *flag == CloneFlags::CLONE_NEWNS);
    for (flag, file, path) in opened {
        nix::sched::setns(&file, flag)
            .map_err(Failure::sys(format!("join the namespace {path}")))?;
    }
    Ok(())
}

/// Finds `program` as [`exec_in_path`] would, without executing it.
fn find_command(program: &str, path: &str) -> Result<(), Failure> {
    use nix::unistd::{access, AccessFlags};
    let candidates = candidates(program, path);
    let mut denied = false;
    for candidate in &candidates {
        let is_file = std::fs::metadata(candidate).is_ok_and(|m| m.is_file());
        match access(candidate.as_str(), AccessFlags::X_OK) {
            Ok(()) if is_file => return Ok(()),
            Ok(()) | Err(Errno::EACCES) => denied = true,
            Err(_) => {}
        }
    }
    Err(missing_command(program, path, denied))
}

/// Init's first steps, in the only safe order: join the cgroup before
/// anything else (from then on init's memory and tasks count against the
/// container's limits; still as the host's root, which owns the files, even
/// inside a new user namespace), then take on the user namespace's root,
/// then unshare the cgroup namespace, whose root is thereby the container's
/// own cgroup, just joined (or cloned into).
fn enter_cgroup(sys: &impl Syscall, config: &InitConfig) -> Result<(), Failure> {
    for tasks in &config.join_cgroup {
        sys.join_cgroup(tasks)?;
    }
    // An OCI container takes on its ids once its root is bound: until then
    // init keeps the host root's credentials, with which it can reach a
    // bundle in a directory only root may search. Filesystems mounted in
    // the namespace need ids mapped in it, so no later.
    if config.user_ns && config.oci.is_none() {
        sys.become_namespace_root(config.drop_groups)?;
    }
    if config.new_cgroup_ns {
        sys.unshare_cgroup_namespace()?;
    }
    Ok(())
}

/// Gives the command the signal state of a fresh process: nothing blocked
/// (the parent blocked what it forwards) and every disposition at its
/// default. Ignored signals survive `execve`, and mydocker's Rust runtime
/// ignores SIGPIPE, which would otherwise turn `yes | head -1` into a stream
/// of EPIPE errors inside the container.
fn reset_signals() -> Result<(), Failure> {
    // The kernel's own sigaction layout; all zeros is SIG_DFL with no flags
    // and an empty mask on every architecture.
    let default = [0u64; 4];
    for signal in 1..=64 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: the raw system call, because glibc refuses the numbers it
            // reserves for itself (32 and 33), which can still arrive ignored.
            // Installing SIG_DFL runs no code of ours.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    default.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8,
                )
            };
        }
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(Failure::sys("reset the signal mask"))
}

/// Marks every descriptor above stderr close-on-exec, so that nothing mydocker
/// inherited (a CI runner's or make's jobserver pipes, say) reaches the command;
/// all but the `preserve` right after stderr, which `create` was asked to pass
/// on and checked were open before it opened anything of its own.
fn close_inherited_fds(preserve: u32) -> Result<(), Failure> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    let first_closed = 3 + preserve;
    for fd in 3..first_closed {
        // SAFETY: clearing FD_CLOEXEC on a descriptor create checked is open.
        if unsafe { libc::fcntl(fd as i32, libc::F_SETFD, 0) } != 0 {
            return Err(Failure::sys(format!(
                "keep descriptor {fd} open (--preserve-fds)"
            ))(Errno::last()));
        }
    }
    // SAFETY: close_range only changes flags on our own descriptor table.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first_closed as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    // Kernels before 5.11 lack the flag: mark them one by one.
    let entries = std::fs::read_dir("/proc/self/fd").map_err(Failure::io("list /proc/self/fd"))?;
    for fd in entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&fd| fd >= first_closed)
    {
        // SAFETY: setting FD_CLOEXEC on a descriptor we hold (or one already closed).
        unsafe { libc::fcntl(fd as i32, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// Opens a terminal in the container's own devpts, makes it the controlling
/// terminal and stdio, and hands the master side to the parent.
/// With `as_console` (OCI), the terminal is also bound onto `/dev/console`.
fn attach_new_pty(channel: &Channel, as_console: bool) -> Result<(), Failure> {
    let (master, slave) = crate::tty::open_pty().map_err(Failure::sys("open /dev/ptmx"))?;
    crate::tty::become_terminal_session(&slave)
        .map_err(Failure::sys(format!("attach the terminal {slave}")))?;
    if as_console {
        let console = "/dev/console";
        if std::fs::symlink_metadata(console).is_err() {
            std::fs::File::create(console).map_err(Failure::io("create /dev/console"))?;
        }
        nix::mount::mount(
            Some(slave.as_str()),
            console,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(Failure::sys(format!("bind {slave} onto /dev/console")))?;
    }
    channel
        .send(&Report::PtyMaster, &[master.as_raw_fd()])
        .map_err(Failure::sys("send the pty master to the parent"))
}

pub(crate) fn to_cstrings(items: &[String]) -> Result<Vec<CString>, Failure> {
    items
        .iter()
        .map(|s| {
            CString::new(s.as_bytes()).map_err(|_| Failure {
                exit_code: EXIT_RUNTIME,
                message: format!("{s:?} contains a NUL byte"),
                kernel_lacks: false,
            })
        })
        .collect()
}

/// Execs `program`, searching `path` when the name has no slash, as execvp(3)
/// does but with the container's PATH rather than ours. Returns only on failure.
pub(crate) fn exec_in_path(
    program: &str,
    args: &[CString],
    env: &[CString],
    path: &str,
) -> Failure {
    let candidates = candidates(program, path);
    let mut denied = false;
    for candidate in &candidates {
        let Ok(c_path) = CString::new(candidate.as_bytes()) else {
            continue;
        };
        let errno = match execve(&c_path, args, env) {
            Ok(never) => match never {},
            Err(errno) => errno,
        };
        match errno {
            Errno::ENOENT | Errno::ENOTDIR => continue,
            Errno::EACCES => denied = true,
            other => {
                return Failure {
                    exit_code: EXIT_NOT_EXECUTABLE,
                    message: format!("exec {candidate:?}: {}", other.desc()),
                    kernel_lacks: false,
                }
            }
        }
    }
    missing_command(program, path, denied)
}

/// Where `program` may be: itself when it has a slash, else each PATH entry.
fn candidates(program: &str, path: &str) -> Vec<String> {
    if program.contains('/') {
        vec![program.to_owned()]
    } else {
        path.split(':')
            .map(|dir| if dir.is_empty() { "." } else { dir })
            .map(|dir| format!("{}/{program}", dir.trim_end_matches('/')))
            .collect()
    }
}

/// The failure for a command not found (127), or found but not executable (126).
fn missing_command(program: &str, path: &str, denied: bool) -> Failure {
    let (exit_code, message) = if denied {
        (
            EXIT_NOT_EXECUTABLE,
            format!("exec {program:?}: permission denied: the file is not executable"),
        )
    } else if program.contains('/') {
        (
            EXIT_NOT_FOUND,
            format!("exec {program:?}: no such file or directory in the container"),
        )
    } else {
        (
            EXIT_NOT_FOUND,
            format!("exec {program:?}: executable file not found in $PATH ({path})"),
        )
    };
    Failure {
        exit_code,
        message,
        kernel_lacks: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::record::{Call, Recorder};

    fn config(join: &[&str], user_ns: bool, new_cgroup_ns: bool) -> InitConfig {
        InitConfig {
            join_cgroup: join.iter().map(|t| t.to_string()).collect(),
            user_ns,
            new_cgroup_ns,
            ..InitConfig::default()
        }
    }

    #[test]
    fn init_joins_its_cgroups_before_it_changes_ids_or_namespaces() {
        let sys = Recorder::default();
        enter_cgroup(&sys, &config(&["/a/tasks", "/b/tasks"], true, true)).unwrap();
        assert_eq!(
            sys.calls(),
            [
                Call::JoinCgroup("/a/tasks".into()),
                Call::JoinCgroup("/b/tasks".into()),
                Call::BecomeNamespaceRoot,
                Call::UnshareCgroupNamespace,
            ],
            "as namespace root init could no longer write the host's tasks files, \
             and a cgroup namespace unshared first would be rooted outside the container"
        );
    }

    #[test]
    fn a_cgroup_init_cannot_join_stops_it_there() {
        let sys = Recorder {
            fail_at: Some(|call| matches!(call, Call::JoinCgroup(_))),
            ..Recorder::default()
        };
        assert!(enter_cgroup(&sys, &config(&["/a/tasks", "/b/tasks"], true, true)).is_err());
        assert_eq!(sys.calls(), [Call::JoinCgroup("/a/tasks".into())]);
    }

    #[test]
    fn a_host_namespace_container_changes_nothing_but_its_cgroup() {
        let sys = Recorder::default();
        enter_cgroup(&sys, &config(&["/a/tasks"], false, false)).unwrap();
        assert_eq!(sys.calls(), [Call::JoinCgroup("/a/tasks".into())]);
    }
}
