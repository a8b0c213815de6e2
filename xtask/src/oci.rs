//! The OCI runtime-tools validation suite: built from the vendored tarball
//! with Debian's Go, run program by program against a runtime, and counted.
//!
//! Each `validation/<name>/<name>.t` drives the runtime through its command
//! line (create, start, state, kill, delete) and prints TAP; it exits 0 even
//! when an assertion fails, so only the `ok` and `not ok` lines tell.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The vendored source, relative to the workspace.
const TARBALL: &str = "third-party/runtime-tools/runtime-tools-260e151.tar.gz";
/// Its expected SHA-256, beside it.
const CHECKSUM: &str = "third-party/runtime-tools/runtime-tools-260e151.tar.gz.sha256";

/// `cargo xtask oci-validate`.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// The runtime to validate [default: mydocker's static release build, as `cargo xtask static` makes it]
    #[arg(long, value_name = "PATH")]
    pub runtime: Option<PathBuf>,
    /// Run only programs whose name contains one of these (repeatable)
    #[arg(long = "program", value_name = "FILTER")]
    pub programs: Vec<String>,
    /// Seconds each program may run before it is killed and counted as timed out
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Where the table (report.md) and each program's output go [default: target/oci-validate]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// How one program ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub program: String,
    pub ok: usize,
    pub not_ok: usize,
    pub ended: Ending,
    /// Cgroups of the suite's that the runtime left after the program, and
    /// whether each could be removed since.
    pub left_behind: Vec<(PathBuf, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It printed its plan or assertions and exited.
    Finished,
    /// It printed no TAP line at all and failed (a skipped class, or it
    /// could not start).
    NoTap,
    /// It printed no TAP line and exited 0: the programs named `*_fail`
    /// check only that the runtime refuses their configuration, and end
    /// this way when it does (they exit 1 when it does not).
    Refused,
    /// It ran past the time limit and was killed.
    TimedOut,
}

impl Outcome {
    /// runc's column in OCI.md: pass, fail, no TAP output (or timed out).
    pub fn verdict(&self) -> &'static str {
        match (self.ended, self.not_ok) {
            (Ending::TimedOut, _) => "timed out",
            (_, 1..) => "fail",
            (Ending::NoTap, 0) => "no TAP output",
            (Ending::Refused, 0) => "refused, as it requires",
            (Ending::Finished, 0) if self.ok > 0 => "pass",
            (Ending::Finished, 0) => "no TAP output",
        }
    }
}

/// The programs runc 1.1.5 passes on this machine kind (`../shared/OCI.md`).
pub const RUNC_PASSES: [&str; 29] = [
    "config_updates_without_affect",
    "create",
    "default",
    "delete_only_create_resources",
    "delete_resources",
    "hostname",
    "kill",
    "kill_no_effect",
    "killsig",
    "linux_cgroups_cpus",
    "linux_cgroups_pids",
    "linux_cgroups_relative_cpus",
    "linux_cgroups_relative_pids",
    "linux_devices",
    "linux_masked_paths",
    "linux_ns_itype",
    "linux_ns_nopath",
    "linux_ns_path",
    "linux_ns_path_type",
    "linux_readonly_paths",
    "linux_sysctl",
    "linux_uid_mappings",
    "mounts",
    "process",
    "process_capabilities_fail",
    "process_oom_score_adj",
    "process_user",
    "root_readonly_true",
    "state",
];

/// runc's `not ok` total on this machine kind.
pub const RUNC_NOT_OK: usize = 32;

/// The validation goal of issue 16: every program runc passes passes (for
/// `process_capabilities_fail`, runc's pass is only the count: the
/// container it should have refused ran its inner checks, and the program
/// itself exits 1; mydocker's refusal is the program's own success), at
/// most [`RUNC_NOT_OK`] assertions fail, and no cgroup is left behind.
pub fn gate(outcomes: &[Outcome]) -> Result<(), String> {
    let mut problems = Vec::new();
    for program in RUNC_PASSES {
        let Some(o) = outcomes.iter().find(|o| o.program == program) else {
            problems.push(format!("{program} did not run"));
            continue;
        };
        // Only a program whose one check is a refusal may end that way.
        let refusal_passes = program.ends_with("_fail") && o.ended == Ending::Refused;
        if o.verdict() != "pass" && !(refusal_passes && o.not_ok == 0) {
            problems.push(format!(
                "{program}: {} ({} ok, {} not ok)",
                o.verdict(),
                o.ok,
                o.not_ok
            ));
        }
    }
    let not_ok: usize = outcomes.iter().map(|o| o.not_ok).sum();
    if not_ok > RUNC_NOT_OK {
        problems.push(format!(
            "{not_ok} assertions not ok, runc has {RUNC_NOT_OK}"
        ));
    }
    for o in outcomes.iter().filter(|o| !o.left_behind.is_empty()) {
        problems.push(format!(
            "{} left {} cgroup(s) behind",
            o.program,
            o.left_behind.len()
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the validation goal is missed: {}",
            problems.join("; ")
        ))
    }
}

/// Builds the suite if needed, runs it and writes the report.
pub fn run(options: &Options) -> Result<Vec<Outcome>, String> {
    let runtime = match &options.runtime {
        Some(path) => {
            std::fs::canonicalize(path).map_err(|e| format!("--runtime {}: {e}", path.display()))?
        }
        None => crate::guest::build_static_mydocker()?,
    };
    let tree = build()?;
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| crate::target_dir().join("oci-validate"));
    std::fs::create_dir_all(&out).map_err(|e| format!("create {}: {e}", out.display()))?;
    // Whatever an earlier run left is no evidence for this one.
    for old in std::fs::read_dir(&out).map_err(|e| format!("read {}: {e}", out.display()))? {
        let old = old.map_err(|e| e.to_string())?.path();
        if old.extension().is_some_and(|e| e == "tap") {
            let _ = std::fs::remove_file(old);
        }
    }
    let programs = programs(&tree)?;
    let chosen: Vec<_> = programs
        .iter()
        .filter(|(name, _)| {
            options.programs.is_empty() || options.programs.iter().any(|f| name.contains(f))
        })
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "no validation program matches {:?}: the names are {}",
            options.programs,
            programs
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let mut outcomes = Vec::new();
    for (name, path) in chosen {
        let outcome = run_one(
            &tree,
            path,
            name,
            &runtime,
            Duration::from_secs(options.timeout),
            &out,
        )?;
        eprintln!(
            "xtask: {name}: {} ok, {} not ok, {}",
            outcome.ok,
            outcome.not_ok,
            outcome.verdict()
        );
        if !outcome.left_behind.is_empty() {
            // One line: which paths, in how many hierarchies.
            let stuck = outcome
                .left_behind
                .iter()
                .filter(|(_, removed)| !removed)
                .count();
            let mut paths: Vec<String> = outcome
                .left_behind
                .iter()
                .filter_map(|(d, _)| d.strip_prefix("/sys/fs/cgroup").ok())
                .filter_map(|d| {
                    d.iter()
                        .skip(1)
                        .collect::<PathBuf>()
                        .to_str()
                        .map(String::from)
                })
                .collect();
            paths.sort();
            paths.dedup();
            eprintln!(
                "xtask: {name} left {} cgroup directories behind ({}), {} of them could not be removed",
                outcome.left_behind.len(),
                paths.join(", "),
                stuck
            );
        }
        outcomes.push(outcome);
    }
    let table = table(&runtime, &outcomes);
    let report = out.join("report.md");
    std::fs::write(&report, &table).map_err(|e| format!("write {}: {e}", report.display()))?;
    println!("{table}");
    eprintln!("xtask: report in {}", report.display());
    Ok(outcomes)
}

/// Unpacks and builds the suite under `target/runtime-tools`, once: returns
/// the source tree, where the programs must run from.
pub fn build() -> Result<PathBuf, String> {
    let workspace = crate::workspace_root();
    let tarball = workspace.join(TARBALL);
    let expected = std::fs::read_to_string(workspace.join(CHECKSUM))
        .map_err(|e| format!("read {CHECKSUM}: {e}"))?;
    let expected = expected.split_whitespace().next().unwrap_or_default();
    let actual = crate::sha256_of(&tarball)?;
    if actual != expected {
        return Err(format!(
            "{TARBALL} has SHA-256 {actual}, expected {expected}: the vendored copy is damaged; restore it from git"
        ));
    }
    let base = crate::target_dir().join("runtime-tools");
    let tree = base.join(format!("runtime-tools-{}", &expected[..12]));
    let stamp = tree.join(".built");
    if stamp.exists() {
        return Ok(tree);
    }
    crate::prereq::ensure_package("golang-go", "/usr/bin/go")?;
    crate::prereq::ensure_package("make", "/usr/bin/make")?;
    let _ = std::fs::remove_dir_all(&tree);
    std::fs::create_dir_all(&tree).map_err(|e| format!("create {}: {e}", tree.display()))?;
    let status = Command::new("tar")
        .args(["-xzf"])
        .arg(&tarball)
        .args(["--strip-components=1", "-C"])
        .arg(&tree)
        .status()
        .map_err(|e| format!("run tar: {e}"))?;
    if !status.success() {
        return Err(format!("tar could not unpack {TARBALL}: {status}"));
    }
    eprintln!("xtask: building runtime-tools' validation programs with Go (about 30 s)");
    let status = Command::new("make")
        .args(["runtimetest", "validation-executables"])
        .current_dir(&tree)
        // Everything comes from the tarball's vendor/: no network, no cgo.
        .env("GOFLAGS", "-mod=vendor -buildvcs=false")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "0")
        .env("GOCACHE", base.join("go-cache"))
        .env("GOPATH", base.join("go-path"))
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("run make: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building runtime-tools failed ({status}); its output is above"
        ));
    }
    std::fs::write(&stamp, "").map_err(|e| format!("write {}: {e}", stamp.display()))?;
    Ok(tree)
}

/// Every validation program in the tree, by name, sorted.
fn programs(tree: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let dir = tree.join("validation");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("read {}: {e}", dir.display()))?;
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let program = e.path().join(format!("{name}.t"));
            program.is_file().then_some((name, program))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(format!("{} holds no validation program", dir.display()));
    }
    Ok(found)
}

/// Runs one program with `RUNTIME` set, from the tree's root, killing its
/// whole process group once `limit` has passed.
///
/// Each program runs in a mount namespace of its own, made private: some
/// ask for shared rootfs propagation, and a runtime that honours it (runc
/// does) would otherwise leave the container's `/proc`, `/sys` and `/dev`
/// mounted on the host under the bundle. Its bundles go to a temporary
/// directory of ours, removed after it.
fn run_one(
    tree: &Path,
    program: &Path,
    name: &str,
    runtime: &Path,
    limit: Duration,
    out: &Path,
) -> Result<Outcome, String> {
    use std::os::unix::process::CommandExt;
    let log = out.join(format!("{name}.tap"));
    let file = std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let scratch = out.join("tmp");
    let cgroups_before = suite_cgroups();
    std::fs::create_dir_all(&scratch).map_err(|e| format!("create {}: {e}", scratch.display()))?;
    let mut command = Command::new(program);
    command
        .current_dir(tree)
        .env("RUNTIME", runtime)
        .env("TMPDIR", &scratch)
        // mydocker's containers go to a store of the run's, not the host's.
        .env("MYDOCKER_ROOT", scratch.join("state"))
        .stdin(Stdio::null())
        .stdout(file.try_clone().map_err(|e| e.to_string())?)
        .stderr(file)
        .process_group(0);
    // SAFETY: unshare and mount are plain system calls, safe after fork.
    unsafe {
        command.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            let root = c"/".as_ptr();
            if libc::mount(
                std::ptr::null(),
                root,
                std::ptr::null(),
                flags,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .map_err(|e| format!("run {}: {e}", program.display()))?;
    let started = Instant::now();
    let (timed_out, exited_0) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (false, status.success()),
            Ok(None) if started.elapsed() >= limit => {
                // SAFETY: signals the process group the child leads.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break (true, false);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("wait for {name}: {e}")),
        }
    };
    // The namespace, and every mount in it, died with the program.
    let _ = std::fs::remove_dir_all(&scratch);
    let left_behind = sweep_cgroups(&cgroups_before);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let (ok, not_ok, tap) = count(&text);
    Ok(Outcome {
        program: name.to_owned(),
        ok,
        not_ok,
        left_behind,
        ended: match (timed_out, tap, exited_0) {
            (true, _, _) => Ending::TimedOut,
            (false, true, _) => Ending::Finished,
            (false, false, true) => Ending::Refused,
            (false, false, false) => Ending::NoTap,
        },
    })
}

/// The cgroups the suite's configurations name (`cgroups/cgroups.go`): an
/// absolute `/cgrouptest`, and `testdir/cgrouptest/container` relative to
/// the runtime's own cgroup, which for a runtime run from the root is the
/// hierarchy's root.
const SUITE_CGROUPS: [&str; 2] = ["cgrouptest", "testdir"];

/// The suite's cgroup directories that exist now, in every hierarchy (the
/// cgroup2 root itself included), each once however many links lead to it.
fn suite_cgroups() -> std::collections::BTreeSet<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_owned()];
    if let Ok(entries) = std::fs::read_dir(root) {
        hierarchies.extend(entries.filter_map(|e| e.ok()).map(|e| e.path()));
    }
    let mut found = Vec::new();
    for hierarchy in hierarchies {
        for name in SUITE_CGROUPS {
            let top = hierarchy.join(name);
            if top.is_dir() {
                collect_dirs(&top, &mut found);
            }
        }
    }
    found
        .into_iter()
        .filter_map(|d| d.canonicalize().ok())
        .collect()
}

/// Removes the suite's cgroups that appeared since `before`, deepest first,
/// and returns them with whether each could be removed. Only those: a
/// directory of that name that was there before is not ours to touch.
fn sweep_cgroups(before: &std::collections::BTreeSet<PathBuf>) -> Vec<(PathBuf, bool)> {
    let mut new: Vec<PathBuf> = suite_cgroups().difference(before).cloned().collect();
    new.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    new.into_iter()
        .map(|dir| {
            // One that still holds a process stays, and is reported so.
            let removed = std::fs::remove_dir(&dir).is_ok();
            (dir, removed)
        })
        .collect()
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    out.push(dir.to_owned());
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&entry.path(), out);
            }
        }
    }
}

/// Counts TAP assertions: (`ok`, `not ok`, whether any TAP line appeared).
pub fn count(text: &str) -> (usize, usize, bool) {
    let (mut ok, mut not_ok, mut tap) = (0, 0, false);
    for line in text.lines() {
        if line.starts_with("not ok") {
            not_ok += 1;
            tap = true;
        } else if line.starts_with("ok") {
            ok += 1;
            tap = true;
        } else if line.starts_with("1..") || line.starts_with("TAP version") {
            tap = true;
        }
    }
    (ok, not_ok, tap)
}

/// The report: one row a program, then the totals.
pub fn table(runtime: &Path, outcomes: &[Outcome]) -> String {
    let mut text = format!(
        "# runtime-tools validation of {}\n\n| program | ok | not ok | result | cgroups left behind |\n|---|--:|--:|---|--:|\n",
        runtime.display()
    );
    for o in outcomes {
        text += &format!(
            "| {} | {} | {} | {} | {} |\n",
            o.program,
            o.ok,
            o.not_ok,
            o.verdict(),
            o.left_behind.len()
        );
    }
    let passing = outcomes.iter().filter(|o| o.verdict() == "pass").count();
    let refused = outcomes
        .iter()
        .filter(|o| o.ended == Ending::Refused)
        .count();
    let failing = outcomes.iter().filter(|o| o.not_ok > 0).count();
    let (ok, not_ok): (usize, usize) = outcomes
        .iter()
        .fold((0, 0), |(a, b), o| (a + o.ok, b + o.not_ok));
    let refused = match refused {
        0 => String::new(),
        n => format!(", {n} end refused as they require"),
    };
    text += &format!(
        "\n{} programs: {passing} pass every assertion{refused}, {failing} have a `not ok`; {ok} assertions ok, {not_ok} not ok.\n",
        outcomes.len()
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_lines_are_counted_and_prose_is_not() {
        let text = "TAP version 13\nok 1 - create\nnot ok 2 - start\n# ok in a comment\n  ok indented is a subtest\n1..2\n";
        assert_eq!(count(text), (1, 1, true));
        assert_eq!(count("panic: no runtime\n"), (0, 0, false));
    }

    #[test]
    fn the_gate_holds_runc_passes_refusals_and_the_total() {
        let finished = |program: &str, ok, not_ok| Outcome {
            program: program.into(),
            ok,
            not_ok,
            ended: Ending::Finished,
            left_behind: Vec::new(),
        };
        let mut outcomes: Vec<Outcome> = RUNC_PASSES.iter().map(|p| finished(p, 3, 0)).collect();
        assert_eq!(gate(&outcomes), Ok(()));
        let refusal = RUNC_PASSES
            .iter()
            .position(|p| *p == "process_capabilities_fail")
            .unwrap();
        outcomes[refusal] = Outcome {
            ended: Ending::Refused,
            ..finished("process_capabilities_fail", 0, 0)
        };
        assert_eq!(gate(&outcomes), Ok(()), "its refusal is its pass");
        outcomes[refusal].ended = Ending::NoTap;
        assert!(gate(&outcomes)
            .unwrap_err()
            .contains("process_capabilities_fail: no TAP output"));
        outcomes[refusal].ended = Ending::Refused;
        outcomes[0].ended = Ending::Refused;
        outcomes[0].ok = 0;
        assert!(
            gate(&outcomes).unwrap_err().contains("refused"),
            "a program not named *_fail passes only by its assertions"
        );
        outcomes[0] = finished(RUNC_PASSES[0], 3, 0);
        outcomes[1].not_ok = 1;
        assert!(gate(&outcomes).unwrap_err().contains("create: fail"));
        outcomes[1].not_ok = 0;
        outcomes.push(finished("hooks_stdin", 0, RUNC_NOT_OK + 1));
        assert!(gate(&outcomes).unwrap_err().contains("not ok, runc has"));
        outcomes.pop();
        outcomes[0]
            .left_behind
            .push((PathBuf::from("/sys/fs/cgroup/x"), true));
        assert!(gate(&outcomes).unwrap_err().contains("left 1 cgroup"));
    }

    #[test]
    fn verdicts_follow_oci_md() {
        let outcome = |ok, not_ok, ended| Outcome {
            program: "p".into(),
            ok,
            not_ok,
            ended,
            left_behind: Vec::new(),
        };
        assert_eq!(outcome(3, 0, Ending::Finished).verdict(), "pass");
        assert_eq!(outcome(3, 1, Ending::Finished).verdict(), "fail");
        assert_eq!(outcome(0, 0, Ending::NoTap).verdict(), "no TAP output");
        assert_eq!(
            outcome(0, 0, Ending::Refused).verdict(),
            "refused, as it requires"
        );
        assert_eq!(outcome(0, 0, Ending::Finished).verdict(), "no TAP output");
        assert_eq!(outcome(5, 0, Ending::TimedOut).verdict(), "timed out");
        let table = table(
            Path::new("/rt"),
            &[
                outcome(3, 0, Ending::Finished),
                outcome(2, 2, Ending::Finished),
            ],
        );
        assert!(table.contains(
            "2 programs: 1 pass every assertion, 1 have a `not ok`; 5 assertions ok, 2 not ok."
        ));
    }
}
