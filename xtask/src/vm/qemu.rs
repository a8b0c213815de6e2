//! Booting a guest under QEMU: the command line, the accelerator trial, and
//! a run with a timeout that keeps the console for the failure message.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use probes::Accelerator;
use vm_tests::cell::BOOT_MARKER;

/// How the failure of a guest that never powered off begins.
pub const HUNG: &str = "the guest did not power off within";

pub const QEMU: &str = "/usr/bin/qemu-system-x86_64";

/// What QEMU prints when KVM cannot go on with a guest (it then pauses it).
const KVM_INTERNAL_ERROR: &str = "KVM internal error";

/// One boot: kernel, initramfs, command line and where the serial ports go.
pub struct Boot<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    pub append: String,
    pub accelerator: Accelerator,
    /// Files for the console (ttyS0) and the report port (ttyS1).
    pub console: PathBuf,
    pub report: PathBuf,
    /// A raw disk image the guest sees as `/dev/vda` (the selftests'). It
    /// is opened as a snapshot: the guest's writes go to a temporary file
    /// QEMU deletes, so cells can share one image and it stays clean.
    pub disk: Option<&'a Path>,
}

impl Boot<'_> {
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(QEMU);
        if self.accelerator == Accelerator::Tcg {
            // One host thread for all vCPUs. With a thread per vCPU (MTTCG),
            // a vCPU can run a stale translation of code another vCPU is
            // patching: guests died with "Oops: int3" in the scheduler when
            // the cpu_quota probe made the kernel flip its CFS-bandwidth
            // static key (1 cell in 6 on this machine kind).
            cmd.args(["-accel", "tcg,thread=single"]);
        } else {
            cmd.args(["-accel", self.accelerator.as_str()]);
        }
        // Under KVM, `-cpu max` aborts on this host's MSRs; `host` is the norm there.
        cmd.args([
            "-cpu",
            if self.accelerator == Accelerator::Kvm {
                "host"
            } else {
                "max"
            },
        ]);
        cmd.args([
            "-m",
            "1024",
            "-smp",
            "2",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
        ]);
        // A NIC that stays down and can reach nothing: it gives the host side
        // of the guest a device besides `lo`, for net.isolated's control.
        cmd.args([
            "-netdev",
            "user,id=n0,restrict=on",
            "-device",
            "virtio-net-pci,netdev=n0",
        ]);
        cmd.arg("-kernel")
            .arg(self.kernel)
            .arg("-initrd")
            .arg(self.initramfs);
        cmd.arg("-append").arg(&self.append);
        if let Some(disk) = self.disk {
            cmd.arg("-drive").arg(format!(
                "file={},format=raw,if=virtio,snapshot=on",
                // QEMU's option syntax: a comma in a value is written twice.
                disk.display().to_string().replace(',', ",,")
            ));
        }
        cmd.arg("-serial")
            .arg(format!("file:{}", self.console.display()));
        cmd.arg("-serial")
            .arg(format!("file:{}", self.report.display()));
        cmd
    }

    /// The command line as a person would type it, for failure messages.
    pub fn command_line(&self) -> String {
        let cmd = self.command();
        let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
        for arg in cmd.get_args() {
            let arg = arg.to_string_lossy();
            words.push(if arg.contains(' ') {
                format!("'{arg}'")
            } else {
                arg.into_owned()
            });
        }
        words.join(" ")
    }

    /// Runs QEMU to power-off or until `timeout`; returns the elapsed time.
    pub fn run(&self, timeout: Duration) -> Result<Duration, String> {
        self.run_watching(timeout, |_| Ok(()))
    }

    /// [`Boot::run`], calling `watch` about every 50 ms while QEMU runs and
    /// once after it ended, with what QEMU wrote to stderr so far: to follow
    /// a serial file as it grows, or to give up early. An error from `watch`
    /// stops QEMU and is the run's failure.
    pub fn run_watching(
        &self,
        timeout: Duration,
        mut watch: impl FnMut(&str) -> Result<(), String>,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        let mut command = self.command();
        // SAFETY: prctl is async-signal-safe, as pre_exec requires. QEMU dies
        // with us, so an interrupted run leaves no VM behind.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {QEMU}: {e}"))?;
        // Read stderr as it comes, so that `watch` sees it live and a full
        // pipe never stalls QEMU.
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let reader = {
            let stderr = stderr.clone();
            let mut pipe = child.stderr.take().expect("piped");
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                while let Ok(n @ 1..) = std::io::Read::read(&mut pipe, &mut buffer) {
                    stderr
                        .lock()
                        .expect("stderr")
                        .extend_from_slice(&buffer[..n]);
                }
            })
        };
        let text = || String::from_utf8_lossy(&stderr.lock().expect("stderr")).into_owned();
        let stop = |child: &mut std::process::Child| {
            let _ = child.kill();
            let _ = child.wait();
        };
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    let _ = reader.join();
                    let stderr = text();
                    watch(&stderr).map_err(|e| self.failure(&e))?;
                    return if status.success() {
                        Ok(start.elapsed())
                    } else {
                        Err(self.failure(&format!("QEMU exited with {status}: {}", stderr.trim())))
                    };
                }
                Ok(None) if start.elapsed() > timeout => {
                    stop(&mut child);
                    let _ = watch(&text());
                    return Err(self.failure(&format!("{HUNG} {timeout:?}")));
                }
                Ok(None) => {
                    if let Err(e) = watch(&text()) {
                        stop(&mut child);
                        return Err(self.failure(&e));
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(format!("lost QEMU: {e}")),
            }
        }
    }

    /// A failure message with the console's tail and the exact command line.
    /// A guest that hung starts its message with [`HUNG`].
    pub fn failure(&self, what: &str) -> String {
        let console = std::fs::read_to_string(&self.console).unwrap_or_default();
        let tail: Vec<&str> = console
            .lines()
            .rev()
            .take(25)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(
            "{what}\nconsole (last lines):\n  {}\ncommand: {}",
            tail.join("\n  "),
            self.command_line()
        )
    }
}

/// Picks the accelerator: KVM only when a short trial boot reaches our PID 1,
/// because `/dev/kvm` can exist where stock kernels cannot run (a nested,
/// paravirtual KVM, where the guest dies at its first AVX instruction).
/// `MYDOCKER_ACCEL=tcg|kvm` skips the trial.
pub fn choose_accelerator(
    kernel: &Path,
    initramfs: &Path,
    scratch: &Path,
) -> Result<(Accelerator, String), String> {
    if let Ok(forced) = std::env::var(probes::accelerator::ENV) {
        let accelerator: Accelerator = forced
            .parse()
            .map_err(|e| format!("{}: {e}", probes::accelerator::ENV))?;
        if accelerator == Accelerator::Host {
            return Err(format!(
                "{}=host names no guest accelerator: expected kvm or tcg",
                probes::accelerator::ENV
            ));
        }
        return Ok((
            accelerator,
            format!("{forced} (forced by {})", probes::accelerator::ENV),
        ));
    }
    if !Path::new("/dev/kvm").exists() {
        return Ok((Accelerator::Tcg, "tcg (no /dev/kvm)".into()));
    }
    let trial = Boot {
        kernel,
        initramfs,
        append: format!(
            "console=ttyS0 panic=-1 rdinit=/init {}=1",
            vm_tests::cell::CMDLINE_CHECK
        ),
        accelerator: Accelerator::Kvm,
        console: scratch.join("kvm-trial-console.log"),
        report: scratch.join("kvm-trial-report.log"),
        disk: None,
    };
    // A guest that KVM cannot run stops with "KVM internal error" and QEMU
    // then waits, paused, until the trial's timeout: give up at once.
    let booted = trial
        .run_watching(Duration::from_secs(20), |stderr| {
            match stderr.contains(KVM_INTERNAL_ERROR) {
                true => Err(format!("QEMU said: {KVM_INTERNAL_ERROR}")),
                false => Ok(()),
            }
        })
        .is_ok()
        && std::fs::read_to_string(&trial.console).is_ok_and(|c| c.contains(BOOT_MARKER));
    Ok(if booted {
        (Accelerator::Kvm, "kvm (trial boot reached PID 1)".into())
    } else {
        (
            Accelerator::Tcg,
            "tcg (/dev/kvm is present, but a trial boot under KVM did not reach PID 1)".into(),
        )
    })
}
