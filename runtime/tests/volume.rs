//! Named and anonymous volumes: directories under the state root that
//! outlive their containers, made on first use and filled from the image,
//! never removed while a container names them (the harness checks that
//! nothing of the containers is left).

mod common;

use common::{rootfs, Harness};

fn volumes(h: &Harness) -> Vec<String> {
    let listed = h.cli(&["volume", "ls", "-q"]).expect_code(0).stdout();
    listed.lines().map(str::to_owned).collect()
}

#[test]
fn a_named_volume_outlives_its_containers_and_is_never_removed_in_use() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    assert_eq!(h.cli(&["volume", "create", "data"]).stdout(), "data\n");
    h.run(&["-v", "data:/data", r, "sh", "-c", "echo kept > /data/f"])
        .expect_code(0);
    // Another container, with --mount and read-only, sees what the first left.
    let read = h.run(&[
        "--mount",
        "source=data,target=/d,readonly",
        r,
        "sh",
        "-c",
        "cat /d/f; touch /d/g",
    ]);
    assert_eq!(read.stdout(), "kept\n");
    assert!(read.stderr().contains("Read-only"), "{}", read.stderr());
    // `inspect` shows it as docker does, and where it lives.
    let shown: serde_json::Value = serde_json::from_str(
        &h.cli(&["volume", "inspect", "data"])
            .expect_code(0)
            .stdout(),
    )
    .unwrap();
    let mountpoint = shown[0]["Mountpoint"].as_str().unwrap().to_owned();
    assert_eq!(shown[0]["Driver"], "local");
    assert_eq!(
        std::fs::read_to_string(format!("{mountpoint}/f")).unwrap(),
        "kept\n"
    );
    // A stopped container that names it keeps it.
    h.run_kept(&["--name", "user", "-v", "data:/data", r, "true"])
        .expect_code(0);
    h.refused(&["volume", "rm", "data"], "user");
    let mounts = h.cli(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}}{{end}}",
        "user",
    ]);
    assert_eq!(mounts.expect_code(0).stdout(), "volume data\n");
    h.cli(&["rm", "user"]).expect_code(0);
    // Unused now; a named volume is left by prune without -a.
    h.cli(&["volume", "prune", "-f"]).expect_code(0);
    assert_eq!(volumes(&h), ["data"]);
    h.cli(&["volume", "rm", "data"]).expect_code(0);
    assert!(volumes(&h).is_empty());
    assert!(!std::path::Path::new(&mountpoint).exists());
}

#[test]
fn a_new_volume_starts_with_the_images_files_unless_told_not_to() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    // The image's /etc, copied with its modes into the new volume.
    let listed = h.run(&["-v", "etc-copy:/etc", r, "cat", "/etc/passwd"]);
    assert!(
        listed.expect_code(0).stdout().contains("root:"),
        "{}",
        listed.stdout()
    );
    let empty = h.run(&[
        "--mount",
        "type=volume,source=etc-empty,target=/etc,volume-nocopy",
        r,
        "ls",
        "-A",
        "/etc",
    ]);
    assert_eq!(empty.expect_code(0).stdout(), "");
    // One made empty by `volume create` is filled at its first use, as
    // docker's; no host user but root can reach its files.
    h.cli(&["volume", "create", "made"]).expect_code(0);
    let filled = h.run(&["-v", "made:/etc", r, "cat", "/etc/passwd"]);
    assert!(
        filled.expect_code(0).stdout().contains("root:"),
        "{}",
        filled.stdout()
    );
    let dir = h.state_root.path().join("volumes/made");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&dir).unwrap().permissions());
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    h.cli(&["volume", "rm", "made"]).expect_code(0);
    // A volume is filled only when it is new: what a container changed stays.
    h.run(&["-v", "etc-copy:/etc", r, "rm", "/etc/passwd"])
        .expect_code(0);
    h.run(&["-v", "etc-copy:/etc", r, "test", "!", "-e", "/etc/passwd"])
        .expect_code(0);
    h.cli(&["volume", "rm", "etc-copy", "etc-empty"])
        .expect_code(0);
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_with_rm() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.run_kept(&["--name", "kept", "-v", "/scratch", r, "touch", "/scratch/a"])
        .expect_code(0);
    h.run_kept(&[
        "--name",
        "plain",
        "--mount",
        "type=volume,target=/cache",
        r,
        "true",
    ])
    .expect_code(0);
    assert_eq!(volumes(&h).len(), 2);
    // `rm -v` takes its container's anonymous volume; plain `rm` leaves it,
    // as docker's, for `volume prune`.
    h.cli(&["rm", "-v", "kept"]).expect_code(0);
    h.cli(&["rm", "plain"]).expect_code(0);
    assert_eq!(volumes(&h).len(), 1);
    h.cli(&["volume", "prune", "-f"]).expect_code(0);
    assert!(volumes(&h).is_empty());
    // --rm takes it as the container exits; a named one stays.
    h.run(&["-v", "/scratch", "-v", "named:/n", r, "true"])
        .expect_code(0);
    assert_eq!(volumes(&h), ["named"]);
    // A restarted container keeps its anonymous volume.
    h.run_kept(&[
        "-d",
        "--name",
        "again",
        "-v",
        "/scratch",
        r,
        "sh",
        "-c",
        "echo $$ >> /scratch/runs; sleep 60",
    ])
    .expect_code(0);
    h.cli(&["restart", "-t", "0", "again"]).expect_code(0);
    let runs = h.cli(&["exec", "again", "wc", "-l", "/scratch/runs"]);
    assert!(
        runs.expect_code(0).stdout().starts_with('2'),
        "{}",
        runs.stdout()
    );
    h.cli(&["rm", "-f", "-v", "again"]).expect_code(0);
    h.cli(&["volume", "prune", "-a", "-f"]).expect_code(0);
    assert!(volumes(&h).is_empty());
}

#[test]
fn bad_volume_input_is_refused_with_125_naming_it() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.refused(&["volume", "create", "_bad"], "_bad");
    h.refused(&["volume", "create", "x"], "\"x\"");
    h.refused(&["volume", "inspect", "missing"], "missing");
    h.refused(&["volume", "rm", "missing"], "missing");
    h.cli(&["volume", "rm", "-f", "missing"]).expect_code(0);
    h.refused(&["run", "--rm", "-v", "/", r, "true"], "\"/\"");
    h.refused(
        &["run", "--rm", "-v", "data:/proc", r, "true"],
        "data:/proc",
    );
    h.refused(
        &["run", "--rm", "-v", "/srv:/d:nocopy", r, "true"],
        "nocopy",
    );
    h.refused(&["run", "--rm", "-v", "a b:/d", r, "true"], "a b:/d");
    h.refused(
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=v,target=/d",
            r,
            "true",
        ],
        "\"v\"",
    );
    h.refused(
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,source=vol,target=/proc",
            r,
            "true",
        ],
        "/proc",
    );
    h.refused(
        &[
            "run",
            "--rm",
            "--mount",
            "type=volume,target=/d,tmpfs-size=1",
            r,
            "true",
        ],
        "tmpfs",
    );
    assert!(volumes(&h).is_empty());
}

#[test]
fn containers_sharing_a_volume_share_one_directory_whatever_is_made_meanwhile() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    // A new volume, nothing in the image at its path: it stays empty.
    h.run_kept(&[
        "-d",
        "--name",
        "holder",
        "-v",
        "shared:/x",
        r,
        "sleep",
        "60",
    ])
    .expect_code(0);
    // docker's `volume create` of an existing name changes nothing.
    assert_eq!(h.cli(&["volume", "create", "shared"]).stdout(), "shared\n");
    h.cli(&["exec", "holder", "touch", "/x/a"]).expect_code(0);
    h.run(&["-v", "shared:/y", r, "test", "-e", "/y/a"])
        .expect_code(0);
    // One made by `volume create` is filled at its first use without
    // nocopy, in the directory a running container already has.
    h.cli(&["volume", "create", "pre"]).expect_code(0);
    h.run_kept(&[
        "-d",
        "--name",
        "early",
        "-v",
        "pre:/p:nocopy",
        r,
        "sleep",
        "60",
    ])
    .expect_code(0);
    h.run(&["-v", "pre:/etc", r, "true"]).expect_code(0);
    h.cli(&["exec", "early", "test", "-e", "/p/passwd"])
        .expect_code(0);
    h.cli(&["rm", "-f", "holder", "early"]).expect_code(0);
    h.cli(&["volume", "rm", "shared", "pre"]).expect_code(0);
}

#[test]
fn no_volume_goes_while_a_record_that_might_name_it_does_not_parse() {
    let h = Harness::new();
    let r = rootfs().to_str().unwrap();
    h.cli(&["volume", "create", "kept"]).expect_code(0);
    h.run_kept(&["--name", "broken", r, "true"]).expect_code(0);
    let record = h.cli(&["inspect", "--record", "broken"]).stdout();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let id = record["id"].as_str().unwrap().to_owned();
    let state = h
        .state_root
        .path()
        .join("containers")
        .join(&id)
        .join("state.json");
    std::fs::write(&state, "{ not a record").unwrap();
    h.refused(&["volume", "rm", "kept"], &id);
    let pruned = h.cli(&["volume", "prune", "-a", "-f"]);
    pruned.expect_code(125);
    assert!(pruned.stderr().contains(&id), "{}", pruned.stderr());
    assert_eq!(volumes(&h), ["kept"]);
    h.cli(&["rm", "-f", &id]).expect_code(0);
    h.cli(&["volume", "rm", "kept"]).expect_code(0);
}
