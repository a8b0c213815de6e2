//! `linux` of a `config.json`: namespaces, resources, devices, cgroup path,
//! masked and read-only paths, sysctl and the seccomp profile.

use oci_spec::runtime::{
    Linux, LinuxDeviceType, LinuxNamespace, LinuxNamespaceType, LinuxResources,
};

use crate::device::{Device, DeviceRule};
use crate::error::{Error, Result};
use crate::parse::IdSet;
use crate::userns::Mapping;
use crate::{Limits, Namespaces, OciParts, SwapLimit};

/// Reads everything of `linux` but the namespaces into `limits` and `parts`.
pub fn read(linux: &Linux, limits: &mut Limits, parts: &mut OciParts) -> Result<()> {
    if let Some(resources) = linux.resources() {
        *limits = self::limits(resources)?;
    }
    parts.cgroups_path = match linux.cgroups_path() {
        Some(path) => Some(cgroups_path(&path.to_string_lossy())?),
        None => None,
    };
    parts.root_propagation = linux
        .rootfs_propagation()
        .as_deref()
        .filter(|p| !p.is_empty())
        .map(crate::mount::root_propagation)
        .transpose()?;
    parts.masked_paths = absolute("linux.maskedPaths", linux.masked_paths())?;
    parts.readonly_paths = absolute("linux.readonlyPaths", linux.readonly_paths())?;
    parts.sysctl = linux
        .sysctl()
        .iter()
        .flatten()
        .map(|(key, value)| sysctl(key).map(|key| (key, value.clone())))
        .collect::<Result<_>>()?;
    parts.seccomp = linux.seccomp().clone();
    parts.devices = linux
        .devices()
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, device)| {
            let field = format!("linux.devices[{i}]");
            let number = |n: i64, what: &str| {
                u64::try_from(n).map_err(|_| Error::Config {
                    field: format!("{field}.{what}"),
                    problem: format!("{n} is not a device number"),
                })
            };
            let device = Device {
                path: device.path().to_string_lossy().into_owned(),
                kind: device.typ().as_str().chars().next().unwrap_or('a'),
                major: number(device.major(), "major")?,
                minor: number(device.minor(), "minor")?,
                mode: device.file_mode().unwrap_or(0o666),
                uid: device.uid().unwrap_or(0),
                gid: device.gid().unwrap_or(0),
                host: None,
            };
            device.check(&field)?;
            Ok(device)
        })
        .collect::<Result<_>>()?;
    if !limits.devices.is_empty() {
        // After the configuration's rules, as runc does: the nodes every
        // container gets, and those the configuration creates, stay usable
        // whatever the rules denied.
        let allow = |kind: char, major: u64, minor: Option<u64>| DeviceRule {
            allow: true,
            kind,
            major: Some(major as i64),
            minor: minor.map(|m| m as i64),
            access: "rwm".into(),
        };
        limits.devices.extend(
            crate::device::ALWAYS_ALLOWED
                .iter()
                .map(|&(major, minor)| allow('c', major, minor))
                .chain(parts.devices.iter().filter(|d| d.kind != 'p').map(|d| {
                    allow(
                        if d.kind == 'b' { 'b' } else { 'c' },
                        d.major,
                        Some(d.minor),
                    )
                })),
        );
    }
    Ok(())
}

/// `linux.uidMappings` and `gidMappings` for a new user namespace: both
/// given, and each mapping the container's root, whom init becomes.
pub fn id_mappings(linux: &Linux) -> Result<(Vec<Mapping>, Vec<Mapping>)> {
    let read = |field: &str, maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        let maps: Vec<Mapping> = maps
            .iter()
            .flatten()
            .map(|m| Mapping {
                container: m.container_id(),
                host: m.host_id(),
                size: m.size(),
            })
            .collect();
        if Mapping::host_of(&maps, 0).is_none() {
            return Err(Error::Config {
                field: field.into(),
                problem: "must map id 0: a new user namespace needs a root for init to become"
                    .into(),
            });
        }
        Ok(maps)
    };
    Ok((
        read("linux.uidMappings", linux.uid_mappings())?,
        read("linux.gidMappings", linux.gid_mappings())?,
    ))
}

/// Namespaces to join: (kind under `/proc/PID/ns`, path).
pub type Joined = Vec<(String, String)>;

/// The namespaces listed without a path are new ones, those with a path
/// are joined, and those absent are the host's. Also says whether a new
/// user namespace is asked for, and lists the joined ones by the name the
/// kernel gives them under `/proc/PID/ns`.
pub fn namespaces(listed: &[LinuxNamespace]) -> Result<(Namespaces, bool, Joined)> {
    let mut user = false;
    let mut namespaces = Namespaces {
        uts: false,
        pid: false,
        mount: false,
        ipc: false,
        net: false,
        cgroup: false,
    };
    let mut joined = Vec::new();
    for namespace in listed {
        let (slot, kind) = match namespace.typ() {
            LinuxNamespaceType::Uts => (&mut namespaces.uts, "uts"),
            LinuxNamespaceType::Pid => (&mut namespaces.pid, "pid"),
            LinuxNamespaceType::Mount => (&mut namespaces.mount, "mnt"),
            LinuxNamespaceType::Ipc => (&mut namespaces.ipc, "ipc"),
            LinuxNamespaceType::Network => (&mut namespaces.net, "net"),
            LinuxNamespaceType::Cgroup => (&mut namespaces.cgroup, "cgroup"),
            LinuxNamespaceType::User => (&mut user, "user"),
            other => {
                return Err(Error::Unsupported {
                    field: "linux.namespaces.type".into(),
                    why: format!("{other:?} namespaces are not supported yet"),
                })
            }
        };
        let listed_before = *slot || joined.iter().any(|(k, _): &(String, String)| k == kind);
        if listed_before {
            return Err(Error::Config {
                field: "linux.namespaces".into(),
                problem: format!("{kind} is listed twice: name each namespace once"),
            });
        }
        match namespace.path() {
            Some(path) if kind == "user" => {
                return Err(Error::Unsupported {
                    field: "linux.namespaces.path".into(),
                    why: format!(
                        "{}: joining a user namespace is not supported yet",
                        path.display()
                    ),
                })
            }
            Some(path) => joined.push((kind.to_owned(), path.to_string_lossy().into_owned())),
            None => *slot = true,
        }
    }
    if user && !joined.is_empty() {
        return Err(Error::Unsupported {
            field: "linux.namespaces.path".into(),
            why: "joining a namespace from a new user namespace is not supported yet".into(),
        });
    }
    // Without a pid namespace the container's processes are host processes;
    // its cgroup still holds them all, and delete kills them through it.
    // Without a mount namespace (`linux_ns_itype` asks for none) the root
    // is entered with chroot and the mounts are made in the caller's mount
    // table, below the container's state directory, whose removal detaches
    // them; runc and youki do the same. A new user namespace could not
    // mount there at all.
    let has_mount = namespaces.mount || joined.iter().any(|(k, _)| k == "mnt");
    if user && !has_mount {
        return Err(Error::Unsupported {
            field: "linux.namespaces".into(),
            why: "a user namespace without a mount namespace: its root could not mount the container's root in the host's mount table; add {\"type\": \"mount\"}".into(),
        });
    }
    Ok((namespaces, user, joined))
}

/// `cgroupsPath`, absolute or not, is taken relative to the root of every
/// hierarchy: mydocker never places a container below its own cgroup,
/// which on a shared machine belongs to whoever started it.
fn cgroups_path(path: &str) -> Result<String> {
    let relative = path.trim_start_matches('/').trim_end_matches('/');
    if relative.is_empty()
        || relative
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        || path.contains(':')
    {
        return Err(Error::Config {
            field: "linux.cgroupsPath".into(),
            problem: format!(
                "{path:?}: expected a cgroup path such as /machine/ctr1 (with --systemd-cgroup's slice:prefix:name form unsupported)"
            ),
        });
    }
    Ok(relative.to_owned())
}

/// Paths inside the container, each absolute.
fn absolute(field: &str, paths: &Option<Vec<String>>) -> Result<Vec<String>> {
    let paths = paths.clone().unwrap_or_default();
    if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
        return Err(Error::Config {
            field: field.into(),
            problem: format!("{bad:?} is not an absolute path"),
        });
    }
    Ok(paths)
}

/// Each sysctl's namespace must be the container's own (new or joined):
/// `net.*` is the network namespace's, the IPC settings the IPC
/// namespace's, the names the UTS namespace's. Otherwise the write would
/// change the host's value.
pub fn check_sysctl_namespaces(
    sysctl: &[(String, String)],
    namespaces: &Namespaces,
    joined: &Joined,
) -> Result<()> {
    let own = |new: bool, kind: &str| new || joined.iter().any(|(k, _)| k == kind);
    for (key, _) in sysctl {
        let (needed, kind) = if key.starts_with("net/") {
            (own(namespaces.net, "net"), "network")
        } else if key.starts_with("kernel/hostname") || key.starts_with("kernel/domainname") {
            (own(namespaces.uts, "uts"), "uts")
        } else {
            (own(namespaces.ipc, "ipc"), "ipc")
        };
        if !needed {
            return Err(Error::Config {
                field: "linux.sysctl".into(),
                problem: format!(
                    "{} needs a {kind} namespace of the container's own, or it would set the host's",
                    key.replace('/', ".")
                ),
            });
        }
    }
    Ok(())
}

/// A sysctl name as a path below `/proc/sys` (dots or slashes), which only
/// namespaced settings may be: the others would change the host.
fn sysctl(key: &str) -> Result<String> {
    let path = key.replace('.', "/");
    let namespaced = [
        "kernel/msg",
        "kernel/sem",
        "kernel/shm",
        "fs/mqueue/",
        "net/",
    ]
    .iter()
    .any(|prefix| path.starts_with(prefix))
        || ["kernel/hostname", "kernel/domainname"].contains(&path.as_str());
    if !namespaced || path.split('/').any(|c| c.is_empty() || c == "..") {
        return Err(Error::Config {
            field: "linux.sysctl".into(),
            problem: format!(
                "{key:?} is not a namespaced setting (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*): it would change the host"
            ),
        });
    }
    Ok(path)
}

/// Memory, CPU, pids and device limits, in the units the cgroup files take.
fn limits(resources: &LinuxResources) -> Result<Limits> {
    let mut limits = Limits::default();
    let positive = |value: Option<i64>| value.filter(|v| *v > 0).map(|v| v as u64);
    if let Some(memory) = resources.memory() {
        limits.memory = positive(memory.limit());
        limits.memory_swap = match memory.swap() {
            Some(-1) => Some(SwapLimit::Unlimited),
            swap => positive(swap).map(SwapLimit::Total),
        };
    }
    if let Some(cpu) = resources.cpu() {
        limits.cpu_shares = cpu.shares();
        limits.cpu_quota = cpu.quota().filter(|q| *q > 0);
        limits.cpu_period = cpu.period().filter(|p| *p > 0);
        let ids = |field: &'static str, text: &Option<String>| -> Result<Option<IdSet>> {
            text.as_deref()
                .filter(|t| !t.is_empty())
                .map(|t| IdSet::parse(field, t))
                .transpose()
        };
        limits.cpuset_cpus = ids("linux.resources.cpu.cpus", cpu.cpus())?;
        limits.cpuset_mems = ids("linux.resources.cpu.mems", cpu.mems())?;
    }
    if let Some(pids) = resources.pids() {
        limits.pids = positive(Some(pids.limit()));
    }
    limits.devices = resources
        .devices()
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, rule)| {
            let kind = rule.typ().map(|t| match t {
                LinuxDeviceType::A => 'a',
                LinuxDeviceType::B => 'b',
                // An unbuffered character device is a character device.
                LinuxDeviceType::C | LinuxDeviceType::U => 'c',
                LinuxDeviceType::P => 'p',
            });
            DeviceRule::new(
                &format!("linux.resources.devices[{i}]"),
                rule.allow(),
                kind,
                rule.major(),
                rule.minor(),
                rule.access().as_deref(),
            )
        })
        .collect::<Result<_>>()?;
    Ok(limits)
}
