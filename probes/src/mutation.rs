//! Mutations: deliberate defects in the runtime under test. Each probe lists
//! the ones it must catch; the mutation test runs them and expects Fail.

use std::fmt;
use std::str::FromStr;

use runtime::security::paths::{MASKED, READ_ONLY};
use runtime::Spec;
use strum::IntoEnumIterator;

/// The runtime's own deliberate defects, each a [`Mutation::Fault`].
pub use runtime::Fault;

/// One way of breaking the isolation a probe checks.
///
/// A defect the runtime must carry out is one [`Fault`] variant (and the one
/// place in the runtime that checks it); one that only changes the spec is
/// one variant here and its arm in [`Mutation::apply`]. The names come from
/// strum: a variant's kebab-case name unless it says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::EnumIter, strum::IntoStaticStr)]
#[strum(serialize_all = "kebab-case")]
pub enum Mutation {
    #[strum(serialize = "skip-pid-ns")]
    SkipPidNamespace,
    /// No mount namespace: init changes the caller's mount table (a
    /// throwaway namespace in the probe process) and enters the rootfs with
    /// chroot, since pivot_root there would move the caller's root.
    #[strum(serialize = "skip-mount-ns")]
    SkipMountNamespace,
    #[strum(serialize = "skip-uts-ns")]
    SkipUtsNamespace,
    #[strum(serialize = "skip-ipc-ns")]
    SkipIpcNamespace,
    #[strum(serialize = "skip-net-ns")]
    SkipNetNamespace,
    #[strum(serialize = "skip-cgroup-ns")]
    SkipCgroupNamespace,
    /// A cgroup is created but none of the requested limits is written.
    SkipLimits,
    /// Volumes are not mounted at all.
    SkipVolumes,
    /// Published ports are dropped.
    SkipPublish,
    /// Every capability is kept, as under `--privileged`.
    #[strum(serialize = "keep-all-caps")]
    KeepAllCapabilities,
    /// Nothing in `/proc` or `/sys` is masked or made read-only.
    SkipMaskedPaths,
    /// `no_new_privs` is not set.
    SkipNoNewPrivs,
    /// No seccomp filter is installed.
    SkipSeccomp,
    /// No user namespace: the container's root is the host's.
    #[strum(serialize = "skip-user-ns")]
    SkipUserNamespace,
    /// A defect the runtime carries out (see [`Fault`]), named as the
    /// fault is; [`Fault::ExposePath`] is named `expose:PATH`.
    #[strum(disabled)]
    Fault(Fault),
}

/// Every [`Fault::ExposePath`] case: one per masked and per read-only path.
pub const EXPOSE_EACH_PATH: [Mutation; MASKED.len() + READ_ONLY.len()] = {
    let mut cases = [Mutation::SkipMaskedPaths; MASKED.len() + READ_ONLY.len()];
    let mut i = 0;
    while i < cases.len() {
        let path = if i < MASKED.len() {
            MASKED[i]
        } else {
            READ_ONLY[i - MASKED.len()]
        };
        cases[i] = Mutation::Fault(Fault::ExposePath(path));
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
    /// Every mutation without a parameter: each plain one, then each
    /// runtime fault but [`Fault::ExposePath`].
    fn plain() -> impl Iterator<Item = Mutation> {
        Mutation::iter().chain(
            Fault::iter()
                .filter(|fault| !matches!(fault, Fault::ExposePath(_)))
                .map(Mutation::Fault),
        )
    }

    /// Every mutation, each path case included.
    pub fn all() -> impl Iterator<Item = Mutation> {
        Mutation::plain().chain(EXPOSE_EACH_PATH)
    }

    /// The name used on the command line and in reports.
    fn name(self) -> &'static str {
        match self {
            Mutation::Fault(fault) => fault.into(),
            // Every other variant has a strum name (only Fault is disabled).
            plain => plain.into(),
        }
    }

    /// Why this mutation cannot be tried on this kernel, if it cannot: a
    /// path the kernel does not have cannot be exposed.
    pub fn inapplicable(self) -> Option<String> {
        match self {
            Mutation::Fault(Fault::ExposePath(path)) if !std::path::Path::new(path).exists() => {
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
                spec.faults.insert(Fault::ChrootInsteadOfPivotRoot);
            }
            Mutation::SkipUtsNamespace => ns.uts = false,
            Mutation::SkipIpcNamespace => ns.ipc = false,
            Mutation::SkipNetNamespace => ns.net = false,
            Mutation::SkipCgroupNamespace => ns.cgroup = false,
            Mutation::SkipLimits => spec.limits = Default::default(),
            Mutation::SkipVolumes => spec.volumes.clear(),
            Mutation::SkipPublish => {
                if let Some(network) = spec.network.as_mut() {
                    network.publish.clear();
                }
            }
            Mutation::KeepAllCapabilities => {
                spec.security.capabilities = runtime::security::caps::ALL
            }
            Mutation::SkipMaskedPaths => spec.security.mask_paths = false,
            Mutation::SkipNoNewPrivs => spec.security.no_new_privileges = false,
            Mutation::SkipSeccomp => spec.security.seccomp = false,
            Mutation::SkipUserNamespace => spec.userns = runtime::userns::UserNs::Host,
            Mutation::Fault(fault) => spec.faults.insert(fault),
        }
    }
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutation::Fault(Fault::ExposePath(path)) => write!(f, "expose:{path}"),
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
                let names: Vec<&str> = Mutation::plain().map(Mutation::name).collect();
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
            Ok(Mutation::Fault(Fault::ExposePath("/proc/sysrq-trigger")))
        );
        assert!("expose:/etc/passwd".parse::<Mutation>().is_err());
    }

    #[test]
    fn names_are_unique() {
        let names: Vec<String> = Mutation::all().map(|m| m.to_string()).collect();
        let unique: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "a name is used twice: {names:?}");
    }

    #[test]
    fn names_stay_as_they_were() {
        let plain: Vec<String> = Mutation::plain().map(|m| m.to_string()).collect();
        let plain: Vec<&str> = plain.iter().map(String::as_str).collect();
        let expected = [
            "skip-pid-ns",
            "skip-mount-ns",
            "skip-uts-ns",
            "skip-ipc-ns",
            "skip-net-ns",
            "skip-cgroup-ns",
            "skip-limits",
            "chroot-not-pivot",
            "keep-old-root",
            "skip-overlay",
            "skip-volumes",
            "ignore-read-only",
            "skip-network-attach",
            "skip-publish",
            "shared-propagation",
            "keep-all-caps",
            "skip-masked-paths",
            "skip-no-new-privs",
            "skip-seccomp",
            "skip-user-ns",
        ];
        // New mutations may come; these names are in CI configs and notes.
        for name in expected {
            assert!(plain.contains(&name), "{name} is gone: {plain:?}");
        }
        assert_eq!(
            Mutation::Fault(Fault::KeepSharedPropagation).to_string(),
            "shared-propagation"
        );
    }

    #[test]
    fn an_unknown_name_lists_the_valid_ones() {
        let error = "skip-everything".parse::<Mutation>().unwrap_err();
        assert!(
            error.contains("skip-pid-ns") && error.contains("chroot-not-pivot"),
            "{error}"
        );
        assert!(!error.contains("expose,"), "{error}");
    }
}
