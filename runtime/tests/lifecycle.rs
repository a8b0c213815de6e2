//! Containers over their whole life: images, detached runs under a monitor,
//! ps, logs, exec, stop, commit, rm, volumes and the overlay. Every test
//! ends with nothing left: no cgroup, mount, record or layer (the harness
//! checks).

mod common;

use std::time::{Duration, Instant};

use common::{eventually, imported, rootfs, tarball, Harness};

#[test]
fn the_whole_lifecycle_from_import_to_rmi() {
    let h = Harness::new();
    imported(&h, "base");
    assert!(h.cli(&["images"]).stdout().contains("base"));

    let script = "echo started; echo to-stderr >&2; while :; do sleep 0.1; done";
    let run = h.run_kept(&["-d", "--name", "web", "base", "sh", "-c", script]);
    run.expect_code(0);
    let id = run.stdout().trim().to_owned();
    assert_eq!(id.len(), 64, "run -d prints the id: {id:?}");

    let ps = h.cli(&["ps"]).stdout();
    assert!(
        ps.contains("web") && ps.contains(&id[..12]) && ps.contains("Up "),
        "{ps}"
    );
    assert_eq!(h.cli(&["ps", "-q"]).stdout().trim(), id);

    eventually("the log to fill", || {
        h.cli(&["logs", "web"]).stdout().contains("to-stderr")
    });
    // stdout and stderr, interleaved in the order they were written.
    assert_eq!(h.cli(&["logs", "web"]).stdout(), "started\nto-stderr\n");
    assert_eq!(
        h.cli(&["logs", "--tail", "1", "web"]).stdout(),
        "to-stderr\n"
    );

    // exec joins every namespace: same hostname, sees the container's init as PID 1.
    let exec = h.cli(&[
        "exec",
        "-e",
        "EXTRA=yes",
        "web",
        "sh",
        "-c",
        "hostname; echo $EXTRA; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    exec.expect_code(0);
    assert!(
        exec.stdout()
            .starts_with(&format!("{}\nyes\nsh -c ", &id[..12])),
        "{}",
        exec.stdout()
    );
    h.cli(&["exec", &id[..12], "sh", "-c", "exit 3"])
        .expect_code(3);
    h.cli(&["exec", "web", "no-such-command"]).expect_code(127);
    h.cli(&["exec", "web", "sh", "-c", "echo from-exec > /made-inside"])
        .expect_code(0);
    // exec -i -t: what we type reaches the command through its terminal.
    let mut typing = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker"))
        .arg("--root")
        .arg(h.state_root.path())
        .args([
            "exec",
            "-i",
            "-t",
            "web",
            "sh",
            "-c",
            "read line; echo got-$line",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut typing.stdin.take().unwrap(), b"typed\n").unwrap();
    let typed = typing.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&typed.stdout).contains("got-typed"),
        "{}",
        String::from_utf8_lossy(&typed.stdout)
    );
    // The command joined the container's cgroups: inside the cgroup
    // namespace each one reads as the root.
    let cgroups = h.cli(&["exec", "web", "cat", "/proc/self/cgroup"]).stdout();
    assert!(
        cgroups
            .lines()
            .filter(|l| l.contains("memory") || l.contains("pids"))
            .all(|l| l.ends_with(":/")),
        "{cgroups}"
    );
    // exec -t: a terminal of the container's own devpts, relayed to us.
    let tty = h.cli(&[
        "exec",
        "-t",
        "web",
        "sh",
        "-c",
        "tty; [ -t 1 ] && echo is-a-tty",
    ]);
    assert!(
        tty.expect_code(0).stdout().starts_with("/dev/pts/"),
        "{}",
        tty.stdout()
    );
    assert!(tty.stdout().contains("is-a-tty"), "{}", tty.stdout());

    h.cli(&["commit", "web", "snapshot"]).expect_code(0);

    // sh as PID 1 ignores SIGTERM: stop must still end it, after the grace period.
    let started = Instant::now();
    h.cli(&["stop", "-t", "1", "web"]).expect_code(0);
    assert!(started.elapsed() >= Duration::from_secs(1));
    let ps = h.cli(&["ps", "-a"]).stdout();
    assert!(ps.contains("Exited (137)"), "{ps}");
    let inspect: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "--record", "web"]).stdout()).unwrap();
    assert_eq!(
        (inspect["status"].as_str(), inspect["exit_code"].as_i64()),
        (Some("exited"), Some(137))
    );
    h.cli(&["exec", "web", "true"]).expect_code(125);

    // An exited container commits as well as a running one.
    h.cli(&["commit", "web", "after-exit"]).expect_code(0);
    let again = h.run_kept(&["--rm", "after-exit", "cat", "/made-inside"]);
    assert_eq!(again.expect_code(0).stdout(), "from-exec\n");
    h.cli(&["rmi", "after-exit"]).expect_code(0);
    // The committed image holds what the container wrote, and its command.
    let from_snapshot = h.run_kept(&["--rm", "snapshot", "cat", "/made-inside"]);
    assert_eq!(from_snapshot.expect_code(0).stdout(), "from-exec\n");

    h.cli(&["rmi", "base"]).expect_code(125); // still used by the exited `web`
    h.cli(&["rm", "web"]).expect_code(0);
    h.cli(&["rmi", "base"]).expect_code(0);
    h.cli(&["rmi", "snapshot"]).expect_code(0);
    assert_eq!(h.cli(&["ps", "-a", "-q"]).stdout(), "");
}

#[test]
fn ten_detached_containers_run_side_by_side() {
    let h = Harness::new();
    let names: Vec<String> = (0..10).map(|i| format!("worker-{i}")).collect();
    let children: Vec<_> = names
        .iter()
        .map(|name| {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker"));
            cmd.arg("--root").arg(h.state_root.path()).args([
                "run",
                "--cgroup-parent",
                &h.cgroup_parent,
                "-d",
                "--name",
                name,
            ]);
            cmd.arg(rootfs())
                .args(["sleep", "30"])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
    }
    let ps = h.cli(&["ps"]).stdout();
    for name in &names {
        assert!(ps.contains(name.as_str()), "{name} missing from:\n{ps}");
    }
    let mut rm = vec!["rm", "-f"];
    rm.extend(names.iter().map(String::as_str));
    h.cli(&rm).expect_code(0);
    assert_eq!(h.cli(&["ps", "-a", "-q"]).stdout(), "");
}

#[test]
fn ps_tells_the_truth_after_the_monitor_is_killed() {
    let h = Harness::new();
    h.run_kept(&[
        "-d",
        "--name",
        "orphan",
        rootfs().to_str().unwrap(),
        "sleep",
        "30",
    ])
    .expect_code(0);
    let record: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "--record", "orphan"]).stdout()).unwrap();
    let monitor = record["monitor_pid"].as_i64().unwrap() as i32;
    let init = record["pid"].as_i64().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The container dies with its monitor (parent-death signal)...
    eventually("the container to die with its monitor", || {
        std::fs::read_to_string(format!("/proc/{init}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    // ...and although the record still says running, ps says what the kernel says.
    let ps = h.cli(&["ps", "-a"]).stdout();
    assert!(ps.contains("Exited (unknown"), "{ps}");
    assert_eq!(
        h.cli(&["ps", "-q"]).stdout(),
        "",
        "a dead container listed as running"
    );
    // rm -f removes what the monitor never could: cgroups, layers, record.
    h.cli(&["rm", "-f", "orphan"]).expect_code(0);
}

/// The record of `name`, as `inspect` prints it.
fn inspected(h: &Harness, name: &str) -> serde_json::Value {
    serde_json::from_str(&h.cli(&["inspect", "--record", name]).stdout()).unwrap()
}

/// The cgroup directories a record lists.
fn cgroups_in(record: &serde_json::Value) -> Vec<std::path::PathBuf> {
    let listed = record["cgroups"].as_array().unwrap();
    listed.iter().map(|c| c.as_str().unwrap().into()).collect()
}

#[test]
fn the_command_after_a_killed_run_finishes_its_teardown() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    let root = h.state_root.path().to_str().unwrap();
    // (name, run flags, whether the record stays): a foreground run, one
    // with --rm, and a detached run whose monitor is what gets killed.
    for (name, flags, kept) in [
        ("fg", &[][..], true),
        ("fg-rm", &["--rm"][..], false),
        ("bg", &["-d"][..], true),
    ] {
        let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker"));
        run.args(["--root", root, "run", "--cgroup-parent", &h.cgroup_parent])
            .args(flags)
            .args(["--name", name, "-m", "64m", r, "sleep", "30"])
            .env_remove("MYDOCKER_ROOT")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = run.spawn().unwrap();
        eventually("the container to run", || {
            let record: serde_json::Value =
                serde_json::from_str(&h.cli(&["inspect", "--record", name]).stdout())
                    .unwrap_or_default();
            record["status"] == "running"
        });
        let record = inspected(&h, name);
        let (init, monitor) = (
            record["pid"].as_i64().unwrap(),
            record["monitor_pid"].as_i64().unwrap(),
        );
        let cgroups = cgroups_in(&record);
        assert!(!cgroups.is_empty());
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(monitor as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let _ = child.wait();
        eventually("the container to die with its runtime", || {
            std::fs::read_to_string(format!("/proc/{init}/stat"))
                .map_or(true, |s| s.contains(") Z "))
        });
        // The control: nothing tore it down, its cgroups are all there.
        assert!(cgroups.iter().all(|c| c.is_dir()), "{name}: {cgroups:?}");
        // Any command finishes it: ps, here.
        let ps = h.cli(&["ps", "-a"]).stdout();
        assert!(
            cgroups.iter().all(|c| !c.exists()),
            "{name}: its cgroups outlived the next command: {cgroups:?}"
        );
        match kept {
            true => {
                assert!(ps.contains("Exited (unknown"), "{name}: {ps}");
                assert_eq!(inspected(&h, name)["status"], "exited");
                h.cli(&["rm", name]).expect_code(0);
            }
            false => assert!(!ps.contains(name), "{name}: --rm, yet kept: {ps}"),
        }
    }
}

#[test]
fn a_command_in_another_pid_namespace_reaps_nothing() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&["-d", "--name", "alive", r, "sleep", "30"])
        .expect_code(0);
    let record = inspected(&h, "alive");
    let cgroups = cgroups_in(&record);
    // There, every pid of ours looks dead: /proc shows only its own.
    let elsewhere = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_mydocker"))
        .arg("--root")
        .arg(h.state_root.path())
        .args(["ps", "-a"])
        .env_remove("MYDOCKER_ROOT")
        .output()
        .unwrap();
    assert!(elsewhere.status.success(), "{elsewhere:?}");
    assert!(
        cgroups.iter().all(|c| c.is_dir()),
        "a live container was torn down"
    );
    assert_eq!(inspected(&h, "alive")["status"], "running");
    h.cli(&["rm", "-f", "alive"]).expect_code(0);
}

#[test]
fn a_damaged_record_is_named_with_its_fix_and_only_it_is_affected() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    for name in ["good", "bad"] {
        h.run_kept(&["-d", "--name", name, r, "sleep", "30"])
            .expect_code(0);
    }
    let bad = inspected(&h, "bad");
    let id = bad["id"].as_str().unwrap().to_owned();
    let init = bad["pid"].as_i64().unwrap();
    let cgroups = cgroups_in(&bad);
    // Truncated mid-write, as a full disk or a crash would leave it.
    let record = h
        .state_root
        .path()
        .join("containers")
        .join(&id)
        .join("state.json");
    std::fs::write(&record, "{\"id\": \"").unwrap();
    let ps = h.cli(&["ps", "-a"]);
    ps.expect_code(0);
    assert!(ps.stdout().contains("good"), "{}", ps.stdout());
    assert!(
        ps.stderr().contains(record.to_str().unwrap())
            && ps.stderr().contains(&format!("`mydocker rm -f {id}`")),
        "{}",
        ps.stderr()
    );
    // Its state is unknown: rm without -f says so; rm -f removes it and
    // what it left, found without the record.
    let refused = h.cli(&["rm", &id[..12]]);
    refused.expect_code(125);
    assert!(
        refused.stderr().contains(record.to_str().unwrap())
            && refused.stderr().contains("only rm -f"),
        "{}",
        refused.stderr()
    );
    h.cli(&["rm", "-f", &id[..12]]).expect_code(0);
    eventually("its init to end", || {
        std::fs::read_to_string(format!("/proc/{init}/stat")).map_or(true, |s| s.contains(") Z "))
    });
    assert!(cgroups.iter().all(|c| !c.exists()), "{cgroups:?}");
    assert!(!record.exists());
    assert_eq!(inspected(&h, "good")["status"], "running");
    h.cli(&["rm", "-f", "good"]).expect_code(0);
}

#[test]
fn volume_flags_reach_the_mount_table_and_a_missing_host_directory_is_made() {
    // What a volume shares, and that :ro refuses writes, is the probes'
    // (rootfs.volume); here, that -v and its mode reach the kernel.
    let h = Harness::new();
    let host = tempfile::tempdir().unwrap();
    let data = host.path().join("data");
    let ro = host.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let volume = format!("{}:/data", data.display());
    let ro_volume = format!("{}:/srv/ro:ro", ro.display());
    // Each mount point with its per-mount options, from the kernel's table.
    let script = "awk '$5 == \"/data\" || $5 == \"/srv/ro\" { split($6, o, \",\"); print $5, o[1] }' /proc/self/mountinfo";
    let run = h.run_kept(&[
        "--rm",
        "-v",
        &volume,
        "-v",
        &ro_volume,
        rootfs().to_str().unwrap(),
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(run.expect_code(0).stdout(), "/data rw\n/srv/ro ro\n");
    assert!(data.is_dir(), "the missing host directory was not created");
}

#[test]
fn rm_f_of_a_container_with_a_volume_leaves_host_files_intact() {
    let h = Harness::new();
    let host = tempfile::tempdir().unwrap();
    for i in 0..5 {
        std::fs::write(host.path().join(format!("precious-{i}")), "keep me").unwrap();
    }
    let volume = format!("{}:/data", host.path().display());
    h.run_kept(&[
        "-d",
        "--name",
        "holder",
        "-v",
        &volume,
        rootfs().to_str().unwrap(),
        "sleep",
        "30",
    ])
    .expect_code(0);
    h.cli(&["rm", "-f", "holder"]).expect_code(0);
    for i in 0..5 {
        assert_eq!(
            std::fs::read_to_string(host.path().join(format!("precious-{i}"))).unwrap(),
            "keep me"
        );
    }
}

#[test]
fn a_detached_rm_container_removes_itself_and_kill_signals_it() {
    let h = Harness::new();
    let script = "trap 'echo got-term; exit 4' TERM; echo up; while :; do sleep 0.1; done";
    h.run_kept(&[
        "-d",
        "--rm",
        "--name",
        "self-cleaning",
        rootfs().to_str().unwrap(),
        "sh",
        "-c",
        script,
    ])
    .expect_code(0);
    eventually("the container to start", || {
        h.cli(&["logs", "self-cleaning"]).stdout().contains("up")
    });
    h.cli(&["kill", "-s", "TERM", "self-cleaning"])
        .expect_code(0);
    // Its monitor records the exit and, with --rm, removes everything.
    eventually("the container to remove itself", || {
        h.cli(&["ps", "-a", "-q"]).stdout().is_empty()
    });
    h.cli(&["kill", "self-cleaning"]).expect_code(125);
}

#[test]
fn a_detached_command_that_is_missing_fails_the_run() {
    let h = Harness::new();
    let run = h.run_kept(&["-d", rootfs().to_str().unwrap(), "no-such-command"]);
    run.expect_code(127);
    assert!(run.stderr().contains("no-such-command"), "{}", run.stderr());
}

#[test]
fn logs_follow_until_the_container_exits() {
    let h = Harness::new();
    h.run_kept(&[
        "-d",
        "--name",
        "talker",
        rootfs().to_str().unwrap(),
        "sh",
        "-c",
        "for i in 1 2 3; do echo line $i; sleep 0.2; done",
    ])
    .expect_code(0);
    let followed = h.cli(&["logs", "-f", "talker"]);
    assert_eq!(followed.expect_code(0).stdout(), "line 1\nline 2\nline 3\n");
    h.cli(&["rm", "talker"]).expect_code(0);
}

#[test]
fn bad_lifecycle_input_is_refused_with_125_and_changes_nothing() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    let refused = |args: &[&str], mention: &str| h.refused(args, mention);
    h.run_kept(&["-d", "--name", "taken", r, "sleep", "30"])
        .expect_code(0);
    let cg = h.cgroup_parent.clone();
    refused(
        &["run", "--cgroup-parent", &cg, "--name", "taken", r, "true"],
        "\"taken\"",
    );
    refused(&["rm", "taken"], "running");
    for command in ["inspect", "rm", "stop", "kill", "logs"] {
        refused(&[command, "nobody"], "\"nobody\"");
    }
    refused(&["exec", "nobody", "true"], "\"nobody\"");
    refused(
        &["run", "--cgroup-parent", &cg, "no-such-image", "true"],
        "\"no-such-image\"",
    );
    refused(
        &[
            "run",
            "--cgroup-parent",
            &cg,
            "-v",
            "/tmp:relative",
            r,
            "true",
        ],
        "/tmp:relative",
    );
    // A path alone is an anonymous volume; a word alone is nothing.
    refused(
        &["run", "--cgroup-parent", &cg, "-v", "tmp", r, "true"],
        "\"tmp\"",
    );
    refused(
        &["run", "--cgroup-parent", &cg, "-d", "-t", r, "true"],
        "-d with -t",
    );
    refused(
        &["run", "--cgroup-parent", &cg, "-d", "-i", r, "true"],
        "-d with -i",
    );
    let scratch = tempfile::tempdir().unwrap();
    let not_tar = scratch.path().join("notes.txt");
    std::fs::write(
        &not_tar,
        "just some text, not an archive at all\n".repeat(40),
    )
    .unwrap();
    refused(&["import", not_tar.to_str().unwrap(), "x"], "not a tar");
    refused(&["import", not_tar.to_str().unwrap(), "a/b"], "\"a/b\"");
    refused(&["import", not_tar.to_str().unwrap(), "a b"], "\"a b\"");
    imported(&h, "bare");
    refused(
        &["run", "--rm", "--cgroup-parent", &cg, "bare"],
        "the image bare has no default command",
    );
    h.cli(&["rmi", "bare"]).expect_code(0);
    refused(
        &["exec", "-w", "relative/dir", "taken", "true"],
        "\"relative/dir\"",
    );
    h.cli(&["stop", "-t", "0", "taken"]).expect_code(0);
    refused(&["exec", "taken", "true"], "not running");
    h.cli(&["rm", "taken"]).expect_code(0);
    // Nothing was created along the way.
    assert_eq!(h.cli(&["ps", "-a", "-q"]).stdout(), "");
    assert_eq!(h.cli(&["images"]).stdout().lines().count(), 1);
}

#[test]
fn lifecycle_refusals_the_audit_found_untested() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    imported(&h, "base");
    // Importing or committing onto a name that exists.
    let scratch = tempfile::tempdir().unwrap();
    h.refused(
        &["import", tarball(scratch.path()).to_str().unwrap(), "base"],
        "an image of that name exists",
    );
    h.run_kept(&["-d", "--name", "busy", "base", "sleep", "30"])
        .expect_code(0);
    h.refused(&["commit", "busy", "base"], "an image of that name exists");
    // An image a running container uses is never removed, not even with -f.
    h.refused(&["rmi", "-f", "base"], "is running it");
    h.refused(&["exec", "-e", "NOEQUALS", "busy", "true"], "\"NOEQUALS\"");
    h.cli(&["rm", "-f", "busy"]).expect_code(0);
    // A foreground container's output went to the terminal, not to a log.
    h.run_kept(&["--name", "fg", r, "true"]).expect_code(0);
    h.refused(&["logs", "fg"], "foreground");
    h.cli(&["rm", "fg"]).expect_code(0);
    h.cli(&["rmi", "base"]).expect_code(0);
}

#[test]
fn a_detached_run_reports_the_monitors_error_in_its_own_words() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&["-d", "--name", "taken", r, "sleep", "30"])
        .expect_code(0);
    // The name is refused inside the monitor, which reports over the channel.
    let again = h.run_kept(&["-d", "--name", "taken", r, "true"]);
    again.expect_code(125);
    let stderr = again.stderr();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("\"taken\""), "{stderr}");
    assert!(
        !stderr.contains("setup failed"),
        "a name conflict is not a setup failure: {stderr}"
    );
    h.cli(&["rm", "-f", "taken"]).expect_code(0);
    assert!(h.cli(&["ps", "-a", "-q"]).stdout().is_empty());
}

#[test]
fn the_default_cgroup_parent_goes_with_its_last_container() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    let parent = std::path::Path::new("/sys/fs/cgroup/pids/mydocker");
    let existed = parent.exists();
    // Without --cgroup-parent, containers' cgroups go below `mydocker`; while
    // one runs there, the parent stays, and the last one out removes it
    // (unless something of the machine's was there before).
    h.cli(&["run", "-d", "--name", "stay", r, "sleep", "30"])
        .expect_code(0);
    let children = || {
        std::fs::read_dir(parent).map_or(0, |d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().is_dir())
                .count()
        })
    };
    assert!(
        children() >= 1,
        "the container's cgroup is not below {}",
        parent.display()
    );
    h.cli(&["run", "--rm", r, "true"]).expect_code(0);
    assert!(parent.is_dir(), "removed while a container was in it");
    h.cli(&["rm", "-f", "stay"]).expect_code(0);
    if !existed {
        assert!(!parent.exists(), "{} left behind", parent.display());
    }
}

#[test]
fn a_removal_or_create_killed_half_way_is_finished_by_the_next_command() {
    let h = Harness::new();
    let containers = h.state_root.path().join("containers");
    h.run_kept(&["--name", "gone", rootfs().to_str().unwrap(), "true"])
        .expect_code(0);
    let id = h.cli(&["ps", "-aq"]).stdout().trim().to_owned();
    // As a killed `rm` leaves it: renamed out of the listing, not deleted.
    let tombstone = containers.join(format!(".removing-{id}"));
    std::fs::rename(containers.join(&id), &tombstone).unwrap();
    // As a killed create leaves it: a directory, its record never written.
    let unwritten = containers.join("0".repeat(64));
    std::fs::create_dir(&unwritten).unwrap();
    // The control: a tombstone someone holds is a removal still running.
    let held = std::fs::File::open(&tombstone).unwrap();
    let held = nix::fcntl::Flock::lock(held, nix::fcntl::FlockArg::LockExclusive).unwrap();
    h.cli(&["ps", "-a"]).expect_code(0);
    assert!(tombstone.exists(), "a held tombstone was removed");
    assert!(!unwritten.exists(), "the unwritten directory stayed");
    drop(held);
    // Links that look like either are never followed: what they lead to stays.
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("precious"), "x").unwrap();
    for planted in [format!(".removing-{}", "1".repeat(64)), "2".repeat(64)] {
        std::os::unix::fs::symlink(elsewhere.path(), containers.join(planted)).unwrap();
    }
    h.cli(&["ps", "-a"]).expect_code(0);
    assert!(!tombstone.exists(), "the tombstone stayed");
    assert!(
        elsewhere.path().join("precious").exists(),
        "a link was followed"
    );
    for planted in [format!(".removing-{}", "1".repeat(64)), "2".repeat(64)] {
        std::fs::remove_file(containers.join(planted)).unwrap();
    }
}

/// The count a container's counting loop last wrote, read from its upper
/// layer on the host: no exec, which would join a frozen cgroup and hang.
fn count_of(h: &Harness, id: &str) -> u64 {
    let file = h
        .state_root
        .path()
        .join("containers")
        .join(id)
        .join("upper/count");
    std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn pause_freezes_a_container_and_stop_kill_and_rm_work_on_a_paused_one() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    // The shell handles SIGTERM (as PID 1 it would otherwise ignore it), so
    // a stop that thaws it ends it within the grace, with its code.
    let counter =
        "trap 'exit 7' TERM; i=0; while :; do i=$((i+1)); echo $i > /count; sleep 0.05; done";
    let mut ids = Vec::new();
    for name in ["p1", "p2", "p3", "p4"] {
        let run = h.run_kept(&["-d", "--name", name, r, "sh", "-c", counter]);
        ids.push(run.expect_code(0).stdout().trim().to_owned());
    }
    eventually("every counter to start", || {
        ids.iter().all(|id| count_of(&h, id) > 0)
    });
    h.cli(&["pause", "p1"]).expect_code(0);
    let ps = h.cli(&["ps"]).stdout();
    let line = |name: &str| {
        ps.lines()
            .find(|l| l.ends_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("p1").contains("(Paused)"), "{ps}");
    assert!(!line("p2").contains("(Paused)"), "{ps}");
    // Frozen, p1's counter stands still while p2's, the control, moves on.
    let before = (count_of(&h, &ids[0]), count_of(&h, &ids[1]));
    std::thread::sleep(Duration::from_millis(500));
    let after = (count_of(&h, &ids[0]), count_of(&h, &ids[1]));
    assert_eq!(before.0, after.0, "a paused container kept counting");
    assert!(
        after.1 > before.1,
        "the control did not count: {before:?} {after:?}"
    );
    h.refused(&["unpause", "p2"], "it is not paused");
    // exec would join the frozen cgroup and hang: it is refused instead.
    h.refused(&["exec", "p1", "true"], "it is paused");
    h.cli(&["unpause", "p1"]).expect_code(0);
    let thawed = count_of(&h, &ids[0]);
    eventually("p1 to count again", || count_of(&h, &ids[0]) > thawed);
    h.refused(&["unpause", "no-such-container"], "no-such-container");

    // Each way out works on a paused container, well before stop's grace.
    for name in ["p1", "p2", "p3", "p4"] {
        h.cli(&["pause", name]).expect_code(0);
    }
    let started = Instant::now();
    h.cli(&["stop", "-t", "30", "p1"]).expect_code(0);
    h.cli(&["kill", "p2"]).expect_code(0);
    h.cli(&["rm", "-f", "p3"]).expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The stopped one ran its handler: stop thawed it before its grace.
    assert_eq!(h.cli(&["wait", "p1"]).expect_code(0).stdout(), "7\n");
    eventually("p2 to exit", || {
        h.cli(&["ps"]).stdout().lines().all(|l| !l.ends_with("p2"))
    });
    let all = h.cli(&["ps", "-a"]).stdout();
    assert!(!all.contains("p3"), "{all}");
    h.cli(&["rm", "-f", "p1", "p2", "p4"]).expect_code(0);
}

#[test]
fn wait_prints_each_exit_code_once_its_container_stops() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&["-d", "--name", "slow", r, "sh", "-c", "sleep 0.5; exit 3"])
        .expect_code(0);
    h.run_kept(&["-d", "--name", "quick", r, "sh", "-c", "exit 5"])
        .expect_code(0);
    let wait = h.cli(&["wait", "slow", "quick"]);
    assert_eq!(wait.expect_code(0).stdout(), "3\n5\n");
    // It returned only once `slow` had stopped.
    let ps = h.cli(&["ps"]).stdout();
    assert!(!ps.contains("slow"), "{ps}");
    h.refused(&["wait", "no-such-container"], "no-such-container");
    // A --rm container takes its exit code with it.
    let removed = h.run_kept(&["-d", "--rm", r, "sh", "-c", "sleep 0.5; exit 4"]);
    let id = removed.expect_code(0).stdout().trim().to_owned();
    let waited = h.cli(&["wait", &id]);
    waited.expect_code(125);
    assert!(waited.stdout().is_empty(), "{}", waited.stdout());
    h.cli(&["rm", "slow", "quick"]).expect_code(0);
}

#[test]
fn a_rename_survives_the_monitor_recording_the_exit() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&["-d", "--name", "before", r, "sh", "-c", "sleep 1; exit 6"])
        .expect_code(0);
    h.run_kept(&["-d", "--name", "taken", r, "sleep", "30"])
        .expect_code(0);
    h.cli(&["rename", "before", "after"]).expect_code(0);
    h.refused(&["rename", "after", "taken"], "taken");
    h.refused(&["rename", "after", "no spaces"], "no spaces");
    h.refused(&["rename", "no-such-container", "x"], "no-such-container");
    // The monitor wrote the exit after the rename, and kept the new name.
    assert_eq!(h.cli(&["wait", "after"]).expect_code(0).stdout(), "6\n");
    let all = h.cli(&["ps", "-a"]).stdout();
    assert!(all.contains("after") && !all.contains("before"), "{all}");
    h.cli(&["rm", "-f", "after", "taken"]).expect_code(0);
}

#[test]
fn top_lists_the_containers_processes_with_their_pids_inside() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&["-d", "--name", "busy", r, "sh", "-c", "sleep 31 & sleep 32"])
        .expect_code(0);
    // The control: a process outside the container that top must not show.
    let mut outside = std::process::Command::new("sleep")
        .arg("33")
        .spawn()
        .unwrap();
    eventually("both sleeps to start", || {
        h.cli(&["top", "busy"]).stdout().contains("sleep 32")
    });
    let top = h.cli(&["top", "busy"]);
    let text = top.expect_code(0).stdout();
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    let (pid, cpid) = (
        header.iter().position(|c| *c == "PID").unwrap(),
        header.iter().position(|c| *c == "CPID").unwrap(),
    );
    assert_eq!(cpid, pid + 1, "{text}");
    // The shell execs its last command, so init is `sleep 32` itself.
    assert_eq!(lines.len(), 3, "two sleeps:\n{text}");
    assert!(
        text.contains("sleep 31") && text.contains("sleep 32"),
        "{text}"
    );
    let cpids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(cpid).unwrap())
        .collect();
    assert!(cpids.contains(&"1"), "init is pid 1 inside: {text}");
    assert!(!text.contains("sleep 33"), "{text}");
    // ps options pass through; ones ps refuses are named.
    let custom = h
        .cli(&["top", "busy", "-o", "pid,comm"])
        .expect_code(0)
        .stdout();
    assert!(
        custom.starts_with("PID") && custom.contains("CPID"),
        "{custom}"
    );
    h.refused(&["top", "busy", "--no-such-option"], "--no-such-option");
    outside.kill().unwrap();
    outside.wait().unwrap();
    h.cli(&["rm", "-f", "busy"]).expect_code(0);
    h.refused(&["top", "busy"], "busy");
}

#[test]
fn ps_filters_last_and_labels_choose_containers_as_docker_does() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&[
        "-d",
        "--name",
        "web-1",
        "--label",
        "tier=front",
        "--label",
        "team",
        r,
        "sleep",
        "30",
    ])
    .expect_code(0);
    h.run_kept(&["--name", "job-1", "--label", "tier=batch", r, "true"])
        .expect_code(0);
    // Records know the second they were made: the last one is a second on.
    std::thread::sleep(Duration::from_millis(1100));
    h.run_kept(&["-d", "--name", "web-2", r, "sleep", "30"])
        .expect_code(0);
    h.cli(&["pause", "web-2"]).expect_code(0);
    let names = |args: &[&str]| -> Vec<String> {
        let mut full = vec!["ps"];
        full.extend_from_slice(args);
        let ps = h.cli(&full);
        let mut names: Vec<String> = ps
            .expect_code(0)
            .stdout()
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&[]), ["web-1", "web-2"], "running, paused among them");
    assert_eq!(names(&["-a"]), ["job-1", "web-1", "web-2"]);
    assert_eq!(names(&["--filter", "status=exited"]), ["job-1"]);
    assert_eq!(names(&["--filter", "status=paused"]), ["web-2"]);
    assert_eq!(names(&["-a", "--filter", "name=web"]), ["web-1", "web-2"]);
    assert_eq!(names(&["-a", "--filter", "label=tier=front"]), ["web-1"]);
    assert_eq!(names(&["-a", "--filter", "label=team"]), ["web-1"]);
    let both = ["--filter", "label=tier", "--filter", "status=exited"];
    assert_eq!(names(&both), ["job-1"]);
    assert_eq!(names(&["-n", "2"]).len(), 2);
    assert!(names(&["-n", "2"]).contains(&"web-2".to_owned()));
    assert_eq!(names(&["-l"]), ["web-2"]);
    h.refused(&["ps", "--filter", "colour=red"], "colour=red");
    h.refused(&["ps", "--filter", "status=sleeping"], "status=sleeping");
    h.refused(&["run", "--label", "=x", r, "true"], "=x");
    let record = h
        .cli(&["inspect", "--record", "web-1"])
        .expect_code(0)
        .stdout();
    assert!(record.contains("\"tier\": \"front\""), "{record}");
    h.cli(&["rm", "-f", "web-1", "web-2", "job-1"])
        .expect_code(0);
}

/// The value of one limit file in a container's cgroup: `v1` in that
/// controller's hierarchy, or `v2` in the one directory of a v2 host.
fn limit_of(record: &serde_json::Value, controller: &str, v1: &str, v2: &str) -> String {
    let dirs = cgroups_in(record);
    let v2_host = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let file = if v2_host {
        dirs[0].join(v2)
    } else {
        let dir = dirs
            .iter()
            .find(|d| {
                d.strip_prefix("/sys/fs/cgroup")
                    .ok()
                    .and_then(|r| r.iter().next())
                    .and_then(|h| h.to_str())
                    .is_some_and(|h| h.split(',').any(|c| c == controller))
            })
            .unwrap_or_else(|| panic!("no {controller} cgroup in {dirs:?}"));
        dir.join(v1)
    };
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .trim()
        .to_owned()
}

#[test]
fn update_changes_a_running_containers_limits_and_its_record() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    let flags = ["-m", "64m", "--cpus", "1", "--pids-limit", "50"];
    let mut run = vec!["-d", "--name", "u1"];
    run.extend(flags);
    run.extend([r, "sh", "-c", "sleep 1.5; exit 3"]);
    h.run_kept(&run).expect_code(0);
    h.run_kept(&[
        "-d",
        "--name",
        "u2",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        r,
        "sleep",
        "30",
    ])
    .expect_code(0);

    let mib = |n: u64| (n << 20).to_string();
    let record = inspected(&h, "u1");
    assert_eq!(
        limit_of(&record, "memory", "memory.limit_in_bytes", "memory.max"),
        mib(64)
    );
    h.cli(&[
        "update",
        "-m",
        "128m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "7",
        "u1",
    ])
    .expect_code(0);
    // The kernel has the new values, and the record says the same.
    let record = inspected(&h, "u1");
    assert_eq!(
        limit_of(&record, "memory", "memory.limit_in_bytes", "memory.max"),
        mib(128)
    );
    assert_eq!(
        limit_of(&record, "cpu", "cpu.cfs_quota_us", "cpu.max"),
        match std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            true => "50000 100000".to_owned(),
            false => "50000".to_owned(),
        }
    );
    assert_eq!(limit_of(&record, "pids", "pids.max", "pids.max"), "7");
    assert_eq!(record["limits"]["memory"], 128u64 << 20);
    assert_eq!(record["limits"]["pids"], 7);

    // Raising memory above a --memory-swap given at run is refused unless
    // the swap is raised with it; then both are written in the order the
    // kernel accepts, upwards and back down.
    h.refused(&["update", "-m", "256m", "u2"], "--memory");
    h.cli(&["update", "-m", "256m", "--memory-swap", "512m", "u2"])
        .expect_code(0);
    let u2 = inspected(&h, "u2");
    assert_eq!(
        limit_of(&u2, "memory", "memory.limit_in_bytes", "memory.max"),
        mib(256)
    );
    h.cli(&["update", "-m", "32m", "--memory-swap", "48m", "u2"])
        .expect_code(0);
    let u2 = inspected(&h, "u2");
    assert_eq!(
        limit_of(&u2, "memory", "memory.limit_in_bytes", "memory.max"),
        mib(32)
    );

    // --cpu-shares 0 means "unchanged", as docker reads it.
    h.cli(&["update", "--cpu-shares", "512", "u1"])
        .expect_code(0);
    h.cli(&["update", "--cpu-shares", "0", "u1"]).expect_code(0);
    assert_eq!(inspected(&h, "u1")["limits"]["cpu_shares"], 512);
    if !std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        assert_eq!(
            limit_of(&inspected(&h, "u1"), "cpu", "cpu.shares", ""),
            "512"
        );
    }

    // Bad input changes nothing, and names what was wrong.
    h.refused(&["update", "u1"], "--memory");
    h.refused(&["update", "-m", "1m", "u1"], "1MiB");
    h.refused(&["update", "--cpus", "99", "u1"], "--cpus");
    h.refused(&["update", "--cpuset-cpus", "99", "u1"], "99");
    h.refused(&["update", "--pids-limit", "-5", "u1"], "-5");
    h.refused(
        &["update", "-m", "64m", "no-such-container"],
        "no-such-container",
    );
    assert_eq!(inspected(&h, "u1")["limits"]["memory"], 128u64 << 20);

    // The monitor records the exit without undoing the update.
    assert_eq!(h.cli(&["wait", "u1"]).expect_code(0).stdout(), "3\n");
    assert_eq!(inspected(&h, "u1")["limits"]["pids"], 7);
    // A stopped container only keeps the new limits.
    h.cli(&["update", "--pids-limit", "9", "u1"]).expect_code(0);
    assert_eq!(inspected(&h, "u1")["limits"]["pids"], 9);
    h.cli(&["rm", "-f", "u1", "u2"]).expect_code(0);
}

#[test]
fn stats_reads_each_containers_usage_from_its_cgroup() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&[
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        r,
        "sh",
        "-c",
        "while :; do :; done",
    ])
    .expect_code(0);
    h.run_kept(&["-d", "--name", "idle", r, "sh", "-c", "sleep 30 & sleep 31"])
        .expect_code(0);
    h.run_kept(&["--name", "done", r, "true"]).expect_code(0);
    eventually("idle's two sleeps", || {
        h.cli(&["top", "idle"]).stdout().matches("sleep 3").count() == 2
    });

    let stats = h.cli(&["stats", "--no-stream"]);
    let out = stats.expect_code(0).stdout();
    let mut lines = out.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ]
    );
    let row = |name: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} in\n{out}"))
            .split("   ")
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect()
    };
    let (busy, idle) = (row("busy"), row("idle"));
    // Only running containers, unless -a.
    assert!(!out.contains("done"), "{out}");
    let percent = |cell: &str| cell.trim_end_matches('%').parse::<f64>().unwrap();
    // CPU time the kernel charged over a second: the spinning shell's is
    // more than the sleeping one's, and neither is more than two CPUs'.
    assert!(percent(&busy[2]) > percent(&idle[2]), "{busy:?} {idle:?}");
    assert!(percent(&busy[2]) <= 200.5, "{busy:?}");
    assert!(busy[3].ends_with(" / 64MiB"), "{busy:?}");
    // Without a limit, the host's memory is the limit.
    let (used, limit) = idle[3].split_once(" / ").expect("usage / limit");
    assert!(
        used.ends_with('B') && limit.ends_with("iB") && limit != "64MiB",
        "{idle:?}"
    );
    assert_eq!(busy[7], "1");
    // The shell execs its last command: two sleeps, no shell.
    assert_eq!(idle[7], "2", "{idle:?}");
    // --network none: a namespace of its own, with only loopback.
    assert_eq!(idle[5], "0B / 0B");

    // -a shows a stopped container as docker does, with dashes; a named
    // one shows alone.
    let all = h.cli(&["stats", "--no-stream", "-a"]).stdout();
    let done = all.lines().find(|l| l.contains("done")).unwrap();
    assert_eq!(done.matches("--").count(), 6, "{done}");
    let one = h.cli(&["stats", "--no-stream", "idle"]).stdout();
    assert_eq!(one.lines().count(), 2, "{one}");
    // --format: docker's field names, a table with its titles, json.
    let formatted = h.cli(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}: {{.PIDs}}",
        "idle",
    ]);
    assert_eq!(formatted.expect_code(0).stdout(), "idle: 2\n");
    let table = h.cli(&[
        "stats",
        "--no-stream",
        "--format",
        "table {{.Name}}\t{{.PIDs}}",
        "idle",
    ]);
    assert_eq!(table.stdout(), "NAME   PIDS\nidle   2\n");
    let json = h
        .cli(&["stats", "--no-stream", "--format", "json", "busy"])
        .stdout();
    let object: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(object["Name"], "busy");
    assert!(
        object["MemUsage"].as_str().unwrap().ends_with(" / 64MiB"),
        "{json}"
    );
    h.refused(
        &["stats", "--no-stream", "--format", "{{.Name", "idle"],
        "{{.Name",
    );
    h.refused(
        &["stats", "--no-stream", "no-such-container"],
        "no-such-container",
    );
    h.cli(&["rm", "-f", "busy", "idle", "done"]).expect_code(0);
}

#[test]
fn stats_on_a_terminal_redraws_its_table_in_place() {
    use common::pty::{on_a_terminal, read_until};
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&["-d", "--name", "watched", r, "sleep", "30"])
        .expect_code(0);
    let mut stats = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker"));
    stats
        .arg("--root")
        .arg(h.state_root.path())
        .arg("stats")
        .env_remove("MYDOCKER_ROOT");
    let (child, master) = on_a_terminal(stats, (24, 120));
    // Two frames, each starting by clearing the screen: it keeps going.
    let mut first = String::new();
    read_until(&master, "watched", &mut first);
    assert!(first.starts_with("\x1b[2J\x1b[H"), "{first:?}");
    let mut second = String::new();
    read_until(&master, "\x1b[2J\x1b[H", &mut second);
    read_until(&master, "watched", &mut second);
    drop(child);
    h.cli(&["rm", "-f", "watched"]).expect_code(0);
}

/// `mydocker cp ARGS...` with `input` on its stdin.
fn cp_with_stdin(h: &Harness, args: &[&str], input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker"))
        .arg("--root")
        .arg(h.state_root.path())
        .arg("cp")
        .args(args)
        .env_remove("MYDOCKER_ROOT")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn cp_copies_both_ways_and_never_leaves_the_containers_root() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    let host = tempfile::tempdir().unwrap();
    let at = |name: &str| host.path().join(name);
    let shown = |name: &str| at(name).to_str().unwrap().to_owned();
    let setup = "echo hi > /greeting; ln -s / /escape; mkdir -p /d/sub; echo x > /d/sub/x; touch /ready; sleep 30";
    h.run_kept(&["-d", "--name", "live", r, "sh", "-c", setup])
        .expect_code(0);
    eventually("the container's files", || {
        h.cli(&["exec", "live", "test", "-e", "/ready"]).code() == 0
    });

    // Out of a running container: a file, a directory under a new name,
    // and a directory's contents (`/.`) into one that exists.
    h.cli(&["cp", "live:/greeting", &shown("")]).expect_code(0);
    assert_eq!(std::fs::read_to_string(at("greeting")).unwrap(), "hi\n");
    h.cli(&["cp", "live:/d", &shown("copy")]).expect_code(0);
    assert_eq!(std::fs::read_to_string(at("copy/sub/x")).unwrap(), "x\n");
    std::fs::create_dir(at("contents")).unwrap();
    h.cli(&["cp", "live:/d/.", &shown("contents")])
        .expect_code(0);
    assert!(at("contents/sub/x").is_file());

    // A symlink to / inside the container leads to the container's /, in
    // both directions: the host has no /greeting, and its /tmp is never
    // reached.
    assert!(!std::path::Path::new("/greeting").exists());
    h.cli(&["cp", "live:/escape/greeting", &shown("through-link")])
        .expect_code(0);
    assert_eq!(std::fs::read_to_string(at("through-link")).unwrap(), "hi\n");
    let marker = format!("mydocker-cp-{}", std::process::id());
    std::fs::write(at(&marker), "in\n").unwrap();
    h.cli(&["cp", &shown(&marker), &format!("live:/escape/tmp/{marker}")])
        .expect_code(0);
    assert!(!std::path::Path::new("/tmp").join(&marker).exists());
    let inside = h.cli(&["exec", "live", "cat", &format!("/tmp/{marker}")]);
    assert_eq!(inside.expect_code(0).stdout(), "in\n");
    // Copied in, a file belongs to the container's root.
    let owner = h.cli(&[
        "exec",
        "live",
        "stat",
        "-c",
        "%u:%g",
        &format!("/tmp/{marker}"),
    ]);
    assert_eq!(owner.stdout().trim(), "0:0");

    // A file whose size the kernel gives as 0 while it has content (as
    // /proc's do, and as a file growing during the copy would): exactly
    // the size stated is copied, and nothing runs on into the stream.
    h.cli(&["cp", "live:/proc/1/cmdline", &shown("cmdline")])
        .expect_code(0);
    assert_eq!(std::fs::read(at("cmdline")).unwrap(), b"");

    // Tar streams: out on stdout, in from stdin.
    let out = h.cli(&["cp", "live:/d", "-"]);
    let mut archive = tar::Archive::new(std::io::Cursor::new(out.0.stdout.clone()));
    let names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&"d/sub/x".to_owned()), "{names:?}");
    let mut input = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(4);
    header.set_mode(0o644);
    header.set_cksum();
    input
        .append_data(&mut header, "streamed", &b"tar\n"[..])
        .unwrap();
    let input = input.into_inner().unwrap();
    let streamed = cp_with_stdin(&h, &["-", "live:/tmp"], &input);
    assert!(streamed.status.success(), "{streamed:?}");
    let inside = h.cli(&["exec", "live", "cat", "/tmp/streamed"]);
    assert_eq!(inside.stdout(), "tar\n");

    // A stopped container: its overlay is mounted for the copy alone, in a
    // namespace that ends with it (the harness checks no mount is left).
    h.run_kept(&["--name", "stopped", r, "sh", "-c", "echo bye > /farewell"])
        .expect_code(0);
    h.cli(&["cp", "stopped:/farewell", &shown("farewell")])
        .expect_code(0);
    assert_eq!(std::fs::read_to_string(at("farewell")).unwrap(), "bye\n");
    h.cli(&["cp", &shown("greeting"), "stopped:/root/"])
        .expect_code(0);
    h.cli(&["cp", "stopped:/root/greeting", &shown("round-trip")])
        .expect_code(0);
    assert_eq!(std::fs::read_to_string(at("round-trip")).unwrap(), "hi\n");

    // Bad input: one line, exit 125, naming what was wrong.
    h.refused(&["cp", "live:/no-such-file", &shown("x")], "/no-such-file");
    h.refused(
        &["cp", &shown("greeting"), "live:/no/such/dir/x"],
        "/no/such/dir/x",
    );
    h.refused(
        &["cp", "live:/d", &shown("greeting")],
        "directory onto a file",
    );
    h.refused(&["cp", "live:relative", &shown("x")], "relative");
    h.refused(
        &["cp", &shown("greeting"), &shown("other")],
        "CONTAINER:PATH",
    );
    h.refused(&["cp", "live:/greeting", "stopped:/"], "between containers");
    h.refused(
        &["cp", "no-such-container:/x", &shown("x")],
        "no-such-container",
    );
    h.refused(&["cp", &shown("absent"), "live:/tmp"], "absent");
    h.cli(&["rm", "-f", "live", "stopped"]).expect_code(0);
}

#[test]
fn stop_sends_the_containers_stop_signal_and_honours_its_timeout() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    // USR1 ends it with 9; TERM, which stop would send otherwise, is ignored.
    let handler = "trap 'exit 9' USR1; trap '' TERM; touch /ready; while :; do sleep 0.1; done";
    h.run_kept(&[
        "-d",
        "--name",
        "usr1",
        "--stop-signal",
        "USR1",
        r,
        "sh",
        "-c",
        handler,
    ])
    .expect_code(0);
    // Ignores TERM and has a short timeout: stop kills it after 1 s, not 10.
    let stubborn = "trap '' TERM; touch /ready; while :; do sleep 0.1; done";
    h.run_kept(&[
        "-d",
        "--name",
        "stubborn",
        "--stop-timeout",
        "1",
        r,
        "sh",
        "-c",
        stubborn,
    ])
    .expect_code(0);
    h.run_kept(&["-d", "--name", "asked", r, "sh", "-c", handler])
        .expect_code(0);
    for name in ["usr1", "stubborn", "asked"] {
        eventually("the handler to be set", || {
            h.cli(&["exec", name, "test", "-e", "/ready"]).code() == 0
        });
    }
    h.cli(&["stop", "usr1"]).expect_code(0);
    assert_eq!(h.cli(&["wait", "usr1"]).stdout(), "9\n");
    let started = Instant::now();
    h.cli(&["stop", "stubborn"]).expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(h.cli(&["wait", "stubborn"]).stdout(), "137\n");
    // stop -s and -t override what the container was run with.
    h.cli(&["stop", "-s", "USR1", "-t", "5", "asked"])
        .expect_code(0);
    assert_eq!(h.cli(&["wait", "asked"]).stdout(), "9\n");
    h.refused(&["run", "--rm", "--stop-signal", "NOPE", r, "true"], "NOPE");
    h.refused(&["stop", "-s", "NOPE", "asked"], "NOPE");
    h.cli(&["rm", "usr1", "stubborn", "asked"]).expect_code(0);
}

#[test]
fn an_entrypoint_replaces_the_images_default_command() {
    let h = Harness::new();
    imported(&h, "base");
    h.run_kept(&["--name", "maker", "base", "echo", "from-the-image"])
        .expect_code(0);
    h.cli(&["commit", "maker", "with-cmd"]).expect_code(0);
    let run = |args: &[&str]| {
        let mut full = vec!["run", "--rm", "--cgroup-parent", &h.cgroup_parent];
        full.extend_from_slice(args);
        h.cli(&full)
    };
    // The control: the image's default command runs.
    assert_eq!(
        run(&["with-cmd"]).expect_code(0).stdout(),
        "from-the-image\n"
    );
    // The entrypoint runs instead, with the words given as its arguments,
    // and none of the image's.
    assert_eq!(
        run(&["--entrypoint", "echo", "with-cmd"])
            .expect_code(0)
            .stdout(),
        "\n"
    );
    assert_eq!(
        run(&["--entrypoint", "echo", "with-cmd", "a", "b"])
            .expect_code(0)
            .stdout(),
        "a b\n"
    );
    // An empty one clears the default: the command given runs alone.
    assert_eq!(
        run(&["--entrypoint", "", "with-cmd", "echo", "given"])
            .expect_code(0)
            .stdout(),
        "given\n"
    );
    run(&["--entrypoint", "/no/such/program", "with-cmd"]).expect_code(127);
    h.cli(&["rm", "maker"]).expect_code(0);
    h.cli(&["rmi", "with-cmd"]).expect_code(0);
    h.cli(&["rmi", "base"]).expect_code(0);
}

#[test]
fn inspect_and_format_speak_dockers_shape() {
    let h = Harness::new();
    imported(&h, "base");
    h.run_kept(&[
        "-d",
        "--name",
        "web",
        "-l",
        "tier=front",
        "-m",
        "64m",
        "--stop-signal",
        "USR1",
        "--stop-timeout",
        "1",
        "base",
        "sleep",
        "30",
    ])
    .expect_code(0);
    let shown: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "web"]).expect_code(0).stdout()).unwrap();
    let web = &shown[0];
    assert_eq!(shown.as_array().unwrap().len(), 1);
    assert_eq!(web["Name"], "/web");
    assert_eq!(web["State"]["Status"], "running");
    assert_eq!(web["State"]["Running"], true);
    assert_eq!(web["Config"]["Labels"]["tier"], "front");
    assert_eq!(web["Config"]["StopSignal"], "SIGUSR1");
    assert_eq!(web["HostConfig"]["Memory"], 64u64 << 20);
    assert_eq!(web["Path"], "sleep");
    assert_eq!(web["Args"], serde_json::json!(["30"]));
    // The pid docker's template gives is the kernel's, as the record says.
    let record = inspected(&h, "web");
    let pid = h
        .cli(&["inspect", "-f", "{{.State.Pid}}", "web"])
        .expect_code(0)
        .stdout();
    assert_eq!(pid.trim(), record["pid"].to_string());
    assert!(std::path::Path::new(&format!("/proc/{}", pid.trim())).exists());
    let labels = h.cli(&["inspect", "--format", "{{json .Config.Labels}}", "web"]);
    assert_eq!(labels.expect_code(0).stdout(), "{\"tier\":\"front\"}\n");
    // Images too, in one call, and --type keeps to one kind.
    let both = h
        .cli(&["inspect", "-f", "{{.Id}}", "web", "base"])
        .expect_code(0)
        .stdout();
    let ids: Vec<&str> = both.lines().collect();
    assert_eq!(ids, [record["id"].as_str().unwrap(), "base"]);
    h.refused(&["inspect", "--type", "image", "web"], "web");
    h.refused(&["inspect", "-f", "{{.State.Pid", "web"], "{{.State.Pid");

    // ps --format: docker's field names, `table` with titles, and json.
    let plain = h.cli(&["ps", "--format", "{{.Names}} {{.State}} {{.Labels}}"]);
    assert_eq!(plain.expect_code(0).stdout(), "web running tier=front\n");
    let table = h
        .cli(&["ps", "--format", "table {{.ID}}\t{{.Names}}"])
        .stdout();
    let mut lines = table.lines();
    assert_eq!(lines.next(), Some("CONTAINER ID   NAMES"));
    assert!(lines.next().unwrap().ends_with("   web"), "{table}");
    let json = h.cli(&["ps", "--format", "json"]).stdout();
    let object: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(object["Names"], "web");
    h.refused(&["ps", "--format", "{{.Names"], "{{.Names");

    // Its stop signal ignored (PID 1 has no handler), it is killed after
    // its stop timeout; inspect says so.
    h.cli(&["stop", "web"]).expect_code(0);
    let state = h.cli(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}} {{.State.Pid}}",
        "web",
    ]);
    assert_eq!(state.expect_code(0).stdout(), "exited 137 0\n");
    h.cli(&["rm", "web"]).expect_code(0);
    h.cli(&["rmi", "base"]).expect_code(0);
}

/// A time as `logs --timestamps` prints it, in nanoseconds since the epoch.
fn stamp_ns(text: &str) -> i128 {
    let (date, rest) = text.split_once('T').unwrap();
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().unwrap());
    let (y, m, d) = (
        ymd.next().unwrap(),
        ymd.next().unwrap(),
        ymd.next().unwrap(),
    );
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let time = rest.trim_end_matches('Z');
    let (hms, nanos) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.split(':').map(|p| p.parse::<i64>().unwrap());
    let secs =
        days * 86_400 + hms.next().unwrap() * 3600 + hms.next().unwrap() * 60 + hms.next().unwrap();
    secs as i128 * 1_000_000_000 + format!("{nanos:0<9}").parse::<i128>().unwrap()
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

#[test]
fn logs_timestamps_and_since_follow_when_lines_were_written() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    let started = now_ns();
    let script = "echo one; while [ ! -e /go ]; do sleep 0.05; done; echo two; sleep 30";
    h.run_kept(&["-d", "--name", "talker", r, "sh", "-c", script])
        .expect_code(0);
    eventually("the first line", || {
        h.cli(&["logs", "talker"]).stdout() == "one\n"
    });
    let middle = now_ns();
    // Later than the kernel's coarse clock could round `two` back to.
    std::thread::sleep(Duration::from_millis(50));
    h.cli(&["exec", "talker", "touch", "/go"]).expect_code(0);
    eventually("the second line", || {
        h.cli(&["logs", "talker"]).stdout() == "one\ntwo\n"
    });

    let stamped = h.cli(&["logs", "-t", "talker"]).expect_code(0).stdout();
    let lines: Vec<(&str, &str)> = stamped
        .lines()
        .map(|l| l.split_once(' ').unwrap())
        .collect();
    assert_eq!(
        lines.iter().map(|l| l.1).collect::<Vec<_>>(),
        ["one", "two"],
        "{stamped}"
    );
    let (one, two) = (stamp_ns(lines[0].0), stamp_ns(lines[1].0));
    // Each time is the kernel's time of a write: `one` came between the
    // start and the moment the test saw it, `two` after the test let it.
    assert!(started - 10_000_000 <= one && one <= middle, "{stamped}");
    assert!(two > middle && two <= now_ns(), "{stamped}");

    // --since keeps what was written from then on, in each of its forms.
    let since_middle = format!("{}.{:09}", middle / 1_000_000_000, middle % 1_000_000_000);
    assert_eq!(
        h.cli(&["logs", "--since", &since_middle, "talker"])
            .stdout(),
        "two\n"
    );
    assert_eq!(
        h.cli(&["logs", "--since", "10m", "talker"]).stdout(),
        "one\ntwo\n"
    );
    assert_eq!(
        h.cli(&["logs", "--since", "2999-01-01T00:00:00Z", "talker"])
            .stdout(),
        ""
    );
    assert_eq!(
        h.cli(&["logs", "--since", "10m", "-n", "1", "talker"])
            .stdout(),
        "two\n"
    );
    h.refused(&["logs", "--since", "yesterday", "talker"], "yesterday");
    h.cli(&["rm", "-f", "talker"]).expect_code(0);
}

#[test]
fn refusals_the_final_read_found_untested() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    let polite = "trap 'exit 0' TERM; touch /ready; while :; do sleep 0.1; done";
    h.run_kept(&["-d", "--name", "kept", r, "sh", "-c", polite])
        .expect_code(0);
    h.run_kept(&["--name", "gone", r, "true"]).expect_code(0);
    eventually("the handler to be set", || {
        h.cli(&["exec", "kept", "test", "-e", "/ready"]).code() == 0
    });
    h.refused(&["stop", "-t", "abc", "kept"], "abc");
    h.refused(&["stop", "-t", "-2", "kept"], "-2");
    h.refused(&["run", "--rm", "--stop-timeout", "x", r, "true"], "\"x\"");
    h.refused(
        &["inspect", "--record", "kept", "gone"],
        "give one container",
    );
    h.refused(
        &["inspect", "-f", "{{index .Args 5}}", "kept"],
        "failed on this object",
    );
    h.refused(&["ps", "--filter", "running"], "running");
    h.refused(
        &["run", "--rm", "--device", "/dev/no-such-node", r, "true"],
        "/dev/no-such-node",
    );
    h.refused(&["cp", "-", "kept:/no-such-dir"], "kept:/no-such-dir");
    h.refused(&["top", "gone"], "it is not running");
    // -1 is no limit: stop returns once the handler has run.
    h.cli(&["stop", "-t", "-1", "kept"]).expect_code(0);
    assert_eq!(h.cli(&["wait", "kept"]).stdout(), "0\n");
    h.cli(&["rm", "kept", "gone"]).expect_code(0);
}
