//! # `sec.seccomp_notify`: a supervisor answers a system call for the container
//!
//! **The feature.** A seccomp filter (see `sec.seccomp`) can do more than
//! allow or deny: since Linux 5.0 it can return `SECCOMP_RET_USER_NOTIF`,
//! which parks the calling thread and hands the call to a *supervisor*.
//! Installing the filter with `SECCOMP_FILTER_FLAG_NEW_LISTENER` returns a
//! file descriptor, the listener; the supervisor reads each parked call from
//! it (`SECCOMP_IOCTL_NOTIF_RECV`: the call's number, arguments and caller)
//! and answers it (`SECCOMP_IOCTL_NOTIF_SEND`: a return value or an errno),
//! and the parked call returns that answer. Container engines use it to
//! emulate calls a container may not make itself (mounting, `mknod`),
//! after checking them in the supervisor.
//!
//! **Why WAIT_KILLABLE_RECV.** A parked call waits interruptibly: any signal
//! wakes it, the kernel withdraws the notification and the call fails with
//! EINTR (or restarts, and is notified again). A supervisor that has already
//! started acting on it (mounted something, say) then sees its answer
//! refused with ENOENT. Go programs, whose runtime preempts threads with
//! signals all the time, could hardly finish such a call. Linux 5.19 added
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV`: once the supervisor has
//! received the notification, the call waits *killably* (state `D` in
//! `/proc`): only a fatal signal ends it, and other signals stay pending
//! until the answer has come back. Older kernels refuse the flag with
//! EINVAL.
//!
//! **Why no_new_privs.** The kernel accepts a filter from a process without
//! CAP_SYS_ADMIN (which a container lacks) only when `no_new_privs` is set,
//! otherwise EACCES. The runtime sets it; a program may also set it itself
//! (`prctl(PR_SET_NO_NEW_PRIVS)` needs nothing), but this probe checks the
//! container as the runtime starts it, and sets the flag itself only after
//! a refusal, to show what the kernel itself can do.
//!
//! **How the probe looks.** The helper runs inside the container, under the
//! runtime's own filter; a second filter stacks on it. Each round starts a
//! thread that installs, on itself alone, a filter notifying `getppid` when
//! its first argument is a marker (getppid ignores arguments, so nothing
//! else is touched), and calls it; the helper's main thread is the
//! supervisor, answering 4242. Three rounds:
//!
//! 1. `NEW_LISTENER`: the call returns the answer.
//! 2. `NEW_LISTENER | WAIT_KILLABLE_RECV`: after receiving the notification
//!    the supervisor sends the thread SIGUSR1 (a handler without
//!    `SA_RESTART`), waits until `/proc` shows the thread in state `D` with
//!    SIGUSR1 still pending, and only then answers: the call returns 4242,
//!    and the handler runs afterwards.
//! 3. The control: round 2 without `WAIT_KILLABLE_RECV`. The signal ends the
//!    call with EINTR and the late answer is refused with ENOENT.
//!
//! The same `getppid` without any filter of ours gives the real value (0 for
//! the container's init, whose parent is outside its PID namespace).
//!
//! **Verdict.** Pass when rounds 1 and 2 returned the supervisor's answer,
//! the signal in round 2 stayed pending in a killable wait, and the control
//! was interrupted. FAIL when the filter was refused as the container was
//! started (EACCES without `no_new_privs`), when the call returned anything
//! but the answer, or when a signal interrupted a killable wait.
//! Inconclusive when a wait (10 s) ran out. Unsupported when the kernel
//! refuses `WAIT_KILLABLE_RECV` with EINVAL while accepting `NEW_LISTENER`
//! alone: Debian's 5.10, which has user notification but not the 5.19 flag.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::inside::{errno_name, errno_of_rc, shown, Errno};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "sec.seccomp_notify",
    property: "a process in the container can hand a system call to a supervisor whose answer the call returns, and with WAIT_KILLABLE_RECV a signal does not interrupt it once received",
    needs: Needs {
        since: Some((5, 19)),
        ..Needs::config(&["SECCOMP", "SECCOMP_FILTER"])
    },
    mutations: &[Mutation::SkipNoNewPrivs],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The first argument that marks the one `getppid` call to supervise.
const MARK: u32 = 0x5ec0_4e77;
/// What the supervisor answers; `getppid` inside gives 0 on its own.
const ANSWER: i64 = 4242;
/// How long the helper waits for each step (a thread to start, a
/// notification, a thread to settle or return): a wait that runs out makes
/// the probe inconclusive, never FAIL.
const WAIT: Duration = Duration::from_secs(10);

/// `AUDIT_ARCH_*` of the architecture the helper is built for: the filter
/// lets other calling conventions through untouched.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// How often the SIGUSR1 handler has run, in this helper.
static SIGNALS_HANDLED: AtomicU32 = AtomicU32::new(0);

/// The helper's report.
#[derive(Debug, Serialize, Deserialize)]
struct Supervision {
    /// `getppid(MARK)` with no filter of ours: the real value.
    unfiltered: Result<i64, String>,
    /// `NoNewPrivs` as the container was started.
    no_new_privs: bool,
    /// Round 1: `NEW_LISTENER`, no signal.
    plain: Round,
    /// Round 1 again after the thread set `no_new_privs` itself, when the
    /// container as started was refused.
    plain_after_own_no_new_privs: Option<Round>,
    /// Round 2: `NEW_LISTENER | WAIT_KILLABLE_RECV`, signalled.
    killable: Option<Round>,
    /// Round 3, the control: `NEW_LISTENER`, signalled.
    interruptible: Option<Round>,
}

/// One filter installed and one call supervised.
#[derive(Debug, Serialize, Deserialize)]
struct Round {
    /// What installing the filter gave.
    install: Errno,
    /// What the supervisor saw, when the filter went in.
    notified: Option<Notified>,
    /// Which wait ran out, if one did.
    ran_out: Option<String>,
}

/// What the supervisor saw of one parked call.
#[derive(Debug, Serialize, Deserialize)]
struct Notified {
    /// The notification named our call: `getppid`, the marker, our thread.
    matched: bool,
    /// How the thread settled after SIGUSR1, in the signalled rounds.
    signalled: Option<Settled>,
    /// What `SECCOMP_IOCTL_NOTIF_SEND` of the answer gave.
    send: Errno,
    /// What the call returned.
    returned: Result<i64, String>,
    /// How often the SIGUSR1 handler ran during the round.
    handled: u32,
}

/// Where a parked thread went after SIGUSR1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Settled {
    /// Still parked, in a killable wait (`D`); whether SIGUSR1 was pending.
    Waiting { pending: bool },
    /// The call returned before it was answered.
    Returned,
}

/// Host half: one container runs the three rounds; judged by [`judge`], the
/// control by the unfiltered call and the interrupted round.
fn run(lab: &Lab) -> Result<Finding, LabError> {
    let seen: Supervision = lab.report(lab.spec(&()), Role::Isolated)?;
    let mut evidence = evidence![
        "NoNewPrivs inside" => seen.no_new_privs,
        "NEW_LISTENER filter as started" => shown(&seen.plain.install),
    ];
    if let Some(retry) = &seen.plain_after_own_no_new_privs {
        evidence.saw(
            "NEW_LISTENER filter after setting no_new_privs itself",
            shown(&retry.install),
        );
        describe(&mut evidence, "after own no_new_privs, ", retry);
    }
    describe(&mut evidence, "", &seen.plain);
    if let Some(killable) = &seen.killable {
        evidence.saw(
            "NEW_LISTENER|WAIT_KILLABLE_RECV filter",
            shown(&killable.install),
        );
        describe(&mut evidence, "killable, ", killable);
    }
    let mut control = evidence![
        "getppid(mark) without a filter of ours" => returned(&seen.unfiltered),
    ];
    if let Some(interruptible) = &seen.interruptible {
        describe(&mut control, "without WAIT_KILLABLE_RECV, ", interruptible);
    }
    let control_separated = seen.unfiltered != Ok(ANSWER)
        && seen
            .interruptible
            .as_ref()
            .and_then(|round| round.notified.as_ref())
            .is_some_and(|n| {
                n.signalled == Some(Settled::Returned) && n.returned == Err("EINTR".into())
            });
    let property = judge(&seen)?;
    Ok(Judgement {
        evidence,
        control,
        control_separated,
        property,
    }
    .finding())
}

/// The property from the rounds: the plain call answered, then the
/// killable one answered despite the signal.
fn judge(seen: &Supervision) -> Result<Property, LabError> {
    let plain = &seen.plain;
    if let Some(wait) = &plain.ran_out {
        return Ok(unclear("the supervised call", wait));
    }
    if let Err(e) = &plain.install {
        return Ok(Property::Broken(format!(
            "installing a notifying filter gave {e} to the container as started (NoNewPrivs {}): without no_new_privs or CAP_SYS_ADMIN a process cannot install one{}",
            u8::from(seen.no_new_privs),
            match &seen.plain_after_own_no_new_privs {
                Some(retry) => format!("; after setting no_new_privs itself: {}", shown(&retry.install)),
                None => String::new(),
            }
        )));
    }
    if let Some(unclear) = answered(plain, "the supervised call") {
        return Ok(unclear);
    }
    let killable = seen
        .killable
        .as_ref()
        .or_broken("the helper ran no killable round")?;
    if let Some(wait) = &killable.ran_out {
        return Ok(unclear("the killable call", wait));
    }
    match killable.install.as_ref().err().map(String::as_str) {
        None => {}
        Some("EINVAL") => {
            return Err(LabError::Unsupported(format!(
                "seccomp(SET_MODE_FILTER, NEW_LISTENER|WAIT_KILLABLE_RECV): EINVAL, while NEW_LISTENER alone was accepted: the kernel has user notification (the supervised getppid returned the answer {ANSWER}) but not SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19)"
            )))
        }
        Some(e) => {
            return Ok(Property::Broken(format!(
                "a filter with WAIT_KILLABLE_RECV gave {e}, though NEW_LISTENER alone was accepted"
            )))
        }
    }
    if let Some(unclear) = answered(killable, "the killable call") {
        return Ok(unclear);
    }
    let notified = killable.notified.as_ref().or_broken("no killable call")?;
    Ok(match notified.signalled {
        Some(Settled::Waiting { pending: true }) => Property::Held,
        Some(Settled::Waiting { pending: false }) => Property::Unclear(
            "the killable call was parked in state D, but SIGUSR1 was not pending: it was not the signal that was held off".into(),
        ),
        Some(Settled::Returned) => Property::Broken(
            "SIGUSR1 interrupted a call parked under WAIT_KILLABLE_RECV after the supervisor had received it".into(),
        ),
        None => return Err(LabError::broken("the killable round sent no signal")),
    })
}

/// `None` when the round's call returned the supervisor's answer; else
/// what that says about the property (a wait that ran out is unclear).
fn answered(round: &Round, what: &str) -> Option<Property> {
    if let Some(wait) = &round.ran_out {
        return Some(unclear(what, wait));
    }
    let Some(notified) = &round.notified else {
        return Some(Property::Broken(format!(
            "{what} was never notified to the supervisor"
        )));
    };
    if !notified.matched {
        return Some(Property::Broken(format!(
            "{what}: the notification did not name getppid with the marker from the calling thread"
        )));
    }
    (notified.returned != Ok(ANSWER)).then(|| {
        Property::Broken(format!(
            "{what} returned {} where the supervisor answered {ANSWER} (its answer gave {})",
            returned(&notified.returned),
            shown(&notified.send)
        ))
    })
}

/// A wait of the helper's that ran out: the machine kept it from telling.
fn unclear(what: &str, wait: &str) -> Property {
    Property::Unclear(format!(
        "{what}: {wait} within {WAIT:?}: the machine may be too slow to tell"
    ))
}

/// Adds one round's observations, each name starting with `prefix`.
fn describe(evidence: &mut Evidence, prefix: &str, round: &Round) {
    if let Some(notified) = &round.notified {
        if let Some(settled) = notified.signalled {
            evidence.saw(
                format!("{prefix}parked thread after SIGUSR1"),
                match settled {
                    Settled::Waiting { pending: true } => "state D, SIGUSR1 pending",
                    Settled::Waiting { pending: false } => "state D, nothing pending",
                    Settled::Returned => "the call returned before it was answered",
                },
            );
        }
        evidence
            .saw(
                format!("{prefix}answer {ANSWER} sent"),
                shown(&notified.send),
            )
            .saw(
                format!("{prefix}getppid(mark) returned"),
                returned(&notified.returned),
            );
        if notified.signalled.is_some() {
            evidence.saw(format!("{prefix}SIGUSR1 handler runs"), notified.handled);
        }
    }
    if let Some(wait) = &round.ran_out {
        evidence.saw(format!("{prefix}wait ran out"), wait);
    }
}

/// A call's outcome as evidence shows it: the value, or the errno.
fn returned(outcome: &Result<i64, String>) -> String {
    match outcome {
        Ok(value) => value.to_string(),
        Err(name) => name.clone(),
    }
}

/// Inside: the unfiltered call, then the three rounds (only the first, and
/// its retry with our own `no_new_privs`, when the container as started
/// may not install a filter).
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    count_sigusr1()?;
    let unfiltered = getppid_marked();
    let no_new_privs = crate::inside::status_field("NoNewPrivs")? == "1";
    let new_listener = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    let plain = supervise(new_listener, false, false)?;
    let refused = plain.install.is_err() && plain.ran_out.is_none();
    let report = Supervision {
        unfiltered,
        no_new_privs,
        plain,
        plain_after_own_no_new_privs: if refused {
            Some(supervise(new_listener, true, false)?)
        } else {
            None
        },
        killable: if refused {
            None
        } else {
            let flags = new_listener | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
            Some(supervise(flags, false, true)?)
        },
        interruptible: if refused {
            None
        } else {
            Some(supervise(new_listener, false, true)?)
        },
    };
    helper.say(&report)
}

/// What the supervised thread tells the supervisor.
enum FromThread {
    /// Its thread id, and the listener of the filter it installed.
    Ready {
        tid: libc::pid_t,
        listener: Result<OwnedFd, String>,
    },
    /// What its `getppid(MARK)` returned.
    Returned(Result<i64, String>),
}

/// One round: a thread installs a filter with `flags` on itself (after
/// setting `no_new_privs` itself if `own_no_new_privs`) and makes the
/// marked call; this thread receives it, sends SIGUSR1 first if `signal`,
/// and answers [`ANSWER`].
fn supervise(flags: libc::c_ulong, own_no_new_privs: bool, signal: bool) -> anyhow::Result<Round> {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || supervised(flags, own_no_new_privs, tx));
    let ran_out = |what: &str| Round {
        install: Ok(()),
        notified: None,
        ran_out: Some(what.to_owned()),
    };
    let (tid, listener) = match rx.recv_timeout(WAIT) {
        Ok(FromThread::Ready { tid, listener }) => (tid, listener),
        Ok(FromThread::Returned(_)) => {
            anyhow::bail!("the supervised thread called before it was ready")
        }
        // Leaving the thread behind: dropping `rx` makes its send fail,
        // which drops the listener, so its call can never park.
        Err(RecvTimeoutError::Timeout) => {
            return Ok(Round {
                install: Err("unknown: the thread never said".into()),
                ..ran_out("the supervised thread did not start")
            })
        }
        Err(RecvTimeoutError::Disconnected) => anyhow::bail!("the supervised thread died"),
    };
    let listener = match listener {
        Ok(listener) => listener,
        Err(refused) => {
            let _ = thread.join();
            return Ok(Round {
                install: Err(refused),
                notified: None,
                ran_out: None,
            });
        }
    };
    let outcome = answer_one(&listener, tid, signal, &rx);
    // Closing the listener ends a call still parked (with ENOSYS), so the
    // thread can always be joined.
    drop(listener);
    let _ = thread.join();
    Ok(match outcome? {
        Ok(notified) => Round {
            install: Ok(()),
            notified: Some(notified),
            ran_out: None,
        },
        Err(what) => ran_out(what),
    })
}

/// The supervisor's side of a round: receive the notification from thread
/// `tid`, signal it if asked, answer it, and collect what the call
/// returned. `Ok(Err(what))` names a wait that ran out.
fn answer_one(
    listener: &OwnedFd,
    tid: libc::pid_t,
    signal: bool,
    from_thread: &Receiver<FromThread>,
) -> anyhow::Result<Result<Notified, &'static str>> {
    if !crate::inside::readable_within(listener.as_fd(), WAIT, "the listener")? {
        return Ok(Err("no notification arrived"));
    }
    // SAFETY: all zeroes is a valid seccomp_notif; the kernel demands it.
    let mut notification: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes one seccomp_notif into `notification`.
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut notification,
        )
    };
    errno_of_rc(rc.into()).map_err(|e| anyhow::anyhow!("SECCOMP_IOCTL_NOTIF_RECV: {e}"))?;
    let data = &notification.data;
    let matched = i64::from(data.nr) == libc::SYS_getppid
        && data.args[0] as u32 == MARK
        && i64::from(notification.pid) == i64::from(tid);
    let handled_before = SIGNALS_HANDLED.load(Ordering::SeqCst);
    let mut early = None;
    let signalled = if signal {
        // SAFETY: tgkill takes numbers only.
        let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, libc::SIGUSR1) };
        errno_of_rc(rc).map_err(|e| anyhow::anyhow!("tgkill SIGUSR1: {e}"))?;
        match settle(tid, from_thread)? {
            Some(Ok(settled)) => Some(settled),
            Some(Err(value)) => {
                early = Some(value);
                Some(Settled::Returned)
            }
            None => {
                return Ok(Err(
                    "the signalled thread neither parked killably nor returned",
                ))
            }
        }
    } else {
        None
    };
    let response = libc::seccomp_notif_resp {
        id: notification.id,
        val: ANSWER,
        error: 0,
        flags: 0,
    };
    // SAFETY: the kernel reads one seccomp_notif_resp.
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &response,
        )
    };
    let send = errno_of_rc(rc.into());
    let returned = match early {
        Some(value) => value,
        None => match from_thread.recv_timeout(WAIT) {
            Ok(FromThread::Returned(value)) => value,
            Ok(FromThread::Ready { .. }) => anyhow::bail!("the supervised thread said ready twice"),
            Err(RecvTimeoutError::Timeout) => return Ok(Err("the answered call did not return")),
            Err(RecvTimeoutError::Disconnected) => anyhow::bail!("the supervised thread died"),
        },
    };
    Ok(Ok(Notified {
        matched,
        signalled,
        send,
        returned,
        handled: SIGNALS_HANDLED.load(Ordering::SeqCst) - handled_before,
    }))
}

/// Waits for the signalled thread `tid` to settle: parked killably (state
/// `D`, with whether SIGUSR1 is pending) or returned from its call (with
/// the value). `None` when neither happened within [`WAIT`].
fn settle(
    tid: libc::pid_t,
    from_thread: &Receiver<FromThread>,
) -> anyhow::Result<Option<Result<Settled, Result<i64, String>>>> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(FromThread::Returned(value)) = from_thread.try_recv() {
            return Ok(Some(Err(value)));
        }
        // A thread parked before the supervisor received the call, and any
        // wait without the flag, is interruptible (`S`); only the killable
        // wait it re-enters after the signal shows as `D`.
        // A thread that returned may be gone before its message is read:
        // no state then, and the next turn reads what it returned.
        if thread_state(tid)? == Some('D') {
            let pending = u64::from_str_radix(&task_status_field(tid, "SigPnd")?, 16)
                .context("SigPnd is not hexadecimal")?;
            let sigusr1 = 1u64 << (libc::SIGUSR1 - 1);
            return Ok(Some(Ok(Settled::Waiting {
                pending: pending & sigusr1 != 0,
            })));
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The supervised thread: installs the filter on itself and, if that took,
/// makes the marked call and reports what it returned.
fn supervised(flags: libc::c_ulong, own_no_new_privs: bool, to_supervisor: Sender<FromThread>) {
    // SAFETY: gettid takes nothing and cannot fail.
    let tid = unsafe { libc::gettid() };
    let listener = if own_no_new_privs {
        nix::sys::prctl::set_no_new_privs()
            .map_err(|e| format!("prctl(PR_SET_NO_NEW_PRIVS): {e}"))
            .and_then(|()| install_notifying_filter(flags))
    } else {
        install_notifying_filter(flags)
    };
    let installed = listener.is_ok();
    if to_supervisor
        .send(FromThread::Ready { tid, listener })
        .is_err()
        || !installed
    {
        return;
    }
    let _ = to_supervisor.send(FromThread::Returned(getppid_marked()));
}

/// `getppid` with the marker as its (ignored) first argument.
fn getppid_marked() -> Result<i64, String> {
    // SAFETY: getppid reads no arguments.
    let rc = unsafe { libc::syscall(libc::SYS_getppid, libc::c_long::from(MARK)) };
    errno_of_rc(rc).map(|()| rc)
}

/// Installs, on the calling thread only, a filter that notifies the marked
/// `getppid` and allows everything else; returns its listener.
fn install_notifying_filter(flags: libc::c_ulong) -> Result<OwnedFd, String> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    /// `offsetof(struct seccomp_data, ...)`; args[0]'s low word comes first
    /// on the little-endian machines this builds for.
    const NR: u32 = 0;
    const ARCH: u32 = 4;
    const ARG0_LOW: u32 = 16;
    let statement = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    // On a match go on to the next instruction; otherwise skip `jf` of them.
    let unless = |k: u32, jf: u8| libc::sock_filter {
        code: (BPF_JMP | BPF_JEQ | BPF_K) as u16,
        jt: 0,
        jf,
        k,
    };
    let program = [
        statement(BPF_LD | BPF_W | BPF_ABS, ARCH),
        unless(AUDIT_ARCH, 5),
        statement(BPF_LD | BPF_W | BPF_ABS, NR),
        unless(libc::SYS_getppid as u32, 3),
        statement(BPF_LD | BPF_W | BPF_ABS, ARG0_LOW),
        unless(MARK, 1),
        statement(BPF_RET | BPF_K, libc::SECCOMP_RET_USER_NOTIF),
        statement(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: the kernel copies the program in; it outlives the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(errno_name(&std::io::Error::last_os_error()));
    }
    // SAFETY: with NEW_LISTENER the kernel returned a new descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Counts SIGUSR1 in [`SIGNALS_HANDLED`], without `SA_RESTART`, so that an
/// interrupted call fails with EINTR instead of being made again.
fn count_sigusr1() -> anyhow::Result<()> {
    extern "C" fn count(_: libc::c_int) {
        SIGNALS_HANDLED.fetch_add(1, Ordering::SeqCst);
    }
    // SAFETY: all zeroes is an empty sigaction; the handler only touches an atomic.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut())
    };
    errno_of_rc(rc.into()).map_err(|e| anyhow::anyhow!("sigaction SIGUSR1: {e}"))
}

/// The state letter of thread `tid` (`R`, `S`, `D`, ...) from its `stat`;
/// `None` once the thread has exited (its `/proc` entry is gone: ENOENT, or
/// ESRCH for an entry that went while being read).
fn thread_state(tid: libc::pid_t) -> anyhow::Result<Option<char>> {
    let path = format!("/proc/self/task/{tid}/stat");
    let stat = match std::fs::read_to_string(&path) {
        Ok(stat) => stat,
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {path}")),
    };
    crate::kernel::stat_fields(&stat)
        .first()
        .and_then(|state| state.chars().next())
        .map(Some)
        .with_context(|| format!("no state in {path}: {stat:?}"))
}

/// One line of thread `tid`'s `status` (`SigPnd`: its own pending signals).
fn task_status_field(tid: libc::pid_t, name: &str) -> anyhow::Result<String> {
    let path = format!("/proc/self/task/{tid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    status
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key == name).then(|| value.trim().to_owned())
        })
        .with_context(|| format!("no {name} line in {path}"))
}
