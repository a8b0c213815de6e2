//! The lab: where a probe runs its containers. It owns a rootfs holding only
//! the static helper, a private state root and cgroup parent, and the
//! mutation (deliberate defect) being tested, if any.

use std::fmt::Display;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::unistd::{pipe2, Pid};
use runtime::{Container, Error as RuntimeError, Outcome, Spec};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::inside::Line;
use crate::mutation::Mutation;
use crate::probe::Probe;

/// Where the helper sits inside the probe rootfs.
pub const HELPER: &str = "/helper";

/// Prefix of every probe run's cgroup parent, below each hierarchy's root.
pub const CGROUP_PARENT_PREFIX: &str = "mydocker-probe";

/// How a run hands its cgroup parent to the probe processes it starts.
pub const CGROUP_PARENT_ENV: &str = "MYDOCKER_PROBE_CGROUP_PARENT";

/// This run's cgroup parent, `mydocker-probe-<runner's pid>`: two suites
/// running at once then never sweep, or count as leftovers, each other's
/// containers.
pub fn cgroup_parent() -> String {
    std::env::var(CGROUP_PARENT_ENV)
        .unwrap_or_else(|_| format!("{CGROUP_PARENT_PREFIX}-{}", std::process::id()))
}

/// How long a helper may take to say what a probe waits for. A helper that
/// stays silent longer makes the probe inconclusive, not FAIL: on a loaded
/// or emulated machine a container's start alone can take seconds, and a
/// wait that runs out says nothing about the kernel.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a probe could not complete.
#[derive(Debug)]
pub enum LabError {
    /// The kernel lacks something the probe needs.
    Unsupported(String),
    /// The runtime, the helper or the lab failed; the probe fails with this.
    Broken(String),
    /// The machine kept the probe from observing (a wait ran out): the
    /// probe is inconclusive and is tried again.
    Inconclusive(String),
}

impl LabError {
    /// Something of ours broke: the probe FAILs with this reason.
    pub fn broken(why: impl Display) -> LabError {
        LabError::Broken(why.to_string())
    }
}

/// Turns a missing value or an error into [`LabError::Broken`], naming what
/// was being done: `read(&file).or_broken("read cpu.max")?`.
pub trait OrBroken<T> {
    fn or_broken(self, what: impl Display) -> Result<T, LabError>;
}

impl<T> OrBroken<T> for Option<T> {
    fn or_broken(self, what: impl Display) -> Result<T, LabError> {
        self.ok_or_else(|| LabError::broken(what))
    }
}

impl<T, E: Display> OrBroken<T> for Result<T, E> {
    fn or_broken(self, what: impl Display) -> Result<T, LabError> {
        self.map_err(|e| LabError::Broken(format!("{what}: {e}")))
    }
}

impl From<std::io::Error> for LabError {
    fn from(e: std::io::Error) -> Self {
        LabError::Broken(format!("lab I/O: {e}"))
    }
}

impl From<nix::Error> for LabError {
    fn from(e: nix::Error) -> Self {
        LabError::Broken(format!("lab syscall: {e}"))
    }
}

/// Which run of a probe a container belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The run that must show the isolation; a mutation, if any, applies here.
    Isolated,
    /// The run without the isolation, which must show the opposite.
    Control,
}

pub struct Lab {
    probe: &'static Probe,
    rootfs: tempfile::TempDir,
    state_root: tempfile::TempDir,
    mutation: Option<Mutation>,
}

impl Lab {
    /// A lab for `probe` whose rootfs holds `helper` and the mount points
    /// init needs.
    pub fn new(
        probe: &'static Probe,
        helper: &Path,
        mutation: Option<Mutation>,
    ) -> Result<Lab, LabError> {
        let rootfs = tempfile::Builder::new()
            .prefix("mydocker-probe-rootfs-")
            .tempdir()?;
        for dir in ["proc", "sys", "dev", "tmp"] {
            std::fs::create_dir(rootfs.path().join(dir))?;
        }
        std::fs::copy(helper, rootfs.path().join(HELPER.trim_start_matches('/')))?;
        let state_root = tempfile::Builder::new()
            .prefix("mydocker-probe-state-")
            .tempdir()?;
        // A container in a user namespace reaches its layers as an ordinary
        // user; private (0700) directories would shut it out.
        for dir in [rootfs.path(), state_root.path()] {
            std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        }
        Ok(Lab {
            probe,
            rootfs,
            state_root,
            mutation,
        })
    }

    /// The runtime's store for this lab (networks live under it too).
    pub fn store(&self) -> runtime::store::Store {
        runtime::store::Store::new(self.state_root.path())
    }

    /// The rootfs on the host side.
    pub fn rootfs(&self) -> &Path {
        self.rootfs.path()
    }

    /// A spec, with full isolation, that runs this probe's inside half
    /// with `request` (which that half reads with `Helper::ask`).
    pub fn spec(&self, request: &impl Serialize) -> Spec {
        let request = serde_json::to_string(request).expect("a request serializes");
        let argv = vec![HELPER.to_owned(), self.probe.id.to_owned(), request];
        let mut spec = Spec::new(self.rootfs.path(), argv);
        spec.cgroup_parent = cgroup_parent();
        spec
    }

    /// [`Lab::spec`] plus CAP_SYS_ADMIN (as `--cap-add SYS_ADMIN` gives, which
    /// also lifts the seccomp filter's ban on `mount`): for probes about
    /// where a mount or a new hostname lands, which need the container to be
    /// able to make one at all.
    pub fn admin_spec(&self, request: &impl Serialize) -> Spec {
        let mut spec = self.spec(request);
        spec.security.capabilities |= runtime::security::caps::SYS_ADMIN;
        spec
    }

    /// Starts a container with its stdin and stdout connected to the probe.
    pub fn start(&self, mut spec: Spec, role: Role) -> Result<Session, LabError> {
        if role == Role::Isolated {
            if let Some(mutation) = self.mutation {
                mutation.apply(&mut spec);
            }
        }
        let (stdin_read, stdin_write) = pipe2(OFlag::O_CLOEXEC)?;
        let (stdout_read, stdout_write) = pipe2(OFlag::O_CLOEXEC)?;
        let stderr_write = stdout_write.try_clone()?;
        let stdio = runtime::Stdio {
            stdin: Some(stdin_read),
            stdout: Some(stdout_write),
            stderr: Some(stderr_write),
            log: false,
            preserve_fds: 0,
        };
        let runtime_error = |e: RuntimeError| match e {
            RuntimeError::Cgroup(runtime::cgroup::Error::MissingController {
                controller, ..
            }) => confirm_missing(controller, &e.to_string()),
            // Init's own account of what the kernel refused it.
            RuntimeError::KernelLacks(why) => LabError::Unsupported(why),
            e => LabError::Broken(format!("runtime: {e}")),
        };
        let mut container =
            runtime::launch_with(&spec, self.state_root.path(), stdio).map_err(runtime_error)?;
        // Until init has exec'd the helper: a setup failure is the runtime's
        // word, which says more than the helper's silence would.
        container.started().map_err(runtime_error)?;
        Ok(Session {
            container: Some(container),
            stdin: Some(File::from(stdin_write)),
            output: BufReader::new(File::from(stdout_read)),
            chatter: Vec::new(),
        })
    }

    /// Runs a helper for its one report: its stdin is closed at once, so it
    /// ends as soon as it has reported. Returns that report.
    pub fn report<T: DeserializeOwned>(&self, spec: Spec, role: Role) -> Result<T, LabError> {
        let mut session = self.start(spec, role)?;
        session.close_stdin();
        let report = session.receive()?;
        session.finish()?;
        Ok(report)
    }

    /// The container state directories still present (leftovers, if any).
    pub fn state_entries(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.state_root.path().join("containers"))
            .map(|d| {
                d.filter_map(|e| Some(e.ok()?.path()))
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// True when the ELF file at `path` has no program interpreter (`PT_INTERP`),
/// that is, when it runs without a dynamic loader.
pub fn is_static_elf(path: &Path) -> Result<bool, String> {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let elf = ElfFile64::<object::Endianness>::parse(bytes.as_slice())
        .map_err(|e| format!("{} is not a 64-bit ELF file: {e}", path.display()))?;
    let endian = elf.endian();
    Ok(!elf
        .elf_program_headers()
        .iter()
        .any(|h| h.p_type(endian) == object::elf::PT_INTERP))
}

/// The runtime says a controller is missing: Unsupported only if the kernel
/// agrees. A runtime that misdetects its host must not turn a probe into a
/// quiet skip.
fn confirm_missing(controller: &str, runtime_said: &str) -> LabError {
    if !["memory", "cpu", "cpuset", "pids"].contains(&controller) {
        return LabError::Unsupported(runtime_said.to_owned());
    }
    match crate::kernel::controller_present(controller) {
        Ok(false) => LabError::Unsupported(format!(
            "{runtime_said}; the kernel confirms: it cannot mount or enable {controller} here"
        )),
        Ok(true) => LabError::Broken(format!(
            "the runtime said: {runtime_said}; but the kernel provides the {controller} controller"
        )),
        Err(e) => LabError::Broken(format!(
            "the runtime said: {runtime_said}; checking the kernel failed: {e}"
        )),
    }
}

/// A running helper container, wired to the probe.
pub struct Session {
    container: Option<Container>,
    stdin: Option<File>,
    output: BufReader<File>,
    /// Lines that were not reports (a panic message, the runtime's own
    /// words before the helper started), kept to explain a silence.
    chatter: Vec<String>,
}

impl Session {
    /// The container's root seen from the probe's side: the overlay's mount
    /// point, an empty directory unless the container shares our mount
    /// namespace. A mount made here is one the container would see if mount
    /// events crossed between the namespaces.
    pub fn root_on_host(&self) -> std::path::PathBuf {
        self.container
            .as_ref()
            .expect("running")
            .merged_dir()
            .to_owned()
    }

    /// The address the runtime reserved for the container, if any: only a
    /// place to try, never evidence (the probe reads the kernel for that).
    pub fn reserved_address(&self) -> Option<std::net::Ipv4Addr> {
        self.container
            .as_ref()?
            .record()
            .endpoint
            .as_ref()
            .map(|e| e.address)
    }

    /// Host pid of the container's init (the helper).
    pub fn pid(&self) -> Pid {
        self.container.as_ref().expect("running").pid
    }

    /// The helper's next report. A helper that reports an error, says
    /// something else, or ends without a report makes the probe Broken; one
    /// that stays silent too long, inconclusive.
    pub fn receive<T: DeserializeOwned>(&mut self) -> Result<T, LabError> {
        match self.receive_unless_ended()? {
            Some(report) => Ok(report),
            None => Err(self.why_silent(std::any::type_name::<T>())),
        }
    }

    /// [`Session::receive`] for a helper that may be killed before it reports
    /// (by the OOM killer, say): `None` when its output ended first.
    pub fn receive_unless_ended<T: DeserializeOwned>(&mut self) -> Result<Option<T>, LabError> {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(
                self.output.get_ref().as_fd(),
                PollFlags::POLLIN,
            )];
            let waited = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            if self.output.buffer().is_empty() && poll(&mut fds, PollTimeout::from(waited))? == 0 {
                return Err(LabError::Inconclusive(format!(
                    "the helper did not report within {READ_TIMEOUT:?}: the machine may be too slow to tell"
                )));
            }
            let mut text = String::new();
            if self.output.read_line(&mut text)? == 0 {
                return Ok(None);
            }
            match serde_json::from_str::<Line>(text.trim_end()) {
                Ok(Line::Said(value)) => {
                    let shown = value.to_string();
                    return serde_json::from_value(value).map(Some).map_err(|e| {
                        LabError::Broken(format!(
                            "the helper said {shown}, where the probe expected a {}: {e}",
                            std::any::type_name::<T>()
                        ))
                    });
                }
                Ok(Line::Error(error)) => {
                    return Err(LabError::Broken(format!(
                        "the helper could not observe: {error}"
                    )))
                }
                Err(_) => self.chatter.push(text.trim_end().to_owned()),
            }
        }
    }

    /// The helper's output ended before its `expected` report: say how it ended, by
    /// the kernel's account. `WNOWAIT` leaves it a zombie, so its cgroup and
    /// counters stay readable for the probe.
    fn why_silent(&self, expected: &str) -> LabError {
        use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
        let how = match waitid(
            Id::Pid(self.pid()),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
        ) {
            Ok(WaitStatus::Exited(_, code @ (126 | 127))) => {
                format!("it could not be executed (exit {code}); a helper must be a static binary")
            }
            Ok(WaitStatus::Exited(_, code)) => format!("it exited with code {code}"),
            Ok(WaitStatus::Signaled(_, signal, _)) => format!("it was killed by {signal}"),
            other => format!("its output ended ({other:?})"),
        };
        let said = if self.chatter.is_empty() {
            String::new()
        } else {
            format!("; it said: {}", self.chatter.join(" / "))
        };
        LabError::Broken(format!(
            "the helper never reported its {expected}: {how}{said}"
        ))
    }

    /// Sends one line to the helper's stdin.
    pub fn send_line(&mut self, line: &str) -> Result<(), LabError> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| LabError::Broken("stdin already closed".into()))?;
        writeln!(stdin, "{line}")?;
        Ok(())
    }

    /// Closes the helper's stdin, which releases a helper waiting for it.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the container to end and tears it down. Reports the
    /// probe did not ask for are left unread.
    pub fn finish(mut self) -> Result<Outcome, LabError> {
        self.close_stdin();
        let container = self.container.take().expect("finished once");
        container
            .wait()
            .map_err(|e| LabError::Broken(format!("runtime: {e}")))
    }
}

impl Drop for Lab {
    /// Unmounts what a container without a mount namespace left under the
    /// rootfs or the state root (in this process's throwaway namespace),
    /// deepest first, so that removing them never descends into a live mount.
    fn drop(&mut self) {
        let ours = [
            self.rootfs.path().to_owned(),
            self.state_root.path().to_owned(),
        ];
        let mut points: Vec<String> = crate::kernel::mounts("self")
            .unwrap_or_default()
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| {
                ours.iter()
                    .any(|dir| std::path::Path::new(p).starts_with(dir))
            })
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for point in points {
            let _ = nix::mount::umount2(point.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
