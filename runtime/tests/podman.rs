//! podman 4.3 drives the runtime under test through conmon, as a user's
//! `podman --runtime` would: run, exec, terminals, networks, stop, kill,
//! pause and rm; after each container, nothing of it may be left.
//!
//! The runtime is `MYDOCKER_PODMAN_RUNTIME` (runc proves these tests) or
//! this crate's `mydocker`; where it keeps its state is
//! `MYDOCKER_PODMAN_STATE_ROOT`, or mydocker's default root. They run as
//! root and start containers: run them under the machine's container lock
//! (`flock /run/lock/mydocker-oneatatime.lock cargo test --test podman`).
//!
//! podman's storage, network configuration and scratch directories are the
//! tests' own, under `target/podman-tests`: the host's `/var/lib/containers`,
//! `/etc/cni` and `/run/libpod` are neither read nor written. What podman
//! 4.3 gives no flag for is shared: CNI's result cache in `/var/lib/cni`
//! and the network namespaces in `/run/netns`, whose entries go with each
//! container (the latter is checked). The tests take
//! turns (podman's storage locks would only make them wait for each other,
//! and the leftover checks compare the whole machine before and after).

mod common;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use common::pty::{on_a_terminal, read_until, set_window};

/// The busybox rootfs, imported once into the tests' own storage.
const IMAGE: &str = "localhost/mydocker-busybox:test";

/// podman's default rlimits (RLIMIT_NOFILE 1048576) exceed this machine's
/// hard RLIMIT_NOFILE (20000), and a runtime cannot raise a hard limit
/// beyond it: every container gets limits the machine allows. They are
/// given on each `run` rather than in the tests' containers.conf, so that
/// the command line in a failure message is the whole story.
const ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=4096:4096",
];

/// The tests' default network: its bridge on the host and its gateway, the
/// bridge's address. Names and addresses nobody else on the machine uses.
const BRIDGE: &str = "mdpodman0";
const SUBNET: &str = "10.212.0.0/24";
const GATEWAY: &str = "10.212.0.1";

/// How long one podman command may take before the test gives up on it.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// What every test shares: podman installed, the image imported, and the
/// runtime and its state root resolved.
struct Setup {
    /// `target/podman-tests`: storage, configuration, scratch.
    dir: PathBuf,
    runtime: PathBuf,
    state_root: PathBuf,
    /// The cgroup hierarchies that had podman's `libpod_parent` before the
    /// tests ran: there it is someone else's and stays.
    libpod_parent_before: BTreeSet<PathBuf>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        xtask::podman::ensure_podman().unwrap_or_else(|e| panic!("podman is missing: {e}"));
        let dir = xtask::target_dir().join("podman-tests");
        let runtime = match std::env::var_os("MYDOCKER_PODMAN_RUNTIME") {
            Some(path) => PathBuf::from(path),
            None => PathBuf::from(env!("CARGO_BIN_EXE_mydocker")),
        };
        // conmon runs the runtime from podman's working directory or not:
        // only an absolute path means the same program everywhere.
        let runtime = std::path::absolute(&runtime).unwrap();
        assert!(runtime.is_file(), "no runtime at {}", runtime.display());
        let state_root = std::env::var_os("MYDOCKER_PODMAN_STATE_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(runtime::store::default_root);
        let setup = Setup {
            libpod_parent_before: libpod_parents(),
            dir,
            runtime,
            state_root,
        };
        setup.write_configuration();
        setup.import_image();
        setup
    })
}

impl Setup {
    /// The tests' containers.conf and their default network.
    fn write_configuration(&self) {
        let network_dir = self.dir.join("networks");
        std::fs::create_dir_all(&network_dir).unwrap();
        // CONTAINERS_CONF names the only containers.conf podman reads: the
        // machine's (/etc/containers, /usr/share/containers) cannot change
        // what the tests see. Empty, it leaves podman's built-in defaults;
        // everything the tests rely on is on the command line.
        std::fs::write(
            self.dir.join("containers.conf"),
            "# podman's built-in defaults: runtime/tests/podman.rs gives its settings as flags\n",
        )
        .unwrap();
        // podman 4.3 here uses CNI, and its default network is the one named
        // "podman" in the network configuration directory. Debian's stock
        // one masquerades and adds firewall chains through iptables; this one
        // is a bare bridge with no route out, so that the tests add no
        // firewall rules and their traffic stays between the container and
        // the bridge. host-local keeps its leases under our directory.
        let conflist = serde_json::json!({
            "cniVersion": "0.4.0",
            "name": "podman",
            "plugins": [{
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "dataDir": self.dir.join("cni-leases"),
                    "ranges": [[{"subnet": SUBNET, "gateway": GATEWAY}]],
                },
            }],
        });
        std::fs::write(
            network_dir.join("podman.conflist"),
            serde_json::to_string_pretty(&conflist).unwrap(),
        )
        .unwrap();
    }

    /// podman with the tests' storage, configuration and runtime: every
    /// global flag the tests use, so that a failure shows the whole command.
    fn podman(&self) -> Command {
        let mut command = Command::new(xtask::podman::PODMAN);
        command
            .arg("--root")
            .arg(self.dir.join("root"))
            .arg("--runroot")
            .arg(self.dir.join("runroot"))
            // Native overlay works on this machine's ext4 as root, and podman
            // 4.3 keeps it under --root; vfs would copy the image for each
            // container.
            .args(["--storage-driver", "overlay"])
            // libpod's own scratch (exit codes, locks), else /run/libpod.
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .arg("--network-config-dir")
            .arg(self.dir.join("networks"))
            // No systemd journal here, and no events file to grow.
            .args(["--events-backend", "none"])
            .arg("--runtime")
            .arg(&self.runtime)
            // No systemd here to ask for cgroups: podman makes them under
            // /libpod_parent and hands the runtime cgroupsPath.
            .args(["--cgroup-manager", "cgroupfs"])
            .env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .stdin(Stdio::null());
        command
    }

    /// Imports the busybox rootfs as [`IMAGE`] unless the storage has it.
    fn import_image(&self) {
        let exists = run_to_end(self.podman().args(["image", "exists", IMAGE]));
        if exists.code == Some(0) {
            return;
        }
        let tarball = self.dir.join("busybox.tar");
        let mut builder = tar::Builder::new(std::fs::File::create(&tarball).unwrap());
        // The applets are links to /bin/busybox: kept as links.
        builder.follow_symlinks(false);
        builder.append_dir_all(".", common::rootfs()).unwrap();
        builder.into_inner().unwrap();
        let mut import = self.podman();
        import.arg("import").arg(&tarball).arg(IMAGE);
        // podman import records the layer in containers/image's blob-info
        // cache, which podman 4.3 puts in /var/lib/containers/cache with no
        // flag to move it: the import sees a throwaway /var/lib instead.
        use std::os::unix::process::CommandExt;
        // SAFETY: unshare and mount are async-signal-safe system calls, as
        // pre_exec requires; nothing is allocated.
        unsafe {
            import.pre_exec(|| {
                use nix::mount::{mount, MsFlags};
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                mount(
                    None::<&str>,
                    "/",
                    None::<&str>,
                    MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                    None::<&str>,
                )?;
                mount(
                    Some("podman-import"),
                    "/var/lib",
                    Some("tmpfs"),
                    MsFlags::empty(),
                    None::<&str>,
                )?;
                Ok(())
            });
        }
        run_to_end(&mut import).expect_code(0);
        std::fs::remove_file(&tarball).unwrap();
    }
}

/// One test's turn: podman to itself, and a record of the containers it
/// made. Dropped, it removes what the test left and fails the test if any
/// of it was still there, or if a container left a trace.
struct Session {
    setup: &'static Setup,
    scratch: tempfile::TempDir,
    /// One `--cidfile` per `podman run`: podman writes the container's id
    /// there, even for a `--rm` container that is gone when run returns.
    cidfiles: RefCell<Vec<PathBuf>>,
    links_before: BTreeSet<String>,
    netns_before: BTreeSet<String>,
    _turn: MutexGuard<'static, ()>,
}

impl Session {
    fn new() -> Session {
        static TURN: Mutex<()> = Mutex::new(());
        // A failed test poisons the lock; the next one may still run.
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let setup = setup();
        std::fs::create_dir_all(&setup.dir).unwrap();
        Session {
            setup,
            scratch: tempfile::tempdir_in(&setup.dir).unwrap(),
            cidfiles: RefCell::new(Vec::new()),
            links_before: host_links(),
            netns_before: named_netns(),
            _turn: turn,
        }
    }

    /// `podman GLOBAL-FLAGS ARGS...`, run to its end.
    fn podman(&self, args: &[&str]) -> Ran {
        run_to_end(self.setup.podman().args(args))
    }

    /// `podman ... run --cidfile F ULIMITS OPTIONS IMAGE COMMAND...`, not yet started.
    fn run_command(&self, options: &[&str], command: &[&str]) -> Command {
        let cidfile = {
            let mut cidfiles = self.cidfiles.borrow_mut();
            let path = self.scratch.path().join(format!("cid-{}", cidfiles.len()));
            cidfiles.push(path.clone());
            path
        };
        let mut podman = self.setup.podman();
        podman
            .arg("run")
            .arg("--cidfile")
            .arg(cidfile)
            .args(ULIMITS)
            .args(options)
            .arg(IMAGE)
            .args(command);
        podman
    }

    /// `podman run OPTIONS IMAGE COMMAND...`, run to its end.
    fn run(&self, options: &[&str], command: &[&str]) -> Ran {
        run_to_end(&mut self.run_command(options, command))
    }

    /// Starts a container in the background; its full id.
    fn detached(&self, command: &[&str]) -> String {
        let ran = self.run(&["-d"], command);
        ran.expect_code(0);
        let id = ran.stdout.trim().to_owned();
        assert!(is_container_id(&id), "run -d printed {id:?}, not an id");
        id
    }

    /// What podman says of the container: `running`, `paused`, `exited`...
    fn status(&self, id: &str) -> String {
        let ran = self.podman(&["inspect", "--format", "{{.State.Status}}", id]);
        ran.expect_code(0);
        ran.stdout.trim().to_owned()
    }

    /// The container's exit code, as podman recorded it.
    fn exit_code(&self, id: &str) -> i32 {
        let ran = self.podman(&["inspect", "--format", "{{.State.ExitCode}}", id]);
        ran.expect_code(0).stdout.trim().parse().unwrap()
    }

    fn logs(&self, id: &str) -> String {
        self.podman(&["logs", id]).expect_code(0).stdout.clone()
    }

    /// Waits until the container's log holds `needle`; the whole log.
    fn log_shows(&self, id: &str, needle: &str) -> String {
        let mut log = String::new();
        eventually(&format!("{needle:?} in the log of {id}"), || {
            log = self.logs(id);
            log.contains(needle)
        });
        log
    }

    /// Removes the container and asserts that nothing of it is left.
    fn remove(&self, id: &str) {
        self.podman(&["rm", "-f", id]).expect_code(0);
        let listed = self.podman(&["ps", "--all", "--quiet", "--no-trunc"]);
        assert!(!listed.expect_code(0).stdout.contains(id), "rm -f left it");
        self.assert_nothing_left_of(id);
    }

    /// Every container id podman wrote into this session's cidfiles.
    fn ids(&self) -> Vec<String> {
        self.cidfiles
            .borrow()
            .iter()
            .filter_map(|path| std::fs::read_to_string(path).ok())
            .map(|id| id.trim().to_owned())
            .filter(|id| is_container_id(id))
            .collect()
    }

    #[track_caller]
    fn assert_nothing_left_of(&self, id: &str) {
        let remains = traces_after_removal(id, &self.setup.state_root);
        assert!(
            remains.is_empty(),
            "container {id} left:\n{}",
            remains.join("\n")
        );
    }

    /// Removes whatever the test left and says what it was.
    fn clean_up(&self) -> Vec<String> {
        let mut leftovers = Vec::new();
        let listed = self.podman(&["ps", "--all", "--quiet", "--no-trunc"]);
        for id in listed.stdout.lines().filter(|l| !l.trim().is_empty()) {
            leftovers.push(format!("container {id}, still in podman"));
            self.podman(&["rm", "--force", "--time", "0", id]);
        }
        for id in self.ids() {
            leftovers.extend(traces_after_removal(&id, &self.setup.state_root));
        }
        // podman leaves the bridge and its cgroup parent behind; both are
        // the tests' doing, and go with each test.
        if host_links().contains(BRIDGE) {
            let deleted = Command::new("ip")
                .args(["link", "delete", BRIDGE])
                .status()
                .is_ok_and(|s| s.success());
            if !deleted {
                leftovers.push(format!("the bridge {BRIDGE}, which ip would not delete"));
            }
        }
        for parent in libpod_parents().difference(&self.setup.libpod_parent_before) {
            if let Err(e) = remove_cgroup_tree(parent) {
                leftovers.push(format!("cgroup {}: {e}", parent.display()));
            }
        }
        leftovers.extend(
            host_links()
                .difference(&self.links_before)
                .map(|l| format!("network interface {l}")),
        );
        leftovers.extend(
            named_netns()
                .difference(&self.netns_before)
                .map(|n| format!("network namespace /run/netns/{n}")),
        );
        leftovers
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let leftovers = self.clean_up();
        if !std::thread::panicking() {
            assert!(
                leftovers.is_empty(),
                "the test left things behind:\n{}",
                leftovers.join("\n")
            );
        }
    }
}

/// A finished podman command.
struct Ran {
    line: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Ran {
    #[track_caller]
    fn expect_code(&self, code: i32) -> &Ran {
        assert_eq!(
            self.code,
            Some(code),
            "{}\nstdout:\n{}\nstderr:\n{}",
            self.line,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `command` with its output in files, not pipes: `run -d` leaves
/// conmon behind, and conmon may hold what it inherited long after podman
/// has exited. Kills it after [`COMMAND_DEADLINE`].
fn run_to_end(command: &mut Command) -> Ran {
    let line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    let out = tempfile::tempfile().unwrap();
    let err = tempfile::tempfile().unwrap();
    let mut child = command
        .stdout(out.try_clone().unwrap())
        .stderr(err.try_clone().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    let status = wait_until(&mut child, Instant::now() + COMMAND_DEADLINE)
        .unwrap_or_else(|| panic!("{line}\ndid not finish in {COMMAND_DEADLINE:?}"));
    let read = |mut file: std::fs::File| {
        use std::io::{Read, Seek};
        let mut text = String::new();
        file.rewind().unwrap();
        file.read_to_string(&mut text).unwrap();
        text
    };
    Ran {
        line,
        code: status.code(),
        stdout: read(out),
        stderr: read(err),
    }
}

/// Waits for `child` until `deadline`; past it, kills it and says `None`.
fn wait_until(
    child: &mut std::process::Child,
    deadline: Instant,
) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_container_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a removed container may not have left, each as one line: a cgroup
/// named after it, a mount mentioning it, a process whose command line
/// names it (conmon's and the runtime's do), or state under the runtime's
/// root. Cleanup can trail podman's exit by a moment, so this looks again
/// for a few seconds before it reports.
fn traces_after_removal(id: &str, state_root: &Path) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut traces = Vec::new();
        traces.extend(
            dirs_named_after(id, Path::new("/sys/fs/cgroup"), usize::MAX)
                .into_iter()
                .map(|d| format!("cgroup {}", d.display())),
        );
        traces.extend(
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .filter(|line| line.contains(id))
                .map(|line| format!("mount {line}")),
        );
        traces.extend(processes_naming(id));
        traces.extend(state_of(id, state_root));
        if traces.is_empty() || Instant::now() > deadline {
            return traces;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Directories below `root` (symlinks not followed, at most `depth` levels
/// down) whose name contains `id`.
fn dirs_named_after(id: &str, root: &Path, depth: usize) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return found;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir {
            continue;
        }
        if entry.file_name().to_string_lossy().contains(id) {
            found.push(entry.path());
        }
        if depth > 1 {
            found.extend(dirs_named_after(id, &entry.path(), depth - 1));
        }
    }
    found
}

/// Processes whose command line mentions `id`, as `pid: command line`.
fn processes_naming(id: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()) && *pid != me)
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline
                .contains(id)
                .then(|| format!("process {pid}: {}", cmdline.trim_end()))
        })
        .collect()
}

/// The runtime's state for `id` under its root: any file or directory named
/// after it (runc's `/run/runc/<id>`), or a small JSON record that names it
/// (mydocker's `containers/<its own id>/state.json` holds the OCI id as its
/// name). Three levels down are enough for either.
fn state_of(id: &str, root: &Path) -> Vec<String> {
    fn walk(id: &str, dir: &Path, depth: usize, found: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if entry.file_name().to_string_lossy().contains(id) {
                // Named after it: what is inside is its too, said once.
                found.push(format!("state {}", path.display()));
                continue;
            }
            if kind.is_file()
                && path.extension().is_some_and(|e| e == "json")
                && entry.metadata().is_ok_and(|m| m.len() < 1 << 20)
                && std::fs::read_to_string(&path).is_ok_and(|t| t.contains(id))
            {
                found.push(format!("state {} names it", path.display()));
            }
            if kind.is_dir() && depth > 1 {
                walk(id, &path, depth - 1, found);
            }
        }
    }
    let mut found = Vec::new();
    walk(id, root, 3, &mut found);
    found
}

/// Every hierarchy's `libpod_parent`, podman's cgroup parent with cgroupfs.
fn libpod_parents() -> BTreeSet<PathBuf> {
    common::cgroup_hierarchies()
        .into_iter()
        .map(|h| h.join("libpod_parent"))
        .filter(|p| p.is_dir())
        .collect()
}

/// Removes an (empty) cgroup and the empty cgroups below it, deepest first.
/// A cgroup that still holds a process refuses, and that is the error.
fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    // A v1 cgroup whose child just went can be busy for a moment.
    let mut tries = 0;
    loop {
        match std::fs::remove_dir(dir) {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// The host's network interfaces, by name.
fn host_links() -> BTreeSet<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
        .collect()
}

/// Network namespaces named under /run/netns (podman's are `cni-...`).
fn named_netns() -> BTreeSet<String> {
    std::fs::read_dir("/run/netns")
        .map(|entries| {
            entries
                .filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `check` until it holds, failing after 20 s (podman commands under a
/// busy machine take a while each).
#[track_caller]
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Interface names in `ip -o link` output (`2: eth0@if8: <...> ...`).
fn interfaces(ip_o_link: &str) -> Vec<String> {
    ip_o_link
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap().to_owned())
        .collect()
}

/// A container that ends at once on SIGTERM, so that `rm -f` need not wait
/// out podman's ten-second stop timeout; it says `ready` when the trap is set.
const SLEEPER: [&str; 3] = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; echo ready; while :; do sleep 1; done",
];

#[test]
fn run_passes_the_commands_output_and_exit_code() {
    let s = Session::new();
    s.run(&["--rm"], &["true"]).expect_code(0);
    let ran = s.run(
        &["--rm"],
        &["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7"],
    );
    ran.expect_code(7);
    assert_eq!(ran.stdout, "to-stdout\n");
    assert!(ran.stderr.contains("to-stderr"), "{}", ran.stderr);
    for id in s.ids() {
        s.assert_nothing_left_of(&id);
    }
}

#[test]
fn a_missing_command_exits_127_as_podman_maps_it() {
    let s = Session::new();
    let ran = s.run(&["--rm"], &["/no/such/command"]);
    ran.expect_code(127);
}

#[test]
fn network_none_leaves_only_loopback_and_it_is_up() {
    let s = Session::new();
    let ran = s.run(&["--rm", "--network", "none"], &["ip", "-o", "link"]);
    let listing = &ran.expect_code(0).stdout;
    assert_eq!(interfaces(listing), ["lo"]);
    // podman makes the namespace and brings lo up in it: a runtime that
    // ignored the namespace's path would show a fresh one, its lo down.
    let flags = listing.split('<').nth(1).and_then(|f| f.split('>').next());
    assert!(
        flags.is_some_and(|f| f.split(',').any(|flag| flag == "UP")),
        "lo is down: {listing}"
    );
}

#[test]
fn the_default_network_gives_an_address_that_reaches_its_bridge() {
    let s = Session::new();
    // The gateway is the tests' bridge on the host: the ping goes no further.
    let script = format!("ip -o link; echo ==; ip -o -4 addr; echo ==; ping -c 1 -W 5 {GATEWAY}");
    let ran = s.run(&["--rm"], &["sh", "-c", &script]);
    ran.expect_code(0);
    let parts: Vec<&str> = ran.stdout.split("==\n").collect();
    assert_eq!(parts.len(), 3, "{}", ran.stdout);
    let others: Vec<String> = interfaces(parts[0])
        .into_iter()
        .filter(|name| name != "lo")
        .collect();
    assert_eq!(others.len(), 1, "one interface besides lo: {}", parts[0]);
    let subnet_prefix = GATEWAY.rsplit_once('.').unwrap().0;
    let addressed = parts[1]
        .lines()
        .any(|l| l.contains(&others[0]) && l.contains(&format!("inet {subnet_prefix}.")));
    assert!(
        addressed,
        "{} has no address in {SUBNET}: {}",
        others[0], parts[1]
    );
    assert!(parts[2].contains("1 packets received"), "{}", parts[2]);
}

#[test]
fn run_it_gives_the_command_a_terminal_of_the_users_size() {
    use std::io::Write;
    let s = Session::new();
    let podman = s.run_command(&["-it", "--rm"], &["sh"]);
    let (mut child, mut master) = on_a_terminal(podman, (33, 101));
    let mut seen = String::new();
    master.write_all(b"tty; stty size\n").unwrap();
    read_until(&master, "33 101", &mut seen);
    let device = seen.split("/dev/pts/").nth(1).unwrap_or("");
    assert!(
        device.starts_with(|c: char| c.is_ascii_digit()),
        "tty printed no /dev/pts/N:\n{seen}"
    );
    // podman passes a resize of its terminal on to the container's.
    set_window(&master, 50, 120);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.0.id() as i32),
        nix::sys::signal::Signal::SIGWINCH,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    master.write_all(b"stty size\n").unwrap();
    read_until(&master, "50 120", &mut seen);
    master.write_all(b"exit 3\n").unwrap();
    let status = wait_until(&mut child.0, Instant::now() + COMMAND_DEADLINE);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(3),
        "terminal showed:\n{seen}"
    );
}

#[test]
fn a_detached_container_is_listed_logged_and_removed_by_rm_f() {
    let s = Session::new();
    let id = s.detached(&[
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo hello-from-detached; while :; do sleep 1; done",
    ]);
    let listed = s.podman(&["ps", "--quiet", "--no-trunc"]);
    assert!(listed.expect_code(0).stdout.contains(&id), "ps lacks {id}");
    assert_eq!(s.status(&id), "running");
    s.log_shows(&id, "hello-from-detached");
    s.remove(&id);
}

#[test]
fn exec_runs_in_the_container_and_returns_the_commands_code() {
    let s = Session::new();
    let id = s.detached(&SLEEPER);
    s.log_shows(&id, "ready");
    // Inside: the same pid namespace (its pid 1 is the container's shell)
    // and the same hostname (podman's default, the short id).
    let ran = s.podman(&[
        "exec",
        &id,
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; hostname; exit 5",
    ]);
    ran.expect_code(5);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert!(
        lines.first().is_some_and(|l| l.contains("echo ready")),
        "{}",
        ran.stdout
    );
    assert_eq!(lines.get(1).copied(), Some(&id[..12]), "{}", ran.stdout);
    // With -t the command gets a terminal of its own.
    let ran = s.podman(&["exec", "-t", &id, "sh", "-c", "tty; exit 6"]);
    ran.expect_code(6);
    let tty = ran.stdout.trim();
    assert!(
        tty.strip_prefix("/dev/pts/")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
        "tty printed {tty:?}"
    );
    s.podman(&["exec", &id, "/no/such/command"])
        .expect_code(127);
    s.remove(&id);
}

#[test]
fn exec_it_gives_the_command_a_terminal_of_the_users_size() {
    use std::io::Write;
    let s = Session::new();
    let id = s.detached(&SLEEPER);
    let mut podman = s.setup.podman();
    podman.args(["exec", "-it", &id, "sh"]);
    let (mut child, mut master) = on_a_terminal(podman, (27, 91));
    let mut seen = String::new();
    master.write_all(b"tty; stty size; exit 4\n").unwrap();
    read_until(&master, "27 91", &mut seen);
    assert!(seen.contains("/dev/pts/"), "no tty:\n{seen}");
    let status = wait_until(&mut child.0, Instant::now() + COMMAND_DEADLINE);
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(4),
        "terminal showed:\n{seen}"
    );
    s.remove(&id);
}

#[test]
fn stop_sends_sigterm_then_sigkill_once_the_timeout_is_up() {
    let s = Session::new();
    // A container that handles SIGTERM goes at once, with its own code.
    let polite = s.detached(&[
        "sh",
        "-c",
        "trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 1; done",
    ]);
    s.log_shows(&polite, "ready");
    let started = Instant::now();
    s.podman(&["stop", "--time", "30", &polite]).expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "SIGTERM was not enough"
    );
    assert_eq!(s.status(&polite), "exited");
    assert_eq!(s.exit_code(&polite), 0);
    assert!(s.logs(&polite).contains("bye"));
    s.remove(&polite);
    // One that ignores it is killed when the timeout is up, not before.
    let stubborn = s.detached(&[
        "sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 1; done",
    ]);
    s.log_shows(&stubborn, "ready");
    let started = Instant::now();
    s.podman(&["stop", "--time", "2", &stubborn]).expect_code(0);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(15),
        "stop -t 2 took {took:?}"
    );
    assert_eq!(s.status(&stubborn), "exited");
    assert_eq!(s.exit_code(&stubborn), 137, "SIGKILL ended it");
    s.remove(&stubborn);
}

#[test]
fn kill_delivers_the_signal_asked_for_and_sigkill_by_default() {
    let s = Session::new();
    let id = s.detached(&[
        "sh",
        "-c",
        "trap 'echo got-usr1' USR1; trap 'exit 0' TERM; echo ready; while :; do sleep 1; done",
    ]);
    s.log_shows(&id, "ready");
    s.podman(&["kill", "--signal", "USR1", &id]).expect_code(0);
    s.log_shows(&id, "got-usr1");
    assert_eq!(s.status(&id), "running", "USR1 is handled, not fatal");
    s.podman(&["kill", &id]).expect_code(0);
    eventually("the killed container to exit", || s.status(&id) == "exited");
    assert_eq!(s.exit_code(&id), 137);
    s.remove(&id);
}

#[test]
fn pause_freezes_the_container_and_unpause_thaws_it() {
    let s = Session::new();
    let id = s.detached(&[
        "sh",
        "-c",
        "trap 'exit 0' TERM; while :; do echo tick; sleep 1; done",
    ]);
    let ticks = |s: &Session| s.logs(&id).matches("tick").count();
    s.log_shows(&id, "tick");
    s.podman(&["pause", &id]).expect_code(0);
    assert_eq!(s.status(&id), "paused");
    let frozen_at = ticks(&s);
    // A tick a second while running: none in 2.5 s means frozen.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(ticks(&s), frozen_at, "the paused container kept ticking");
    s.podman(&["unpause", &id]).expect_code(0);
    assert_eq!(s.status(&id), "running");
    eventually("ticks after unpause", || ticks(&s) > frozen_at);
    s.remove(&id);
}
