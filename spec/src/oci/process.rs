//! `process` of a `config.json`: environment, identity, capabilities, rlimits.

use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimit};

use crate::error::{Error, Result};
use crate::rlimit::{Resource, Rlimit};
use crate::security::CapabilitySets;
use crate::User;

/// `KEY=VALUE` entries, each with its `=`.
pub fn environment(entries: &[String]) -> Result<Vec<(String, String)>> {
    entries
        .iter()
        .map(|entry| {
            crate::parse::parse_env(entry).map_err(|_| Error::Config {
                field: "process.env".into(),
                problem: format!("{entry:?} is not KEY=VALUE"),
            })
        })
        .collect()
}

/// `process.user`: numeric ids only, as the specification's Linux user is.
pub fn user(user: &oci_spec::runtime::User) -> User {
    User {
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user.additional_gids().clone().unwrap_or_default(),
        umask: user.umask(),
    }
}

/// `RLIMIT_*` entries, each resource once.
pub fn rlimits(entries: &[PosixRlimit]) -> Result<Vec<Rlimit>> {
    let limits = entries
        .iter()
        .map(|entry| {
            let name = serde_json::to_value(entry.typ())
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let resource = Resource::from_name(&name).ok_or_else(|| Error::Unsupported {
                field: "process.rlimits.type".into(),
                why: format!("{name} is not a resource mydocker knows"),
            })?;
            Rlimit::new(resource, entry.soft(), entry.hard()).map_err(|_| Error::Config {
                field: "process.rlimits".into(),
                problem: format!(
                    "{name}: soft {} exceeds hard {}",
                    entry.soft(),
                    entry.hard()
                ),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    crate::rlimit::check_unique(&limits, "process.rlimits")?;
    Ok(limits)
}

/// Each of the five sets as its own mask. A process keeps no capability
/// at all when the configuration names none.
pub fn capabilities(sets: Option<&LinuxCapabilities>) -> Result<CapabilitySets> {
    let Some(sets) = sets else {
        return Ok(CapabilitySets::default());
    };
    let mask = |field: &'static str, set: &Option<Capabilities>| -> Result<u64> {
        let mut mask = 0;
        for cap in set.iter().flatten() {
            // oci-spec spells them without the prefix; the kernel's names have it.
            let parsed = crate::security::parse(field, &format!("CAP_{cap}"))?;
            mask |= parsed.map_or(0, |c| c.bitmask());
        }
        Ok(mask)
    };
    let sets = CapabilitySets {
        bounding: mask("process.capabilities.bounding", sets.bounding())?,
        effective: mask("process.capabilities.effective", sets.effective())?,
        permitted: mask("process.capabilities.permitted", sets.permitted())?,
        inheritable: mask("process.capabilities.inheritable", sets.inheritable())?,
        ambient: mask("process.capabilities.ambient", sets.ambient())?,
    };
    // The kernel's own rules, checked here so that create says which set
    // is wrong instead of init failing with EPERM.
    for (field, set, within, rule) in [
        (
            "process.capabilities.effective",
            sets.effective,
            sets.permitted,
            "permitted",
        ),
        (
            "process.capabilities.ambient",
            sets.ambient,
            sets.permitted & sets.inheritable,
            "both permitted and inheritable",
        ),
    ] {
        let outside = set & !within;
        if outside != 0 {
            return Err(Error::Config {
                field: field.into(),
                problem: format!(
                    "{} not also {rule}, which the kernel requires",
                    crate::security::names(outside).join(", ")
                ),
            });
        }
    }
    Ok(sets)
}
