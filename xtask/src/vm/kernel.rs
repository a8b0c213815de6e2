//! Kernels under test: Debian packages pinned by `ci/kernels.lock`, a
//! bzImage given by path, or the host itself.
//!
//! Debian's packages are fetched through a private apt configuration under
//! `target/vm/apt/<label>/`: its own sources list (only the suites of that
//! series), package lists, cache and status file. The machine's own apt
//! sources are only read to learn which mirror of Debian's archive this
//! machine uses; nothing is fetched through them.
//!
//! A series whose label the lock names is fetched at exactly the locked
//! versions (`apt-get download name=version`), and a `.deb` whose SHA256
//! differs from the lock's is refused. A series the lock does not name is
//! resolved to its newest package, checked against the archive's SHA256,
//! and reported as not pinned. `cargo xtask vm-test --update-kernels`
//! resolves the newest packages again and rewrites the lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// How a series' packages are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One `linux-image-<abi>[-unsigned]` package holding
    /// `boot/vmlinuz-<abi>`, `boot/config-<abi>` and `lib/modules/<abi>`
    /// (5.10 to 6.12).
    Image,
    /// `linux-binary-<abi>` (`usr/lib/modules/<abi>/vmlinuz`),
    /// `linux-modules-<abi>` (the modules) and `linux-base-<abi>` (`config`,
    /// `modules.builtin`, `System.map` in the same directory); there is no
    /// `boot/` (7.x).
    Split,
}

/// A Debian kernel series that `--kernel` names.
#[derive(Debug, PartialEq, Eq)]
pub struct Series {
    pub label: &'static str,
    /// The archive suites the series is fetched from; nothing else is in
    /// its private sources list.
    pub suites: &'static [&'static str],
    pub layout: Layout,
    /// The main package's name: `prefix`, then only digits and dots, an
    /// optional `+debNN`, then `flavour`.
    pub prefix: &'static str,
    pub flavour: &'static str,
    /// In the default matrix (and so in the lock).
    pub default: bool,
}

/// Every Debian series `--kernel` knows, oldest first.
///
/// bullseye-security is left out on purpose: its index lists newer 5.10
/// ABIs (-45, -46) whose files the archive answers with 404.
pub const SERIES: &[Series] = &[
    Series {
        label: "debian-5.10",
        suites: &["bullseye"],
        layout: Layout::Image,
        prefix: "linux-image-5.10.0-",
        flavour: "-cloud-amd64-unsigned",
        default: true,
    },
    Series {
        label: "debian-6.1",
        suites: &["bookworm", "bookworm-security"],
        layout: Layout::Image,
        prefix: "linux-image-6.1.0-",
        flavour: "-cloud-amd64-unsigned",
        default: true,
    },
    Series {
        label: "debian-6.12",
        suites: &["trixie", "trixie-security"],
        layout: Layout::Image,
        prefix: "linux-image-6.12.",
        flavour: "-amd64-unsigned",
        default: true,
    },
    Series {
        label: "debian-7.2",
        suites: &["sid"],
        layout: Layout::Split,
        prefix: "linux-binary-7.2",
        flavour: "-cloud-amd64",
        default: true,
    },
    Series {
        label: "debian-7.3",
        suites: &["experimental"],
        layout: Layout::Split,
        prefix: "linux-binary-7.3",
        flavour: "-cloud-amd64",
        default: false,
    },
];

/// A `--kernel` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    /// A Debian series, pinned by the lock or resolved to its newest package.
    Debian(&'static Series),
    /// A kernel image, with an optional directory of its modules.
    Image {
        label: String,
        image: PathBuf,
        modules: Option<PathBuf>,
    },
    /// The running kernel, probed directly.
    Host,
}

fn known_labels() -> String {
    SERIES
        .iter()
        .map(|s| s.label)
        .collect::<Vec<_>>()
        .join(", ")
}

impl KernelSpec {
    /// The default matrix.
    pub fn defaults() -> Vec<KernelSpec> {
        SERIES
            .iter()
            .filter(|s| s.default)
            .map(KernelSpec::Debian)
            .collect()
    }

    /// Parses a series label (`debian-6.12`), `host` or `PATH[:MODULES]`.
    pub fn parse(text: &str) -> Result<KernelSpec, String> {
        if let Some(series) = SERIES.iter().find(|s| s.label == text) {
            return Ok(KernelSpec::Debian(series));
        }
        if text == "host" {
            return Ok(KernelSpec::Host);
        }
        let (image, modules) = match text.split_once(':') {
            Some((i, m)) => (PathBuf::from(i), Some(PathBuf::from(m))),
            None => (PathBuf::from(text), None),
        };
        if !image.is_file() {
            if text.starts_with("debian-") {
                return Err(format!(
                    "unknown Debian kernel {text:?}: the known series are {}",
                    known_labels()
                ));
            }
            return Err(format!(
                "unknown kernel {text:?}: expected {}, host, or the path of a bzImage (optionally PATH:MODULES_DIR)",
                known_labels()
            ));
        }
        if let Some(m) = modules.as_ref().filter(|m| !m.is_dir()) {
            return Err(format!(
                "kernel modules directory {} does not exist",
                m.display()
            ));
        }
        let label = image
            .file_name()
            .map_or("image".into(), |n| n.to_string_lossy().into_owned());
        Ok(KernelSpec::Image {
            label,
            image,
            modules,
        })
    }

    pub fn label(&self) -> String {
        match self {
            KernelSpec::Debian(series) => series.label.into(),
            KernelSpec::Image { label, .. } => label.clone(),
            KernelSpec::Host => "host".into(),
        }
    }
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub label: String,
    /// The packages as `name=version`, or the image path.
    pub source: String,
    pub image: PathBuf,
    /// `lib/modules/<release>`, when there are modules.
    pub modules: Option<PathBuf>,
    /// The kernel's config, when known.
    pub config: Option<PathBuf>,
    /// A Debian kernel the lock does not pin: the newest package was booted.
    pub unpinned: bool,
}

// ---------------------------------------------------------------------------
// The lock file.

/// Where the lock lives, relative to the workspace root.
pub const LOCK_PATH: &str = "ci/kernels.lock";

/// `ci/kernels.lock`: for each series, the exact packages to boot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    #[serde(default)]
    pub about: String,
    /// By series label.
    pub kernels: BTreeMap<String, Pinned>,
}

/// One series' packages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    /// The suites it was resolved from (for a reader; fetching uses the series').
    pub suites: Vec<String>,
    /// What `uname -r` says in the guest.
    pub release: String,
    pub packages: Vec<Package>,
}

/// One `.deb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

impl Package {
    fn spec(&self) -> String {
        format!("{}={}", self.name, self.version)
    }
}

const ABOUT: &str = "Written by `cargo xtask vm-test --update-kernels`. `cargo xtask vm-test` downloads exactly these packages and refuses a .deb whose SHA256 differs.";

impl Lock {
    pub fn parse(text: &str) -> Result<Lock, String> {
        serde_json::from_str(text).map_err(|e| format!("{LOCK_PATH} is not a kernel lock: {e}"))
    }

    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("locks serialize");
        text.push('\n');
        text
    }

    /// The lock at `path`; an empty one when there is no file.
    pub fn read(path: &Path) -> Result<Lock, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lock::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lock::default()),
            Err(e) => Err(format!("read {}: {e}", path.display())),
        }
    }

    /// Sets `label`'s packages; returns a line saying what changed.
    pub fn set(&mut self, label: &str, pinned: Pinned) -> String {
        self.about = ABOUT.into();
        let now = describe(&pinned.packages);
        let line = match self.kernels.get(label) {
            None => format!("{label}: added {now}"),
            Some(old) if old.packages == pinned.packages => format!("{label}: unchanged, {now}"),
            Some(old) => format!("{label}: {} -> {now}", describe(&old.packages)),
        };
        self.kernels.insert(label.into(), pinned);
        line
    }
}

fn describe(packages: &[Package]) -> String {
    packages
        .iter()
        .map(Package::spec)
        .collect::<Vec<_>>()
        .join(", ")
}

fn lock_path() -> PathBuf {
    crate::workspace_root().join(LOCK_PATH)
}

/// What a series boots: the lock's packages, or the newest.
#[derive(Debug, PartialEq, Eq)]
pub enum Choice {
    Locked(Pinned),
    Newest,
}

pub fn choose(series: &Series, lock: &Lock) -> Choice {
    match lock.kernels.get(series.label) {
        Some(pinned) => Choice::Locked(pinned.clone()),
        None => Choice::Newest,
    }
}

/// The refusal of a `.deb` whose hash is not the expected one: one line.
pub fn mismatch(package: &Package, actual: &str, expected_from: &str) -> String {
    format!(
        "refusing {}: its SHA256 is {actual}, {expected_from} expects {}",
        package.spec(),
        package.sha256
    )
}

// ---------------------------------------------------------------------------
// Preparing a kernel.

/// Resolves (from the lock, or the newest), downloads (or reuses) and
/// unpacks a kernel.
pub fn prepare(spec: &KernelSpec) -> Result<Kernel, String> {
    match spec {
        KernelSpec::Debian(series) => prepare_debian(series, &Lock::read(&lock_path())?),
        KernelSpec::Image {
            label,
            image,
            modules,
        } => Ok(Kernel {
            label: label.clone(),
            source: image.display().to_string(),
            image: image.clone(),
            modules: modules.clone(),
            config: image.parent().and_then(|dir| find_one(dir, "config").ok()),
            unpinned: false,
        }),
        KernelSpec::Host => Err("the host kernel is probed directly, not booted".into()),
    }
}

fn prepare_debian(series: &'static Series, lock: &Lock) -> Result<Kernel, String> {
    let apt = Apt::new(series)?;
    let (pinned, unpinned) = match choose(series, lock) {
        Choice::Locked(pinned) => (pinned, false),
        Choice::Newest => {
            apt.update()?;
            let pinned = apt.newest()?;
            eprintln!(
                "xtask: {} is not pinned in {LOCK_PATH}; using the newest in {}: {}",
                series.label,
                series.suites.join(", "),
                describe(&pinned.packages)
            );
            (pinned, true)
        }
    };
    let expected_from = if unpinned {
        "the archive's index"
    } else {
        LOCK_PATH
    };
    let mut debs = Vec::new();
    for package in &pinned.packages {
        debs.push(apt.fetch(package, expected_from)?);
    }
    let root = unpack(series.label, &pinned.packages, &debs)?;
    let found = Found::from_listing(&listing(&root))?;
    if found.release != pinned.release {
        eprintln!(
            "xtask: {}: the packages hold release {}, where {LOCK_PATH} says {}",
            series.label, found.release, pinned.release
        );
    }
    if let Some(modules) = &found.modules {
        if !found.builtin {
            eprintln!(
                "xtask: {}: no modules.builtin in {modules}: built-in modules will be reported as missing",
                series.label
            );
        }
    }
    let mut source = describe(&pinned.packages);
    if unpinned {
        source.push_str(&format!(
            " (newest in {}; not pinned in {LOCK_PATH})",
            series.suites.join(", ")
        ));
    }
    eprintln!("xtask: {}: {source}", series.label);
    Ok(Kernel {
        label: series.label.into(),
        source,
        image: root.join(&found.image),
        modules: found.modules.map(|m| root.join(m)),
        config: found.config.map(|c| root.join(c)),
        unpinned,
    })
}

/// The packages [`prepare`] boots for `series` (the lock's, or the newest
/// in its suites when the lock does not name it), and whether they are
/// unpinned.
pub fn resolve(series: &'static Series) -> Result<(Pinned, bool), String> {
    match choose(series, &Lock::read(&lock_path())?) {
        Choice::Locked(pinned) => Ok((pinned, false)),
        Choice::Newest => {
            let apt = Apt::new(series)?;
            apt.update()?;
            Ok((apt.newest()?, true))
        }
    }
}

/// Another package of `series`' suites at exactly `version` (such as the
/// kernel's `linux-source-X`), fetched through the series' private apt
/// configuration into the same cache, and refused unless its SHA256 is the
/// one the archive's index gives.
pub fn fetch_exact(
    series: &'static Series,
    name: &str,
    version: &str,
) -> Result<(Package, PathBuf), String> {
    let apt = Apt::new(series)?;
    if !apt.has_lists() {
        apt.update()?;
    }
    let record = apt.show(name, Some(version)).or_else(|_| {
        // The lists may be older than the kernel's version.
        apt.update()?;
        apt.show(name, Some(version))
    })?;
    let package = Package {
        name: name.into(),
        version: record.version,
        sha256: record.sha256,
    };
    let deb = apt.fetch(&package, "the archive's index")?;
    Ok((package, deb))
}

/// Resolves the newest packages of each series and rewrites the lock,
/// printing what changed. `labels` are `--kernel` arguments; none means the
/// default matrix and every series the lock already holds. Each new package
/// is downloaded and checked, so a lock that is written can be fetched.
pub fn update_lock(labels: &[String]) -> Result<(), String> {
    let path = lock_path();
    let mut lock = Lock::read(&path)?;
    let mut series: Vec<&'static Series> = Vec::new();
    if labels.is_empty() {
        for s in SERIES {
            if s.default || lock.kernels.contains_key(s.label) {
                series.push(s);
            }
        }
    } else {
        for label in labels {
            match KernelSpec::parse(label)? {
                KernelSpec::Debian(s) => series.push(s),
                other => {
                    return Err(format!(
                        "--update-kernels pins Debian series only, not {:?}",
                        other.label()
                    ))
                }
            }
        }
    }
    let mut lines = Vec::new();
    for s in series {
        let apt = Apt::new(s)?;
        apt.update()?;
        let pinned = apt.newest()?;
        for package in &pinned.packages {
            apt.fetch(package, "the archive's index")?;
        }
        lines.push(lock.set(s.label, pinned));
    }
    std::fs::write(&path, lock.to_text()).map_err(|e| format!("write {}: {e}", path.display()))?;
    for line in &lines {
        println!("{line}");
    }
    println!("wrote {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------
// The private apt configuration.

fn cache() -> PathBuf {
    crate::target_dir().join("vm").join("kernels")
}

/// apt, configured for one series under `target/vm/apt/<label>/`.
struct Apt {
    series: &'static Series,
    dir: PathBuf,
}

const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

impl Apt {
    fn new(series: &'static Series) -> Result<Apt, String> {
        let dir = crate::target_dir()
            .join("vm")
            .join("apt")
            .join(series.label);
        for sub in [
            "lists/partial",
            "cache/archives/partial",
            "etc/sources.list.d",
            "etc/preferences.d",
        ] {
            let d = dir.join(sub);
            std::fs::create_dir_all(&d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        let status = dir.join("status");
        if !status.exists() {
            std::fs::write(&status, "").map_err(|e| format!("write {}: {e}", status.display()))?;
        }
        if !Path::new(KEYRING).exists() {
            crate::prereq::ensure_package("debian-archive-keyring", KEYRING)?;
        }
        let mirrors = Mirrors::of_this_machine()?;
        let sources = dir.join("etc/sources.list.d/kernels.sources");
        let text = sources_text(series, &mirrors)?;
        if std::fs::read_to_string(&sources).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&sources, text)
                .map_err(|e| format!("write {}: {e}", sources.display()))?;
        }
        Ok(Apt { series, dir })
    }

    /// An apt command that sees only this series' sources, lists and cache.
    fn command(&self, program: &str) -> Command {
        let d = |p: &str| self.dir.join(p).display().to_string();
        let mut cmd = Command::new(program);
        for (key, value) in [
            ("Dir::Etc::SourceList", "/dev/null".to_owned()),
            ("Dir::Etc::SourceParts", d("etc/sources.list.d")),
            ("Dir::Etc::Preferences", "/dev/null".to_owned()),
            ("Dir::Etc::PreferencesParts", d("etc/preferences.d")),
            ("Dir::State::Lists", d("lists")),
            ("Dir::State::status", d("status")),
            ("Dir::Cache", d("cache")),
            ("APT::Architectures", "amd64".to_owned()),
            ("Acquire::Languages", "none".to_owned()),
            // The download lands in a root-owned directory of the target dir.
            ("APT::Sandbox::User", "root".to_owned()),
        ] {
            cmd.arg("-o").arg(format!("{key}={value}"));
        }
        cmd.env("LC_ALL", "C");
        cmd
    }

    fn run(&self, program: &str, args: &[&str], dir: Option<&Path>) -> Result<String, String> {
        let mut cmd = self.command(program);
        cmd.args(args);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        let out = cmd.output().map_err(|e| format!("run {program}: {e}"))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why: Vec<&str> = stderr
                .lines()
                .filter(|l| l.starts_with("E:") || l.starts_with("Err:") || l.contains("404"))
                .collect();
            return Err(format!(
                "`{program} {}` failed ({}): {}",
                args.join(" "),
                out.status,
                if why.is_empty() {
                    stderr.trim().to_owned()
                } else {
                    why.join(" / ")
                }
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn has_lists(&self) -> bool {
        std::fs::read_dir(self.dir.join("lists")).is_ok_and(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().contains("_Packages"))
        })
    }

    fn update(&self) -> Result<(), String> {
        eprintln!(
            "xtask: {}: updating the package lists of {}",
            self.series.label,
            self.series.suites.join(", ")
        );
        self.run("apt-get", &["update", "-q"], None).map(|_| ())
    }

    /// The archive's record of `name` (its candidate, or `version`).
    fn show(&self, name: &str, version: Option<&str>) -> Result<Record, String> {
        let spec = match version {
            Some(v) => format!("{name}={v}"),
            None => name.to_owned(),
        };
        let text = self.run("apt-cache", &["show", "--no-all-versions", &spec], None)?;
        Record::parse(&text)
            .ok_or_else(|| format!("apt-cache show {spec} lists no Version and SHA256"))
    }

    /// The newest main package of the series, with its companions.
    fn newest(&self) -> Result<Pinned, String> {
        let s = self.series;
        let pattern = format!("^{}", s.prefix.replace('.', "\\."));
        let out = self.run("apt-cache", &["search", "--names-only", &pattern], None)?;
        let names = out.lines().filter_map(|l| l.split(" - ").next());
        let name = newest_name(names, s.prefix, s.flavour).ok_or_else(|| {
            format!(
                "no package in {} is named {}…{}",
                s.suites.join(", "),
                s.prefix,
                s.flavour
            )
        })?;
        let main = self.show(&name, None)?;
        let (release, names) = companions(s.layout, &name);
        let mut packages = Vec::new();
        for n in names {
            let record = if n == name {
                main.clone()
            } else {
                self.show(&n, Some(&main.version))?
            };
            packages.push(Package {
                name: n,
                version: record.version,
                sha256: record.sha256,
            });
        }
        Ok(Pinned {
            suites: s.suites.iter().map(|s| s.to_string()).collect(),
            release,
            packages,
        })
    }

    /// The package's `.deb` in the cache, downloaded unless a copy with the
    /// expected hash is already there; refused when its hash differs.
    fn fetch(&self, package: &Package, expected_from: &str) -> Result<PathBuf, String> {
        let dir = cache().join("debs");
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let deb = dir.join(format!(
            "{}_{}_amd64.deb",
            package.name,
            package.version.replace(':', "%3a")
        ));
        if deb.is_file() {
            if crate::sha256_of(&deb)? == package.sha256 {
                return Ok(deb);
            }
            eprintln!(
                "xtask: {} in the cache does not have the expected SHA256; downloading it again",
                deb.display()
            );
            let _ = std::fs::remove_file(&deb);
        }
        if !self.has_lists() {
            self.update()?;
        }
        let partial = dir.join(format!(".partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&partial);
        std::fs::create_dir_all(&partial)
            .map_err(|e| format!("create {}: {e}", partial.display()))?;
        eprintln!("xtask: downloading {}", package.spec());
        let spec = package.spec();
        let download = || self.run("apt-get", &["download", "-q", &spec], Some(&partial));
        let result = download().or_else(|_| {
            // The lists may be older than the lock: fetch them once more.
            self.update()?;
            download().map_err(|e| {
                let gone = if e.contains("was not found") {
                    format!(
                        "; {spec} is no longer in {}: `cargo xtask vm-test --update-kernels` pins the newest",
                        self.series.suites.join(", ")
                    )
                } else {
                    String::new()
                };
                format!("{e}{gone}")
            })
        });
        let got = result.and_then(|_| {
            std::fs::read_dir(&partial)
                .map_err(|e| format!("read {}: {e}", partial.display()))?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .find(|p| p.extension().is_some_and(|x| x == "deb"))
                .ok_or_else(|| format!("`apt-get download {spec}` left no .deb"))
        });
        let got = match got {
            Ok(got) => got,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                return Err(e);
            }
        };
        let actual = crate::sha256_of(&got)?;
        if actual != package.sha256 {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(mismatch(package, &actual, expected_from));
        }
        std::fs::rename(&got, &deb).map_err(|e| format!("move {}: {e}", got.display()))?;
        let _ = std::fs::remove_dir_all(&partial);
        Ok(deb)
    }
}

/// The parts of an `apt-cache show` record the lock needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    version: String,
    sha256: String,
}

impl Record {
    /// The first record of `apt-cache show` output.
    fn parse(text: &str) -> Option<Record> {
        let record = text.split("\n\n").next()?;
        let field = |key: &str| {
            record
                .lines()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_owned()))
        };
        Some(Record {
            version: field("Version:")?,
            sha256: field("SHA256:")?,
        })
    }
}

/// The numbers of a main package's name if it is `prefix`, then digits and
/// dots, an optional `+debNN`, then exactly `flavour` (so `-amd64-unsigned`
/// does not take `-cloud-amd64-unsigned` or `-rt-amd64-unsigned`).
fn name_numbers(name: &str, prefix: &str, flavour: &str) -> Option<Vec<u64>> {
    let middle = name.strip_prefix(prefix)?.strip_suffix(flavour)?;
    let (numbers, deb) = match middle.split_once("+deb") {
        Some((n, d)) => (n, Some(d)),
        None => (middle, None),
    };
    if !numbers.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    if let Some(deb) = deb {
        if deb.is_empty() || !deb.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    // `linux-binary-7.2` must not take 7.20: after the prefix, a dot or nothing.
    if prefix.ends_with(|c: char| c.is_ascii_digit())
        && !numbers.is_empty()
        && !numbers.starts_with('.')
    {
        return None;
    }
    Some(numbers.split('.').filter_map(|n| n.parse().ok()).collect())
}

/// The newest of `names` that matches, by the numbers in its name (a
/// release candidate, with none, is older than any release).
fn newest_name<'a>(
    names: impl Iterator<Item = &'a str>,
    prefix: &str,
    flavour: &str,
) -> Option<String> {
    names
        .filter_map(|n| Some((name_numbers(n, prefix, flavour)?, n)))
        .max()
        .map(|(_, n)| n.to_owned())
}

/// The release (`uname -r`) and every package of a series whose main
/// package is `name`.
fn companions(layout: Layout, name: &str) -> (String, Vec<String>) {
    match layout {
        Layout::Image => {
            let abi = name.trim_start_matches("linux-image-");
            let release = abi.strip_suffix("-unsigned").unwrap_or(abi);
            (release.to_owned(), vec![name.to_owned()])
        }
        Layout::Split => {
            let abi = name.trim_start_matches("linux-binary-");
            (
                abi.to_owned(),
                vec![
                    name.to_owned(),
                    format!("linux-modules-{abi}"),
                    format!("linux-base-{abi}"),
                ],
            )
        }
    }
}

/// The URIs of Debian's archive and of its security archive, as this
/// machine's apt sources name them.
#[derive(Debug, PartialEq, Eq)]
struct Mirrors {
    main: Option<String>,
    security: Option<String>,
}

impl Mirrors {
    fn of_this_machine() -> Result<Mirrors, String> {
        let mut texts = Vec::new();
        if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
            texts.push((false, text));
        }
        if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
            let mut paths: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
            paths.sort();
            for path in paths {
                let deb822 = path.extension().is_some_and(|e| e == "sources");
                let one_line = path.extension().is_some_and(|e| e == "list");
                if deb822 || one_line {
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        texts.push((deb822, text));
                    }
                }
            }
        }
        let mirrors = Mirrors::from_sources(&texts);
        if mirrors.main.is_none() {
            return Err("this machine's apt sources name no Debian archive (a `deb` source with a suite such as bookworm); the kernels are fetched from the same archive".into());
        }
        Ok(mirrors)
    }

    /// From apt sources, each `(is deb822, text)`.
    fn from_sources(texts: &[(bool, String)]) -> Mirrors {
        // (uri, suites) of every `deb` entry.
        let mut entries: Vec<(String, Vec<String>)> = Vec::new();
        for (deb822, text) in texts {
            if *deb822 {
                for stanza in text.split("\n\n") {
                    let fields: BTreeMap<String, String> = stanza
                        .lines()
                        .filter(|l| !l.trim_start().starts_with('#'))
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                        .collect();
                    let is = |k: &str, v: &str| {
                        fields
                            .get(k)
                            .is_some_and(|f| f.split_whitespace().any(|w| w == v))
                    };
                    if !is("types", "deb") || fields.get("enabled").is_some_and(|e| e == "no") {
                        continue;
                    }
                    let suites: Vec<String> = fields
                        .get("suites")
                        .map(|s| s.split_whitespace().map(str::to_owned).collect())
                        .unwrap_or_default();
                    for uri in fields
                        .get("uris")
                        .map(|u| u.split_whitespace())
                        .into_iter()
                        .flatten()
                    {
                        entries.push((uri.to_owned(), suites.clone()));
                    }
                }
            } else {
                for line in text.lines() {
                    let mut words = line.split_whitespace();
                    if words.next() != Some("deb") {
                        continue;
                    }
                    let mut rest: Vec<&str> = words.collect();
                    if rest.first().is_some_and(|w| w.starts_with('[')) {
                        let end = rest.iter().position(|w| w.ends_with(']')).unwrap_or(0);
                        rest.drain(..=end);
                    }
                    if let [uri, suite, ..] = rest.as_slice() {
                        entries.push((uri.to_string(), vec![suite.to_string()]));
                    }
                }
            }
        }
        let debian = |suite: &str| {
            let base = suite.split('-').next().unwrap_or(suite);
            [
                "buster",
                "bullseye",
                "bookworm",
                "trixie",
                "forky",
                "duke",
                "sid",
                "experimental",
                "oldstable",
                "stable",
                "testing",
                "unstable",
            ]
            .contains(&base)
        };
        let find = |security: bool| {
            entries
                .iter()
                .find(|(_, suites)| {
                    suites
                        .iter()
                        .any(|s| debian(s) && s.ends_with("-security") == security)
                })
                .map(|(uri, _)| uri.trim_end_matches('/').to_owned())
        };
        Mirrors {
            main: find(false),
            security: find(true),
        }
    }
}

/// The private sources list of a series (deb822): only its suites, only
/// the package index.
fn sources_text(series: &Series, mirrors: &Mirrors) -> Result<String, String> {
    let mut text =
        String::from("# Written by cargo xtask vm-test: the suites of one kernel series.\n");
    for security in [false, true] {
        let suites: Vec<&str> = series
            .suites
            .iter()
            .copied()
            .filter(|s| s.ends_with("-security") == security)
            .collect();
        if suites.is_empty() {
            continue;
        }
        let uri = if security {
            mirrors.security.as_ref()
        } else {
            mirrors.main.as_ref()
        };
        let Some(uri) = uri else {
            eprintln!(
                "xtask: this machine's apt sources name no Debian security archive; {} is fetched without {}",
                series.label,
                suites.join(", ")
            );
            continue;
        };
        text.push_str(&format!(
            "\nTypes: deb\nURIs: {uri}\nSuites: {}\nComponents: main\nArchitectures: amd64\nTargets: Packages\nSigned-By: {KEYRING}\n",
            suites.join(" ")
        ));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------
// Unpacking and finding the files.

/// Unpacks the packages into one directory once (`dpkg-deb -x`); a marker
/// file records what was unpacked.
fn unpack(label: &str, packages: &[Package], debs: &[PathBuf]) -> Result<PathBuf, String> {
    let first = packages.first().ok_or("a kernel with no package")?;
    let root = cache().join(label).join(format!(
        "{}_{}",
        first.name,
        first.version.replace(':', "%3a")
    ));
    let done = root.join(".unpacked");
    let marker: String = packages
        .iter()
        .map(|p| format!("{} {} {}\n", p.name, p.version, p.sha256))
        .collect();
    if std::fs::read_to_string(&done).ok().as_deref() == Some(marker.as_str()) {
        return Ok(root);
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
    for deb in debs {
        let status = Command::new("dpkg-deb")
            .arg("-x")
            .arg(deb)
            .arg(&root)
            .status()
            .map_err(|e| format!("run dpkg-deb: {e}"))?;
        if !status.success() {
            return Err(format!("`dpkg-deb -x {}` failed ({status})", deb.display()));
        }
    }
    std::fs::write(&done, marker).map_err(|e| format!("write {}: {e}", done.display()))?;
    Ok(root)
}

/// The paths (relative, `/`-separated) that tell a layout apart: the files
/// in `boot/`, and each `{,usr/}lib/modules/<release>/` with the files
/// directly in it.
fn listing(root: &Path) -> Vec<String> {
    let entries = |dir: &str| -> Vec<(String, bool)> {
        let mut found: Vec<(String, bool)> = std::fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| {
                let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
                (format!("{dir}/{}", e.file_name().to_string_lossy()), is_dir)
            })
            .collect();
        found.sort();
        found
    };
    let mut paths = Vec::new();
    for (path, is_dir) in entries("boot") {
        if !is_dir {
            paths.push(path);
        }
    }
    for base in ["lib/modules", "usr/lib/modules"] {
        for (release, is_dir) in entries(base) {
            if !is_dir {
                continue;
            }
            paths.push(format!("{release}/"));
            for (path, is_dir) in entries(&release) {
                paths.push(if is_dir { format!("{path}/") } else { path });
            }
        }
    }
    paths
}

/// Where a kernel's files are, relative to the unpacked packages.
#[derive(Debug, PartialEq, Eq)]
pub struct Found {
    pub release: String,
    pub image: String,
    pub modules: Option<String>,
    pub config: Option<String>,
    /// The modules directory has `modules.builtin`.
    pub builtin: bool,
}

impl Found {
    /// Reads either layout from a listing (see [`listing`]): the image is
    /// `boot/vmlinuz-<release>` or `usr/lib/modules/<release>/vmlinuz`; the
    /// config `boot/config-<release>` or `<modules>/config`; the modules
    /// `lib/modules/<release>` or `usr/lib/modules/<release>`.
    pub fn from_listing(paths: &[String]) -> Result<Found, String> {
        let has = |p: &str| paths.iter().any(|q| q == p);
        let mut images: Vec<(String, String)> = Vec::new();
        for path in paths {
            if let Some(release) = path.strip_prefix("boot/vmlinuz-") {
                images.push((release.to_owned(), path.clone()));
            } else if let Some(release) = ["lib/modules/", "usr/lib/modules/"]
                .iter()
                .find_map(|b| path.strip_prefix(b)?.strip_suffix("/vmlinuz"))
            {
                if !release.contains('/') {
                    images.push((release.to_owned(), path.clone()));
                }
            }
        }
        let (release, image) = match images.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(
                    "the kernel packages hold no boot/vmlinuz-<release> nor usr/lib/modules/<release>/vmlinuz"
                        .into(),
                )
            }
            many => {
                return Err(format!(
                    "the kernel packages hold more than one image: {}",
                    many.iter().map(|(_, p)| p.as_str()).collect::<Vec<_>>().join(", ")
                ))
            }
        };
        let modules = ["usr/lib/modules", "lib/modules"]
            .iter()
            .map(|b| format!("{b}/{release}"))
            .find(|d| has(&format!("{d}/kernel/")));
        let config = [format!("boot/config-{release}")]
            .into_iter()
            .chain(
                ["usr/lib/modules", "lib/modules"]
                    .iter()
                    .map(|b| format!("{b}/{release}/config")),
            )
            .find(|c| has(c));
        let builtin = modules
            .as_ref()
            .is_some_and(|d| has(&format!("{d}/modules.builtin")));
        Ok(Found {
            release,
            image,
            modules,
            config,
            builtin,
        })
    }
}

fn find_one(dir: &Path, prefix: &str) -> Result<PathBuf, String> {
    std::fs::read_dir(dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .ok_or_else(|| format!("no {prefix}* in {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lock {
        let mut lock = Lock::default();
        lock.set(
            "debian-6.1",
            Pinned {
                suites: vec!["bookworm".into(), "bookworm-security".into()],
                release: "6.1.0-57-cloud-amd64".into(),
                packages: vec![Package {
                    name: "linux-image-6.1.0-57-cloud-amd64-unsigned".into(),
                    version: "6.1.192-3".into(),
                    sha256: "ab".repeat(32),
                }],
            },
        );
        lock.set(
            "debian-7.2",
            Pinned {
                suites: vec!["sid".into()],
                release: "7.2.13+deb14-cloud-amd64".into(),
                packages: ["binary", "modules", "base"]
                    .iter()
                    .map(|kind| Package {
                        name: format!("linux-{kind}-7.2.13+deb14-cloud-amd64"),
                        version: "7.2.13-1".into(),
                        sha256: "cd".repeat(32),
                    })
                    .collect(),
            },
        );
        lock
    }

    #[test]
    fn specs_parse_and_refuse_clearly() {
        assert_eq!(KernelSpec::parse("host").unwrap(), KernelSpec::Host);
        for label in [
            "debian-5.10",
            "debian-6.1",
            "debian-6.12",
            "debian-7.2",
            "debian-7.3",
        ] {
            assert_eq!(KernelSpec::parse(label).unwrap().label(), label);
        }
        let KernelSpec::Debian(series) = KernelSpec::parse("debian-7.3").unwrap() else {
            panic!("debian-7.3 is a Debian series");
        };
        assert_eq!(series.suites, ["experimental"]);
        assert_eq!(series.layout, Layout::Split);
        let err = KernelSpec::parse("debian-9").unwrap_err();
        assert_eq!(
            err,
            "unknown Debian kernel \"debian-9\": the known series are debian-5.10, debian-6.1, debian-6.12, debian-7.2, debian-7.3"
        );
        let err = KernelSpec::parse("/no/such/bzImage").unwrap_err();
        assert!(
            err.contains("\"/no/such/bzImage\"") && err.contains("debian-7.3, host, or the path"),
            "{err}"
        );
    }

    #[test]
    fn the_default_matrix_is_the_four_released_series() {
        let labels: Vec<String> = KernelSpec::defaults().iter().map(|k| k.label()).collect();
        assert_eq!(
            labels,
            ["debian-5.10", "debian-6.1", "debian-6.12", "debian-7.2"]
        );
    }

    /// The committed lock pins every series of the default matrix (it may
    /// pin more), and CI's sharded workflow runs exactly the default matrix.
    #[test]
    fn the_ci_files_agree_with_the_default_matrix() {
        let defaults: Vec<String> = KernelSpec::defaults().iter().map(|k| k.label()).collect();
        let lock = Lock::read(&crate::workspace_root().join(LOCK_PATH)).unwrap();
        for label in &defaults {
            assert!(
                lock.kernels.contains_key(label),
                "{LOCK_PATH} does not pin {label}"
            );
        }
        for (label, pinned) in &lock.kernels {
            assert!(!pinned.packages.is_empty(), "{label}");
            for package in &pinned.packages {
                assert!(
                    package.sha256.len() == 64
                        && package.sha256.chars().all(|c| c.is_ascii_hexdigit()),
                    "{label}: {package:?}"
                );
            }
        }
        let workflow =
            std::fs::read_to_string(crate::workspace_root().join("ci/vm-matrix.yml")).unwrap();
        let line = format!("kernel: [{}]", defaults.join(", "));
        assert!(workflow.contains(&line), "ci/vm-matrix.yml lacks `{line}`");
    }

    #[test]
    fn the_lock_round_trips() {
        let lock = sample();
        let text = lock.to_text();
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\"name\": \"linux-image-6.1.0-57-cloud-amd64-unsigned\""));
        assert_eq!(Lock::parse(&text).unwrap(), lock);
        assert_eq!(Lock::parse(&text).unwrap().to_text(), text);
        let err = Lock::parse("{\"kernels\": 3}").unwrap_err();
        assert!(
            err.starts_with("ci/kernels.lock is not a kernel lock"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_lock_pins_nothing() {
        let lock = Lock::read(Path::new("/nonexistent/kernels.lock")).unwrap();
        assert!(lock.kernels.is_empty());
    }

    #[test]
    fn the_locked_version_is_chosen_and_an_unlocked_series_is_resolved() {
        let lock = sample();
        let series = |label| SERIES.iter().find(|s| s.label == label).unwrap();
        match choose(series("debian-6.1"), &lock) {
            Choice::Locked(pinned) => {
                assert_eq!(pinned.packages.len(), 1);
                assert_eq!(pinned.packages[0].version, "6.1.192-3");
                assert_eq!(
                    pinned.packages[0].spec(),
                    "linux-image-6.1.0-57-cloud-amd64-unsigned=6.1.192-3"
                );
            }
            Choice::Newest => panic!("debian-6.1 is locked"),
        }
        assert_eq!(choose(series("debian-7.3"), &lock), Choice::Newest);
    }

    #[test]
    fn an_update_says_what_changed() {
        let mut lock = sample();
        let mut newer = lock.kernels["debian-6.1"].clone();
        newer.packages[0].name = "linux-image-6.1.0-58-cloud-amd64-unsigned".into();
        newer.packages[0].version = "6.1.195-1".into();
        assert_eq!(
            lock.set("debian-6.1", newer.clone()),
            "debian-6.1: linux-image-6.1.0-57-cloud-amd64-unsigned=6.1.192-3 -> linux-image-6.1.0-58-cloud-amd64-unsigned=6.1.195-1"
        );
        assert_eq!(
            lock.set("debian-6.1", newer),
            "debian-6.1: unchanged, linux-image-6.1.0-58-cloud-amd64-unsigned=6.1.195-1"
        );
        let added = lock.set("debian-7.3", lock.kernels["debian-7.2"].clone());
        assert!(
            added.starts_with("debian-7.3: added linux-binary-"),
            "{added}"
        );
    }

    #[test]
    fn a_hash_mismatch_is_refused_in_one_line() {
        let lock = sample();
        let package = &lock.kernels["debian-6.1"].packages[0];
        let actual = "0".repeat(64);
        let line = mismatch(package, &actual, LOCK_PATH);
        assert_eq!(
            line,
            format!(
                "refusing linux-image-6.1.0-57-cloud-amd64-unsigned=6.1.192-3: its SHA256 is {actual}, ci/kernels.lock expects {}",
                "ab".repeat(32)
            )
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn the_newest_name_of_a_series_is_chosen_by_its_numbers() {
        let names = [
            "linux-image-6.12.117+deb13-cloud-amd64-unsigned",
            "linux-image-6.12.118+deb13-amd64-unsigned",
            "linux-image-6.12.117+deb13-amd64-unsigned",
            "linux-image-6.12.118+deb13-rt-amd64-unsigned",
            "linux-image-6.12.118+deb13-amd64-unsigned-dbg",
        ];
        assert_eq!(
            newest_name(names.into_iter(), "linux-image-6.12.", "-amd64-unsigned").unwrap(),
            "linux-image-6.12.118+deb13-amd64-unsigned"
        );
        let names = [
            "linux-image-5.10.0-9-cloud-amd64-unsigned",
            "linux-image-5.10.0-32-cloud-amd64-unsigned",
            "linux-image-5.10.0-30-cloud-amd64-unsigned",
        ];
        assert_eq!(
            newest_name(
                names.into_iter(),
                "linux-image-5.10.0-",
                "-cloud-amd64-unsigned"
            )
            .unwrap(),
            "linux-image-5.10.0-32-cloud-amd64-unsigned"
        );
        // A release candidate has no numbers after the series; a release does.
        let names = [
            "linux-binary-7.3-cloud-amd64",
            "linux-binary-unsigned-7.3-cloud-amd64",
            "linux-binary-7.30.1+deb14-cloud-amd64",
        ];
        assert_eq!(
            newest_name(names.into_iter(), "linux-binary-7.3", "-cloud-amd64").unwrap(),
            "linux-binary-7.3-cloud-amd64"
        );
        let names = [
            "linux-binary-7.3-cloud-amd64",
            "linux-binary-7.3.1+deb14-cloud-amd64",
        ];
        assert_eq!(
            newest_name(names.into_iter(), "linux-binary-7.3", "-cloud-amd64").unwrap(),
            "linux-binary-7.3.1+deb14-cloud-amd64"
        );
    }

    #[test]
    fn a_split_series_brings_its_modules_and_base() {
        assert_eq!(
            companions(Layout::Split, "linux-binary-7.2.13+deb14-cloud-amd64"),
            (
                "7.2.13+deb14-cloud-amd64".to_owned(),
                vec![
                    "linux-binary-7.2.13+deb14-cloud-amd64".to_owned(),
                    "linux-modules-7.2.13+deb14-cloud-amd64".to_owned(),
                    "linux-base-7.2.13+deb14-cloud-amd64".to_owned(),
                ]
            )
        );
        assert_eq!(
            companions(Layout::Image, "linux-image-5.10.0-32-cloud-amd64-unsigned"),
            (
                "5.10.0-32-cloud-amd64".to_owned(),
                vec!["linux-image-5.10.0-32-cloud-amd64-unsigned".to_owned()]
            )
        );
    }

    #[test]
    fn apt_records_give_version_and_hash() {
        let text = "Package: linux-config-7.2\nSource: linux\nVersion: 7.2.13-1\nSize: 511744\nSHA256: efd7\nDescription: x\n\nPackage: other\nVersion: 1\nSHA256: 00\n";
        assert_eq!(
            Record::parse(text).unwrap(),
            Record {
                version: "7.2.13-1".into(),
                sha256: "efd7".into()
            }
        );
        assert_eq!(Record::parse("Package: x\n"), None);
    }

    /// `listing` of `linux-image-5.10.0-32-cloud-amd64-unsigned`, abridged.
    const IMAGE_LAYOUT: &[&str] = &[
        "boot/System.map-5.10.0-32-cloud-amd64",
        "boot/config-5.10.0-32-cloud-amd64",
        "boot/vmlinuz-5.10.0-32-cloud-amd64",
        "lib/modules/5.10.0-32-cloud-amd64/",
        "lib/modules/5.10.0-32-cloud-amd64/kernel/",
        "lib/modules/5.10.0-32-cloud-amd64/modules.builtin",
        "lib/modules/5.10.0-32-cloud-amd64/modules.order",
    ];

    /// `listing` of linux-binary, linux-modules and linux-base 7.2.13+deb14-cloud-amd64.
    const SPLIT_LAYOUT: &[&str] = &[
        "usr/lib/modules/7.2.13+deb14-cloud-amd64/",
        "usr/lib/modules/7.2.13+deb14-cloud-amd64/System.map",
        "usr/lib/modules/7.2.13+deb14-cloud-amd64/config",
        "usr/lib/modules/7.2.13+deb14-cloud-amd64/kernel/",
        "usr/lib/modules/7.2.13+deb14-cloud-amd64/modules.builtin",
        "usr/lib/modules/7.2.13+deb14-cloud-amd64/modules.builtin.modinfo",
        "usr/lib/modules/7.2.13+deb14-cloud-amd64/modules.order",
        "usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz",
    ];

    fn owned(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn both_package_layouts_are_found() {
        assert_eq!(
            Found::from_listing(&owned(IMAGE_LAYOUT)).unwrap(),
            Found {
                release: "5.10.0-32-cloud-amd64".into(),
                image: "boot/vmlinuz-5.10.0-32-cloud-amd64".into(),
                modules: Some("lib/modules/5.10.0-32-cloud-amd64".into()),
                config: Some("boot/config-5.10.0-32-cloud-amd64".into()),
                builtin: true,
            }
        );
        assert_eq!(
            Found::from_listing(&owned(SPLIT_LAYOUT)).unwrap(),
            Found {
                release: "7.2.13+deb14-cloud-amd64".into(),
                image: "usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz".into(),
                modules: Some("usr/lib/modules/7.2.13+deb14-cloud-amd64".into()),
                config: Some("usr/lib/modules/7.2.13+deb14-cloud-amd64/config".into()),
                builtin: true,
            }
        );
        // trixie's 6.12: the image and config in boot/, the modules under usr/.
        let trixie = owned(&[
            "boot/config-6.12.118+deb13-amd64",
            "boot/vmlinuz-6.12.118+deb13-amd64",
            "usr/lib/modules/6.12.118+deb13-amd64/",
            "usr/lib/modules/6.12.118+deb13-amd64/kernel/",
            "usr/lib/modules/6.12.118+deb13-amd64/modules.builtin",
        ]);
        let found = Found::from_listing(&trixie).unwrap();
        assert_eq!(found.image, "boot/vmlinuz-6.12.118+deb13-amd64");
        assert_eq!(
            found.modules.as_deref(),
            Some("usr/lib/modules/6.12.118+deb13-amd64")
        );
        assert_eq!(
            found.config.as_deref(),
            Some("boot/config-6.12.118+deb13-amd64")
        );
        // Without linux-base: no config and no modules.builtin, still bootable.
        let bare: Vec<String> = owned(SPLIT_LAYOUT)
            .into_iter()
            .filter(|p| p.ends_with('/') || p.ends_with("vmlinuz"))
            .collect();
        let found = Found::from_listing(&bare).unwrap();
        assert_eq!((found.config, found.builtin), (None, false));
        assert!(Found::from_listing(&owned(&["usr/share/doc/x"]))
            .unwrap_err()
            .contains("no boot/vmlinuz-<release>"));
    }

    #[test]
    fn the_listing_of_an_unpacked_tree_feeds_the_layout() {
        let root = std::env::temp_dir().join(format!("xtask-kernel-{}", std::process::id()));
        let rel = root.join("usr/lib/modules/7.3-cloud-amd64");
        std::fs::create_dir_all(rel.join("kernel/fs")).unwrap();
        for file in ["vmlinuz", "config", "modules.builtin"] {
            std::fs::write(rel.join(file), b"x").unwrap();
        }
        std::fs::write(rel.join("kernel/fs/overlay.ko.xz"), b"x").unwrap();
        let found = Found::from_listing(&listing(&root)).unwrap();
        assert_eq!(found.release, "7.3-cloud-amd64");
        assert_eq!(
            found.modules.as_deref(),
            Some("usr/lib/modules/7.3-cloud-amd64")
        );
        assert!(found.builtin && found.config.is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_mirrors_come_from_this_machines_sources() {
        let deb822 = "Types: deb\n# http://snapshot.example/archive/debian/2025\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security/\nSuites: bookworm-security\nComponents: main\n";
        let other = "deb [signed-by=/x.gpg] https://packages.example/node nodistro main\n";
        let mirrors = Mirrors::from_sources(&[(false, other.into()), (true, deb822.into())]);
        assert_eq!(
            mirrors,
            Mirrors {
                main: Some("http://mirror.example/debian".into()),
                security: Some("http://mirror.example/debian-security".into()),
            }
        );
        let one_line = "deb http://m.example/debian bullseye main\n# deb http://x/debian-security bullseye-security main\n";
        let mirrors = Mirrors::from_sources(&[(false, one_line.into())]);
        assert_eq!(mirrors.main.as_deref(), Some("http://m.example/debian"));
        assert_eq!(mirrors.security, None);
        let text = sources_text(
            SERIES.iter().find(|s| s.label == "debian-6.12").unwrap(),
            &Mirrors {
                main: Some("http://m/debian".into()),
                security: Some("http://m/debian-security".into()),
            },
        )
        .unwrap();
        assert!(
            text.contains("URIs: http://m/debian\nSuites: trixie\n"),
            "{text}"
        );
        assert!(
            text.contains("URIs: http://m/debian-security\nSuites: trixie-security\n"),
            "{text}"
        );
    }
}
