//! The README's docker session, run exactly as it is written there: if a
//! command, a flag or an output it shows stops working, this fails.

mod common;

use std::process::Command;

use common::{rootfs, tarball, Harness};

/// The indented block between the README's session markers, unindented.
fn session() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read README.md");
    let start = readme
        .find("<!-- session: begin -->")
        .expect("the README marks where its session begins");
    let end = readme
        .find("<!-- session: end -->")
        .expect("the README marks where its session ends");
    readme[start..end]
        .lines()
        .skip(1)
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_readme_session_runs_as_written() {
    let h = Harness::new();
    rootfs();
    let cwd = tempfile::tempdir().unwrap();
    let made = tarball(cwd.path());
    std::fs::rename(&made, cwd.path().join("busybox.tgz")).unwrap();
    let script = session();
    assert!(script.contains("mydocker run -d"), "{script}");
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_mydocker"))
        .parent()
        .unwrap()
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(cwd.path())
        .env("PATH", path)
        .env("MYDOCKER_ROOT", h.state_root.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    // What a reader would see at each step.
    let id = stdout
        .lines()
        .nth(1)
        .expect("run -d prints the id")
        .to_owned();
    assert_eq!(id.len(), 64, "{stdout}");
    assert!(stdout.contains("Up "), "ps: {stdout}");
    assert!(stdout.contains("MEM USAGE / LIMIT"), "stats: {stdout}");
    assert!(stdout.contains("/ 64MiB"), "stats: {stdout}");
    assert!(
        stdout.contains("(Paused)"),
        "ps --filter status=paused: {stdout}"
    );
    // Written before the restart, read after it: the same container.
    assert!(stdout.contains("hello\n"), "cp: {stdout}");
    assert!(stdout.contains(" UTC "), "logs: {stdout}");
    assert!(stderr.is_empty(), "{stderr}");
    // Nothing of the container is left: no record, and no cgroup (it used
    // the default parent, which goes with its last container).
    assert!(h.state_files().is_empty(), "{:?}", h.state_files());
    for hierarchy in common::cgroup_hierarchies() {
        let leaf = hierarchy.join("mydocker").join(&id);
        assert!(!leaf.exists(), "{} was left", leaf.display());
    }
}

#[test]
fn help_reads_like_dockers() {
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_mydocker"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let top = help(&["--help"]);
    assert!(
        top.starts_with("Usage:  mydocker [OPTIONS] COMMAND\n"),
        "{top}"
    );
    let headings: Vec<&str> = top.lines().filter(|l| l.ends_with("Commands:")).collect();
    assert_eq!(
        headings,
        ["Common Commands:", "Management Commands:", "Commands:"]
    );
    for command in ["run", "ps", "stats", "update", "cp", "pause", "network"] {
        assert!(
            top.lines().any(|l| l.starts_with(&format!("  {command} "))),
            "{command} missing:\n{top}"
        );
    }
    // As docker, no command at all is a request for help.
    assert_eq!(help(&[]), top);
    let run = help(&["run", "--help"]);
    assert!(run.starts_with("Usage:  mydocker run [OPTIONS]"), "{run}");
    assert!(run.contains("--user") && run.contains("--init"), "{run}");
}
