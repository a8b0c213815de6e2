//! `mydocker-vm-init`: PID 1 of a test VM.
//!
//! It moves itself off the initramfs onto a tmpfs root, mounts the kernel
//! filesystems, loads the kernel modules the probes need, sets up cgroups in
//! the mode the kernel command line asks for, runs the probe suite, sends the
//! framed JSON report to the second serial port, and powers the VM off. PID 1
//! must never exit (the kernel would panic), so every path ends in power-off.
//!
//! In run mode (`mydocker.run=1`, from `cargo xtask vm-test run`) it sets
//! up the same, brings `lo` up, and runs the one command the host packed
//! instead of the probes, streaming its output and exit status to the second
//! serial port (see `run.rs`).

mod cgroups;
mod kmod;
mod kselftest;
mod run;
mod run_wire;
mod switch_root;

use std::io::Write;
use std::process::Command;

use nix::mount::{mount, MsFlags};
use vm_tests::cell::{self, CgroupMode, GuestReport};

/// Where the probe suite's binaries sit in the initramfs.
const PROBE_RUNNER: &str = "/bin/mydocker-probe";
const PROBE_HELPER: &str = "/bin/mydocker-probe-helper";
/// The serial port the host reads the report from (the console is ttyS0).
const REPORT_PORT: &str = "/dev/ttyS1";

fn main() {
    let result = std::panic::catch_unwind(run);
    if let Err(panic) = result {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
        eprintln!(
            "mydocker-vm-init: panicked: {}",
            message.unwrap_or_default()
        );
    }
    power_off();
}

fn run() {
    if let Err(e) = switch_root::onto_tmpfs() {
        eprintln!("mydocker-vm-init: cannot leave the initramfs root: {e}");
    }
    mount_kernel_filesystems();
    let boot_seconds = uptime();
    println!("mydocker-vm-init: PID 1 running {boot_seconds:.2}s after the kernel started");
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let arg = |key: &str| {
        cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_owned)
    };
    if arg(cell::CMDLINE_CHECK).is_some() {
        println!("{}", cell::BOOT_MARKER);
        return;
    }
    let mode: CgroupMode = arg(cell::CMDLINE_CGROUP)
        .and_then(|m| m.parse().ok())
        .unwrap_or(CgroupMode::V2);
    let modules = kmod::load_all();
    let (controllers, controllers_missing) = cgroups::set_up(mode);
    if arg(cell::CMDLINE_RUN).is_some() {
        run_command(
            mode,
            &modules,
            &controllers_missing,
            arg(cell::CMDLINE_ACCEL),
        );
        return;
    }
    let mut report = GuestReport {
        kernel_release: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        cgroup_mode: mode,
        boot_seconds,
        probe_seconds: 0.0,
        controllers,
        controllers_missing,
        modules,
        probes: None,
        error: None,
        kselftests: Vec::new(),
    };
    // A comma-separated list on the command line, empty when absent.
    let list = |key: &str| -> Vec<String> {
        arg(key)
            .map(|text| {
                text.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let filters = list(cell::CMDLINE_PROBES);
    let started = std::time::Instant::now();
    let accelerator = arg(cell::CMDLINE_ACCEL)
        .ok_or_else(|| format!("the kernel command line has no {}=", cell::CMDLINE_ACCEL))
        .and_then(|name| name.parse::<probes::Accelerator>());
    let retries = arg(cell::CMDLINE_RETRIES);
    let mutation = arg(cell::CMDLINE_MUTATION);
    let outcome = accelerator.clone().and_then(|accelerator| {
        run_probes(
            &filters,
            retries.as_deref(),
            mutation.as_deref(),
            accelerator,
        )
    });
    report.probe_seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(probes) => report.probes = Some(probes),
        Err(e) => report.error = Some(e),
    }
    let suites = list(cell::CMDLINE_KSELFTEST);
    if let (false, Ok(accelerator)) = (suites.is_empty(), accelerator) {
        let retries = retries.and_then(|r| r.parse().ok()).unwrap_or(0);
        let (runs, rows) =
            kselftest::run_all(&suites, mode, accelerator, retries, &report.kernel_release);
        report.kselftests = runs;
        // The selftests' rows join the probes' so that every rendering,
        // the diff and the baseline see them.
        let probes = report.probes.get_or_insert_with(|| probes::Report {
            kernel: report.kernel_release.clone(),
            cgroup_mode: mode.to_string(),
            accelerator,
            results: Vec::new(),
            leftovers: Vec::new(),
        });
        probes.results.extend(rows);
    }
    send(&cell::frame(&report));
}

/// Run mode: what the setup could not do goes to the console (the host
/// shows it only if something fails); then the command runs.
fn run_command(
    mode: CgroupMode,
    modules: &[(String, String)],
    controllers_missing: &[(String, String)],
    accelerator: Option<String>,
) {
    for (module, outcome) in modules.iter().filter(|(_, o)| o.starts_with("failed")) {
        println!("mydocker-vm-init: module {module}: {outcome}");
    }
    for (controller, why) in controllers_missing {
        println!("mydocker-vm-init: cgroup {mode} controller {controller} missing: {why}");
    }
    if let Err(e) = run::loopback_up() {
        println!("mydocker-vm-init: cannot bring lo up: {e}");
    }
    match open_report_port() {
        Ok(mut port) => run::run(&mut port, accelerator.as_deref()),
        Err(e) => eprintln!("mydocker-vm-init: open {REPORT_PORT}: {e}"),
    }
    // Serial output is asynchronous; let the UART drain before power-off.
    std::thread::sleep(std::time::Duration::from_millis(200));
}

/// The report port in raw mode: what is written arrives byte for byte.
fn open_report_port() -> std::io::Result<std::fs::File> {
    use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
    let port = std::fs::OpenOptions::new().write(true).open(REPORT_PORT)?;
    if let Ok(mut attrs) = tcgetattr(&port) {
        cfmakeraw(&mut attrs);
        let _ = tcsetattr(&port, SetArg::TCSANOW, &attrs);
    }
    Ok(port)
}

/// Seconds since the kernel started, from `/proc/uptime`.
fn uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn mount_kernel_filesystems() {
    for (source, target, fstype, data) in [
        ("proc", "/proc", "proc", None),
        ("sysfs", "/sys", "sysfs", None),
        ("devtmpfs", "/dev", "devtmpfs", None),
        ("tmpfs", "/tmp", "tmpfs", Some("mode=1777")),
        ("tmpfs", "/run", "tmpfs", Some("mode=755")),
    ] {
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = mount(Some(source), target, Some(fstype), MsFlags::empty(), data) {
            eprintln!("mydocker-vm-init: mount {fstype} on {target}: {e}");
        }
    }
    // The kernel opened /dev/console for us from the initramfs; make sure
    // stdout and stderr point at it now that devtmpfs is mounted.
    if let Ok(console) = std::fs::OpenOptions::new().write(true).open("/dev/console") {
        let _ = nix::unistd::dup2_stdout(&console);
        let _ = nix::unistd::dup2_stderr(&console);
    }
}

/// Runs the probe suite and reads its JSON report.
fn run_probes(
    filters: &[String],
    retries: Option<&str>,
    mutation: Option<&str>,
    accelerator: probes::Accelerator,
) -> Result<probes::Report, String> {
    let out = "/tmp/probe-report.json";
    let mut command = Command::new(PROBE_RUNNER);
    command.arg("run").args(filters);
    if let Some(retries) = retries {
        command.args(["--retries-inconclusive", retries]);
    }
    if let Some(mutation) = mutation {
        command.args(["--mutation", mutation]);
    }
    let status = command
        .args([
            "--format",
            "json",
            "--out",
            out,
            "--helper",
            PROBE_HELPER,
            "--progress",
        ])
        .env(probes::accelerator::ENV, accelerator.as_str())
        .env("PATH", "/bin")
        .status()
        .map_err(|e| format!("cannot run {PROBE_RUNNER}: {e}"))?;
    let text = std::fs::read_to_string(out)
        .map_err(|e| format!("{PROBE_RUNNER} ended with {status} and wrote no report: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("the probe report does not parse: {e}"))
}

fn send(framed: &str) {
    match std::fs::OpenOptions::new().write(true).open(REPORT_PORT) {
        Ok(mut port) => {
            if let Err(e) = port
                .write_all(framed.as_bytes())
                .and_then(|()| port.flush())
            {
                eprintln!("mydocker-vm-init: write to {REPORT_PORT}: {e}");
            }
        }
        Err(e) => eprintln!("mydocker-vm-init: open {REPORT_PORT}: {e}"),
    }
    // Serial output is asynchronous; let the UART drain before power-off.
    std::thread::sleep(std::time::Duration::from_millis(200));
}

fn power_off() -> ! {
    nix::unistd::sync();
    let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
