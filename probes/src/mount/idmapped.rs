//! # `mount.idmapped`: an idmapped mount shows files under the mapped owner
//!
//! **The feature.** A file's owner is stored as one id, the one the
//! filesystem was mounted with. A container in a user namespace
//! (`user.map`) runs as host uid 1000000000, so a volume full of files
//! owned by root is, to the container's root, owned by a stranger: the old
//! fix was to `chown -R` the whole tree. An idmapped mount (Linux 5.12)
//! translates instead, per mount: through it, an id on disk is read as an
//! id *inside* a user namespace and shown as what that namespace maps it
//! to. With the container's map (`0 1000000000 65536`), root's files show
//! as owned by 1000000000, the container's root, and a file the container
//! creates lands on disk as uid 0. Nothing on disk changes, and every other
//! mount of the same filesystem still shows the real owners.
//!
//! **How the kernel provides it.** Only through the new mount API, on a
//! mount that is not yet attached anywhere: `open_tree(OPEN_TREE_CLONE)`
//! copies a mount into a detached one and returns a file descriptor for it,
//! `mount_setattr(MOUNT_ATTR_IDMAP)` gives it a user namespace (by a file
//! descriptor of `/proc/<pid>/ns/user`) whose map it then applies, and
//! `move_mount` attaches it. Each filesystem must opt in (`FS_ALLOW_IDMAP`):
//! ext4 and xfs did at once (5.12), btrfs in 5.15, tmpfs in 6.3. The kernel refuses the
//! initial user namespace (EPERM): its map is the identity.
//!
//! **How the probe looks.** On the host side, in the probe process's
//! throwaway mount namespace, the probe mounts a tmpfs and creates a file
//! owned by 0:0. The user namespace is a real container's: the runtime
//! makes it (`--userns=auto`) and writes its maps, and the helper only
//! reports its maps as it sees them and waits. The probe clones the tmpfs,
//! idmaps the clone through `/proc/<helper>/ns/user`, attaches it, and
//! `stat`s the file through the idmapped mount and through the tmpfs
//! itself. Raw system calls, as libc has no wrappers for these.
//!
//! **The control.** The same clone attached without `MOUNT_ATTR_IDMAP`
//! shows the file owned by 0:0: the owner the idmapped mount shows comes
//! from the attribute, not from cloning.
//!
//! **Verdict.** Pass when, through the idmapped mount, the file is owned by
//! the ids the container's maps give for its root (not 0), while the tmpfs
//! still shows 0:0 and the control's clone 0:0. A container without a user
//! namespace of its own (`skip-user-ns`) offers only the host's: the kernel
//! refuses to idmap through it, and root's files stay root's: FAIL.
//! Unsupported when the kernel says so: `mount_setattr` fails with ENOSYS
//! before 5.12 (Debian's 5.10), and `MOUNT_ATTR_IDMAP` on a tmpfs with
//! EINVAL before 6.3 (Debian's 6.1), tmpfs not having opted in.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::inside::{shown, Errno};
use crate::kernel;
use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "mount.idmapped",
    property: "a mount idmapped to a container's user namespace shows root's files as owned by the container's root",
    needs: Needs {
        config: &["USER_NS", "TMPFS"],
        config_v1: &[],
        modules: &[],
        since: Some((6, 3)),
    },
    mutations: &[Mutation::SkipUserNamespace],
    why_no_mutation: None,
    selftests: &["mount_setattr/*"],
    run,
    inside,
};

/// `open_tree` flag: copy the mount into a new, detached one (`linux/mount.h`).
const OPEN_TREE_CLONE: libc::c_uint = 1;
/// `move_mount` flag: the source is the file descriptor itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
/// `mount_setattr` attribute: apply the map of `userns_fd` to the mount.
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr`, `mount_setattr`'s argument (`linux/mount.h`).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// The file the probe creates as root on the tmpfs.
const FILE: &str = "owned-by-root";

/// The helper's report: its maps, as it sees them from inside.
#[derive(Debug, Serialize, Deserialize)]
struct Maps {
    uid_map: String,
    gid_map: String,
}

/// The host half: starts a container for its user namespace and idmaps through it.
fn run(lab: &Lab) -> Result<Finding, LabError> {
    let mut spec = lab.spec(&());
    spec.userns = runtime::userns::UserNs::Auto;
    let mut session = lab.start(spec, Role::Isolated)?;
    let maps: Maps = session.receive()?;
    let judged = judge(session.pid(), &maps);
    session.finish()?;
    judged
}

/// Idmaps a clone of a fresh tmpfs through the helper's user namespace and
/// judges what the owners look like.
fn judge(helper: nix::unistd::Pid, maps: &Maps) -> Result<Finding, LabError> {
    let userns_path = format!("/proc/{helper}/ns/user");
    let userns = File::open(&userns_path).or_broken(format!("open {userns_path}"))?;
    let shares_host_userns = kernel::same_file(&userns_path, "/proc/self/ns/user")?;
    let root_uid = maps_root(&format!("/proc/{helper}/uid_map"))?;
    let root_gid = maps_root(&format!("/proc/{helper}/gid_map"))?;

    // Declared before the mounts, so that they are undone before it goes.
    let dir = tempfile::Builder::new()
        .prefix("mydocker-probe-idmap-")
        .tempdir()?;
    let mut mounts = Mounts(Vec::new());
    let original = dir.path().join("tmpfs");
    let plain = dir.path().join("clone");
    let idmapped = dir.path().join("idmapped");
    for point in [&original, &plain, &idmapped] {
        std::fs::create_dir(point)?;
    }
    mount(
        Some("probe-idmap-tmpfs"),
        &original,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .or_broken("mount a tmpfs")?;
    mounts.0.push(original.clone());
    let file = original.join(FILE);
    File::create(&file)?;
    std::os::unix::fs::chown(&file, Some(0), Some(0))?;

    let mut evidence = evidence![
        "container's uid_map (seen inside)" => one_line(&maps.uid_map),
        "container's gid_map (seen inside)" => one_line(&maps.gid_map),
        "container's root on the host" => show((root_uid, root_gid)),
        "container shares the host's user namespace" => shares_host_userns,
    ];

    // The control: the same clone, attached as it is.
    let tree =
        open_tree_clone(&original).map_err(|e| kernel_said("open_tree(OPEN_TREE_CLONE)", e))?;
    attach(&tree, &plain).map_err(|e| kernel_said("move_mount", e))?;
    mounts.0.push(plain.clone());
    let plain_owner = owner(&plain.join(FILE))?;
    let control = evidence![
        format!("owner of {FILE} through a clone without MOUNT_ATTR_IDMAP") => show(plain_owner),
    ];

    let tree =
        open_tree_clone(&original).map_err(|e| kernel_said("open_tree(OPEN_TREE_CLONE)", e))?;
    let idmap = set_idmap(&tree, &userns);
    evidence.saw(
        "mount_setattr(MOUNT_ATTR_IDMAP) on the clone",
        shown(&idmap),
    );
    let refused = match idmap.as_ref().err().map(String::as_str) {
        None => None,
        Some("ENOSYS") => {
            return Err(LabError::Unsupported(
                "mount_setattr: ENOSYS: the kernel has no mount_setattr, so no idmapped mounts (Linux 5.12)".into(),
            ))
        }
        Some("EINVAL") if !shares_host_userns => {
            return Err(LabError::Unsupported(format!(
                "mount_setattr(MOUNT_ATTR_IDMAP) on a clone of a tmpfs: EINVAL: this kernel's tmpfs cannot be idmapped (tmpfs opted in with FS_ALLOW_IDMAP in Linux 6.3); the same clone without the attribute attached, showing {FILE} as {}",
                show(plain_owner)
            )))
        }
        Some("EPERM") if shares_host_userns => Some(format!(
            "the container has no user namespace of its own (its uid_map is {:?}), and the kernel refuses to idmap a mount through the host's (EPERM): root's files stay owned by uid 0 for the container's root",
            one_line(&maps.uid_map)
        )),
        Some(other) => {
            return Err(LabError::Broken(format!(
                "mount_setattr(MOUNT_ATTR_IDMAP) through the container's user namespace: {other}"
            )))
        }
    };
    let property = match refused {
        Some(why) => Property::Broken(why),
        None => {
            attach(&tree, &idmapped).map_err(|e| kernel_said("move_mount", e))?;
            mounts.0.push(idmapped.clone());
            let through_idmap = owner(&idmapped.join(FILE))?;
            let on_tmpfs = owner(&file)?;
            evidence
                .saw(
                    format!("owner of {FILE} through the idmapped mount"),
                    show(through_idmap),
                )
                .saw(
                    format!("owner of {FILE} on the tmpfs itself"),
                    show(on_tmpfs),
                )
                .saw(
                    "mount options of the idmapped mount (mountinfo)",
                    mount_options(&idmapped)?,
                );
            let expected = (root_uid, root_gid);
            Property::held_if(
                through_idmap == expected && root_uid != 0 && on_tmpfs == (0, 0),
                format!(
                    "through the idmapped mount {FILE} is owned by {}, on the tmpfs by {}, where the container's root is {}",
                    show(through_idmap),
                    show(on_tmpfs),
                    show(expected)
                ),
            )
        }
    };
    drop(mounts);
    Ok(Judgement {
        evidence,
        control,
        control_separated: plain_owner == (0, 0),
        property,
    }
    .finding())
}

/// Mount points this probe attached, undone (detached, last first) when
/// dropped, on every path out.
struct Mounts(Vec<PathBuf>);

impl Drop for Mounts {
    fn drop(&mut self) {
        for point in self.0.iter().rev() {
            let _ = umount2(point, MntFlags::MNT_DETACH);
        }
    }
}

/// `open_tree(path, OPEN_TREE_CLONE)`: a detached copy of the mount at `path`.
fn open_tree_clone(path: &Path) -> std::io::Result<OwnedFd> {
    let path = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: the path is a valid C string; the kernel returns a new fd.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: open_tree returned a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `mount_setattr(tree, MOUNT_ATTR_IDMAP)` with the map of `userns`.
fn set_idmap(tree: &OwnedFd, userns: &File) -> Errno {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    // SAFETY: the kernel reads `attr` (its size given) and the empty path.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    crate::inside::errno_of_rc(rc)
}

/// `move_mount(tree, target)`: attaches a detached mount at `target`.
fn attach(tree: &OwnedFd, target: &Path) -> std::io::Result<()> {
    let target = CString::new(target.as_os_str().as_bytes())?;
    // SAFETY: both paths are valid C strings; nothing is written to us.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A call of the new mount API failed: unsupported if the kernel does not
/// have it (ENOSYS), else broken.
fn kernel_said(call: &str, e: std::io::Error) -> LabError {
    let name = crate::inside::errno_name(&e);
    if e.raw_os_error() == Some(libc::ENOSYS) {
        LabError::Unsupported(format!(
            "{call}: ENOSYS: the kernel has no new mount API, so no idmapped mounts (Linux 5.12)"
        ))
    } else {
        LabError::Broken(format!("{call}: {name}"))
    }
}

/// The (uid, gid) that owns `path`, as the mount it is reached through
/// shows it to this process.
fn owner(path: &Path) -> Result<(u32, u32), LabError> {
    let meta = std::fs::metadata(path).or_broken(format!("stat {}", path.display()))?;
    Ok((meta.uid(), meta.gid()))
}

/// The host id that a map file (`uid_map`, `gid_map`) gives for id 0.
fn maps_root(path: &str) -> Result<u32, LabError> {
    let text = std::fs::read_to_string(path).or_broken(format!("read {path}"))?;
    text.lines()
        .find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next()? == "0").then(|| fields.next()?.parse().ok())?
        })
        .or_broken(format!("{path} maps no id 0: {}", one_line(&text)))
}

/// The per-mount options (field 6 of mountinfo) of the mount at `point`,
/// where the kernel lists `idmapped`.
fn mount_options(point: &Path) -> Result<String, LabError> {
    let table = std::fs::read_to_string("/proc/self/mountinfo").or_broken("read mountinfo")?;
    let point = point.to_string_lossy();
    // The last line for the point is the mount on top.
    table
        .lines()
        .rev()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            (fields.get(4) == Some(&point.as_ref()))
                .then(|| fields.get(5).map(|o| o.to_string()))?
        })
        .or_broken(format!("{point} is not in mountinfo"))
}

/// An owner as evidence shows it: `uid:gid`.
fn show((uid, gid): (u32, u32)) -> String {
    format!("{uid}:{gid}")
}

/// A map file's lines on one line.
fn one_line(map: &str) -> String {
    map.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Inside: reports the maps of our user namespace, then waits while the
/// probe idmaps a mount through it.
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let read = |path: &str| std::fs::read_to_string(path).with_context(|| format!("read {path}"));
    helper.say(&Maps {
        uid_map: read("/proc/self/uid_map")?,
        gid_map: read("/proc/self/gid_map")?,
    })
}
