//! Bad input: a one-line error that names the value, exit code 125, and
//! nothing left behind (the harness checks cgroups, mounts and state).

mod common;

use std::os::unix::process::CommandExt;

use common::{rootfs, Harness};

fn r() -> &'static str {
    rootfs().to_str().unwrap()
}

/// Runs `args`, expecting docker's runtime-error code and a single line on
/// stderr that contains every one of `mentions`.
#[track_caller]
fn refused(args: &[&str], mentions: &[&str]) {
    let h = Harness::new();
    let run = h.run(args);
    run.expect_code(125);
    let stderr = run.stderr();
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected one line, got:\n{stderr}"
    );
    assert!(stderr.starts_with("mydocker: "), "{stderr}");
    for mention in mentions {
        assert!(
            stderr.contains(mention),
            "{stderr:?} does not mention {mention:?}"
        );
    }
    assert!(run.stdout().is_empty());
}

#[test]
fn a_missing_rootfs() {
    refused(
        &["/no/such/rootfs", "true"],
        &["\"/no/such/rootfs\"", "does not exist", "directory"],
    );
}

#[test]
fn a_rootfs_that_is_a_file() {
    refused(
        &["/etc/hostname", "true"],
        &["\"/etc/hostname\"", "is not a directory"],
    );
}

#[test]
fn no_command() {
    refused(&[r()], &["no command given", "the rootfs directory"]);
}

#[test]
fn memory_sizes_that_do_not_parse_or_are_too_small() {
    refused(
        &["-m", "12q", r(), "true"],
        &["--memory", "\"12q\"", "512m"],
    );
    refused(
        &["-m", "1m", r(), "true"],
        &["--memory", "\"1MiB\"", "minimum is 6MiB"],
    );
    refused(
        &["-m", "64m", "--memory-swap", "32m", r(), "true"],
        &["--memory-swap", "\"32MiB\"", "at least --memory"],
    );
    refused(
        &["--memory-swap", "1g", r(), "true"],
        &["--memory-swap", "set --memory too"],
    );
}

#[test]
fn cpus_out_of_range() {
    refused(
        &["--cpus", "0", r(), "true"],
        &["--cpus", "\"0\"", "greater than 0"],
    );
    refused(&["--cpus", "-1", r(), "true"], &["-1"]);
    // The runtime counts online CPUs, not this process's affinity or quota.
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let online = runtime::parse::IdSet::parse("online", online.trim()).unwrap();
    let too_many = (online.0.len() + 1).to_string();
    refused(
        &["--cpus", &too_many, r(), "true"],
        &["--cpus", &format!("\"{too_many}\""), "this machine has"],
    );
    refused(&["--cpus", "lots", r(), "true"], &["\"lots\""]);
}

#[test]
fn cpusets_naming_cpus_or_nodes_that_do_not_exist() {
    refused(
        &["--cpuset-cpus", "0,999", r(), "true"],
        &["--cpuset-cpus", "\"0,999\"", "999 not online"],
    );
    refused(
        &["--cpuset-mems", "63", r(), "true"],
        &["--cpuset-mems", "\"63\"", "memory nodes"],
    );
    refused(
        &["--cpuset-cpus", "1-0", r(), "true"],
        &["\"1-0\"", "0-3,5"],
    );
}

#[test]
fn a_zero_pids_limit() {
    refused(
        &["--pids-limit", "0", r(), "true"],
        &["--pids-limit", "\"0\"", "at least 1"],
    );
}

#[test]
fn an_env_without_equals() {
    refused(
        &["-e", "JUSTKEY", r(), "true"],
        &["\"JUSTKEY\"", "KEY=VALUE"],
    );
}

#[test]
fn an_unknown_option() {
    refused(&["--frobnicate", r(), "true"], &["--frobnicate"]);
}

#[test]
fn a_bad_hostname_or_workdir() {
    refused(
        &["--hostname", "no_underscores", r(), "true"],
        &["--hostname", "\"no_underscores\""],
    );
    refused(
        &["-w", "relative/dir", r(), "true"],
        &["--workdir", "\"relative/dir\"", "absolute"],
    );
}

#[test]
fn running_as_an_ordinary_user() {
    let h = Harness::new();
    let output = h
        .command(&[r(), "true"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(125), "{stderr}");
    assert!(stderr.contains("uid 65534 is not root"), "{stderr}");
    assert!(stderr.contains("--userns=auto"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_failure_inside_init_is_reported_and_cleaned_up() {
    // The workdir cannot be created under a regular file: init fails after
    // clone, with the cgroup and state already in place, and must undo both.
    refused(
        &["-w", "/etc/passwd/sub", r(), "true"],
        &["/etc/passwd/sub", "Not a directory"],
    );
}

#[test]
fn run_flags_the_audit_found_untested() {
    refused(
        &["--pids-limit", "-2", r(), "true"],
        &["--pids-limit", "\"-2\""],
    );
    refused(
        &["--cpu-shares", "1", r(), "true"],
        &["--cpu-shares", "\"1\""],
    );
    refused(
        &["--name", "no spaces", r(), "true"],
        &["--name", "\"no spaces\""],
    );
    refused(
        &["-v", "/tmp:/a/../../etc", r(), "true"],
        &["--volume", "/a/../../etc"],
    );
    refused(
        &["--ip", "not-an-ip", "--network", "n", r(), "true"],
        &["--ip", "\"not-an-ip\""],
    );
    refused(&["-p", "80:80", r(), "true"], &["--network", "\"none\""]);
    refused(
        &["--network", "host", "--ip", "10.0.0.2", r(), "true"],
        &["--network", "\"host\""],
    );
}

#[test]
fn a_cgroup_parent_outside_the_runtimes_own_is_refused() {
    let h = Harness::new();
    for parent in ["/abs", "a/../b", "a//b"] {
        h.refused(
            &["run", "--cgroup-parent", parent, r(), "true"],
            &format!("--cgroup-parent {parent:?}").replace("--cgroup-parent ", ""),
        );
    }
}

#[test]
fn ulimits_that_do_not_parse_or_cannot_be_set() {
    refused(
        &["--ulimit", "nofile=20:10", r(), "true"],
        &["\"nofile=20:10\""],
    );
    refused(&["--ulimit", "files=10", r(), "true"], &["\"files=10\""]);
    refused(
        &["--ulimit", "nofile=1", "--ulimit", "nofile=2", r(), "true"],
        &["\"nofile\"", "twice"],
    );
    // Parses, but is above fs.nr_open: init's setrlimit fails, after the
    // cgroup, the overlay and the mounts exist, and all of them go.
    refused(
        &["--ulimit", "nofile=2000000000", r(), "true"],
        &["nofile", "2000000000"],
    );
}

/// A state root that is full, then read-only: a tmpfs of 64 KiB in a mount
/// namespace of the test's own (`unshare`), so the machine's table is not
/// touched. The run fails with one line that names the root and the fix,
/// and leaves no container directory (the harness checks the cgroups).
#[test]
fn a_state_root_that_cannot_be_written_fails_the_run_and_leaves_nothing() {
    let h = Harness::new();
    let root = tempfile::tempdir().unwrap();
    let root = root.path().to_str().unwrap();
    let script = format!(
        r#"mount -t tmpfs -o size=64k tmpfs {root} || exit 99
        mkdir {root}/containers && touch {root}/containers/.lock
        dd if=/dev/zero of={root}/fill bs=4k count=64 2>/dev/null
        "$MYDOCKER" --root {root} run --rm --cgroup-parent {parent} -m 64m {rootfs} true 2>&1
        echo "exit $?"; ls -A {root}/containers
        rm {root}/fill && mount -o remount,ro {root}
        "$MYDOCKER" --root {root} run --rm --cgroup-parent {parent} -m 64m {rootfs} true 2>&1
        echo "exit $?"; ls -A {root}/containers"#,
        parent = h.cgroup_parent,
        rootfs = r(),
    );
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("MYDOCKER", env!("CARGO_BIN_EXE_mydocker"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "{text}");
    for (at, cause, fix) in [
        (0, "No space left on device", "free space there"),
        (3, "Read-only file system", "make it writable"),
    ] {
        assert!(
            lines[at].starts_with(&format!(
                "mydocker: the state root {root} cannot be written ({cause}"
            )) && lines[at].contains(fix),
            "{text}"
        );
        assert_eq!(lines[at + 1], "exit 125", "{text}");
        assert_eq!(
            lines[at + 2],
            ".lock",
            "no container directory is left: {text}"
        );
    }
}
