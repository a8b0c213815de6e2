//! What differs between two kernels: the probes whose verdict changed in
//! each cgroup mode, with the reasons, and the kernel config options whose
//! state changed. The two sides are kernels of one matrix, or of two matrix
//! files (for instance the same kernel before and after a package update).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::cell::{CellReport, CgroupMode};
use crate::config::Tristate;
use crate::matrix::{Entry, Matrix};

/// One side of a diff as named on the command line: `LABEL`, `LABEL/MODE`,
/// `FILE` (a matrix JSON file), or `FILE:LABEL[/MODE]` for a file that holds
/// several kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The matrix file, when the side names one; else the `--matrix` one.
    pub file: Option<PathBuf>,
    pub kernel: Option<String>,
    pub mode: Option<CgroupMode>,
}

impl Spec {
    /// Parses a side. `is_file` tells an existing file from a label; a name
    /// ending in `.json` is taken for a file even when it does not exist, so
    /// that a mistyped path is reported as one.
    pub fn parse(text: &str, is_file: impl Fn(&Path) -> bool) -> Spec {
        let file_like = |t: &str| is_file(Path::new(t)) || t.ends_with(".json");
        if file_like(text) {
            return Spec {
                file: Some(PathBuf::from(text)),
                kernel: None,
                mode: None,
            };
        }
        let (file, selector) = match text.rsplit_once(':') {
            Some((file, selector)) if file_like(file) => (Some(PathBuf::from(file)), selector),
            _ => (None, text),
        };
        let (kernel, mode) = match selector.rsplit_once('/') {
            Some((kernel, mode)) => match mode.parse::<CgroupMode>() {
                Ok(mode) => (kernel, Some(mode)),
                Err(_) => (selector, None),
            },
            None => (selector, None),
        };
        Spec {
            file,
            kernel: Some(kernel.to_owned()),
            mode,
        }
    }
}

/// A side resolved against the matrix it comes from.
#[derive(Debug, Clone, Copy)]
pub struct Side<'a> {
    /// How the side is shown: what was typed on the command line.
    pub name: &'a str,
    /// Where the matrix came from, for error messages (a file path).
    pub origin: &'a str,
    pub matrix: &'a Matrix,
    /// The kernel label; `None` when the matrix holds exactly one kernel.
    pub kernel: Option<&'a str>,
    pub mode: Option<CgroupMode>,
}

/// What differs between two kernels.
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    pub a: Kernel,
    pub b: Kernel,
    /// One per cgroup mode compared (or the two modes named).
    pub pairs: Vec<Pair>,
    /// Columns of one side whose mode the other side has no cell for.
    pub unpaired: Vec<String>,
    /// Container config options whose state differs, in option order.
    pub config: Vec<ConfigChange>,
    /// Sides whose matrix recorded no kernel config (nothing to compare).
    pub config_unknown: Vec<String>,
}

/// A kernel as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// As typed on the command line.
    pub name: String,
    /// The kernel's label in its matrix.
    pub label: String,
    /// Where the kernel came from (a Debian package, an image path), if recorded.
    pub source: Option<String>,
    /// Every release (`uname -r`) its compared cells reported, each once.
    pub releases: Vec<String>,
}

/// Two cells compared: normally the same cgroup mode on both kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub a: Column,
    pub b: Column,
    /// Probes both cells ran (or that a failed cell could not run).
    pub compared: usize,
    /// The probes whose verdict differs, in catalog order.
    pub changes: Vec<ProbeChange>,
    /// Probes only one of the two cells ran (a filtered run, or a newer catalog).
    pub one_side_only: Vec<String>,
}

/// One compared cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Such as `debian-6.12/v1`.
    pub column: String,
    pub mode: CgroupMode,
    /// The release the guest reported; `None` when the cell has no report.
    pub release: Option<String>,
}

/// A probe whose verdict differs between the two cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeChange {
    pub probe: String,
    pub a: Entry,
    pub b: Entry,
}

/// A config option whose state differs between the two kernels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    /// Without the `CONFIG_` prefix.
    pub option: String,
    pub a: Tristate,
    pub b: Tristate,
    /// The probes whose declaration needs the option, in either mode.
    pub probes: Vec<String>,
}

impl Diff {
    /// True when no verdict and no config option differs.
    pub fn is_empty(&self) -> bool {
        self.pairs.iter().all(|p| p.changes.is_empty()) && self.config.is_empty()
    }
}

/// Reads the matrices the two sides name and compares them. Sides that name
/// no file are kernels of `matrix`, which is read only when one does.
pub fn load(a: &str, b: &str, matrix: &Path) -> Result<Diff, String> {
    let specs = [a, b].map(|text| Spec::parse(text, Path::is_file));
    let default = if specs.iter().any(|s| s.file.is_none()) {
        Some(read(matrix).map_err(|e| {
            format!(
                "{e} (run `cargo xtask vm-test` first, or pass --matrix FILE or two matrix files)"
            )
        })?)
    } else {
        None
    };
    let mut files = Vec::new();
    for spec in &specs {
        files.push(match &spec.file {
            Some(path) => Some(read(path)?),
            None => None,
        });
    }
    let origin_of = |spec: &Spec| spec.file.as_deref().unwrap_or(matrix).display().to_string();
    let origins = [origin_of(&specs[0]), origin_of(&specs[1])];
    let side = |i: usize| {
        let spec = &specs[i];
        Side {
            name: [a, b][i],
            origin: &origins[i],
            matrix: files[i].as_ref().or(default.as_ref()).expect("read above"),
            kernel: spec.kernel.as_deref(),
            mode: spec.mode,
        }
    };
    diff(side(0), side(1))
}

/// Reads a matrix JSON file (`matrix.json`, or a `cell-*.json`).
pub fn read(path: &Path) -> Result<Matrix, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a vm-test matrix: {e}", path.display()))
}

/// A side's kernel and the cells of it that are compared.
struct Resolved<'a> {
    side: Side<'a>,
    label: String,
    cells: Vec<&'a CellReport>,
}

/// The kernel labels of a matrix: its kernels, then any others its cells name.
fn labels(matrix: &Matrix) -> Vec<String> {
    let mut labels: Vec<String> = matrix.kernels.iter().map(|k| k.label.clone()).collect();
    for cell in &matrix.cells {
        if !labels.contains(&cell.kernel) {
            labels.push(cell.kernel.clone());
        }
    }
    labels
}

fn resolve(side: Side<'_>) -> Result<Resolved<'_>, String> {
    let all = labels(side.matrix);
    let label = match side.kernel {
        Some(label) if all.iter().any(|l| l == label) => label.to_owned(),
        Some(label) => {
            return Err(format!(
                "no kernel `{label}` in {}; it has: {}",
                side.origin,
                list_or_none(&all)
            ))
        }
        None => match all.as_slice() {
            [only] => only.clone(),
            _ => {
                return Err(format!(
                    "{} holds {} kernels ({}): name one, as {}:LABEL",
                    side.origin,
                    all.len(),
                    list_or_none(&all),
                    side.name
                ))
            }
        },
    };
    let cells: Vec<&CellReport> = side
        .matrix
        .cells
        .iter()
        .filter(|c| c.kernel == label && side.mode.is_none_or(|m| c.cgroup_mode == m))
        .collect();
    if cells.is_empty() {
        let columns: Vec<String> = side
            .matrix
            .cells
            .iter()
            .filter(|c| c.kernel == label)
            .map(CellReport::column)
            .collect();
        let what = side.mode.map_or(label.clone(), |m| format!("{label}/{m}"));
        return Err(format!(
            "no cell `{what}` in {}; its cells of {label}: {}",
            side.origin,
            list_or_none(&columns)
        ));
    }
    Ok(Resolved { side, label, cells })
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// Compares two kernels. An error is one line that says what was not found
/// and what there is.
pub fn diff(a: Side<'_>, b: Side<'_>) -> Result<Diff, String> {
    let (a, b) = (resolve(a)?, resolve(b)?);
    let mut cell_pairs: Vec<(&CellReport, &CellReport)> = Vec::new();
    let mut unpaired = Vec::new();
    match (a.side.mode, b.side.mode) {
        // Both named: compare exactly those, even across modes.
        (Some(_), Some(_)) => cell_pairs.push((a.cells[0], b.cells[0])),
        // One named: the same mode on the other side.
        (Some(mode), None) | (None, Some(mode)) => match (cell_of(&a, mode), cell_of(&b, mode)) {
            (Some(x), Some(y)) => cell_pairs.push((x, y)),
            (x, _) => {
                let missing = if x.is_none() { &a } else { &b };
                return Err(format!(
                    "no cell `{}/{mode}` in {}; its cells of {}: {}",
                    missing.label,
                    missing.side.origin,
                    missing.label,
                    list_or_none(&missing.cells.iter().map(|c| c.column()).collect::<Vec<_>>())
                ));
            }
        },
        (None, None) => {
            for mode in CgroupMode::BOTH {
                match (cell_of(&a, mode), cell_of(&b, mode)) {
                    (Some(x), Some(y)) => cell_pairs.push((x, y)),
                    (Some(x), None) | (None, Some(x)) => unpaired.push(x.column()),
                    (None, None) => {}
                }
            }
            if cell_pairs.is_empty() {
                return Err(format!(
                    "{} and {} share no cgroup mode ({} against {}): name one for each, as {}/v1 {}/v2",
                    a.side.name,
                    b.side.name,
                    a.cells.iter().map(|c| c.column()).collect::<Vec<_>>().join(", "),
                    b.cells.iter().map(|c| c.column()).collect::<Vec<_>>().join(", "),
                    a.side.name,
                    b.side.name,
                ));
            }
        }
    }
    let pairs = cell_pairs
        .into_iter()
        .map(|(x, y)| compare_cells(a.side.matrix, x, b.side.matrix, y))
        .collect();
    let config_a = a.side.matrix.kernel(&a.label).map(|k| &k.config);
    let config_b = b.side.matrix.kernel(&b.label).map(|k| &k.config);
    let mut config_unknown = Vec::new();
    for (name, config) in [(a.side.name, config_a), (b.side.name, config_b)] {
        if config.is_none_or(BTreeMap::is_empty) {
            config_unknown.push(name.to_owned());
        }
    }
    let config = match (config_a, config_b) {
        (Some(x), Some(y)) => config_changes(x, y),
        _ => Vec::new(),
    };
    Ok(Diff {
        a: kernel(&a),
        b: kernel(&b),
        pairs,
        unpaired,
        config,
        config_unknown,
    })
}

fn cell_of<'a>(r: &Resolved<'a>, mode: CgroupMode) -> Option<&'a CellReport> {
    r.cells.iter().copied().find(|c| c.cgroup_mode == mode)
}

fn kernel(r: &Resolved<'_>) -> Kernel {
    let mut releases: Vec<String> = Vec::new();
    for release in r.cells.iter().filter_map(|c| release(c)) {
        if !releases.contains(&release) {
            releases.push(release);
        }
    }
    Kernel {
        name: r.side.name.to_owned(),
        label: r.label.clone(),
        source: r.side.matrix.kernel(&r.label).map(|k| k.source.clone()),
        releases,
    }
}

fn release(cell: &CellReport) -> Option<String> {
    cell.guest.as_ref().map(|g| g.kernel_release.clone())
}

fn ran(cell: &CellReport, probe: &str) -> bool {
    cell.guest
        .iter()
        .flat_map(|g| &g.probes)
        .flat_map(|r| &r.results)
        .any(|r| r.id == probe)
}

fn compare_cells(ma: &Matrix, a: &CellReport, mb: &Matrix, b: &CellReport) -> Pair {
    let mut probes = ma.probe_ids();
    for id in mb.probe_ids() {
        if !probes.contains(&id) {
            probes.push(id);
        }
    }
    let mut pair = Pair {
        a: column(a),
        b: column(b),
        compared: 0,
        changes: Vec::new(),
        one_side_only: Vec::new(),
    };
    for probe in probes {
        // A failed cell ran nothing, and says so for every probe.
        let (in_a, in_b) = (
            a.failure.is_some() || ran(a, &probe),
            b.failure.is_some() || ran(b, &probe),
        );
        match (in_a, in_b) {
            (true, true) => {}
            (false, false) => continue,
            _ => {
                pair.one_side_only.push(probe);
                continue;
            }
        }
        pair.compared += 1;
        let (x, y) = (ma.entry(a, &probe), mb.entry(b, &probe));
        if x.label() != y.label() {
            pair.changes.push(ProbeChange { probe, a: x, b: y });
        }
    }
    pair
}

fn column(cell: &CellReport) -> Column {
    Column {
        column: cell.column(),
        mode: cell.cgroup_mode,
        release: release(cell),
    }
}

fn config_changes(
    a: &BTreeMap<String, Tristate>,
    b: &BTreeMap<String, Tristate>,
) -> Vec<ConfigChange> {
    // The catalog's order first (runtime options, then each probe's), then
    // any option an older or newer catalog recorded.
    let mut options: Vec<String> = crate::config::container_options()
        .into_iter()
        .map(str::to_owned)
        .collect();
    for option in a.keys().chain(b.keys()) {
        if !options.contains(option) {
            options.push(option.clone());
        }
    }
    options
        .into_iter()
        .filter_map(|option| {
            // An option only one side recorded is unknown on the other, not changed.
            let (x, y) = (*a.get(&option)?, *b.get(&option)?);
            (x != y).then(|| ConfigChange {
                probes: probes::PROBES
                    .iter()
                    .filter(|p| p.needs.options(true).any(|o| o == option))
                    .map(|p| p.id.to_owned())
                    .collect(),
                option,
                a: x,
                b: y,
            })
        })
        .collect()
}

/// Why an entry is what it is: the FAIL, inconclusive or missing reason, or
/// the unsupported reason with the config options and version behind it.
pub fn reason(entry: &Entry) -> Option<String> {
    match entry {
        Entry::Pass => None,
        Entry::Fail(reason)
        | Entry::Inconclusive(reason)
        | Entry::Missing(reason)
        | Entry::Absent(reason) => Some(reason.clone()),
        Entry::Unsupported(reason, options) if options.is_empty() => Some(reason.clone()),
        Entry::Unsupported(reason, options) => Some(format!("{reason} [{}]", options.join(", "))),
    }
}

fn releases(kernel: &Kernel) -> String {
    if kernel.releases.is_empty() {
        "no cell reported a release".to_owned()
    } else {
        kernel.releases.join(", ")
    }
}

fn side_line(kernel: &Kernel) -> String {
    let mut line = format!("kernel {}", releases(kernel));
    if kernel.name != kernel.label {
        line.push_str(&format!(", label {}", kernel.label));
    }
    if let Some(source) = &kernel.source {
        line.push_str(&format!(", from {source}"));
    }
    line
}

fn column_heading(c: &Column) -> String {
    format!(
        "{} ({})",
        c.column,
        c.release.as_deref().unwrap_or("no report")
    )
}

fn mode_title(pair: &Pair) -> String {
    if pair.a.mode == pair.b.mode {
        format!("cgroup {}", pair.a.mode)
    } else {
        format!("cgroup {} against {}", pair.a.mode, pair.b.mode)
    }
}

/// The diff for a terminal; `color` adds ANSI colours to the verdicts.
pub fn human(diff: &Diff, color: bool) -> String {
    let paint = |entry: &Entry| {
        if color {
            format!("\x1b[{}m{}\x1b[0m", entry.color_code(), entry.label())
        } else {
            entry.label().to_owned()
        }
    };
    let width = diff.a.name.len().max(diff.b.name.len());
    let mut out = format!("{} -> {}\n", diff.a.name, diff.b.name);
    for kernel in [&diff.a, &diff.b] {
        let _ = writeln!(out, "  {:width$}  {}", kernel.name, side_line(kernel));
    }
    for pair in &diff.pairs {
        let _ = write!(
            out,
            "\n{}: {} -> {}: ",
            mode_title(pair),
            column_heading(&pair.a),
            column_heading(&pair.b)
        );
        if pair.changes.is_empty() {
            let _ = writeln!(
                out,
                "no verdict changed ({} probes compared)",
                pair.compared
            );
        } else {
            let _ = writeln!(
                out,
                "{} of {} probes changed",
                pair.changes.len(),
                pair.compared
            );
        }
        let first = pair
            .changes
            .iter()
            .map(|c| c.probe.len())
            .max()
            .unwrap_or(0);
        for change in &pair.changes {
            let _ = writeln!(
                out,
                "  {:first$}  {} -> {}",
                change.probe,
                paint(&change.a),
                paint(&change.b)
            );
            for (column, entry) in [(&pair.a, &change.a), (&pair.b, &change.b)] {
                if let Some(reason) = reason(entry) {
                    let _ = writeln!(
                        out,
                        "      {} {}: {}",
                        column.column,
                        entry.label(),
                        reason.replace('\n', "\n        ")
                    );
                }
            }
        }
        if !pair.one_side_only.is_empty() {
            let _ = writeln!(
                out,
                "  not compared, run in one cell only: {}",
                pair.one_side_only.join(", ")
            );
        }
    }
    for column in &diff.unpaired {
        let _ = writeln!(
            out,
            "\n{column}: the other kernel has no cell in this cgroup mode"
        );
    }
    out.push('\n');
    if diff.config.is_empty() {
        if diff.config_unknown.is_empty() {
            out.push_str("kernel config: no container option changed\n");
        }
    } else {
        let _ = writeln!(
            out,
            "kernel config: {} container option{} changed",
            diff.config.len(),
            if diff.config.len() == 1 { "" } else { "s" }
        );
        let first = diff
            .config
            .iter()
            .map(|c| c.option.len() + "CONFIG_".len())
            .max()
            .unwrap_or(0);
        for change in &diff.config {
            let _ = write!(
                out,
                "  {:first$}  {} -> {}",
                format!("CONFIG_{}", change.option),
                change.a.label(),
                change.b.label()
            );
            if !change.probes.is_empty() {
                let _ = write!(out, "  (needed by {})", change.probes.join(", "));
            }
            out.push('\n');
        }
    }
    for name in &diff.config_unknown {
        let _ = writeln!(
            out,
            "kernel config: none recorded for {name}, so no option is compared"
        );
    }
    out
}

/// Table cells cannot hold a `|` or a line break.
fn cell_text(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The diff in Markdown, fit for a CI summary or an issue.
pub fn markdown(diff: &Diff) -> String {
    let mut out = format!(
        "### `{}` → `{}`\n\n| | kernel release | source |\n|---|---|---|\n",
        diff.a.name, diff.b.name
    );
    for kernel in [&diff.a, &diff.b] {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            kernel.name,
            if kernel.releases.is_empty() {
                "no cell reported a release".to_owned()
            } else {
                kernel
                    .releases
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            kernel
                .source
                .as_deref()
                .map_or_else(|| "?".to_owned(), cell_text)
        );
    }
    for pair in &diff.pairs {
        let _ = writeln!(
            out,
            "\n#### {}: `{}` → `{}`\n",
            mode_title(pair),
            pair.a.column,
            pair.b.column
        );
        if pair.changes.is_empty() {
            let _ = writeln!(
                out,
                "No verdict changed ({} probes compared).",
                pair.compared
            );
        } else {
            let _ = writeln!(
                out,
                "{} of {} probes changed.\n\n| probe | `{}` | `{}` | why |\n|---|---|---|---|",
                pair.changes.len(),
                pair.compared,
                pair.a.column,
                pair.b.column
            );
            for change in &pair.changes {
                let why: Vec<String> = [(&pair.a, &change.a), (&pair.b, &change.b)]
                    .into_iter()
                    .filter_map(|(column, entry)| {
                        reason(entry).map(|r| format!("{}: {}", column.column, cell_text(&r)))
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    change.probe,
                    markdown_label(&change.a),
                    markdown_label(&change.b),
                    why.join("<br>")
                );
            }
        }
        if !pair.one_side_only.is_empty() {
            let _ = writeln!(
                out,
                "\nNot compared, run in one cell only: {}.",
                pair.one_side_only
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    if !diff.unpaired.is_empty() {
        let _ = writeln!(
            out,
            "\nNo counterpart in the other kernel's cgroup modes: {}.",
            diff.unpaired
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out.push_str("\n#### Kernel config\n\n");
    if diff.config.is_empty() {
        if diff.config_unknown.is_empty() {
            out.push_str("No container option changed.\n");
        }
    } else {
        let _ = writeln!(
            out,
            "| option | `{}` | `{}` | needed by |\n|---|---|---|---|",
            diff.a.name, diff.b.name
        );
        for change in &diff.config {
            let _ = writeln!(
                out,
                "| `CONFIG_{}` | {} | {} | {} |",
                change.option,
                change.a.label(),
                change.b.label(),
                change
                    .probes
                    .iter()
                    .map(|p| format!("`{p}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    for name in &diff.config_unknown {
        let _ = writeln!(
            out,
            "No kernel config recorded for `{name}`, so no option is compared."
        );
    }
    out
}

fn markdown_label(entry: &Entry) -> String {
    match entry {
        Entry::Pass => "pass".to_owned(),
        Entry::Inconclusive(_) => "_inconclusive_".to_owned(),
        Entry::Unsupported(..) => "unsupported".to_owned(),
        other => format!("**{}**", other.label()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::KernelInfo;
    use probes::Verdict;

    fn cell(
        kernel: &str,
        mode: CgroupMode,
        release: &str,
        verdicts: &[(&str, Verdict)],
    ) -> CellReport {
        CellReport::sample(kernel, mode, release, verdicts)
    }

    fn kernel(label: &str, memcg_v1: Tristate) -> KernelInfo {
        let mut config = BTreeMap::new();
        config.insert("MEMCG".to_owned(), Tristate::Y);
        config.insert("MEMCG_V1".to_owned(), memcg_v1);
        config.insert("VETH".to_owned(), Tristate::M);
        KernelInfo {
            label: label.into(),
            source: format!("linux-image-{label}"),
            config,
        }
    }

    const OLD: &str = "6.1.0-57-cloud-amd64";
    const NEW: &str = "6.12.117+deb12-amd64";

    fn no_memory() -> Verdict {
        Verdict::Unsupported("no memory controller".into())
    }

    /// Two kernels, both modes: v1 memory goes unsupported on the newer one,
    /// pid.view passes everywhere.
    fn matrix() -> Matrix {
        let pass = || ("pid.view", Verdict::Pass);
        Matrix {
            kernels: vec![
                kernel("debian-6.1", Tristate::Absent),
                kernel("debian-6.12", Tristate::No),
            ],
            cells: vec![
                cell(
                    "debian-6.1",
                    CgroupMode::V1,
                    OLD,
                    &[pass(), ("cgroup.memory_oom", Verdict::Pass)],
                ),
                cell(
                    "debian-6.1",
                    CgroupMode::V2,
                    OLD,
                    &[pass(), ("cgroup.memory_oom", Verdict::Pass)],
                ),
                cell(
                    "debian-6.12",
                    CgroupMode::V1,
                    NEW,
                    &[pass(), ("cgroup.memory_oom", no_memory())],
                ),
                cell(
                    "debian-6.12",
                    CgroupMode::V2,
                    NEW,
                    &[pass(), ("cgroup.memory_oom", Verdict::Pass)],
                ),
            ],
        }
    }

    fn side<'a>(name: &'a str, matrix: &'a Matrix) -> Side<'a> {
        let spec = Spec::parse(name, |_| false);
        let kernel = spec.kernel.map(|k| &name[..k.len()]);
        Side {
            name,
            origin: "matrix.json",
            matrix,
            kernel,
            mode: spec.mode,
        }
    }

    #[test]
    fn a_changed_verdict_is_found_with_its_reason_and_config() {
        let m = matrix();
        let d = diff(side("debian-6.1", &m), side("debian-6.12", &m)).unwrap();
        assert_eq!(d.a.releases, [OLD]);
        assert_eq!(d.b.releases, [NEW]);
        assert_eq!(d.pairs.len(), 2);
        let v1 = &d.pairs[0];
        assert_eq!((v1.a.mode, v1.b.mode), (CgroupMode::V1, CgroupMode::V1));
        assert_eq!(v1.compared, 2);
        assert_eq!(
            v1.changes,
            [ProbeChange {
                probe: "cgroup.memory_oom".into(),
                a: Entry::Pass,
                b: Entry::Unsupported(
                    "no memory controller".into(),
                    vec!["CONFIG_MEMCG_V1 is not set".into()]
                ),
            }]
        );
        let text = human(&d, false);
        assert!(
            text.contains(&format!(
                "cgroup v1: debian-6.1/v1 ({OLD}) -> debian-6.12/v1 ({NEW}): 1 of 2 probes changed"
            )),
            "{text}"
        );
        assert!(
            text.contains("cgroup.memory_oom  pass -> unsupported"),
            "{text}"
        );
        assert!(
            text.contains(
                "debian-6.12/v1 unsupported: no memory controller [CONFIG_MEMCG_V1 is not set]"
            ),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        let md = markdown(&d);
        assert!(md.contains("| `cgroup.memory_oom` | pass | unsupported | debian-6.12/v1: no memory controller [CONFIG_MEMCG_V1 is not set] |"), "{md}");
        assert!(
            md.contains(&format!(
                "| `debian-6.12` | `{NEW}` | linux-image-debian-6.12 |"
            )),
            "{md}"
        );
    }

    #[test]
    fn an_unchanged_verdict_is_left_out() {
        let m = matrix();
        let d = diff(side("debian-6.1", &m), side("debian-6.12", &m)).unwrap();
        let v2 = &d.pairs[1];
        assert_eq!(v2.a.column, "debian-6.1/v2");
        assert!(v2.changes.is_empty());
        assert!(d
            .pairs
            .iter()
            .flat_map(|p| &p.changes)
            .all(|c| c.probe != "pid.view"));
        let text = human(&d, false);
        assert!(!text.contains("pid.view"), "{text}");
        assert!(
            text.contains("no verdict changed (2 probes compared)"),
            "{text}"
        );
        // The same kernel against itself: nothing at all.
        assert!(diff(side("debian-6.12", &m), side("debian-6.12", &m))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_config_option_change_is_listed_with_the_probes_behind_it() {
        let m = matrix();
        let d = diff(side("debian-6.1", &m), side("debian-6.12", &m)).unwrap();
        assert_eq!(d.config.len(), 1, "only MEMCG_V1 differs: {:?}", d.config);
        let change = &d.config[0];
        assert_eq!(
            (change.option.as_str(), change.a, change.b),
            ("MEMCG_V1", Tristate::Absent, Tristate::No)
        );
        assert!(change.probes.contains(&"cgroup.memory_oom".to_owned()));
        let text = human(&d, false);
        assert!(
            text.contains("kernel config: 1 container option changed"),
            "{text}"
        );
        assert!(
            text.contains("CONFIG_MEMCG_V1  absent -> not set  (needed by cgroup.memory_oom"),
            "{text}"
        );
        assert!(
            markdown(&d).contains("| `CONFIG_MEMCG_V1` | absent | not set | `cgroup.memory_oom`")
        );
    }

    #[test]
    fn a_mode_narrows_the_comparison() {
        let m = matrix();
        let d = diff(side("debian-6.1/v2", &m), side("debian-6.12", &m)).unwrap();
        assert_eq!(d.pairs.len(), 1);
        assert_eq!(d.pairs[0].b.column, "debian-6.12/v2");
        // Two modes named are compared as named, across modes.
        let d = diff(side("debian-6.12/v2", &m), side("debian-6.12/v1", &m)).unwrap();
        assert_eq!(d.pairs[0].changes.len(), 1);
        assert!(human(&d, false).contains("cgroup v2 against v1"));
    }

    #[test]
    fn a_label_not_in_the_matrix_is_one_line_naming_it_and_the_labels() {
        let m = matrix();
        let e = diff(side("debian-6.2", &m), side("debian-6.12", &m)).unwrap_err();
        assert_eq!(
            e,
            "no kernel `debian-6.2` in matrix.json; it has: debian-6.1, debian-6.12"
        );
        assert!(!e.contains('\n'));
        let mut one_mode = m.clone();
        one_mode.cells.retain(|c| c.cgroup_mode == CgroupMode::V1);
        let e = diff(
            side("debian-6.1/v2", &one_mode),
            side("debian-6.12", &one_mode),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "no cell `debian-6.1/v2` in matrix.json; its cells of debian-6.1: debian-6.1/v1"
        );
    }

    #[test]
    fn sides_parse_as_labels_modes_and_files() {
        let files = |p: &Path| p == Path::new("old") || p == Path::new("dir/m.json");
        let spec = |t| Spec::parse(t, files);
        assert_eq!(spec("debian-6.1").kernel.as_deref(), Some("debian-6.1"));
        assert_eq!(spec("debian-6.1").file, None);
        assert_eq!(spec("debian-6.1/v2").mode, Some(CgroupMode::V2));
        assert_eq!(spec("debian-6.1/v2").kernel.as_deref(), Some("debian-6.1"));
        assert_eq!(spec("old").file.as_deref(), Some(Path::new("old")));
        assert_eq!(spec("old").kernel, None);
        assert_eq!(
            spec("missing.json").file.as_deref(),
            Some(Path::new("missing.json"))
        );
        let picked = spec("dir/m.json:debian-6.12/v1");
        assert_eq!(picked.file.as_deref(), Some(Path::new("dir/m.json")));
        assert_eq!(picked.kernel.as_deref(), Some("debian-6.12"));
        assert_eq!(picked.mode, Some(CgroupMode::V1));
    }

    /// A scratch directory of its own for a test, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("vm-tests-diff-{name}-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn write(&self, name: &str, matrix: &Matrix) -> String {
            let path = self.0.join(name);
            std::fs::write(&path, serde_json::to_string(matrix).unwrap()).unwrap();
            path.display().to_string()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn two_files_compare_their_kernels() {
        let scratch = Scratch::new("files");
        let m = matrix();
        // Each file one kernel, as `cell-*.json` files or two runs are.
        let only = |label: &str| Matrix {
            kernels: m
                .kernels
                .iter()
                .filter(|k| k.label == label)
                .cloned()
                .collect(),
            cells: m
                .cells
                .iter()
                .filter(|c| c.kernel == label)
                .cloned()
                .collect(),
        };
        let a = scratch.write("a.json", &only("debian-6.1"));
        let b = scratch.write("b.json", &only("debian-6.12"));
        let unused = scratch.0.join("no-such-matrix.json");
        let d = load(&a, &b, &unused).unwrap();
        assert_eq!(
            (d.a.label.as_str(), d.b.label.as_str()),
            ("debian-6.1", "debian-6.12")
        );
        assert_eq!(d.a.name, a);
        assert_eq!(d.pairs[0].changes.len(), 1);
        assert_eq!(d.config.len(), 1);
        assert!(human(&d, false).contains(&format!("{a}  kernel {OLD}, label debian-6.1")));
        // A file of several kernels needs one named.
        let both = scratch.write("both.json", &m);
        let e = load(&both, &b, &unused).unwrap_err();
        assert_eq!(
            e,
            format!("{both} holds 2 kernels (debian-6.1, debian-6.12): name one, as {both}:LABEL")
        );
        let d = load(&format!("{both}:debian-6.12/v1"), &b, &unused).unwrap();
        assert_eq!(d.pairs.len(), 1);
        assert!(d.is_empty());
        // A label side reads the default matrix, which here does not exist.
        let e = load("debian-6.1", &b, &unused).unwrap_err();
        assert!(
            e.starts_with(&format!("read {}: ", unused.display())),
            "{e}"
        );
        assert!(load(
            &a,
            &scratch.0.join("typo.json").display().to_string(),
            &unused
        )
        .unwrap_err()
        .contains("typo.json"));
    }

    #[test]
    fn a_probe_only_one_cell_ran_is_not_compared() {
        let m = matrix();
        let mut filtered = m.clone();
        for c in &mut filtered.cells {
            if let Some(r) = c.guest.as_mut().and_then(|g| g.probes.as_mut()) {
                r.results.retain(|r| r.id == "pid.view");
            }
        }
        let a = Side {
            origin: "full.json",
            ..side("debian-6.1", &m)
        };
        let b = Side {
            origin: "filtered.json",
            ..side("debian-6.12", &filtered)
        };
        let d = diff(a, b).unwrap();
        assert_eq!(d.pairs[0].compared, 1);
        assert_eq!(d.pairs[0].one_side_only, ["cgroup.memory_oom"]);
        assert!(d.pairs[0].changes.is_empty());
    }

    #[test]
    fn a_failed_cell_differs_in_every_probe_with_its_failure() {
        let m = matrix();
        let mut broken = m.clone();
        broken.cells[2].guest = None;
        broken.cells[2].failure =
            Some("the guest did not power off within 300s\nconsole...".into());
        let d = diff(side("debian-6.1/v1", &m), side("debian-6.12/v1", &broken)).unwrap();
        assert!(d.b.releases.is_empty());
        assert!(human(&d, false).contains("debian-6.12/v1  kernel no cell reported a release"));
        assert_eq!(d.pairs[0].b.release, None);
        assert_eq!(d.pairs[0].changes.len(), 2);
        assert_eq!(
            d.pairs[0].changes[0].b,
            Entry::Missing("the guest did not power off within 300s".into())
        );
    }
}
