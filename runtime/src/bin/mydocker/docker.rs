//! The docker-style command line: clap definitions and their translation into a [`Spec`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use runtime::error::{Error, Result};
use runtime::parse::{parse_cpus, parse_env, parse_env_file, parse_size, IdSet};
use runtime::spec::{Limits, Spec, SwapLimit, DEFAULT_CGROUP_PARENT};

/// A minimal container runtime: namespaces, pivot_root and cgroups.
#[derive(Debug, Parser)]
#[command(name = "mydocker", version, about, max_term_width = 100)]
pub struct Cli {
    /// Directory for all runtime state, so that several instances can run side by side
    #[arg(long, global = true, env = "MYDOCKER_ROOT", default_value_os_t = runtime::store::default_root(), value_name = "DIR")]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container
    Run(Box<RunArgs>),
    /// List containers
    Ps {
        /// Show every container (default: only running ones)
        #[arg(short, long)]
        all: bool,
        /// Only print full container ids
        #[arg(short, long)]
        quiet: bool,
        /// Keep containers that match: status=created|running|paused|exited, name=PART, id=PREFIX, label=KEY[=VALUE] (repeatable; all must match)
        #[arg(short, long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Only the N containers created last, in any state
        #[arg(short = 'n', long, value_name = "N")]
        last: Option<usize>,
        /// Only the container created last, in any state
        #[arg(short, long)]
        latest: bool,
        /// Print through a Go template ({{.ID}}, {{.Names}}, {{.Status}}, ...); 'table TEMPLATE' adds a header, 'json' one object per line
        #[arg(long, value_name = "TEMPLATE")]
        format: Option<String>,
    },
    /// Show containers, images or networks as JSON, in docker's shape
    Inspect {
        /// Print each through a Go template, such as '{{.State.Pid}}' or '{{json .Config}}'
        #[arg(short, long, value_name = "TEMPLATE")]
        format: Option<String>,
        /// Only this kind of object
        #[arg(long = "type", value_name = "TYPE", value_parser = ["container", "image", "network", "volume"])]
        kind: Option<String>,
        /// Print mydocker's own record of one container, as stored
        #[arg(long, conflicts_with_all = ["format", "kind"])]
        record: bool,
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Print a detached container's output (stdout and stderr, interleaved)
    Logs {
        /// Keep printing new output until the container exits
        #[arg(short, long)]
        follow: bool,
        /// Only the last N lines
        #[arg(short = 'n', long, value_name = "N")]
        tail: Option<usize>,
        /// Prefix each line with when it was written (RFC 3339)
        #[arg(short, long)]
        timestamps: bool,
        /// Only lines written since: a time (2026-12-03T16:00:00Z), Unix seconds, or a duration ago (10m, 1h30m)
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        #[arg(value_name = "CONTAINER")]
        container: String,
    },
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Stop containers
    ///
    /// Their stop signal (SIGTERM unless run with --stop-signal), then SIGKILL after a grace period.
    Stop(StopArgs),
    /// Restart containers
    ///
    /// Stops each as `stop` does (an exited one is only started), then starts it again, detached, from the spec it was run with: the same id, name, upper layer, log and address.
    Restart(StopArgs),
    /// Send a signal to a container's init
    Kill {
        /// Signal name or number
        #[arg(short, long, default_value = "KILL")]
        signal: String,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Thaw paused containers
    Unpause {
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// List a container's published ports, or where one port is published
    Port {
        #[arg(value_name = "CONTAINER")]
        container: String,
        /// A container port, such as 80 or 53/udp
        #[arg(value_name = "PORT[/PROTO]")]
        port: Option<String>,
    },
    /// Show a container's processes
    ///
    /// The host's ps, keeping the container's processes, with each one's pid inside as CPID.
    Top {
        #[arg(value_name = "CONTAINER")]
        container: String,
        /// Options for ps (default -ef)
        #[arg(
            value_name = "PS OPTIONS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        options: Vec<String>,
    },
    /// Change the resource limits of containers, running or stopped
    Update {
        #[command(flatten)]
        limits: LimitArgs,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Show containers' resource usage
    ///
    /// Live in a terminal; one snapshot with --no-stream, or when not a terminal.
    Stats {
        /// Show every container (default: only running ones)
        #[arg(short, long)]
        all: bool,
        /// Print one snapshot and exit
        #[arg(long)]
        no_stream: bool,
        /// Print the full container ids
        #[arg(long)]
        no_trunc: bool,
        /// Print through a Go template ({{.Name}}, {{.CPUPerc}}, {{.MemUsage}}, ...); 'table TEMPLATE' adds a header, 'json' one object per line
        #[arg(long, value_name = "TEMPLATE")]
        format: Option<String>,
        #[arg(value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Copy files between a container and the host
    ///
    /// CONTAINER:SRC DEST, or SRC CONTAINER:DEST; - is a tar stream on stdin or stdout.
    Cp {
        /// Copy what a source symbolic link points to, not the link
        #[arg(short = 'L', long)]
        follow_link: bool,
        #[arg(value_name = "SRC")]
        source: String,
        #[arg(value_name = "DEST")]
        destination: String,
    },
    /// Give a container a new name
    Rename {
        #[arg(value_name = "CONTAINER")]
        container: String,
        #[arg(value_name = "NEW_NAME")]
        new_name: String,
    },
    /// Block until containers stop, then print their exit codes
    Wait {
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Remove containers
    Rm {
        /// Kill running containers first
        #[arg(short, long)]
        force: bool,
        /// Remove their anonymous volumes too
        #[arg(short, long)]
        volumes: bool,
        #[arg(required = true, value_name = "CONTAINER")]
        containers: Vec<String>,
    },
    /// Make an image from a container's filesystem
    Commit {
        #[arg(value_name = "CONTAINER")]
        container: String,
        #[arg(value_name = "IMAGE")]
        image: String,
    },
    /// Import a plain or gzip tar of a root filesystem as an image
    Import {
        #[arg(value_name = "TARBALL")]
        tarball: PathBuf,
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List images
    Images,
    /// Manage bridge networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage the whole store
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Remove an image
    Rmi {
        /// Remove it even if stopped containers use it
        #[arg(short, long)]
        force: bool,
        #[arg(value_name = "IMAGE")]
        image: String,
    },
}

/// `mydocker system ...`
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Remove exited containers, unused networks and, with -a, unused images
    Prune {
        /// Remove every image no container uses, too
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

/// How `stop` and `restart` stop containers.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before SIGKILL, -1 for no limit (default: the container's --stop-timeout, or 10)
    #[arg(short, long, value_name = "SECS", allow_hyphen_values = true, value_parser = parse_timeout)]
    pub time: Option<u64>,
    /// Signal to send first (default: the container's --stop-signal, or TERM)
    #[arg(short, long, value_name = "SIGNAL")]
    pub signal: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

impl StopArgs {
    /// The grace and the signal, checked.
    pub fn parsed(
        &self,
    ) -> Result<(
        Option<std::time::Duration>,
        Option<nix::sys::signal::Signal>,
    )> {
        let signal = self
            .signal
            .as_deref()
            .map(runtime::lifecycle::parse_signal)
            .transpose()?;
        Ok((self.time.map(std::time::Duration::from_secs), signal))
    }
}

/// `mydocker volume ...`
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume (named at random without NAME)
    Create {
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// List volumes
    Ls {
        /// Only their names
        #[arg(short, long)]
        quiet: bool,
    },
    /// Print volumes as JSON
    Inspect {
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Remove volumes (refused while a container, running or not, names them)
    Rm {
        /// Accepted for docker's sake: a volume in use is refused all the same
        #[arg(short, long)]
        force: bool,
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
    },
    /// Remove the anonymous volumes no container uses; with -a, every unused volume
    Prune {
        /// Named volumes too
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation
        #[arg(short, long)]
        force: bool,
    },
}

/// `mydocker network ...`
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a bridge network
    Create {
        /// Only `bridge` is supported
        #[arg(long, default_value = "bridge")]
        driver: String,
        /// The network's addresses, an IPv4 CIDR from /8 to /30
        #[arg(long, value_name = "CIDR")]
        subnet: String,
        /// The bridge's address (default: the first host of the subnet)
        #[arg(long, value_name = "IP")]
        gateway: Option<String>,
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// List networks
    Ls,
    /// Print a network and its leases as JSON
    Inspect {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Remove a network (refused while containers are attached)
    Rm {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// `mydocker exec [OPTIONS] CONTAINER COMMAND [ARG...]`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Keep stdin open and pass it to the command
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Set an environment variable (repeatable)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Command to run, then its arguments, passed as they are
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// The resource limits `run` sets and `update` changes.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Memory limit, such as 512m or 1g
    #[arg(short, long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// Memory plus swap limit; -1 allows unlimited swap
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs, such as 0.5 (a CFS quota per 100ms period)
    #[arg(long, value_name = "DECIMAL", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Relative CPU weight, 2 to 262144 (default 1024)
    #[arg(long, value_name = "N")]
    pub cpu_shares: Option<u64>,
    /// CPUs the container may run on, such as 0-3,5
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes the container may allocate from, such as 0
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes; -1 for no limit
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

impl LimitArgs {
    /// Whether no limit was given at all.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.memory_swap.is_none()
            && self.cpus.is_none()
            && self.cpu_shares.is_none()
            && self.cpuset_cpus.is_none()
            && self.cpuset_mems.is_none()
            && self.pids_limit.is_none()
    }

    /// Sets each limit given on the command line and leaves the others as
    /// they are.
    pub fn apply(&self, limits: &mut Limits) -> Result<()> {
        if let Some(memory) = &self.memory {
            limits.memory = Some(parse_size("--memory", memory)?);
        }
        match self.memory_swap.as_deref() {
            None => {}
            Some("-1") => limits.memory_swap = Some(SwapLimit::Unlimited),
            Some(text) => {
                limits.memory_swap = Some(SwapLimit::Total(parse_size("--memory-swap", text)?))
            }
        }
        if let Some(cpus) = &self.cpus {
            limits.cpus = Some(parse_cpus(cpus)?);
        }
        // docker treats 0 as "not set": at `update`, as "unchanged".
        if let Some(shares) = self.cpu_shares.filter(|&s| s != 0) {
            limits.cpu_shares = Some(shares);
        }
        if let Some(list) = &self.cpuset_cpus {
            limits.cpuset_cpus = Some(IdSet::parse("--cpuset-cpus", list)?);
        }
        if let Some(list) = &self.cpuset_mems {
            limits.cpuset_mems = Some(IdSet::parse("--cpuset-mems", list)?);
        }
        match self.pids_limit {
            None => {}
            Some(-1) => limits.pids = None,
            Some(n) if n >= 0 => limits.pids = Some(n as u64),
            Some(n) => {
                return Err(Error::invalid(
                    "--pids-limit",
                    n.to_string(),
                    "expected at least 1, or -1 for no limit",
                ))
            }
        }
        Ok(())
    }
}

/// `mydocker run [OPTIONS] ROOTFS [COMMAND] [ARG...]`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run in the background under a monitor and print the container's id
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// A unique name for the container
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Bind mount a host directory: HOSTPATH:CONTAINERPATH[:ro|:rw] (repeatable)
    #[arg(short, long = "volume", value_name = "VOLUME")]
    pub volumes: Vec<String>,
    /// Mount a tmpfs: PATH[:OPTIONS], such as /scratch:size=64m (repeatable; rw,noexec,nosuid,nodev unless an option says otherwise)
    #[arg(long, value_name = "PATH[:OPTIONS]")]
    pub tmpfs: Vec<String>,
    /// Mount in docker's long form: type=bind,source=HOSTPATH,target=PATH[,readonly] or type=tmpfs,target=PATH[,tmpfs-size=BYTES][,tmpfs-mode=MODE] (repeatable)
    #[arg(long = "mount", value_name = "KEY=VALUE,...")]
    pub mounts: Vec<String>,
    /// Give the container a host device: HOST[:CONTAINER[:PERMISSIONS]], such as /dev/fuse (repeatable; permissions some of rwm)
    #[arg(long = "device", value_name = "DEVICE")]
    pub devices: Vec<String>,
    /// Network to join: a network's name, `host` (share the host's) or `none` (only lo)
    #[arg(long, value_name = "NETWORK", default_value = "none")]
    pub network: String,
    /// A fixed address on the network
    #[arg(long, value_name = "IP")]
    pub ip: Option<String>,
    /// Publish a container port: [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|/udp] (repeatable)
    #[arg(short, long = "publish", value_name = "SPEC")]
    pub publish: Vec<String>,
    /// Keep stdin open and pass it to the container
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-terminal
    #[arg(short, long)]
    pub tty: bool,
    /// Container hostname (default: the first 12 digits of the id)
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Set an environment variable (repeatable)
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Attach metadata, KEY=VALUE or KEY (repeatable)
    #[arg(short = 'l', long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Read variables from a file: KEY=VALUE per line, # comments (repeatable; -e wins)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as this user, by name or uid, with a group by name or gid (from the image's /etc/passwd and /etc/group)
    #[arg(short, long, value_name = "NAME|UID[:GROUP|GID]")]
    pub user: Option<String>,
    /// Another supplementary group, by name or gid (repeatable)
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,
    /// Run an init as PID 1 that reaps orphans and passes signals on to the command
    #[arg(long)]
    pub init: bool,
    /// Run this program, with COMMAND's words as its arguments, instead of the image's default command
    #[arg(long, value_name = "PROGRAM")]
    pub entrypoint: Option<String>,
    /// Signal that `stop` sends first (default TERM)
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL, -1 for no limit (default 10)
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, value_parser = parse_timeout)]
    pub stop_timeout: Option<u64>,
    /// Start the container again when it exits: no, on-failure[:MAX-RETRIES], always or unless-stopped (needs -d)
    #[arg(long, value_name = "POLICY", default_value = "no")]
    pub restart: String,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Cgroup under which the container's cgroup is created
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CGROUP_PARENT)]
    pub cgroup_parent: String,
    /// Add a capability to docker's default set (a name such as NET_ADMIN, or ALL)
    #[arg(long = "cap-add", value_name = "CAP")]
    pub cap_add: Vec<String>,
    /// Drop a capability from docker's default set (a name, or ALL)
    #[arg(long = "cap-drop", value_name = "CAP")]
    pub cap_drop: Vec<String>,
    /// Every capability, nothing masked in /proc, no seccomp filter
    #[arg(long)]
    pub privileged: bool,
    /// no-new-privileges[=true|false], or seccomp=unconfined|default
    #[arg(long = "security-opt", value_name = "OPT")]
    pub security_opt: Vec<String>,
    /// Mount the rootfs read-only (with tmpfs on /tmp and /run)
    #[arg(long)]
    pub read_only: bool,
    /// A resource limit of the command, NAME=SOFT[:HARD] (-1 is unlimited), such as nofile=1024:4096
    #[arg(long = "ulimit", value_name = "LIMIT")]
    pub ulimits: Vec<String>,
    /// host, or auto: map the container's root to a block of unprivileged ids
    #[arg(long, value_name = "MODE", default_value = "host", value_parser = ["host", "auto"])]
    pub userns: String,
    /// An image name, or a directory holding a root filesystem
    #[arg(value_name = "IMAGE|ROOTFS")]
    pub rootfs: PathBuf,
    /// Command to run, then its arguments, passed as they are
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

impl RunArgs {
    /// Parses every flag's text into the plain values of a [`Spec`]. An
    /// argument that names an image runs on that image's rootfs (and its
    /// default command, if the image has one and none is given); anything
    /// with a `/`, or an existing directory, is a rootfs directory.
    pub fn to_spec(&self, root: &std::path::Path) -> Result<Spec> {
        if self.detach && (self.interactive || self.tty) {
            return Err(Error::invalid(
                "options",
                format!("-d with {}", if self.tty { "-t" } else { "-i" }),
                "a detached container has no terminal or stdin to attach: drop -i/-t, or -d",
            ));
        }
        let given = self.rootfs.to_string_lossy().into_owned();
        let is_path = given.contains('/') || self.rootfs.is_dir();
        let (rootfs, image, default_cmd) = if is_path {
            (self.rootfs.clone(), given.clone(), Vec::new())
        } else {
            let images = runtime::image::Images::new(root);
            runtime::image::Images::check_name(&given)?;
            let meta = images.get(&given)?;
            (images.rootfs(&given), given.clone(), meta.cmd)
        };
        // As docker's: an --entrypoint replaces the image's default
        // command too, and the arguments given follow it.
        let command = match self.entrypoint.as_deref() {
            Some("") => self.command.clone(),
            Some(entrypoint) => std::iter::once(entrypoint.to_owned())
                .chain(self.command.iter().cloned())
                .collect(),
            None if self.command.is_empty() => default_cmd,
            None => self.command.clone(),
        };
        let mut spec = Spec::new(rootfs, command);
        spec.security.capabilities =
            runtime::security::caps::choose(&self.cap_add, &self.cap_drop)?;
        for option in &self.security_opt {
            spec.security.apply_option(option)?;
        }
        if self.privileged {
            spec.security = spec.security.privileged();
        }
        spec.security.read_only_rootfs = self.read_only;
        spec.rlimits = self
            .ulimits
            .iter()
            .map(|u| runtime::spec::rlimit::Rlimit::parse(u))
            .collect::<std::result::Result<_, _>>()?;
        if self.userns == "auto" {
            spec.userns = runtime::userns::UserNs::Auto;
        }
        spec.image = image;
        spec.name = self.name.clone();
        spec.auto_remove = self.rm;
        let publish = self
            .publish
            .iter()
            .map(|p| runtime::network::parse_publish(p))
            .collect::<Result<Vec<_>, _>>()?;
        let ip = self
            .ip
            .as_deref()
            .map(|ip| {
                ip.parse()
                    .map_err(|_| Error::invalid("--ip", ip, "expected an IPv4 address"))
            })
            .transpose()?;
        match self.network.as_str() {
            "none" | "host" if !publish.is_empty() || ip.is_some() => {
                return Err(Error::invalid(
                    "--network",
                    &self.network,
                    "-p and --ip need a bridge network: create one with `mydocker network create`",
                ))
            }
            "none" => {}
            "host" => spec.namespaces.net = false,
            name => {
                spec.network = Some(runtime::network::Request {
                    network: name.to_owned(),
                    ip,
                    publish,
                })
            }
        }
        spec.volumes = self
            .volumes
            .iter()
            .map(|v| runtime::spec::parse_volume(v))
            .collect::<Result<_, _>>()?;
        for text in &self.tmpfs {
            spec.mounts.push(runtime::spec::mount::parse_tmpfs(text)?);
        }
        for text in &self.mounts {
            let mount = match runtime::spec::mount::parse_mount(text)? {
                runtime::spec::mount::LongMount::Mount(mount) => mount,
                runtime::spec::mount::LongMount::Volume(volume) => {
                    spec.volumes.push(volume);
                    continue;
                }
            };
            // Unlike -v, docker's --mount never makes the source.
            if mount.is_bind() && !std::path::Path::new(&mount.source).exists() {
                return Err(Error::invalid(
                    "--mount",
                    text,
                    format!("the bind source {} does not exist", mount.source),
                ));
            }
            spec.mounts.push(mount);
        }
        // An anonymous volume is named here, once: the spec kept for
        // `restart` names the same one.
        for volume in spec.volumes.iter_mut().filter(|v| v.anonymous) {
            volume.name = Some(runtime::store::new_id());
        }
        let mut granted = Vec::new();
        for text in &self.devices {
            let (host, container, access) = runtime::spec::device::parse_device_flag(text)?;
            let device = host_device(text, &host, &container)?;
            spec.devices.push(device.clone());
            granted.push((device, access));
        }
        // docker's list first: no host device opens unless given.
        spec.limits.default_devices = true;
        spec.limits.devices = runtime::spec::device::rules_for(&granted);
        spec.interactive = self.interactive;
        spec.tty = self.tty;
        spec.hostname = self.hostname.clone();
        spec.workdir = self.workdir.clone();
        spec.init_process = self.init;
        spec.user = self.user.clone();
        spec.group_add = self.group_add.clone();
        spec.stop_signal = self
            .stop_signal
            .as_deref()
            .map(|s| runtime::lifecycle::parse_signal(s).map(|s| s.as_str().to_owned()))
            .transpose()?;
        spec.stop_timeout = self.stop_timeout;
        spec.restart = runtime::spec::restart::RestartPolicy::parse(&self.restart)?;
        // Without -d, this command is the container's supervisor and ends
        // with it: nobody would be left to start it again.
        if !spec.restart.is_no() && !self.detach {
            return Err(Error::invalid(
                "--restart",
                &self.restart,
                "only with -d: a detached container's monitor starts it again; without -d, mydocker ends with the container",
            ));
        }
        spec.cgroup_parent = self.cgroup_parent.clone();
        // Files first, then -e: a later value of a variable wins.
        let mut env = Vec::new();
        for file in &self.env_file {
            let text = std::fs::read_to_string(file).map_err(|e| {
                Error::invalid(
                    "--env-file",
                    file.display().to_string(),
                    format!("a readable file ({e})"),
                )
            })?;
            let shown = file.display().to_string();
            env.extend(parse_env_file(&shown, &text, |key| {
                std::env::var(key).ok()
            })?);
        }
        for e in &self.env {
            env.push(parse_env(e)?);
        }
        spec.env = env;
        for label in &self.labels {
            let (key, value) = label.split_once('=').unwrap_or((label, ""));
            if key.is_empty() {
                return Err(Error::invalid(
                    "--label",
                    label,
                    "expected KEY=VALUE or KEY, with a non-empty KEY",
                ));
            }
            spec.labels.insert(key.to_owned(), value.to_owned());
        }
        self.limits.apply(&mut spec.limits)?;
        // On v1 the freezer is a hierarchy of its own: join it so that
        // `pause` works, as docker's containers can all be paused.
        spec.limits.pausable = true;
        Ok(spec)
    }
}

/// The node `--device` names on the host, as the container's `path` gets
/// it: the same kind, numbers and permission bits.
fn host_device(text: &str, host: &str, path: &str) -> Result<runtime::spec::device::Device> {
    use nix::sys::stat::{major, minor, stat, SFlag};
    let meta = stat(host).map_err(|e| {
        Error::invalid(
            "--device",
            text,
            format!("cannot read {host} on the host: {}", e.desc()),
        )
    })?;
    let kind = match SFlag::from_bits_truncate(meta.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFCHR => 'c',
        SFlag::S_IFBLK => 'b',
        _ => {
            return Err(Error::invalid(
                "--device",
                text,
                format!("{host} is not a character or block device"),
            ))
        }
    };
    Ok(runtime::spec::device::Device {
        path: path.to_owned(),
        kind,
        major: major(meta.st_rdev),
        minor: minor(meta.st_rdev),
        mode: meta.st_mode & 0o777,
        uid: 0,
        gid: 0,
        host: Some(host.to_owned()),
    })
}

/// The commands by docker's headings, in the order `docker --help` lists
/// them. A command missing here fails the test below.
const HELP_GROUPS: [(&str, &[&str]); 3] = [
    (
        "Common Commands",
        &["run", "exec", "ps", "images", "logs", "stop", "rm"],
    ),
    ("Management Commands", &["network", "system", "volume"]),
    (
        "Commands",
        &[
            "commit", "cp", "import", "inspect", "kill", "pause", "port", "rename", "restart",
            "rmi", "stats", "top", "unpause", "update", "wait",
        ],
    ),
];

/// `pause` is runc's command line's (podman calls it bare) and so not
/// among clap's; docker users reach for it all the same.
const PAUSE_ABOUT: &str = "Freeze every process of a container (the cgroup freezer)";

/// `mydocker --help`, laid out as `docker --help` is: the commands under
/// docker's headings, each with clap's one-line description.
pub fn grouped_help() -> String {
    use clap::CommandFactory;
    let cli = Cli::command();
    let about = |name: &str| match name {
        "pause" => PAUSE_ABOUT.to_owned(),
        _ => cli
            .find_subcommand(name)
            .and_then(|c| c.get_about())
            .map(|a| a.to_string())
            .unwrap_or_default(),
    };
    let width = HELP_GROUPS
        .iter()
        .flat_map(|(_, names)| names.iter())
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    let mut text = format!(
        "Usage:  mydocker [OPTIONS] COMMAND\n\n{}\n",
        cli.get_about().map(|a| a.to_string()).unwrap_or_default()
    );
    for (heading, names) in HELP_GROUPS {
        text.push_str(&format!("\n{heading}:\n"));
        for name in names {
            text.push_str(&format!("  {name:<width$}  {}\n", about(name)));
        }
    }
    text.push_str(
        "\nGlobal Options:\n      --root DIR     Directory for all runtime state (/var/lib/mydocker for root, else $XDG_DATA_HOME/mydocker; or MYDOCKER_ROOT)\n  -h, --help         Print help\n  -V, --version      Print version\n",
    );
    text.push_str(
        "\nRun 'mydocker COMMAND --help' for more information on a command.\n\
         The same binary is an OCI runtime with runc's command line (create, start, state,\n\
         kill, delete, pause, resume, list, spec, features), as podman calls it.\n",
    );
    text
}

/// docker's layout for each command's help: usage first, then what it
/// does, then its options.
pub const COMMAND_HELP: &str = "Usage:  {usage}\n\n{about-with-newline}\n{all-args}{after-help}";

/// A stop timeout in seconds, or -1 for none (docker's), which is kept as
/// the largest number: a deadline past what the clock can hold.
fn parse_timeout(text: &str) -> std::result::Result<u64, String> {
    match text.parse::<i64>() {
        Ok(-1) => Ok(u64::MAX),
        Ok(n) if n >= 0 => Ok(n as u64),
        _ => Err(format!(
            "{text:?} is not a number of seconds (or -1 for no limit)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_command_is_listed_once_under_a_heading() {
        let listed: Vec<&str> = HELP_GROUPS
            .iter()
            .flat_map(|(_, names)| names.iter().copied())
            .collect();
        let mut unique = listed.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), listed.len(), "a command is listed twice");
        for command in Cli::command().get_subcommands() {
            let name = command.get_name();
            assert!(listed.contains(&name), "{name} is under no heading");
        }
        let help = grouped_help();
        for name in listed {
            let line = help
                .lines()
                .find(|l| l.starts_with("  ") && l.split_whitespace().next() == Some(name));
            assert!(
                line.is_some_and(|l| l.split_whitespace().count() > 1),
                "{name} has no description:\n{help}"
            );
        }
    }
}
