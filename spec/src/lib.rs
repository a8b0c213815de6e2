//! `Spec`: one plain value that says everything about a container.
//!
//! The CLI builds it from flags; probes and benches build it directly. Nothing
//! in here parses user text (see [`crate::parse`]); [`Spec::validate`] checks
//! it against the facts of the host before anything is created.
//!
//! This crate is the plain layer of the runtime (`../shared/DESIGN.md`):
//! values and their parsers, no behaviour and no I/O. Reading the host's
//! facts and looking at the rootfs are the runtime's (`runtime::host`).

use std::collections::BTreeSet;
use std::path::PathBuf;

pub mod device;
pub mod error;
pub mod mount;
pub mod network;
pub mod oci;
pub mod parse;
pub mod passwd;
pub mod restart;
pub mod rlimit;
pub mod security;
pub mod userns;

use crate::parse::{format_size, IdSet, NanoCpus};
pub use error::{Error, Result};

/// The PATH a container gets unless the caller sets one (docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The smallest memory limit accepted. Below this a process cannot even start
/// (docker refuses the same 6 MiB floor).
pub const MIN_MEMORY: u64 = 6 << 20;

/// Everything needed to run one container. It serializes: a container's
/// spec is kept beside its record, for `restart` to start it again; a
/// field that a later mydocker adds takes its default in older ones.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Spec {
    /// Directory holding the root filesystem.
    pub rootfs: PathBuf,
    /// The command and its arguments, passed to `execve` as they are.
    pub args: Vec<String>,
    /// Variables the caller set; [`Spec::environment`] adds the defaults.
    pub env: Vec<(String, String)>,
    /// Hostname inside the UTS namespace; defaults to the short container id.
    pub hostname: Option<String>,
    /// Working directory inside the container (absolute); defaults to `/`.
    pub workdir: Option<String>,
    /// Metadata the caller attaches (`--label`), kept in the record.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Who the command runs as (`--user NAME|UID[:GROUP|GID]`), resolved
    /// against the image's `/etc/passwd`; root when absent.
    pub user: Option<String>,
    /// More supplementary groups (`--group-add`), names or gids.
    pub group_add: Vec<String>,
    /// What `stop` sends first (`--stop-signal`), as `SIGTERM`; SIGTERM when absent.
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (`--stop-timeout`); 10 when absent.
    pub stop_timeout: Option<u64>,
    /// Whether the detached monitor starts the container again when it
    /// exits (`--restart`).
    pub restart: restart::RestartPolicy,
    pub namespaces: Namespaces,
    pub limits: Limits,
    /// Keep the caller's stdin attached (`-i`).
    pub interactive: bool,
    /// Give the container a pseudo-terminal (`-t`).
    pub tty: bool,
    /// Cgroup under which the container's cgroup is created, relative to each
    /// hierarchy's root. Every cgroup the runtime makes lives below it.
    pub cgroup_parent: String,
    /// Deliberate defects for the probes' mutation tests; none by default.
    pub faults: Faults,
    /// The container's unique name; defaults to the first 12 digits of its id.
    pub name: Option<String>,
    /// What the rootfs came from, for records and `ps`: an image name or a path.
    pub image: String,
    /// Bind mounts from the host.
    pub volumes: Vec<Volume>,
    /// Init stays as PID 1, reaping orphans and passing signals on to the
    /// command, its child (`--init`).
    pub init_process: bool,
    /// More mounts (`--tmpfs`, `--mount type=tmpfs`), made after the
    /// kernel filesystems.
    pub mounts: Vec<mount::Mount>,
    /// Host devices to create in the container (`--device`).
    pub devices: Vec<device::Device>,
    /// The network to join (`--network NAME`), with an address and ports.
    pub network: Option<network::Request>,
    /// Remove the container (record, upper layer, cgroup) when it exits.
    /// The library defaults to true; `mydocker run` only with `--rm`.
    pub auto_remove: bool,
    /// The host's user namespace, or a new one with root mapped elsewhere.
    pub userns: userns::UserNs,
    /// Capabilities, masked paths, no_new_privs, seccomp, read-only rootfs.
    pub security: security::Security,
    /// Per-process resource limits (`--ulimit`), set by init before exec.
    pub rlimits: Vec<rlimit::Rlimit>,
    /// The root is an overlay over `rootfs` (docker's way: the image never
    /// changes), or, when false, `rootfs` itself, bound read-write (OCI's
    /// way: the bundle's root is the container's).
    pub overlay: bool,
    /// OCI's create/start split: init waits, set up and confined up to the
    /// exec, until `start`; the launching process may exit meanwhile.
    pub wait_for_start: bool,
    /// The OCI bundle this spec came from, and its annotations.
    pub bundle: Option<Bundle>,
    /// Have init report when its setup is done, so that the outcome's
    /// [`crate::Timeline`] tells rootfs setup and exec apart (benchmarks).
    pub split_init_phases: bool,
    /// Everything an OCI `config.json` says beyond what the docker-style
    /// flags can: `None` for `mydocker run`.
    pub oci: Option<Box<OciParts>>,
}

/// What an OCI configuration adds to a spec. Each part replaces the
/// runtime's own choice (its `/proc`, `/sys` and `/dev`, docker's masked
/// paths, docker's seccomp filter) rather than adding to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OciParts {
    /// The mounts, in order, instead of mydocker's kernel filesystems.
    pub mounts: Vec<mount::Mount>,
    /// Device nodes to create in the container beside the default ones.
    pub devices: Vec<device::Device>,
    /// Propagation of the root mount (`linux.rootfsPropagation`).
    pub root_propagation: Option<u64>,
    /// The process's identity; root (0:0) when absent.
    pub user: User,
    /// `/proc/sys` settings, as (`net.ipv4.ip_forward`, `1`).
    pub sysctl: Vec<(String, String)>,
    /// Written to `/proc/self/oom_score_adj` before exec.
    pub oom_score_adj: Option<i32>,
    /// Paths to cover (a file with /dev/null, a directory with a tmpfs).
    pub masked_paths: Vec<String>,
    /// Paths to bind onto themselves read-only.
    pub readonly_paths: Vec<String>,
    /// The five capability sets, each its own mask.
    pub capabilities: security::CapabilitySets,
    /// The seccomp profile, compiled by init; none when absent.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
    /// The container's own cgroup, relative to each hierarchy's root
    /// (`cgroupsPath`); mydocker's `<parent>/<id>` when absent.
    pub cgroups_path: Option<String>,
    /// Existing namespaces to join, by kind (`net`, `ipc`, `uts`, `mnt`,
    /// `pid`, `cgroup`: the names under `/proc/PID/ns`) and path.
    pub join_namespaces: Vec<(String, String)>,
    /// A new user namespace with these maps (`linux.uidMappings` and
    /// `gidMappings`), or none (empty).
    pub uid_mappings: Vec<userns::Mapping>,
    pub gid_mappings: Vec<userns::Mapping>,
}

/// Who the container's process runs as.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups; none when empty.
    pub additional_gids: Vec<u32>,
    /// The umask for the process; 0022 when absent.
    pub umask: Option<u32>,
}

/// Where an OCI container's configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bundle {
    /// The bundle directory, absolute.
    pub dir: PathBuf,
    /// `annotations` of its config.json, reported back by `state`.
    pub annotations: std::collections::BTreeMap<String, String>,
    /// It has no mount namespace of its own, new or joined: its mounts are
    /// in its creator's table, and init entered its root with chroot.
    #[serde(default)]
    pub in_callers_mount_table: bool,
}

/// A bind mount from the host (`-v HOST:CTR[:ro|:rw]`), or of a named
/// volume (`-v NAME:CTR`, `--mount type=volume`), a directory the runtime
/// keeps under its state root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Volume {
    /// Absolute host path, created if missing; for a named volume, filled
    /// in by the runtime with the volume's directory.
    pub host: PathBuf,
    /// Absolute path inside the container, created if missing.
    pub container: String,
    pub read_only: bool,
    /// The named volume mounted, if this is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An anonymous volume (`-v /data`): one of its own, named by the
    /// caller with a random id, removed with the container by `rm -v` and
    /// `--rm`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
    /// A new volume starts empty rather than with the image's files at
    /// its path (`volume-nocopy`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_copy: bool,
}

impl Volume {
    /// A bind of the host path `host` at `container`.
    pub fn bind(host: impl Into<PathBuf>, container: impl Into<String>, read_only: bool) -> Volume {
        Volume {
            host: host.into(),
            container: container.into(),
            read_only,
            name: None,
            anonymous: false,
            no_copy: false,
        }
    }

    /// The named volume `name` at `container`.
    pub fn named(name: &str, container: impl Into<String>, read_only: bool) -> Volume {
        Volume {
            name: Some(name.to_owned()),
            ..Volume::bind(PathBuf::new(), container, read_only)
        }
    }
}

/// Checks a volume's name as docker does: a letter or digit, then at least
/// one more of letters, digits, `_`, `.` and `-`.
pub fn check_volume_name(flag: &'static str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name.len() >= 2
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(Error::invalid(flag, name, VOLUME_NAME))
    }
}

/// What a volume's name must be.
const VOLUME_NAME: &str =
    "a volume name is 2 to 128 of letters, digits, '_', '.' and '-', starting with a letter or digit";

/// One deliberate defect, so that the probe suite can prove each probe fails
/// when the isolation it checks is missing. Nothing outside tests sets one.
///
/// Each variant is checked in exactly one place of the runtime, the one that
/// would otherwise take the step it skips. The strum names are the probe
/// suite's mutation names, which its command line and reports show.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum Fault {
    /// `chroot` into the rootfs instead of `pivot_root`: the old root stays
    /// mounted underneath and can be reached again by a chroot escape. This
    /// also allows running without a mount namespace, which changes the
    /// caller's mount table: only do that inside a throwaway namespace.
    #[strum(serialize = "chroot-not-pivot")]
    #[serde(rename = "chroot-not-pivot")]
    ChrootInsteadOfPivotRoot,
    /// Leave mount propagation as the caller had it instead of making every
    /// mount private, so a mount inside propagates out. Implies
    /// [`Fault::ChrootInsteadOfPivotRoot`], since pivot_root refuses shared
    /// mounts: `Faults::enters_with_chroot`, which init asks to choose
    /// between the two, is the one place that knows.
    #[strum(serialize = "shared-propagation")]
    #[serde(rename = "shared-propagation")]
    KeepSharedPropagation,
    /// pivot_root into a `put_old` directory and leave the old root mounted
    /// there, instead of detaching it: the host stays reachable by path.
    KeepOldRoot,
    /// Bind-mount the lower layer itself as the root instead of an overlay:
    /// the container writes straight into its image or given directory.
    SkipOverlay,
    /// Mount `:ro` volumes read-write.
    IgnoreReadOnly,
    /// Reserve the address but never connect the veth pair.
    SkipNetworkAttach,
    /// Tear the container down without killing what is left in its cgroup:
    /// a process that outlived init (without a PID namespace nothing kills
    /// it with init) survives the container, and the cgroup cannot go.
    SkipTeardownKill,
    /// Leave this one path of the masked or read-only lists
    /// ([`security::MASKED`] or
    /// [`READ_ONLY`](security::READ_ONLY)) as the kernel shows
    /// it. Only those paths deserialize, so a `&'static str` suffices.
    #[strum(serialize = "expose")]
    #[serde(rename = "expose")]
    ExposePath(
        // Spelled with its full path: serde's derive takes a plain `&str`
        // field for one borrowed from the input, which would tie every
        // `Faults` to input that lives forever (no `DeserializeOwned`).
        #[serde(deserialize_with = "protected_path")] &'static core::primitive::str,
    ),
}

/// The one of the protected paths (`security::paths`) equal to `path`, as
/// the `&'static str` of its list.
fn protected(path: &str) -> Option<&'static str> {
    use security::{MASKED, READ_ONLY};
    MASKED.into_iter().chain(READ_ONLY).find(|p| *p == path)
}

/// What [`Fault::ExposePath`] takes, for a refusal.
fn protected_paths() -> String {
    use security::{MASKED, READ_ONLY};
    let known: Vec<&str> = MASKED.into_iter().chain(READ_ONLY).collect();
    format!(
        "expected one of the masked or read-only paths ({})",
        known.join(", ")
    )
}

/// Reads the path of [`Fault::ExposePath`], which must be a protected one.
fn protected_path<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<&'static str, D::Error> {
    let path = <String as serde::Deserialize>::deserialize(deserializer)?;
    protected(&path).ok_or_else(|| {
        serde::de::Error::custom(format!("cannot expose {path:?}: {}", protected_paths()))
    })
}

/// The set of faults a spec carries; empty (the default) for every real
/// container.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Faults(BTreeSet<Fault>);

impl Faults {
    /// Adds `fault`; adding one twice changes nothing.
    pub fn insert(&mut self, fault: Fault) {
        self.0.insert(fault);
    }

    /// Whether the spec carries `fault`, so that the step it names is skipped.
    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// True for every real container.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Refuses an [`Fault::ExposePath`] of a path that is not protected:
    /// init could not read it back from the launch channel.
    fn validate(&self) -> Result<()> {
        for fault in &self.0 {
            if let Fault::ExposePath(path) = fault {
                if protected(path).is_none() {
                    return Err(Error::invalid("exposed path", *path, protected_paths()));
                }
            }
        }
        Ok(())
    }

    /// Whether init enters the rootfs with `chroot` instead of `pivot_root`:
    /// asked for, or implied by shared propagation, which pivot_root refuses.
    pub fn enters_with_chroot(&self) -> bool {
        self.has(Fault::ChrootInsteadOfPivotRoot) || self.has(Fault::KeepSharedPropagation)
    }
}

/// The cgroup parent used unless the caller picks another.
pub const DEFAULT_CGROUP_PARENT: &str = "mydocker";

impl Default for Spec {
    fn default() -> Spec {
        Spec::new(PathBuf::new(), Vec::new())
    }
}

impl Spec {
    /// A spec with default isolation and no limits.
    pub fn new(rootfs: impl Into<PathBuf>, args: Vec<String>) -> Spec {
        Spec {
            rootfs: rootfs.into(),
            args,
            env: Vec::new(),
            hostname: None,
            workdir: None,
            labels: Default::default(),
            user: None,
            group_add: Vec::new(),
            stop_signal: None,
            stop_timeout: None,
            restart: restart::RestartPolicy::No,
            namespaces: Namespaces::default(),
            limits: Limits::default(),
            interactive: false,
            tty: false,
            cgroup_parent: DEFAULT_CGROUP_PARENT.to_owned(),
            faults: Faults::default(),
            name: None,
            image: String::new(),
            volumes: Vec::new(),
            mounts: Vec::new(),
            devices: Vec::new(),
            init_process: false,
            network: None,
            auto_remove: true,
            split_init_phases: false,
            rlimits: Vec::new(),
            overlay: true,
            wait_for_start: false,
            bundle: None,
            security: security::Security::default(),
            userns: userns::UserNs::Host,
            oci: None,
        }
    }

    /// The full environment: defaults first (PATH, HOSTNAME, HOME, TERM), then
    /// the caller's variables, each replacing a default of the same name.
    pub fn environment(&self, hostname: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), DEFAULT_PATH.into()),
            ("HOSTNAME".into(), hostname.into()),
            ("HOME".into(), "/root".into()),
        ];
        if self.tty {
            env.push(("TERM".into(), "xterm".into()));
        }
        for (key, value) in &self.env {
            match env.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value.clone(),
                None => env.push((key.clone(), value.clone())),
            }
        }
        env
    }

    /// Checks the spec against this host. Runs before anything is created, so a
    /// refusal leaves nothing behind.
    pub fn validate(&self, host: &HostFacts) -> Result<()> {
        rlimit::check_unique(&self.rlimits, "--ulimit")?;
        if self.args.is_empty() || self.args[0].is_empty() {
            let what = if self.image.is_empty() || self.image.contains('/') {
                format!("the rootfs directory {}", self.rootfs.display())
            } else {
                format!("the image {}", self.image)
            };
            return Err(Error::NoCommand(what));
        }
        if !self.restart.is_no() && self.auto_remove {
            return Err(Error::invalid(
                "--restart",
                self.restart.name(),
                "not with --rm: a container removed as it exits cannot be started again",
            ));
        }
        if let Some(name) = &self.hostname {
            check_hostname(name)?;
        }
        if let Some(name) = &self.name {
            check_name(name)?;
        }
        for volume in &self.volumes {
            // A volume is named, and by a name that stays in its directory;
            // an anonymous one by its caller, with an id.
            match (&volume.name, volume.anonymous) {
                (Some(name), _) => check_volume_name("--volume", name)?,
                (None, true) => {
                    return Err(Error::invalid(
                        "--volume",
                        &volume.container,
                        "an anonymous volume needs the name its caller gives it",
                    ))
                }
                (None, false) => {}
            }
            if !volume.container.starts_with('/') || volume.container.split('/').any(|c| c == "..")
            {
                return Err(Error::invalid(
                    "--volume",
                    format!(
                        "{}:{}",
                        volume
                            .name
                            .clone()
                            .unwrap_or_else(|| volume.host.display().to_string()),
                        volume.container
                    ),
                    "the container path must be absolute and free of `..`, such as /data",
                ));
            }
        }
        if let Some(dir) = &self.workdir {
            if !dir.starts_with('/') {
                return Err(Error::invalid(
                    "--workdir",
                    dir,
                    "expected an absolute path inside the container, such as /app",
                ));
            }
        }
        self.faults.validate()?;
        let joins_mount = self
            .oci
            .as_deref()
            .is_some_and(|p| p.join_namespaces.iter().any(|(kind, _)| kind == "mnt"));
        // An OCI container without one is entered with chroot instead.
        if !self.namespaces.mount
            && !joins_mount
            && !self.faults.enters_with_chroot()
            && self.oci.is_none()
        {
            return Err(Error::invalid(
                "namespace set",
                "without mount",
                "the mount namespace is required: pivot_root outside one would move the host's root",
            ));
        }
        if self.cgroup_parent.is_empty()
            || self.cgroup_parent.starts_with('/')
            || self
                .cgroup_parent
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::invalid(
                "--cgroup-parent",
                &self.cgroup_parent,
                "expected a relative cgroup path such as mydocker or ci/mydocker",
            ));
        }
        self.limits.validate(host)
    }
}

/// Which namespaces the container gets. All are on by default; turning one off
/// is how the probes build their controls and mutation cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Namespaces {
    pub uts: bool,
    pub pid: bool,
    pub mount: bool,
    pub ipc: bool,
    pub net: bool,
    pub cgroup: bool,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            uts: true,
            pid: true,
            mount: true,
            ipc: true,
            net: true,
            cgroup: true,
        }
    }
}

/// Resource limits, as numbers. `None` means "leave the kernel's default".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Memory limit in bytes (`-m`).
    pub memory: Option<u64>,
    /// Memory plus swap (`--memory-swap`), docker's meaning.
    pub memory_swap: Option<SwapLimit>,
    /// CPU bandwidth (`--cpus`).
    pub cpus: Option<NanoCpus>,
    /// CFS quota in µs per period, as OCI gives it (`--cpus` is the
    /// docker way to say the same).
    pub cpu_quota: Option<i64>,
    /// CFS period in µs for the quota; the kernel's 100 ms when absent.
    pub cpu_period: Option<u64>,
    /// Relative CPU weight as v1 shares (`--cpu-shares`), 2..=262144.
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<IdSet>,
    pub cpuset_mems: Option<IdSet>,
    /// Maximum number of tasks (`--pids-limit`), at least 1.
    pub pids: Option<u64>,
    /// Device cgroup rules, in order (OCI's `linux.resources.devices`).
    pub devices: Vec<device::DeviceRule>,
    /// Also place the container in the v1 freezer hierarchy, so that it can
    /// be paused (v2 needs nothing more: every cgroup has `cgroup.freeze`).
    pub pausable: bool,
    /// docker's device list before `devices` (see
    /// [`device::docker_defaults`]): any node may be made, only the usual
    /// ones opened. Enforced by v1's devices cgroup; v2 enforces device
    /// access only through a BPF program, which mydocker does not load.
    #[serde(default)]
    pub default_devices: bool,
}

/// `--memory-swap`: a total of memory plus swap, or unlimited swap (`-1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SwapLimit {
    Total(u64),
    Unlimited,
}

impl Limits {
    /// True when no limit is set, so no controller needs configuring.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Checks the limits against this host and each other, as `run` and
    /// `update` both must.
    pub fn validate(&self, host: &HostFacts) -> Result<()> {
        if let Some(memory) = self.memory {
            if memory < MIN_MEMORY {
                return Err(Error::invalid(
                    "--memory",
                    format_size(memory),
                    format!(
                        "the minimum is {} (a process cannot start in less)",
                        format_size(MIN_MEMORY)
                    ),
                ));
            }
        }
        match (self.memory, self.memory_swap) {
            (None, Some(_)) => {
                return Err(Error::invalid(
                    "--memory-swap",
                    "without --memory",
                    "set --memory too: --memory-swap is the total of memory and swap",
                ))
            }
            (Some(memory), Some(SwapLimit::Total(total))) if total < memory => {
                return Err(Error::invalid(
                    "--memory-swap",
                    format_size(total),
                    format!(
                        "must be at least --memory ({}), or -1 for unlimited swap",
                        format_size(memory)
                    ),
                ))
            }
            _ => {}
        }
        if let Some(cpus) = self.cpus {
            let max = NanoCpus(u64::from(host.cpu_count) * 1_000_000_000);
            if cpus < NanoCpus::MIN || cpus > max {
                return Err(Error::invalid(
                    "--cpus",
                    cpus.to_string(),
                    format!(
                        "expected {} to {max}: this machine has {} CPUs",
                        NanoCpus::MIN,
                        host.cpu_count
                    ),
                ));
            }
        }
        if let Some(shares) = self.cpu_shares {
            if !crate::parse::SHARES_RANGE.contains(&shares) {
                return Err(Error::invalid(
                    "--cpu-shares",
                    shares.to_string(),
                    "expected 2 to 262144 (0 means the default, 1024)",
                ));
            }
        }
        for (flag, wanted, available, noun) in [
            (
                "--cpuset-cpus",
                &self.cpuset_cpus,
                &host.online_cpus,
                "CPUs",
            ),
            (
                "--cpuset-mems",
                &self.cpuset_mems,
                &host.online_mems,
                "memory nodes",
            ),
        ] {
            let Some(wanted) = wanted else { continue };
            let missing = wanted.missing_from(available);
            if wanted.is_empty() || !missing.is_empty() {
                return Err(Error::invalid(
                    flag,
                    wanted.to_string(),
                    format!("{missing} not online: this machine's {noun} are {available}"),
                ));
            }
        }
        if self.pids == Some(0) {
            return Err(Error::invalid(
                "--pids-limit",
                "0",
                "expected at least 1 (or -1 for no limit)",
            ));
        }
        Ok(())
    }
}

/// What [`Spec::validate`] needs to know about the host, read once.
#[derive(Debug, Clone)]
pub struct HostFacts {
    pub cpu_count: u32,
    pub online_cpus: IdSet,
    pub online_mems: IdSet,
}

/// Container names: 1 to 64 of `[a-zA-Z0-9_.-]`, as docker allows.
pub fn check_name(name: &str) -> Result<()> {
    if !crate::parse::is_plain_name(name, 64) {
        return Err(Error::invalid(
            "--name",
            name,
            "expected 1 to 64 of letters, digits, '_', '.' and '-'",
        ));
    }
    Ok(())
}

fn check_hostname(name: &str) -> Result<()> {
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() > 64 || !name.split('.').all(valid_label) {
        return Err(Error::invalid(
            "--hostname",
            name,
            "expected at most 64 characters of letters, digits, '-' and '.', such as web-1",
        ));
    }
    Ok(())
}

/// Parses `-v HOST:CTR[:ro|:rw]`. Relative host paths are taken from the
/// current directory, as docker does for bind mounts given as paths.
pub fn parse_volume(text: &str) -> Result<Volume> {
    let invalid = |why: &str| Error::invalid("--volume", text, why);
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, modes) = match parts.as_slice() {
        // docker's anonymous volume: a container path alone.
        [container] if container.starts_with('/') => {
            mount::check_destination("--volume", text, container)?;
            return Ok(Volume {
                anonymous: true,
                ..Volume::bind(PathBuf::new(), *container, false)
            });
        }
        [host, container] => (*host, *container, ""),
        [host, container, modes] => (*host, *container, *modes),
        _ => return Err(invalid(
            "expected HOSTPATH:CONTAINERPATH[:ro|:rw], NAME:CONTAINERPATH[:ro|:rw] or /CONTAINERPATH",
        )),
    };
    if host.is_empty() || container.is_empty() {
        return Err(invalid("expected HOSTPATH:CONTAINERPATH[:ro|:rw]"));
    }
    if !container.starts_with('/') {
        return Err(invalid(
            "the container path must be absolute, such as /data",
        ));
    }
    let (mut read_only, mut no_copy) = (false, false);
    for mode in modes.split(',').filter(|m| !m.is_empty()) {
        match mode {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => no_copy = true,
            _ => return Err(invalid("the options are ro or rw, and nocopy for a volume")),
        }
    }
    // As docker reads it: a path starts with '/' or '.', anything else is
    // a volume's name (which has no '/').
    if !host.starts_with(['/', '.']) {
        check_volume_name("--volume", host).map_err(|_| invalid(VOLUME_NAME))?;
        mount::check_destination("--volume", text, container)?;
        return Ok(Volume {
            no_copy,
            ..Volume::named(host, container, read_only)
        });
    }
    if no_copy {
        return Err(invalid("nocopy is for a volume, not a host path"));
    }
    let host = std::path::Path::new(host);
    let host = if host.is_absolute() {
        host.to_owned()
    } else {
        std::env::current_dir()
            .map_err(|e| invalid(&format!("cannot resolve a relative host path: {e}")))?
            .join(host)
    };
    Ok(Volume::bind(host, container, read_only))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_survives_its_file_and_a_missing_field_takes_its_default() {
        let mut spec = Spec::new(
            "/images/base",
            vec!["sh".into(), "-c".into(), "true".into()],
        );
        spec.restart = restart::RestartPolicy::OnFailure { max_retries: 3 };
        spec.env = vec![("A".into(), "b".into())];
        spec.userns = userns::UserNs::Auto;
        spec.namespaces.net = false;
        spec.network = Some(network::Request {
            network: "web".into(),
            ip: Some("10.0.0.5".parse().unwrap()),
            publish: Vec::new(),
        });
        spec.auto_remove = false;
        let text = serde_json::to_string(&spec).unwrap();
        let back: Spec = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        // A file written before `restart` existed: the field is not there.
        let mut older: serde_json::Value = serde_json::from_str(&text).unwrap();
        older.as_object_mut().unwrap().remove("restart");
        let read: Spec = serde_json::from_value(older).unwrap();
        assert_eq!(read.restart, restart::RestartPolicy::No);
        assert_eq!(read.args, spec.args);
        assert!(!read.auto_remove);
    }

    #[test]
    fn volumes_parse_with_modes() {
        let v = parse_volume("/srv/data:/data:ro").unwrap();
        assert_eq!(
            (v.host.to_str().unwrap(), v.container.as_str(), v.read_only),
            ("/srv/data", "/data", true)
        );
        assert!(!parse_volume("/a:/b").unwrap().read_only);
        // A name is a named volume, a path alone an anonymous one, and a
        // relative path (with its '/') still a host directory.
        assert_eq!(
            parse_volume("data:/d:ro").unwrap(),
            Volume::named("data", "/d", true)
        );
        let anonymous = parse_volume("/scratch").unwrap();
        assert!(
            anonymous.anonymous && anonymous.name.is_none(),
            "{anonymous:?}"
        );
        assert!(parse_volume("./here:/d").unwrap().host.is_absolute());
        for bad in [
            "a",
            "/a:b",
            "/a:/b:rx",
            ":/b",
            "/a:/b:ro:x",
            "",
            "x:/d",
            "-x:/d",
            "a b:/d",
        ] {
            let err = parse_volume(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    fn host() -> HostFacts {
        HostFacts {
            cpu_count: 2,
            online_cpus: IdSet([0, 1].into()),
            online_mems: IdSet([0].into()),
        }
    }

    fn spec() -> Spec {
        Spec::new("/", vec!["true".into()])
    }

    fn refusal(spec: &Spec) -> String {
        spec.validate(&host()).unwrap_err().to_string()
    }

    #[test]
    fn a_plain_spec_is_valid() {
        spec().validate(&host()).unwrap();
    }

    #[test]
    fn limits_are_checked_against_the_host() {
        let mut s = spec();
        s.limits.cpus = Some(NanoCpus(3_000_000_000));
        assert!(
            refusal(&s).contains("this machine has 2 CPUs"),
            "{}",
            refusal(&s)
        );
        s.limits.cpus = Some(NanoCpus(1_000_000));
        assert!(refusal(&s).contains("0.001"));
        let mut s = spec();
        s.limits.cpuset_cpus = Some(IdSet([1, 5].into()));
        assert!(
            refusal(&s).contains("\"1,5\"") && refusal(&s).contains("5 not online"),
            "{}",
            refusal(&s)
        );
        let mut s = spec();
        s.limits.cpuset_mems = Some(IdSet([1].into()));
        assert!(
            refusal(&s).contains("memory nodes are 0"),
            "{}",
            refusal(&s)
        );
        let mut s = spec();
        s.limits.memory = Some(1 << 20);
        assert!(refusal(&s).contains("minimum is 6MiB"), "{}", refusal(&s));
        let mut s = spec();
        s.limits.pids = Some(0);
        assert!(refusal(&s).contains("--pids-limit"));
    }

    #[test]
    fn memory_swap_follows_docker_rules() {
        let mut s = spec();
        s.limits.memory_swap = Some(SwapLimit::Total(64 << 20));
        assert!(refusal(&s).contains("set --memory too"));
        s.limits.memory = Some(128 << 20);
        assert!(refusal(&s).contains("at least --memory (128MiB)"));
        s.limits.memory_swap = Some(SwapLimit::Unlimited);
        s.validate(&host()).unwrap();
    }

    #[test]
    fn a_command_is_required() {
        let mut s = spec();
        s.args.clear();
        assert!(refusal(&s).contains("no command given"));
    }

    #[test]
    fn hostnames_and_workdirs_are_checked() {
        let mut s = spec();
        s.hostname = Some("bad_name".into());
        assert!(refusal(&s).contains("bad_name"));
        s.hostname = Some("web-1.local".into());
        s.validate(&host()).unwrap();
        s.workdir = Some("relative".into());
        assert!(refusal(&s).contains("absolute path"));
    }

    #[test]
    fn no_mount_namespace_needs_chroot() {
        let mut s = spec();
        s.namespaces.mount = false;
        assert!(refusal(&s).contains("mount namespace is required"));
        s.faults.insert(Fault::ChrootInsteadOfPivotRoot);
        s.validate(&host()).unwrap();
        let mut s = spec();
        s.namespaces.mount = false;
        s.faults.insert(Fault::KeepSharedPropagation);
        s.validate(&host()).unwrap();
    }

    #[test]
    fn faults_are_a_set() {
        let mut faults = Faults::default();
        assert!(faults.is_empty());
        faults.insert(Fault::SkipOverlay);
        faults.insert(Fault::SkipOverlay);
        faults.insert(Fault::ExposePath("/proc/kcore"));
        assert!(faults.has(Fault::SkipOverlay) && !faults.has(Fault::KeepOldRoot));
        assert!(!faults.enters_with_chroot());
        assert!(faults.has(Fault::ExposePath("/proc/kcore")));
        assert!(!faults.has(Fault::ExposePath("/proc/keys")));
        faults.insert(Fault::KeepSharedPropagation);
        assert!(faults.enters_with_chroot());
    }

    #[test]
    fn faults_travel_as_json() {
        let mut faults = Faults::default();
        faults.insert(Fault::KeepSharedPropagation);
        faults.insert(Fault::ExposePath("/proc/sysrq-trigger"));
        let json = serde_json::to_string(&faults).unwrap();
        assert_eq!(
            json,
            r#"["shared-propagation",{"expose":"/proc/sysrq-trigger"}]"#
        );
        assert_eq!(serde_json::from_str::<Faults>(&json).unwrap(), faults);
        // Read from an owned buffer: nothing borrows from the input.
        let owned: Faults = serde_json::from_reader(json.as_bytes()).unwrap();
        assert_eq!(owned, faults);
    }

    #[test]
    fn only_a_protected_path_can_be_exposed() {
        let error = serde_json::from_str::<Faults>(r#"[{"expose":"/etc/shadow"}]"#)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("cannot expose \"/etc/shadow\"") && error.contains("/proc/kcore"),
            "{error}"
        );
    }

    #[test]
    fn a_spec_cannot_expose_an_unprotected_path() {
        let mut s = spec();
        s.faults.insert(Fault::ExposePath("/etc/shadow"));
        assert!(
            refusal(&s).contains("invalid exposed path \"/etc/shadow\": expected one of"),
            "{}",
            refusal(&s)
        );
    }

    #[test]
    fn caller_env_overrides_defaults() {
        let mut s = spec();
        s.env = vec![("PATH".into(), "/bin".into()), ("A".into(), "1".into())];
        let env = s.environment("box");
        assert_eq!(env[0], ("PATH".into(), "/bin".into()));
        assert!(env.contains(&("HOSTNAME".into(), "box".into())));
        assert_eq!(env.last().unwrap(), &("A".into(), "1".into()));
    }
}
