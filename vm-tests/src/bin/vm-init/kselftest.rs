//! The kernel's own selftests, after the probes (`vm-test --kselftest`).
//!
//! The host packs each suite, built from this kernel's own source, on an
//! ext4 disk (`/dev/vda`, opened by QEMU as a snapshot so the image stays
//! clean). Here PID 1 mounts it, sets the guest up the way the selftests
//! expect a developer's machine to be (`../shared/KERNELS.md`), runs every
//! test binary of the plan with a time limit, runs a binary again when a
//! test FAILed (a FAIL counts once it reproduces) or stayed inconclusive,
//! and turns the TAP output into matrix rows.
//!
//! What the selftests expect:
//! - a root and a working directory on a disk filesystem. The guest's own
//!   root is a tmpfs, so each binary runs in a mount namespace of its own
//!   whose root is the ext4 disk (with `/proc`, `/sys` and `/dev` bound in),
//!   switched to with `pivot_root`, not `chroot`: the kernel refuses a user
//!   namespace to a chrooted process, and the pidfd and mount_setattr tests
//!   create them. A mount a test leaves behind dies with its namespace.
//!   `test_memcontrol` opens
//!   page-cache files with `O_TMPFILE` in its working directory, which a
//!   tmpfs charges differently, and `test_kmem_basic` looks up 100 000
//!   missing names under `/` to fill the dentry cache, which a tmpfs never
//!   caches (it drops a negative dentry at once), so on a tmpfs root it
//!   always fails;
//! - cgroup2 mounted with `nsdelegate` (the namespace tests check the
//!   delegation boundary it draws); in a v1 cell it is mounted beside the v1
//!   hierarchies at `/sys/fs/cgroup/unified`, holding whichever controllers
//!   v1 did not take (usually none), so the core, freezer and kill tests run
//!   there too;
//! - `/` traversable by uid 65534, which some core tests switch to, a
//!   `/tmp`, a `/mnt` (mount_setattr mounts there) and a `/bin/sleep`
//!   (pidfd_test execs it; the host packs a static one of its own);
//! - `lo` up and `localhost` resolvable, for `test_memcg_sock`'s server.

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::mount::{mount, MsFlags};
use probes::{Accelerator, ProbeResult, Verdict};
use vm_tests::kselftest::{
    self, BinaryRun, Ending, SelftestResult, SuitePlan, SuiteRun, PLAN_FILE,
};
use vm_tests::CgroupMode;

/// The disk the host packed the selftests on.
const DISK: &str = "/dev/vda";
/// Where it is mounted.
const MOUNT: &str = "/kselftest";
/// Where cgroup2 goes in a v1 cell, as systemd's hybrid layout puts it.
const UNIFIED: &str = "/sys/fs/cgroup/unified";

/// How long one binary may run. kselftest's own runner allows 45 s; an
/// emulated CPU is 5–10× slower, and a timed-out binary's unreported
/// tests are only inconclusive, so the limit is generous rather than tight.
fn time_limit(accelerator: Accelerator) -> Duration {
    match accelerator {
        Accelerator::Tcg => Duration::from_secs(240),
        _ => Duration::from_secs(90),
    }
}

/// A binary whose first run took longer is not run again only to settle
/// inconclusive tests: that rerun would cost the cell more than the
/// selftests' whole budget (5.10's test_memcontrol takes 95 s under TCG,
/// most of it in test_memcg_high). A FAIL is checked whatever it costs.
const RERUN_AT_MOST: Duration = Duration::from_secs(45);

/// Runs the suites in order; returns what each did and the matrix rows.
pub fn run_all(
    suites: &[String],
    mode: CgroupMode,
    accelerator: Accelerator,
    retries: u32,
    release: &str,
) -> (Vec<SuiteRun>, Vec<ProbeResult>) {
    let mut runs = Vec::new();
    let mut rows = Vec::new();
    let setup = set_up(mode);
    for suite in suites {
        let started = Instant::now();
        let mut run = match &setup {
            Ok(lines) => run_suite(suite, accelerator, retries, release, &mut rows)
                .map(|mut run| {
                    run.setup = lines.clone();
                    run
                })
                .unwrap_or_else(|error| SuiteRun {
                    suite: suite.clone(),
                    setup: lines.clone(),
                    error: Some(error),
                    ..SuiteRun::default()
                }),
            Err(error) => SuiteRun {
                suite: suite.clone(),
                error: Some(error.clone()),
                ..SuiteRun::default()
            },
        };
        run.seconds = started.elapsed().as_secs_f64();
        if let Some(error) = &run.error {
            println!("mydocker-vm-init: kselftest {suite}: {error}");
        }
        runs.push(run);
    }
    (runs, rows)
}

/// Prepares the guest once for every suite; returns what it did, one line
/// each, for the report.
fn set_up(mode: CgroupMode) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    wait_for(DISK, Duration::from_secs(20))?;
    std::fs::create_dir_all(MOUNT).map_err(|e| format!("create {MOUNT}: {e}"))?;
    mount(
        Some(DISK),
        MOUNT,
        Some("ext4"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("mount {DISK} (ext4) on {MOUNT}: {e}"))?;
    crate::run::loopback_up()?;
    let root = match mode {
        CgroupMode::V2 => {
            // The probes ran on this mount as the runtime finds it; the
            // selftests want the delegation boundary drawn.
            mount(
                None::<&str>,
                "/sys/fs/cgroup",
                None::<&str>,
                MsFlags::MS_REMOUNT,
                Some("nsdelegate"),
            )
            .map_err(|e| format!("remount cgroup2 with nsdelegate: {e}"))?;
            "/sys/fs/cgroup"
        }
        CgroupMode::V1 => {
            std::fs::create_dir_all(UNIFIED).map_err(|e| format!("create {UNIFIED}: {e}"))?;
            mount(
                Some("cgroup2"),
                UNIFIED,
                Some("cgroup2"),
                MsFlags::empty(),
                Some("nsdelegate"),
            )
            .map_err(|e| format!("mount cgroup2 on {UNIFIED}: {e}"))?;
            UNIFIED
        }
    };
    let offered = std::fs::read_to_string(format!("{root}/cgroup.controllers"))
        .map_err(|e| format!("read {root}/cgroup.controllers: {e}"))?;
    let offered: Vec<&str> = offered.split_whitespace().collect();
    lines.push(match (mode, offered.is_empty()) {
        (CgroupMode::V2, _) => format!(
            "cgroup2 at {root} (nsdelegate), controllers: {}",
            offered.join(" ")
        ),
        (CgroupMode::V1, true) => format!(
            "cgroup2 at {root} (nsdelegate) beside the v1 hierarchies, with no controller: \
             the tests that need one skip"
        ),
        (CgroupMode::V1, false) => format!(
            "cgroup2 at {root} (nsdelegate) beside the v1 hierarchies, with the controllers v1 \
             did not take: {}",
            offered.join(" ")
        ),
    });
    // After cgroup2 is mounted, so that the recursive bind of /sys has it.
    for dir in ["proc", "sys", "dev"] {
        let inside = format!("{MOUNT}/{dir}");
        std::fs::create_dir_all(&inside).map_err(|e| format!("create {inside}: {e}"))?;
        mount(
            Some(format!("/{dir}").as_str()),
            inside.as_str(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("bind /{dir} on {inside}: {e}"))?;
    }
    let tmp = format!("{MOUNT}/tmp");
    std::fs::create_dir_all(&tmp).map_err(|e| format!("create {tmp}: {e}"))?;
    set_mode(&tmp, 0o1777)?;
    let mnt = format!("{MOUNT}/mnt");
    std::fs::create_dir_all(&mnt).map_err(|e| format!("create {mnt}: {e}"))?;
    set_mode(MOUNT, 0o755)?;
    let etc = format!("{MOUNT}/etc");
    std::fs::create_dir_all(&etc).map_err(|e| format!("create {etc}: {e}"))?;
    std::fs::write(
        format!("{etc}/hosts"),
        "127.0.0.1 localhost\n::1 localhost\n",
    )
    .map_err(|e| format!("write {etc}/hosts: {e}"))?;
    lines.push(format!(
        "root and working directory on ext4: each binary in a mount namespace whose root is {DISK} (a snapshot of the host's image), with /proc, /sys and /dev bound in"
    ));
    Ok(lines)
}

fn set_mode(path: &str, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {mode:o} {path}: {e}"))
}

/// devtmpfs creates the disk's node when virtio_blk has probed it, which
/// can be a moment after the module loaded.
fn wait_for(path: &str, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    while !Path::new(path).exists() {
        if started.elapsed() > limit {
            return Err(format!(
                "no selftest disk: {path} did not appear within {limit:?} (was virtio_blk loaded?)"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Runs one suite's plan; its rows are added to `rows`.
fn run_suite(
    suite: &str,
    accelerator: Accelerator,
    retries: u32,
    release: &str,
    rows: &mut Vec<ProbeResult>,
) -> Result<SuiteRun, String> {
    let dir = PathBuf::from(MOUNT).join(suite);
    let plan_path = dir.join(PLAN_FILE);
    let text = std::fs::read_to_string(&plan_path)
        .map_err(|e| format!("read {}: {e}", plan_path.display()))?;
    let plan: SuitePlan = serde_json::from_str(&text)
        .map_err(|e| format!("{} does not parse: {e}", plan_path.display()))?;
    let mut run = SuiteRun {
        suite: suite.to_owned(),
        source: plan.source.clone(),
        not_run: plan.not_run.clone(),
        ..SuiteRun::default()
    };
    for binary in &plan.tests {
        let started = Instant::now();
        let mut results = run_binary(&dir, suite, binary, accelerator, release, &mut run);
        let first_run = started.elapsed();
        let mut attempts: Vec<Vec<SelftestResult>> = vec![Vec::new(); results.len()];
        for _ in 0..retries {
            if !kselftest::worth_retrying(&results, &attempts, release, accelerator) {
                break;
            }
            // A FAIL is always checked: it is the one verdict that blames
            // the kernel. Settling an inconclusive test is worth a budget.
            let unchecked_fail = results
                .iter()
                .zip(&attempts)
                .any(|(r, earlier)| matches!(r.verdict, Verdict::Fail(_)) && earlier.is_empty());
            if first_run > RERUN_AT_MOST && !unchecked_fail {
                let note = format!(
                    "not run again to settle its inconclusive tests: its run took {:.0} s, over the {} s such a rerun may cost",
                    first_run.as_secs_f64(),
                    RERUN_AT_MOST.as_secs()
                );
                if let Some(last) = run.runs.last_mut() {
                    last.notes.push(note);
                }
                break;
            }
            println!("mydocker-vm-init: kselftest {suite}/{binary}: a FAIL or an inconclusive test; running it again");
            let again = run_binary(&dir, suite, binary, accelerator, release, &mut run);
            kselftest::fold_retry(&mut results, &mut attempts, &again);
        }
        for (result, earlier) in results.iter().zip(&attempts) {
            rows.push(kselftest::to_row(result, earlier));
        }
    }
    Ok(run)
}

/// Runs one binary once, in its suite's directory, with stdout and stderr
/// on one pipe (so diagnostics stay in order with the results); records
/// the run and returns its annotated results.
fn run_binary(
    dir: &Path,
    suite: &str,
    binary: &str,
    accelerator: Accelerator,
    release: &str,
    run: &mut SuiteRun,
) -> Vec<SelftestResult> {
    let started = Instant::now();
    let lines: Arc<Mutex<Vec<(f64, String)>>> = Arc::default();
    let ending = match spawn_and_wait(dir, binary, accelerator, started, &lines) {
        Ok(ending) => ending,
        Err(why) => {
            let seconds = started.elapsed().as_secs_f64();
            run.runs.push(BinaryRun {
                binary: binary.to_owned(),
                ending: Ending::Exited(-1),
                seconds,
                plan: None,
                totals: None,
                notes: vec![why.clone()],
            });
            let failed = SelftestResult {
                suite: suite.to_owned(),
                binary: binary.to_owned(),
                name: binary.to_owned(),
                verdict: probes::Verdict::Inconclusive(why),
                diagnostics: Vec::new(),
                seconds,
            };
            return vec![failed];
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let lines = lines.lock().expect("lines").clone();
    let parsed = kselftest::parse(
        suite,
        binary,
        lines.iter().map(|(at, line)| (*at, line.as_str())),
        ending,
        seconds,
    );
    let (pass, fail) = parsed
        .results
        .iter()
        .fold((0, 0), |(p, f), r| match r.verdict {
            probes::Verdict::Pass => (p + 1, f),
            probes::Verdict::Fail(_) => (p, f + 1),
            _ => (p, f),
        });
    println!(
        "mydocker-vm-init: kselftest {suite}/{binary}: {} tests, {pass} passed, {fail} failed, {seconds:.1}s",
        parsed.results.len()
    );
    run.runs.push(BinaryRun {
        binary: binary.to_owned(),
        ending,
        seconds,
        plan: parsed.plan,
        totals: parsed.totals,
        notes: parsed.notes,
    });
    parsed
        .results
        .into_iter()
        .map(|r| kselftest::annotate(r, release, accelerator))
        .collect()
}

/// Starts the binary in a process group of its own, collects its output
/// lines with the time each arrived, and waits for it within the time
/// limit; at the end the whole group is killed, so no forked child of a
/// test outlives it.
fn spawn_and_wait(
    dir: &Path,
    binary: &str,
    accelerator: Accelerator,
    started: Instant,
    lines: &Arc<Mutex<Vec<(f64, String)>>>,
) -> Result<Ending, String> {
    let (read, write) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    let write_err = write.try_clone().map_err(|e| format!("dup: {e}"))?;
    // Under the new root, the suite's directory is /<suite>.
    let inside = Path::new("/").join(dir.strip_prefix(MOUNT).unwrap_or(dir));
    let workdir = inside.clone();
    let mut command = Command::new(inside.join(binary));
    // SAFETY: unshare, mount, chdir, pivot_root and umount2 are
    // async-signal-safe system calls, as pre_exec requires; the paths are
    // short constants or built before the fork, and nix converts them on
    // the stack.
    unsafe {
        command.pre_exec(move || {
            use nix::mount::{umount2, MntFlags};
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )?;
            nix::unistd::chdir(MOUNT)?;
            // The disk becomes the root, the old root is stacked on it and
            // then detached.
            nix::unistd::pivot_root(".", ".")?;
            umount2(".", MntFlags::MNT_DETACH)?;
            nix::unistd::chdir(&workdir)?;
            Ok(())
        });
    }
    let mut child = command
        .env_clear()
        .env("PATH", "/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(write_err))
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start {binary}: {e}"))?;
    // The command holds our copies of the pipe's write end: until they are
    // closed, the pipe never ends.
    drop(command);
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let collected = Arc::clone(lines);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(std::fs::File::from(read));
        for line in reader.split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.starts_with("ok ") || line.starts_with("not ok ") {
                println!("  {line}");
            }
            let at = started.elapsed().as_secs_f64();
            collected.lock().expect("lines").push((at, line));
        }
        let _ = done_tx.send(());
    });
    let limit = time_limit(accelerator);
    let ending = loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                break match (status.code(), status.signal()) {
                    (Some(code), _) => Ending::Exited(code),
                    (_, Some(signal)) => Ending::Signalled(signal),
                    _ => Ending::Exited(-1),
                }
            }
            Ok(None) if started.elapsed() > limit => {
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break Ending::TimedOut;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait for {binary}: {e}")),
        }
    };
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    // The pipe ends when every process holding it is gone; one that left
    // the group keeps it open, and then what arrived so far is the output.
    let _ = done_rx.recv_timeout(Duration::from_secs(2));
    Ok(ending)
}
