//! `cargo xtask vm-test run --kernel SPEC [--cgroup v1|v2] -- CMD [ARG...]`:
//! boots one guest set up as a matrix cell is (modules, cgroups in the
//! mode asked, and `lo` up), runs one static command in it instead of the
//! probes, streams the command's stdout and stderr to ours as they come,
//! and ends with its exit code, as `vng -- CMD` does.
//!
//! The command travels in the initramfs, at `/run-cmd/<its file name>`,
//! with its argv in `/run-cmd/argv`; the kernel command line only says
//! `mydocker.run=1`. The guest's PID 1 sends the output and the status as
//! lines on the report port (ttyS1), which is a file here that we follow
//! while QEMU runs; the wire format is in `vm-tests/src/bin/vm-init/run_wire.rs`,
//! compiled into both sides.

#[path = "../../../vm-tests/src/bin/vm-init/run_wire.rs"]
mod run_wire;

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use probes::Accelerator;
use vm_tests::cell::{self, CgroupMode};

use super::kernel::{self, KernelSpec};
use super::{initramfs, modules, qemu};
use crate::guest;
pub use run_wire::{decode_argv, encode_argv, Decoder, Frame};

/// The kernel booted when `--kernel` is not given: the newest of the
/// kernels `cargo xtask ci` boots, which has every probe's feature.
pub const DEFAULT_KERNEL: &str = "debian-6.12";
/// The cgroup mode when `--cgroup` is not given, as on current hosts.
pub const DEFAULT_MODE: CgroupMode = CgroupMode::V2;

/// xtask's exit code when the command did not run to a known status: the
/// guest could not be built or booted, crashed, hung, or sent no status
/// (as `docker run` uses it for its own failures).
pub const EXIT_XTASK_FAILED: u8 = 125;
/// The exit code when the guest could not start the command (as a shell's
/// "found but cannot execute").
pub const EXIT_CANNOT_START: u8 = 126;
/// The exit code for bad input (a missing or dynamic CMD, an unknown
/// kernel): clap's own code for a usage error.
pub const EXIT_BAD_INPUT: u8 = 2;

/// What `vm-test run` was asked to do.
pub struct Args {
    /// A kernel spec as `--kernel` takes it; `None` is [`DEFAULT_KERNEL`].
    pub kernel: Option<String>,
    pub mode: CgroupMode,
    /// CMD (a host path) and its arguments.
    pub command: Vec<OsString>,
    pub out: PathBuf,
    pub timeout: Duration,
}

/// Why `vm-test run` has no exit code of the command to give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input is wrong; nothing was booted ([`EXIT_BAD_INPUT`]).
    Input(String),
    /// The run itself failed ([`EXIT_XTASK_FAILED`]).
    Failed(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input(_) => EXIT_BAD_INPUT,
            Error::Failed(_) => EXIT_XTASK_FAILED,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Error::Input(m) | Error::Failed(m) => m,
        }
    }
}

/// A command checked for a guest: the host file, its name in the guest, and
/// the guest's argv.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub source: PathBuf,
    /// Relative to the initramfs root: `run-cmd/<file name>`.
    pub name: String,
    pub argv: Vec<OsString>,
}

/// Checks CMD: an existing static x86-64 executable. The guest has no
/// dynamic loader and no libraries, so a dynamic one is refused here, in one
/// line naming it, rather than failing inside with ENOENT.
pub fn check_command(command: &[OsString]) -> Result<Command, String> {
    let (program, args) = command
        .split_first()
        .ok_or("no command given: put it after `--`")?;
    let source = PathBuf::from(program);
    let shown = source.display();
    if !source.exists() {
        return Err(format!(
            "the command {shown} does not exist (CMD is a path on this host)"
        ));
    }
    if !source.is_file() {
        return Err(format!("the command {shown} is not a file"));
    }
    let bytes = std::fs::read(&source).map_err(|e| format!("read {shown}: {e}"))?;
    let file = object::File::parse(bytes.as_slice()).map_err(|_| {
        format!("the command {shown} is not an ELF executable: it must be a static one")
    })?;
    if object::Object::architecture(&file) != object::Architecture::X86_64 {
        return Err(format!(
            "the command {shown} is built for {:?}; the guest is x86_64",
            object::Object::architecture(&file)
        ));
    }
    match probes::lab::is_static_elf(&source) {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "the command {shown} is linked dynamically; the guest has no dynamic loader or libraries: give a static executable"
            ))
        }
        Err(e) => return Err(format!("the command {e}")),
    }
    let file_name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty() && n != "argv")
        .unwrap_or_else(|| "command".into());
    let name = format!("{}/{file_name}", run_wire::DIR);
    let mut argv = vec![OsString::from(format!("/{name}"))];
    argv.extend(args.iter().cloned());
    encode_argv(&argv)?;
    Ok(Command { source, name, argv })
}

/// A path in the guest binaries' directory that does not exist yet.
fn is_unbuilt_guest_binary(path: &Path) -> bool {
    let dir = guest::path(guest::PROBE_RUNNER);
    !path.exists()
        && std::path::absolute(path)
            .ok()
            .is_some_and(|p| p.parent() == dir.parent())
}

/// What a caller packs into the guest beside the command.
#[derive(Default)]
pub struct Payload {
    pub extras: Vec<initramfs::Extra>,
    /// Dynamic host programs, each copied to its own path with the
    /// libraries `ldd` names (the guest has the same loader path).
    pub host_programs: Vec<String>,
}

/// Runs the command in a guest; its exit code, or why there is none.
pub fn run(args: Args) -> Result<u8, Error> {
    run_with(args, Payload::default(), None)
}

/// [`run`] with `payload` in the initramfs; the command's stdout is kept in
/// `stdout` when one is given, and streamed to ours otherwise.
pub fn run_with(args: Args, payload: Payload, stdout: Option<&mut Vec<u8>>) -> Result<u8, Error> {
    let spec_text = args.kernel.as_deref().unwrap_or(DEFAULT_KERNEL);
    let spec = KernelSpec::parse(spec_text).map_err(Error::Input)?;
    if spec == KernelSpec::Host {
        return Err(Error::Input(
            "--kernel host boots no guest: name a Debian series or a bzImage".into(),
        ));
    }
    let failed = Error::Failed;
    // A guest binary (`mydocker-probe`) may be named before it was ever
    // built: build them first then, as the run does anyway.
    let built_first = args
        .command
        .first()
        .is_some_and(|cmd| is_unbuilt_guest_binary(Path::new(cmd)));
    if built_first {
        guest::build_all().map_err(failed)?;
    }
    let command = check_command(&args.command).map_err(Error::Input)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| failed(format!("create {}: {e}", args.out.display())))?;
    crate::prereq::ensure_package("qemu-system-x86", qemu::QEMU).map_err(failed)?;
    crate::prereq::ensure_package("dpkg", "/usr/bin/dpkg-deb").map_err(failed)?;
    crate::prereq::ensure_package("nftables", super::NFT).map_err(failed)?;
    if !built_first {
        guest::build_all().map_err(failed)?;
    }
    let kernel = kernel::prepare(&spec).map_err(failed)?;
    let label = &kernel.label;
    let mode = args.mode;
    let initramfs = args.out.join(format!("run-{label}.cpio"));
    build_initramfs(&kernel, &command, payload, &initramfs).map_err(failed)?;
    let (accelerator, why) =
        qemu::choose_accelerator(&kernel.image, &initramfs, &args.out).map_err(failed)?;
    eprintln!(
        "xtask: booting {label} ({mode}, {why}) to run {}",
        command.source.display()
    );
    let boot = qemu::Boot {
        kernel: &kernel.image,
        initramfs: &initramfs,
        append: format!(
            "console=ttyS0 quiet panic=-1 no_timer_check rdinit=/init {}={mode} {}={accelerator} {}=1 {}",
            cell::CMDLINE_CGROUP,
            cell::CMDLINE_ACCEL,
            cell::CMDLINE_RUN,
            mode.kernel_args()
        ),
        accelerator,
        console: args.out.join(format!("run-{label}-{mode}.console.log")),
        report: args.out.join(format!("run-{label}-{mode}.stream.log")),
        disk: None,
    };
    // QEMU creates the file; a stale one from an earlier run must not be read.
    let _ = std::fs::remove_file(&boot.report);
    let mut follow = Follow::new(&boot.report, stdout);
    let outcome = boot.run_watching(args.timeout, |_| {
        follow.poll();
        Ok(())
    });
    follow.poll();
    finish(follow.status, outcome, &boot, accelerator, args.timeout)
}

/// The exit code from the status frame, or the reason there is none.
fn finish(
    status: Option<Frame>,
    outcome: Result<Duration, String>,
    boot: &qemu::Boot,
    accelerator: Accelerator,
    timeout: Duration,
) -> Result<u8, Error> {
    let console = boot.console.display();
    match status {
        Some(status) => {
            if let Err(e) = &outcome {
                // The status came; what went wrong after it is only noted.
                let first = e.lines().next().unwrap_or_default();
                eprintln!("xtask: after the command ended: {first} (console: {console})");
            }
            exit_code(&status).map_err(Error::Failed)
        }
        None => {
            let crash = std::fs::read_to_string(&boot.console)
                .ok()
                .and_then(|text| cell::kernel_crash(&text));
            let why = match (&crash, &outcome) {
                (Some(crash), _) => format!("the guest kernel crashed: {crash}"),
                (None, Err(e)) if e.starts_with(qemu::HUNG) => format!(
                    "the guest did not power off within {timeout:?} (raise --timeout; under {accelerator} a guest is slow)"
                ),
                (None, Err(e)) => e.lines().next().unwrap_or_default().to_owned(),
                (None, Ok(_)) => "the guest powered off without sending the command's exit status".into(),
            };
            let detail = match outcome {
                Err(e) => e,
                Ok(_) => boot.failure("no exit status"),
            };
            Err(Error::Failed(format!(
                "{why} (console: {console})\n{detail}"
            )))
        }
    }
}

/// The exit code a status frame stands for: the command's own, 128 + the
/// signal that killed it (as a shell says), or [`EXIT_CANNOT_START`].
pub fn exit_code(status: &Frame) -> Result<u8, String> {
    match status {
        Frame::Exited(code) => Ok(u8::try_from(*code & 0xff).expect("masked to a byte")),
        Frame::Signaled(signal) => {
            eprintln!("xtask: the command was killed by signal {signal}");
            Ok(128u8.saturating_add(u8::try_from(*signal).unwrap_or(127)))
        }
        Frame::Failed(why) => {
            eprintln!("xtask: the guest could not start the command: {why}");
            Ok(EXIT_CANNOT_START)
        }
        Frame::Stdout(_) | Frame::Stderr(_) => Err("not a status frame".into()),
    }
}

/// Packs what a matrix cell's initramfs holds, and the command with its argv.
fn build_initramfs(
    kernel: &kernel::Kernel,
    command: &Command,
    payload: Payload,
    out: &Path,
) -> Result<(), String> {
    let plan = match &kernel.modules {
        Some(dir) => modules::plan(dir)?,
        None => modules::Plan::default(),
    };
    let binaries = [
        guest::path(guest::PROBE_RUNNER),
        guest::path(guest::PROBE_HELPER),
    ];
    let mut extras = vec![
        initramfs::Extra::File {
            name: command.name.clone(),
            source: command.source.clone(),
        },
        initramfs::Extra::Bytes {
            name: run_wire::ARGV_FILE.into(),
            data: encode_argv(&command.argv)?,
            mode: 0o644,
        },
    ];
    extras.extend(payload.extras);
    let mut host_files = super::with_libraries(super::NFT)?;
    for program in &payload.host_programs {
        host_files.extend(super::with_libraries(program)?);
    }
    host_files.sort();
    host_files.dedup();
    initramfs::write_with(
        out,
        &guest::path(guest::VM_INIT),
        &binaries,
        &plan.load_order,
        &host_files,
        extras,
    )
}

/// Follows the stream file as QEMU writes it: output goes to our stdout
/// (or into `capture`) and stderr at once, and the status is kept.
struct Follow<'a> {
    path: PathBuf,
    capture: Option<&'a mut Vec<u8>>,
    offset: u64,
    decoder: Decoder,
    status: Option<Frame>,
    warned: bool,
}

impl<'a> Follow<'a> {
    fn new(path: &Path, capture: Option<&'a mut Vec<u8>>) -> Follow<'a> {
        Follow {
            path: path.to_owned(),
            capture,
            offset: 0,
            decoder: Decoder::default(),
            status: None,
            warned: false,
        }
    }

    fn poll(&mut self) {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return;
        };
        let mut new = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut new).is_err() {
            return;
        }
        self.offset += new.len() as u64;
        for frame in self.decoder.feed(&new) {
            match frame {
                Ok(Frame::Stdout(bytes)) => match self.capture.as_deref_mut() {
                    Some(kept) => kept.extend_from_slice(&bytes),
                    None => write_now(&mut std::io::stdout().lock(), &bytes),
                },
                Ok(Frame::Stderr(bytes)) => write_now(&mut std::io::stderr().lock(), &bytes),
                Ok(status) => self.status = Some(status),
                Err(e) if !self.warned => {
                    self.warned = true;
                    eprintln!(
                        "xtask: a garbled line from the guest ({e}); output may be missing: {}",
                        self.path.display()
                    );
                }
                Err(_) => {}
            }
        }
    }
}

fn write_now(to: &mut impl Write, bytes: &[u8]) {
    let _ = to.write_all(bytes).and_then(|()| to.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_command_is_refused_in_one_line_naming_it() {
        // This test binary is dynamic (the static ones are built apart).
        let me = std::env::current_exe().unwrap();
        let error = check_command(&[me.clone().into()]).unwrap_err();
        assert!(!error.contains('\n'), "{error}");
        assert!(error.contains(&me.display().to_string()), "{error}");
        assert!(error.contains("dynamically"), "{error}");
    }

    #[test]
    fn a_missing_or_non_elf_command_is_refused_naming_it() {
        let error = check_command(&["/no/such/prog".into()]).unwrap_err();
        assert!(error.contains("/no/such/prog") && error.contains("does not exist"));
        let script = std::env::temp_dir().join(format!("xtask-run-{}.sh", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
        let error = check_command(&[script.clone().into()]).unwrap_err();
        std::fs::remove_file(&script).unwrap();
        assert!(error.contains("not an ELF"), "{error}");
        assert!(check_command(&[]).unwrap_err().contains("--"));
    }

    #[test]
    fn a_static_command_gets_its_guest_path_as_argv0() {
        let busybox = Path::new(crate::rootfs::BUSYBOX);
        if !busybox.exists() {
            eprintln!("skipped: {} is not installed", busybox.display());
            return;
        }
        let command =
            check_command(&[busybox.into(), "sh".into(), "-c".into(), "exit 3".into()]).unwrap();
        assert_eq!(command.name, "run-cmd/busybox");
        assert_eq!(command.argv, ["/run-cmd/busybox", "sh", "-c", "exit 3"]);
        let bytes = encode_argv(&command.argv).unwrap();
        assert_eq!(decode_argv(&bytes).unwrap(), command.argv);
    }

    #[test]
    fn only_a_missing_file_among_the_guest_binaries_is_built_first() {
        assert!(is_unbuilt_guest_binary(&guest::path("mydocker-not-built")));
        assert!(!is_unbuilt_guest_binary(Path::new("/no/such/prog")));
        assert!(!is_unbuilt_guest_binary(&std::env::current_exe().unwrap()));
    }

    #[test]
    fn status_frames_become_exit_codes() {
        assert_eq!(exit_code(&Frame::Exited(0)), Ok(0));
        assert_eq!(exit_code(&Frame::Exited(3)), Ok(3));
        assert_eq!(exit_code(&Frame::Signaled(9)), Ok(137));
        assert_eq!(exit_code(&Frame::Failed("ENOEXEC".into())), Ok(126));
        assert!(exit_code(&Frame::Stdout(vec![])).is_err());
        let mut decoder = Decoder::default();
        let frames = decoder.feed(b"noise\nmydocker-run out 6869\r\nmydocker-run exit 3\r\n");
        assert_eq!(
            frames,
            vec![Ok(Frame::Stdout(b"hi".to_vec())), Ok(Frame::Exited(3))]
        );
    }

    #[test]
    fn input_errors_and_run_failures_have_their_own_codes() {
        assert_eq!(Error::Input("x".into()).exit_code(), 2);
        assert_eq!(Error::Failed("x".into()).exit_code(), 125);
    }
}
