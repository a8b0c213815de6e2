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
//! reach unnamespaced kernel state (keyrings, bpf, perf). A process that
//! uses another architecture's calling convention (32-bit `int 0x80`),
//! whose call numbers differ and would slip past the ones below, is killed.
//!
//! **Why the program is a search tree.** When a filter is installed, the
//! kernel runs it once for every call number to learn which ones it always
//! allows, and caches that; every instruction of that walk counts. A list
//! of comparisons (what seccompiler emits) makes each allowed number pass
//! every comparison: about 350 instructions here. Sorted into a binary
//! tree, a number meets about a dozen comparisons, and the install costs
//! little more than an empty filter's; init's exec phase, which the install
//! is most of, went from 0.89 to 0.70 ms here. One program also returns
//! both errnos (EPERM for the list, ENOSYS for `clone3`), where seccompiler
//! needed two programs, and each install walks every number again.

use ::caps::Capability;
use seccompiler::{sock_filter, BpfProgram};

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

/// What the filter does with one call number that is not simply allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Fails with this errno.
    Deny(i32),
    /// `clone`: fails with EPERM when its flags (the first argument) ask
    /// for a new namespace.
    DenyNamespaceFlags,
}

/// The filter for a container holding the capabilities in `capabilities`:
/// one program, or none when nothing is denied.
///
/// `clone3` passes its flags in memory, where a filter cannot look, so it
/// fails with ENOSYS as under docker: C libraries then fall back to
/// `clone`, whose flags the filter can check.
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
    let mut verdicts: Vec<(u32, Verdict)> = DENIED
        .into_iter()
        .flat_map(|(n, cap)| numbers(n).map(move |n| (n, cap)))
        .chain(x32_only)
        .filter(|&(_, lifted_by)| !held(lifted_by))
        .map(|(number, _)| (number as u32, Verdict::Deny(libc::EPERM)))
        .collect();
    if !held(Some(Capability::CAP_SYS_ADMIN)) {
        verdicts.extend(numbers(libc::SYS_clone).map(|n| (n as u32, Verdict::DenyNamespaceFlags)));
        verdicts.extend(numbers(libc::SYS_clone3).map(|n| (n as u32, Verdict::Deny(libc::ENOSYS))));
    }
    if verdicts.is_empty() {
        return Ok(Vec::new());
    }
    verdicts.sort_unstable_by_key(|&(number, _)| number);
    verdicts.dedup_by_key(|&mut (number, _)| number);
    Ok(vec![program(&verdicts)])
}

/// Offsets in the kernel's `struct seccomp_data`, which the filter reads:
/// the call number, the architecture, and the low half of the first argument.
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// Up to this many numbers are compared one by one; more are split in two.
const LEAF: usize = 4;

/// The program for `verdicts` (sorted by number): the architecture check,
/// then a binary search over the numbers; anything not found is allowed.
fn program(verdicts: &[(u32, Verdict)]) -> BpfProgram {
    let mut program = vec![
        load(ARCH),
        jump(libc::BPF_JEQ, AUDIT_ARCH_X86_64, 1, 0),
        ret(libc::SECCOMP_RET_KILL_PROCESS),
        load(NR),
    ];
    tree(verdicts, &mut program);
    program
}

/// Appends the search over `verdicts` (sorted, the number loaded). Every
/// jump is forward and short: a split jumps over its lower half with `ja`,
/// whose offset is 32 bits, so no tree outgrows the 8-bit conditional ones.
fn tree(verdicts: &[(u32, Verdict)], program: &mut BpfProgram) {
    if verdicts.len() <= LEAF {
        for &(number, verdict) in verdicts {
            match verdict {
                Verdict::Deny(errno) => {
                    program.push(jump(libc::BPF_JEQ, number, 0, 1));
                    program.push(ret(libc::SECCOMP_RET_ERRNO | errno as u32));
                }
                Verdict::DenyNamespaceFlags => {
                    let flags = NAMESPACE_FLAGS.iter().fold(0, |all, &f| all | f as u32);
                    program.push(jump(libc::BPF_JEQ, number, 0, 4));
                    // The number is gone from the accumulator now, so
                    // both outcomes return.
                    program.push(load(ARG0_LOW));
                    program.push(jump(libc::BPF_JSET, flags, 0, 1));
                    program.push(ret(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32));
                    program.push(ret(libc::SECCOMP_RET_ALLOW));
                }
            }
        }
        program.push(ret(libc::SECCOMP_RET_ALLOW));
        return;
    }
    let (lower, upper) = verdicts.split_at(verdicts.len() / 2);
    // At or above the upper half's first number: jump over the lower half.
    program.push(jump(libc::BPF_JGE, upper[0].0, 0, 1));
    let skip = program.len();
    program.push(sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JA) as u16,
        jt: 0,
        jf: 0,
        k: 0,
    });
    tree(lower, program);
    program[skip].k = (program.len() - skip - 1) as u32;
    tree(upper, program);
}

fn load(offset: u32) -> sock_filter {
    sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: offset,
    }
}

fn jump(test: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: (libc::BPF_JMP | test | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    }
}

fn ret(k: u32) -> sock_filter {
    sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k,
    }
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

    /// Runs a classic BPF program the way the kernel does, for the few
    /// instructions [`program`] emits (panicking on any other): the
    /// verdict, and how many instructions ran.
    fn run(program: &BpfProgram, arch: u32, number: u32, arg0: u64) -> (u32, usize) {
        let mut pc = 0;
        let mut accumulator = 0u32;
        for steps in 1.. {
            let insn = &program[pc];
            pc += 1;
            let code = u32::from(insn.code);
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                accumulator = match insn.k {
                    NR => number,
                    ARCH => arch,
                    ARG0_LOW => arg0 as u32,
                    other => panic!("load of offset {other}"),
                };
            } else if code == libc::BPF_RET | libc::BPF_K {
                return (insn.k, steps);
            } else if code == libc::BPF_JMP | libc::BPF_JA {
                pc += insn.k as usize;
            } else {
                let taken = match code & !(libc::BPF_JMP | libc::BPF_K) {
                    libc::BPF_JEQ => accumulator == insn.k,
                    libc::BPF_JGE => accumulator >= insn.k,
                    libc::BPF_JSET => accumulator & insn.k != 0,
                    other => panic!("instruction {other:#x}"),
                };
                pc += usize::from(if taken { insn.jt } else { insn.jf });
            }
        }
        unreachable!("a program ends in a return")
    }

    fn evaluate(program: &BpfProgram, arch: u32, number: u32, arg0: u64) -> u32 {
        run(program, arch, number, arg0).0
    }

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    /// What docker's rules say for `number` (x86_64 or, with its bit, x32).
    fn expected(capabilities: u64, number: u32, arg0: u64) -> u32 {
        let held = |cap: Option<Capability>| cap.is_some_and(|c| capabilities & c.bitmask() != 0);
        let x32 = x32_enabled();
        let base = i64::from(number & !(X32_SYSCALL_BIT as u32));
        let is_x32 = number & X32_SYSCALL_BIT as u32 != 0;
        if is_x32 && !x32 {
            return ALLOW;
        }
        let listed = DENIED
            .iter()
            .chain(X32_ONLY.iter().filter(|_| is_x32))
            .find(|(n, _)| *n == base);
        if let Some((_, lifted_by)) = listed {
            return if held(*lifted_by) { ALLOW } else { EPERM };
        }
        let admin = held(Some(Capability::CAP_SYS_ADMIN));
        let namespaces = NAMESPACE_FLAGS.iter().any(|&f| arg0 & f as u64 != 0);
        match base {
            libc::SYS_clone if !admin && namespaces => EPERM,
            libc::SYS_clone3 if !admin => ENOSYS,
            _ => ALLOW,
        }
    }

    #[test]
    fn every_number_gets_dockers_verdict_for_every_capability_set() {
        let sets = [
            crate::security::caps::DEFAULT,
            crate::security::caps::DEFAULT | Capability::CAP_SYS_ADMIN.bitmask(),
            crate::security::caps::DEFAULT | Capability::CAP_SYS_PTRACE.bitmask(),
            0,
        ];
        let arguments = [0, libc::SIGCHLD as u64, libc::CLONE_NEWNS as u64, 1 << 40];
        for capabilities in sets {
            let program = &filters(capabilities).unwrap()[0];
            for base in 0..1024u32 {
                for number in [base, base | X32_SYSCALL_BIT as u32] {
                    for arg0 in arguments {
                        let got = evaluate(program, AUDIT_ARCH_X86_64, number, arg0);
                        assert_eq!(
                            got,
                            expected(capabilities, number, arg0),
                            "number {number:#x}, arg0 {arg0:#x}, capabilities {capabilities:#x}"
                        );
                    }
                }
            }
            // The control: the verdicts above are not all one.
            assert_eq!(evaluate(program, AUDIT_ARCH_X86_64, 39, 0), ALLOW); // getpid
            assert_eq!(evaluate(program, AUDIT_ARCH_X86_64, 250, 0), EPERM); // keyctl
                                                                             // 32-bit x86 (AUDIT_ARCH_I386) is killed.
            let i386 = 3 | 0x4000_0000;
            assert_eq!(
                evaluate(program, i386, 39, 0),
                libc::SECCOMP_RET_KILL_PROCESS
            );
        }
    }

    #[test]
    fn the_search_is_short_and_capabilities_shrink_it() {
        let default = filters(crate::security::caps::DEFAULT).unwrap();
        assert_eq!(default.len(), 1, "one program returns both errnos");
        let admin =
            filters(crate::security::caps::DEFAULT | Capability::CAP_SYS_ADMIN.bitmask()).unwrap();
        assert!(admin[0].len() < default[0].len());
        let all = filters(crate::security::caps::ALL).unwrap();
        assert!(
            all[0].len() < admin[0].len(),
            "only the always-denied calls are left"
        );
        // The longest path a number takes: well under the list's length,
        // which is what makes the kernel's walk over every number cheap.
        let longest = (0..1024u32)
            .map(|number| run(&default[0], AUDIT_ARCH_X86_64, number, 0).1)
            .max()
            .unwrap();
        assert!(
            longest <= 30,
            "an allowed number walks {longest} instructions"
        );
    }

    /// The kernel's word: the program installs, and inside a forked child
    /// a listed call fails with EPERM, `clone3` with ENOSYS, and an
    /// unlisted one works.
    #[test]
    fn the_kernel_accepts_the_program_and_applies_it() {
        let programs = filters(crate::security::caps::DEFAULT).unwrap();
        // SAFETY: the child only makes raw system calls and exits; it
        // touches no lock another thread of the test binary could hold.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = unsafe {
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if install(&programs).is_err() {
                    libc::_exit(10);
                }
                let errno = || *libc::__errno_location();
                let keyctl = libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0);
                let keyctl_errno = errno();
                let clone3 = libc::syscall(libc::SYS_clone3, 0, 0);
                let clone3_errno = errno();
                let pid = libc::syscall(libc::SYS_getpid);
                match (keyctl, keyctl_errno, clone3, clone3_errno) {
                    (-1, libc::EPERM, -1, libc::ENOSYS) if pid > 0 => 0,
                    (_, libc::EPERM, ..) => 12,
                    _ => 11,
                }
            };
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        assert_eq!(
            libc::WEXITSTATUS(status),
            0,
            "10: install failed, 11: keyctl allowed, 12: clone3 not ENOSYS"
        );
    }
}
