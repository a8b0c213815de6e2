//! Chaos: mydocker is killed with SIGKILL at random moments of everything
//! it does, several operations at once, and after each round one ordinary
//! command and `rm -f` of the survivors must leave nothing at all: no
//! cgroup, mount, veth, bridge, NAT rule, address lease, id claim, state
//! directory or process.
//!
//! Operations: a foreground `run`, a detached run (its monitor is killed),
//! `exec`, `rm -f`, `network create` and `network rm`; runs with and without
//! a network, with published ports, some in a user namespace. A kill aimed
//! at a run picks a phase (state, cgroup, clone, network, rootfs, exec,
//! wait, teardown) and a random moment inside that phase's window, as a
//! control run measured it; where the kill really landed is read back from
//! the killed process's own phase trace (`MYDOCKER_TRACE_PHASES`), since a
//! busy machine moves every window.
//!
//! The short form (40 operations) runs with the tests; the full one on
//! request: `MYDOCKER_CHAOS_OPS=200 cargo test -p runtime --test chaos --
//! --nocapture`. `MYDOCKER_CHAOS_SEED` replays a run; the seed is printed.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{private_network, rootfs, Harness};

/// Operations running at once in a round.
const AT_ONCE: usize = 4;
/// The sleep every long-lived container runs: how a leftover container
/// process is recognised on the host.
const MARK: &str = "7777";

/// xorshift64*: enough randomness for delays, and replayable from a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What one operation is.
#[derive(Debug, Clone, Copy)]
enum Op {
    Run {
        detached: bool,
        network: bool,
        publish: bool,
        userns: bool,
    },
    Exec,
    Remove,
    NetworkCreate,
    NetworkRemove,
}

impl Op {
    fn kind(self) -> &'static str {
        match self {
            Op::Run {
                detached: false, ..
            } => "run",
            Op::Run { detached: true, .. } => "run -d (monitor)",
            Op::Exec => "exec",
            Op::Remove => "rm -f",
            Op::NetworkCreate => "network create",
            Op::NetworkRemove => "network rm",
        }
    }
}

/// The phases a kill of a run can land in, in the order a run crosses them.
const PHASES: [&str; 8] = [
    "state", "cgroup", "clone", "network", "rootfs", "exec", "wait", "teardown",
];

/// What the rounds counted, for the report.
#[derive(Default)]
struct Tally {
    ops: BTreeMap<&'static str, usize>,
    /// Kills of a run by the phase they interrupted (`run in PHASE`), of
    /// other operations by kind.
    kills: BTreeMap<String, usize>,
    /// Operations that ended before their kill came.
    finished_first: usize,
    /// What the kills left, by kind, seen before the ordinary command.
    found: BTreeMap<&'static str, usize>,
    /// Of those, what the ordinary command finished by itself.
    reaped: BTreeMap<&'static str, usize>,
    /// Containers `ps -a` still listed after it: for `rm -f`.
    survivors: usize,
    /// Killed runs whose teardown a later command finished, record and all.
    runs_finished: usize,
}

/// The world a round runs in: one state root, one network that stays.
struct World {
    h: Harness,
    trace_dir: tempfile::TempDir,
    port: Mutex<u16>,
}

impl World {
    fn mydocker(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mydocker"));
        command
            .arg("--root")
            .arg(self.h.state_root.path())
            .args(args)
            .env_remove("MYDOCKER_ROOT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.mydocker(args).stdout(Stdio::piped()).output().unwrap();
        assert!(
            out.status.success(),
            "mydocker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn next_port(&self) -> String {
        let mut port = self.port.lock().unwrap();
        *port += 1;
        port.to_string()
    }

    /// The command line of a run operation that runs `command`.
    fn run_args(&self, op: Op, name: &str, command: &[&str]) -> Vec<String> {
        let Op::Run {
            detached,
            network,
            publish,
            userns,
        } = op
        else {
            unreachable!()
        };
        let mut args: Vec<String> = ["run", "--rm", "--cgroup-parent", &self.h.cgroup_parent]
            .map(String::from)
            .to_vec();
        args.extend(["--name".into(), name.into(), "-m".into(), "64m".into()]);
        if detached {
            args.push("-d".into());
        }
        if network {
            args.extend(["--network".into(), "chaos".into()]);
            if publish {
                args.extend(["-p".into(), format!("{}:80", self.next_port())]);
            }
        }
        if userns {
            args.extend(["--userns".into(), "auto".into()]);
        }
        args.push(rootfs().to_str().unwrap().into());
        args.extend(command.iter().map(|word| word.to_string()));
        args
    }

    /// What a run operation runs. A foreground run ends at once, so its
    /// teardown comes soon; a detached one would run for hours, so that a
    /// container that outlived its killed monitor is seen.
    fn command(op: Op) -> &'static [&'static str] {
        match op {
            Op::Run { detached: true, .. } => &["sleep", MARK],
            _ => &["true"],
        }
    }
}

/// Reads a phase trace: `(pid, phase, nanoseconds)` per line.
fn read_trace(path: &Path) -> Vec<(i32, String, u64)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            Some((
                fields.next()?.parse().ok()?,
                fields.next()?.to_owned(),
                fields.next()?.parse().ok()?,
            ))
        })
        .collect()
}

fn monotonic_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// A control run's laps: each phase's window, in nanoseconds after the
/// trace's start line.
fn windows(trace: &[(i32, String, u64)]) -> Vec<(String, u64, u64)> {
    let start = trace.first().map_or(0, |t| t.2);
    let mut from = 0;
    trace[1..]
        .iter()
        .map(|(_, phase, at)| {
            let window = (phase.clone(), from, at - start);
            from = at - start;
            window
        })
        .collect()
}

/// Waits until the trace has its start line (the launcher is running its
/// start) and returns that line's pid and moment; `None` if `child`
/// ended first or nothing came within 20 s.
fn traced_start(trace: &Path, child: &mut Child) -> Option<(i32, u64)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some((pid, _, at)) = read_trace(trace).first() {
            return Some((*pid, *at));
        }
        if child.try_wait().unwrap().is_some() {
            // A detached run's client ends after the monitor's start line.
            return read_trace(trace).first().map(|(pid, _, at)| (*pid, *at));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    None
}

/// The phase a killed run was in: the one after its last lap. A run laps
/// `cgroup` twice (made, then init moved in after the clone) and may skip
/// `exec` (a command that ends at once is reaped before its exec is seen).
fn interrupted_phase(killed: &[(i32, String, u64)]) -> &'static str {
    let last = killed
        .last()
        .map_or("start", |(_, phase, _)| phase.as_str());
    let cloned = killed.iter().any(|(_, phase, _)| phase == "clone");
    match last {
        "start" => "state",
        "state" => "cgroup",
        "cgroup" if !cloned => "clone",
        "clone" => "cgroup",
        "cgroup" => "network",
        "network" => "rootfs",
        "rootfs" => "exec",
        "exec" => "wait",
        "wait" => "teardown",
        _ => "after teardown",
    }
}

/// Kills `pid` with SIGKILL; one already gone is fine.
fn sigkill(pid: i32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Everything of mydocker's on this machine under the test's state root,
/// cgroup parent and network namespace, by kind, apart from the network
/// that stays for the whole test.
fn leftovers(w: &World) -> BTreeMap<&'static str, Vec<String>> {
    let root = w.h.state_root.path();
    let mut found: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut add = |kind, what: String| found.entry(kind).or_default().push(what);
    for entry in std::fs::read_dir(root.join("containers"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if entry.path().is_dir() {
            add("state directory", entry.path().display().to_string());
        }
    }
    for hierarchy in common::cgroup_hierarchies() {
        let parent = hierarchy.join(&w.h.cgroup_parent);
        for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                add("cgroup", entry.path().display().to_string());
            }
        }
    }
    let root_text = root.to_string_lossy().into_owned();
    for line in std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
    {
        if line.contains(&root_text) {
            add("mount", line.to_owned());
        }
    }
    let links = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    for line in String::from_utf8(links.stdout).unwrap().lines() {
        let ours = line.contains("veth") || line.contains(": vp") || line.contains("mdbr");
        if ours && !line.contains("mydocker network chaos ") {
            add("link", line.split('\\').next().unwrap().to_owned());
        }
    }
    let rules = Command::new("nft")
        .args(["list", "table", "ip", "mydocker"])
        .output()
        .unwrap();
    // Forwarded ports, and any rule of a network the rounds made (their
    // subnets are 10.99.N.0/24): only the staying network's may remain.
    for line in String::from_utf8(rules.stdout).unwrap().lines() {
        if line.contains("dnat") || line.contains("10.99.") {
            add("nat rule", line.trim().to_owned());
        }
    }
    let networks = root.join("networks");
    for entry in std::fs::read_dir(&networks).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && name != "chaos" {
            add("network", name);
        }
    }
    let leases = std::fs::read_to_string(networks.join("chaos/leases.json")).unwrap();
    let leases: serde_json::Value = serde_json::from_str(&leases).unwrap();
    for (address, owner) in leases["leased"].as_object().unwrap() {
        add("lease", format!("{address} {owner}"));
    }
    for entry in std::fs::read_dir(runtime::userns::CLAIMS)
        .into_iter()
        .flatten()
        .flatten()
    {
        let holder = std::fs::read_to_string(entry.path()).unwrap_or_default();
        if holder.contains(&root_text) {
            add("id claim", holder);
        }
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&root_text) || cmdline.trim_end().ends_with(&format!("sleep {MARK}")) {
            add("process", format!("{pid} {cmdline}"));
        }
    }
    found
}

/// Runs one operation and kills it at a random moment; returns where the
/// kill landed, or `None` if the operation ended before it.
fn one(w: &World, op: Op, n: usize, aim: usize, seed: u64, controls: &Controls) -> Option<String> {
    let mut rng = Rng(seed | 1);
    let name = format!("c{n}");
    match op {
        Op::Run { detached, .. } => {
            let trace = w.trace_dir.path().join(format!("{n}.trace"));
            let control = controls.run(detached);
            // Aim at one phase: a random moment inside its control window
            // (any window where the control never lapped it, as `exec`).
            let aimed = PHASES[aim % PHASES.len()];
            let mut windows: Vec<&(String, u64, u64)> = control
                .iter()
                .filter(|(phase, _, _)| phase == aimed)
                .collect();
            if windows.is_empty() {
                windows = control.iter().collect();
            }
            let (_, from, to) = windows[rng.below(windows.len() as u64) as usize];
            let delay = from + rng.below(to - from + 1);
            let args = w.run_args(op, &name, World::command(op));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut child = w
                .mydocker(&args)
                .env("MYDOCKER_TRACE_PHASES", &trace)
                .spawn()
                .unwrap();
            let Some((launcher, started)) = traced_start(&trace, &mut child) else {
                child.kill().unwrap();
                child.wait().unwrap();
                return None;
            };
            let wake = started + delay;
            let now = monotonic_ns();
            if wake > now {
                std::thread::sleep(Duration::from_nanos(wake - now));
            }
            // The launcher is the foreground run itself, or the monitor.
            sigkill(launcher);
            let _ = child.kill();
            child.wait().unwrap();
            let laps = read_trace(&trace);
            let phase = interrupted_phase(&laps);
            (phase != "after teardown").then(|| format!("run in {phase}"))
        }
        Op::Exec => {
            let mut child = w
                .mydocker(&["exec", "target", "sh", "-c", "sleep 0.05"])
                .spawn()
                .unwrap();
            kill_after(&mut child, controls.exec, &mut rng).then(|| "exec".into())
        }
        Op::Remove => {
            let victim = Op::Run {
                detached: true,
                network: true,
                publish: true,
                userns: false,
            };
            let args = w.run_args(victim, &name, World::command(victim));
            w.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
            let mut child = w.mydocker(&["rm", "-f", &name]).spawn().unwrap();
            kill_after(&mut child, controls.remove, &mut rng).then(|| "rm -f".into())
        }
        Op::NetworkCreate => {
            let subnet = format!("10.99.{}.0/24", n % 250);
            let mut child = w
                .mydocker(&["network", "create", "--subnet", &subnet, &format!("n{n}")])
                .spawn()
                .unwrap();
            kill_after(&mut child, controls.network_create, &mut rng)
                .then(|| "network create".into())
        }
        Op::NetworkRemove => {
            let network = format!("n{n}");
            w.ok(&[
                "network",
                "create",
                "--subnet",
                &format!("10.99.{}.0/24", n % 250),
                &network,
            ]);
            let mut child = w.mydocker(&["network", "rm", &network]).spawn().unwrap();
            kill_after(&mut child, controls.network_remove, &mut rng).then(|| "network rm".into())
        }
    }
}

/// Kills `child` at a random moment within `span` (a control's duration);
/// true if it was still running then.
fn kill_after(child: &mut Child, span: Duration, rng: &mut Rng) -> bool {
    let delay = Duration::from_nanos(rng.below(span.as_nanos() as u64 + 1));
    std::thread::sleep(delay);
    let running = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    child.wait().unwrap();
    running
}

/// How long each operation takes unkilled on this machine now, and the
/// phase windows of the two kinds of run.
struct Controls {
    foreground: Vec<(String, u64, u64)>,
    detached: Vec<(String, u64, u64)>,
    exec: Duration,
    remove: Duration,
    network_create: Duration,
    network_remove: Duration,
}

impl Controls {
    fn run(&self, detached: bool) -> &[(String, u64, u64)] {
        if detached {
            &self.detached
        } else {
            &self.foreground
        }
    }

    /// Measures each operation once, unkilled: the control that shows the
    /// operation works here, and the span its kills are drawn from.
    fn measure(w: &World) -> Controls {
        let traced = |detached: bool| {
            let trace = w.trace_dir.path().join(format!("control-{detached}.trace"));
            let op = Op::Run {
                detached,
                network: true,
                publish: true,
                userns: false,
            };
            // A detached control ends by itself, to time its teardown too.
            let command: &[&str] = if detached {
                &["sleep", "0.3"]
            } else {
                &["true"]
            };
            let args = w.run_args(op, &format!("control{detached}"), command);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let status = w
                .mydocker(&args)
                .env("MYDOCKER_TRACE_PHASES", &trace)
                .status()
                .unwrap();
            assert!(status.success(), "the control run failed");
            common::eventually("the control's teardown", || {
                read_trace(&trace).iter().any(|(_, p, _)| p == "teardown")
            });
            let laps = read_trace(&trace);
            let phases: Vec<&str> = laps.iter().map(|(_, p, _)| p.as_str()).collect();
            for phase in PHASES.iter().filter(|p| **p != "exec") {
                assert!(
                    phases.contains(phase),
                    "the control run has no {phase} lap: {phases:?}"
                );
            }
            windows(&laps)
        };
        let timed = |args: &[&str]| {
            let start = Instant::now();
            w.ok(args);
            start.elapsed()
        };
        let (foreground, detached) = (traced(false), traced(true));
        start_sleeper(w, "victim", false);
        let exec = timed(&["exec", "target", "sh", "-c", "sleep 0.05"]);
        let remove = timed(&["rm", "-f", "victim"]);
        let network_create = timed(&["network", "create", "--subnet", "10.99.250.0/24", "spare"]);
        let network_remove = timed(&["network", "rm", "spare"]);
        Controls {
            foreground,
            detached,
            exec,
            remove,
            network_create,
            network_remove,
        }
    }
}

/// The containers named `names` whose init still runs, by their records
/// and the kernel's process table (pid and start time).
fn running_inits(w: &World, names: &[String]) -> Vec<String> {
    let containers = w.h.state_root.path().join("containers");
    let mut running = Vec::new();
    for entry in std::fs::read_dir(containers)
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(entry.path().join("state.json")) else {
            continue;
        };
        let record: serde_json::Value = serde_json::from_str(&text).unwrap();
        let name = record["name"].as_str().unwrap_or_default();
        let (pid, start) = (
            record["pid"].as_i64().unwrap_or(0),
            record["pid_start"].as_u64(),
        );
        if pid <= 0 || !names.iter().any(|n| n == name) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // After the command name's closing parenthesis: state is field 3,
        // the start time field 22.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        let alive = fields.first().is_some_and(|state| *state != "Z")
            && fields.get(19).and_then(|t| t.parse::<u64>().ok()) == start;
        if alive {
            running.push(name.to_owned());
        }
    }
    running
}

/// What names the target container's things in [`leftovers`]: its id, the
/// 8 digits its veth is named by, and its init's and monitor's pids.
fn target_marks(w: &World) -> Vec<String> {
    let record: serde_json::Value =
        serde_json::from_str(&w.ok(&["inspect", "--record", "target"])).unwrap();
    let id = record["id"].as_str().unwrap().to_owned();
    vec![
        format!("veth{}", &id[..8]),
        id,
        format!("{} ", record["pid"]),
        format!("{} ", record["monitor_pid"]),
    ]
}

/// Starts `name` detached, sleeping for hours, on the staying network if
/// asked: the round's `exec` target, or the control's `rm -f` victim.
fn start_sleeper(w: &World, name: &str, networked: bool) {
    let mut args = vec![
        "run",
        "-d",
        "--cgroup-parent",
        &w.h.cgroup_parent,
        "--name",
        name,
    ];
    if networked {
        args.extend(["--network", "chaos"]);
    }
    args.extend([rootfs().to_str().unwrap(), "sleep", MARK]);
    w.ok(&args);
}

#[test]
fn nothing_is_left_whatever_is_killed_and_whenever() {
    private_network();
    let total: usize = std::env::var("MYDOCKER_CHAOS_OPS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(40);
    let seed: u64 = std::env::var("MYDOCKER_CHAOS_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(monotonic_ns);
    println!("chaos: {total} operations, seed {seed} (MYDOCKER_CHAOS_SEED replays it)");
    let h = Harness::new();
    // A container in a user namespace runs as ids that must reach its layers.
    std::fs::set_permissions(h.state_root.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let w = World {
        h,
        trace_dir: tempfile::tempdir().unwrap(),
        port: Mutex::new(19000),
    };
    w.ok(&["network", "create", "--subnet", "10.98.0.0/24", "chaos"]);
    start_sleeper(&w, "target", true);
    let controls = Controls::measure(&w);
    let mut rng = Rng(seed | 1);
    let mut tally = Tally::default();
    let mut n = 0;
    while n < total {
        let round: Vec<(usize, Op, u64)> = (0..AT_ONCE.min(total - n))
            .map(|i| {
                let op = match rng.below(10) {
                    0..=2 => Op::Run {
                        detached: false,
                        network: rng.below(2) == 0,
                        publish: rng.below(2) == 0,
                        userns: rng.below(4) == 0,
                    },
                    3..=5 => Op::Run {
                        detached: true,
                        network: rng.below(2) == 0,
                        publish: rng.below(2) == 0,
                        userns: rng.below(4) == 0,
                    },
                    6 => Op::Exec,
                    7 => Op::Remove,
                    8 => Op::NetworkCreate,
                    _ => Op::NetworkRemove,
                };
                (n + i, op, rng.next())
            })
            .collect();
        n += round.len();
        let landed: Vec<(usize, Op, Option<String>)> = std::thread::scope(|s| {
            let workers: Vec<_> = round
                .iter()
                .map(|&(k, op, seed)| {
                    let (w, controls) = (&w, &controls);
                    s.spawn(move || (k, op, one(w, op, k, k, seed, controls)))
                })
                .collect();
            workers.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let mut killed_runs = Vec::new();
        for (k, op, phase) in landed {
            *tally.ops.entry(op.kind()).or_default() += 1;
            match phase {
                Some(phase) => {
                    if matches!(op, Op::Run { .. }) {
                        killed_runs.push(format!("c{k}"));
                    }
                    *tally.kills.entry(phase).or_default() += 1
                }
                None => tally.finished_first += 1,
            }
        }
        // A container dies with the run or monitor that was killed (its
        // parent-death signal; the kill and the death take a moment). Read
        // from the records and /proc: any mydocker command would reap.
        let deadline = Instant::now() + Duration::from_secs(10);
        let outlived = loop {
            let outlived = running_inits(&w, &killed_runs);
            if outlived.is_empty() || Instant::now() > deadline {
                break outlived;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            outlived.is_empty(),
            "containers outlived their killed launcher (seed {seed}): {outlived:?}"
        );
        // Everything there now but the target and the staying network: what
        // the kills left, and the victims of an `rm -f` killed before it
        // killed them, and the networks whose create finished.
        let target = target_marks(&w);
        let without_target = |mut found: BTreeMap<&'static str, Vec<String>>| {
            for items in found.values_mut() {
                items.retain(|item| !target.iter().any(|mark| item.contains(mark.as_str())));
            }
            found.retain(|_, items| !items.is_empty());
            found
        };
        let before = without_target(leftovers(&w));
        // One ordinary command finishes what it can by itself: by now, all
        // that the killed runs left (the round's other commands may have
        // finished it first). Each asked for --rm, so no record may remain.
        let listed = w.ok(&["ps", "-a"]);
        let after = without_target(leftovers(&w));
        for name in &killed_runs {
            assert!(
                !listed
                    .lines()
                    .any(|l| l.split_whitespace().last() == Some(name.as_str())),
                "the killed run {name} was not finished (seed {seed}):\n{listed}"
            );
        }
        tally.runs_finished += killed_runs.len();
        for (kind, items) in &before {
            let still = after.get(kind).map_or(0, Vec::len);
            *tally.found.entry(kind).or_default() += items.len();
            *tally.reaped.entry(kind).or_default() += items.len().saturating_sub(still);
        }
        w.ok(&["rm", "-f", "target"]);
        // Then `rm -f` of every survivor and `network rm` of every network
        // the round made, and nothing may remain.
        let survivors = w.ok(&["ps", "-aq"]);
        tally.survivors += survivors.lines().count();
        for id in survivors.lines() {
            w.ok(&["rm", "-f", id]);
        }
        for line in w.ok(&["network", "ls"]).lines().skip(1) {
            let name = line.split_whitespace().next().unwrap();
            if name != "chaos" {
                w.ok(&["network", "rm", name]);
            }
        }
        let left = leftovers(&w);
        assert!(
            left.is_empty(),
            "after operations {}..{n} (seed {seed}), left behind: {left:#?}",
            n - round.len()
        );
        start_sleeper(&w, "target", true);
    }
    w.ok(&["rm", "-f", "target"]);
    w.ok(&["network", "rm", "chaos"]);
    // The control: kills did land, in more than one place.
    assert!(tally.kills.len() > 1, "no kill landed: {:?}", tally.kills);
    println!("operations: {:?}", tally.ops);
    println!("kills (a run's by the phase it was in): {:?}", tally.kills);
    println!(
        "operations that ended before their kill: {}",
        tally.finished_first
    );
    println!(
        "killed runs whose teardown later commands finished, record and all: {}",
        tally.runs_finished
    );
    println!("there before a round's ps -a: {:?}", tally.found);
    println!("of those, finished by that ps -a: {:?}", tally.reaped);
    println!("containers left for rm -f: {}", tally.survivors);
}
