//! The runtimes under test: how each starts `/bin/true`, installing it first, and whether it runs here.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use super::measure;

/// The OCI runtimes. Their state lives in `<scratch>/<name>`, where
/// cleanup looks for containers left behind.
pub const OCI: [Oci; 3] = [
    Oci {
        name: "runc",
        from: From::Debian {
            package: "runc",
            binary: "/usr/sbin/runc",
        },
    },
    Oci {
        name: "crun",
        from: From::Debian {
            package: "crun",
            binary: "/usr/bin/crun",
        },
    },
    // youki's default build refuses this host's v1 controllers; its `v1`
    // feature adds them. The version is pinned, and built with the
    // crate's own lock file.
    Oci {
        name: "youki",
        from: From::Crate {
            version: "0.7.0",
            features: "v1",
        },
    },
];

/// One OCI runtime of the comparison.
pub struct Oci {
    pub name: &'static str,
    from: From,
}

/// Where an OCI runtime comes from.
enum From {
    /// A Debian package that installs `binary`.
    Debian {
        package: &'static str,
        binary: &'static str,
    },
    /// A crate built with `cargo install` into the target directory.
    Crate {
        version: &'static str,
        features: &'static str,
    },
}

impl Oci {
    /// Where its binary is, installed or not.
    pub fn binary(&self) -> PathBuf {
        match self.from {
            From::Debian { binary, .. } => binary.into(),
            From::Crate { version, .. } => crate::target_dir()
                .join(format!("bench/{}-{version}", self.name))
                .join("bin")
                .join(self.name),
        }
    }

    /// Installs it if it is missing.
    pub(super) fn ensure(&self) -> Result<(), String> {
        match self.from {
            From::Debian { package, binary } => crate::prereq::ensure_package(package, binary),
            From::Crate { .. } if self.binary().exists() => Ok(()),
            From::Crate { version, features } => {
                let root = self
                    .binary()
                    .parent()
                    .and_then(Path::parent)
                    .map(Path::to_owned);
                let root = root.expect("bench/<name>-<version>/bin/<name>");
                eprintln!(
                    "xtask: building {} {version} with the feature {features} (once; a few minutes)",
                    self.name
                );
                let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
                let status = Command::new(cargo)
                    .args(["install", "--quiet", "--locked", self.name, "--version"])
                    .arg(format!("={version}"))
                    .args(["--features", features, "--root"])
                    .arg(&root)
                    .status()
                    .map_err(|e| format!("cannot run cargo install {}: {e}", self.name))?;
                match status.success() {
                    true => Ok(()),
                    false => Err(format!(
                        "`cargo install {} --version ={version} --features {features}` failed ({status})",
                        self.name
                    )),
                }
            }
        }
    }
}
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
    for oci in &OCI {
        let args = argv([&"--root", &state(oci.name), &"run", &"--bundle", &bundle]);
        let runtime = Runtime {
            takes_id: true,
            ..runtime(oci.name, &oci.binary(), args)
        };
        standings.push(match oci.ensure() {
            Ok(()) => Standing::Ready(runtime),
            Err(reason) => Standing::Unavailable(oci.name, reason),
        });
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
        "crun" | "youki" => Ok(Standing::Refused(runtime, refusal)),
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
    /// A runtime that runs `program` with no arguments (for tests).
    #[cfg(test)]
    pub fn bare(name: &'static str, program: &str) -> Runtime {
        Runtime {
            name,
            program: program.into(),
            args: Vec::new(),
            takes_id: false,
        }
    }

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
