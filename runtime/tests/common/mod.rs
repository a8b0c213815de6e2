//! Test support: a busybox rootfs, and a harness that runs the real `mydocker`
//! binary in a private state root and cgroup parent, then proves that nothing
//! it created is left behind.

#![allow(dead_code)]

pub mod pty;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// The busybox rootfs the tests share. Containers only read it: every mount
/// point already exists, and no test writes into it.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let path = xtask::rootfs::default_path();
        if !path.join("bin/busybox").exists() {
            xtask::rootfs::build_busybox(&path)
                .unwrap_or_else(|e| panic!("cannot build the test rootfs: {e}"));
        }
        path
    })
}

/// One test's private corner of the machine.
pub struct Harness {
    pub state_root: tempfile::TempDir,
    /// Relative cgroup path under which this test's containers get their cgroups.
    pub cgroup_parent: String,
    mounts_before: BTreeSet<String>,
}

impl Harness {
    pub fn new() -> Harness {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Harness {
            state_root: tempfile::tempdir().unwrap(),
            cgroup_parent: format!("mydocker-test/{}-{n}", std::process::id()),
            mounts_before: host_mounts(),
        }
    }

    /// `mydocker --root <private> run --cgroup-parent <private> ARGS...`
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mydocker"));
        cmd.arg("--root")
            .arg(self.state_root.path())
            .args(["run", "--rm", "--cgroup-parent", &self.cgroup_parent])
            .args(args)
            .env_remove("MYDOCKER_ROOT")
            .stdin(Stdio::null());
        cmd
    }

    /// `mydocker --root <private> ARGS...`, for the commands besides `run`.
    pub fn cli(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_mydocker"))
            .arg("--root")
            .arg(self.state_root.path())
            .args(args)
            .env_remove("MYDOCKER_ROOT")
            .stdin(Stdio::null())
            .output()
            .expect("spawn mydocker");
        Run(output)
    }

    /// `mydocker --root <private> run --cgroup-parent <private> ARGS...`,
    /// without `--rm`: the container stays until the test removes it.
    pub fn run_kept(&self, args: &[&str]) -> Run {
        let mut full = vec!["run", "--cgroup-parent", &self.cgroup_parent];
        full.extend_from_slice(args);
        self.cli(&full)
    }

    /// Runs `mydocker ARGS...`, expecting docker's runtime-error code and one
    /// line on stderr that mentions `mention`.
    #[track_caller]
    pub fn refused(&self, args: &[&str], mention: &str) {
        let run = self.cli(args);
        run.expect_code(125);
        assert_eq!(run.stderr().lines().count(), 1, "{}", run.stderr());
        assert!(
            run.stderr().contains(mention),
            "{:?} does not mention {mention:?}",
            run.stderr()
        );
    }

    /// Runs a container to completion and returns what it printed.
    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().expect("spawn mydocker"))
    }

    /// Starts a container in the background with piped stdout and stderr.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mydocker")
    }

    /// The cgroup directories of this test's parent, one per hierarchy that has it.
    fn parent_dirs(&self) -> Vec<PathBuf> {
        cgroup_hierarchies()
            .into_iter()
            .map(|h| h.join(&self.cgroup_parent))
            .filter(|d| d.is_dir())
            .collect()
    }

    /// The directories of containers still recorded under the state root
    /// (the store's lock file is not a container).
    pub fn state_files(&self) -> Vec<PathBuf> {
        let containers = self.state_root.path().join("containers");
        std::fs::read_dir(containers)
            .map(|entries| {
                entries
                    .filter_map(|e| Some(e.ok()?.path()))
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Harness {
    /// Asserts that no cgroup, mount or state file is left, then removes the
    /// test's (now empty) cgroup parent, which the runtime created for it.
    fn drop(&mut self) {
        let mut leftovers = Vec::new();
        // Containers a test left (running ones too, after a failed assertion)
        // are leftovers; remove them so they do not outlive the test.
        let listed = self.cli(&["ps", "-a", "-q"]).stdout();
        for id in listed.lines().filter(|l| !l.is_empty()) {
            leftovers.push(format!("container {id}"));
            self.cli(&["rm", "-f", id]);
        }
        // A record a test damaged is not listed; rm -f takes it by id.
        for dir in self.state_files() {
            let id = dir.file_name().unwrap().to_string_lossy().into_owned();
            self.cli(&["rm", "-f", &id]);
        }
        for dir in self.parent_dirs() {
            let children: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect();
            leftovers.extend(children.iter().map(|c| format!("cgroup {}", c.display())));
            for child in children {
                let _ = std::fs::remove_dir(child);
            }
            // A v1 cgroup whose child was just removed can refuse rmdir with
            // EBUSY for a moment while the kernel takes the child offline.
            for _ in 0..50 {
                if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            let _ = std::fs::remove_dir(dir.parent().unwrap());
        }
        leftovers.extend(
            self.state_files()
                .iter()
                .map(|f| format!("state {}", f.display())),
        );
        let mounts_after = host_mounts();
        leftovers.extend(
            mounts_after
                .difference(&self.mounts_before)
                .map(|m| format!("mount {m}")),
        );
        if !std::thread::panicking() {
            assert!(
                leftovers.is_empty(),
                "the run left things behind:\n{}",
                leftovers.join("\n")
            );
        }
    }
}

/// The finished run of one container.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0
            .status
            .code()
            .expect("mydocker itself is never killed by a signal in these tests")
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Mount points of the host, as (mount point, filesystem source) lines.
fn host_mounts() -> BTreeSet<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields
                .iter()
                .position(|f| *f == "-")
                .unwrap_or(fields.len() - 1);
            format!("{} {}", fields[4], fields.get(dash + 2).unwrap_or(&""))
        })
        .collect()
}

/// Every cgroup hierarchy root: the v2 root, or each v1 controller directory.
pub fn cgroup_hierarchies() -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![root.to_owned()];
    if let Ok(entries) = std::fs::read_dir(root) {
        dirs.extend(
            entries
                .filter_map(|e| Some(e.ok()?.path()))
                .filter(|p| p.is_dir()),
        );
    }
    dirs
}

/// Polls `check` until it holds, failing after 10 s.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A gzip tarball of the test rootfs, as `docker export | gzip` would give.
pub fn tarball(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("rootfs.tgz");
    let file = std::fs::File::create(&path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    tar.follow_symlinks(false);
    tar.append_dir_all(".", rootfs()).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    path
}

/// Imports the test rootfs as the image `name`.
pub fn imported(h: &Harness, name: &str) {
    let scratch = tempfile::tempdir().unwrap();
    h.cli(&["import", tarball(scratch.path()).to_str().unwrap(), name])
        .expect_code(0);
}

/// Moves this test's thread into a new network namespace with `lo` up.
pub fn private_network() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .expect("unshare the network namespace");
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .expect("run ip");
    assert!(up.success());
}
