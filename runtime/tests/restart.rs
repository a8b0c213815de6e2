//! Starting containers again: `restart` by hand, and `run --restart`, whose
//! policy the detached monitor follows. Each container keeps its id, name,
//! upper layer, log and address across its runs; nothing of any run is
//! left once it is removed (the harness checks).

mod common;

use common::{eventually, rootfs, Harness};

/// One field of `inspect`, by docker's template.
fn field(h: &Harness, template: &str, name: &str) -> String {
    let shown = h.cli(&["inspect", "-f", template, name]);
    shown.expect_code(0).stdout().trim().to_owned()
}

/// mydocker's own record of a container.
fn record(h: &Harness, name: &str) -> serde_json::Value {
    serde_json::from_str(
        &h.cli(&["inspect", "--record", name])
            .expect_code(0)
            .stdout(),
    )
    .unwrap()
}

/// Whether the container's monitor process still runs: once it is gone,
/// nobody will start the container again.
fn monitor_alive(h: &Harness, name: &str) -> bool {
    let record = record(h, name);
    let pid = record["monitor_pid"].as_i64().unwrap();
    let start = record["monitor_start"].as_u64().unwrap();
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(19) == Some(&start.to_string())
    })
}

fn log_lines(h: &Harness, name: &str) -> usize {
    h.cli(&["logs", name])
        .expect_code(0)
        .stdout()
        .lines()
        .count()
}

#[test]
fn on_failure_restarts_a_failing_container_up_to_its_count_and_no_further() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    let failing = "echo run; exit 3";
    let args = |name: &'static str, policy: &'static str, script: &'static str| {
        vec![
            "-d",
            "--name",
            name,
            "--restart",
            policy,
            r,
            "sh",
            "-c",
            script,
        ]
    };
    h.run_kept(&args("failing", "on-failure:2", failing))
        .expect_code(0);
    // The controls: no policy, and a success under on-failure.
    h.run_kept(&args("control", "no", failing)).expect_code(0);
    h.run_kept(&args("succeeding", "on-failure", "echo run"))
        .expect_code(0);
    // `wait`, as docker's, returns as a run ends, restarted or not.
    assert_eq!(h.cli(&["wait", "failing"]).expect_code(0).stdout(), "3\n");
    for name in ["failing", "control", "succeeding"] {
        eventually("the monitor to give up", || !monitor_alive(&h, name));
    }
    // Three runs: the first, then two restarts; each wrote to the one log.
    assert_eq!(field(&h, "{{.RestartCount}}", "failing"), "2");
    assert_eq!(log_lines(&h, "failing"), 3);
    assert_eq!(field(&h, "{{.State.Status}}", "failing"), "exited");
    assert_eq!(h.cli(&["wait", "failing"]).expect_code(0).stdout(), "3\n");
    assert_eq!(
        field(&h, "{{json .HostConfig.RestartPolicy}}", "failing"),
        r#"{"MaximumRetryCount":2,"Name":"on-failure"}"#
    );
    for name in ["control", "succeeding"] {
        assert_eq!(field(&h, "{{.RestartCount}}", name), "0");
        assert_eq!(log_lines(&h, name), 1, "{name}");
    }
    h.cli(&["rm", "failing", "control", "succeeding"])
        .expect_code(0);
}

#[test]
fn always_restarts_until_stopped_or_killed_by_hand() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    // Each run prints and ends at once, successfully.
    for name in ["stopped", "killed"] {
        h.run_kept(&[
            "-d",
            "--name",
            name,
            "--restart",
            "always",
            r,
            "sh",
            "-c",
            "echo run",
        ])
        .expect_code(0);
    }
    for name in ["stopped", "killed"] {
        eventually("three restarts", || {
            field(&h, "{{.RestartCount}}", name).parse::<u32>().unwrap() >= 3
        });
    }
    // Between runs it waits, longer each time: docker's `restarting`,
    // which plain `ps` lists, as docker's does.
    eventually("the restarting state", || {
        h.cli(&[
            "ps",
            "--filter",
            "status=restarting",
            "--format",
            "{{.Names}}",
        ])
        .stdout()
        .contains("stopped")
    });
    let status = h
        .cli(&[
            "ps",
            "-a",
            "--filter",
            "name=stopped",
            "--format",
            "{{.Status}}",
        ])
        .stdout();
    assert!(
        status.starts_with("Restarting (0)") || status.starts_with("Up"),
        "{status}"
    );
    // rm refuses it, restarting (as docker does) or running.
    h.refused(&["rm", "stopped"], "stopped");
    // A stop by hand ends the policy's care: the monitor goes, and with it
    // every chance of another run.
    h.cli(&["stop", "stopped"]).expect_code(0);
    eventually("the monitor to end", || !monitor_alive(&h, "stopped"));
    assert_eq!(field(&h, "{{.State.Status}}", "stopped"), "exited");
    // `wait` returns as each run ends, with its code.
    assert_eq!(h.cli(&["wait", "killed"]).expect_code(0).stdout(), "0\n");
    // So does a kill, whether it finds the container running or between
    // two runs (as docker's, it succeeds there too).
    h.cli(&["kill", "killed"]).expect_code(0);
    eventually("the monitor to end", || !monitor_alive(&h, "killed"));
    // `restart` starts it again, and the policy with it, counting anew.
    h.cli(&["restart", "stopped"]).expect_code(0);
    eventually("the policy to restart it again", || {
        field(&h, "{{.RestartCount}}", "stopped") == "1" && monitor_alive(&h, "stopped")
    });
    h.cli(&["rm", "-f", "stopped", "killed"]).expect_code(0);
}

#[test]
fn restart_keeps_the_containers_files_and_log_and_starts_it_detached() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&[
        "-d",
        "--name",
        "web",
        r,
        "sh",
        "-c",
        "echo started; sleep 60",
    ])
    .expect_code(0);
    eventually("the first line", || log_lines(&h, "web") == 1);
    h.cli(&["exec", "web", "sh", "-c", "echo kept > /kept"])
        .expect_code(0);
    let first = record(&h, "web");
    // sleep as PID 1 ignores TERM: -t 1 kills it after a second.
    let restarted = h.cli(&["restart", "-t", "1", "web"]);
    assert_eq!(restarted.expect_code(0).stdout(), "web\n");
    let second = record(&h, "web");
    assert_eq!(second["id"], first["id"]);
    assert_ne!(second["pid"], first["pid"]);
    assert_eq!(second["status"], "running");
    assert_eq!(
        h.cli(&["exec", "web", "cat", "/kept"])
            .expect_code(0)
            .stdout(),
        "kept\n"
    );
    eventually("the second run's line", || log_lines(&h, "web") == 2);
    assert_eq!(field(&h, "{{.RestartCount}}", "web"), "0");
    // A container that ran in the foreground and exited starts detached.
    h.run_kept(&["--name", "once", r, "sh", "-c", "echo $$; exit 4"])
        .expect_code(4);
    h.cli(&["restart", "once"]).expect_code(0);
    assert_eq!(h.cli(&["wait", "once"]).expect_code(0).stdout(), "4\n");
    assert_eq!(h.cli(&["logs", "once"]).expect_code(0).stdout(), "1\n");
    // A --rm container is kept through its restart, and removed by a stop.
    let removable = h.run_kept(&["-d", "--rm", "--name", "rm", r, "sleep", "60"]);
    removable.expect_code(0);
    h.cli(&["exec", "rm", "touch", "/mark"]).expect_code(0);
    h.cli(&["restart", "-t", "0", "rm"]).expect_code(0);
    h.cli(&["exec", "rm", "test", "-e", "/mark"]).expect_code(0);
    h.cli(&["stop", "-t", "0", "rm"]).expect_code(0);
    eventually("the --rm container to go", || {
        h.cli(&["inspect", "rm"]).code() != 0
    });
    h.cli(&["rm", "-f", "web", "once"]).expect_code(0);
}

#[test]
fn a_restart_that_cannot_exec_keeps_the_container_and_says_why() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&["-d", "--name", "broken", r, "sleep", "60"])
        .expect_code(0);
    // The command goes from the container's own layer; the image keeps it.
    h.cli(&["exec", "broken", "rm", "/bin/sleep"])
        .expect_code(0);
    // One line, as for every container a many-container command fails on.
    let failed = h.cli(&["restart", "-t", "0", "broken"]);
    failed.expect_code(125);
    assert_eq!(failed.stderr().lines().count(), 1, "{}", failed.stderr());
    assert!(failed.stderr().contains("sleep"), "{}", failed.stderr());
    // It is still there, exited with the code its start failed with, its
    // upper layer with it.
    assert_eq!(field(&h, "{{.State.Status}}", "broken"), "exited");
    assert_eq!(field(&h, "{{.State.ExitCode}}", "broken"), "127");
    assert!(h
        .cli(&["cp", "broken:/bin/sleep", "-"])
        .stderr()
        .contains("sleep"));
    h.cli(&["rm", "broken"]).expect_code(0);
}

#[test]
fn restart_and_policies_refuse_bad_input_with_125() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    for policy in ["sometimes", "on-failure:x", "always:2", "on-failure:-1"] {
        h.refused(&["run", "-d", "--restart", policy, r, "true"], policy);
    }
    h.refused(&["run", "--restart", "always", r, "true"], "only with -d");
    h.refused(
        &["run", "-d", "--rm", "--restart", "always", r, "true"],
        "--rm",
    );
    h.refused(&["restart", "no-such-container"], "no-such-container");
    h.refused(&["restart", "-t", "soon", "x"], "soon");
    h.refused(&["restart", "-s", "NOPE", "x"], "NOPE");
    // A container that had a terminal cannot start again without one.
    h.run_kept(&["-t", "--name", "tty", r, "true"])
        .expect_code(0);
    h.refused(&["restart", "tty"], "-t");
    // One whose spec was not kept (an older mydocker's) says so, and stays.
    let id = record(&h, "tty")["id"].as_str().unwrap().to_owned();
    let kept = h
        .state_root
        .path()
        .join("containers")
        .join(&id)
        .join("spec.json");
    std::fs::remove_file(kept).unwrap();
    h.refused(&["restart", "tty"], "older mydocker");
    assert_eq!(field(&h, "{{.State.Status}}", "tty"), "exited");
    h.cli(&["rm", "tty"]).expect_code(0);
    // Nothing was created by any of them.
    assert!(h.state_files().is_empty(), "{:?}", h.state_files());
}
