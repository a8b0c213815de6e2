//! An OCI configuration's mounts and device nodes, made by init under the
//! root before the switch into it.
//!
//! `mydocker run` mounts `/proc`, `/sys` and `/dev` its own way
//! ([`crate::rootfs::mount_kernel_filesystems`]). An OCI configuration
//! instead lists every mount, in order, and the runtime adds only what the
//! specification requires of it: the default device nodes (`/dev/null`,
//! `/dev/zero`, …) and the `/dev/fd`-style symlinks, then the extra nodes
//! of `linux.devices`. Each mount point is resolved inside the root, so a
//! symlink in the root filesystem can never aim a mount at the host.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use crate::rootfs::{mounted_on, pin, Pinned};
use crate::setup::Failure;
use crate::spec::device::Device;
use crate::spec::mount::Mount;

/// Makes `mounts` under `root`, in order, then the device nodes.
/// `cgroup_dirs` are the container's own cgroup directories on the host,
/// which a mount of type `cgroup` shows; `in_user_ns` binds device nodes
/// from the host, since a user namespace may not create them. With
/// `in_callers_table` (no mount namespace of the container's own), each
/// mount is made private as soon as it exists: a bind of a shared host
/// mount would otherwise carry whatever is mounted below it back to the
/// host (see `crate::rootfs::bind_root_privately`).
pub fn make(
    root: &Path,
    mounts: &[Mount],
    devices: &[Device],
    cgroup_dirs: &[PathBuf],
    in_user_ns: bool,
    in_callers_table: bool,
) -> Result<(), Failure> {
    let none: Option<&str> = None;
    for m in mounts {
        let target = mount_point(root, m)?;
        if m.fstype == "cgroup" || m.fstype == "cgroup2" {
            mount_cgroups(root, &target, m, cgroup_dirs)?;
        } else {
            mount_one(root, &target, m)?;
        }
        if !in_callers_table && m.propagation == 0 {
            continue;
        }
        let mounted = mounted_on(root, &m.destination, &target, None)?;
        if in_callers_table {
            let private = MsFlags::MS_PRIVATE | MsFlags::MS_REC;
            mount(none, mounted.path(), none, private, none)
                .map_err(Failure::sys(format!("make {} private", m.destination)))?;
        }
        if m.propagation != 0 {
            mount(none, mounted.path(), none, flags(m.propagation), none).map_err(Failure::sys(
                format!("set the propagation of {}", m.destination),
            ))?;
        }
    }
    for (name, major, minor) in crate::rootfs::DEVICES {
        let device = Device {
            path: format!("/dev/{name}"),
            kind: 'c',
            major,
            minor,
            mode: 0o666,
            uid: 0,
            gid: 0,
            host: None,
        };
        make_node(root, &device, in_user_ns)?;
    }
    let dev = pin(root, "/dev")?;
    for (name, target) in crate::rootfs::DEV_LINKS {
        let link = dev.join(name);
        if fs::symlink_metadata(&link).is_err() {
            symlink(target, &link).map_err(Failure::io(format!("symlink /dev/{name}")))?;
        }
    }
    for device in devices {
        make_node(root, device, in_user_ns)?;
    }
    Ok(())
}

/// `mydocker run`'s `--tmpfs`, `--mount type=tmpfs` and `--device`: made
/// under `root` after its own `/proc`, `/sys` and `/dev`, each point
/// resolved inside the root as an OCI configuration's are.
pub fn make_extra(
    root: &Path,
    mounts: &[Mount],
    devices: &[Device],
    in_user_ns: bool,
) -> Result<(), Failure> {
    for m in mounts {
        let target = mount_point(root, m)?;
        mount_one(root, &target, m)?;
    }
    for device in devices {
        make_node(root, device, in_user_ns)?;
    }
    Ok(())
}

/// `m`'s mount point, created as a directory, or as an empty file when a
/// file is bound there.
fn mount_point(root: &Path, m: &Mount) -> Result<Pinned, Failure> {
    let binds_a_file = m.is_bind() && fs::metadata(&m.source).is_ok_and(|meta| !meta.is_dir());
    if !binds_a_file {
        return pin(root, &m.destination);
    }
    let (parent, name) = m
        .destination
        .rsplit_once('/')
        .expect("destinations are absolute");
    let parent = pin(root, parent)?;
    let target = parent.join(name);
    match fs::symlink_metadata(&target) {
        // Kept from before pinning: a bind onto a link is a surprise.
        Ok(meta) if meta.file_type().is_symlink() => Err(Failure::runtime(format!(
            "mount {}: the destination is a symbolic link in the root; bind onto a real file",
            m.destination
        ))),
        Ok(_) => parent.child(name),
        Err(_) => {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .map_err(Failure::io(format!("create {}", m.destination)))?;
            parent.child(name)
        }
    }
}

/// A bind, or a new filesystem; a bind needs a second call for its flags.
fn mount_one(root: &Path, target: &Pinned, m: &Mount) -> Result<(), Failure> {
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    let what = format!("mount {} on {}", describe(m), m.destination);
    if !m.is_bind() {
        return mount(
            Some(m.source.as_str()),
            target.path(),
            Some(m.fstype.as_str()),
            flags(m.flags),
            data,
        )
        .map_err(Failure::sys(what));
    }
    let none: Option<&str> = None;
    let bind = m.flags & (libc::MS_BIND | libc::MS_REC);
    mount(
        Some(m.source.as_str()),
        target.path(),
        none,
        flags(bind),
        none,
    )
    .map_err(Failure::sys(what))?;
    let rest = m.flags & !bind;
    if rest != 0 {
        let bound = mounted_on(root, &m.destination, target, Some(Path::new(&m.source)))?;
        mount(
            none,
            bound.path(),
            none,
            flags(rest | libc::MS_BIND | libc::MS_REMOUNT),
            none,
        )
        .map_err(Failure::sys(format!(
            "apply the options of the bind of {} on {}",
            m.source, m.destination
        )))?;
    }
    Ok(())
}

/// A `cgroup` mount shows the container's own cgroups: on v1 a tmpfs with
/// one directory per hierarchy, each a bind of the container's directory
/// there; on v2 a bind of its one directory. Read-only when asked, after
/// the directories are made.
fn mount_cgroups(
    root: &Path,
    target: &Pinned,
    m: &Mount,
    cgroup_dirs: &[PathBuf],
) -> Result<(), Failure> {
    let none: Option<&str> = None;
    let read_only = m.flags & libc::MS_RDONLY;
    let keep = m.flags & (libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC);
    let unified = cgroup_dirs.len() == 1
        && cgroup_dirs[0].parent() != Some(Path::new(crate::cgroup::CGROUP_ROOT))
        && crate::cgroup::Mode::detect().is_ok_and(|mode| mode.is_v2());
    // `at` is the pinned mount point; `inside` its container path, to
    // find the bind once it is made.
    let bind = |dir: &Path, at: &Pinned, inside: &str| -> Result<(), Failure> {
        mount(Some(dir), at.path(), none, MsFlags::MS_BIND, none)
            .map_err(Failure::sys(format!("bind {} on {inside}", dir.display())))?;
        let bound = mounted_on(root, inside, at, Some(dir))?;
        mount(
            none,
            bound.path(),
            none,
            flags(keep | read_only | libc::MS_BIND | libc::MS_REMOUNT),
            none,
        )
        .map_err(Failure::sys(format!("remount {inside}")))
    };
    if unified {
        return bind(&cgroup_dirs[0], target, &m.destination);
    }
    mount(
        Some("tmpfs"),
        target.path(),
        Some("tmpfs"),
        flags(keep),
        Some("mode=755"),
    )
    .map_err(Failure::sys(format!("mount tmpfs on {}", m.destination)))?;
    // The fresh tmpfs, which only we can see: names below it are ours.
    let tmpfs = mounted_on(root, &m.destination, target, None)?;
    for dir in cgroup_dirs {
        // /sys/fs/cgroup/<hierarchy>/<the container's path>
        let Some(hierarchy) = dir
            .strip_prefix(crate::cgroup::CGROUP_ROOT)
            .ok()
            .and_then(|rest| rest.components().next())
        else {
            continue;
        };
        let name = hierarchy.as_os_str().to_string_lossy().into_owned();
        fs::DirBuilder::new()
            .mode(0o755)
            .create(tmpfs.join(&name))
            .map_err(Failure::io(format!("create {}/{name}", m.destination)))?;
        bind(
            dir,
            &tmpfs.child(&name)?,
            &format!("{}/{name}", m.destination),
        )?;
        // `cpu,cpuacct` is also reachable as `cpu` and `cpuacct`.
        for alias in name.split(',').filter(|_| name.contains(',')) {
            let _ = symlink(&name, tmpfs.join(alias));
        }
    }
    if read_only != 0 {
        mount(
            none,
            tmpfs.path(),
            none,
            flags(keep | read_only | libc::MS_REMOUNT),
            Some("mode=755"),
        )
        .map_err(Failure::sys(format!("make {} read-only", m.destination)))?;
    }
    Ok(())
}

/// Creates one device node inside the root, with its owner and mode; inside
/// a user namespace, binds the host's node of the same path instead.
fn make_node(root: &Path, device: &Device, in_user_ns: bool) -> Result<(), Failure> {
    let (parent, name) = device
        .path
        .rsplit_once('/')
        .expect("device paths are absolute");
    // Held until the node is made: the name below is looked up through it.
    let parent = pin(root, parent)?;
    let target = parent.join(name);
    if fs::symlink_metadata(&target).is_ok() {
        // The root filesystem has it already: it is the bundle's to keep.
        return Ok(());
    }
    if in_user_ns {
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .map_err(Failure::io(format!("create {}", device.path)))?;
        let none: Option<&str> = None;
        // The file itself, not a link put in its place since.
        let node = parent.child(name)?;
        let host = device.host.as_deref().unwrap_or(&device.path);
        return mount(Some(host), node.path(), none, MsFlags::MS_BIND, none).map_err(Failure::sys(
            format!(
                "bind the host's {host} into the container at {}",
                device.path
            ),
        ));
    }
    let kind = match device.kind {
        'b' => SFlag::S_IFBLK,
        'p' => SFlag::S_IFIFO,
        _ => SFlag::S_IFCHR,
    };
    mknod(
        target.as_str(),
        kind,
        Mode::from_bits_truncate(device.mode),
        makedev(device.major, device.minor),
    )
    .map_err(Failure::sys(format!("mknod {}", device.path)))?;
    // Not following a link someone put in its place meanwhile.
    std::os::unix::fs::lchown(&target, Some(device.uid), Some(device.gid))
        .map_err(Failure::io(format!("chown {}", device.path)))
}

/// Applies the propagation of the container's root (`linux.rootfsPropagation`),
/// once it is `/`.
pub fn set_root_propagation(propagation: u64) -> Result<(), Failure> {
    let none: Option<&str> = None;
    mount(none, "/", none, flags(propagation), none)
        .map_err(Failure::sys("set the propagation of the root"))
}

fn flags(bits: u64) -> MsFlags {
    MsFlags::from_bits_truncate(bits as libc::c_ulong)
}

fn describe(m: &Mount) -> String {
    if m.data.is_empty() {
        format!("{} ({})", m.source, m.fstype)
    } else {
        format!("{} ({}, {})", m.source, m.fstype, m.data)
    }
}
