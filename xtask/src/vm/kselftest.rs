//! The kernel's own selftests (`tools/testing/selftests/<suite>`), built
//! for a guest from the guest kernel's own source.
//!
//! They are GPL-2.0: nothing of them is committed. At test time the
//! kernel's `linux-source-X` package is fetched at exactly the kernel's
//! version, through the same private apt configuration as the kernel
//! ([`kernel::fetch_exact`]: checked against the archive's SHA256), only
//! the files a suite needs are taken from its
//! `usr/src/linux-source-X.tar.xz`, and each test binary is built static at
//! `-O0` with the host's gcc and C library headers, linked with a
//! constructor that unbuffers stdout (otherwise a forked child repeats the
//! TAP lines its parent had buffered). See `../shared/KERNELS.md`,
//! "Running the kernel's own cgroup selftests in a guest".
//!
//! The binaries of a suite land in `target/vm/kselftest/<version>/<suite>/`
//! with a `kselftest.json` manifest ([`SuiteBuild`]), which saves a second
//! build. A test that does not build is in the manifest with gcc's errors;
//! nothing is dropped silently.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::kernel::{self, KernelSpec, Series};

/// The flags every test is built with: the selftests' own (`-Wall
/// -pthread`), static for the guest, and `-O0` (at `-O2`, gcc 12 folds
/// test_memcontrol's allocation loops away and every OOM test fails).
pub const BASE_FLAGS: &[&str] = &["-Wall", "-pthread", "-static", "-O0"];

/// Linked into every test: a guest runs them with stdout on a pipe.
pub const UNBUFFER_C: &str = "#include <stdio.h>\n\n/* Written by cargo xtask: forked children must not repeat buffered TAP lines. */\n__attribute__((constructor)) static void unbuffer(void)\n{\n\tsetvbuf(stdout, NULL, _IONBF, 0);\n}\n";

/// Tests that are never built, with the reason.
pub const EXCLUDED: &[(&str, &str, &str)] = &[(
    "cgroup",
    "test_zswap",
    "with no swap, its test_no_kmem_bypass exhausts a 1 GiB guest and the kernel panics",
)];

/// Bumped when the way a suite is extracted or built changes: a manifest
/// of another recipe is rebuilt.
pub const RECIPE: u32 = 2;

/// The manifest's name in a suite's directory.
pub const MANIFEST: &str = "kselftest.json";

/// Suites this module has been tried with (see the module's tests).
pub const KNOWN_SUITES: &[&str] = &["cgroup", "timens", "pidfd", "mount_setattr"];

// ---------------------------------------------------------------------------
// Which source package.

/// The kernel source a suite is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub series: &'static Series,
    /// `linux-source-6.1`.
    pub package: String,
    /// Exactly the kernel's package version: `6.1.192-3`.
    pub version: String,
}

impl Source {
    /// The source of a series' kernel at its package `version`.
    pub fn new(series: &'static Series, version: &str) -> Source {
        Source {
            series,
            package: source_package(series),
            version: version.to_owned(),
        }
    }

    /// The tree's top directory in the tarball, `linux-source-6.1`.
    pub fn top(&self) -> &str {
        &self.package
    }

    /// The tarball's member in the `.deb`.
    pub fn tarball(&self) -> String {
        format!("./usr/src/{}.tar.xz", self.package)
    }
}

/// The name of a series' source package: `debian-6.12` → `linux-source-6.12`.
pub fn source_package(series: &Series) -> String {
    let number = series.label.strip_prefix("debian-").unwrap_or(series.label);
    format!("linux-source-{number}")
}

/// The source of the kernel `spec` boots: its series, at the version of the
/// kernel's packages in the lock (or the newest, when it is not pinned).
pub fn source_of(spec: &KernelSpec) -> Result<Source, String> {
    match spec {
        KernelSpec::Debian(series) => {
            let (pinned, _unpinned) = kernel::resolve(series)?;
            let first = pinned
                .packages
                .first()
                .ok_or_else(|| format!("{} has no package", series.label))?;
            Ok(Source::new(series, &first.version))
        }
        other => Err(format!(
            "{}: the selftests are built from a Debian kernel's linux-source package; this kernel has none",
            other.label()
        )),
    }
}

// ---------------------------------------------------------------------------
// Which files.

/// Headers outside a suite's directory that its sources include, found by
/// reading their `#include "..."` lines in 5.10, 6.1, 6.12 and 7.2. A path
/// that a version lacks is left out with a note.
fn extra_paths(suite: &str) -> &'static [&'static str] {
    match suite {
        "cgroup" => &["clone3/clone3_selftests.h", "pidfd/pidfd.h"],
        // 7.x: pidfd.h includes clone3's, and the tests the filesystems
        // wrappers; its Makefile adds $(TOOLS_INCLUDES).
        "pidfd" => &["clone3/clone3_selftests.h", "filesystems/wrappers.h"],
        "mount_setattr" => &["filesystems/wrappers.h"],
        "timens" => &[],
        // An unknown suite: the usual suspects.
        _ => &[
            "clone3/clone3_selftests.h",
            "pidfd/pidfd.h",
            "filesystems/wrappers.h",
        ],
    }
}

/// Suites whose Makefile adds `$(TOOLS_INCLUDES)` (`-isystem
/// tools/include/uapi`, whose `asm/` points into `tools/arch/x86`).
fn needs_tools_uapi(suite: &str) -> bool {
    !matches!(suite, "cgroup" | "timens" | "mount_setattr")
}

/// The paths (files, or directories taken whole) a suite needs, relative to
/// the tree's top.
pub fn wanted_paths(suite: &str) -> Vec<String> {
    let selftests = "tools/testing/selftests";
    let mut paths: Vec<String> = ["kselftest.h", "kselftest_harness.h", "lib.mk"]
        .iter()
        .map(|f| format!("{selftests}/{f}"))
        .collect();
    paths.push(format!("{selftests}/{suite}"));
    for extra in extra_paths(suite) {
        paths.push(format!("{selftests}/{extra}"));
    }
    if needs_tools_uapi(suite) {
        paths.push("tools/include/uapi".into());
        paths.push("tools/arch/x86/include/uapi".into());
    }
    paths
}

/// Whether a tarball member (relative to the tree's top) is one a suite
/// needs: one of [`wanted_paths`], or inside one. This is what `tar`
/// extracts when given those paths.
pub fn wanted(suite: &str, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    wanted_paths(suite).iter().any(|w| {
        path == w
            || path
                .strip_prefix(w.as_str())
                .is_some_and(|r| r.starts_with('/'))
    })
}

/// The members to give `tar`: [`wanted_paths`] under the tree's top.
pub fn members(source: &Source, suite: &str) -> Vec<String> {
    wanted_paths(suite)
        .into_iter()
        .map(|p| format!("{}/{p}", source.top()))
        .collect()
}

/// Extracts a suite's files from the source `.deb` into `dest`:
/// `dpkg-deb --fsys-tarfile | tar -xO <tarball> | xz -dc | tar -x <members>`.
/// Returns the members the tarball does not hold (tar's "Not found in
/// archive"); any other failure is an error.
fn extract(deb: &Path, source: &Source, suite: &str, dest: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dest).map_err(|e| format!("create {}: {e}", dest.display()))?;
    let log = |name: &str| -> Result<(std::fs::File, PathBuf), String> {
        let path = dest.join(format!(".{name}.stderr"));
        let file =
            std::fs::File::create(&path).map_err(|e| format!("create {}: {e}", path.display()))?;
        Ok((file, path))
    };
    let (e1, p1) = log("dpkg-deb")?;
    let (e2, p2) = log("tar-deb")?;
    let (e3, p3) = log("xz")?;
    let (e4, p4) = log("tar")?;
    let spawn = |cmd: &mut Command, what: &str| cmd.spawn().map_err(|e| format!("run {what}: {e}"));
    let mut deb_tar = spawn(
        Command::new("dpkg-deb")
            .arg("--fsys-tarfile")
            .arg(deb)
            .stdout(Stdio::piped())
            .stderr(e1),
        "dpkg-deb",
    )?;
    let mut member = spawn(
        Command::new("tar")
            .args(["-xO", "-f", "-", &source.tarball()])
            .stdin(deb_tar.stdout.take().expect("piped"))
            .stdout(Stdio::piped())
            .stderr(e2),
        "tar",
    )?;
    let mut xz = spawn(
        Command::new("xz")
            .args(["-dc", "-T2"])
            .stdin(member.stdout.take().expect("piped"))
            .stdout(Stdio::piped())
            .stderr(e3),
        "xz",
    )?;
    let mut tar = spawn(
        Command::new("tar")
            .args(["-x", "--no-same-owner", "-f", "-", "-C"])
            .arg(dest)
            .arg("--")
            .args(members(source, suite))
            .stdin(xz.stdout.take().expect("piped"))
            .stderr(e4),
        "tar",
    )?;
    let wait = |child: &mut std::process::Child| child.wait().map_err(|e| format!("wait: {e}"));
    let s4 = wait(&mut tar)?;
    let s3 = wait(&mut xz)?;
    let s2 = wait(&mut member)?;
    let s1 = wait(&mut deb_tar)?;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let errors = read(&p4);
    let (missing, other) = tar_complaints(&errors);
    // tar's own failure first: the processes before it then die of SIGPIPE.
    if !s4.success() && (!other.is_empty() || missing.is_empty()) {
        return Err(format!(
            "extracting {suite} from {} in {}: tar failed ({s4}): {}",
            source.tarball(),
            deb.display(),
            if other.is_empty() {
                errors.trim().to_owned()
            } else {
                other.join(" / ")
            }
        ));
    }
    for (status, path, what) in [
        (s1, &p1, "dpkg-deb --fsys-tarfile"),
        (s2, &p2, "tar -xO (the .deb's tarball)"),
        (s3, &p3, "xz -dc"),
    ] {
        if !status.success() {
            return Err(format!(
                "extracting {} from {}: `{what}` failed ({status}): {}",
                source.tarball(),
                deb.display(),
                read(path).trim()
            ));
        }
    }
    for p in [p1, p2, p3, p4] {
        let _ = std::fs::remove_file(p);
    }
    Ok(missing)
}

/// GNU tar's complaints, split: the members it did not find (`tar: x: Not
/// found in archive`), and anything else.
fn tar_complaints(stderr: &str) -> (Vec<String>, Vec<String>) {
    let mut missing = Vec::new();
    let mut other = Vec::new();
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        match line
            .strip_prefix("tar: ")
            .and_then(|l| l.strip_suffix(": Not found in archive"))
        {
            Some(path) => missing.push(path.to_owned()),
            None if line.contains("Exiting with failure status due to previous errors") => {}
            None => other.push(line.to_owned()),
        }
    }
    (missing, other)
}

// ---------------------------------------------------------------------------
// How to build: the suite's Makefile, read.

/// How a suite's tests are built, read from its `Makefile` and the
/// selftests' `lib.mk` (only what gcc needs; the Makefile's own `-O2`,
/// `-g` and `-Werror` are not taken: [`BASE_FLAGS`] are).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recipe {
    /// `TEST_GEN_PROGS` (or, if it has none, `TEST_GEN_FILES`), each from
    /// `<name>.c`.
    pub programs: Vec<String>,
    /// `TEST_GEN_PROGS_EXTENDED`: helpers the tests run.
    pub helpers: Vec<String>,
    /// Further sources of a program (`$(OUTPUT)/test_kill: cgroup_util.c`),
    /// relative to the suite's directory.
    pub sources: BTreeMap<String, Vec<String>>,
    /// `-D` flags from `lib.mk` (6.12 on: `_GNU_SOURCE=`).
    pub defines: Vec<String>,
    /// `-I` directories, relative to the suite's directory (7.x: `..` from
    /// `lib.mk`, and cgroup's `lib/include`).
    pub includes: Vec<String>,
    /// `-isystem` directories, relative to the suite's directory.
    pub system_includes: Vec<String>,
    /// `LDLIBS`.
    pub libs: Vec<String>,
}

/// A Makefile's logical lines (continuations joined, comments dropped).
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in text.lines() {
        let line = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        match line.trim_end().strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// `NAME := a b`, `NAME = a b` or `NAME += c`: (name, appends, words).
fn assignment(line: &str) -> Option<(&str, bool, Vec<&str>)> {
    let (op_at, op_len, append) = if let Some(i) = line.find("+=") {
        (i, 2, true)
    } else if let Some(i) = line.find(":=") {
        (i, 2, false)
    } else if let Some(i) = line.find('=') {
        (i, 1, false)
    } else {
        return None;
    };
    let name = line[..op_at].trim();
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains(':') {
        return None;
    }
    Some((
        name,
        append,
        line[op_at + op_len..].split_whitespace().collect(),
    ))
}

/// The subdirectory whose `lib/libcgroup.mk` provides `$(LIBCGROUP_O)`
/// (7.x's cgroup): its source and include directory.
const LIBCGROUP_C: &str = "lib/cgroup_util.c";
const LIBCGROUP_INCLUDE: &str = "lib/include";

impl Recipe {
    /// Reads a suite's `Makefile` and the selftests' `lib.mk`.
    pub fn from_makefiles(makefile: &str, lib_mk: &str) -> Recipe {
        let mut vars: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut deps: Vec<(String, Vec<String>)> = Vec::new();
        let lines = logical_lines(makefile);
        let mut libcgroup = false;
        let mut tools_includes = false;
        for line in &lines {
            let trimmed = line.trim();
            if trimmed.starts_with("include ") && trimmed.ends_with("lib/libcgroup.mk") {
                libcgroup = true;
                continue;
            }
            if let Some(target) = trimmed.strip_prefix("$(OUTPUT)/") {
                if let Some((name, rest)) = target.split_once(':') {
                    if !rest.starts_with('=') {
                        deps.push((
                            name.trim().to_owned(),
                            rest.split_whitespace().map(str::to_owned).collect(),
                        ));
                        continue;
                    }
                }
            }
            if let Some(rest) = trimmed.strip_prefix("$(TEST_GEN_PROGS):") {
                deps.push((
                    "$(TEST_GEN_PROGS)".into(),
                    rest.split_whitespace().map(str::to_owned).collect(),
                ));
                continue;
            }
            if let Some((name, append, words)) = assignment(trimmed) {
                if name == "CFLAGS" && words.iter().any(|w| w.contains("TOOLS_INCLUDES")) {
                    tools_includes = true;
                }
                let words = words
                    .into_iter()
                    .filter(|w| !w.contains('$'))
                    .map(str::to_owned);
                let entry = vars.entry(name).or_default();
                if !append {
                    entry.clear();
                }
                entry.extend(words);
            }
        }
        let var = |n: &str| vars.get(n).cloned().unwrap_or_default();
        let mut programs = var("TEST_GEN_PROGS");
        if programs.is_empty() {
            programs = var("TEST_GEN_FILES");
        }
        let helpers = var("TEST_GEN_PROGS_EXTENDED");
        let mut sources: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut uses_libcgroup = false;
        for (target, words) in &deps {
            let targets: Vec<&String> = if target == "$(TEST_GEN_PROGS)" {
                programs.iter().collect()
            } else {
                vec![target]
            };
            for t in targets {
                let list = sources.entry(t.clone()).or_default();
                for w in words {
                    if w == "$(LIBCGROUP_O)" && libcgroup {
                        uses_libcgroup = true;
                        list.push(LIBCGROUP_C.into());
                    } else if w.ends_with(".c") && *w != format!("{t}.c") && !w.contains('$') {
                        list.push(w.clone());
                    }
                }
            }
        }
        sources.retain(|_, v| !v.is_empty());
        let lib_lines = logical_lines(lib_mk);
        let lib_cflags: Vec<&str> = lib_lines
            .iter()
            .filter_map(|l| assignment(l.trim()))
            .filter(|(name, append, _)| *name == "CFLAGS" && *append)
            .flat_map(|(_, _, words)| words)
            .collect();
        let mut defines = Vec::new();
        let mut includes = Vec::new();
        for flag in &lib_cflags {
            if let Some(d) = flag.strip_prefix("-D") {
                defines.push(d.to_owned());
            }
            if let Some(dir) = flag.strip_prefix("-I") {
                if dir.ends_with("tools/testing/selftests") {
                    includes.push("..".to_owned());
                }
            }
        }
        if uses_libcgroup {
            includes.push(LIBCGROUP_INCLUDE.into());
        }
        let system_includes = if tools_includes {
            vec!["../../../include/uapi".to_owned()]
        } else {
            Vec::new()
        };
        let libs = var("LDLIBS")
            .into_iter()
            .filter(|w| w.starts_with("-l"))
            .collect();
        Recipe {
            programs,
            helpers,
            sources,
            defines,
            includes,
            system_includes,
            libs,
        }
    }

    /// gcc's arguments for `program`, run in the suite's directory.
    pub fn gcc_args(&self, program: &str, out: &Path, unbuffer: &Path) -> Vec<String> {
        let mut args: Vec<String> = BASE_FLAGS.iter().map(|f| f.to_string()).collect();
        args.extend(self.defines.iter().map(|d| format!("-D{d}")));
        args.extend(self.includes.iter().map(|d| format!("-I{d}")));
        for dir in &self.system_includes {
            args.push("-isystem".into());
            args.push(dir.clone());
        }
        args.push("-o".into());
        args.push(out.display().to_string());
        args.push(format!("{program}.c"));
        if let Some(extra) = self.sources.get(program) {
            args.extend(extra.iter().cloned());
        }
        args.push(unbuffer.display().to_string());
        args.extend(self.libs.iter().cloned());
        args
    }
}

/// Why a suite's test is not built, if it is excluded.
pub fn excluded(suite: &str, program: &str) -> Option<&'static str> {
    EXCLUDED
        .iter()
        .find(|(s, p, _)| *s == suite && *p == program)
        .map(|(_, _, why)| *why)
}

// ---------------------------------------------------------------------------
// The build and its manifest.

/// What identifies a build: a manifest with another key is rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Key {
    pub suite: String,
    pub package: String,
    pub version: String,
    pub recipe: u32,
}

/// One test binary that built.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Built {
    pub name: String,
    /// A `TEST_GEN_PROGS_EXTENDED` helper, run by the tests, not a test.
    pub helper: bool,
    pub bytes: u64,
    /// No program interpreter ([`probes::lab::is_static_elf`]).
    pub static_elf: bool,
    pub seconds: f64,
    /// The gcc command, run in `tools/testing/selftests/<suite>`.
    pub command: String,
    /// gcc's and ld's first warnings (a static `getaddrinfo`, say).
    pub warnings: Vec<String>,
}

/// One test binary that did not build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failed {
    pub name: String,
    /// The gcc command, run in `tools/testing/selftests/<suite>`.
    pub command: String,
    /// gcc's first errors.
    pub errors: Vec<String>,
}

/// A suite built for one kernel version: `kselftest.json` in its directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteBuild {
    pub key: Key,
    /// `gcc -dumpfullversion` of the compiler that built it.
    pub compiler: String,
    pub built: Vec<Built>,
    pub failed: Vec<Failed>,
    /// `(name, reason)` of the tests left out on purpose.
    pub excluded: Vec<(String, String)>,
    /// Wanted paths the tarball does not hold.
    pub missing: Vec<String>,
    /// Fetching, extracting and building, the first time.
    pub seconds: f64,
    /// Where the binaries are (not in the manifest).
    #[serde(skip)]
    pub dir: PathBuf,
    /// This call found the build in the cache (not in the manifest).
    #[serde(skip)]
    pub cached: bool,
}

impl SuiteBuild {
    /// The path of a built binary.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The test binaries (not the helpers), with their paths.
    pub fn tests(&self) -> impl Iterator<Item = (&Built, PathBuf)> {
        self.built
            .iter()
            .filter(|b| !b.helper)
            .map(|b| (b, self.path(&b.name)))
    }

    /// A summary line per binary.
    pub fn summary(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for b in &self.built {
            lines.push(format!(
                "built {}{} ({} KiB, {}, {:.1} s){}",
                b.name,
                if b.helper { " (helper)" } else { "" },
                b.bytes / 1024,
                if b.static_elf { "static" } else { "NOT STATIC" },
                b.seconds,
                if b.warnings.is_empty() {
                    String::new()
                } else {
                    format!("; warning: {}", b.warnings.join(" / "))
                }
            ));
        }
        for f in &self.failed {
            lines.push(format!(
                "did not build {}: {}",
                f.name,
                f.errors.join(" / ")
            ));
        }
        for (name, why) in &self.excluded {
            lines.push(format!("left out {name}: {why}"));
        }
        for path in &self.missing {
            lines.push(format!("not in this kernel's tree: {path}"));
        }
        lines
    }
}

fn root() -> PathBuf {
    crate::target_dir().join("vm").join("kselftest")
}

fn version_dir(version: &str) -> String {
    version.replace(':', "%3a")
}

/// Where a suite's binaries for a kernel version are:
/// `target/vm/kselftest/<version>/<suite>/`.
pub fn cache_dir(version: &str, suite: &str) -> PathBuf {
    root().join(version_dir(version)).join(suite)
}

/// The build in `dir`, if its manifest has this key and every binary it
/// lists is there.
pub fn cached(dir: &Path, key: &Key) -> Option<SuiteBuild> {
    let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let mut build: SuiteBuild = serde_json::from_str(&text).ok()?;
    if &build.key != key || build.built.iter().any(|b| !dir.join(&b.name).is_file()) {
        return None;
    }
    build.dir = dir.to_owned();
    build.cached = true;
    Some(build)
}

/// The build in `dir` if it is there; otherwise `make` builds it into a
/// fresh directory, which then replaces `dir`.
pub fn ensure(
    dir: &Path,
    key: &Key,
    make: impl FnOnce(&Path) -> Result<SuiteBuild, String>,
) -> Result<SuiteBuild, String> {
    if let Some(build) = cached(dir, key) {
        return Ok(build);
    }
    let parent = dir.parent().ok_or("a cache directory without a parent")?;
    std::fs::create_dir_all(parent).map_err(|e| format!("create {}: {e}", parent.display()))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let fresh = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh).map_err(|e| format!("create {}: {e}", fresh.display()))?;
    let mut build = match make(&fresh) {
        Ok(build) => build,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&fresh);
            return Err(e);
        }
    };
    let text = serde_json::to_string_pretty(&build).expect("manifests serialize");
    let manifest = fresh.join(MANIFEST);
    std::fs::write(&manifest, text).map_err(|e| format!("write {}: {e}", manifest.display()))?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::rename(&fresh, dir).map_err(|e| format!("move {}: {e}", fresh.display()))?;
    build.dir = dir.to_owned();
    build.cached = false;
    Ok(build)
}

/// Builds (or finds in the cache) `suite` for the kernel `spec` boots.
pub fn build(spec: &KernelSpec, suite: &str) -> Result<SuiteBuild, String> {
    build_source(&source_of(spec)?, suite)
}

/// Builds (or finds in the cache) `suite` from `source`.
pub fn build_source(source: &Source, suite: &str) -> Result<SuiteBuild, String> {
    if suite.is_empty() || suite.contains(['/', '.']) || suite.contains(char::is_whitespace) {
        return Err(format!("{suite:?} is not a selftests suite's name"));
    }
    let key = Key {
        suite: suite.to_owned(),
        package: source.package.clone(),
        version: source.version.clone(),
        recipe: RECIPE,
    };
    let dir = cache_dir(&source.version, suite);
    ensure(&dir, &key, |out| make(source, suite, &key, out))
}

fn make(source: &Source, suite: &str, key: &Key, out: &Path) -> Result<SuiteBuild, String> {
    let started = Instant::now();
    crate::prereq::ensure_package("gcc", "/usr/bin/gcc")?;
    crate::prereq::ensure_package("libc6-dev", "/usr/lib/x86_64-linux-gnu/libc.a")?;
    crate::prereq::ensure_package("xz-utils", "/usr/bin/xz")?;
    let (_, deb) = kernel::fetch_exact(source.series, &source.package, &source.version)?;
    let src = root()
        .join(version_dir(&source.version))
        .join(".src")
        .join(suite);
    let _ = std::fs::remove_dir_all(&src);
    eprintln!(
        "xtask: extracting the {suite} selftests from {}={}",
        source.package, source.version
    );
    let missing = extract(&deb, source, suite, &src)?;
    let selftests = src.join(source.top()).join("tools/testing/selftests");
    let suite_dir = selftests.join(suite);
    let makefile = suite_dir.join("Makefile");
    let makefile_text = std::fs::read_to_string(&makefile).map_err(|_| {
        format!(
            "{}={} has no selftests suite {suite} (no tools/testing/selftests/{suite}/Makefile)",
            source.package, source.version
        )
    })?;
    let lib_mk = std::fs::read_to_string(selftests.join("lib.mk")).unwrap_or_default();
    let recipe = Recipe::from_makefiles(&makefile_text, &lib_mk);
    if recipe.programs.is_empty() {
        return Err(format!(
            "{}: names no TEST_GEN_PROGS to build",
            makefile.display()
        ));
    }
    let unbuffer = src.join("unbuffer.c");
    std::fs::write(&unbuffer, UNBUFFER_C)
        .map_err(|e| format!("write {}: {e}", unbuffer.display()))?;
    let compiler = Command::new("gcc")
        .arg("-dumpfullversion")
        .output()
        .map(|o| format!("gcc {}", String::from_utf8_lossy(&o.stdout).trim()))
        .unwrap_or_else(|_| "gcc".into());
    let mut built = Vec::new();
    let mut failed = Vec::new();
    let mut excluded_list = Vec::new();
    let all = recipe
        .programs
        .iter()
        .map(|p| (p, false))
        .chain(recipe.helpers.iter().map(|p| (p, true)));
    for (program, helper) in all {
        if let Some(why) = excluded(suite, program) {
            excluded_list.push((program.clone(), why.to_owned()));
            continue;
        }
        let binary = out.join(program);
        let args = recipe.gcc_args(program, &binary, &unbuffer);
        // As a reader would run it in the suite's directory.
        let shown = format!(
            "gcc {}",
            recipe
                .gcc_args(program, Path::new(program), &unbuffer)
                .join(" ")
        );
        eprintln!("xtask: gcc {suite}/{program}");
        let t = Instant::now();
        let result = Command::new("gcc")
            .args(&args)
            .current_dir(&suite_dir)
            .env("LC_ALL", "C")
            .output()
            .map_err(|e| format!("run gcc: {e}"))?;
        let stderr = String::from_utf8_lossy(&result.stderr);
        let lines = |needle: &str| -> Vec<String> {
            stderr
                .lines()
                .filter(|l| l.contains(needle))
                .take(4)
                .map(|l| l.trim().to_owned())
                .collect()
        };
        if result.status.success() && binary.is_file() {
            let bytes = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
            let static_elf = probes::lab::is_static_elf(&binary)?;
            built.push(Built {
                name: program.clone(),
                helper,
                bytes,
                static_elf,
                seconds: t.elapsed().as_secs_f64(),
                command: shown,
                warnings: lines("warning:"),
            });
        } else {
            let mut errors = lines("error");
            if errors.is_empty() {
                let all: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
                errors = all[all.len().saturating_sub(4)..]
                    .iter()
                    .map(|l| l.trim().to_owned())
                    .collect();
            }
            if errors.is_empty() {
                errors.push(format!("gcc failed ({})", result.status));
            }
            failed.push(Failed {
                name: program.clone(),
                command: shown,
                errors,
            });
        }
    }
    let missing = missing
        .into_iter()
        .map(|m| {
            m.strip_prefix(&format!("{}/", source.top()))
                .unwrap_or(&m)
                .to_owned()
        })
        .collect();
    Ok(SuiteBuild {
        key: key.clone(),
        compiler,
        built,
        failed,
        excluded: excluded_list,
        missing,
        seconds: started.elapsed().as_secs_f64(),
        dir: out.to_owned(),
        cached: false,
    })
}

// ---------------------------------------------------------------------------
// The guest's disk.

/// The modules a guest needs to read the disk: the virtio block device and
/// ext4 (dependencies follow from their `.modinfo`).
pub const DISK_MODULES: &[&str] = &["virtio_blk", "ext4"];

/// Room on the disk for the tests' own files (`test_memcontrol` writes
/// page-cache files of 50 MiB); the image is sparse, so unused room costs
/// nothing on the host.
const DISK_SIZE: &str = "1G";

/// What `suite`'s build says to run, for the guest ([`vm_tests::kselftest::SuitePlan`]).
pub fn plan_of(build: &SuiteBuild) -> vm_tests::kselftest::SuitePlan {
    let mut not_run: Vec<(String, String)> = build.excluded.clone();
    for failed in &build.failed {
        not_run.push((
            failed.name.clone(),
            format!(
                "did not build from this kernel's source: {}",
                failed.errors.join(" / ")
            ),
        ));
    }
    for b in build.built.iter().filter(|b| !b.helper && !b.static_elf) {
        not_run.push((
            b.name.clone(),
            "built, but not static: the guest has no C library".into(),
        ));
    }
    vm_tests::kselftest::SuitePlan {
        suite: build.key.suite.clone(),
        source: format!("{} {}", build.key.package, build.key.version),
        tests: build
            .built
            .iter()
            .filter(|b| !b.helper && b.static_elf)
            .map(|b| b.name.clone())
            .collect(),
        not_run,
    }
}

/// Writes the ext4 image a guest runs `builds` from: each suite in a
/// directory of its own, with its binaries (helpers too) and its
/// [`PLAN_FILE`](vm_tests::kselftest::PLAN_FILE). `mkfs.ext4 -d` fills it
/// from a staging directory, so no mount or loop device is needed here.
pub fn write_disk(builds: &[SuiteBuild], image: &Path) -> Result<(), String> {
    crate::prereq::ensure_package("e2fsprogs", "/usr/sbin/mkfs.ext4")?;
    let staging = image.with_extension("staging");
    let _ = std::fs::remove_dir_all(&staging);
    let result = stage(builds, &staging).and_then(|()| {
        let _ = std::fs::remove_file(image);
        let output = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "kselftest", "-E", "root_owner=0:0", "-d"])
            .arg(&staging)
            .arg(image)
            .arg(DISK_SIZE)
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .output()
            .map_err(|e| format!("run mkfs.ext4: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "mkfs.ext4 -d {} {} failed: {}",
                staging.display(),
                image.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    });
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// The `/bin/sleep` the tests exec (pidfd_test's thread execs it to prove
/// that a thread's exec does not end the process early): the guest has no
/// coreutils, so the disk carries this one, ours and static.
const SLEEP_C: &str = "/* Written by cargo xtask: sleep SECONDS, for the selftests that exec /bin/sleep. */\n#include <stdlib.h>\n#include <unistd.h>\n\nint main(int argc, char **argv)\n{\n\tunsigned int seconds = argc > 1 ? (unsigned int)strtoul(argv[1], NULL, 10) : 0;\n\n\twhile (seconds)\n\t\tseconds = sleep(seconds);\n\treturn 0;\n}\n";

fn build_sleep(bin: &Path) -> Result<(), String> {
    std::fs::create_dir_all(bin).map_err(|e| format!("create {}: {e}", bin.display()))?;
    let source = bin.join("sleep.c");
    std::fs::write(&source, SLEEP_C).map_err(|e| format!("write {}: {e}", source.display()))?;
    let output = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(bin.join("sleep"))
        .arg(&source)
        .output()
        .map_err(|e| format!("run gcc: {e}"))?;
    let _ = std::fs::remove_file(&source);
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "gcc could not build the guest's /bin/sleep: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

fn stage(builds: &[SuiteBuild], staging: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    build_sleep(&staging.join("bin"))?;
    for build in builds {
        let dir = staging.join(&build.key.suite);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        // Some tests switch to uid 65534 and must still reach their files.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
        for b in &build.built {
            let to = dir.join(&b.name);
            std::fs::copy(build.path(&b.name), &to).map_err(|e| {
                format!(
                    "copy {} to {}: {e}",
                    build.path(&b.name).display(),
                    to.display()
                )
            })?;
        }
        let plan = serde_json::to_string_pretty(&plan_of(build)).expect("plans serialize");
        let path = dir.join(vm_tests::kselftest::PLAN_FILE);
        std::fs::write(&path, plan).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vm::kernel::SERIES;

    fn series(label: &str) -> &'static Series {
        SERIES.iter().find(|s| s.label == label).unwrap()
    }

    #[test]
    fn each_series_has_its_source_package_at_the_kernels_version() {
        for (label, package) in [
            ("debian-5.10", "linux-source-5.10"),
            ("debian-6.1", "linux-source-6.1"),
            ("debian-6.12", "linux-source-6.12"),
            ("debian-7.2", "linux-source-7.2"),
            ("debian-7.3", "linux-source-7.3"),
        ] {
            assert_eq!(source_package(series(label)), package);
        }
        let s = Source::new(series("debian-6.1"), "6.1.192-3");
        assert_eq!(s.package, "linux-source-6.1");
        assert_eq!(s.version, "6.1.192-3");
        assert_eq!(s.top(), "linux-source-6.1");
        assert_eq!(s.tarball(), "./usr/src/linux-source-6.1.tar.xz");
        assert!(
            cache_dir("6.1.192-3", "cgroup").ends_with("vm/kselftest/6.1.192-3/cgroup"),
            "{}",
            cache_dir("6.1.192-3", "cgroup").display()
        );
        assert!(cache_dir("1:7.3~rc7-1", "cgroup").ends_with("1%3a7.3~rc7-1/cgroup"));
        let err = source_of(&KernelSpec::Host).unwrap_err();
        assert!(err.contains("linux-source"), "{err}");
    }

    /// The lock's version of each default series is the one its source is
    /// fetched at (reads the committed lock; no network).
    #[test]
    fn the_locked_kernels_name_their_source_versions() {
        let lock = kernel::Lock::read(&crate::workspace_root().join(kernel::LOCK_PATH)).unwrap();
        for spec in KernelSpec::defaults() {
            let source = source_of(&spec).unwrap();
            let locked = &lock.kernels[&spec.label()].packages[0].version;
            assert_eq!(&source.version, locked, "{}", spec.label());
        }
    }

    #[test]
    fn the_extraction_takes_only_what_a_suite_needs() {
        let s = Source::new(series("debian-7.2"), "7.2.13-1");
        assert_eq!(
            members(&s, "cgroup"),
            [
                "linux-source-7.2/tools/testing/selftests/kselftest.h",
                "linux-source-7.2/tools/testing/selftests/kselftest_harness.h",
                "linux-source-7.2/tools/testing/selftests/lib.mk",
                "linux-source-7.2/tools/testing/selftests/cgroup",
                "linux-source-7.2/tools/testing/selftests/clone3/clone3_selftests.h",
                "linux-source-7.2/tools/testing/selftests/pidfd/pidfd.h",
            ]
        );
        let sel = "tools/testing/selftests";
        for path in [
            "cgroup/test_kill.c",
            "cgroup/cgroup_util.c",
            "cgroup/lib/cgroup_util.c",
            "cgroup/lib/include/cgroup_util.h",
            "cgroup/",
            "kselftest.h",
            "clone3/clone3_selftests.h",
            "pidfd/pidfd.h",
        ] {
            assert!(wanted("cgroup", &format!("{sel}/{path}")), "{path}");
        }
        for path in [
            "cgroupv2/x.c",
            "clone3/clone3.c",
            "pidfd/pidfd_test.c",
            "kselftest_module.h",
            "bpf/test_progs.c",
        ] {
            assert!(!wanted("cgroup", &format!("{sel}/{path}")), "{path}");
        }
        assert!(!wanted("cgroup", "tools/include/uapi/linux/mount.h"));
        assert!(!wanted("cgroup", "Makefile"));
        // pidfd (7.x) builds with -isystem tools/include/uapi.
        assert!(wanted("pidfd", "tools/include/uapi/linux/mount.h"));
        assert!(wanted("pidfd", "tools/arch/x86/include/uapi/asm/errno.h"));
        assert!(wanted("pidfd", &format!("{sel}/filesystems/wrappers.h")));
        assert!(!wanted(
            "pidfd",
            &format!("{sel}/filesystems/overlayfs/x.c")
        ));
        assert!(wanted(
            "mount_setattr",
            &format!("{sel}/mount_setattr/mount_setattr_test.c")
        ));
        assert!(wanted("timens", &format!("{sel}/timens/log.h")));
        assert!(!wanted("timens", &format!("{sel}/cgroup/test_kill.c")));
    }

    /// Makefiles in the form of 6.1's and 7.2's cgroup (abridged, written
    /// for this test) and the lib.mk lines that matter.
    const CGROUP_6X: &str = "# SPDX\nCFLAGS += -Wall -pthread\n\nall: ${HELPER_PROGS}\n\nTEST_FILES     := with_stress.sh\nTEST_GEN_FILES := wait_inotify\nTEST_GEN_PROGS = test_memcontrol\nTEST_GEN_PROGS += test_kill\nTEST_GEN_PROGS += test_zswap\n\ninclude ../lib.mk\n\n$(OUTPUT)/test_memcontrol: cgroup_util.c\n$(OUTPUT)/test_kill: cgroup_util.c\n$(OUTPUT)/test_zswap: cgroup_util.c\n";
    const CGROUP_7X: &str = "CFLAGS += -Wall -pthread\n\nTEST_GEN_PROGS  = test_core\nTEST_GEN_PROGS += test_kill\nTEST_GEN_PROGS += test_zswap\n\nLOCAL_HDRS += $(selfdir)/clone3/clone3_selftests.h $(selfdir)/pidfd/pidfd.h\n\ninclude ../lib.mk\ninclude lib/libcgroup.mk\n\n$(OUTPUT)/test_core: $(LIBCGROUP_O)\n$(OUTPUT)/test_kill: $(LIBCGROUP_O)\n$(OUTPUT)/test_zswap: $(LIBCGROUP_O)\n";
    const LIB_MK_61: &str =
        "CFLAGS += $(USERCFLAGS)\nKHDR_INCLUDES := -isystem $(top_srcdir)/usr/include\n";
    const LIB_MK_72: &str = "ifeq ($(LLVM),)\nCFLAGS += -Wno-address-of-packed-member\nendif\n# Build with _GNU_SOURCE by default\nCFLAGS += -D_GNU_SOURCE=\n\nCFLAGS += -I${top_srcdir}/tools/testing/selftests\nCFLAGS += $(USERCFLAGS)\n";

    #[test]
    fn the_gcc_command_for_the_6x_layout() {
        let recipe = Recipe::from_makefiles(CGROUP_6X, LIB_MK_61);
        assert_eq!(
            recipe.programs,
            ["test_memcontrol", "test_kill", "test_zswap"]
        );
        assert!(recipe.helpers.is_empty());
        let args = recipe.gcc_args(
            "test_kill",
            Path::new("/t/6.1.192-3/cgroup/test_kill"),
            Path::new("/t/unbuffer.c"),
        );
        assert_eq!(
            args.join(" "),
            "-Wall -pthread -static -O0 -o /t/6.1.192-3/cgroup/test_kill test_kill.c cgroup_util.c /t/unbuffer.c"
        );
    }

    #[test]
    fn the_gcc_command_for_the_7x_layout_with_lib() {
        let recipe = Recipe::from_makefiles(CGROUP_7X, LIB_MK_72);
        assert_eq!(recipe.programs, ["test_core", "test_kill", "test_zswap"]);
        assert_eq!(recipe.includes, ["..", "lib/include"]);
        assert_eq!(recipe.defines, ["_GNU_SOURCE="]);
        let args = recipe.gcc_args(
            "test_kill",
            Path::new("/t/7.2.13-1/cgroup/test_kill"),
            Path::new("/t/unbuffer.c"),
        );
        assert_eq!(
            args.join(" "),
            "-Wall -pthread -static -O0 -D_GNU_SOURCE= -I.. -Ilib/include -o /t/7.2.13-1/cgroup/test_kill test_kill.c lib/cgroup_util.c /t/unbuffer.c"
        );
    }

    #[test]
    fn other_makefile_forms() {
        // timens: LDLIBS; the Makefile's -Werror is not taken.
        let timens = "TEST_GEN_PROGS := timens timerfd\nTEST_GEN_PROGS_EXTENDED := gettime_perf\n\nCFLAGS := -Wall -Werror -pthread\nLDLIBS := -lrt -ldl\n\ninclude ../lib.mk\n";
        let r = Recipe::from_makefiles(timens, LIB_MK_61);
        assert_eq!(r.programs, ["timens", "timerfd"]);
        assert_eq!(r.helpers, ["gettime_perf"]);
        assert_eq!(r.libs, ["-lrt", "-ldl"]);
        let args = r.gcc_args("timens", Path::new("/o/timens"), Path::new("/u.c"));
        assert_eq!(
            args.join(" "),
            "-Wall -pthread -static -O0 -o /o/timens timens.c /u.c -lrt -ldl"
        );
        // pidfd (7.x): continued lines and $(TOOLS_INCLUDES).
        let pidfd = "CFLAGS += -g $(KHDR_INCLUDES) $(TOOLS_INCLUDES) -pthread -Wall\n\nTEST_GEN_PROGS := pidfd_test pidfd_open_test \\\n\tpidfd_poll_test\n\nTEST_GEN_PROGS_EXTENDED := pidfd_exec_helper\n\ninclude ../lib.mk\n";
        let r = Recipe::from_makefiles(pidfd, LIB_MK_72);
        assert_eq!(
            r.programs,
            ["pidfd_test", "pidfd_open_test", "pidfd_poll_test"]
        );
        assert_eq!(r.helpers, ["pidfd_exec_helper"]);
        assert_eq!(r.system_includes, ["../../../include/uapi"]);
        let args = r.gcc_args("pidfd_test", Path::new("/o/p"), Path::new("/u.c"));
        assert_eq!(
            args.join(" "),
            "-Wall -pthread -static -O0 -D_GNU_SOURCE= -I.. -isystem ../../../include/uapi -o /o/p pidfd_test.c /u.c"
        );
        // 6.1's mount_setattr lists its test in TEST_GEN_FILES.
        let ms = "CFLAGS = -g $(KHDR_INCLUDES) -Wall -O2 -pthread\n\nTEST_GEN_FILES += mount_setattr_test\n\ninclude ../lib.mk\n";
        assert_eq!(
            Recipe::from_makefiles(ms, LIB_MK_61).programs,
            ["mount_setattr_test"]
        );
        // Dependencies of every program at once.
        let all = "TEST_GEN_PROGS := a b\n$(TEST_GEN_PROGS): common.c ../x.h\n";
        let r = Recipe::from_makefiles(all, "");
        assert_eq!(r.sources["a"], ["common.c"]);
        assert_eq!(r.sources["b"], ["common.c"]);
    }

    #[test]
    fn tars_complaints_tell_a_missing_member_from_a_failure() {
        let stderr = "tar: linux-source-5.10/tools/testing/selftests/mount_setattr: Not found in archive\ntar: Exiting with failure status due to previous errors\n";
        assert_eq!(
            tar_complaints(stderr),
            (
                vec!["linux-source-5.10/tools/testing/selftests/mount_setattr".to_owned()],
                vec![]
            )
        );
        let (missing, other) = tar_complaints("tar: x/y: Cannot open: No space left on device\n");
        assert!(missing.is_empty());
        assert_eq!(other, ["tar: x/y: Cannot open: No space left on device"]);
    }

    #[test]
    fn test_zswap_is_left_out() {
        assert!(excluded("cgroup", "test_zswap").is_some_and(|why| why.contains("panics")));
        assert_eq!(excluded("cgroup", "test_kill"), None);
        assert_eq!(excluded("other", "test_zswap"), None);
    }

    fn key(version: &str) -> Key {
        Key {
            suite: "cgroup".into(),
            package: "linux-source-6.1".into(),
            version: version.into(),
            recipe: RECIPE,
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("xtask-kselftest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn fake_build(out: &Path, k: &Key) -> Result<SuiteBuild, String> {
        std::fs::write(out.join("test_kill"), b"\x7fELF").unwrap();
        Ok(SuiteBuild {
            key: k.clone(),
            compiler: "gcc 12.2.0".into(),
            built: vec![Built {
                name: "test_kill".into(),
                helper: false,
                bytes: 4,
                static_elf: true,
                seconds: 0.5,
                command: "gcc ...".into(),
                warnings: vec![],
            }],
            failed: vec![Failed {
                name: "test_cpu".into(),
                command: "gcc ...".into(),
                errors: vec!["test_cpu.c:1: error: x".into()],
            }],
            excluded: vec![("test_zswap".into(), "panics".into())],
            missing: vec![],
            seconds: 2.0,
            dir: out.to_owned(),
            cached: false,
        })
    }

    #[test]
    fn a_second_build_is_found_in_the_cache_and_skips_building() {
        let root = scratch("cache");
        let dir = root.join("6.1.192-3").join("cgroup");
        let k = key("6.1.192-3");
        let first = ensure(&dir, &k, |out| fake_build(out, &k)).unwrap();
        assert!(!first.cached);
        assert_eq!(first.dir, dir);
        assert!(dir.join("test_kill").is_file() && dir.join(MANIFEST).is_file());
        // No partial directory is left behind.
        let leftovers: Vec<_> = std::fs::read_dir(root.join("6.1.192-3"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, [std::ffi::OsString::from("cgroup")]);

        let second = ensure(&dir, &k, |_| {
            panic!("a cached suite must not be built again")
        })
        .unwrap();
        assert!(second.cached);
        assert_eq!(second.built, first.built);
        assert_eq!(second.failed, first.failed);
        assert_eq!(second.path("test_kill"), dir.join("test_kill"));

        // Another version, or a binary gone: built again.
        assert!(cached(&dir, &key("6.1.192-4")).is_none());
        std::fs::remove_file(dir.join("test_kill")).unwrap();
        assert!(cached(&dir, &k).is_none());
        let mut ran = false;
        ensure(&dir, &k, |out| {
            ran = true;
            fake_build(out, &k)
        })
        .unwrap();
        assert!(ran);
        // A failed build leaves the cache as it was.
        let err = ensure(&dir, &key("6.1.200-1"), |_| Err("no gcc".into())).unwrap_err();
        assert_eq!(err, "no gcc");
        assert!(cached(&dir, &k).is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_summary_names_every_binary() {
        let root = scratch("summary");
        let k = key("6.1.192-3");
        let b = fake_build(&root, &k).unwrap();
        let lines = b.summary();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[0].starts_with("built test_kill (0 KiB, static, 0.5 s)"));
        assert_eq!(lines[1], "did not build test_cpu: test_cpu.c:1: error: x");
        assert_eq!(lines[2], "left out test_zswap: panics");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn suite_names_are_checked() {
        let s = Source::new(series("debian-6.1"), "6.1.192-3");
        for bad in ["", "../x", "a b", "cgroup/lib"] {
            assert!(build_source(&s, bad).is_err(), "{bad:?}");
        }
    }

    /// The real check: fetches linux-source-X for each kernel of the default
    /// matrix and builds the cgroup suite (and tries timens, pidfd and
    /// mount_setattr). Network and a few minutes:
    /// `cargo test -p xtask --lib kselftest -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn build_the_suites_for_the_default_matrix() {
        let suites: Vec<String> = std::env::var("KSELFTEST_SUITES")
            .map(|s| s.split(',').map(str::to_owned).collect())
            .unwrap_or_else(|_| KNOWN_SUITES.iter().map(|s| s.to_string()).collect());
        let mut problems = Vec::new();
        for spec in KernelSpec::defaults() {
            for suite in &suites {
                let t = Instant::now();
                let result = build(&spec, suite);
                let took = t.elapsed().as_secs_f64();
                println!("== {} {suite} ({took:.1} s this call)", spec.label());
                match result {
                    Ok(b) => {
                        println!(
                            "   {}={}, {}, {} built, {} failed, first build {:.1} s{}",
                            b.key.package,
                            b.key.version,
                            b.compiler,
                            b.built.len(),
                            b.failed.len(),
                            b.seconds,
                            if b.cached { ", from the cache" } else { "" }
                        );
                        for line in b.summary() {
                            println!("   {line}");
                        }
                        for built in &b.built {
                            let path = b.path(&built.name);
                            if !probes::lab::is_static_elf(&path).unwrap() {
                                problems.push(format!("{}: not static", path.display()));
                            }
                        }
                        if suite == "cgroup" && !b.failed.is_empty() {
                            problems
                                .push(format!("{}: cgroup tests failed to build", spec.label()));
                        }
                        if suite == "cgroup" && b.built.iter().any(|x| x.name == "test_zswap") {
                            problems.push("test_zswap was built".into());
                        }
                        // A second call does nothing.
                        let t = Instant::now();
                        let again = build(&spec, suite).unwrap();
                        assert!(again.cached);
                        println!("   second call: cached, {:.3} s", t.elapsed().as_secs_f64());
                    }
                    Err(e) => {
                        println!("   not built: {e}");
                        if suite == "cgroup" {
                            problems.push(format!("{}: {e}", spec.label()));
                        }
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }
}
