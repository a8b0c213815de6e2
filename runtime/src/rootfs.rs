//! The container's filesystem view, built by init: `/proc`, `/sys`, `/dev`
//! and its device nodes under the rootfs, then pivot_root into it.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, pivot_root};

use crate::setup::Failure;

/// Makes the rootfs the container's `/` and detaches the host's root.
///
/// The mount namespace starts as a copy of the host's, with shared propagation
/// where systemd set it up that way. Marking everything private first keeps our
/// mounts from leaking back to the host (and host mounts from leaking in).
/// `pivot_root(".", ".")` stacks the old root on top of the new one, so no
/// `put_old` directory has to be created inside the rootfs; unmounting `.`
/// afterwards removes the old root from the namespace entirely.
///
/// `keep_old_root` is a deliberate defect for the probes: the old root is
/// moved to `/.old-root` inside the rootfs and left mounted there.
pub fn pivot_into(rootfs: &str, keep_old_root: bool) -> Result<(), Failure> {
    let none: Option<&str> = None;
    make_private()?;
    // pivot_root needs the new root to be a mount point: a bind of itself is one.
    mount(
        Some(rootfs),
        rootfs,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(Failure::sys(format!("bind-mount rootfs {rootfs}")))?;
    chdir(rootfs).map_err(Failure::sys(format!("chdir {rootfs}")))?;
    if keep_old_root {
        ensure_dir(".old-root")?;
        pivot_root(".", ".old-root").map_err(Failure::sys("pivot_root"))?;
    } else {
        pivot_root(".", ".").map_err(Failure::sys("pivot_root"))?;
        umount2(".", MntFlags::MNT_DETACH).map_err(Failure::sys("detach the old root"))?;
    }
    chdir("/").map_err(Failure::sys("chdir /"))?;
    Ok(())
}

/// Enters the rootfs with `chroot` alone. This is the deliberate defect the
/// `mount.pivot_root` probe must catch: the old root is still mounted below,
/// and a process with CAP_SYS_CHROOT can climb back out to it.
pub fn chroot_into(rootfs: &str, make_mounts_private: bool) -> Result<(), Failure> {
    if make_mounts_private {
        make_private()?;
    }
    chdir(rootfs).map_err(Failure::sys(format!("chdir {rootfs}")))?;
    nix::unistd::chroot(".").map_err(Failure::sys("chroot"))?;
    chdir("/").map_err(Failure::sys("chdir /"))
}

/// Binds `lower` at `rootfs` in the caller's own mount table, for a
/// container without a mount namespace, so that nothing mounted below
/// reaches any other namespace.
///
/// A mount propagates to the peers of the mount it is made on, and a bind
/// of a shared mount joins its source's peer group. So `rootfs` is first
/// bound onto itself and made private (only that empty self-bind reaches
/// the peers of the state directory's mount, and leaves them with it),
/// then the root is bound onto that and made private at once, before
/// anything is mounted below it. `crate::mounts::make` keeps each of its
/// mounts private the same way.
pub fn bind_root_privately(lower: &str, rootfs: &str) -> Result<(), Failure> {
    let none: Option<&str> = None;
    let private = |what: &str| {
        mount(
            none,
            rootfs,
            none,
            MsFlags::MS_PRIVATE | MsFlags::MS_REC,
            none,
        )
        .map_err(Failure::sys(format!("make {what} private")))
    };
    mount(Some(rootfs), rootfs, none, MsFlags::MS_BIND, none)
        .map_err(Failure::sys(format!("bind {rootfs} onto itself")))?;
    private(rootfs)?;
    mount(
        Some(lower),
        rootfs,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(Failure::sys(format!("bind {lower} as the root")))?;
    private(lower)
}

/// Enters a mount namespace of the caller's own, every mount in it
/// private: what is mounted there next is seen by nobody else, and goes
/// when the caller exits, however it exits. The caller must be
/// single-threaded.
pub fn private_mount_namespace() -> Result<(), Failure> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(Failure::sys("enter a mount namespace of our own"))?;
    make_private()
}

pub fn make_private() -> Result<(), Failure> {
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_PRIVATE | MsFlags::MS_REC, none)
        .map_err(Failure::sys("make / private (MS_PRIVATE|MS_REC)"))
}

/// Mounts the container's root: an overlay whose lower layer is the image
/// (or the directory given to `run`), read-only as far as the container is
/// concerned, and whose upper layer, in the container's state directory,
/// takes every write. This is why no container ever changes its image.
///
/// Inside a user namespace (`in_user_ns`), overlayfs mounts only since Linux
/// 5.11; an older kernel's EPERM there is the kernel's lack, not ours.
pub fn mount_overlay(merged: &str, options: &str, in_user_ns: bool) -> Result<(), Failure> {
    mount(
        Some("overlay"),
        merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(options),
    )
    .map_err(|errno| {
        if in_user_ns && errno == nix::errno::Errno::EPERM {
            Failure::kernel_lacks(
                "mount the container's overlay inside its user namespace: EPERM: this kernel does not let a user namespace mount overlayfs (Linux 5.11); as root, run without --userns=auto (without root there is no other way on this kernel)",
            )
        } else {
            Failure::sys(format!("mount the overlay at {merged} ({options})"))(errno)
        }
    })
}

/// Bind-mounts a volume into the container's root before it is switched to.
/// The container path is resolved inside the root (see [`resolve_in_root`]),
/// so an image's symlinks can never aim the mount at a host path. A
/// read-only volume needs a second, remounting step: the kernel ignores
/// MS_RDONLY on the first bind.
pub fn bind_volume(root: &str, volume: &crate::spec::Volume) -> Result<(), Failure> {
    let root = Path::new(root);
    let target = pin(root, &volume.container)?;
    let none: Option<&str> = None;
    let host = volume.host.to_string_lossy();
    mount(
        Some(host.as_ref()),
        target.path(),
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(Failure::sys(format!(
        "bind-mount volume {host} at {}",
        volume.container
    )))?;
    if volume.read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
        let bound = mounted_on(root, &volume.container, &target, Some(&volume.host))?;
        mount(none, bound.path(), none, flags, none).map_err(Failure::sys(format!(
            "make volume {} read-only",
            volume.container
        )))?;
    }
    Ok(())
}

/// Resolves `path` as the container will see it, inside `root`: symlinks
/// are followed relative to `root` (an absolute link target restarts at
/// `root`, not at the host's `/`), `..` never climbs above `root`, and
/// missing directories are created on the way. The path returned is only
/// as good as the moment it was checked: mount through [`pin`].
pub fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf, Failure> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_owned)
        .collect();
    let mut links = 0;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let candidate = resolved
            .iter()
            .fold(root.to_owned(), |p, c| p.join(c))
            .join(&component);
        match fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(Failure::io(format!("resolve {path} in the container"))(
                        std::io::Error::other("too many symbolic links"),
                    ));
                }
                let target = fs::read_link(&candidate)
                    .map_err(Failure::io(format!("read link {}", candidate.display())))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    resolved.clear();
                }
                pending.extend(
                    target
                        .split('/')
                        .filter(|c| !c.is_empty())
                        .rev()
                        .map(str::to_owned),
                );
            }
            Ok(_) => resolved.push(component),
            Err(_) => {
                // Made from a descriptor of its parent, found inside the
                // root: were a component swapped for a link since it was
                // checked, a mkdir by path would follow it to the host.
                let parent = open_in_root(root, &format!("/{}", resolved.join("/")))?;
                match nix::sys::stat::mkdirat(
                    &parent.fd,
                    component.as_str(),
                    Mode::from_bits_truncate(0o755),
                ) {
                    Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(Failure::sys(format!(
                            "create {} in the container",
                            candidate.display()
                        ))(e))
                    }
                }
                resolved.push(component);
            }
        }
    }
    Ok(resolved.iter().fold(root.to_owned(), |p, c| p.join(c)))
}

/// A path inside the container's root, held open by an `O_PATH` descriptor.
///
/// A path string is looked up again by every call that takes it: between
/// the check that `root/a/b` is a directory and the mount on it, whoever can
/// write below the root (a container sharing one of its volumes, say) can
/// swap `a` for a symlink to `/`, and the mount lands on the host (runc's
/// CVE-2021-30465). The descriptor is opened by the kernel's own scoped
/// lookup (`openat2` with `RESOLVE_IN_ROOT`: symlinks and `..` resolve as
/// if `root` were `/`), and its `/proc/self/fd/N` name leads to exactly
/// the directory or file opened, whatever the path says by then.
///
/// A mount made on that name is not seen through it: the descriptor still
/// holds what lies beneath. Work on the new mount [`open_in_root`]s again.
pub struct Pinned {
    fd: std::os::fd::OwnedFd,
    path: String,
}

impl Pinned {
    /// `/proc/self/fd/N`, to give mount(2) and friends.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// A name below the pinned directory, looked up from it.
    pub fn join(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    /// `name` in the pinned directory, not followed if it is a link.
    pub fn child(&self, name: &str) -> Result<Pinned, Failure> {
        use nix::fcntl::OFlag;
        let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = nix::fcntl::openat(&self.fd, name, flags, Mode::empty())
            .map_err(Failure::sys(format!("open {name}")))?;
        Ok(Pinned::new(fd))
    }

    fn new(fd: std::os::fd::OwnedFd) -> Pinned {
        use std::os::fd::AsRawFd;
        let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
        Pinned { fd, path }
    }

    /// The mount it is on and whether it is that mount's root.
    fn mount(&self) -> Option<(u64, bool)> {
        crate::files::mount_of(std::os::fd::AsRawFd::as_raw_fd(&self.fd), c"")
    }
}

/// The mount just made on `under` (which pins `path` as it was before),
/// found again from `root` and checked to be a mount of its own, stacked
/// on `under`'s: flags applied through this land on that mount, however
/// the path has been changed meanwhile. `source`, for a bind, is the
/// directory or file bound, which the mount's root must be.
pub fn mounted_on(
    root: &Path,
    path: &str,
    under: &Pinned,
    source: Option<&Path>,
) -> Result<Pinned, Failure> {
    use std::os::unix::fs::MetadataExt;
    let mounted = open_in_root(root, path)?;
    let same_file = |a: &str, b: &Path| {
        let (Ok(a), Ok(b)) = (fs::metadata(a), fs::metadata(b)) else {
            return false;
        };
        (a.dev(), a.ino()) == (b.dev(), b.ino())
    };
    let fine = match (mounted.mount(), under.mount()) {
        (Some((id, is_root)), Some((beneath, _))) => id != beneath && is_root,
        // A kernel without STATX_MNT_ID (before 5.8): st_dev alone.
        _ => true,
    } && source.is_none_or(|source| same_file(mounted.path(), source));
    if !fine {
        return Err(Failure::runtime(format!(
            "the mount point {path} was changed while it was being mounted"
        )));
    }
    Ok(mounted)
}

/// Opens `path` inside `root` as the container will see it, creating the
/// directories it lacks first (see [`resolve_in_root`]).
pub fn pin(root: &Path, path: &str) -> Result<Pinned, Failure> {
    resolve_in_root(root, path)?;
    open_in_root(root, path)
}

/// Opens `path`, which must exist, inside `root` (see [`Pinned`]).
pub fn open_in_root(root: &Path, path: &str) -> Result<Pinned, Failure> {
    open_if_in_root(root, path)?.ok_or_else(|| {
        Failure::sys(format!("open {path} inside the root"))(nix::errno::Errno::ENOENT)
    })
}

/// [`open_in_root`], or `None` when the root has no such path.
pub fn open_if_in_root(root: &Path, path: &str) -> Result<Option<Pinned>, Failure> {
    use nix::fcntl::{openat2, OFlag, OpenHow, ResolveFlag};
    let root_dir = nix::fcntl::open(
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(Failure::sys(format!("open the root {}", root.display())))?;
    let relative = match path.trim_start_matches('/') {
        "" => ".",
        rest => rest,
    };
    let how = || {
        OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS)
    };
    // A lookup through `..` fails with EAGAIN when anything anywhere is
    // renamed or mounted meanwhile; the kernel asks us to try again.
    let mut tries = 0;
    loop {
        match openat2(&root_dir, relative, how()) {
            Ok(fd) => return Ok(Some(Pinned::new(fd))),
            Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => return Ok(None),
            Err(nix::errno::Errno::EAGAIN) if tries < 64 => tries += 1,
            Err(e) => return Err(Failure::sys(format!("open {path} inside the root"))(e)),
        }
    }
}

/// The links every container's `/dev` gets: (name, target).
pub(crate) const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// Character devices every container gets: (name, major, minor). docker's
/// and runc's list.
pub(crate) const DEVICES: [(&str, u64, u64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Mounts the kernel filesystems and populates `/dev` under `root`, before
/// the switch into it.
///
/// Done from outside for the same reason runc does it: inside a user
/// namespace the kernel lets us mount `/proc` only while a fully visible
/// `/proc` is still in the mount namespace (the host's, until the old root is
/// detached), and a user namespace may not `mknod`, so device nodes are bind
/// mounts of the host's own. Every mount point is resolved inside `root`, so
/// a symlink in the image cannot aim a mount at the host.
///
/// Returns where `/proc`, `/sys` and `/dev` were mounted on the host's side:
/// whatever else is done to them before the switch must use these paths,
/// never `root` joined with a name the image may have made a symlink.
pub fn mount_kernel_filesystems(root: &str, in_user_ns: bool) -> Result<KernelMounts, Failure> {
    let root = Path::new(root);
    let nosuid_nodev_noexec = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    // Each mounted on its pinned point, then opened again: the new pin
    // holds the fresh filesystem, not the directory it covers.
    let mounted = |path: &str, source: &str, fstype, flags, data| {
        let at = pin(root, path)?;
        mount(Some(source), at.path(), Some(fstype), flags, data)
            .map_err(Failure::sys(format!("mount {fstype} on {path}")))?;
        mounted_on(root, path, &at, None)
    };
    let proc = mounted("/proc", "proc", "proc", nosuid_nodev_noexec, None)?;
    let sys = mounted(
        "/sys",
        "sysfs",
        "sysfs",
        nosuid_nodev_noexec | MsFlags::MS_RDONLY,
        None,
    )?;
    let dev = mounted(
        "/dev",
        "tmpfs",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some("mode=755,size=65536k"),
    )?;
    // Below here everything is in the new tmpfs, which only we can see.
    for (name, major, minor) in DEVICES {
        let path = dev.join(name);
        if in_user_ns {
            let none: Option<&str> = None;
            fs::File::create(&path).map_err(Failure::io(format!("create /dev/{name}")))?;
            let host = format!("/dev/{name}");
            mount(
                Some(host.as_str()),
                path.as_str(),
                none,
                MsFlags::MS_BIND,
                none,
            )
            .map_err(Failure::sys(format!("bind {host} to the container's")))?;
        } else {
            mknod(
                path.as_str(),
                SFlag::S_IFCHR,
                Mode::from_bits_truncate(0o666),
                makedev(major, minor),
            )
            .map_err(Failure::sys(format!("mknod /dev/{name}")))?;
        }
    }
    for (link, target) in DEV_LINKS {
        symlink(target, dev.join(link)).map_err(Failure::io(format!("symlink /dev/{link}")))?;
    }
    // A private devpts instance: the container sees only its own terminals.
    mount_fs(
        "devpts",
        &dev.join("pts"),
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?;
    mount_fs(
        "shm",
        &dev.join("shm"),
        "tmpfs",
        nosuid_nodev_noexec,
        Some("mode=1777,size=65536k"),
    )?;
    mount_fs(
        "mqueue",
        &dev.join("mqueue"),
        "mqueue",
        nosuid_nodev_noexec,
        None,
    )?;
    Ok(KernelMounts { proc, sys, dev })
}

/// The container's `/proc`, `/sys` and `/dev` mounts, held open until the
/// switch into the root. Below them the kernel, not the image, decides what
/// a path is.
pub struct KernelMounts {
    pub proc: Pinned,
    pub sys: Pinned,
    pub dev: Pinned,
}

impl KernelMounts {
    /// The host-side path of a container path under `/proc`, `/sys` or `/dev`.
    pub fn resolve(&self, path: &str) -> Option<String> {
        [
            ("/proc", &self.proc),
            ("/sys", &self.sys),
            ("/dev", &self.dev),
        ]
        .into_iter()
        .find_map(|(top, mounted)| {
            let rest = path.strip_prefix(top)?;
            (rest.is_empty() || rest.starts_with('/')).then(|| format!("{}{rest}", mounted.path()))
        })
    }
}

/// Mounts one filesystem, creating the mount point first if the rootfs lacks it.
fn mount_fs(
    source: &str,
    target: &str,
    fstype: &str,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), Failure> {
    ensure_dir(target)?;
    mount(Some(source), target, Some(fstype), flags, data)
        .map_err(Failure::sys(format!("mount {fstype} on {target}")))
}

/// Creates `path` and its parents (mode 0755) unless it is already a directory.
pub fn ensure_dir(path: &str) -> Result<(), Failure> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        _ => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(Failure::io(format!("create directory {path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_inside_the_root_whatever_the_links_say() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir(root.path().join("var")).unwrap();
        std::os::unix::fs::symlink("/run", root.path().join("var/run")).unwrap();
        std::os::unix::fs::symlink("../../../../../tmp", root.path().join("escape")).unwrap();
        let inside = |p: &str| resolve_in_root(root.path(), p).unwrap();
        assert_eq!(inside("/var/run/app"), root.path().join("run/app"));
        assert!(
            root.path().join("run/app").is_dir(),
            "missing directories are created inside"
        );
        assert_eq!(inside("/escape/x"), root.path().join("tmp/x"));
        assert_eq!(inside("/../../a/./b/../c"), root.path().join("a/c"));
    }

    #[test]
    fn a_pinned_path_stays_inside_the_root_when_a_link_is_swapped_in_after() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        let pinned = |p: &str| {
            let pin = pin(&root, p).unwrap();
            fs::read_link(pin.path()).unwrap()
        };
        assert_eq!(pinned("/a/etc"), root.join("a/etc"));
        let held = pin(&root, "/a/etc").unwrap();
        // The race a path string loses: `a` becomes a link to the host's
        // root after it was checked. What was pinned stays what it was,
        // and the kernel's scoped lookup of the path still ends inside,
        // at the root's own etc.
        fs::rename(root.join("a"), root.join("old-a")).unwrap();
        std::os::unix::fs::symlink("/", root.join("a")).unwrap();
        fs::create_dir(root.join("etc")).unwrap();
        assert_eq!(fs::read_link(held.path()).unwrap(), root.join("old-a/etc"));
        assert_eq!(
            fs::read_link(open_in_root(&root, "/a/etc").unwrap().path()).unwrap(),
            root.join("etc")
        );
        assert_eq!(pinned("/../../etc"), root.join("etc"));
        assert!(
            open_in_root(&root, "/nowhere").is_err(),
            "open_in_root creates nothing"
        );
    }
}
