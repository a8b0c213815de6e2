//! The default seccomp filter: the syscalls docker's default profile keeps
//! from containers, denied with EPERM unless the container holds the
//! capability that would make them legitimate.
//!
//! seccomp lets a process hand the kernel a small BPF program that runs on
//! every system call it (and every child) makes from then on, and decides:
//! allow, or fail with an errno. The filter cannot be removed, only made
//! stricter. A non-root process may install one only with `no_new_privs` set,
//! so that it cannot use the filter to trick a setuid program.
//!
//! docker's profile is an allow-list of some 350 calls. This filter is the
//! complement in spirit: everything is allowed except the calls that act on
//! the whole machine (reboot, kexec, modules, swap, the clock), that escape
//! the namespaces (mount, setns, unshare, namespace flags to clone), or that
//! reach unnamespaced kernel state (keyrings, bpf, perf). seccompiler builds
//! the BPF; its program kills a process that uses another architecture's
//! calling convention (32-bit `int 0x80`), whose call numbers differ and
//! would otherwise slip past the ones below.

use std::collections::BTreeMap;

use ::caps::Capability;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};

use crate::setup::Failure;

/// Denied calls, each with the capability that lifts the denial (as in
/// docker's profile), or `None` when nothing does.
const DENIED: [(i64, Option<Capability>); 56] = {
    use Capability::*;
    [
        (libc::SYS_mount, Some(CAP_SYS_ADMIN)),
        (libc::SYS_umount2, Some(CAP_SYS_ADMIN)),
        (libc::SYS_pivot_root, Some(CAP_SYS_ADMIN)),
        (libc::SYS_fsopen, Some(CAP_SYS_ADMIN)),
        (libc::SYS_fsconfig, Some(CAP_SYS_ADMIN)),
        (libc::SYS_fsmount, Some(CAP_SYS_ADMIN)),
        (libc::SYS_fspick, Some(CAP_SYS_ADMIN)),
        (libc::SYS_move_mount, Some(CAP_SYS_ADMIN)),
        (libc::SYS_open_tree, Some(CAP_SYS_ADMIN)),
        (libc::SYS_mount_setattr, Some(CAP_SYS_ADMIN)),
        (libc::SYS_unshare, Some(CAP_SYS_ADMIN)),
        (libc::SYS_setns, Some(CAP_SYS_ADMIN)),
        (libc::SYS_swapon, Some(CAP_SYS_ADMIN)),
        (libc::SYS_swapoff, Some(CAP_SYS_ADMIN)),
        (libc::SYS_quotactl, Some(CAP_SYS_ADMIN)),
        (libc::SYS_quotactl_fd, Some(CAP_SYS_ADMIN)),
        (libc::SYS_lookup_dcookie, Some(CAP_SYS_ADMIN)),
        (libc::SYS_fanotify_init, Some(CAP_SYS_ADMIN)),
        (libc::SYS_bpf, Some(CAP_SYS_ADMIN)),
        (libc::SYS_perf_event_open, Some(CAP_SYS_ADMIN)),
        (libc::SYS_reboot, Some(CAP_SYS_BOOT)),
        (libc::SYS_kexec_load, Some(CAP_SYS_BOOT)),
        (libc::SYS_kexec_file_load, Some(CAP_SYS_BOOT)),
        (libc::SYS_init_module, Some(CAP_SYS_MODULE)),
        (libc::SYS_finit_module, Some(CAP_SYS_MODULE)),
        (libc::SYS_delete_module, Some(CAP_SYS_MODULE)),
        (libc::SYS_acct, Some(CAP_SYS_PACCT)),
        (libc::SYS_settimeofday, Some(CAP_SYS_TIME)),
        (libc::SYS_clock_settime, Some(CAP_SYS_TIME)),
        (libc::SYS_clock_adjtime, Some(CAP_SYS_TIME)),
        (libc::SYS_iopl, Some(CAP_SYS_RAWIO)),
        (libc::SYS_ioperm, Some(CAP_SYS_RAWIO)),
        (libc::SYS_kcmp, Some(CAP_SYS_PTRACE)),
        (libc::SYS_process_vm_readv, Some(CAP_SYS_PTRACE)),
        (libc::SYS_process_vm_writev, Some(CAP_SYS_PTRACE)),
        (libc::SYS_pidfd_getfd, Some(CAP_SYS_PTRACE)),
        (libc::SYS_process_madvise, Some(CAP_SYS_PTRACE)),
        (libc::SYS_userfaultfd, Some(CAP_SYS_PTRACE)),
        (libc::SYS_get_mempolicy, Some(CAP_SYS_NICE)),
        (libc::SYS_set_mempolicy, Some(CAP_SYS_NICE)),
        (libc::SYS_mbind, Some(CAP_SYS_NICE)),
        (libc::SYS_move_pages, Some(CAP_SYS_NICE)),
        (libc::SYS_set_mempolicy_home_node, Some(CAP_SYS_NICE)),
        (libc::SYS_name_to_handle_at, Some(CAP_DAC_READ_SEARCH)),
        (libc::SYS_open_by_handle_at, Some(CAP_DAC_READ_SEARCH)),
        // io_uring performs calls of its own, out of this filter's sight.
        (libc::SYS_io_uring_setup, None),
        (libc::SYS_io_uring_enter, None),
        (libc::SYS_io_uring_register, None),
        (libc::SYS_keyctl, None),
        (libc::SYS_add_key, None),
        (libc::SYS_request_key, None),
        (libc::SYS_uselib, None),
        (libc::SYS_ustat, None),
        (libc::SYS_sysfs, None),
        (libc::SYS__sysctl, None),
        (libc::SYS_nfsservctl, None),
    ]
};

/// Flags that make `clone` create namespaces; without CAP_SYS_ADMIN a
/// container may not make new ones.
const NAMESPACE_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// x32 programs run on x86_64 with this bit set in the call number; the
/// architecture check passes them, so each denied number is denied with it too.
pub(super) const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// Denied calls whose x32 number is not the x86_64 one (x32's table has its
/// own entries from 512 for calls that pass pointers to structures).
const X32_ONLY: [(i64, Option<Capability>); 4] = [
    (528, Some(Capability::CAP_SYS_BOOT)),   // kexec_load
    (533, Some(Capability::CAP_SYS_NICE)),   // move_pages
    (539, Some(Capability::CAP_SYS_PTRACE)), // process_vm_readv
    (540, Some(Capability::CAP_SYS_PTRACE)), // process_vm_writev
];

/// Whether this kernel runs x32 system calls at all. Most distributions
/// build x32 in but leave it off (`syscall.x32=n`); then every x32 number
/// fails with ENOSYS whatever a filter says, and leaving out their rules
/// halves the program. That matters: the kernel walks a new filter once for
/// every call number to cache which are always allowed, about 0.5 µs per
/// instruction here, which is most of the cost of installing it.
pub(super) fn x32_enabled() -> bool {
    // SAFETY: getpid takes no arguments and cannot fail; only the call
    // number's x32 bit is under test.
    let pid = unsafe { libc::syscall(libc::SYS_getpid | X32_SYSCALL_BIT) };
    pid >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

/// The filters for a container holding the capabilities in `capabilities`.
///
/// Two programs, because one BPF program returns one errno for its matches:
/// the deny list with EPERM, and `clone3` with ENOSYS. `clone3` passes its
/// flags in memory, where a filter cannot look, so docker answers "no such
/// call" and C libraries fall back to `clone`, whose flags the first filter
/// can check.
pub fn filters(capabilities: u64) -> Result<Vec<BpfProgram>, Failure> {
    let held = |cap: Option<Capability>| cap.is_some_and(|c| capabilities & c.bitmask() != 0);
    // Each call under its x86_64 number, and under its x32 numbers where
    // the kernel runs x32 calls at all.
    let x32 = x32_enabled();
    let numbers = |number: i64| {
        let mirrored = x32.then_some(number | X32_SYSCALL_BIT);
        std::iter::once(number).chain(mirrored)
    };
    let x32_only = X32_ONLY
        .into_iter()
        .filter(|_| x32)
        .map(|(number, cap)| (number | X32_SYSCALL_BIT, cap));
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (number, lifted_by) in DENIED
        .into_iter()
        .flat_map(|(n, cap)| numbers(n).map(move |n| (n, cap)))
        .chain(x32_only)
    {
        if !held(lifted_by) {
            denied.insert(number, Vec::new());
        }
    }
    let mut clone3 = BTreeMap::new();
    if !held(Some(Capability::CAP_SYS_ADMIN)) {
        let rules = NAMESPACE_FLAGS
            .iter()
            .map(|&flag| {
                let flag = flag as u64;
                let condition = SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(flag),
                    flag,
                )?;
                SeccompRule::new(vec![condition])
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(build_failure)?;
        for number in numbers(libc::SYS_clone) {
            denied.insert(number, rules.clone());
        }
        for number in numbers(libc::SYS_clone3) {
            clone3.insert(number, Vec::new());
        }
    }
    [(denied, libc::EPERM), (clone3, libc::ENOSYS)]
        .into_iter()
        .filter(|(rules, _)| !rules.is_empty())
        .map(|(rules, errno)| {
            let arch = std::env::consts::ARCH.try_into().map_err(build_failure)?;
            let filter = SeccompFilter::new(
                rules,
                SeccompAction::Allow,
                SeccompAction::Errno(errno as u32),
                arch,
            )
            .map_err(build_failure)?;
            BpfProgram::try_from(filter).map_err(build_failure)
        })
        .collect()
}

// The cast in `install` relies on the two layouts being the same.
const _: () = assert!(
    std::mem::size_of::<seccompiler::sock_filter>() == std::mem::size_of::<libc::sock_filter>()
);

/// Installs `programs` on this thread; they apply to whatever it execs.
///
/// Not seccompiler's `apply_filter`: that one also sets `no_new_privs`,
/// which `--security-opt no-new-privileges=false` must be able to leave off.
/// Without it the kernel accepts a filter only from a holder of
/// CAP_SYS_ADMIN, which init still is when [`super::confine`] calls this.
pub fn install(programs: &[BpfProgram]) -> Result<(), Failure> {
    for program in programs {
        let fprog = libc::sock_fprog {
            len: program.len() as u16,
            // seccompiler's sock_filter is the kernel's layout (repr(C)).
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the kernel copies the program in; `program` outlives the call.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &fprog as *const libc::sock_fprog,
            )
        };
        if rc != 0 {
            return Err(Failure::runtime(format!(
                "install the seccomp filter: {}",
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

pub(super) fn build_failure(e: impl std::fmt::Display) -> Failure {
    Failure::runtime(format!("build the seccomp filter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filters_build_and_capabilities_shrink_them() {
        let default = filters(crate::security::caps::DEFAULT).unwrap();
        assert_eq!(default.len(), 2, "deny list and clone3");
        let admin =
            filters(crate::security::caps::DEFAULT | Capability::CAP_SYS_ADMIN.bitmask()).unwrap();
        assert_eq!(admin.len(), 1, "CAP_SYS_ADMIN lifts the clone3 filter");
        assert!(admin[0].len() < default[0].len());
        let all = filters(crate::security::caps::ALL).unwrap();
        assert!(
            all[0].len() < admin[0].len(),
            "only the always-denied calls are left"
        );
    }
}
