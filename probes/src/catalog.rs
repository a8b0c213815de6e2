//! Finding probes in the catalog: by id, or by cargo test's filter rules.
//! The catalog itself, [`crate::PROBES`], is built from each probe file's
//! declaration in `lib.rs`.

use crate::probe::Probe;
use crate::PROBES;

/// The probe with this id.
pub fn find(id: &str) -> Option<&'static Probe> {
    PROBES.iter().copied().find(|p| p.id == id)
}

/// The probes whose id contains any of `filters` (all of them when there is
/// none), or equals one when `exact` is set: cargo test's filter rules.
pub fn select(filters: &[String], exact: bool) -> Vec<&'static Probe> {
    PROBES
        .iter()
        .copied()
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
    fn each_declaration_lives_in_the_file_its_id_names() {
        let declared: Vec<&str> = PROBES.iter().map(|p| p.id).collect();
        assert_eq!(declared, crate::FILE_IDS);
    }

    #[test]
    fn every_probe_can_be_shown_to_fail() {
        for probe in PROBES.iter() {
            assert!(
                probe.mutations.is_empty() != probe.why_no_mutation.is_none(),
                "{} must have mutation cases, or (only then none) say why there can be none",
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
