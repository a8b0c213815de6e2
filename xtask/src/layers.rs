//! `cargo xtask layers`: the runtime's modules form the layers of
//! `../shared/DESIGN.md`, and no import goes up or round in a cycle.
//!
//! Each module of `runtime/src` is read for the modules it names: `use
//! crate::…` (grouped lists too), `crate::a::b` paths in code, `super::x`,
//! and the children it declares with `mod`. A name resolves to the longest
//! module path that exists, so `crate::spec::network::Request` is a use of
//! `spec::network`. Comments are skipped. The graph must have no cycle
//! (Tarjan's strongly connected components), and every edge must go to
//! the same layer or a lower one ([`LAYERS`]). A module missing from the
//! table is an error too: a new module must say where it belongs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Each module's layer, from the bottom: 1 system helpers, 2 plain types
/// and their parsers (the `spec` crate, which cargo keeps from importing
/// the runtime at all), 3 mechanisms, 4 init and the store, 5 launch and
/// what drives it. Layer 6, the command lines, is the `mydocker` binary
/// (`src/bin/`), which cargo lets use only the library's public API. A
/// submodule not listed takes its parent's layer.
pub const LAYERS: &[(&str, u8)] = &[
    ("error", 1),
    ("files", 1),
    ("ident", 1),
    ("timeline", 1),
    ("host", 3),
    ("setup", 3),
    ("syscall", 3),
    ("rlimits", 3),
    ("reaper", 3),
    ("log_times", 3),
    ("rootfs", 3),
    ("mounts", 3),
    ("hooks", 3),
    ("security", 3),
    ("userns", 3),
    ("network", 3),
    ("tty", 3),
    ("channel", 3),
    ("init", 4),
    ("store", 4),
    ("launch", 5),
    ("exec", 5),
    ("detach", 5),
    ("lifecycle", 5),
    ("copy", 5),
    ("stats", 5),
    ("inspect", 5),
    ("reap", 5),
    ("prune", 5),
    ("oci", 5),
    ("image", 5),
    ("volume", 5),
];

/// The modules of a source tree and the modules each one uses.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// Reads every module under `src` (a crate's `src/`; `lib.rs`, `main.rs`
/// and `bin/` are the crate's root, not modules).
pub fn read(src: &Path) -> Result<Graph, String> {
    let mut sources = BTreeMap::new();
    collect(src, src, &mut sources)?;
    Ok(graph(&sources))
}

fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("read {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "bin") {
                collect(root, &path, out)?;
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let relative = path.strip_prefix(root).expect("under the root");
        let text = relative.with_extension("").to_string_lossy().into_owned();
        let name = text
            .strip_suffix("/mod")
            .unwrap_or(&text)
            .replace('/', "::");
        if name == "lib" || name == "main" {
            continue;
        }
        let source =
            std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        out.insert(name, source);
    }
    Ok(())
}

/// The graph of modules given by name and source.
pub fn graph(sources: &BTreeMap<String, String>) -> Graph {
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|candidate| sources.contains_key(candidate))
    };
    let mut graph = Graph::new();
    for (name, source) in sources {
        // Tests sit at the end, in `mod tests`, where `super::` is the
        // module itself; they are not part of the layering.
        let code = strip_comments(source.split("#[cfg(test)]").next().unwrap_or(""));
        let mut uses = BTreeSet::new();
        for path in crate_paths(&code) {
            uses.extend(resolve(&path));
        }
        let parent = name.rsplit_once("::").map(|(p, _)| p);
        for path in prefixed_paths(&code, "super::") {
            let full = match parent {
                Some(parent) => format!("{parent}::{path}"),
                None => path,
            };
            uses.extend(resolve(&full).or_else(|| parent.map(str::to_owned)));
        }
        for child in declared_children(&code) {
            let full = format!("{name}::{child}");
            if sources.contains_key(&full) {
                uses.insert(full);
            }
        }
        uses.remove(name);
        graph.insert(name.clone(), uses);
    }
    graph
}

/// The source without `//` comments (doc comments name modules in links).
fn strip_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.find("//") {
            // Not inside a string: good enough for this tree, where `//`
            // in a string literal never names a module.
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path named after `crate::`, with grouped `use` lists
/// expanded: `crate::{a::X, b}` gives `a::X` and `b`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let head: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let after = &rest[head.len()..];
        if head.is_empty() || head.ends_with("::") && after.starts_with('{') {
            let prefix = head.clone();
            if let Some(close) = matching_brace(after) {
                for item in split_group(&after[1..close]) {
                    paths.push(format!("{prefix}{item}"));
                }
            }
        } else {
            paths.push(head.trim_end_matches(':').to_owned());
        }
    }
    paths
}

/// The items of a `{…}` group, nested groups expanded.
fn split_group(group: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    let bytes = group.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => depth -= 1,
            b',' if depth == 0 => {
                items.push(group[start..i].trim().to_owned());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(group[start..].trim().to_owned());
    let mut out = Vec::new();
    for item in items.into_iter().filter(|i| !i.is_empty()) {
        match item.find('{') {
            Some(open) => {
                let prefix = &item[..open];
                let inner = item[open + 1..].trim_end().trim_end_matches('}');
                for sub in split_group(inner) {
                    out.push(format!("{prefix}{sub}"));
                }
            }
            None => out.push(item.split_whitespace().next().unwrap_or("").to_owned()),
        }
    }
    out
}

/// The index of the `}` that closes the `{` at the start of `text`.
fn matching_brace(text: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Paths after `prefix` (`super::x::y` gives `x::y`).
fn prefixed_paths(code: &str, prefix: &str) -> Vec<String> {
    code.match_indices(prefix)
        .map(|(at, _)| {
            code[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect::<String>()
                .trim_end_matches(':')
                .to_owned()
        })
        .filter(|p| !p.is_empty())
        .collect()
}

/// The children declared with `mod x;` (not inline `mod tests { … }`).
fn declared_children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line
                .strip_prefix("pub(crate) ")
                .or_else(|| line.strip_prefix("pub "))
                .unwrap_or(line);
            let name = line.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

/// The cycles of a graph: each strongly connected component of more than
/// one module, sorted.
pub fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let n = self.index.len();
            self.index.insert(v, n);
            self.low.insert(v, n);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !tarjan.index.contains_key(v.as_str()) {
            tarjan.visit(v);
        }
    }
    tarjan.found.sort();
    tarjan.found
}

/// A module's layer: its own entry, or its nearest listed ancestor's.
pub fn layer_of(module: &str) -> Option<u8> {
    let mut name = module;
    loop {
        if let Some((_, layer)) = LAYERS.iter().find(|(m, _)| *m == name) {
            return Some(*layer);
        }
        name = name.rsplit_once("::")?.0;
    }
}

/// Every import that breaks the layering, one line each: an edge up, a
/// module without a layer, a cycle.
pub fn violations(graph: &Graph) -> Vec<String> {
    let mut found = Vec::new();
    for (module, uses) in graph {
        let Some(layer) = layer_of(module) else {
            found.push(format!(
                "{module} has no layer: add it to LAYERS in xtask/src/layers.rs"
            ));
            continue;
        };
        for used in uses {
            // A module may use its own submodules and its parent.
            if used.starts_with(&format!("{module}::")) || module.starts_with(&format!("{used}::"))
            {
                continue;
            }
            if let Some(other) = layer_of(used).filter(|l| *l > layer) {
                found.push(format!(
                    "{module} (layer {layer}) imports {used} (layer {other}): an import may only go down"
                ));
            }
        }
    }
    for cycle in cycles(graph) {
        found.push(format!(
            "these modules import each other in a cycle: {}",
            cycle.join(", ")
        ));
    }
    found
}

/// Counts for the note: modules, modules in cycles, the longest file.
pub fn summary(src: &Path, graph: &Graph) -> String {
    let in_cycles: usize = cycles(graph).iter().map(Vec::len).sum();
    let longest = graph
        .keys()
        .filter_map(|m| {
            let base = src.join(m.replace("::", "/"));
            let file = if base.with_extension("rs").is_file() {
                base.with_extension("rs")
            } else {
                base.join("mod.rs")
            };
            let lines = std::fs::read_to_string(&file).ok()?.lines().count();
            Some((lines, m.clone()))
        })
        .max();
    let (lines, file) = longest.unwrap_or_default();
    format!(
        "{} modules, {} in cycles, longest {file} ({lines} lines)",
        graph.len(),
        in_cycles
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(files: &[(&str, &str)]) -> BTreeMap<String, String> {
        files
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect()
    }

    #[test]
    fn uses_of_every_shape_resolve_to_the_longest_module() {
        let g = graph(&sources(&[
            (
                "launch",
                "use crate::{error::{Error, Result}, spec::network::Request};\n\
                 // crate::cli is only named in a comment\n\
                 fn f() { crate::store::now(); }\n",
            ),
            ("error", ""),
            ("spec", "pub mod network;\n"),
            ("spec::network", "use super::Limits;\n"),
            ("store", ""),
            ("cli", ""),
        ]));
        assert_eq!(
            g["launch"],
            ["error", "spec::network", "store"].map(String::from).into()
        );
        assert_eq!(g["spec"], ["spec::network".to_owned()].into());
        assert_eq!(g["spec::network"], ["spec".to_owned()].into());
    }

    #[test]
    fn a_cycle_and_an_import_upwards_are_both_reported() {
        let g = graph(&sources(&[
            ("store", "use crate::network::Endpoint;"),
            ("network", "use crate::store::Store;"),
            ("error", "use crate::launch::Container;"),
            ("launch", ""),
        ]));
        assert_eq!(
            cycles(&g),
            vec![vec!["network".to_owned(), "store".to_owned()]]
        );
        let found = violations(&g);
        assert!(
            found
                .iter()
                .any(|v| v.starts_with("error (layer 1) imports launch (layer 5)")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.contains("network, store")),
            "{found:?}"
        );
    }

    #[test]
    fn a_module_without_a_layer_is_refused() {
        let g = graph(&sources(&[("gadgets", "")]));
        assert_eq!(
            violations(&g),
            ["gadgets has no layer: add it to LAYERS in xtask/src/layers.rs"]
        );
    }

    #[test]
    fn the_runtime_is_layered() {
        let src = crate::workspace_root().join("runtime/src");
        let g = read(&src).unwrap();
        assert!(g.len() > 20, "read {} modules", g.len());
        let found = violations(&g);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}
