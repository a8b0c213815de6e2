//! `cargo xtask vm-test run` for real: each test boots Debian's 6.12 under
//! QEMU (about 9 s a boot under TCG on this machine kind, with the kernel
//! cached and the guest binaries built) and runs a static command in it.
//! Ignored in a plain `cargo test`; `cargo xtask ci` runs them with
//! `--ignored`, after its matrix has downloaded the kernel.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

const KERNEL: &str = "debian-6.12";

/// One boot at a time: a fresh machine's first run downloads and unpacks
/// the kernel, which two runs must not do at once.
static BOOT: Mutex<()> = Mutex::new(());

/// `cargo xtask vm-test run --kernel KERNEL --out DIR -- command...`.
fn vm_run(name: &str, command: &[&str]) -> Output {
    let _one = BOOT.lock().unwrap_or_else(|e| e.into_inner());
    let out = xtask::target_dir().join(format!("vm-test-run-{name}"));
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["vm-test", "run", "--kernel", KERNEL, "--out"])
        .arg(&out)
        .arg("--")
        .args(command)
        .output()
        .expect("run xtask");
    eprintln!(
        "xtask ended with {}; its stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn busybox() -> &'static str {
    xtask::prereq::ensure_package("busybox-static", xtask::rootfs::BUSYBOX).unwrap();
    xtask::rootfs::BUSYBOX
}

#[test]
#[ignore = "boots a QEMU guest (about 10 s under TCG); `cargo xtask ci` runs it"]
fn the_commands_output_streams_back_and_its_exit_code_is_xtasks() {
    let script = r#"echo "out: [$0] $#"; echo "err: bad" >&2; cat /sys/fs/cgroup/cgroup.subtree_control; exit 3"#;
    let output = vm_run("exit3", &[busybox(), "sh", "-c", script, "a  'b'", ""]);
    assert_eq!(output.status.code(), Some(3));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut lines = stdout.lines();
    // The arguments arrive as they were given, spaces, quotes and all.
    assert_eq!(lines.next(), Some("out: [a  'b'] 1"), "{stdout}");
    // cgroup v2 by default, with the controllers a cell enables for the runtime.
    let controllers = lines.next().unwrap_or_default();
    for controller in ["cpu", "memory", "pids"] {
        assert!(controllers.contains(controller), "{stdout}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.lines().any(|l| l == "err: bad"), "{stderr}");
}

#[test]
#[ignore = "boots a QEMU guest (about 10 s under TCG); `cargo xtask ci` runs it"]
fn the_static_probe_runner_lists_the_probes_and_exits_0() {
    let runner = xtask::guest::build_all()
        .unwrap()
        .into_iter()
        .find(|p| p.ends_with(xtask::guest::PROBE_RUNNER))
        .unwrap();
    let output = vm_run("list", &[path(&runner), "list"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), probes::PROBES.len(), "{stdout}");
    assert!(stdout.starts_with("pid.view "), "{stdout}");
    assert!(stdout.contains("\ncgroup.kill "), "{stdout}");
}

#[test]
fn a_dynamic_command_is_refused_before_any_boot() {
    // This test binary is linked dynamically.
    let me: PathBuf = std::env::current_exe().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["vm-test", "run", "--kernel", KERNEL, "--"])
        .arg(&me)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("xtask: ") && stderr.contains(&*me.to_string_lossy()),
        "{stderr}"
    );
    assert!(stderr.contains("dynamically"), "{stderr}");
    assert!(output.stdout.is_empty());
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn a_selftest_suite_that_is_not_a_directory_name_is_refused_before_anything_runs() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["vm-test", "--kselftest", "cgroup,../etc"])
        .output()
        .expect("run xtask");
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains("\"../etc\" is not a selftests directory's name"),
        "{stderr}"
    );
    assert!(
        first.contains("cgroup, timens, pidfd, mount_setattr"),
        "{stderr}"
    );
}

#[test]
fn selftests_under_a_mutation_are_refused_before_anything_runs() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "vm-test",
            "--kselftest",
            "cgroup",
            "--mutation",
            "skip-uts-ns",
        ])
        .output()
        .expect("run xtask");
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--kselftest") && stderr.contains("--mutation"),
        "{stderr}"
    );
}
