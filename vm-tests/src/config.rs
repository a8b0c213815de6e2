//! Kernel configuration: the container-relevant options of a kernel, read
//! from its `config-<release>` file in the spirit of moby's
//! `check-config.sh`, and the options behind each probe.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cell::CgroupMode;

/// How an option is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tristate {
    /// Built in.
    Y,
    /// Built as a module.
    M,
    /// Explicitly not set (`# CONFIG_X is not set`).
    No,
    /// Not in this kernel's config at all: the option does not exist in
    /// this version (6.1 has no `MEMCG_V1`: v1 memory was not yet optional).
    Absent,
}

impl Tristate {
    pub fn label(self) -> &'static str {
        match self {
            Tristate::Y => "y",
            Tristate::M => "m",
            Tristate::No => "not set",
            Tristate::Absent => "absent",
        }
    }
}

/// The options the runtime needs for any container at all, without the
/// `CONFIG_` prefix; each probe's own come from its declaration.
const RUNTIME_OPTIONS: &[&str] = &["NAMESPACES", "CGROUPS", "OVERLAY_FS", "SECCOMP"];

/// The options a container runtime and these probes depend on: the
/// runtime's, then every probe's (both cgroup modes), each once, in
/// catalog order.
pub fn container_options() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = RUNTIME_OPTIONS.to_vec();
    for probe in probes::PROBES {
        for option in probe.needs.options(true) {
            if !all.contains(&option) {
                all.push(option);
            }
        }
    }
    all
}

/// Reads the container options out of a kernel config file's text.
pub fn read(text: &str) -> BTreeMap<String, Tristate> {
    let mut all = BTreeMap::new();
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("# CONFIG_")
            .and_then(|l| l.strip_suffix(" is not set"))
        {
            all.insert(name.to_owned(), Tristate::No);
        } else if let Some((name, value)) =
            line.strip_prefix("CONFIG_").and_then(|l| l.split_once('='))
        {
            let state = match value {
                "y" => Tristate::Y,
                "m" => Tristate::M,
                _ => continue,
            };
            all.insert(name.to_owned(), state);
        }
    }
    container_options()
        .into_iter()
        .map(|o| {
            (
                o.to_owned(),
                all.get(o).copied().unwrap_or(Tristate::Absent),
            )
        })
        .collect()
}

/// The options a probe needs under a cgroup mode, as its declaration says.
/// When a probe comes out Unsupported, the ones of these that are not set
/// explain why.
pub fn options_behind(probe: &str, mode: CgroupMode) -> Vec<&'static str> {
    probes::catalog::find(probe)
        .map(|p| p.needs.options(mode == CgroupMode::V1).collect())
        .unwrap_or_default()
}

/// Why a probe is unsupported, in the kernel's terms: the options behind it
/// that this kernel does not set, and the version that brought the feature
/// when `release` predates it. Empty when neither explains anything.
pub fn explain(
    probe: &str,
    mode: CgroupMode,
    config: &BTreeMap<String, Tristate>,
    release: Option<&str>,
) -> Vec<String> {
    let mut why: Vec<String> = options_behind(probe, mode)
        .iter()
        .filter(|o| config.get(**o) == Some(&Tristate::No))
        .map(|o| format!("CONFIG_{o} is not set"))
        .collect();
    let needs = probes::catalog::find(probe).map(|p| p.needs);
    if let (Some(needs), Some(release)) = (needs, release) {
        if let (true, Some((major, minor))) = (needs.predates(release), needs.since) {
            why.push(format!(
                "the feature came in Linux {major}.{minor}; this is {release}"
            ));
        }
    }
    why
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str =
        "CONFIG_MEMCG=y\n# CONFIG_MEMCG_V1 is not set\nCONFIG_VETH=m\nCONFIG_CPUSETS=y\n";

    #[test]
    fn options_read_as_y_m_or_not_set() {
        let config = read(SAMPLE);
        assert_eq!(config["MEMCG"], Tristate::Y);
        assert_eq!(config["VETH"], Tristate::M);
        assert_eq!(config["MEMCG_V1"], Tristate::No);
        assert_eq!(config["SECCOMP"], Tristate::Absent);
        assert_eq!(config.len(), container_options().len());
    }

    #[test]
    fn unsupported_v1_memory_is_explained_by_memcg_v1() {
        let config = read(SAMPLE);
        assert_eq!(
            explain("cgroup.memory_oom", CgroupMode::V1, &config, None),
            vec!["CONFIG_MEMCG_V1 is not set"]
        );
        assert!(explain("cgroup.memory_oom", CgroupMode::V2, &config, None).is_empty());
        // On a kernel that predates the option, nothing is explained by it.
        let old = read("CONFIG_MEMCG=y\n");
        assert!(explain("cgroup.memory_oom", CgroupMode::V1, &old, None).is_empty());
    }
}
