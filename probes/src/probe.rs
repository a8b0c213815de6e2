//! A probe's declaration: the property it proves, what the kernel must
//! offer for it, the defects that must break it, and its two halves.

use crate::inside::Helper;
use crate::lab::{Lab, LabError};
use crate::mutation::Mutation;
use crate::verdict::Finding;

/// One isolation property and the code that proves it. Each probe file
/// declares one, as `pub static PROBE`, and names it once in `lib.rs`.
pub struct Probe {
    /// `area.property`, as used in reports; the file is `src/area/property.rs`.
    pub id: &'static str,
    /// What the kernel promises, in one sentence.
    pub property: &'static str,
    /// What the kernel must be built with for the property to exist at all.
    pub needs: Needs,
    /// Defects that must turn this probe's verdict into FAIL: deliberate
    /// breakages of the runtime step the property rests on.
    pub mutations: &'static [Mutation],
    /// Why there is no mutation, when there is none: the property is the
    /// kernel's alone, and nothing the runtime does or skips can break it.
    /// A probe has mutations or this reason, never neither.
    pub why_no_mutation: Option<&'static str>,
    /// The kernel's own selftests of the same property, as
    /// `suite/name` with `*` matching any run of characters
    /// (`cgroup/test_cgkill_*`): run beside the probe, they must agree.
    pub selftests: &'static [&'static str],
    /// The host-side half: starts containers, reads the kernel, judges.
    pub run: fn(&Lab) -> Result<Finding, LabError>,
    /// The container-side half, run by the helper as the container's command.
    pub inside: fn(&mut Helper) -> anyhow::Result<()>,
}

/// The kernel build a probe rests on. The VM matrix derives from these the
/// options it reports for each kernel and the modules it loads in a guest;
/// an unsupported verdict is explained by the options here that are unset.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// `CONFIG_` options (without the prefix) needed in every cgroup mode.
    pub config: &'static [&'static str],
    /// Options needed only on cgroup v1: since 6.x a v1 controller can be
    /// compiled out while its v2 form stays (`MEMCG_V1`, `CPUSETS_V1`).
    pub config_v1: &'static [&'static str],
    /// Modules a guest must load first (Debian builds these as modules).
    pub modules: &'static [&'static str],
    /// The upstream kernel version that introduced the feature, as
    /// `(major, minor)`: what explains an unsupported verdict on an older
    /// kernel. The probe itself never decides by version; it asks the
    /// kernel, and this only names why the answer was no.
    pub since: Option<(u32, u32)>,
}

impl Needs {
    /// Nothing beyond what the runtime needs for any container.
    pub const NOTHING: Needs = Needs::config(&[]);

    /// Options alone, no modules, the same in both cgroup modes.
    pub const fn config(options: &'static [&'static str]) -> Needs {
        Needs {
            config: options,
            config_v1: &[],
            modules: &[],
            since: None,
        }
    }

    /// Whether a kernel of `release` (`uname -r`) predates the feature.
    pub fn predates(&self, release: &str) -> bool {
        let Some(since) = self.since else {
            return false;
        };
        let mut numbers = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse::<u32>().ok());
        match (numbers.next().flatten(), numbers.next().flatten()) {
            (Some(major), Some(minor)) => (major, minor) < since,
            _ => false,
        }
    }

    /// The options needed under a cgroup mode (`v1` true for v1).
    pub fn options(&self, v1: bool) -> impl Iterator<Item = &'static str> {
        let extra: &'static [&'static str] = if v1 { self.config_v1 } else { &[] };
        self.config.iter().chain(extra).copied()
    }
}

impl Probe {
    /// Whether `suite/name`, a selftest's result, is one of this probe's
    /// counterparts.
    pub fn has_counterpart(&self, suite: &str, name: &str) -> bool {
        self.selftests.iter().any(|pattern| {
            pattern
                .split_once('/')
                .is_some_and(|(s, n)| s == suite && glob_matches(n, name))
        })
    }
}

/// `pattern` matches `text`, where each `*` stands for any run of characters.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counterparts_match_by_suite_and_glob() {
        assert!(glob_matches("test_cgkill_*", "test_cgkill_forkbomb"));
        assert!(glob_matches(
            "test_memcg_current_peak",
            "test_memcg_current_peak"
        ));
        assert!(!glob_matches(
            "test_memcg_current_peak",
            "test_memcg_current_peak2"
        ));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("a*b*c", "a-x-b-y-c"));
        assert!(!glob_matches("a*b*c", "a-x-c-y-b"));
        assert!(!glob_matches("ab*ba", "aba"));
        let kill = crate::catalog::find("cgroup.kill").expect("declared");
        assert!(kill.has_counterpart("cgroup", "test_cgkill_simple"));
        assert!(!kill.has_counterpart("timens", "test_cgkill_simple"));
        assert!(!kill.has_counterpart("cgroup", "test_cgfreezer_simple"));
    }

    #[test]
    fn a_release_predates_a_feature_by_its_major_and_minor() {
        let kill = Needs {
            since: Some((5, 14)),
            ..Needs::NOTHING
        };
        assert!(kill.predates("5.10.0-32-cloud-amd64"));
        assert!(!kill.predates("5.14.0"));
        assert!(!kill.predates("6.1.0-57-cloud-amd64"));
        assert!(!kill.predates("7.2.0-rc1"));
        assert!(!Needs::NOTHING.predates("2.6.32"));
        assert!(!kill.predates("unknown"));
    }
}
