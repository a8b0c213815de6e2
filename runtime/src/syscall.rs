//! The system calls whose order is a security property, behind one trait.
//!
//! Two orderings decide whether a container is what it claims to be: init
//! joins its cgroup before it does anything that allocates or forks (or the
//! work escapes the limits), and without `no_new_privs` the seccomp filter
//! goes in before the capabilities drop (the kernel accepts a filter only
//! from a holder of CAP_SYS_ADMIN then). Exercising them for real needs root
//! and a fresh process; with the calls behind [`Syscall`], a unit test hands
//! the sequence a recorder and reads the order back (youki's `Syscall` trait
//! serves the same purpose). [`Linux`] is the one real implementation.

use seccompiler::BpfProgram;

use crate::security::caps::{self, CapabilitySets};
use crate::security::seccomp;
use crate::setup::Failure;
use crate::spec::User;

/// One method per call whose place in the sequence matters.
pub trait Syscall {
    /// Moves this process into a cgroup by writing `0` to its `tasks` file.
    fn join_cgroup(&self, tasks: &str) -> Result<(), Failure>;
    /// Takes on uid and gid 0 of the user namespace we are in.
    fn become_namespace_root(&self, drop_groups: bool) -> Result<(), Failure>;
    /// Enters a new cgroup namespace rooted at our current cgroup.
    fn unshare_cgroup_namespace(&self) -> Result<(), Failure>;
    /// Reduces every capability set to `mask`.
    fn reduce_capabilities(&self, sets: CapabilitySets, user: &User) -> Result<(), Failure>;
    /// Sets `no_new_privs`: no exec can gain privileges after this.
    fn set_no_new_privs(&self) -> Result<(), Failure>;
    /// Installs seccomp filters on this thread.
    fn install_seccomp(&self, programs: &[BpfProgram]) -> Result<(), Failure>;
}

/// The kernel itself.
pub struct Linux;

/// Runs a change of ids and puts back the parent-death signal, which the
/// kernel clears on any change of effective ids or capabilities (a killed
/// runtime would otherwise leave a container running as another user).
/// Putting it back is best effort: a seccomp profile may forbid `prctl`.
/// A parent that died in between sent nothing; init checks for that
/// afterwards, on its channel.
fn keeping_parent_death_signal(
    change: impl FnOnce() -> Result<(), Failure>,
) -> Result<(), Failure> {
    let before = nix::sys::prctl::get_pdeathsig().ok().flatten();
    change()?;
    if let Some(signal) = before {
        let _ = nix::sys::prctl::set_pdeathsig(signal);
    }
    Ok(())
}

impl Syscall for Linux {
    fn join_cgroup(&self, tasks: &str) -> Result<(), Failure> {
        std::fs::write(tasks, "0").map_err(Failure::io(format!("join the cgroup ({tasks})")))
    }

    /// The maps only translate ids; this process still holds the host ids it
    /// was cloned with (unmapped, so shown as 65534) until it changes them.
    fn become_namespace_root(&self, drop_groups: bool) -> Result<(), Failure> {
        use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
        if drop_groups {
            // The host's supplementary groups would show as nobody's inside.
            setgroups(&[]).map_err(Failure::sys("clear supplementary groups"))?;
        }
        let root = (Gid::from_raw(0), Uid::from_raw(0));
        keeping_parent_death_signal(|| {
            setresgid(root.0, root.0, root.0)
                .map_err(Failure::sys("become gid 0 in the user namespace"))?;
            setresuid(root.1, root.1, root.1)
                .map_err(Failure::sys("become uid 0 in the user namespace"))
        })
    }

    fn unshare_cgroup_namespace(&self) -> Result<(), Failure> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
            .map_err(Failure::sys("unshare the cgroup namespace"))
    }

    fn reduce_capabilities(&self, sets: CapabilitySets, user: &User) -> Result<(), Failure> {
        keeping_parent_death_signal(|| caps::apply(sets, user))
    }

    fn set_no_new_privs(&self) -> Result<(), Failure> {
        nix::sys::prctl::set_no_new_privs().map_err(Failure::sys("set no_new_privs"))
    }

    fn install_seccomp(&self, programs: &[BpfProgram]) -> Result<(), Failure> {
        seccomp::install(programs)
    }
}

/// A recorder for unit tests: each call is noted, and the step named in
/// `fail_at` fails, so a test can also check that nothing runs after it.
#[cfg(test)]
pub mod record {
    use std::cell::RefCell;

    use super::*;

    /// One recorded call.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Call {
        JoinCgroup(String),
        BecomeNamespaceRoot,
        UnshareCgroupNamespace,
        ReduceCapabilities(CapabilitySets),
        SetNoNewPrivs,
        /// How many programs were installed (zero is still a call).
        InstallSeccomp(usize),
    }

    #[derive(Default)]
    pub struct Recorder {
        pub calls: RefCell<Vec<Call>>,
        /// The first call of this kind fails with exit code 125.
        pub fail_at: Option<fn(&Call) -> bool>,
    }

    impl Recorder {
        fn note(&self, call: Call) -> Result<(), Failure> {
            let fails = self.fail_at.is_some_and(|f| f(&call));
            self.calls.borrow_mut().push(call);
            if fails {
                return Err(Failure::runtime("recorded failure"));
            }
            Ok(())
        }

        pub fn calls(&self) -> Vec<Call> {
            self.calls.borrow().clone()
        }
    }

    impl Syscall for Recorder {
        fn join_cgroup(&self, tasks: &str) -> Result<(), Failure> {
            self.note(Call::JoinCgroup(tasks.to_owned()))
        }
        fn become_namespace_root(&self, _: bool) -> Result<(), Failure> {
            self.note(Call::BecomeNamespaceRoot)
        }
        fn unshare_cgroup_namespace(&self) -> Result<(), Failure> {
            self.note(Call::UnshareCgroupNamespace)
        }
        fn reduce_capabilities(&self, sets: CapabilitySets, _: &User) -> Result<(), Failure> {
            self.note(Call::ReduceCapabilities(sets))
        }
        fn set_no_new_privs(&self) -> Result<(), Failure> {
            self.note(Call::SetNoNewPrivs)
        }
        fn install_seccomp(&self, programs: &[BpfProgram]) -> Result<(), Failure> {
            self.note(Call::InstallSeccomp(programs.len()))
        }
    }
}
