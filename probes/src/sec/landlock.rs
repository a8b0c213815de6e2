//! # `sec.landlock`: an unprivileged container can sandbox itself with Landlock
//!
//! **The feature.** Landlock (Linux 5.13, `CONFIG_SECURITY_LANDLOCK`) is a
//! security module that any process may use on itself, without privilege:
//! it builds a *ruleset* naming the kinds of access it wants the kernel to
//! police (`handled_access_fs`), adds rules granting some of them beneath
//! chosen directories, and calls `landlock_restrict_self`. From then on the
//! kernel refuses, with EACCES, every handled access the rules do not
//! grant, for that thread and everything it starts; the restriction can
//! only be tightened, never lifted. Three system calls do it:
//! `landlock_create_ruleset`, `landlock_add_rule` and
//! `landlock_restrict_self`. The ABI grows with each kernel (new kinds of
//! access, network rules, scopes); `landlock_create_ruleset(NULL, 0,
//! LANDLOCK_CREATE_RULESET_VERSION)` returns its version.
//!
//! Being built is not enough: Landlock must also be in the active list of
//! security modules (the `lsm=` boot parameter, or `CONFIG_LSM`), which
//! `/sys/kernel/security/lsm` shows. A kernel that has it built but not
//! enabled answers EOPNOTSUPP; one without it at all, ENOSYS.
//!
//! **Why no_new_privs.** `landlock_restrict_self` demands that the caller
//! either holds CAP_SYS_ADMIN in its user namespace or has `no_new_privs`
//! set (EPERM otherwise), so that a sandboxed process cannot exec a setuid
//! program that would misbehave under rules it did not expect. A container
//! holds no CAP_SYS_ADMIN, so it is the runtime's `no_new_privs` that lets
//! its processes restrict themselves as they are started. A program may
//! always set the flag itself (`prctl(PR_SET_NO_NEW_PRIVS)` needs nothing),
//! and careful ones do; this probe deliberately does not, because it checks
//! the container the runtime hands over.
//!
//! **How the probe looks.** The helper asks for the ABI version, then writes
//! one file inside `/tmp/landlock-allowed` and one outside it, opens both
//! (the control), builds a ruleset handling `LANDLOCK_ACCESS_FS_READ_FILE`
//! with one rule granting it beneath `/tmp/landlock-allowed`, restricts
//! itself, and opens both files again. If the restriction was refused, it
//! reports that with its `NoNewPrivs` line, then sets `no_new_privs` itself
//! and tries once more, to show what the kernel itself can do.
//!
//! **The control.** Before the restriction both files open: the refusal
//! afterwards is Landlock's, not the files' permissions.
//!
//! **Verdict.** Pass when the restriction took as the container was started
//! and then the file outside gave EACCES while the one inside opened, and
//! both opened before. FAIL when the kernel refused the restriction (EPERM
//! without `no_new_privs`: the container could not sandbox itself as
//! started) or the rule was not enforced. Unsupported when the kernel
//! answers the version query with ENOSYS (no Landlock: before 5.13, as
//! Debian's 5.10) or EOPNOTSUPP (built, not enabled at boot). Debian's 6.1
//! reports ABI 2, 6.12 ABI 6, 7.2 ABI 10.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use crate::inside::{errno, errno_name, errno_of_rc, shown, Errno};
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "sec.landlock",
    property: "a process in the container can restrict its own file access with Landlock, and is refused (EACCES) outside what it allowed",
    needs: Needs {
        since: Some((5, 13)),
        ..Needs::config(&["SECURITY_LANDLOCK"])
    },
    mutations: &[Mutation::SkipNoNewPrivs],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The one directory the ruleset allows reading beneath.
const ALLOWED_DIR: &str = "/tmp/landlock-allowed";
/// A file in [`ALLOWED_DIR`]: must stay readable.
const INSIDE_FILE: &str = "/tmp/landlock-allowed/file";
/// A file outside [`ALLOWED_DIR`]: must be refused once restricted.
const OUTSIDE_FILE: &str = "/tmp/landlock-outside";

/// `landlock_create_ruleset` flag: return the ABI version instead of a ruleset.
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;
/// The access right to open a file for reading (ABI 1).
const LANDLOCK_ACCESS_FS_READ_FILE: u64 = 1 << 2;
/// `landlock_add_rule` type: a right granted beneath a directory.
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;

/// `struct landlock_ruleset_attr` as ABI 1 has it; the kernel accepts this
/// shorter form from every later ABI too.
#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

/// `struct landlock_path_beneath_attr`, which the kernel declares packed.
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// The helper's report.
#[derive(Debug, Serialize, Deserialize)]
enum Sandboxed {
    /// The version query failed: the kernel's errno (ENOSYS, EOPNOTSUPP).
    Absent(String),
    /// Landlock answered; what the restriction did.
    Tried(Trial),
}

/// What the helper saw with Landlock present.
#[derive(Debug, Serialize, Deserialize)]
struct Trial {
    /// The ABI version the kernel reported.
    abi: i64,
    /// `NoNewPrivs` as the container was started.
    no_new_privs: bool,
    /// Both files opened before any restriction (the control).
    before: Opens,
    /// `landlock_restrict_self` as the container was started.
    restrict: Errno,
    /// When that was refused: the same after setting `no_new_privs` itself.
    restrict_after_own_no_new_privs: Option<Errno>,
    /// The opens after whichever restriction took, if one did.
    after: Option<Opens>,
}

/// Opening the file inside and the file outside the allowed directory.
#[derive(Debug, Serialize, Deserialize)]
struct Opens {
    /// Opening [`INSIDE_FILE`] for reading.
    inside: Errno,
    /// Opening [`OUTSIDE_FILE`] for reading.
    outside: Errno,
}

/// Host half: one container reports the control opens, the restriction and
/// the opens under it; a refused version query decides unsupported.
fn run(lab: &Lab) -> Result<Finding, LabError> {
    let trial = match lab.report::<Sandboxed>(lab.spec(&()), Role::Isolated)? {
        Sandboxed::Tried(trial) => trial,
        Sandboxed::Absent(errno) => return Err(absent(&errno)),
    };
    let refused = |outcome: &Errno| outcome.as_ref().err().is_some_and(|e| e == "EACCES");
    let mut evidence = evidence![
        "Landlock ABI version" => trial.abi,
        "NoNewPrivs inside" => trial.no_new_privs,
        "landlock_restrict_self as started" => shown(&trial.restrict),
    ];
    if let Some(retry) = &trial.restrict_after_own_no_new_privs {
        evidence.saw(
            "landlock_restrict_self after setting no_new_privs itself",
            shown(retry),
        );
    }
    if let Some(after) = &trial.after {
        evidence
            .saw(
                format!("open {INSIDE_FILE} restricted"),
                shown(&after.inside),
            )
            .saw(
                format!("open {OUTSIDE_FILE} restricted"),
                shown(&after.outside),
            );
    }
    let property = match (&trial.restrict, &trial.after) {
        (Err(e), _) => Property::Broken(format!(
            "landlock_restrict_self gave {e} to the container as started (NoNewPrivs {}): without no_new_privs or CAP_SYS_ADMIN a process cannot restrict itself{}",
            u8::from(trial.no_new_privs),
            match &trial.restrict_after_own_no_new_privs {
                Some(retry) => format!("; after setting no_new_privs itself: {}", shown(retry)),
                None => String::new(),
            }
        )),
        (Ok(()), None) => return Err(LabError::broken(
            "the helper restricted itself but reported no opens afterwards",
        )),
        (Ok(()), Some(after)) => Property::held_if(
            refused(&after.outside) && after.inside.is_ok(),
            format!(
                "restricted to {ALLOWED_DIR}, opening {OUTSIDE_FILE} gave {} and {INSIDE_FILE} gave {}",
                shown(&after.outside),
                shown(&after.inside)
            ),
        ),
    };
    Ok(Judgement {
        evidence,
        control: evidence![
            format!("open {INSIDE_FILE} before restricting") => shown(&trial.before.inside),
            format!("open {OUTSIDE_FILE} before restricting") => shown(&trial.before.outside),
        ],
        control_separated: trial.before.inside.is_ok() && trial.before.outside.is_ok(),
        property,
    }
    .finding())
}

/// The verdict for a kernel that refused the version query. Only the
/// kernel's "no such call" and "not enabled" mean absent; anything else is
/// ours to explain.
fn absent(errno: &str) -> LabError {
    match errno {
        "ENOSYS" => LabError::Unsupported(
            "landlock_create_ruleset: ENOSYS: the kernel has no Landlock system calls (Linux 5.13, CONFIG_SECURITY_LANDLOCK)".into(),
        ),
        "EOPNOTSUPP" => LabError::Unsupported(format!(
            "landlock_create_ruleset: EOPNOTSUPP: Landlock is built in but not enabled at boot ({})",
            match std::fs::read_to_string("/sys/kernel/security/lsm") {
                Ok(list) => format!("the active security modules are {:?}; landlock is not among them", list.trim()),
                Err(e) => format!("the active list, /sys/kernel/security/lsm, was not readable: {}", errno_name(&e)),
            }
        )),
        other => LabError::broken(format!(
            "landlock_create_ruleset(NULL, 0, VERSION) gave {other}, which says neither absent nor present"
        )),
    }
}

/// Inside: the ABI version, the control opens, the restriction as started
/// (and, if refused, once more after setting `no_new_privs` itself), and
/// the opens under the restriction.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    // SAFETY: a null attribute with size 0 and the VERSION flag reads nothing.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<RulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if abi < 0 {
        let e = std::io::Error::last_os_error();
        return helper.say(&Sandboxed::Absent(errno_name(&e)));
    }
    std::fs::create_dir_all(ALLOWED_DIR).with_context(|| format!("create {ALLOWED_DIR}"))?;
    for file in [INSIDE_FILE, OUTSIDE_FILE] {
        std::fs::write(file, "landlock probe\n").with_context(|| format!("write {file}"))?;
    }
    let no_new_privs = crate::inside::status_field("NoNewPrivs")? == "1";
    let before = opens();
    let ruleset = ruleset_allowing_reads_beneath(ALLOWED_DIR)?;
    let restrict = restrict_self(&ruleset);
    let restrict_after_own_no_new_privs = if restrict.is_err() {
        // Only to show what the kernel can do once the flag is set; the
        // verdict is about the container as it was started.
        nix::sys::prctl::set_no_new_privs().context("set no_new_privs")?;
        Some(restrict_self(&ruleset))
    } else {
        None
    };
    let took = restrict.is_ok() || restrict_after_own_no_new_privs == Some(Ok(()));
    let after = took.then(opens);
    helper.say(&Sandboxed::Tried(Trial {
        abi,
        no_new_privs,
        before,
        restrict,
        restrict_after_own_no_new_privs,
        after,
    }))
}

/// Opens both files for reading.
fn opens() -> Opens {
    Opens {
        inside: errno(std::fs::File::open(INSIDE_FILE)),
        outside: errno(std::fs::File::open(OUTSIDE_FILE)),
    }
}

/// A ruleset that polices reading files and allows it beneath `dir` only.
fn ruleset_allowing_reads_beneath(dir: &str) -> anyhow::Result<OwnedFd> {
    let attr = RulesetAttr {
        handled_access_fs: LANDLOCK_ACCESS_FS_READ_FILE,
    };
    // SAFETY: the kernel reads `size_of::<RulesetAttr>()` bytes from `attr`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0,
        )
    };
    errno_of_rc(fd).map_err(|e| anyhow::anyhow!("landlock_create_ruleset: {e}"))?;
    // SAFETY: the kernel just returned this descriptor to us alone.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let parent = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(dir)
        .with_context(|| format!("open {dir} as O_PATH"))?;
    let rule = PathBeneathAttr {
        allowed_access: LANDLOCK_ACCESS_FS_READ_FILE,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: the kernel reads the packed rule; both descriptors are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            LANDLOCK_RULE_PATH_BENEATH,
            &rule as *const PathBeneathAttr,
            0,
        )
    };
    errno_of_rc(rc).map_err(|e| anyhow::anyhow!("landlock_add_rule beneath {dir}: {e}"))?;
    Ok(ruleset)
}

/// `landlock_restrict_self`: from now on this thread obeys `ruleset`.
fn restrict_self(ruleset: &OwnedFd) -> Errno {
    // SAFETY: takes a descriptor and flags; nothing is read from our memory.
    errno_of_rc(unsafe { libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0) })
}
