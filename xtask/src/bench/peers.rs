//! The runtimes under test: how each starts `/bin/true`, installing it first, and whether it runs here.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use super::measure;

/// The OCI runtimes: name, Debian package, binary. Their state lives in
/// `<scratch>/<name>`, where cleanup looks for containers left behind.
pub const OCI: [(&str, &str, &str); 2] = [
    ("runc", "runc", "/usr/sbin/runc"),
    ("crun", "crun", "/usr/bin/crun"),
];
const BWRAP: &str = "/usr/bin/bwrap";

/// One runtime that starts `/bin/true` here.
pub struct Runtime {
    pub name: &'static str,
    program: PathBuf,
    args: Vec<OsString>,
    /// OCI runtimes take a fresh container id as their last argument.
    takes_id: bool,
}

/// A runtime's standing on this host.
pub enum Standing {
    Ready(Runtime),
    /// It ran once and exited nonzero: `exit N: first line of stderr`.
    Refused(Runtime, String),
    /// It could not be installed.
    Unavailable(&'static str, String),
}

/// Every runtime in the comparison, mydocker first, each started once to
/// warm the page cache and to learn whether it runs on this host at all.
///
/// Each gets a private state directory below `scratch`; runc and crun start
/// the OCI bundle at `bundle`, the others the rootfs directly.
pub fn prepare(
    mydocker: &Path,
    rootfs: &Path,
    bundle: &Path,
    scratch: &Path,
) -> Result<Vec<Standing>, String> {
    let runtime = |name, program: &Path, args| Runtime {
        name,
        program: program.to_owned(),
        args,
        takes_id: false,
    };
    let installed =
        |package, bin: &str, ready: Runtime| match crate::prereq::ensure_package(package, bin) {
            Ok(()) => Standing::Ready(ready),
            Err(reason) => Standing::Unavailable(ready.name, reason),
        };
    let state = |name: &str| scratch.join(name);
    let mydocker_args = argv([
        &"--root",
        &state("mydocker"),
        &"run",
        &"--rm",
        &"-m",
        &"64m",
        &"--cgroup-parent",
        &super::CGROUP_PARENT,
        &rootfs,
        &"/bin/true",
    ]);
    let mut standings = vec![Standing::Ready(runtime(
        "mydocker",
        mydocker,
        mydocker_args,
    ))];
    for (name, package, bin) in OCI {
        let args = argv([&"--root", &state(name), &"run", &"--bundle", &bundle]);
        let oci = Runtime {
            takes_id: true,
            ..runtime(name, bin.as_ref(), args)
        };
        standings.push(installed(package, bin, oci));
    }
    let bwrap_args = argv([
        &"--unshare-all",
        &"--die-with-parent",
        &"--ro-bind",
        &rootfs,
        &"/",
        &"--proc",
        &"/proc",
        &"--dev",
        &"/dev",
        &"/bin/true",
    ]);
    let bwrap = runtime("bwrap", BWRAP.as_ref(), bwrap_args);
    standings.push(installed("bubblewrap", BWRAP, bwrap));
    let unshare_args = argv([
        &"-fpmunic",
        &"--mount-proc",
        &"--root",
        &rootfs,
        &"/bin/true",
    ]);
    standings.push(Standing::Ready(runtime(
        "unshare",
        "unshare".as_ref(),
        unshare_args,
    )));
    // `busybox true`: busybox takes the applet from its first argument.
    let busybox = rootfs.join("bin/busybox");
    standings.push(Standing::Ready(runtime(
        "fork+exec",
        &busybox,
        argv([&"true"]),
    )));
    standings.into_iter().map(warm_up).collect()
}

/// Starts a ready runtime once. crun's failure is its refusal of this host;
/// unshare falls back to the literal form, on the host's `/bin/true`,
/// when the chroot form fails; any other failure stops the bench.
fn warm_up(standing: Standing) -> Result<Standing, String> {
    let Standing::Ready(mut runtime) = standing else {
        return Ok(standing);
    };
    let finished = measure::run_once(&mut runtime.command())?;
    if finished.status.success() {
        return Ok(Standing::Ready(runtime));
    }
    let first_line = finished.stderr.lines().next().unwrap_or("(no stderr)");
    let code = finished
        .status
        .code()
        .map_or("a signal".into(), |c| c.to_string());
    let refusal = format!("exit {code}: {first_line}");
    match runtime.name {
        "crun" => Ok(Standing::Refused(runtime, refusal)),
        "unshare" if runtime.args.len() > 3 => {
            eprintln!("xtask: unshare --root failed ({refusal}); using the host's /bin/true");
            runtime.args = argv([&"-fpmunic", &"--mount-proc", &"/bin/true"]);
            measure::start(runtime.name, &mut runtime.command())?;
            Ok(Standing::Ready(runtime))
        }
        _ => Err(format!(
            "{} failed its first start ({refusal}): `{}`",
            runtime.name,
            measure::show(&runtime.command())
        )),
    }
}

/// Arguments of mixed kinds (`&str`, paths) as one list.
fn argv<const N: usize>(parts: [&dyn AsRef<OsStr>; N]) -> Vec<OsString> {
    parts.iter().map(|part| part.as_ref().to_owned()).collect()
}

impl Runtime {
    /// A command that starts one new container running `/bin/true`.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args);
        if self.takes_id {
            // Unique within the bench, and named after it so that cleanup
            // finds the cgroup runc creates as `/<id>`.
            static SERIAL: AtomicU64 = AtomicU64::new(0);
            let n = SERIAL.fetch_add(1, Ordering::Relaxed);
            let pid = std::process::id();
            command.arg(format!("{}-{}-{pid}-{n}", super::CGROUP_PARENT, self.name));
        }
        command
    }
}
