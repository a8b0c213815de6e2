//! Confinement end to end: capabilities, masked `/proc`, no_new_privs,
//! seccomp and the read-only rootfs, as the container sees them, and the
//! flags that change each.

mod common;

use common::{rootfs, Harness};

fn r() -> &'static str {
    rootfs().to_str().unwrap()
}

/// The value of one line of `/proc/self/status` inside a container run with `flags`.
fn status(h: &Harness, flags: &[&str], field: &str) -> String {
    let mut args = flags.to_vec();
    args.extend([r(), "grep", field, "/proc/self/status"]);
    let run = h.run(&args);
    run.expect_code(0);
    let stdout = run.stdout();
    let (_, value) = stdout
        .lines()
        .find_map(|l| l.split_once(':').filter(|(k, _)| *k == field))
        .unwrap_or_else(|| panic!("no {field} in {stdout:?}"));
    value.trim().to_owned()
}

/// docker's fourteen default capabilities as a `/proc/self/status` mask.
const DOCKER_DEFAULT: &str = "00000000a80425fb";

#[test]
fn cap_add_and_cap_drop_change_the_set_as_in_docker() {
    let h = Harness::new();
    let only_bind = ["--cap-drop", "ALL", "--cap-add", "net_bind_service"];
    assert_eq!(status(&h, &only_bind, "CapBnd"), "0000000000000400");
    // CAP_SYS_ADMIN is bit 21.
    let admin = status(&h, &["--cap-add", "CAP_SYS_ADMIN"], "CapEff");
    assert_eq!(admin, format!("{:016x}", 0xa80425fbu64 | 1 << 21));
    let no_chown = status(&h, &["--cap-drop", "chown"], "CapEff");
    assert_eq!(no_chown, format!("{:016x}", 0xa80425fbu64 & !1));
}

#[test]
fn privileged_keeps_every_capability_and_installs_no_filter() {
    let h = Harness::new();
    let ours = std::fs::read_to_string("/proc/self/status").unwrap();
    let our_bounding = ours
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(status(&h, &["--privileged"], "CapBnd"), our_bounding);
    assert_eq!(status(&h, &["--privileged"], "Seccomp"), "0");
    let timer_list = h.run(&["--privileged", r(), "sh", "-c", "wc -c < /proc/timer_list"]);
    assert_ne!(timer_list.expect_code(0).stdout().trim(), "0");
}

#[test]
fn security_opt_turns_no_new_privs_and_seccomp_off_each_alone() {
    // That both are on by default is the probes' (sec.no_new_privs,
    // sec.seccomp); here, that each flag reaches the kernel.
    let h = Harness::new();
    let nnp_off = ["--security-opt", "no-new-privileges=false"];
    assert_eq!(status(&h, &nnp_off, "NoNewPrivs"), "0");
    // Without no_new_privs the filter still goes in (while init holds CAP_SYS_ADMIN).
    assert_eq!(status(&h, &nnp_off, "Seccomp"), "2");
    let unconfined = ["--security-opt", "seccomp=unconfined"];
    assert_eq!(status(&h, &unconfined, "Seccomp"), "0");
}

#[test]
fn cap_add_sys_admin_lifts_the_filters_mount_ban_as_in_docker() {
    // docker's filter allows mount only to a container that holds
    // CAP_SYS_ADMIN; --cap-add must reach the filter as well as the sets.
    let h = Harness::new();
    let script = "mkdir -p /m && mount -t tmpfs t /m && echo mounted";
    let run = h.run(&["--cap-add", "SYS_ADMIN", r(), "sh", "-c", script]);
    assert_eq!(run.expect_code(0).stdout(), "mounted\n");
}

#[test]
fn read_only_keeps_the_root_read_only_but_tmp_and_run_writable() {
    let h = Harness::new();
    let run = h.run(&["--read-only", r(), "sh", "-c", "touch /f"]);
    assert_ne!(run.code(), 0);
    assert!(
        run.stderr().contains("Read-only file system"),
        "{}",
        run.stderr()
    );
    h.run(&["--read-only", r(), "sh", "-c", "touch /tmp/f /run/f"])
        .expect_code(0);
    // Without the flag the same write lands in the container's upper layer.
    h.run(&[r(), "touch", "/f"]).expect_code(0);
}

#[test]
fn bad_security_flags_are_refused_with_the_value_named() {
    for (flags, mention) in [
        (&["--cap-add", "NET_ADMINN"][..], "NET_ADMINN"),
        (&["--cap-drop", "bogus"][..], "bogus"),
        (
            &["--security-opt", "apparmor=unconfined"][..],
            "apparmor=unconfined",
        ),
        (&["--security-opt", "no-new-privileges=maybe"][..], "maybe"),
        (
            &["--security-opt", "seccomp=/etc/profile.json"][..],
            "profile files are not supported",
        ),
    ] {
        let h = Harness::new();
        let mut args = flags.to_vec();
        args.extend([r(), "true"]);
        let run = h.run(&args);
        run.expect_code(125);
        let stderr = run.stderr();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(mention),
            "{stderr:?} does not mention {mention:?}"
        );
    }
}

#[test]
fn exec_gets_the_containers_confinement_not_the_callers() {
    let h = Harness::new();
    let status_in = |name: &str| {
        let run = h.cli(&[
            "exec",
            name,
            "grep",
            "-E",
            "CapEff|NoNewPrivs|Seccomp:",
            "/proc/self/status",
        ]);
        run.expect_code(0);
        run.stdout()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let start = |name: &str, flags: &[&str]| {
        let mut args = vec![
            "run",
            "-d",
            "--cgroup-parent",
            &h.cgroup_parent,
            "--name",
            name,
        ];
        args.extend_from_slice(flags);
        args.extend([r(), "sleep", "30"]);
        h.cli(&args).expect_code(0);
    };
    start("confined", &[]);
    assert_eq!(
        status_in("confined"),
        format!("CapEff: {DOCKER_DEFAULT} NoNewPrivs: 1 Seccomp: 2")
    );
    start(
        "loose",
        &["--privileged", "--security-opt", "no-new-privileges=false"],
    );
    assert!(status_in("loose").ends_with("NoNewPrivs: 0 Seccomp: 0"));
    h.cli(&["rm", "-f", "confined", "loose"]).expect_code(0);
}

#[test]
fn masks_hold_when_the_image_makes_proc_a_symlink() {
    // An image is untrusted: with /proc -> /xproc, masks joined to the root
    // by name would land on the host's side of the link and miss.
    let image = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .args(["-a", &format!("{}/.", r())])
        .arg(image.path())
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::remove_dir(image.path().join("proc")).unwrap();
    std::os::unix::fs::symlink("/xproc", image.path().join("proc")).unwrap();
    let h = Harness::new();
    let run = h.run(&[
        image.path().to_str().unwrap(),
        "sh",
        "-c",
        "wc -c < /proc/timer_list; echo x > /proc/sys/kernel/hostname",
    ]);
    assert_ne!(run.code(), 0);
    assert_eq!(run.stdout().trim(), "0", "{}", run.stderr());
    assert!(
        run.stderr().contains("Read-only file system"),
        "{}",
        run.stderr()
    );
    assert!(!std::path::Path::new("/xproc").exists());
}
