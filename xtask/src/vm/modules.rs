//! Kernel modules for the guest: the ones the probes need, with their
//! dependencies, in load order.
//!
//! Debian ships no `modules.dep` (depmod runs at install time), so each
//! module's dependencies are read from its own `.modinfo` ELF section, the
//! NUL-separated `key=value` strings where `depends=` lists them. 6.12 and 7.x ship
//! modules xz-compressed; they are decompressed here only to read that.
//! Soft dependencies (`softdep=pre: …`) are followed too: `libcrc32c` asks
//! the crypto API for "crc32c", which without a modprobe in the guest only
//! works if a module providing it (`crc32c_generic`) was loaded first.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

/// What any guest needs whatever it probes: the runtime's root filesystem
/// for every container, and the guest's own NIC (a device besides `lo`,
/// which `net.isolated`'s control must see; the PCI transport is a module
/// on 6.1).
const BASE: &[&str] = &["overlay", "virtio_pci", "virtio_net"];

/// The modules to load: [`BASE`], then each probe's, from its declaration,
/// each once.
pub fn wanted() -> Vec<&'static str> {
    let mut all = BASE.to_vec();
    for probe in probes::PROBES {
        for module in probe.needs.modules {
            if !all.contains(module) {
                all.push(module);
            }
        }
    }
    all
}

/// The modules to pack, dependencies first, and what could not be found.
#[derive(Debug, Default)]
pub struct Plan {
    pub load_order: Vec<PathBuf>,
    /// Built into the kernel: nothing to load.
    pub builtin: Vec<String>,
    pub missing: Vec<String>,
}

/// Resolves [`wanted`] and everything it depends on in `dir` (`lib/modules/<release>`).
pub fn plan(dir: &Path) -> Result<Plan, String> {
    plan_with(dir, &[])
}

/// [`plan`], with `extra` modules after the probes' (the selftests' disk).
pub fn plan_with(dir: &Path, extra: &[&str]) -> Result<Plan, String> {
    let files = index(dir);
    let builtin: BTreeSet<String> = std::fs::read_to_string(dir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .map(|l| normalize(l.rsplit('/').next().unwrap_or(l)))
        .collect();
    let mut plan = Plan::default();
    let mut visited = BTreeSet::new();
    for wanted in wanted().into_iter().chain(extra.iter().copied()) {
        visit(
            &normalize(wanted),
            &files,
            &builtin,
            &mut visited,
            &mut plan,
        )?;
    }
    Ok(plan)
}

/// Depth-first: dependencies are pushed before the module that needs them.
fn visit(
    name: &str,
    files: &BTreeMap<String, PathBuf>,
    builtin: &BTreeSet<String>,
    visited: &mut BTreeSet<String>,
    plan: &mut Plan,
) -> Result<(), String> {
    if !visited.insert(name.to_owned()) {
        return Ok(());
    }
    let Some(path) = files.get(name) else {
        if builtin.contains(name) {
            plan.builtin.push(name.to_owned());
        } else {
            plan.missing.push(name.to_owned());
        }
        return Ok(());
    };
    let info = modinfo(path)?;
    for dependency in &info.depends {
        visit(&normalize(dependency), files, builtin, visited, plan)?;
    }
    for soft in &info.softdeps_pre {
        let name = normalize(soft);
        let provider = if files.contains_key(&name) || builtin.contains(&name) {
            Some(name)
        } else {
            crypto_provider(soft, files)?
        };
        if let Some(provider) = provider {
            visit(&provider, files, builtin, visited, plan)?;
        }
    }
    plan.load_order.push(path.clone());
    Ok(())
}

/// Module names use `_` and `-` interchangeably; the kernel prefers `_`.
fn normalize(file: &str) -> String {
    file.split(".ko").next().unwrap_or(file).replace('-', "_")
}

/// Every module file under `dir`, by normalized name.
fn index(dir: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) {
                if name.ends_with(".ko") || name.ends_with(".ko.xz") {
                    found.insert(normalize(&name), path);
                }
            }
        }
    }
    found
}

/// What a module's `.modinfo` section says about what it needs.
#[derive(Debug, Default)]
pub struct ModInfo {
    pub depends: Vec<String>,
    /// Modules (or aliases) to load before this one.
    pub softdeps_pre: Vec<String>,
    pub aliases: Vec<String>,
}

/// Reads the `.modinfo` section: NUL-separated `key=value` strings.
pub fn modinfo(path: &Path) -> Result<ModInfo, String> {
    let raw = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let elf = if path.extension().is_some_and(|e| e == "xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out)
            .map_err(|e| format!("decompress {}: {e}", path.display()))?;
        out
    } else {
        raw
    };
    let file = object::File::parse(elf.as_slice())
        .map_err(|e| format!("{} is not an ELF module: {e}", path.display()))?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or_else(|| format!("{} has no .modinfo section", path.display()))?;
    let data = section
        .data()
        .map_err(|e| format!("read .modinfo of {}: {e}", path.display()))?;
    let mut info = ModInfo::default();
    for entry in data
        .split(|b| *b == 0)
        .filter_map(|e| std::str::from_utf8(e).ok())
    {
        if let Some(list) = entry.strip_prefix("depends=") {
            info.depends
                .extend(list.split(',').filter(|d| !d.is_empty()).map(str::to_owned));
        } else if let Some(soft) = entry.strip_prefix("softdep=") {
            // "pre: a b post: c": only what must come before matters here.
            let mut pre = false;
            for word in soft.split_whitespace() {
                match word {
                    "pre:" => pre = true,
                    "post:" => pre = false,
                    name if pre => info.softdeps_pre.push(name.to_owned()),
                    _ => {}
                }
            }
        } else if let Some(alias) = entry.strip_prefix("alias=") {
            info.aliases.push(alias.to_owned());
        }
    }
    Ok(info)
}

/// The module that provides the crypto algorithm `name` (alias
/// `crypto-<name>`), preferring the portable `_generic` implementation.
/// Only the crypto directories are searched: that is where such aliases live.
fn crypto_provider(
    name: &str,
    files: &BTreeMap<String, PathBuf>,
) -> Result<Option<String>, String> {
    let wanted = format!("crypto-{name}");
    let mut providers = Vec::new();
    for (module, path) in files
        .iter()
        .filter(|(_, p)| p.to_string_lossy().contains("/crypto/"))
    {
        if modinfo(path)?.aliases.contains(&wanted) {
            providers.push(module.clone());
        }
    }
    providers.sort_by_key(|m| !m.ends_with("_generic"));
    Ok(providers.into_iter().next())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("nf-nat.ko.xz"), "nf_nat");
        assert_eq!(normalize("veth.ko"), "veth");
    }
}
