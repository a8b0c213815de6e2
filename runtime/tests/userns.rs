//! User namespaces end to end: `--userns=auto` as root, the id pool running
//! dry, and rootless runs by an ordinary user (`nobody`, through setpriv).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::{rootfs, Harness, Run};

fn r() -> &'static str {
    rootfs().to_str().unwrap()
}

/// A harness whose state root the container's mapped root can reach,
/// whatever mode the umask gave the tempdir.
fn harness() -> Harness {
    let h = Harness::new();
    std::fs::set_permissions(h.state_root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    h
}

/// The host uid that uid 0 maps to, from a `uid_map` printed inside.
fn mapped_root(uid_map: &str) -> u32 {
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    assert_eq!(fields[0], "0", "{uid_map}");
    fields[1].parse().unwrap()
}

/// Starts `sleep 30` detached with `--userns=auto`, its ids taken from the
/// subordinate id file `pool` when one is given; returns the container's id
/// and the host uid its root maps to.
fn start_mapped(h: &Harness, pool: Option<&Path>) -> (String, u64) {
    let mut command = h.command(&["-d", "--userns", "auto", r(), "sleep", "30"]);
    if let Some(pool) = pool {
        command
            .env("MYDOCKER_SUBUID", pool)
            .env("MYDOCKER_SUBGID", pool);
    }
    let run = Run(command.output().expect("spawn mydocker"));
    run.expect_code(0);
    let id = run.stdout().trim().to_owned();
    let record: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "--record", &id]).stdout()).unwrap();
    (id, record["userns"]["uid"].as_u64().unwrap())
}

#[test]
fn containers_running_at_once_never_share_a_block() {
    let h = harness();
    let (first, second) = (start_mapped(&h, None), start_mapped(&h, None));
    assert_ne!(first.1, second.1, "both got uid {}", first.1);
    for (id, _) in [first, second] {
        h.cli(&["rm", "-f", &id]).expect_code(0);
    }
}

#[test]
fn auto_with_no_free_block_is_refused_and_leaves_nothing() {
    let h = harness();
    let pool = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pool.path(), "mydocker:200000:1000\n").unwrap();
    let mut command = h.command(&["--userns", "auto", r(), "true"]);
    command
        .env("MYDOCKER_SUBUID", pool.path())
        .env("MYDOCKER_SUBGID", pool.path());
    let run = Run(command.output().expect("spawn mydocker"));
    run.expect_code(125);
    let stderr = run.stderr();
    assert!(
        stderr.contains("--userns") && stderr.contains("no free block"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn auto_names_a_directory_the_mapped_root_cannot_search() {
    // Through a 0700 directory the container's root, an ordinary uid on the
    // host, could not reach its layers.
    let h = Harness::new();
    std::fs::set_permissions(h.state_root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    h.refused(
        &["run", "--rm", "--userns", "auto", r(), "true"],
        "cannot search",
    );
}

#[test]
fn an_unknown_userns_mode_is_refused_by_name() {
    let h = harness();
    h.refused(&["run", "--rm", "--userns", "bogus", r(), "true"], "bogus");
}

#[test]
fn auto_refuses_the_host_network() {
    let h = harness();
    h.refused(
        &[
            "run",
            "--rm",
            "--userns",
            "auto",
            "--network",
            "host",
            r(),
            "true",
        ],
        "--network",
    );
}

/// `mydocker ARGS` as the user nobody, with a state root it owns.
fn as_nobody(state: &Path, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_mydocker"))
        .arg("--root")
        .arg(state)
        .args(args)
        .output()
        .expect("run setpriv (util-linux)")
}

#[test]
fn an_ordinary_user_runs_a_container_as_root_of_its_own_namespace() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    nix::unistd::chown(dir.path(), Some(65534.into()), Some(65534.into())).unwrap();
    let state = dir.path().join("state");
    let run = as_nobody(
        &state,
        &[
            "run",
            "--rm",
            "--userns",
            "auto",
            r(),
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; touch /mine",
        ],
    );
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("0"));
    assert_eq!(mapped_root(lines.next().unwrap()), 65534);
    // --rm removed everything, overlayfs's mode-000 work directory included.
    assert_no_containers_in(&state);
}

#[test]
fn an_ordinary_user_is_told_each_limit_it_cannot_have_and_to_ask_for_a_namespace() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    nix::unistd::chown(dir.path(), Some(65534.into()), Some(65534.into())).unwrap();
    let state = dir.path().join("state");
    let limited = as_nobody(
        &state,
        &[
            "run",
            "--rm",
            "--userns",
            "auto",
            "-m",
            "64m",
            "--pids-limit",
            "10",
            r(),
            "true",
        ],
    );
    assert_eq!(limited.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&limited.stderr);
    assert!(
        stderr.contains("--memory") && stderr.contains("--pids-limit"),
        "{stderr}"
    );
    let host = as_nobody(&state, &["run", "--rm", r(), "true"]);
    assert_eq!(host.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&host.stderr).contains("--userns=auto"));
    let bridged = as_nobody(
        &state,
        &[
            "run",
            "--rm",
            "--userns",
            "auto",
            "--network",
            "br0",
            r(),
            "true",
        ],
    );
    assert_eq!(bridged.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&bridged.stderr).contains("needs root"));
}

#[test]
fn exec_joins_the_user_namespace_as_its_root() {
    let h = harness();
    h.cli(&[
        "run",
        "-d",
        "--cgroup-parent",
        &h.cgroup_parent,
        "--name",
        "mapped",
        "--userns",
        "auto",
        r(),
        "sleep",
        "30",
    ])
    .expect_code(0);
    let run = h.cli(&[
        "exec",
        "mapped",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    run.expect_code(0);
    let stdout = run.stdout();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("0"));
    assert_ne!(mapped_root(lines.next().unwrap()), 0, "{stdout}");
    h.cli(&["rm", "-f", "mapped"]).expect_code(0);
}

#[test]
fn containers_of_different_state_roots_never_share_a_block_and_claims_go_with_them() {
    let (a, b) = (harness(), harness());
    let (id_a, uid_a) = start_mapped(&a, None);
    let (id_b, uid_b) = start_mapped(&b, None);
    assert_ne!(uid_a, uid_b, "two state roots were given the same ids");
    // A claim names its container's state directory. Other tests run beside
    // this one and may claim a block as soon as it is free.
    let held_by = |uid: u64, id: &str| {
        let claim = std::path::Path::new(runtime::userns::CLAIMS).join(uid.to_string());
        std::fs::read_to_string(claim).is_ok_and(|text| {
            text.lines()
                .next()
                .is_some_and(|holder| holder.ends_with(id))
        })
    };
    assert!(held_by(uid_a, &id_a) && held_by(uid_b, &id_b));
    a.cli(&["rm", "-f", &id_a]).expect_code(0);
    b.cli(&["rm", "-f", &id_b]).expect_code(0);
    assert!(
        !held_by(uid_a, &id_a) && !held_by(uid_b, &id_b),
        "a claim outlived its container"
    );
}

#[test]
fn blocks_from_different_pools_never_overlap() {
    // Two state roots whose pools start half a block apart: equal first ids
    // are not the only way to share ids.
    let pools = tempfile::tempdir().unwrap();
    let (a, b) = (harness(), harness());
    let pool = |first: u32| {
        let path = pools.path().join(first.to_string());
        std::fs::write(&path, format!("mydocker:{first}:262144\n")).unwrap();
        path
    };
    let (id_a, uid_a) = start_mapped(&a, Some(&pool(1_500_000_000)));
    let (id_b, uid_b) = start_mapped(&b, Some(&pool(1_500_032_768)));
    let apart = uid_a.abs_diff(uid_b) >= 65536;
    a.cli(&["rm", "-f", &id_a]).expect_code(0);
    b.cli(&["rm", "-f", &id_b]).expect_code(0);
    assert!(apart, "blocks at {uid_a} and {uid_b} overlap");
}

#[test]
fn a_container_under_other_ids_dies_with_its_killed_monitor() {
    // Taking on the namespace's ids clears the parent-death signal; init
    // must set it again, or the container outlives a killed runtime.
    let h = harness();
    let (id, _) = start_mapped(&h, None);
    let record: serde_json::Value =
        serde_json::from_str(&h.cli(&["inspect", "--record", &id]).stdout()).unwrap();
    let (init, monitor) = (
        record["pid"].as_i64().unwrap() as i32,
        record["monitor_pid"].as_i64().unwrap() as i32,
    );
    let alive =
        || std::fs::read_to_string(format!("/proc/{init}/stat")).is_ok_and(|s| !s.contains(") Z "));
    assert!(alive(), "the control: init runs before the kill");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(monitor),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    common::eventually("init to die with its monitor", || !alive());
    // Started with --rm: the next command finishes its teardown and removes it.
    let ps = h.cli(&["ps", "-a"]).stdout();
    assert!(!ps.contains(&id[..12]), "{ps}");
}

#[test]
fn a_file_copied_into_a_mapped_container_belongs_to_its_root() {
    let h = harness();
    let (id, root_uid) = start_mapped(&h, None);
    let host = tempfile::tempdir().unwrap();
    let file = host.path().join("copied");
    std::fs::write(&file, "in\n").unwrap();
    // Into `/`, the one directory of the image its root owns here (the
    // image's own are the host root's, which the namespace cannot map).
    h.cli(&["cp", file.to_str().unwrap(), &format!("{id}:/")])
        .expect_code(0);
    // Inside, its root's; on the host, the block's first id, not uid 0.
    let inside = h.cli(&["exec", &id, "stat", "-c", "%u:%g", "/copied"]);
    assert_eq!(inside.expect_code(0).stdout().trim(), "0:0");
    let upper = h
        .state_root
        .path()
        .join("containers")
        .join(&id)
        .join("upper/copied");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        u64::from(std::fs::metadata(&upper).unwrap().uid()),
        root_uid
    );
    h.cli(&["rm", "-f", &id]).expect_code(0);
}

#[test]
fn a_device_under_another_name_is_the_hosts_node_in_a_mapped_container() {
    let h = harness();
    // A user namespace may not make nodes: the host's is bound instead,
    // from its own path, not the container's.
    let run = h.run(&[
        "--userns",
        "auto",
        "--device",
        "/dev/zero:/dev/myzero",
        r(),
        "sh",
        "-c",
        "head -c 2 /dev/myzero | od -An -tx1",
    ]);
    assert_eq!(run.expect_code(0).stdout().trim(), "00 00");
}

/// The claim files under `/run/mydocker/userns` naming the directory of
/// container `id`.
fn claims_of(h: &Harness, id: &str) -> Vec<std::path::PathBuf> {
    let dir = h
        .state_root
        .path()
        .join("containers")
        .join(id)
        .canonicalize()
        .unwrap();
    let Ok(entries) = std::fs::read_dir("/run/mydocker/userns") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| {
            std::fs::read(p).is_ok_and(|text| text.starts_with(dir.as_os_str().as_encoded_bytes()))
        })
        .collect()
}

#[test]
fn a_restart_keeps_the_owners_the_container_gave_and_claims_its_ids_again() {
    let h = harness();
    let run = h.run_kept(&[
        "-d",
        "--name",
        "owned",
        "--userns",
        "auto",
        r(),
        "sleep",
        "30",
    ]);
    let id = run.expect_code(0).stdout().trim().to_owned();
    let change = "echo x > /data && chown 1000:1000 /data && chmod 4755 /data";
    h.cli(&["exec", "owned", "sh", "-c", change]).expect_code(0);
    // As after a reboot, which empties /run: the claim is gone.
    let claims = claims_of(&h, &id);
    assert_eq!(claims.len(), 1, "{claims:?}");
    std::fs::remove_file(&claims[0]).unwrap();
    h.cli(&["restart", "-t", "0", "owned"]).expect_code(0);
    // Its files are as its processes left them: the owner inside, and the
    // setuid bit that a chown would have cleared.
    let shown = h.cli(&["exec", "owned", "stat", "-c", "%u:%g %a", "/data"]);
    assert_eq!(shown.expect_code(0).stdout(), "1000:1000 4755\n");
    assert_eq!(claims_of(&h, &id), claims);
    h.cli(&["rm", "-f", "owned"]).expect_code(0);
    assert!(claims_of_gone(&claims));
}

fn claims_of_gone(claims: &[std::path::PathBuf]) -> bool {
    claims.iter().all(|c| !c.exists())
}

#[test]
fn an_ordinary_user_restarts_its_containers_kept_or_removed_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    nix::unistd::chown(dir.path(), Some(65534.into()), Some(65534.into())).unwrap();
    let state = dir.path().join("state");
    let ok = |args: &[&str]| {
        let out = as_nobody(&state, args);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    ok(&[
        "run",
        "--name",
        "once",
        "--userns",
        "auto",
        r(),
        "sh",
        "-c",
        "echo ran",
    ]);
    assert_eq!(ok(&["restart", "once"]), "once\n");
    assert_eq!(ok(&["wait", "once"]), "0\n");
    assert_eq!(ok(&["logs", "once"]), "ran\n");
    // A --rm container's volatile overlay left overlayfs's mode-000 work
    // directory and its mark: the start again clears them as their owner.
    ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "kept",
        "--userns",
        "auto",
        r(),
        "sleep",
        "30",
    ]);
    ok(&["exec", "kept", "touch", "/mark"]);
    ok(&["restart", "-t", "0", "kept"]);
    ok(&["exec", "kept", "test", "-e", "/mark"]);
    ok(&["rm", "-f", "kept", "once"]);
    assert_no_containers_in(&state);
}

#[test]
fn a_new_volume_of_a_userns_container_keeps_the_images_owners_shifted_into_its_ids() {
    let h = harness();
    // An image with a file of uid 1000, under two names (a hard link).
    let make = "mkdir /data && echo x > /data/f && chown 1000:1000 /data/f && ln /data/f /data/g";
    h.run_kept(&["--name", "maker", r(), "sh", "-c", make])
        .expect_code(0);
    h.cli(&["commit", "maker", "owned"]).expect_code(0);
    h.cli(&["rm", "maker"]).expect_code(0);
    let script = "stat -c %u /data/f /data/g; touch /data/new && echo wrote";
    let run = h.run(&[
        "--userns",
        "auto",
        "-v",
        "uvol:/data",
        "owned",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(run.expect_code(0).stdout(), "1000\n1000\nwrote\n");
    // On the host, each name's file is uid 1000 shifted into the block.
    let data = h.state_root.path().join("volumes/uvol/_data");
    let uid = |name: &str| {
        std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(data.join(name)).unwrap())
    };
    let root = uid("new");
    assert!(root >= 65536, "{root}");
    assert_eq!((uid("f"), uid("g")), (root + 1000, root + 1000));
    h.cli(&["volume", "rm", "uvol"]).expect_code(0);
    h.cli(&["rmi", "owned"]).expect_code(0);
}

/// Asserts that a state root holds no container directory.
fn assert_no_containers_in(state: &Path) {
    let left: Vec<_> = std::fs::read_dir(state.join("containers"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
