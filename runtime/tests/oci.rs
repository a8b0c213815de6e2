//! The OCI command line, as runc's clients drive it: create leaves init
//! waiting (and outliving create), start lets it exec, state reports the
//! specification's document, kill and delete act on the kernel's view, and
//! bad input gets one line and exit 1, leaving nothing behind.

mod common;

use std::os::fd::AsRawFd;
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
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker"));
    command.arg("--root").arg(h.state_root.path()).args(args);
    output_in_files(command)
}

/// Runs `command` with stdin from /dev/null and its output in files.
fn output_in_files(mut command: std::process::Command) -> Run {
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let status = command
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
    // A command that ends at once: poststart still hears of it running.
    let dir = bundle(
        &process(r#"["true"]"#),
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
    assert_eq!(read("poststart")["pid"], read("prestart")["pid"]);
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
    // A leading dot is the store's own (its tombstones), `..` its parent.
    for id in ["..", ".removing-x"] {
        refused(
            &h,
            &[
                "create",
                "--bundle",
                unsupported.path().to_str().unwrap(),
                id,
            ],
            "not starting with '.'",
        );
    }
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

/// A mount namespace standing in for the host's, held by a process: a
/// container made without a mount namespace mounts in its caller's table,
/// and a failing test must not leave that in the real one. Killing the
/// holders ends the namespaces and whatever is mounted in them.
///
/// As on a systemd host, `shared` is a shared mount (the test's state
/// root), and a second namespace, the peer, received a copy of it: a mount
/// made below it in the first shows up in the peer unless made private.
struct MountTable {
    holder: std::process::Child,
    peer: std::process::Child,
}

impl MountTable {
    fn new(shared: &Path) -> MountTable {
        let shared = shared.to_str().unwrap();
        let holder = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {shared} {shared} && mount --make-shared {shared} && exec sleep 600"
            ))
            .spawn()
            .unwrap();
        let own = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let ns_of = |pid: u32| std::fs::read_link(format!("/proc/{pid}/ns/mnt"));
        let comm_of = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/comm"));
        eventually("the holder to unshare and share", || {
            ns_of(holder.id()).is_ok_and(|ns| ns != own)
                && comm_of(holder.id()).is_ok_and(|c| c.trim() == "sleep")
        });
        let peer = std::process::Command::new("nsenter")
            .arg(format!("--mount=/proc/{}/ns/mnt", holder.id()))
            .args([
                "unshare",
                "--mount",
                "--propagation",
                "unchanged",
                "sleep",
                "600",
            ])
            .spawn()
            .unwrap();
        let holder_ns = ns_of(holder.id()).unwrap();
        eventually("the peer to unshare", || {
            ns_of(peer.id()).is_ok_and(|ns| ns != own && ns != holder_ns)
                && comm_of(peer.id()).is_ok_and(|c| c.trim() == "sleep")
        });
        MountTable { holder, peer }
    }

    fn ns(&self, kind: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/{kind}", self.holder.id()))
    }

    /// `mydocker --root ROOT ARGS...` run inside the namespace, its output
    /// in files (a created init holds them open, see [`oci`]).
    fn oci(&self, root: &Path, args: &[&str]) -> Run {
        let mut command = std::process::Command::new("nsenter");
        command
            .arg(format!("--mount={}", self.ns("mnt").display()))
            .arg(env!("CARGO_BIN_EXE_mydocker"))
            .arg("--root")
            .arg(root)
            .args(args);
        output_in_files(command)
    }

    /// Mount points strictly below `dir`, in the namespace or its peer.
    fn below(&self, dir: &Path, in_peer: bool) -> Vec<String> {
        let pid = if in_peer {
            self.peer.id()
        } else {
            self.holder.id()
        };
        let table = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
        let dir = format!("{}/", dir.to_str().unwrap());
        table
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&dir))
            .map(String::from)
            .collect()
    }
}

impl Drop for MountTable {
    fn drop(&mut self) {
        for child in [&mut self.peer, &mut self.holder] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn a_container_without_mount_or_pid_namespace_shares_them_and_leaves_no_mount() {
    use std::os::unix::fs::MetadataExt;
    let h = Harness::new();
    let state_root = h.state_root.path().canonicalize().unwrap();
    let table = MountTable::new(&state_root);
    // The store is named through a link: what is mounted below it must
    // still be found and detached by its real path.
    let links = tempfile::tempdir().unwrap();
    let root_link = links.path().join("state");
    std::os::unix::fs::symlink(&state_root, &root_link).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::os::unix::fs::symlink(rootfs(), dir.join("rootfs")).unwrap();
    // runtime-tools' linux_ns_itype: no namespace listed, so every one is
    // the caller's. The command leaves a child behind that init does not
    // wait for: without a pid namespace, init's death does not end it.
    let config = format!(
        r#"{{"ociVersion": "1.0.2", "root": {{"path": "rootfs", "readonly": true}},
            "process": {},
            "mounts": [{{"destination": "/proc", "type": "proc", "source": "proc"}},
                       {{"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}}],
            "linux": {{"namespaces": []}}}}"#,
        process(r#"["sh", "-c", "sleep 300 & exec sleep 301"]"#)
    );
    std::fs::write(dir.join("config.json"), config).unwrap();
    let oci = |args: &[&str]| table.oci(&root_link, args);
    oci(&["create", "--bundle", dir.to_str().unwrap(), "hostns"]).expect_code(0);
    let pid = state(&h, "hostns")["pid"].as_i64().unwrap();
    for kind in ["mnt", "pid", "net", "ipc", "uts"] {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap(),
            std::fs::read_link(table.ns(kind)).unwrap(),
            "{kind}: the caller's namespace"
        );
    }
    let mounted = table.below(&state_root, false);
    assert_eq!(
        mounted.len(),
        4,
        "merged's private self-bind, the root on it, /proc and /tmp: {mounted:?}"
    );
    // The peer saw only the empty self-bind arrive: not the root, not the
    // mounts below it.
    let in_peer = table.below(&state_root, true);
    assert_eq!(in_peer.len(), 1, "{in_peer:?}");
    let peer_view = format!("/proc/{}/root{}", table.peer.id(), in_peer[0]);
    assert_eq!(
        std::fs::read_dir(&peer_view).unwrap().count(),
        0,
        "{peer_view}"
    );
    // Entered with chroot: its root is the bind in the state directory.
    let root = std::fs::read_link(format!("/proc/{pid}/root")).unwrap();
    assert!(root.starts_with(&state_root), "{}", root.display());
    oci(&["start", "hostns"]).expect_code(0);
    let cgroups = cgroups_of(&h, "hostns");
    let members = || -> Vec<i64> {
        let procs = std::fs::read_to_string(cgroups[0].join("cgroup.procs")).unwrap_or_default();
        procs.lines().filter_map(|l| l.parse().ok()).collect()
    };
    eventually("the command's child", || members().len() == 2);
    let child = members().into_iter().find(|p| *p != pid).unwrap();
    // The root is read-only through the bind, as config.json says.
    let write = std::process::Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-r", "-w", "/bin/touch", "/written"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("Read-only file system"),
        "{write:?}"
    );
    assert!(!rootfs().join("written").exists());
    // exec enters the same root, not the caller's: `/` there is the
    // bundle's root directory.
    let listed = oci(&["exec", "hostns", "ls", "-id", "/"]);
    listed.expect_code(0);
    let inode = std::fs::metadata(rootfs()).unwrap().ino();
    assert_eq!(
        listed.stdout().split_whitespace().next(),
        Some(inode.to_string().as_str()),
        "{}",
        listed.stdout()
    );
    oci(&["delete", "--force", "hostns"]).expect_code(0);
    assert!(
        !alive(pid) && !alive(child),
        "delete ends every process of its cgroups"
    );
    assert!(
        cgroups.iter().all(|c| !c.exists()),
        "delete removes the cgroups"
    );
    assert_eq!(table.below(&state_root, false), Vec::<String>::new());
    assert_eq!(table.below(&state_root, true), Vec::<String>::new());
    assert!(
        rootfs().join("bin/busybox").exists(),
        "the root's files are untouched"
    );
}

#[test]
fn preserve_fds_passes_the_callers_descriptors_on_and_refuses_closed_ones() {
    use std::os::unix::process::CommandExt;
    let h = Harness::new();
    // Then the command's descriptors are listed: stdio, the two passed on,
    // and none of the runtime's.
    let tmp = bundle(
        &process(
            r#"["sh", "-c", "echo through 3 >&3; echo through 4 >&4; exec ls -l /proc/self/fd"]"#,
        ),
        r#", "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]"#,
    );
    let dir = tmp.path().to_str().unwrap();
    let out3 = tempfile::NamedTempFile::new().unwrap();
    let out4 = tempfile::NamedTempFile::new().unwrap();
    // Copies far above 3 and 4, so that neither dup2 below lands on the other.
    // SAFETY: F_DUPFD_CLOEXEC duplicates descriptors the files own.
    let (fd3, fd4) = unsafe {
        (
            libc::fcntl(out3.as_file().as_raw_fd(), libc::F_DUPFD_CLOEXEC, 500),
            libc::fcntl(out4.as_file().as_raw_fd(), libc::F_DUPFD_CLOEXEC, 500),
        )
    };
    assert!(fd3 >= 500 && fd4 >= 500);
    let err = tempfile::NamedTempFile::new().unwrap();
    let listing = tempfile::NamedTempFile::new().unwrap();
    let mut create = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker"));
    create
        .arg("--root")
        .arg(h.state_root.path())
        .args(["create", "--bundle", dir, "--preserve-fds", "2", "fds"])
        .stdout(listing.reopen().unwrap())
        .stderr(err.reopen().unwrap());
    // SAFETY: dup2 between descriptors this process holds, after fork.
    unsafe {
        create.pre_exec(move || {
            if libc::dup2(fd3, 3) < 0 || libc::dup2(fd4, 4) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let created = create.status().unwrap();
    // SAFETY: closing the copies made above, which nothing else uses.
    unsafe {
        libc::close(fd3);
        libc::close(fd4);
    }
    assert!(
        created.success(),
        "{}",
        std::fs::read_to_string(err.path()).unwrap()
    );
    h.cli(&["start", "fds"]).expect_code(0);
    eventually("the command to list its descriptors", || {
        std::fs::read_to_string(listing.path()).is_ok_and(|s| s.contains(" 4 -> "))
    });
    assert_eq!(std::fs::read_to_string(out3.path()).unwrap(), "through 3\n");
    assert_eq!(std::fs::read_to_string(out4.path()).unwrap(), "through 4\n");
    let listed = std::fs::read_to_string(listing.path()).unwrap();
    let open: Vec<(&str, &str)> = listed
        .lines()
        .filter_map(|l| l.split_once(" -> "))
        .filter_map(|(left, target)| Some((left.rsplit(' ').next()?, target)))
        .collect();
    let (numbers, targets): (Vec<&str>, Vec<&str>) = open
        .iter()
        .filter(|(_, target)| !target.ends_with("/fd"))
        .copied()
        .unzip();
    assert_eq!(
        numbers,
        ["0", "1", "2", "3", "4"],
        "ls' own directory aside: {listed}"
    );
    assert_eq!(targets[3], out3.path().to_str().unwrap());
    h.cli(&["delete", "--force", "fds"]).expect_code(0);
    // `oci` starts create with stdio alone (every other descriptor of
    // ours is close-on-exec): a count that reaches descriptors that are
    // not open is refused, naming the first.
    let refusal = oci(
        &h,
        &["create", "--bundle", dir, "--preserve-fds", "900", "gap"],
    );
    refusal.expect_code(1);
    assert!(
        refusal.stderr().contains("--preserve-fds")
            && refusal.stderr().contains("descriptor 3 is not open"),
        "{}",
        refusal.stderr()
    );
    h.cli(&["state", "gap"]).expect_code(1);
}
