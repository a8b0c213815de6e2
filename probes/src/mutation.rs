//! Mutations: deliberate defects in the runtime under test. Each probe lists
//! the ones it must catch; the mutation test runs them and expects Fail.

use std::fmt;
use std::str::FromStr;

use runtime::security::paths::{MASKED, READ_ONLY};
use runtime::Spec;

/// One way of breaking the isolation a probe checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    SkipPidNamespace,
    /// No mount namespace: init changes the caller's mount table (a
    /// throwaway namespace in the probe process) and enters the rootfs with
    /// chroot, since pivot_root there would move the caller's root.
    SkipMountNamespace,
    SkipUtsNamespace,
    SkipIpcNamespace,
    SkipNetNamespace,
    SkipCgroupNamespace,
    /// A cgroup is created but none of the requested limits is written.
    SkipLimits,
    /// chroot instead of pivot_root: the old root stays reachable.
    ChrootInsteadOfPivotRoot,
    /// pivot_root into a directory and leave the old root mounted there.
    KeepOldRoot,
    /// The lower layer bound as the root, without an overlay.
    SkipOverlay,
    /// Volumes are not mounted at all.
    SkipVolumes,
    /// `:ro` volumes are mounted read-write.
    IgnoreReadOnly,
    /// An address is reserved but the veth pair is never connected.
    SkipNetworkAttach,
    /// Published ports are dropped.
    SkipPublish,
    /// A mount namespace whose mounts stay shared with the caller's, so a
    /// mount inside propagates out (chroot, since pivot_root refuses that).
    SharedPropagation,
    /// Every capability is kept, as under `--privileged`.
    KeepAllCapabilities,
    /// Nothing in `/proc` or `/sys` is masked or made read-only.
    SkipMaskedPaths,
    /// `no_new_privs` is not set.
    SkipNoNewPrivs,
    /// No seccomp filter is installed.
    SkipSeccomp,
    /// No user namespace: the container's root is the host's.
    SkipUserNamespace,
    /// One path of the masked or read-only lists is left as the kernel
    /// shows it, every other one protected: the probe must name that path.
    ExposePath(&'static str),
}

/// Every [`Mutation::ExposePath`] case: one per masked and per read-only path.
pub const EXPOSE_EACH_PATH: [Mutation; MASKED.len() + READ_ONLY.len()] = {
    let mut cases = [Mutation::ExposePath(""); MASKED.len() + READ_ONLY.len()];
    let mut i = 0;
    while i < MASKED.len() {
        cases[i] = Mutation::ExposePath(MASKED[i]);
        i += 1;
    }
    while i < cases.len() {
        cases[i] = Mutation::ExposePath(READ_ONLY[i - MASKED.len()]);
        i += 1;
    }
    cases
};

/// What `sec.proc_masked` must catch: every mask skipped at once, then
/// each path alone.
pub const MASKING_CASES: [Mutation; 1 + EXPOSE_EACH_PATH.len()] = {
    let mut cases = [Mutation::SkipMaskedPaths; 1 + EXPOSE_EACH_PATH.len()];
    let mut i = 0;
    while i < EXPOSE_EACH_PATH.len() {
        cases[i + 1] = EXPOSE_EACH_PATH[i];
        i += 1;
    }
    cases
};

impl Mutation {
    /// Every mutation without a parameter.
    const PLAIN: [Mutation; 20] = [
        Mutation::SkipPidNamespace,
        Mutation::SkipMountNamespace,
        Mutation::SkipUtsNamespace,
        Mutation::SkipIpcNamespace,
        Mutation::SkipNetNamespace,
        Mutation::SkipCgroupNamespace,
        Mutation::SkipLimits,
        Mutation::ChrootInsteadOfPivotRoot,
        Mutation::KeepOldRoot,
        Mutation::SkipOverlay,
        Mutation::SkipVolumes,
        Mutation::IgnoreReadOnly,
        Mutation::SkipNetworkAttach,
        Mutation::SkipPublish,
        Mutation::SharedPropagation,
        Mutation::KeepAllCapabilities,
        Mutation::SkipMaskedPaths,
        Mutation::SkipNoNewPrivs,
        Mutation::SkipSeccomp,
        Mutation::SkipUserNamespace,
    ];

    /// Every mutation, each path case included.
    pub fn all() -> impl Iterator<Item = Mutation> {
        Mutation::PLAIN.into_iter().chain(EXPOSE_EACH_PATH)
    }

    /// The name used on the command line and in reports.
    fn name(self) -> &'static str {
        match self {
            Mutation::SkipPidNamespace => "skip-pid-ns",
            Mutation::SkipMountNamespace => "skip-mount-ns",
            Mutation::SkipUtsNamespace => "skip-uts-ns",
            Mutation::SkipIpcNamespace => "skip-ipc-ns",
            Mutation::SkipNetNamespace => "skip-net-ns",
            Mutation::SkipCgroupNamespace => "skip-cgroup-ns",
            Mutation::SkipLimits => "skip-limits",
            Mutation::ChrootInsteadOfPivotRoot => "chroot-not-pivot",
            Mutation::KeepOldRoot => "keep-old-root",
            Mutation::SkipOverlay => "skip-overlay",
            Mutation::SkipVolumes => "skip-volumes",
            Mutation::IgnoreReadOnly => "ignore-read-only",
            Mutation::SkipNetworkAttach => "skip-network-attach",
            Mutation::SkipPublish => "skip-publish",
            Mutation::SharedPropagation => "shared-propagation",
            Mutation::KeepAllCapabilities => "keep-all-caps",
            Mutation::SkipMaskedPaths => "skip-masked-paths",
            Mutation::SkipNoNewPrivs => "skip-no-new-privs",
            Mutation::SkipSeccomp => "skip-seccomp",
            Mutation::SkipUserNamespace => "skip-user-ns",
            Mutation::ExposePath(_) => "expose",
        }
    }

    /// Why this mutation cannot be tried on this kernel, if it cannot: a
    /// path the kernel does not have cannot be exposed.
    pub fn inapplicable(self) -> Option<String> {
        match self {
            Mutation::ExposePath(path) if !std::path::Path::new(path).exists() => {
                Some(format!("{path} does not exist on this kernel"))
            }
            _ => None,
        }
    }

    /// Breaks `spec` the way this mutation says.
    pub fn apply(self, spec: &mut Spec) {
        let ns = &mut spec.namespaces;
        match self {
            Mutation::SkipPidNamespace => ns.pid = false,
            Mutation::SkipMountNamespace => {
                ns.mount = false;
                spec.faults.chroot_instead_of_pivot_root = true;
            }
            Mutation::SkipUtsNamespace => ns.uts = false,
            Mutation::SkipIpcNamespace => ns.ipc = false,
            Mutation::SkipNetNamespace => ns.net = false,
            Mutation::SkipCgroupNamespace => ns.cgroup = false,
            Mutation::SkipLimits => spec.limits = Default::default(),
            Mutation::ChrootInsteadOfPivotRoot => spec.faults.chroot_instead_of_pivot_root = true,
            Mutation::KeepOldRoot => spec.faults.keep_old_root = true,
            Mutation::SkipOverlay => spec.faults.skip_overlay = true,
            Mutation::SkipVolumes => spec.volumes.clear(),
            Mutation::IgnoreReadOnly => spec.faults.ignore_read_only = true,
            Mutation::SkipNetworkAttach => spec.faults.skip_network_attach = true,
            Mutation::SkipPublish => {
                if let Some(network) = spec.network.as_mut() {
                    network.publish.clear();
                }
            }
            Mutation::SharedPropagation => {
                spec.faults.chroot_instead_of_pivot_root = true;
                spec.faults.keep_shared_propagation = true;
            }
            Mutation::KeepAllCapabilities => {
                spec.security.capabilities = runtime::security::caps::ALL
            }
            Mutation::SkipMaskedPaths => spec.security.mask_paths = false,
            Mutation::SkipNoNewPrivs => spec.security.no_new_privileges = false,
            Mutation::SkipSeccomp => spec.security.seccomp = false,
            Mutation::SkipUserNamespace => spec.userns = runtime::userns::UserNs::Host,
            Mutation::ExposePath(path) => spec.faults.expose_path = Some(path),
        }
    }
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutation::ExposePath(path) => write!(f, "expose:{path}"),
            plain => f.write_str(plain.name()),
        }
    }
}

impl FromStr for Mutation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Mutation::all()
            .find(|m| m.to_string() == text)
            .ok_or_else(|| {
                let names: Vec<String> = Mutation::PLAIN.iter().map(|m| m.to_string()).collect();
                format!(
                    "unknown mutation {text:?}: expected one of {}, or expose:PATH for a path of the masked or read-only lists",
                    names.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_reads_back() {
        for mutation in Mutation::all() {
            assert_eq!(mutation.to_string().parse::<Mutation>(), Ok(mutation));
        }
        assert_eq!(
            "expose:/proc/sysrq-trigger".parse(),
            Ok(Mutation::ExposePath("/proc/sysrq-trigger"))
        );
        assert!("expose:/etc/passwd".parse::<Mutation>().is_err());
    }
}
