//! OCI seccomp profiles (`linux.seccomp`), compiled into BPF programs.
//!
//! The programs are what [`seccomp::install`] hands to the kernel.
//!
//! # What a profile says
//!
//! seccomp lets a process give the kernel small programs that look at every
//! system call it makes from then on (the call's number and its six
//! arguments) and answer with an *action*: allow the call, fail it with an
//! errno, kill the caller, send it SIGSYS (trap), hand it to a tracer, or
//! allow it and log it. An OCI profile is a list of rules, each naming some
//! calls, an action, and optionally conditions on the arguments ("argument 0
//! equals 8"). A call that no rule matches gets the profile's
//! `defaultAction`. docker's and podman's profiles are allow-lists: the
//! default fails a call with EPERM, and a few hundred rules allow what
//! programs need.
//!
//! # One profile, several programs
//!
//! seccompiler builds a program with exactly two answers: one for the calls
//! its rules match, one for all others. A profile may use several actions,
//! so it becomes several programs. The kernel runs every program a process
//! has on every call and keeps the most severe answer: kill the process >
//! kill the thread > trap > errno > trace > log > allow. With D the default
//! action, a profile becomes:
//!
//! - for each action A of the rules, other than D and allow, a *rule
//!   program*: a call that a rule with action A matches gets A, any other
//!   call is allowed;
//! - unless D is allow, the *default program*: a call that a rule with an
//!   action other than D matches is allowed, any other call gets D.
//!
//! A call some rule matches is thus allowed by the default program and gets
//! its rule's action from one rule program: the rule's action stands even
//! where it is milder than D (a logged call under an errno default). A call
//! no rule matches gets D from the default program and allow from the rest.
//! Rules whose action is D need no program: the default program gives their
//! calls D already. Two errno actions with different numbers are different
//! actions. A profile whose default and rules all allow needs no program.
//!
//! # The order they go in
//!
//! When two programs answer with the same action, the kernel keeps the data
//! (the errno) of the one installed last. That never decides between the
//! default program and a rule program: the default program allows every
//! call a rule program answers (two rule programs can tie; see the last
//! point below). What the order does decide is whether the programs can all
//! go in, since each one is installed by a `seccomp(2)` call that the
//! programs already in place filter. The default program goes in after the
//! rule programs (an allow-list that leaves out `seccomp` would otherwise
//! refuse them), and any program that may refuse `seccomp(2)` goes in last.
//! With two such programs, installing may fail, and then the container does
//! not start.
//!
//! # Where this differs from runc (libseccomp)
//!
//! - A call name this architecture does not know is skipped, as libseccomp
//!   skips it.
//! - `architectures` is accepted but changes nothing: seccompiler checks for
//!   this machine's architecture only, and kills a process that makes a call
//!   with another one's convention (32-bit `int 0x80` on x86_64) instead of
//!   filtering it by the profile. x32 calls carry x86_64's architecture tag
//!   and pass that check, so where the kernel runs them one more program
//!   kills them too.
//! - `SCMP_ACT_NOTIFY`, `listenerPath` and `listenerMetadata` are refused:
//!   mydocker has no seccomp agent to hand calls to.
//! - Of the `flags`, only `SECCOMP_FILTER_FLAG_TSYNC` is accepted (init is a
//!   single thread: there is no other to synchronise); the others are
//!   refused, because the programs are installed without flags.
//! - When rules with different actions match one call, the most severe
//!   action wins, and of two errnos the one whose program went in last
//!   (usually the one the profile names later); libseccomp settles such
//!   overlaps its own way. A profile should give each call one action.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::str::FromStr;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};
use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule,
};
use syscalls::Sysno;

use super::seccomp::{self, build_failure};
use crate::setup::Failure;

/// Rules by call number, as seccompiler takes them: a call matches when all
/// the conditions of any one rule hold, and an empty list matches every call
/// of that number.
type Rules = BTreeMap<i64, Vec<SeccompRule>>;

/// The errno of an ERRNO or TRACE action that names none (runc's choice).
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// A call has six arguments, numbered from 0.
const LAST_ARGUMENT: u8 = 5;

/// Compiles `profile` into programs for [`seccomp::install`], in the order
/// they must be installed (see the module documentation for why several).
/// No program at all when the profile allows everything.
///
/// Fails, naming the field, on what cannot be honoured: `SCMP_ACT_NOTIFY`,
/// a listener, flags other than `SECCOMP_FILTER_FLAG_TSYNC`, an argument
/// index above 5, an errno that does not fit in 16 bits.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<BpfProgram>, Failure> {
    refuse_flags_and_listener(profile)?;
    let default = action(
        profile.default_action(),
        profile.default_errno_ret(),
        "linux.seccomp.defaultAction",
        "linux.seccomp.defaultErrnoRet",
    )?;
    // The calls a rule takes away from the default action.
    let mut escapes = Rules::new();
    // For each action other than the default and allow, the calls its rules
    // match, in the order the profile first names the action.
    let mut by_action: Vec<(SeccompAction, Rules)> = Vec::new();
    for (i, syscall) in profile.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let action = action(
            syscall.action(),
            syscall.errno_ret(),
            &format!("{field}.action"),
            &format!("{field}.errnoRet"),
        )?;
        let args = syscall.args().as_deref().unwrap_or_default();
        let rules = rules(args, &field)?;
        if action == default {
            continue;
        }
        for number in syscall.names().iter().filter_map(|name| number(name)) {
            add(&mut escapes, number, &rules);
            if action != SeccompAction::Allow {
                add(rules_of(&mut by_action, &action), number, &rules);
            }
        }
    }

    let arch = std::env::consts::ARCH.try_into().map_err(build_failure)?;
    let build = |rules: Rules, mismatch: SeccompAction, matched: SeccompAction| {
        SeccompFilter::new(rules, mismatch, matched, arch)
            .and_then(BpfProgram::try_from)
            .map_err(build_failure)
    };
    // Each program with whether it may refuse the seccomp(2) call that
    // installs the next one.
    let mut programs = Vec::new();
    for (action, rules) in by_action {
        let may_refuse_seccomp = rules.contains_key(&libc::SYS_seccomp);
        programs.push((
            may_refuse_seccomp,
            build(rules, SeccompAction::Allow, action)?,
        ));
    }
    if default != SeccompAction::Allow {
        let may_refuse_seccomp = escapes
            .get(&libc::SYS_seccomp)
            .is_none_or(|rules| !rules.is_empty());
        programs.push((
            may_refuse_seccomp,
            build(escapes, default, SeccompAction::Allow)?,
        ));
    }
    // A stable sort: the default program stays after the rule programs.
    programs.sort_by_key(|(may_refuse_seccomp, _)| *may_refuse_seccomp);
    let mut programs: Vec<BpfProgram> = programs.into_iter().map(|(_, p)| p).collect();
    if !programs.is_empty() && seccomp::x32_enabled() {
        programs.insert(0, x32_guard());
    }
    Ok(programs)
}

/// Refuses the flags and the listener fields that cannot be honoured.
fn refuse_flags_and_listener(profile: &LinuxSeccomp) -> Result<(), Failure> {
    for flag in profile.flags().iter().flatten() {
        match flag {
            // Init is cloned (not spawned as a thread), so it is the only
            // thread there is to synchronise.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {}
            other => {
                return Err(Failure::runtime(format!(
                    "linux.seccomp.flags: {other} is not supported (the filters are \
                     installed without flags); expected SECCOMP_FILTER_FLAG_TSYNC or no flags"
                )))
            }
        }
    }
    if let Some(path) = profile.listener_path() {
        return Err(Failure::runtime(format!(
            "linux.seccomp.listenerPath: {} is not supported (mydocker has no seccomp agent); \
             expected no listener",
            path.display()
        )));
    }
    if let Some(metadata) = profile.listener_metadata() {
        return Err(Failure::runtime(format!(
            "linux.seccomp.listenerMetadata: {metadata:?} is not supported (mydocker has no \
             seccomp agent); expected no listener"
        )));
    }
    Ok(())
}

/// The seccompiler action for a profile's `action` with its `errno_ret`.
/// `field` and `errno_field` name them in a failure.
fn action(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
    errno_field: &str,
) -> Result<SeccompAction, Failure> {
    // The kernel keeps 16 bits of data with an action.
    let data = || {
        let errno = errno_ret.unwrap_or(DEFAULT_ERRNO);
        if errno > u32::from(u16::MAX) {
            return Err(Failure::runtime(format!(
                "{errno_field}: {errno} does not fit the 16 bits seccomp keeps; expected an errno"
            )));
        }
        Ok(errno)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => SeccompAction::Allow,
        LinuxSeccompAction::ScmpActErrno => SeccompAction::Errno(data()?),
        // SCMP_ACT_KILL predates KILL_PROCESS and kills the thread.
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            SeccompAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => SeccompAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => SeccompAction::Trap,
        LinuxSeccompAction::ScmpActTrace => SeccompAction::Trace(data()?),
        LinuxSeccompAction::ScmpActLog => SeccompAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Failure::runtime(format!(
                "{field}: {action} is not supported (it hands calls to a seccomp agent, and \
                 mydocker has none); expected another action"
            )))
        }
    })
}

/// The rules for one profile entry's `args`; none when it has no conditions,
/// which seccompiler reads as "every call of this number".
fn rules(args: &[LinuxSeccompArg], field: &str) -> Result<Vec<SeccompRule>, Failure> {
    let conditions = args
        .iter()
        .enumerate()
        .map(|(j, arg)| condition(arg, &format!("{field}.args[{j}]")))
        .collect::<Result<Vec<_>, _>>()?;
    if conditions.is_empty() {
        return Ok(Vec::new());
    }
    // Conditions on distinct arguments must all hold. libseccomp cannot
    // combine two comparisons of one argument in a rule, so runc makes each
    // condition a rule of its own when an index repeats, and then any one
    // holding is enough. Profiles rely on that reading: docker's allows
    // `personality` for any of a few exact values of argument 0.
    let mut indexes: Vec<usize> = args.iter().map(|arg| arg.index()).collect();
    indexes.sort_unstable();
    let an_index_repeats = indexes.windows(2).any(|pair| pair[0] == pair[1]);
    let rules = if an_index_repeats {
        conditions
            .into_iter()
            .map(|condition| SeccompRule::new(vec![condition]))
            .collect()
    } else {
        SeccompRule::new(conditions).map(|rule| vec![rule])
    };
    rules.map_err(build_failure)
}

/// One argument comparison, on the whole 64-bit value as libseccomp makes it
/// on a 64-bit architecture.
fn condition(arg: &LinuxSeccompArg, field: &str) -> Result<SeccompCondition, Failure> {
    let index = u8::try_from(arg.index())
        .ok()
        .filter(|&index| index <= LAST_ARGUMENT)
        .ok_or_else(|| {
            Failure::runtime(format!(
                "{field}.index: {} is not an argument of a system call; expected 0 to \
                 {LAST_ARGUMENT}",
                arg.index()
            ))
        })?;
    let (operator, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (SeccompCmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (SeccompCmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (SeccompCmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (SeccompCmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (SeccompCmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (SeccompCmpOp::Gt, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => {
            // (argument & value) == valueTwo. seccompiler masks valueTwo as
            // well, libseccomp does not: with a bit outside the mask,
            // nothing can match, which `argument < 0` says just as well.
            let (mask, wanted) = (arg.value(), arg.value_two().unwrap_or(0));
            if wanted & !mask != 0 {
                (SeccompCmpOp::Lt, 0)
            } else {
                (SeccompCmpOp::MaskedEq(mask), wanted)
            }
        }
    };
    SeccompCondition::new(index, SeccompCmpArgLen::Qword, operator, value).map_err(build_failure)
}

/// This architecture's number for the call `name`, if it has one. Profiles
/// name the calls of every architecture and of kernels newer than this
/// table; libseccomp skips the names it cannot resolve, and so does this.
fn number(name: &str) -> Option<i64> {
    Sysno::from_str(name).ok().map(|call| i64::from(call.id()))
}

/// Adds `rules` for the call `number`: rules accumulate (any may match), and
/// a call matched unconditionally stays so.
fn add(to: &mut Rules, number: i64, rules: &[SeccompRule]) {
    match to.entry(number) {
        Entry::Vacant(entry) => {
            entry.insert(rules.to_vec());
        }
        Entry::Occupied(mut entry) => {
            let present = entry.get_mut();
            if rules.is_empty() {
                present.clear();
            } else if !present.is_empty() {
                present.extend_from_slice(rules);
            }
        }
    }
}

/// The rules of `action` in `by_action`, added at the end if it is new.
fn rules_of<'a>(
    by_action: &'a mut Vec<(SeccompAction, Rules)>,
    action: &SeccompAction,
) -> &'a mut Rules {
    let at = match by_action.iter().position(|(known, _)| known == action) {
        Some(at) => at,
        None => {
            by_action.push((action.clone(), Rules::new()));
            by_action.len() - 1
        }
    };
    &mut by_action[at].1
}

/// The architecture tag of x86_64 calls in `struct seccomp_data`
/// (`AUDIT_ARCH_X86_64`: machine 62, 64-bit, little-endian).
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;

/// A program that kills a process making an x32 call.
///
/// x32 calls carry x86_64's architecture tag, so seccompiler's architecture
/// check passes them, and their numbers (x86_64's with bit 30 set, some from
/// 512) match none of the profile's: without this, a denied call would be
/// allowed as its x32 twin. [`compile`] adds it only where the kernel runs
/// x32 calls; elsewhere they fail with ENOSYS after the filters anyway.
fn x32_guard() -> BpfProgram {
    // Offsets in `struct seccomp_data`.
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    let load = |offset| sock_filter {
        code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
        jt: 0,
        jf: 0,
        k: offset,
    };
    let jump = |test, k, jt, jf| sock_filter {
        code: (libc::BPF_JMP | test | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let ret = |k| sock_filter {
        code: (libc::BPF_RET | libc::BPF_K) as u16,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        load(ARCH),
        // Another architecture: the profile's programs kill it.
        jump(libc::BPF_JEQ, AUDIT_ARCH_X86_64, 0, 4),
        load(NR),
        jump(libc::BPF_JGE, seccomp::X32_SYSCALL_BIT as u32, 0, 2),
        // -1 is no call at all (a tracer skipping one), not an x32 call.
        jump(libc::BPF_JEQ, u32::MAX, 1, 0),
        ret(libc::SECCOMP_RET_KILL_PROCESS),
        ret(libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use serde_json::json;

    use super::*;

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).expect("a valid OCI seccomp profile")
    }

    /// The program x32 calls need on this kernel, which compile puts first.
    fn guards() -> usize {
        usize::from(seccomp::x32_enabled())
    }

    /// The shape of runtime-tools' default profile: an allow-list with
    /// conditions, and a name no architecture has.
    fn allow_list(extra_names: &[&str]) -> serde_json::Value {
        let mut names = vec!["read", "write", "exit_group", "getppid", "clone3"];
        names.extend_from_slice(extra_names);
        json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [
                { "names": names, "action": "SCMP_ACT_ALLOW" },
                { "names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                    { "index": 0, "value": 0, "op": "SCMP_CMP_EQ" },
                    { "index": 0, "value": 8, "op": "SCMP_CMP_EQ" },
                    { "index": 0, "value": 131072, "op": "SCMP_CMP_EQ" },
                    { "index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ" }
                ]},
                { "names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
                    { "index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ" }
                ]}
            ]
        })
    }

    #[test]
    fn an_allow_list_compiles_to_the_default_program_alone() {
        let programs = compile(&profile(allow_list(&[]))).unwrap();
        assert_eq!(programs.len(), guards() + 1);
    }

    #[test]
    fn names_this_architecture_lacks_are_skipped() {
        let plain = compile(&profile(allow_list(&[]))).unwrap();
        let with_foreign = compile(&profile(allow_list(&[
            "_llseek",
            "arm_fadvise64_64",
            "no_such_call",
        ])))
        .unwrap();
        assert_eq!(plain, with_foreign);
        let unknown_only = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["no_such_call"], "action": "SCMP_ACT_ERRNO" }]
        }));
        assert_eq!(compile(&unknown_only).unwrap(), Vec::<BpfProgram>::new());
    }

    #[test]
    fn each_action_other_than_the_default_gets_a_program() {
        let programs = compile(&profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                { "names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13 },
                // EPERM is the default's errno: no program of its own.
                { "names": ["getpgid"], "action": "SCMP_ACT_ERRNO" },
                { "names": ["ptrace"], "action": "SCMP_ACT_KILL" },
                // The same action as SCMP_ACT_KILL: the same program.
                { "names": ["kcmp"], "action": "SCMP_ACT_KILL_THREAD" },
                { "names": ["uname"], "action": "SCMP_ACT_LOG" },
                { "names": ["read"], "action": "SCMP_ACT_ALLOW" }
            ]
        })))
        .unwrap();
        assert_eq!(programs.len(), guards() + 4, "EACCES, kill, log, default");
    }

    #[test]
    fn a_profile_that_allows_everything_needs_no_program() {
        let all_allow = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["read", "write"], "action": "SCMP_ACT_ALLOW" }]
        }));
        assert!(compile(&all_allow).unwrap().is_empty());
        let empty = profile(json!({ "defaultAction": "SCMP_ACT_ALLOW" }));
        assert!(compile(&empty).unwrap().is_empty());
    }

    fn refusal(json: serde_json::Value) -> String {
        let failure = compile(&profile(json)).unwrap_err();
        assert_eq!(failure.exit_code, crate::error::EXIT_RUNTIME);
        assert!(!failure.message.contains('\n'), "{}", failure.message);
        failure.message
    }

    #[test]
    fn notify_is_refused_by_field() {
        let message = refusal(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                { "names": ["read"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["mount"], "action": "SCMP_ACT_NOTIFY" }
            ]
        }));
        assert!(
            message.starts_with("linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY"),
            "{message}"
        );
        let message = refusal(json!({ "defaultAction": "SCMP_ACT_NOTIFY" }));
        assert!(
            message.starts_with("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY"),
            "{message}"
        );
    }

    #[test]
    fn an_argument_index_past_five_is_refused_by_field() {
        let message = refusal(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["dup"], "action": "SCMP_ACT_ERRNO", "args": [
                { "index": 0, "value": 1, "op": "SCMP_CMP_EQ" },
                { "index": 6, "value": 1, "op": "SCMP_CMP_EQ" }
            ]}]
        }));
        assert!(
            message.starts_with("linux.seccomp.syscalls[0].args[1].index: 6 "),
            "{message}"
        );
        assert!(message.contains("0 to 5"), "{message}");
    }

    #[test]
    fn flags_and_listeners_it_cannot_honour_are_refused_by_field() {
        let message = refusal(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"]
        }));
        assert!(
            message.starts_with("linux.seccomp.flags: SECCOMP_FILTER_FLAG_LOG "),
            "{message}"
        );
        let message = refusal(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": "/run/agent.sock"
        }));
        assert!(
            message.starts_with("linux.seccomp.listenerPath: /run/agent.sock "),
            "{message}"
        );
        let message = refusal(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 70000
        }));
        assert!(
            message.starts_with("linux.seccomp.defaultErrnoRet: 70000 "),
            "{message}"
        );
        let tsync = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]
        }));
        assert!(compile(&tsync).unwrap().is_empty());
    }

    /// How a forked child ended.
    #[derive(Debug, PartialEq)]
    enum End {
        Exited(i32),
        Killed(i32),
    }

    /// The child's exit codes when it could not confine itself; a bitmask
    /// of failed checks stays below them.
    const NO_NEW_PRIVS_FAILED: i32 = 128;
    const INSTALL_FAILED: i32 = 129;

    /// Runs `body` in a forked child that has set `no_new_privs` and
    /// installed `programs`; the child exits with what `body` returns.
    fn confined(programs: &[BpfProgram], body: &dyn Fn() -> i32) -> End {
        // SAFETY: the test process has other threads, so until `_exit` the
        // child keeps to system calls (no allocation, no locks) except on
        // a failed install, which formats its message.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: prctl with integer arguments; `_exit` ends the child
            // without running the parent's destructors twice.
            unsafe {
                let code = if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    NO_NEW_PRIVS_FAILED
                } else if seccomp::install(programs).is_err() {
                    INSTALL_FAILED
                } else {
                    body()
                };
                libc::_exit(code)
            }
        }
        let mut status = 0;
        // SAFETY: `pid` is our child and `status` outlives the call.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
        if libc::WIFSIGNALED(status) {
            End::Killed(libc::WTERMSIG(status))
        } else {
            End::Exited(libc::WEXITSTATUS(status))
        }
    }

    /// A call the child makes under the filter, and whether it came out as
    /// the profile says.
    type Check<'a> = (&'a str, &'a dyn Fn() -> bool);

    /// Makes `checks` in a child confined by `profile`; panics naming those
    /// that came out otherwise.
    fn assert_confined(profile: &LinuxSeccomp, checks: &[Check]) {
        assert!(checks.len() < 8, "one exit-code bit per check");
        let programs = compile(profile).unwrap();
        let body = || {
            checks
                .iter()
                .enumerate()
                .filter(|(_, (_, check))| !check())
                .fold(0, |failed, (bit, _)| failed | 1 << bit)
        };
        let failed = match confined(&programs, &body) {
            End::Exited(0) => return,
            End::Exited(NO_NEW_PRIVS_FAILED) => panic!("the child could not set no_new_privs"),
            End::Exited(INSTALL_FAILED) => panic!("the child could not install the programs"),
            End::Exited(failed) => failed,
            End::Killed(signal) => panic!("the child was killed by signal {signal}"),
        };
        let names: Vec<&str> = (0..checks.len())
            .filter(|bit| failed & 1 << bit != 0)
            .map(|bit| checks[bit].0)
            .collect();
        panic!("under the filter, not as expected: {names:?}");
    }

    fn fails_with(rc: impl Into<i64>, errno: i32) -> bool {
        rc.into() == -1 && std::io::Error::last_os_error().raw_os_error() == Some(errno)
    }

    fn dup(fd: i32) -> i32 {
        // SAFETY: dup of any number is harmless; a new descriptor dies with the child.
        unsafe { libc::dup(fd) }
    }

    fn dup3(fd: i32, to: i32, flags: i32) -> i32 {
        // SAFETY: as dup; the target numbers used here are not open.
        unsafe { libc::dup3(fd, to, flags) }
    }

    fn close(fd: i32) -> i32 {
        // SAFETY: closes only numbers that are not open.
        unsafe { libc::close(fd) }
    }

    fn getppid() -> i64 {
        // SAFETY: no arguments. Not libc's getppid, which reports no errors.
        unsafe { libc::syscall(libc::SYS_getppid) }
    }

    /// A descriptor that is open in the child, with a small number.
    fn open_descriptor() -> std::fs::File {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert!(
            file.as_raw_fd() < 0x100,
            "masks below assume a small number"
        );
        file
    }

    #[test]
    fn a_rule_denies_only_the_calls_its_conditions_match() {
        let keep = open_descriptor();
        let fd = keep.as_raw_fd();
        let profile = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                { "names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
                  "args": [{ "index": 0, "value": 1000, "op": "SCMP_CMP_EQ" }] },
                // Two arguments: both conditions must hold.
                { "names": ["dup3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
                  "args": [
                    { "index": 0, "value": 1000, "op": "SCMP_CMP_EQ" },
                    { "index": 2, "value": libc::O_CLOEXEC, "op": "SCMP_CMP_EQ" }
                  ] }
            ]
        }));
        assert_confined(
            &profile,
            &[
                ("dup(1000) fails with EACCES", &|| {
                    fails_with(dup(1000), libc::EACCES)
                }),
                ("dup(1001) fails with EBADF", &|| {
                    fails_with(dup(1001), libc::EBADF)
                }),
                ("dup(open) works", &|| dup(fd) >= 0),
                ("dup3(1000, 1001, O_CLOEXEC) fails with EACCES", &|| {
                    fails_with(dup3(1000, 1001, libc::O_CLOEXEC), libc::EACCES)
                }),
                ("dup3(1000, 1001, 0) fails with EBADF", &|| {
                    fails_with(dup3(1000, 1001, 0), libc::EBADF)
                }),
            ],
        );
    }

    #[test]
    fn rules_of_different_errnos_and_masks_each_answer_for_their_calls() {
        let keep = open_descriptor();
        let fd = keep.as_raw_fd();
        let profile = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                // 1000 is 0x3e8.
                { "names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
                  "args": [{ "index": 0, "value": 0xff00, "valueTwo": 0x0300,
                             "op": "SCMP_CMP_MASKED_EQ" }] },
                { "names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
                  "args": [{ "index": 0, "value": 1002, "op": "SCMP_CMP_EQ" }] },
                // valueTwo has a bit outside the mask: matches nothing.
                { "names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
                  "args": [{ "index": 0, "value": 0xff00, "valueTwo": 0x0301,
                             "op": "SCMP_CMP_MASKED_EQ" }] },
                // No errnoRet: EPERM.
                { "names": ["getppid"], "action": "SCMP_ACT_ERRNO" }
            ]
        }));
        assert_confined(
            &profile,
            &[
                ("dup(1000) fails with EACCES", &|| {
                    fails_with(dup(1000), libc::EACCES)
                }),
                ("dup(1024) fails with EBADF", &|| {
                    fails_with(dup(1024), libc::EBADF)
                }),
                ("dup(open) works", &|| dup(fd) >= 0),
                ("close(1002) fails with EXDEV", &|| {
                    fails_with(close(1002), libc::EXDEV)
                }),
                ("close(1000) fails with EBADF", &|| {
                    fails_with(close(1000), libc::EBADF)
                }),
                ("getppid() fails with EPERM", &|| {
                    fails_with(getppid(), libc::EPERM)
                }),
            ],
        );
    }

    #[test]
    fn conditions_on_one_argument_match_when_any_holds() {
        let keep = open_descriptor();
        let fd = keep.as_raw_fd();
        let profile = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                { "names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
                  "args": [
                    { "index": 0, "value": 1000, "op": "SCMP_CMP_EQ" },
                    { "index": 0, "value": 1001, "op": "SCMP_CMP_EQ" }
                  ] }
            ]
        }));
        assert_confined(
            &profile,
            &[
                ("dup(1000) fails with EACCES", &|| {
                    fails_with(dup(1000), libc::EACCES)
                }),
                ("dup(1001) fails with EACCES", &|| {
                    fails_with(dup(1001), libc::EACCES)
                }),
                ("dup(1002) fails with EBADF", &|| {
                    fails_with(dup(1002), libc::EBADF)
                }),
                ("dup(open) works", &|| dup(fd) >= 0),
            ],
        );
    }

    #[test]
    fn under_an_allow_list_a_rule_errno_beats_the_default_and_the_rest_is_denied() {
        let keep = open_descriptor();
        let fd = keep.as_raw_fd();
        // It does not allow seccomp(2): the programs must still all go in.
        let profile = profile(json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": libc::ENOSYS,
            "syscalls": [
                { "names": ["exit_group", "exit"], "action": "SCMP_ACT_ALLOW" },
                { "names": ["dup"], "action": "SCMP_ACT_ALLOW",
                  "args": [{ "index": 0, "value": fd, "op": "SCMP_CMP_EQ" }] },
                { "names": ["dup"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES,
                  "args": [{ "index": 0, "value": 1000, "op": "SCMP_CMP_EQ" }] }
            ]
        }));
        assert_confined(
            &profile,
            &[
                ("dup(open) works", &|| dup(fd) >= 0),
                ("dup(1000) fails with EACCES", &|| {
                    fails_with(dup(1000), libc::EACCES)
                }),
                ("dup(1001) fails with ENOSYS", &|| {
                    fails_with(dup(1001), libc::ENOSYS)
                }),
                ("getppid() fails with ENOSYS", &|| {
                    fails_with(getppid(), libc::ENOSYS)
                }),
            ],
        );
    }

    #[test]
    fn a_program_that_refuses_seccomp_goes_in_last() {
        let profile = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                { "names": ["seccomp"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EACCES },
                { "names": ["close"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::EXDEV,
                  "args": [{ "index": 0, "value": 1002, "op": "SCMP_CMP_EQ" }] }
            ]
        }));
        let seccomp_query = || {
            let action = libc::SECCOMP_RET_ALLOW;
            // SAFETY: asks whether an action exists; reads `action` only.
            unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_GET_ACTION_AVAIL,
                    0,
                    &action as *const u32,
                )
            }
        };
        assert_confined(
            &profile,
            &[
                ("close(1002) fails with EXDEV", &|| {
                    fails_with(close(1002), libc::EXDEV)
                }),
                ("seccomp() fails with EACCES", &|| {
                    fails_with(seccomp_query(), libc::EACCES)
                }),
            ],
        );
    }

    #[test]
    fn a_kill_rule_kills_the_caller() {
        let profile = profile(json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{ "names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS" }]
        }));
        let programs = compile(&profile).unwrap();
        let end = confined(&programs, &|| {
            getppid();
            0
        });
        assert_eq!(end, End::Killed(libc::SIGSYS));
    }

    #[test]
    fn the_x32_guard_kills_x32_calls_only() {
        let x32_getpid = || {
            // SAFETY: getpid under its x32 number; no arguments.
            unsafe { libc::syscall(libc::SYS_getpid | seccomp::X32_SYSCALL_BIT) };
            0
        };
        assert_eq!(
            confined(&[x32_guard()], &x32_getpid),
            End::Killed(libc::SIGSYS)
        );
        let others = || {
            // SAFETY: no arguments; -1 is no call and fails with ENOSYS.
            let (pid, none) = unsafe { (libc::syscall(libc::SYS_getpid), libc::syscall(-1)) };
            i32::from(pid <= 0) | i32::from(!fails_with(none, libc::ENOSYS)) << 1
        };
        assert_eq!(confined(&[x32_guard()], &others), End::Exited(0));
    }
}
