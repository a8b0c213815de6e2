//! Clone and release: init is cloned into its new namespaces (on cgroup v2
//! straight into its cgroup), given its user namespace's id maps, and then
//! released with the message that tells it how to build the container.

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sched::{clone, CloneFlags};
use nix::unistd::Pid;

use crate::channel::{self, Channel, InitConfig};
use crate::error::{Error, Result};
use crate::init;
use crate::spec::Spec;

/// Stack for the cloned child until it execs. The pages are only touched as
/// used, so a generous size costs nothing.
const CHILD_STACK: usize = 1 << 20;

/// Clones init into its namespaces, and on v2 straight into `cgroup`;
/// returns its pid and whether it was born there. The cgroup namespace is
/// left to init, which unshares it once it is in its cgroup.
pub(super) fn clone_init(
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
        // A panic must end init here. Unwinding would run, in the child, the
        // destructors of the parent's frames it copied: clone3 returns into
        // launch, whose rollback guard would remove the container's cgroup,
        // lease and state from under the parent.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init::main(child_end)));
        // SAFETY: leaves the child at once, running no destructor.
        unsafe { libc::_exit(crate::error::EXIT_RUNTIME) }
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
    let joins_pid = spec
        .oci
        .as_deref()
        .is_some_and(|p| p.join_namespaces.iter().any(|(kind, _)| kind == "pid"));
    if let Some(Ok(pid)) = cgroup
        .filter(|_| !joins_pid)
        .map(|dir| clone_into_cgroup(flags, dir, start_init))
    {
        return Ok((pid, true));
    }
    let mut stack = vec![0u8; CHILD_STACK];
    // A pid namespace to join is the one init is born into: setns changes
    // only where our children go, and goes back once init is cloned.
    let _back = match spec.oci.as_deref().and_then(|p| {
        p.join_namespaces
            .iter()
            .find_map(|(kind, path)| (kind == "pid").then_some(path))
    }) {
        Some(path) => Some(PidNamespaceForChildren::join(path)?),
        None => None,
    };
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

/// Sends init the message it waits for; from here on it builds the container.
pub(super) fn release(channel: &Channel, config: &InitConfig) -> Result<()> {
    channel.send(config, &[]).map_err(|e| match e {
        Errno::E2BIG => Error::invalid(
            "command and environment",
            format!("{} arguments", config.args.len()),
            format!("together at most {} KiB", channel::MAX_MESSAGE / 1024),
        ),
        e => Error::sys("release init")(e),
    })
}

/// The launcher's children go into another pid namespace while this lives.
struct PidNamespaceForChildren {
    own: std::fs::File,
}

impl PidNamespaceForChildren {
    fn join(path: &str) -> Result<PidNamespaceForChildren> {
        let own = std::fs::File::open("/proc/self/ns/pid")
            .map_err(Error::io("open our own pid namespace"))?;
        let target = std::fs::File::open(path)
            .map_err(Error::io(format!("open the pid namespace {path} to join")))?;
        nix::sched::setns(&target, CloneFlags::CLONE_NEWPID)
            .map_err(Error::sys(format!("join the pid namespace {path}")))?;
        Ok(PidNamespaceForChildren { own })
    }
}

impl Drop for PidNamespaceForChildren {
    fn drop(&mut self) {
        // Our own namespace is always one we may go back to.
        let _ = nix::sched::setns(&self.own, CloneFlags::CLONE_NEWPID);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::geteuid;
    use std::path::PathBuf;

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
