//! # `time.ns`: a time namespace offsets CLOCK_MONOTONIC and CLOCK_BOOTTIME
//!
//! **The feature.** A time namespace (Linux 5.6, `CONFIG_TIME_NS`) gives its
//! members their own view of the two clocks that count from boot:
//! `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME`. The wall clock
//! (`CLOCK_REALTIME`) is shared by the whole machine and is not offset. The
//! use is checkpoint and restore: a container moved to another machine
//! keeps clocks that do not jump back to that machine's uptime.
//!
//! **How the kernel provides it.** `unshare(CLONE_NEWTIME)` does not move
//! the caller: it makes a namespace that the caller's *next children* are
//! born into (`/proc/self/ns/time_for_children`). Until the first child is
//! born, the offsets can be written to `/proc/self/timens_offsets`, one line
//! per clock (`monotonic 86400 0`: seconds and nanoseconds), by a holder of
//! CAP_SYS_TIME over the namespace's owner; then they are frozen. The
//! kernel adds them in `clock_gettime`, in the system call and in the vDSO
//! alike: a namespace member gets a vDSO data page of its own that sends
//! it to the offsets.
//!
//! **How the probe looks.** The container has a user namespace of its own
//! (`--userns=auto`) and holds CAP_SYS_ADMIN (to unshare, which also lifts
//! the seccomp filter's ban on `unshare`, as `--cap-add SYS_ADMIN` does in
//! docker) and CAP_SYS_TIME (to write the offsets), both over that user
//! namespace only. The helper unshares, writes a day (86400 s) for both
//! clocks, reads the file back, and forks: the child reads its two clocks
//! and the name of its time namespace, the parent reads its own clocks
//! before the fork and after the child has been reaped.
//!
//! **The bound.** The three readings are of one clock, so no tolerance is
//! needed however slow the machine: the child's reading minus exactly one
//! day must lie between the parent's two readings. The evidence shows how
//! far the child was ahead, as an interval as wide as the time the fork
//! took (milliseconds here, more under emulation).
//!
//! **The control.** The same helper forks without unsharing: the child
//! shares the parent's time namespace, and its clocks lie between the
//! parent's readings with no offset at all.
//!
//! **Verdict.** Pass when the child was in a namespace other than its
//! parent's and both its clocks were ahead by exactly the day written,
//! while the control's child was not ahead. A kernel without time
//! namespaces has no `/proc/self/ns/time` and refuses the flag with EINVAL
//! (before 5.6 `CLONE_NEWTIME`'s bit is not a flag `unshare` knows; without
//! `CONFIG_TIME_NS` the namespace cannot be made): unsupported. Every Debian
//! kernel from 5.10 has it, but on 5.10 the container never starts: the
//! runtime cannot mount its overlay inside the user namespace this probe
//! asks for (Linux 5.11), and says so, which makes the probe unsupported
//! there with that reason.
//!
//! **No mutation.** The runtime neither makes nor configures time
//! namespaces (it has no `timeOffsets`, which the OCI spec defines), so no
//! runtime defect can take the offset away. Its seccomp filter and
//! capability set decide only whether a container may make one at all: a
//! container without CAP_SYS_ADMIN is refused (EPERM), which is the
//! runtime's confinement working, not the feature breaking.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};

use crate::inside::errno_name;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "time.ns",
    property: "a time namespace offsets CLOCK_MONOTONIC and CLOCK_BOOTTIME for its members, and only for them",
    needs: Needs {
        config: &["TIME_NS", "USER_NS"],
        config_v1: &[],
        modules: &[],
        since: Some((5, 6)),
    },
    mutations: &[],
    why_no_mutation: Some(
        "the runtime creates no time namespace (it has no OCI timeOffsets); its seccomp filter and capabilities only decide whether a container may make one",
    ),
    selftests: &["timens/*"],
    run,
    inside,
};

/// The offset written for both clocks: one day, in seconds.
const DAY_SECONDS: i64 = 86_400;

/// CAP_SYS_TIME's bit number (`linux/capability.h`), which libc does not export.
const CAP_SYS_TIME: u32 = 25;

/// One second in nanoseconds.
const SECOND_NS: i128 = 1_000_000_000;

/// What the probe asks the helper to do.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    /// Unshare a time namespace and write the day's offsets before forking
    /// (false for the control).
    new_namespace: bool,
}

/// Both clocks that a time namespace offsets, in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Clocks {
    monotonic_ns: i128,
    boottime_ns: i128,
}

/// The helper's report.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    /// The kernel refused a step, with the errno's name.
    Refused { step: String, errno: String },
    /// The child was forked and read its clocks.
    Forked(Forked),
}

/// What the parent and its child saw of their time namespaces and clocks.
#[derive(Debug, Serialize, Deserialize)]
struct Forked {
    /// The parent's `/proc/self/ns/time` (its own time namespace).
    parent_namespace: String,
    /// The child's `/proc/self/ns/time`.
    child_namespace: String,
    /// `/proc/self/timens_offsets` read back after the write, when one
    /// was made.
    offsets: Option<String>,
    /// The parent's clocks just before the fork.
    before: Clocks,
    /// The child's clocks.
    child: Clocks,
    /// The parent's clocks once the child was reaped.
    after: Clocks,
}

/// How far a child's clock was ahead of its parent's, as an interval: at
/// least `child - after`, at most `child - before`, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Ahead {
    least: i128,
    most: i128,
}

impl Ahead {
    /// The interval for one clock, picked out of each reading by `clock`.
    fn of(before: Clocks, child: Clocks, after: Clocks, clock: fn(Clocks) -> i128) -> Ahead {
        Ahead {
            least: clock(child) - clock(after),
            most: clock(child) - clock(before),
        }
    }

    /// Whether an offset of exactly `seconds` lies within the interval.
    fn allows(self, seconds: i64) -> bool {
        let offset = i128::from(seconds) * SECOND_NS;
        self.least <= offset && offset <= self.most
    }
}

impl std::fmt::Display for Ahead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let seconds = |ns: i128| ns as f64 / SECOND_NS as f64;
        write!(
            f,
            "between {:.6} s and {:.6} s",
            seconds(self.least),
            seconds(self.most)
        )
    }
}

/// What one run showed: the child's namespace differs from the parent's,
/// and how far each of its clocks was ahead.
struct Seen {
    own_namespace: bool,
    monotonic: Ahead,
    boottime: Ahead,
    evidence: Evidence,
}

/// The host half: a run with a time namespace for the child, and the control without.
fn run(lab: &Lab) -> Result<Finding, LabError> {
    let seen = observe(lab, true, Role::Isolated)?;
    let control = observe(lab, false, Role::Control)?;

    let offset_by_a_day = seen.monotonic.allows(DAY_SECONDS) && seen.boottime.allows(DAY_SECONDS);
    Ok(Judgement {
        evidence: seen.evidence,
        control: control.evidence,
        control_separated: !control.own_namespace
            && control.monotonic.allows(0)
            && control.boottime.allows(0),
        property: Property::held_if(
            seen.own_namespace && offset_by_a_day,
            if seen.own_namespace {
                format!(
                    "the child's clocks were not ahead by the {DAY_SECONDS} s written: CLOCK_MONOTONIC {}, CLOCK_BOOTTIME {}",
                    seen.monotonic, seen.boottime
                )
            } else {
                "the child was born in its parent's time namespace, not in the one unshared for it"
                    .to_owned()
            },
        ),
    }
    .finding())
}

/// Runs the helper, with or without a new time namespace for its child,
/// and reads what it saw.
fn observe(lab: &Lab, new_namespace: bool, role: Role) -> Result<Seen, LabError> {
    let mut spec = lab.admin_spec(&Request { new_namespace });
    spec.userns = runtime::userns::UserNs::Auto;
    // Writing the offsets takes CAP_SYS_TIME over the namespace's owner,
    // the container's user namespace: not the host's clock.
    spec.security.capabilities |= 1 << CAP_SYS_TIME;
    let Forked {
        parent_namespace,
        child_namespace,
        offsets,
        before,
        child,
        after,
    } = match lab.report(spec, role)? {
        Report::Refused { step, errno } => return Err(refusal(&step, &errno)),
        Report::Forked(forked) => forked,
    };
    let monotonic = Ahead::of(before, child, after, |c| c.monotonic_ns);
    let boottime = Ahead::of(before, child, after, |c| c.boottime_ns);
    let unshared = if new_namespace { "" } else { " (no unshare)" };
    let mut evidence = evidence![
        "parent's time namespace" => &parent_namespace,
        format!("child's time namespace{unshared}") => &child_namespace,
    ];
    if let Some(offsets) = offsets {
        evidence.saw(
            "timens_offsets after writing a day",
            offsets.split_whitespace().collect::<Vec<_>>().join(" "),
        );
    }
    evidence
        .saw(
            format!("child's CLOCK_MONOTONIC ahead of the parent's{unshared}"),
            monotonic,
        )
        .saw(
            format!("child's CLOCK_BOOTTIME ahead of the parent's{unshared}"),
            boottime,
        );
    Ok(Seen {
        own_namespace: child_namespace != parent_namespace,
        monotonic,
        boottime,
        evidence,
    })
}

/// A step the kernel refused: unsupported when the kernel says it has no
/// time namespaces, else broken (the container was not given what the
/// probe needs).
fn refusal(step: &str, errno: &str) -> LabError {
    let no_time_namespaces = matches!((step, errno), (NS_LINK, "ENOENT") | (UNSHARE, "EINVAL"));
    if no_time_namespaces {
        LabError::Unsupported(format!(
            "{step}: {errno}: the kernel has no time namespaces (Linux 5.6, CONFIG_TIME_NS)"
        ))
    } else {
        LabError::Broken(format!(
            "{step}: {errno}: the kernel refused the container's root, which holds CAP_SYS_ADMIN and CAP_SYS_TIME over its user namespace"
        ))
    }
}

/// The link naming a process's time namespace.
const NS_LINK: &str = "/proc/self/ns/time";
/// The step that makes the namespace, as reports name it.
const UNSHARE: &str = "unshare(CLONE_NEWTIME)";
/// Where the offsets of the namespace for our children are written.
const OFFSETS: &str = "/proc/self/timens_offsets";

/// Inside: unshares a time namespace and writes a day's offsets (if asked),
/// forks a child that reads its clocks, and reports both sides' readings.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let Request { new_namespace } = helper.ask()?;
    let parent_namespace = match std::fs::read_link(NS_LINK) {
        Ok(link) => link.to_string_lossy().into_owned(),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            return helper.say(&Report::Refused {
                step: NS_LINK.to_owned(),
                errno: errno_name(&e),
            });
        }
        Err(e) => return Err(e).with_context(|| format!("readlink {NS_LINK}")),
    };
    let mut offsets = None;
    if new_namespace {
        // SAFETY: unshare takes flags only.
        if unsafe { libc::unshare(libc::CLONE_NEWTIME) } != 0 {
            return helper.say(&Report::Refused {
                step: UNSHARE.to_owned(),
                errno: errno_name(&std::io::Error::last_os_error()),
            });
        }
        let lines = format!("monotonic {DAY_SECONDS} 0\nboottime {DAY_SECONDS} 0\n");
        if let Err(e) = std::fs::write(OFFSETS, lines) {
            return helper.say(&Report::Refused {
                step: format!("write {OFFSETS}"),
                errno: errno_name(&e),
            });
        }
        offsets =
            Some(std::fs::read_to_string(OFFSETS).with_context(|| format!("read {OFFSETS}"))?);
    }
    let (before, child, child_namespace, after) = fork_and_read_clocks()?;
    helper.say(&Report::Forked(Forked {
        parent_namespace,
        child_namespace,
        offsets,
        before,
        child,
        after,
    }))
}

/// Reads both clocks, forks a child that reads its own and its namespace's
/// name, reaps it, reads ours again. Returns (ours before, the child's, the
/// child's namespace, ours after).
fn fork_and_read_clocks() -> anyhow::Result<(Clocks, Clocks, String, Clocks)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let before = now()?;
    // SAFETY: the helper is single-threaded; the child only makes system
    // calls on memory of its own stack, then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        child_reports(&write_end);
    }
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    drop(write_end);
    let mut said = Vec::new();
    let read = std::fs::File::from(read_end).read_to_end(&mut said);
    let mut status = 0;
    // SAFETY: waits for the child we forked; status is ours.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(std::io::Error::last_os_error()).context("waitpid for the clock reader");
    }
    let after = now()?;
    read.context("read the child's clocks")?;
    anyhow::ensure!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child reading the clocks failed (wait status {status:#x}; exit 1: clock_gettime, 2: readlink {NS_LINK})"
    );
    anyhow::ensure!(said.len() > 32, "the child said only {} bytes", said.len());
    let number = |at: usize| i128::from_le_bytes(said[at..at + 16].try_into().expect("16 bytes"));
    let child = Clocks {
        monotonic_ns: number(0),
        boottime_ns: number(16),
    };
    let namespace = String::from_utf8_lossy(&said[32..]).into_owned();
    Ok((before, child, namespace, after))
}

/// The forked child: writes its two clocks (16 bytes each, little-endian
/// nanoseconds) and its `/proc/self/ns/time` to `out`, then exits. Only
/// system calls on its own stack: nothing a fork could have left locked.
fn child_reports(out: &OwnedFd) -> ! {
    use std::os::fd::AsRawFd;
    let mut said = [0u8; 160];
    let code = match (
        clock_ns(libc::CLOCK_MONOTONIC),
        clock_ns(libc::CLOCK_BOOTTIME),
    ) {
        (Some(monotonic), Some(boottime)) => {
            said[..16].copy_from_slice(&monotonic.to_le_bytes());
            said[16..32].copy_from_slice(&boottime.to_le_bytes());
            // SAFETY: readlink writes at most the room left after the clocks.
            let n = unsafe {
                libc::readlink(
                    c"/proc/self/ns/time".as_ptr(),
                    said[32..].as_mut_ptr().cast(),
                    said.len() - 32,
                )
            };
            if n > 0 {
                // SAFETY: writes bytes of our own buffer to our own pipe.
                unsafe { libc::write(out.as_raw_fd(), said.as_ptr().cast(), 32 + n as usize) };
                0
            } else {
                2
            }
        }
        _ => 1,
    };
    // SAFETY: ends the child without running the parent's exit handlers.
    unsafe { libc::_exit(code) }
}

/// Both clocks now, as this process's time namespace shows them.
fn now() -> anyhow::Result<Clocks> {
    match (
        clock_ns(libc::CLOCK_MONOTONIC),
        clock_ns(libc::CLOCK_BOOTTIME),
    ) {
        (Some(monotonic_ns), Some(boottime_ns)) => Ok(Clocks {
            monotonic_ns,
            boottime_ns,
        }),
        _ => Err(std::io::Error::last_os_error()).context("clock_gettime"),
    }
}

/// One clock in nanoseconds, or `None` when `clock_gettime` failed.
fn clock_ns(clock: libc::clockid_t) -> Option<i128> {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we pass.
    let rc = unsafe { libc::clock_gettime(clock, &mut time) };
    (rc == 0).then(|| i128::from(time.tv_sec) * SECOND_NS + i128::from(time.tv_nsec))
}
