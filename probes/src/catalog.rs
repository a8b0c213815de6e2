//! The probe catalog: every probe, its property, and the mutations it must catch.
//!
//! The ids follow `PROBES.md`.

use crate::lab::{Lab, LabError};
use crate::mutation::Mutation;
use crate::verdict::Finding;
use crate::{cgroup, ipc, mount, net, pid, rootfs, sec, user, uts};

/// One isolation property and the code that proves it.
pub struct Probe {
    /// `area.property`, as used in reports.
    pub id: &'static str,
    /// What the kernel promises, in one line.
    pub property: &'static str,
    pub run: fn(&Lab) -> Result<Finding, LabError>,
    /// Defects that must turn this probe's verdict into Fail.
    pub mutations: &'static [Mutation],
}

pub static PROBES: &[Probe] = &[
    Probe {
        id: "pid.view",
        property: "a PID namespace shows its first process as PID 1 and hides every host process",
        run: pid::pid_view::run,
        mutations: &[Mutation::SkipPidNamespace],
    },
    Probe {
        id: "pid.init_reaps",
        property: "killing PID 1 of the namespace kills every process in it",
        run: pid::pid_init_reaps::run,
        mutations: &[Mutation::SkipPidNamespace],
    },
    Probe {
        id: "mount.invisible",
        property:
            "mounts made inside never appear on the host, and later host mounts never appear inside",
        run: mount::mount_invisible::run,
        mutations: &[Mutation::SkipMountNamespace, Mutation::SharedPropagation],
    },
    Probe {
        id: "mount.pivot_root",
        property: "after pivot_root the host filesystem is unreachable",
        run: mount::mount_pivot_root::run,
        mutations: &[Mutation::ChrootInsteadOfPivotRoot, Mutation::KeepOldRoot],
    },
    Probe {
        id: "uts.hostname",
        property: "a hostname set inside does not change the host's",
        run: uts::uts_hostname::run,
        mutations: &[Mutation::SkipUtsNamespace],
    },
    Probe {
        id: "ipc.isolated",
        property: "System V IPC objects are not shared with the host",
        run: ipc::ipc_isolated::run,
        mutations: &[Mutation::SkipIpcNamespace],
    },
    Probe {
        id: "net.isolated",
        property: "a new network namespace has only a loopback device",
        run: net::net_isolated::run,
        mutations: &[Mutation::SkipNetNamespace],
    },
    Probe {
        id: "net.veth",
        property: "a veth pair carries traffic between containers, the host and the gateway",
        run: net::net_veth::run,
        mutations: &[Mutation::SkipNetworkAttach],
    },
    Probe {
        id: "net.port_map",
        property: "a published port reaches the container from the host at 127.0.0.1",
        run: net::net_port_map::run,
        mutations: &[Mutation::SkipPublish],
    },
    Probe {
        id: "cgroup.cpu_quota",
        property: "a CFS bandwidth quota is a ceiling: a busy process never gets more CPU than its periods allow",
        run: cgroup::cgroup_cpu_quota::run,
        mutations: &[Mutation::SkipLimits],
    },
    Probe {
        id: "cgroup.memory_oom",
        property: "a process over its memory limit is OOM-killed and the kernel counts the kill",
        run: cgroup::cgroup_memory_oom::run,
        mutations: &[Mutation::SkipLimits],
    },
    Probe {
        id: "cgroup.pids",
        property: "pids.max bounds fork, which fails with EAGAIN at the bound",
        run: cgroup::cgroup_pids::run,
        mutations: &[Mutation::SkipLimits],
    },
    Probe {
        id: "cgroup.cpuset",
        property: "cpuset.cpus pins the container to the chosen CPUs",
        run: cgroup::cgroup_cpuset::run,
        mutations: &[Mutation::SkipLimits],
    },
    Probe {
        id: "rootfs.overlay_cow",
        property: "writes inside never reach the image's lower layer; the upper layer holds them",
        run: rootfs::rootfs_overlay_cow::run,
        mutations: &[Mutation::SkipOverlay],
    },
    Probe {
        id: "rootfs.volume",
        property: "a bind volume is shared both ways, and a :ro volume refuses writes with EROFS",
        run: rootfs::rootfs_volume::run,
        mutations: &[Mutation::SkipVolumes, Mutation::IgnoreReadOnly],
    },
    Probe {
        id: "cgroup.ns",
        property: "a cgroup namespace shows the container's own cgroup as /",
        run: cgroup::cgroup_ns::run,
        mutations: &[Mutation::SkipCgroupNamespace],
    },
    Probe {
        id: "sec.caps",
        property: "the container runs with docker's default capability set, no more",
        run: sec::sec_caps::run,
        mutations: &[Mutation::KeepAllCapabilities],
    },
    Probe {
        id: "sec.proc_masked",
        property: "every sensitive /proc and /sys path is masked or read-only",
        run: sec::sec_proc_masked::run,
        mutations: &crate::mutation::MASKING_CASES,
    },
    Probe {
        id: "sec.no_new_privs",
        property: "no_new_privs is set, so no exec inside can gain privileges",
        run: sec::sec_no_new_privs::run,
        mutations: &[Mutation::SkipNoNewPrivs],
    },
    Probe {
        id: "sec.seccomp",
        property: "a system call on the deny list fails with EPERM inside",
        run: sec::sec_seccomp::run,
        mutations: &[Mutation::SkipSeccomp],
    },
    Probe {
        id: "user.map",
        property: "uid 0 inside a user namespace is an unprivileged uid on the host",
        run: user::user_map::run,
        mutations: &[Mutation::SkipUserNamespace],
    },
];

/// The probe with this id.
pub fn find(id: &str) -> Option<&'static Probe> {
    PROBES.iter().find(|p| p.id == id)
}

/// The probes whose id contains any of `filters` (all of them when there is
/// none), or equals one when `exact` is set: cargo test's filter rules.
pub fn select(filters: &[String], exact: bool) -> Vec<&'static Probe> {
    PROBES
        .iter()
        .filter(|p| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        p.id == f
                    } else {
                        p.id.contains(f.as_str())
                    }
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut ids: Vec<&str> = PROBES.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), PROBES.len(), "duplicate probe ids");
        for id in ids {
            let (area, property) = id.split_once('.').expect("ids are area.property");
            assert!(
                !area.is_empty() && !property.is_empty() && !property.contains('.'),
                "{id}"
            );
        }
    }

    #[test]
    fn every_probe_can_be_shown_to_fail() {
        for probe in PROBES {
            assert!(
                !probe.mutations.is_empty(),
                "{} has no mutation case",
                probe.id
            );
        }
    }

    #[test]
    fn filters_work_like_cargo_test() {
        assert_eq!(select(&[], false).len(), PROBES.len());
        let cgroup: Vec<&str> = select(&["cgroup.".into()], false)
            .iter()
            .map(|p| p.id)
            .collect();
        assert!(cgroup.contains(&"cgroup.pids") && !cgroup.contains(&"pid.view"));
        assert!(select(&["pid".into()], true).is_empty());
        assert_eq!(select(&["pid.view".into()], true).len(), 1);
    }
}
