//! The OCI command line, as runc's clients drive it: create leaves init
//! waiting (and outliving create), start lets it exec, state reports the
//! specification's document, kill and delete act on the kernel's view, and
//! bad input gets one line and exit 1, leaving nothing behind.

mod common;

use std::path::{Path, PathBuf};

use common::eventually;

use common::{rootfs, Harness, Run};

/// A bundle whose root is a symlink to the shared busybox rootfs, read-only:
/// an OCI root is the container's own, and this one is shared.
fn bundle(process: &str, extra: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::os::unix::fs::symlink(rootfs(), dir.join("rootfs")).unwrap();
    let config = format!(
        r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs", "readonly": true}}, "hostname": "oci",
            "process": {process},
            "linux": {{"namespaces": [{{"type": "mount"}}, {{"type": "pid"}}, {{"type": "uts"}},
                                     {{"type": "ipc"}}, {{"type": "network"}}]}}{extra}}}"#
    );
    std::fs::write(dir.join("config.json"), config).unwrap();
    tmp
}

/// `mydocker --root <private> ARGS...` with stdout and stderr in files: a
/// created container's init inherits them and holds them open until it
/// exits, so waiting for the pipes' end (as `Command::output` does) would
/// wait for the container, not for `create`.
fn oci(h: &Harness, args: &[&str]) -> Run {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker"))
        .arg("--root")
        .arg(h.state_root.path())
        .args(args)
        .env_remove("MYDOCKER_ROOT")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .status()
        .unwrap();
    let read = |mut f: std::fs::File| {
        use std::io::{Read, Seek};
        let mut bytes = Vec::new();
        f.rewind().unwrap();
        f.read_to_end(&mut bytes).unwrap();
        bytes
    };
    Run(std::process::Output {
        status,
        stdout: read(out),
        stderr: read(err),
    })
}

fn process(args: &str) -> String {
    format!(
        r#"{{"args": {args}, "cwd": "/", "env": ["PATH=/bin"], "user": {{"uid": 0, "gid": 0}}}}"#
    )
}

fn state(h: &Harness, id: &str) -> serde_json::Value {
    let run = h.cli(&["state", id]);
    serde_json::from_str(&run.expect_code(0).stdout()).unwrap()
}

fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
}

/// The cgroup directories the store recorded for `id`.
fn cgroups_of(h: &Harness, id: &str) -> Vec<PathBuf> {
    let containers = h.state_root.path().join("containers");
    for entry in std::fs::read_dir(containers).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let text = std::fs::read_to_string(dir.join("state.json")).unwrap();
        let record: serde_json::Value = serde_json::from_str(&text).unwrap();
        if record["name"] == id {
            return serde_json::from_value(record["cgroups"].clone()).unwrap();
        }
    }
    panic!("no record named {id}");
}

#[test]
fn create_start_state_and_delete_follow_the_specification() {
    let h = Harness::new();
    let tmp = bundle(
        &process(r#"["sleep", "30"]"#),
        r#", "annotations": {"org.test": "yes"}"#,
    );
    let dir = tmp.path();
    let pid_file = dir.join("pid");
    // A link planted where a fixed temporary name would go must not be
    // followed: the pid file's directory may be writable by others.
    std::fs::write(dir.join("victim"), "untouched").unwrap();
    std::os::unix::fs::symlink(dir.join("victim"), dir.join("pid.tmp")).unwrap();
    let create = oci(
        &h,
        &[
            "create",
            "--bundle",
            dir.to_str().unwrap(),
            "web",
            "--pid-file",
            pid_file.to_str().unwrap(),
        ],
    );
    create.expect_code(0);
    assert!(
        create.stdout().is_empty() && create.stderr().is_empty(),
        "create prints nothing"
    );
    // create has exited; init lives on, waiting, and the pid file says which.
    let created = state(&h, "web");
    assert_eq!(created["status"], "created");
    assert_eq!(created["id"], "web");
    assert_eq!(created["ociVersion"], "1.0.2");
    assert_eq!(
        created["bundle"],
        dir.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(created["annotations"]["org.test"], "yes");
    let pid = created["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert_eq!(
        std::fs::read_to_string(dir.join("victim")).unwrap(),
        "untouched"
    );
    assert!(alive(pid));
    let cgroups = cgroups_of(&h, "web");
    assert!(!cgroups.is_empty() && cgroups.iter().all(|c| c.exists()));
    // Not yet started: the command has not run (init is still mydocker).
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "mydocker");
    // Running or created, a container is not deleted without --force.
    h.cli(&["delete", "web"]).expect_code(1);
    h.cli(&["start", "web"]).expect_code(0);
    assert_eq!(state(&h, "web")["status"], "running");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "sleep", "start let init exec the command");
    // A second start is refused: start runs a created container once.
    h.cli(&["start", "web"]).expect_code(1);
    h.cli(&["kill", "--all", "web", "KILL"]).expect_code(0);
    eventually("init to die", || !alive(pid));
    let stopped = state(&h, "web");
    assert_eq!(stopped["status"], "stopped");
    assert!(stopped.get("pid").is_none());
    h.cli(&["kill", "web", "TERM"]).expect_code(1);
    h.cli(&["delete", "web"]).expect_code(0);
    h.cli(&["state", "web"]).expect_code(1);
    assert!(
        cgroups.iter().all(|c| !c.exists()),
        "delete removes the cgroups"
    );
}

#[test]
fn delete_force_removes_a_created_container_and_its_waiting_init() {
    let h = Harness::new();
    let dir = bundle(&process(r#"["true"]"#), "");
    oci(
        &h,
        &[
            "create",
            "--bundle",
            dir.path().to_str().unwrap(),
            "waiting",
        ],
    )
    .expect_code(0);
    let pid = state(&h, "waiting")["pid"].as_i64().unwrap();
    let cgroups = cgroups_of(&h, "waiting");
    // list shows it as state does, in each of its forms.
    let listed = oci(&h, &["list", "--format", "json"]);
    listed.expect_code(0);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout()).unwrap();
    assert_eq!(listed[0]["id"], "waiting");
    assert_eq!(listed[0]["status"], "created");
    assert_eq!(listed[0]["pid"].as_i64(), Some(pid));
    assert_eq!(oci(&h, &["list", "-q"]).stdout(), "waiting\n");
    let table = oci(&h, &["list"]).stdout();
    assert!(table.starts_with("ID") && table.contains("waiting") && table.contains("created"));
    refused(&h, &["list", "--format", "yaml"], "yaml");
    // Only a running container pauses.
    refused(&h, &["pause", "waiting"], "it is created");
    // docker's rm sees it too, and treats a waiting init as running.
    h.cli(&["rm", "waiting"]).expect_code(125);
    assert!(alive(pid));
    h.cli(&["delete", "--force", "waiting"]).expect_code(0);
    assert!(!alive(pid));
    assert!(cgroups.iter().all(|c| !c.exists()));
    h.cli(&["state", "waiting"]).expect_code(1);
}

#[test]
fn hooks_run_at_their_points_with_the_state_on_stdin() {
    let h = Harness::new();
    let out = tempfile::tempdir().unwrap();
    let hook = |name: &str| {
        format!(
            r#"[{{"path": "/bin/sh", "args": ["sh", "-c", "cat > {}/{name}.json"]}}]"#,
            out.path().display()
        )
    };
    let dir = bundle(
        &process(r#"["sleep", "30"]"#),
        &format!(
            r#", "hooks": {{"createRuntime": {}, "prestart": {}, "poststart": {}, "poststop": {}}}"#,
            hook("createRuntime"),
            hook("prestart"),
            hook("poststart"),
            hook("poststop")
        ),
    );
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(out.path().join(format!("{name}.json"))).unwrap(),
        )
        .unwrap()
    };
    oci(
        &h,
        &["create", "--bundle", dir.path().to_str().unwrap(), "hooked"],
    )
    .expect_code(0);
    for name in ["createRuntime", "prestart"] {
        let state = read(name);
        assert_eq!(state["id"], "hooked", "{name}");
        assert_eq!(state["status"], "created", "{name}");
        assert!(state["pid"].as_i64().unwrap() > 0, "{name}");
    }
    assert!(
        !out.path().join("poststart.json").exists(),
        "not before start"
    );
    oci(&h, &["start", "hooked"]).expect_code(0);
    assert_eq!(read("poststart")["status"], "running");
    oci(&h, &["delete", "--force", "hooked"]).expect_code(0);
    assert_eq!(read("poststop")["status"], "stopped");
}

#[test]
fn features_say_what_create_accepts() {
    let h = Harness::new();
    let run = oci(&h, &["features"]);
    run.expect_code(0);
    let features: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(features["ociVersionMax"], "1.0.2");
    assert_eq!(features["linux"]["seccomp"]["enabled"], true);
    let operators = features["linux"]["seccomp"]["operators"]
        .as_array()
        .unwrap();
    assert!(operators.iter().any(|o| o == "SCMP_CMP_MASKED_EQ"));
    let namespaces = features["linux"]["namespaces"].as_array().unwrap();
    assert!(namespaces.iter().any(|n| n == "user"));
    assert_eq!(features["hooks"], serde_json::json!([]), "no hooks yet");
}

#[track_caller]
fn refused(h: &Harness, args: &[&str], mention: &str) {
    let run = oci(h, args);
    run.expect_code(1);
    let stderr = run.stderr();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(mention),
        "{stderr:?} does not mention {mention:?}"
    );
}

#[test]
fn bad_bundles_get_one_line_exit_1_and_leave_nothing() {
    let h = Harness::new();
    let unsupported = bundle(&process(r#"["true"]"#), r#", "domainname": "example""#);
    let missing = bundle(&process(r#"["no-such-command"]"#), "");
    let bad_type = bundle(
        &process(r#"["true"]"#).replace(r#""uid": 0"#, r#""uid": "root""#),
        "",
    );
    // Parses, but the kernel refuses it: create fails, not start.
    let too_many = bundle(
        &process(r#"["true"]"#).replace(
            r#""cwd""#,
            r#""rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2000000000, "hard": 2000000000}], "cwd""#,
        ),
        "",
    );
    let cases: [(&Path, &str); 4] = [
        (unsupported.path(), "config.json: domainname"),
        (missing.path(), "no-such-command"),
        (bad_type.path(), "process.user.uid"),
        (too_many.path(), "nofile"),
    ];
    for (dir, mention) in cases {
        refused(
            &h,
            &["create", "--bundle", dir.to_str().unwrap(), "bad"],
            mention,
        );
    }
    refused(
        &h,
        &["create", "--bundle", "/nonexistent/bundle", "bad"],
        "/nonexistent/bundle",
    );
    refused(
        &h,
        &[
            "create",
            "--bundle",
            unsupported.path().to_str().unwrap(),
            "a/b",
        ],
        "\"a/b\"",
    );
    refused(&h, &["state", "nobody"], "does not exist");
    refused(
        &h,
        &[
            "create",
            "--bundle",
            missing.path().to_str().unwrap(),
            "--console-socket",
            "/tmp/none.sock",
            "x",
        ],
        "process.terminal",
    );
    refused(
        &h,
        &[
            "spec",
            "--rootless",
            "--bundle",
            missing.path().to_str().unwrap(),
        ],
        "--rootless",
    );
    refused(
        &h,
        &[
            "create",
            "--bundle",
            missing.path().to_str().unwrap(),
            "--preserve-fds",
            "2",
            "x",
        ],
        "--preserve-fds",
    );
    // Joining the runtime's own mount namespace would re-root the host.
    let host_mnt = bundle(&process(r#"["true"]"#), "");
    let config = std::fs::read_to_string(host_mnt.path().join("config.json"))
        .unwrap()
        .replace(
            r#"{"type": "mount"}"#,
            r#"{"type": "mount", "path": "/proc/self/ns/mnt"}"#,
        );
    std::fs::write(host_mnt.path().join("config.json"), config).unwrap();
    refused(
        &h,
        &["create", "--bundle", host_mnt.path().to_str().unwrap(), "x"],
        "linux.namespaces.path",
    );
    // A cgroupsPath naming a cgroup that exists is someone else's.
    let name = format!("mydocker-test-taken-{}", std::process::id());
    let root = Path::new("/sys/fs/cgroup");
    let hierarchy = if root.join("cgroup.controllers").exists() {
        root.to_owned()
    } else {
        root.join("pids")
    };
    let theirs = hierarchy.join(&name);
    std::fs::create_dir(&theirs).unwrap();
    let taken = bundle(&process(r#"["true"]"#), "");
    let config = std::fs::read_to_string(taken.path().join("config.json"))
        .unwrap()
        .replace(
            r#"{"type": "network"}]"#,
            &format!(r#"{{"type": "network"}}], "cgroupsPath": "/{name}""#),
        );
    std::fs::write(taken.path().join("config.json"), config).unwrap();
    let run = oci(
        &h,
        &["create", "--bundle", taken.path().to_str().unwrap(), "x"],
    );
    let kept = theirs.is_dir();
    let _ = std::fs::remove_dir(&theirs);
    run.expect_code(1);
    assert!(run.stderr().contains("exists already"), "{}", run.stderr());
    assert!(kept, "a cgroup mydocker did not make is left alone");
    let failing_hook = bundle(
        &process(r#"["true"]"#),
        r#", "hooks": {"createRuntime": [{"path": "/bin/false"}]}"#,
    );
    refused(
        &h,
        &[
            "create",
            "--bundle",
            failing_hook.path().to_str().unwrap(),
            "x",
        ],
        "hooks.createRuntime[0]",
    );
    let slow_hook = bundle(
        &process(r#"["true"]"#),
        r#", "hooks": {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}"#,
    );
    refused(
        &h,
        &[
            "create",
            "--bundle",
            slow_hook.path().to_str().unwrap(),
            "x",
        ],
        "timeout of 1 s",
    );
    refused(&h, &["start", "nobody"], "\"nobody\"");
    refused(&h, &["delete", "nobody"], "\"nobody\"");
    refused(&h, &["kill", "nobody", "9"], "\"nobody\"");
    let leftover: Vec<_> = std::fs::read_dir(h.state_root.path().join("containers"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    assert!(leftover.is_empty(), "{leftover:?}");
}

#[test]
fn the_docker_command_line_keeps_its_kill() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&["-d", "--name", "web", r, "sleep", "30"])
        .expect_code(0);
    // docker's form: signal by -s, several names; exit 125 on a bad name.
    h.cli(&["kill", "-s", "TERM", "nobody"]).expect_code(125);
    h.cli(&["kill", "web"]).expect_code(0);
    h.cli(&["rm", "-f", "web"]).expect_code(0);
}

#[test]
fn spec_writes_a_config_that_create_takes() {
    let h = Harness::new();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_str().unwrap();
    std::os::unix::fs::symlink(rootfs(), tmp.path().join("rootfs")).unwrap();
    oci(&h, &["spec", "--bundle", dir]).expect_code(0);
    // runc's rule: an existing config.json is never overwritten.
    refused(&h, &["spec", "--bundle", dir], "config.json already");
    let written = std::fs::read_to_string(tmp.path().join("config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(config["process"]["args"][0], "sh");
    oci(&h, &["create", "--bundle", dir, "from-spec"]).expect_code(0);
    assert_eq!(state(&h, "from-spec")["status"], "created");
    oci(&h, &["delete", "--force", "from-spec"]).expect_code(0);
}
