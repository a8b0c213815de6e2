//! Reading the kernel's own interfaces: a process's cgroups, the mount table,
//! the taint flags and the kernel log.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// `uname -r`.
pub fn release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// One line of `/proc/<pid>/mountinfo`, reduced to what probes compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem (field 3).
    pub device: String,
    pub mount_point: String,
    /// Mount root within its filesystem (field 4).
    pub root: String,
    pub fstype: String,
    pub source: String,
    pub super_options: String,
}

/// The mount table as `pid` sees it (`"self"` for ours). Unreadable (the
/// process is gone) is an error, never an empty table: an empty table
/// would read as "nothing leaked".
pub fn mounts(pid: &str) -> std::io::Result<Vec<Mount>> {
    let text = fs::read_to_string(format!("/proc/{pid}/mountinfo"))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some(Mount {
                device: fields.get(2)?.to_string(),
                root: fields.get(3)?.to_string(),
                mount_point: fields.get(4)?.to_string(),
                fstype: fields.get(dash + 1)?.to_string(),
                source: fields.get(dash + 2)?.to_string(),
                super_options: fields.get(dash + 3).unwrap_or(&"").to_string(),
            })
        })
        .collect())
}

/// The directory of `pid`'s cgroup in the hierarchy that holds `controller`,
/// found from the kernel alone: `/proc/<pid>/cgroup` names the cgroup, our
/// mount table names where that hierarchy is mounted. On cgroup v2 every
/// controller lives in the one unified hierarchy.
pub fn cgroup_dir(pid: i32, controller: &str) -> Option<PathBuf> {
    let membership = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let all_mounts = mounts("self").ok()?;
    for line in membership.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let mount = if controllers.is_empty() {
            // The v2 line counts only when the controller is enabled there.
            all_mounts
                .iter()
                .find(|m| m.fstype == "cgroup2")
                .filter(|m| {
                    let available =
                        fs::read_to_string(format!("{}/cgroup.controllers", m.mount_point))
                            .unwrap_or_default();
                    available.split_whitespace().any(|c| c == controller) || controller == "cgroup"
                })
        } else if controllers.split(',').any(|c| c == controller) {
            all_mounts.iter().find(|m| {
                m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == controller)
            })
        } else {
            None
        };
        if let Some(mount) = mount {
            let relative = path
                .strip_prefix(mount.root.as_str())
                .unwrap_or(path)
                .trim_start_matches('/');
            return Some(PathBuf::from(&mount.mount_point).join(relative));
        }
    }
    None
}

/// Whether the kernel can provide cgroup `controller` in the current layout,
/// asked of the kernel itself rather than of the runtime: on v2, the root's
/// `cgroup.controllers`; on v1, a mounted hierarchy with it, or else a trial
/// mount (a kernel can list a controller in `/proc/cgroups` and still refuse
/// to mount it on v1, as Debian's 6.12 does with memory). The trial happens
/// in the probe's throwaway mount namespace and is undone at once.
pub fn controller_present(controller: &str) -> Result<bool, String> {
    let all = mounts("self").map_err(|e| format!("read our mount table: {e}"))?;
    if let Some(v2) = all
        .iter()
        .find(|m| m.fstype == "cgroup2" && m.mount_point == runtime::cgroup::CGROUP_ROOT)
    {
        let offered = fs::read_to_string(format!("{}/cgroup.controllers", v2.mount_point))
            .unwrap_or_default();
        return Ok(offered.split_whitespace().any(|c| c == controller));
    }
    if all
        .iter()
        .any(|m| m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == controller))
    {
        return Ok(true);
    }
    let dir = tempfile::Builder::new()
        .prefix("mydocker-probe-cgtrial-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let trial = nix::mount::mount(
        Some("cgroup"),
        dir.path(),
        Some("cgroup"),
        nix::mount::MsFlags::empty(),
        Some(controller),
    );
    if trial.is_ok() {
        let _ = nix::mount::umount2(dir.path(), nix::mount::MntFlags::MNT_DETACH);
    }
    Ok(trial.is_ok())
}

/// The IPv4 addresses local to a process's network namespace, loopback
/// aside, from `/proc/<pid>/net/fib_trie`: the kernel's routing trie lists
/// each local address as a leaf followed by a `/32 host LOCAL` line.
pub fn local_addresses(pid: i32) -> Vec<std::net::Ipv4Addr> {
    let text = fs::read_to_string(format!("/proc/{pid}/net/fib_trie")).unwrap_or_default();
    let mut found = std::collections::BTreeSet::new();
    let mut last = None;
    for line in text.lines() {
        let trimmed = line.trim_start_matches(|c: char| " |-+`".contains(c));
        if let Ok(ip) = trimmed.parse::<std::net::Ipv4Addr>() {
            last = Some(ip);
        } else if line.contains("/32 host LOCAL") {
            last.filter(|ip| !ip.is_loopback())
                .map(|ip| found.insert(ip));
        }
    }
    found.into_iter().collect()
}

/// Writes `value` to a kernel file that must already exist (a cgroup's
/// `cgroup.freeze`, `cpu.idle`): opened without `O_CREAT`, so that a file
/// the kernel lacks gives ENOENT. `std::fs::write` would ask to create it,
/// which a cgroup directory refuses with EACCES, hiding the absence.
pub fn write_existing(path: &std::path::Path, value: &str) -> std::io::Result<()> {
    use std::io::Write;
    fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(value.as_bytes())
}

/// Whether two paths name one inode: two `/proc/<pid>/ns/*` links name one
/// namespace exactly when they do.
pub fn same_file(a: &str, b: &str) -> Result<bool, crate::lab::LabError> {
    use crate::lab::OrBroken;
    use std::os::unix::fs::MetadataExt;
    let a = fs::metadata(a).or_broken(format!("stat {a}"))?;
    let b = fs::metadata(b).or_broken(format!("stat {b}"))?;
    Ok((a.dev(), a.ino()) == (b.dev(), b.ino()))
}

/// The fields of a `/proc/<pid>/stat` line after the command name, from
/// field 3 (the state letter) on. The name is in parentheses and may hold
/// spaces and parentheses itself, so the fields start after the last `)`.
pub fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect())
}

/// True while `pid` exists and is not a zombie (a zombie has exited; only
/// its exit status waits to be collected).
pub fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat_fields(&stat).first().is_some_and(|s| *s != "Z"))
}

/// Whether `pid` has begun to exit (`PF_EXITING` in the flags of its
/// `stat`): it has left its cgroup already, but is not yet a zombie.
pub fn exiting(pid: i32) -> bool {
    const PF_EXITING: u64 = 0x4;
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // From the state: state, ppid, pgrp, session, tty_nr, tpgid, flags.
            stat_fields(&stat).get(6)?.parse::<u64>().ok()
        })
        .is_some_and(|flags| flags & PF_EXITING != 0)
}

/// Whether the kernel has queued SIGKILL for `pid` and the task has not yet
/// run to act on it: `SigPnd` or `ShdPnd` of its status has bit 9 set.
pub fn sigkill_pending(pid: i32) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    status.lines().any(|line| {
        let mask = line
            .strip_prefix("SigPnd:")
            .or_else(|| line.strip_prefix("ShdPnd:"));
        mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & (1 << (libc::SIGKILL - 1)) != 0)
    })
}

/// The CPUs the kernel has online (`/sys/devices/system/cpu/online`).
pub fn online_cpus() -> Result<runtime::parse::IdSet, crate::lab::LabError> {
    use crate::lab::OrBroken;
    let online = fs::read_to_string("/sys/devices/system/cpu/online")?;
    runtime::parse::IdSet::parse("online cpus", online.trim()).or_broken("parse the online CPUs")
}

/// `/proc/sys/kernel/tainted`: a bit mask, 0 for a clean kernel.
pub fn tainted() -> Option<u64> {
    fs::read_to_string("/proc/sys/kernel/tainted")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A reader positioned at the end of the kernel log, so that it returns only
/// what the kernel logs from now on.
pub struct KernelLog {
    file: Option<fs::File>,
}

impl KernelLog {
    /// Opens `/dev/kmsg` and skips what is already there. Kernels or sandboxes
    /// without it give a reader that reports nothing.
    pub fn from_now() -> KernelLog {
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok()
            .and_then(|mut f| f.seek(SeekFrom::End(0)).ok().map(|_| f));
        KernelLog { file }
    }

    /// New warnings, oopses and bugs logged since the last call.
    pub fn problems(&mut self) -> Vec<String> {
        let Some(file) = &mut self.file else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let mut record = vec![0u8; 8192];
        // Each read returns one record; EAGAIN means we are at the end.
        loop {
            match file.read(&mut record) {
                Ok(0) => break,
                Ok(n) => {
                    let text = String::from_utf8_lossy(&record[..n]);
                    let message = text
                        .split_once(';')
                        .map_or(text.as_ref(), |(_, m)| m)
                        .trim();
                    // An OOM kill logs a call trace as part of its normal report, so a
                    // trace alone is no sign of trouble; these headlines are.
                    const MARKERS: [&str; 4] = ["WARNING:", "Oops", "BUG:", "Kernel panic"];
                    if MARKERS.iter().any(|m| message.contains(m)) {
                        problems.push(message.lines().next().unwrap_or("").to_owned());
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_start_after_the_last_parenthesis_of_the_name() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 0";
        assert_eq!(stat_fields(stat)[..3], ["S", "1", "42"]);
        assert_eq!(stat_fields(stat)[6], "4194560");
        assert!(stat_fields("garbage").is_empty());
    }
}
