//! # `user.overlay`: the root of a user namespace can mount overlayfs
//!
//! **The feature.** overlayfs stacks a writable *upper* directory on a
//! read-only *lower* one: reads fall through to the lower, and the first
//! write to a lower file copies it up, so the lower never changes. It is
//! how images are shared between containers (`rootfs.overlay_cow`), and
//! what rootless builders and nested containers want to do themselves, as
//! the root of a user namespace rather than of the machine.
//!
//! **How the kernel provides it.** Mounting needs CAP_SYS_ADMIN over the
//! user namespace that owns the caller's mount namespace. A filesystem
//! that does not set `FS_USERNS_MOUNT` demands it over the *initial* user
//! namespace instead, which no user namespace's root has. overlayfs set
//! the flag in Linux 5.11, once it could do its privileged work (copy-up,
//! whiteouts, its `trusted.` attributes) with the mounter's credentials
//! and not the kernel's. Debian's 5.10 carries an older patch that allows
//! it only when the overlay module's `permit_mounts_in_userns` is set.
//!
//! **How the probe looks.** The container has a user namespace of its own
//! (`--userns=auto`) and holds CAP_SYS_ADMIN over it, which also lifts the
//! seccomp filter's ban on `mount` (as `--cap-add SYS_ADMIN` does in
//! docker). The helper mounts a tmpfs on `/tmp` (the container's root is
//! itself an overlay, which cannot be an upper layer, and its `/tmp`
//! belongs to the host's root), makes `lower` (holding `base`), `upper`,
//! `work` and `merged` in `/tmp/probe-overlay`, and
//! mounts the overlay on `merged`. Through it, it rewrites `base` and
//! creates `new`, then reports what each layer holds. From the host, the
//! probe compares the helper's user namespace with its own and `stat`s
//! `upper/new` through `/proc/<pid>/root`: the kernel's own account of who
//! wrote it.
//!
//! **The control.** A root without CAP_SYS_ADMIN over the namespace must be
//! refused, or the mount proves nothing about the namespace's root. A
//! child of the helper drops CAP_SYS_ADMIN from its capability sets and
//! tries the same overlay (the same lower, an upper and work directory of
//! its own): the kernel refuses with EPERM. The seccomp filter was built
//! for the container's capabilities and allows `mount`, so the refusal is
//! the kernel's. A control without a user namespace would not separate:
//! the host's root can mount overlayfs on every kernel.
//!
//! **Verdict.** Pass when the helper is in a user namespace of its own, the
//! overlay mounted and is listed in its `mountinfo`, the merged view shows
//! the write, `lower/base` is unchanged and `lower/new` absent, the upper
//! holds both, owned on the host by the uid the namespace maps root to (not
//! 0), and the control was refused with EPERM. With `skip-user-ns` the
//! container's root is the host's: the overlay mounts, but not inside a
//! user namespace, and the upper's files are owned by host uid 0: FAIL.
//! Unsupported when the kernel has no overlayfs (ENODEV), or refuses it to
//! a namespace whose root mounted a tmpfs a moment before (EPERM). On
//! Debian's 5.10 the container itself never starts: the runtime's own root
//! is an overlay mounted inside the container's user namespace, which the
//! kernel refuses there, and the runtime says so (Linux 5.11); the probe is
//! unsupported with that reason. The mounts go with the container's mount
//! namespace.

use std::os::unix::fs::MetadataExt;

use crate::inside::{errno_name, shown, Errno};
use crate::kernel;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "user.overlay",
    property:
        "the root of a user namespace can mount overlayfs, whose writes go to the upper layer only",
    needs: Needs {
        config: &["OVERLAY_FS", "USER_NS"],
        config_v1: &[],
        modules: &["overlay"],
        since: Some((5, 11)),
    },
    mutations: &[Mutation::SkipUserNamespace],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// Where the helper mounts its tmpfs: the rootfs's `/tmp` belongs to the
/// host's root, in which the namespace's root may not create anything.
const TMPFS: &str = "/tmp";
/// Where, on that tmpfs, the helper builds the overlay.
const BASE: &str = "/tmp/probe-overlay";
/// What `lower/base` holds from the start.
const ORIGINAL: &str = "from the lower layer\n";
/// What the helper writes to `base` through the overlay.
const WRITTEN: &str = "written through the overlay\n";
/// The step the kernel may refuse, as reports name it.
const MOUNT_OVERLAY: &str = "mount -t overlay";

/// The helper's report.
#[derive(Debug, Serialize, Deserialize)]
enum Report {
    /// The kernel refused the overlay mount (the tmpfs under it mounted).
    Refused { step: String, errno: String },
    /// The overlay mounted; what each layer held after the writes.
    Mounted(Layers),
}

/// What the helper saw after writing through the overlay.
#[derive(Debug, Serialize, Deserialize)]
struct Layers {
    /// Our `mountinfo` lists an overlay at `merged`.
    listed: bool,
    /// `merged/base` after the write.
    merged_base: String,
    /// `lower/base` after the write.
    lower_base: String,
    /// Whether `lower/new` exists.
    lower_has_new: bool,
    /// `upper/base`, if it exists.
    upper_base: Option<String>,
    /// Whether `upper/new` exists.
    upper_has_new: bool,
    /// The same overlay mount by a child without CAP_SYS_ADMIN.
    without_admin: Errno,
}

/// The host half: starts the helper in a user namespace and judges its report.
fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut spec = lab.admin_spec(&());
    spec.userns = runtime::userns::UserNs::Auto;
    let mut session = lab.start(spec, Role::Isolated)?;
    let report: Report = session.receive()?;
    let judged = judge(session.pid(), report);
    session.finish()?;
    judged
}

/// Weighs the helper's report against what the host sees of its namespace
/// and of the upper layer's files.
fn judge(helper: nix::unistd::Pid, report: Report) -> Result<Finding, LabError> {
    let own_userns = !kernel::same_file(&format!("/proc/{helper}/ns/user"), "/proc/self/ns/user")?;
    let uid_map_path = format!("/proc/{helper}/uid_map");
    let uid_map =
        std::fs::read_to_string(&uid_map_path).or_broken(format!("read {uid_map_path}"))?;
    let uid_map = uid_map.split_whitespace().collect::<Vec<_>>().join(" ");
    let layers = match report {
        Report::Mounted(layers) => layers,
        Report::Refused { step, errno } => return Err(refusal(&step, &errno, own_userns)),
    };
    let upper_new = format!("/proc/{helper}/root{BASE}/upper/new");
    let writer = std::fs::metadata(&upper_new)
        .or_broken(format!("stat {upper_new}"))?
        .uid();
    let root_uid = uid_map
        .split(' ')
        .collect::<Vec<_>>()
        .chunks(3)
        .find(|line| line.first() == Some(&"0"))
        .and_then(|line| line.get(1)?.parse::<u32>().ok());

    let mut wrong = Vec::new();
    if !own_userns || root_uid == Some(0) {
        wrong.push(format!(
            "the overlay was mounted by the host's root, not inside a user namespace (the helper's uid_map is {uid_map:?})"
        ));
    }
    if root_uid != Some(writer) || writer == 0 {
        wrong.push(format!(
            "upper/new is owned by host uid {writer}, where the namespace maps root to {}",
            root_uid.map_or_else(|| "no uid".to_owned(), |uid| uid.to_string())
        ));
    }
    if !layers.listed {
        wrong.push("no overlay at merged in the helper's mountinfo".to_owned());
    }
    if layers.merged_base != WRITTEN {
        wrong.push(format!(
            "merged/base reads {:?} after the write",
            layers.merged_base
        ));
    }
    if layers.lower_base != ORIGINAL || layers.lower_has_new {
        wrong.push(format!(
            "the lower layer changed: base reads {:?}, new exists: {}",
            layers.lower_base, layers.lower_has_new
        ));
    }
    if layers.upper_base.as_deref() != Some(WRITTEN) || !layers.upper_has_new {
        wrong.push(format!(
            "the upper layer lacks the write: base {:?}, new exists: {}",
            layers.upper_base, layers.upper_has_new
        ));
    }
    Ok(Judgement {
        evidence: evidence![
            "helper in a user namespace of its own" => own_userns,
            "helper's uid_map" => &uid_map,
            format!("{MOUNT_OVERLAY} on {BASE}/merged") => "ok",
            "overlay listed in the helper's mountinfo" => layers.listed,
            "merged/base after the write" => format!("{:?}", layers.merged_base),
            "lower/base after the write" => format!("{:?}", layers.lower_base),
            "lower/new exists" => layers.lower_has_new,
            "upper/base" => layers.upper_base.as_ref().map_or_else(|| "absent".to_owned(), |text| format!("{text:?}")),
            "upper/new exists" => layers.upper_has_new,
            "host owner of upper/new" => writer,
        ],
        control: evidence![
            format!("{MOUNT_OVERLAY} by a child without CAP_SYS_ADMIN") => shown(&layers.without_admin),
        ],
        control_separated: layers.without_admin.as_ref().err().is_some_and(|e| e == "EPERM"),
        property: Property::held_if(wrong.is_empty(), wrong.join("; ")),
    }
    .finding())
}

/// The kernel refused the overlay: unsupported when it is the kernel
/// saying "not in a user namespace" (EPERM, where a tmpfs mounted) or "no
/// such filesystem" (ENODEV); broken otherwise.
fn refusal(step: &str, errno: &str, own_userns: bool) -> LabError {
    match errno {
        "EPERM" if own_userns => LabError::Unsupported(format!(
            "{step} by the root of a user namespace: EPERM, where mount -t tmpfs by the same root had succeeded: this kernel does not let a user namespace mount overlayfs (Linux 5.11; Debian's 5.10 only with the overlay module's permit_mounts_in_userns)"
        )),
        "ENODEV" => LabError::Unsupported(format!(
            "{step}: ENODEV: the kernel has no overlay filesystem (CONFIG_OVERLAY_FS)"
        )),
        _ => LabError::Broken(format!(
            "{step}: {errno} (the helper in a user namespace of its own: {own_userns})"
        )),
    }
}

/// Inside: mounts a tmpfs, builds an overlay on it, writes through it and
/// reports each layer; then has a child without CAP_SYS_ADMIN try the same
/// mount.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    use nix::mount::{mount, MsFlags};
    mount(
        Some("probe-overlay-tmpfs"),
        TMPFS,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .with_context(|| format!("mount a tmpfs on {TMPFS}"))?;
    std::fs::create_dir(BASE).with_context(|| format!("create {BASE}"))?;
    for dir in [
        "lower", "upper", "work", "merged", "upper2", "work2", "merged2",
    ] {
        std::fs::create_dir(format!("{BASE}/{dir}")).with_context(|| format!("create {dir}"))?;
    }
    std::fs::write(format!("{BASE}/lower/base"), ORIGINAL).context("write lower/base")?;

    let options = overlay_options("upper", "work");
    if let Err(e) = mount(
        Some("probe-overlay"),
        format!("{BASE}/merged").as_str(),
        Some("overlay"),
        MsFlags::empty(),
        Some(options.as_str()),
    ) {
        return helper.say(&Report::Refused {
            step: MOUNT_OVERLAY.to_owned(),
            errno: errno_name(&std::io::Error::from(e)),
        });
    }
    std::fs::write(format!("{BASE}/merged/base"), WRITTEN).context("write merged/base")?;
    std::fs::write(format!("{BASE}/merged/new"), WRITTEN).context("write merged/new")?;

    let read = |path: &str| {
        std::fs::read_to_string(format!("{BASE}/{path}")).with_context(|| format!("read {path}"))
    };
    let table = std::fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
    let merged = format!("{BASE}/merged");
    let listed = table.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let dash = fields.iter().position(|f| *f == "-");
        fields.get(4) == Some(&merged.as_str())
            && dash.and_then(|d| fields.get(d + 1)) == Some(&"overlay")
    });
    let upper_base = match std::fs::read_to_string(format!("{BASE}/upper/base")) {
        Ok(text) => Some(text),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
        Err(e) => return Err(e).context("read upper/base"),
    };
    let layers = Layers {
        listed,
        merged_base: read("merged/base")?,
        lower_base: read("lower/base")?,
        lower_has_new: crate::inside::exists(&format!("{BASE}/lower/new"))?,
        upper_base,
        upper_has_new: crate::inside::exists(&format!("{BASE}/upper/new"))?,
        without_admin: mount_without_admin(&overlay_options("upper2", "work2"))?,
    };
    helper.say(&Report::Mounted(layers))
}

/// The overlay's options, with `lower` under [`BASE`] and the given upper
/// and work directories.
fn overlay_options(upper: &str, work: &str) -> String {
    format!("lowerdir={BASE}/lower,upperdir={BASE}/{upper},workdir={BASE}/{work}")
}

/// `CAP_SYS_ADMIN`'s bit number (`linux/capability.h`).
const CAP_SYS_ADMIN: u32 = 21;
/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets, in two 32-bit halves.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// A child's exit code when it could not drop the capability.
const CAPSET_FAILED: i32 = 255;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`, one 32-bit half of each set.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Forks a child that drops CAP_SYS_ADMIN from its effective and permitted
/// sets and mounts an overlay with `options` on `merged2`; returns what the
/// mount gave (unmounting it again if it was allowed).
fn mount_without_admin(options: &str) -> anyhow::Result<Errno> {
    let source = c"probe-overlay-control";
    let target = std::ffi::CString::new(format!("{BASE}/merged2"))?;
    let options = std::ffi::CString::new(options)?;
    // SAFETY: the helper is single-threaded; the child only makes system
    // calls on memory prepared before the fork, then _exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let mut header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        // SAFETY: capget/capset read and write the header and two halves we pass.
        let code = unsafe {
            if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
                CAPSET_FAILED
            } else {
                data[0].effective &= !(1 << CAP_SYS_ADMIN);
                data[0].permitted &= !(1 << CAP_SYS_ADMIN);
                if libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) != 0 {
                    CAPSET_FAILED
                } else if libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    c"overlay".as_ptr(),
                    0,
                    options.as_ptr().cast(),
                ) == 0
                {
                    libc::umount2(target.as_ptr(), libc::MNT_DETACH);
                    0
                } else {
                    *libc::__errno_location()
                }
            }
        };
        // SAFETY: ends the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) }
    }
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    let mut status = 0;
    // SAFETY: waits for the child we forked; status is ours.
    if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
        return Err(std::io::Error::last_os_error()).context("waitpid for the control child");
    }
    anyhow::ensure!(
        libc::WIFEXITED(status),
        "the control child did not exit (wait status {status:#x})"
    );
    match libc::WEXITSTATUS(status) {
        0 => Ok(Ok(())),
        CAPSET_FAILED => {
            anyhow::bail!("the control child could not drop CAP_SYS_ADMIN (capget/capset failed)")
        }
        code => Ok(Err(errno_name(&std::io::Error::from_raw_os_error(code)))),
    }
}
