//! `mydocker run` end to end: real containers on this kernel, as root.
//!
//! Every test checks, through its [`Harness`], that no cgroup, mount or state
//! file survives the run.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use common::pty::{assert_cooked, on_a_terminal, read_until, set_window};
use common::{eventually, rootfs, Harness};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn r() -> &'static str {
    rootfs().to_str().unwrap()
}

#[test]
fn the_command_exit_code_becomes_ours() {
    let h = Harness::new();
    h.run(&[r(), "true"]).expect_code(0);
    h.run(&[r(), "sh", "-c", "exit 7"]).expect_code(7);
}

#[test]
fn a_missing_command_exits_127() {
    let h = Harness::new();
    let run = h.run(&[r(), "no-such-command"]);
    run.expect_code(127);
    assert!(
        run.stderr()
            .contains("\"no-such-command\": executable file not found in $PATH"),
        "{}",
        run.stderr()
    );
    h.run(&[r(), "/no/such/path"]).expect_code(127);
}

#[test]
fn a_command_that_is_not_executable_exits_126() {
    let h = Harness::new();
    let run = h.run(&[r(), "/etc/passwd"]);
    run.expect_code(126);
    assert!(
        run.stderr().contains("permission denied"),
        "{}",
        run.stderr()
    );
    // A directory is not executable either.
    h.run(&[r(), "/bin"]).expect_code(126);
}

#[test]
fn death_by_sigkill_exits_137() {
    let h = Harness::new();
    let mut child = h.spawn(&[r(), "sh", "-c", "echo ready; exec sleep 30"]);
    wait_for_ready(&mut child);
    // The record names the container's init by its host pid.
    let pid = running_record(&h)["pid"].as_i64().unwrap() as i32;
    // Inside its namespace, PID 1 ignores even SIGKILL from its own members;
    // from the host it cannot.
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(128 + 9));
}

#[test]
fn sigint_sigterm_and_sighup_to_mydocker_reach_init() {
    let h = Harness::new();
    for (signal, name) in [
        (Signal::SIGINT, "INT"),
        (Signal::SIGTERM, "TERM"),
        (Signal::SIGHUP, "HUP"),
    ] {
        // A namespace's PID 1 only receives signals it has a handler for.
        let script = format!(
            "trap 'echo got-{name}; exit 42' {name}; echo ready; while :; do sleep 0.05; done"
        );
        let mut child = h.spawn(&[r(), "sh", "-c", &script]);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        kill(Pid::from_raw(child.id() as i32), signal).unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(42), "{name}");
        line.clear();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line, format!("got-{name}\n"));
    }
}

#[test]
fn hostname_env_and_workdir_are_applied() {
    let h = Harness::new();
    let run = h.run(&[
        "--hostname",
        "box-1",
        "-e",
        "GREETING=hello world",
        "-e",
        "EMPTY=",
        "-w",
        "/tmp",
        r(),
        "sh",
        "-c",
        "hostname; echo \"$GREETING\"; echo \"[$EMPTY]\"; pwd; echo $PATH",
    ]);
    run.expect_code(0);
    assert_eq!(
        run.stdout(),
        "box-1\nhello world\n[]\n/tmp\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );
}

#[test]
fn argv_is_passed_without_splitting() {
    let h = Harness::new();
    let run = h.run(&[r(), "printf", "[%s]\\n", "a b", "", "  c  "]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "[a b]\n[]\n[  c  ]\n");
}

#[test]
fn stdin_is_passed_only_with_interactive() {
    let h = Harness::new();
    let feed = |args: &[&str]| {
        let mut child = h
            .command(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
    };
    assert_eq!(feed(&["-i", r(), "cat"]), "piped\n");
    assert_eq!(feed(&[r(), "cat"]), "");
}

#[test]
fn tty_gives_the_container_a_terminal_of_its_own() {
    let h = Harness::new();
    let run = h.run(&[
        "-t",
        r(),
        "sh",
        "-c",
        "tty; [ -t 0 ] && [ -t 1 ] && echo is-a-tty; echo $TERM",
    ]);
    run.expect_code(0);
    // The terminal's line discipline turns \n into \r\n.
    assert_eq!(run.stdout(), "/dev/pts/0\r\nis-a-tty\r\nxterm\r\n");
    // Without -t there is no terminal.
    let run = h.run(&[r(), "sh", "-c", "[ -t 1 ] || echo no-tty"]);
    assert_eq!(run.stdout(), "no-tty\n");
}

#[test]
fn a_memory_hog_is_oom_killed_and_reported() {
    let h = Harness::new();
    // dd's 100 MiB block buffer is filled from /dev/zero, so every page is touched.
    let run = h.run(&[
        "-m",
        "32m",
        r(),
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=100M",
        "count=1",
    ]);
    run.expect_code(137);
    assert!(
        run.stderr()
            .contains("OOM killer killed the container's init (memory limit 32MiB)"),
        "{}",
        run.stderr()
    );
}

/// Waits until the container's command prints `ready`, so that what the test
/// does next meets the command, not init before its exec.
fn wait_for_ready(child: &mut std::process::Child) {
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
}

/// Waits for the one running container of `h` and returns its state record.
fn running_record(h: &Harness) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let record = h
            .state_files()
            .first()
            .and_then(|dir| std::fs::read_to_string(dir.join("state.json")).ok());
        if let Some(json) = record {
            return serde_json::from_str(&json).unwrap();
        }
        assert!(Instant::now() < deadline, "no state record appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn limits_land_in_the_kernels_cgroup_files() {
    let h = Harness::new();
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let last_cpu = online.trim().rsplit(['-', ',']).next().unwrap().to_owned();
    let mut child = h.spawn(&[
        "--cpuset-cpus",
        &last_cpu,
        "-m",
        "64m",
        "--memory-swap",
        "96m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--pids-limit",
        "20",
        r(),
        "sh",
        "-c",
        "echo ready; exec sleep 30",
    ]);
    wait_for_ready(&mut child);
    let record = running_record(&h);
    let pid = record["pid"].as_i64().unwrap();
    let dirs: Vec<std::path::PathBuf> = record["cgroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().into())
        .collect();
    let read = |file: &str| {
        let dir = dirs
            .iter()
            .find(|d| d.join(file).exists())
            .unwrap_or_else(|| panic!("no cgroup has {file}: {dirs:?}"));
        std::fs::read_to_string(dir.join(file))
            .unwrap()
            .trim()
            .to_owned()
    };
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if v2 {
        assert_eq!(read("memory.max"), (64u64 << 20).to_string());
        assert_eq!(read("memory.swap.max"), (32u64 << 20).to_string());
        assert_eq!(read("cpu.max"), "50000 100000");
        // 512 shares is weight 20 on the OCI runtimes' linear map, not 512.
        assert_eq!(read("cpu.weight"), "20");
        assert_eq!(read("cpuset.cpus"), last_cpu);
    } else {
        assert_eq!(read("memory.limit_in_bytes"), (64u64 << 20).to_string());
        assert_eq!(
            read("memory.memsw.limit_in_bytes"),
            (96u64 << 20).to_string()
        );
        assert_eq!(read("cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu.cfs_period_us"), "100000");
        assert_eq!(read("cpu.shares"), "512");
        assert_eq!(read("cpuset.cpus"), last_cpu);
        // A cpuset cgroup starts empty; the runtime copies the parent's
        // memory nodes, which the flags left unset.
        assert_eq!(
            read("cpuset.mems"),
            std::fs::read_to_string("/sys/fs/cgroup/cpuset/cpuset.mems")
                .unwrap()
                .trim()
        );
    }
    assert_eq!(read("pids.max"), "20");
    // Every hierarchy holds init, and nothing else from outside.
    for dir in &dirs {
        let procs_file = if dir.join("cgroup.procs").exists() {
            "cgroup.procs"
        } else {
            "tasks"
        };
        let procs = std::fs::read_to_string(dir.join(procs_file)).unwrap();
        assert_eq!(procs.trim(), pid.to_string(), "{}", dir.display());
    }
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(137));
}

#[test]
fn interactive_tty_behaves_like_a_terminal_session() {
    use std::io::Write;
    let h = Harness::new();
    // Our own terminal stands in for the user's: mydocker gets its slave side.
    let (mut child, mut master) = on_a_terminal(h.command(&["-it", r(), "sh"]), (40, 100));
    let mut seen = String::new();
    master
        .write_all(b"echo in-$((20+22)); stty size\n")
        .unwrap();
    read_until(&master, "in-42", &mut seen);
    read_until(&master, "40 100", &mut seen);
    // A resize reaches the container's terminal, and the relay keeps going.
    set_window(&master, 50, 120);
    kill(Pid::from_raw(child.0.id() as i32), Signal::SIGWINCH).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    master.write_all(b"stty size\n").unwrap();
    read_until(&master, "50 120", &mut seen);
    // Ctrl-C is a keystroke in raw mode: the container's terminal turns it into
    // SIGINT for the foreground job, and the shell survives.
    master.write_all(b"sleep 30\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    master.write_all(b"\x03").unwrap();
    master.write_all(b"echo after-$((1+1))\n").unwrap();
    read_until(&master, "after-2", &mut seen);
    master.write_all(b"exit 3\n").unwrap();
    assert_eq!(
        child.0.wait().unwrap().code(),
        Some(3),
        "terminal showed:\n{seen}"
    );
    assert_cooked(&master);
}

#[test]
fn exec_with_a_terminal_shares_the_relay_of_run() {
    use std::io::Write;
    let h = Harness::new();
    h.run_kept(&["-d", "--name", "shell", r(), "sleep", "60"])
        .expect_code(0);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker"));
    command
        .arg("--root")
        .arg(h.state_root.path())
        .args(["exec", "-it", "shell", "sh"])
        .env_remove("MYDOCKER_ROOT");
    let (mut child, mut master) = on_a_terminal(command, (30, 90));
    let mut seen = String::new();
    master
        .write_all(b"tty; echo in-$((40+2)); stty size\n")
        .unwrap();
    read_until(&master, "/dev/pts/", &mut seen);
    read_until(&master, "in-42", &mut seen);
    read_until(&master, "30 90", &mut seen);
    master.write_all(b"exit 4\n").unwrap();
    assert_eq!(
        child.0.wait().unwrap().code(),
        Some(4),
        "terminal showed:\n{seen}"
    );
    assert_cooked(&master);
    h.cli(&["rm", "-f", "shell"]).expect_code(0);
}

#[test]
fn ulimits_bound_the_command_and_what_exec_starts() {
    let h = Harness::new();
    let limits = ["--ulimit", "nofile=1024:2048", "--ulimit", "core=-1"];
    let show = "ulimit -n; ulimit -Hn; ulimit -c";
    let mut args = limits.to_vec();
    args.extend([r(), "sh", "-c", show]);
    let run = h.run(&args);
    run.expect_code(0);
    assert_eq!(run.stdout(), "1024\n2048\nunlimited\n");
    // Without --ulimit the command keeps what mydocker had: a control.
    let plain = h.run(&[r(), "sh", "-c", "ulimit -Hn"]);
    assert_ne!(plain.expect_code(0).stdout(), "2048\n");
    let mut args = vec!["-d", "--name", "limited"];
    args.extend(limits);
    args.extend([r(), "sleep", "60"]);
    h.run_kept(&args).expect_code(0);
    let exec = h.cli(&["exec", "limited", "sh", "-c", show]);
    assert_eq!(exec.expect_code(0).stdout(), "1024\n2048\nunlimited\n");
    h.cli(&["rm", "-f", "limited"]).expect_code(0);
}

#[test]
fn the_command_starts_with_default_signals_and_no_inherited_fds() {
    use std::os::unix::process::CommandExt;
    let h = Harness::new();
    let run = h.run(&[r(), "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"]);
    run.expect_code(0);
    // Nothing ignored (mydocker itself ignores SIGPIPE) and nothing blocked
    // (mydocker blocks the signals it forwards).
    assert_eq!(
        run.stdout(),
        "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    );

    // A descriptor mydocker inherits without close-on-exec stays outside.
    let mut cmd = h.command(&[r(), "ls", "/proc/self/fd"]);
    // SAFETY: dup2 is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            if libc::dup2(2, 5) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = cmd.output().unwrap();
    // 0-2 are stdio and 3 is the directory ls is reading.
    assert_eq!(String::from_utf8_lossy(&output.stdout), "0\n1\n2\n3\n");
}

#[test]
fn a_pipe_reader_that_exits_early_ends_the_writer_quietly() {
    let h = Harness::new();
    // With SIGPIPE at its default, yes dies silently when head stops reading.
    let run = h.run(&[r(), "sh", "-c", "yes | head -n 1"]);
    run.expect_code(0);
    assert_eq!(run.stdout(), "y\n");
    assert_eq!(run.stderr(), "");
}

/// A `--rm` container's overlay is volatile (no sync of the upper layer's
/// file system when it is unmounted); one that is kept is not.
#[test]
fn only_a_container_removed_on_exit_gets_a_volatile_overlay() {
    let h = Harness::new();
    let root_mount = |run: &common::Run| {
        let stdout = run.expect_code(0).stdout();
        stdout
            .lines()
            .find(|l| l.starts_with("overlay / "))
            .unwrap_or_else(|| panic!("no overlay root in {stdout:?}"))
            .to_owned()
    };
    let removed = root_mount(&h.run(&[r(), "cat", "/proc/mounts"]));
    assert!(removed.contains("volatile"), "{removed}");
    let kept = h.cli(&[
        "run",
        "--name",
        "kept",
        "--cgroup-parent",
        &h.cgroup_parent,
        r(),
        "cat",
        "/proc/mounts",
    ]);
    let kept_mount = root_mount(&kept);
    h.cli(&["rm", "kept"]).expect_code(0);
    assert!(!kept_mount.contains("volatile"), "{kept_mount}");
}

#[test]
fn env_file_sets_variables_and_e_wins_over_it() {
    let h = Harness::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vars.env");
    std::fs::write(&file, "# settings\nA=from-file\nB=x=y\n\nC=overridden\n").unwrap();
    let file = file.to_str().unwrap();
    let run = h.run(&[
        "--env-file",
        file,
        "-e",
        "C=from-flag",
        r(),
        "sh",
        "-c",
        "echo $A $B $C",
    ]);
    assert_eq!(run.expect_code(0).stdout(), "from-file x=y from-flag\n");
    h.refused(
        &["run", "--env-file", "/no/such.env", r(), "true"],
        "/no/such.env",
    );
    let bad = dir.path().join("bad.env");
    std::fs::write(&bad, "A=1\nNOT A KEY\n").unwrap();
    h.refused(
        &["run", "--env-file", bad.to_str().unwrap(), r(), "true"],
        "line 2",
    );
}

/// A copy of the test rootfs with its own /etc/passwd and /etc/group, the
/// passwd reached through a link that only leads somewhere inside the root.
fn rootfs_with_users() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let copied = std::process::Command::new("cp")
        .args(["-a", &format!("{}/.", r())])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(copied.success());
    let root = dir.path();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::write(
        root.join("data/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000::/home/web:/bin/sh\n",
    )
    .unwrap();
    std::fs::remove_file(root.join("etc/passwd")).unwrap();
    // Absolute: on the host /data/passwd does not exist; inside, it does.
    std::os::unix::fs::symlink("/data/passwd", root.join("etc/passwd")).unwrap();
    assert!(!Path::new("/data/passwd").exists());
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nweb:x:1000:\naudio:x:29:web,other\nvideo:x:44:\n",
    )
    .unwrap();
    dir
}

#[test]
fn user_and_group_add_resolve_through_the_images_own_files() {
    let h = Harness::new();
    let image = rootfs_with_users();
    let root = image.path().to_str().unwrap();
    let who = "echo $(id -u) $(id -g) $(id -G) $HOME; grep CapEff /proc/self/status";
    let as_user = |args: &[&str]| {
        let mut full = args.to_vec();
        full.extend([root, "sh", "-c", who]);
        let run = h.run(&full);
        run.expect_code(0);
        run.stdout()
    };
    // By name: its ids, its home, and the groups that list it as a member.
    // As any user but root under docker, it holds no capability.
    let web = as_user(&["-u", "web"]);
    assert!(web.starts_with("1000 1000 1000 29 /home/web\n"), "{web}");
    assert!(web.contains("CapEff:\t0000000000000000"), "{web}");
    // A group by name replaces the memberships, as runc reads it...
    let alone = as_user(&["-u", "web:video"]);
    assert!(alone.starts_with("1000 44 44 /home/web\n"), "{alone}");
    // ...and --group-add adds to it, by name or number.
    let grouped = as_user(&[
        "-u",
        "web:video",
        "--group-add",
        "audio",
        "--group-add",
        "7",
    ]);
    assert!(
        grouped.starts_with("1000 44 44 7 29 /home/web\n"),
        "{grouped}"
    );
    // A number the image does not list: gid 0, home /.
    let numeric = as_user(&["-u", "4242"]);
    assert!(numeric.starts_with("4242 0 0 /\n"), "{numeric}");
    // HOME set by the caller stays; root keeps docker's capabilities.
    let home = as_user(&["-u", "web", "-e", "HOME=/srv"]);
    assert!(home.starts_with("1000 1000 1000 29 /srv\n"), "{home}");
    let root_caps = as_user(&[]);
    assert!(
        !root_caps.contains("CapEff:\t0000000000000000"),
        "{root_caps}"
    );

    // exec runs as the container's user.
    let id = h
        .cli(&[
            "run",
            "-d",
            "--cgroup-parent",
            &h.cgroup_parent,
            "-u",
            "web",
            root,
            "sleep",
            "30",
        ])
        .expect_code(0)
        .stdout()
        .trim()
        .to_owned();
    assert_eq!(
        h.cli(&["exec", &id, "id", "-u"]).expect_code(0).stdout(),
        "1000\n"
    );
    h.cli(&["rm", "-f", &id]).expect_code(0);

    // A fifo where /etc/group should be would hang the start: refused.
    std::fs::remove_file(image.path().join("etc/group")).unwrap();
    nix::unistd::mkfifo(
        &image.path().join("etc/group"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    let mut fifo = vec!["run", "--rm", "--cgroup-parent", &h.cgroup_parent];
    fifo.extend(["-u", "web", root, "true"]);
    h.refused(&fifo, "/etc/group");
    std::fs::remove_file(image.path().join("etc/group")).unwrap();
    std::fs::write(image.path().join("etc/group"), "web:x:1000:\n").unwrap();

    for (args, mention) in [
        (&["-u", "nosuch"][..], "nosuch"),
        (&["-u", "web:nogroup"], "web:nogroup"),
        (&["--group-add", "nogroup"], "nogroup"),
        (&["-u", "web:"], "web:"),
    ] {
        let mut full = vec!["run", "--rm", "--cgroup-parent", &h.cgroup_parent];
        full.extend_from_slice(args);
        full.extend([root, "true"]);
        h.refused(&full, mention);
    }
}

#[test]
fn tmpfs_mount_and_device_flags_reach_the_container() {
    let h = Harness::new();
    let readme = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    let bind = format!("type=bind,source={readme},target=/readme,readonly");
    let script = "grep -E ' /(scratch|t2|readme) ' /proc/self/mounts; \
        dd if=/dev/zero of=/scratch/big bs=1M count=2 2>/dev/null || echo scratch-full; \
        head -c 1 /readme >/dev/null && echo readme-read; \
        (echo x >> /readme) 2>/dev/null || echo readme-refused; \
        head -c 2 /dev/myzero | od -An -tx1";
    let run = h.run(&[
        "--tmpfs",
        "/scratch:size=1m,mode=1770",
        "--mount",
        "type=tmpfs,target=/t2,tmpfs-size=2097152",
        "--mount",
        &bind,
        "--device",
        "/dev/zero:/dev/myzero",
        r(),
        "sh",
        "-c",
        script,
    ]);
    let out = run.expect_code(0).stdout();
    // docker's defaults (noexec, nosuid, nodev) with the options given.
    assert!(
        out.contains("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k,mode=1770"),
        "{out}"
    );
    assert!(
        out.contains("tmpfs /t2 tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k"),
        "{out}"
    );
    // The kernel holds the tmpfs to its size, and the bind to read-only.
    assert!(out.contains("scratch-full"), "{out}");
    assert!(
        out.contains(" /readme ") && out.contains("readme-read"),
        "{out}"
    );
    assert!(out.contains("readme-refused"), "{out}");
    assert!(out.contains("00 00"), "{out}");

    // Without --device, docker's list lets a node be made but not opened:
    // root in the container could otherwise read any host device. (v1's
    // devices cgroup; v2 would need a BPF program, which mydocker lacks.)
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    if !v2 {
        let made = h.run(&[
            r(),
            "sh",
            "-c",
            "mknod /lat c 10 259 && echo made; (head -c 4 /lat >/dev/null) 2>/dev/null || echo refused",
        ]);
        assert_eq!(made.expect_code(0).stdout(), "made\nrefused\n");
    }

    // A device given read-only: the devices cgroup lets it be read and
    // refuses a write; the control, with every permission, may write
    // (the PM QoS default, which asks nothing of the machine).
    if v2 {
        // Narrower permissions need the devices cgroup: refused, named.
        let mut args = vec!["run", "--rm", "--cgroup-parent", &h.cgroup_parent];
        args.extend(["--device", "/dev/cpu_dma_latency:/dev/lat:r", r(), "true"]);
        h.refused(&args, "--device");
    } else {
        let limited = h.run(&[
            "--device",
            "/dev/cpu_dma_latency:/dev/lat:r",
            r(),
            "sh",
            "-c",
            "head -c 4 /dev/lat >/dev/null && echo read; (echo 0x7fffffff > /dev/lat) 2>/dev/null || echo write-refused",
        ]);
        assert_eq!(limited.expect_code(0).stdout(), "read\nwrite-refused\n");
        let full = h.run(&[
            "--device",
            "/dev/cpu_dma_latency:/dev/lat",
            r(),
            "sh",
            "-c",
            "(echo 0x7fffffff > /dev/lat) 2>/dev/null && echo written",
        ]);
        assert_eq!(full.expect_code(0).stdout(), "written\n");
    }

    for (args, mention) in [
        (&["--tmpfs", "/proc"][..], "/proc"),
        (&["--tmpfs", "/x:dev"], "/x:dev"),
        (&["--tmpfs", "relative"], "relative"),
        (&["--mount", "type=volume,source=v,target=/v"], "\"v\""),
        (
            &["--mount", "type=bind,source=/no/such/dir,target=/d"],
            "/no/such/dir",
        ),
        (&["--device", "/etc/passwd"], "/etc/passwd"),
        (&["--device", "/dev/zero:/z:rx"], "/dev/zero:/z:rx"),
    ] {
        let mut full = vec!["run", "--rm", "--cgroup-parent", &h.cgroup_parent];
        full.extend_from_slice(args);
        full.extend([r(), "true"]);
        h.refused(&full, mention);
    }
}

#[test]
fn init_reaps_orphans_and_passes_signals_on() {
    let h = Harness::new();
    // PID 1 ignores a signal it has no handler for, even SIGKILL from
    // inside its namespace; under --init the shell is an ordinary process.
    let suicide = "kill -9 $$; echo survived";
    let plain = h.run(&[r(), "sh", "-c", suicide]);
    assert_eq!(plain.expect_code(0).stdout(), "survived\n");
    h.run(&["--init", r(), "sh", "-c", suicide])
        .expect_code(137);
    h.run(&["--init", r(), "sh", "-c", "exit 3"]).expect_code(3);
    // Real-time signals too (nix has no value for them): one that ends the
    // command gives 128 + 40, and one sent to PID 1 is passed on.
    h.run(&["--init", r(), "sh", "-c", "kill -40 $$"])
        .expect_code(168);
    let relayed = "trap 'exit 4' 40; kill -40 1; while :; do sleep 0.05; done";
    h.run(&["--init", r(), "sh", "-c", relayed]).expect_code(4);
    h.run(&["--init", r(), "no-such-command"]).expect_code(127);

    // An orphan is reaped by --init's PID 1; with `sleep` as PID 1 it
    // stays a zombie (the control).
    let orphaning = "(sleep 0.1 &); exec sleep 30";
    let zombies = |init: bool| {
        let mut args = vec!["run", "-d", "--cgroup-parent", &h.cgroup_parent];
        if init {
            args.push("--init");
        }
        args.extend([r(), "sh", "-c", orphaning]);
        let id = h.cli(&args).expect_code(0).stdout().trim().to_owned();
        let mut seen = String::new();
        // The orphan exits 0.1 s in; its zombie, if any, then stays.
        eventually("the orphan to exit", || {
            seen = h.cli(&["exec", &id, "ps", "-o", "stat,args"]).stdout();
            !seen.lines().any(|l| l.ends_with("sleep 0.1"))
        });
        h.cli(&["rm", "-f", &id]).expect_code(0);
        seen.lines()
            .filter(|l| l.trim_start().starts_with('Z'))
            .count()
    };
    assert_eq!(zombies(false), 1, "the control left no zombie");
    assert_eq!(zombies(true), 0);

    // stop's SIGTERM reaches the command (143), instead of being ignored
    // by PID 1 until the SIGKILL (137).
    for (init, code) in [(true, "143\n"), (false, "137\n")] {
        let mut args = vec!["run", "-d", "--cgroup-parent", &h.cgroup_parent];
        if init {
            args.push("--init");
        }
        args.extend([r(), "sleep", "30"]);
        let id = h.cli(&args).expect_code(0).stdout().trim().to_owned();
        h.cli(&["stop", "-t", "1", &id]).expect_code(0);
        assert_eq!(h.cli(&["wait", &id]).stdout(), code, "--init {init}");
        h.cli(&["rm", &id]).expect_code(0);
    }
}
