//! The command line: clap definitions and their translation into a [`Spec`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::parse::{parse_cpus, parse_env, parse_size, IdSet};
use crate::spec::{Spec, SwapLimit, DEFAULT_CGROUP_PARENT};
use crate::store::DEFAULT_ROOT;

/// A minimal container runtime: namespaces, pivot_root and cgroups.
#[derive(Debug, Parser)]
#[command(name = "mydocker", version, about, max_term_width = 100)]
pub struct Cli {
    /// Directory for all runtime state, so that several instances can run side by side
    #[arg(long, global = true, env = "MYDOCKER_ROOT", default_value = DEFAULT_ROOT, value_name = "DIR")]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container
    Run(RunArgs),
}

/// `mydocker run [OPTIONS] ROOTFS [COMMAND] [ARG...]`
#[derive(Debug, Args)]
pub struct RunArgs {
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
    /// Working directory inside the container
    #[arg(short, long, value_name = "DIR")]
    pub workdir: Option<String>,
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
    /// Cgroup under which the container's cgroup is created
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CGROUP_PARENT)]
    pub cgroup_parent: String,
    /// Directory holding the container's root filesystem
    #[arg(value_name = "ROOTFS")]
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
    /// Parses every flag's text into the plain values of a [`Spec`].
    pub fn to_spec(&self) -> Result<Spec> {
        let mut spec = Spec::new(self.rootfs.clone(), self.command.clone());
        spec.interactive = self.interactive;
        spec.tty = self.tty;
        spec.hostname = self.hostname.clone();
        spec.workdir = self.workdir.clone();
        spec.cgroup_parent = self.cgroup_parent.clone();
        spec.env = self
            .env
            .iter()
            .map(|e| parse_env(e))
            .collect::<Result<_>>()?;
        let limits = &mut spec.limits;
        limits.memory = self
            .memory
            .as_deref()
            .map(|m| parse_size("--memory", m))
            .transpose()?;
        limits.memory_swap = match self.memory_swap.as_deref() {
            None => None,
            Some("-1") => Some(SwapLimit::Unlimited),
            Some(text) => Some(SwapLimit::Total(parse_size("--memory-swap", text)?)),
        };
        limits.cpus = self.cpus.as_deref().map(parse_cpus).transpose()?;
        // docker treats 0 as "not set".
        limits.cpu_shares = self.cpu_shares.filter(|&s| s != 0);
        limits.cpuset_cpus = self
            .cpuset_cpus
            .as_deref()
            .map(|l| IdSet::parse("--cpuset-cpus", l))
            .transpose()?;
        limits.cpuset_mems = self
            .cpuset_mems
            .as_deref()
            .map(|l| IdSet::parse("--cpuset-mems", l))
            .transpose()?;
        limits.pids = match self.pids_limit {
            None | Some(-1) => None,
            Some(n) if n >= 0 => Some(n as u64),
            Some(n) => {
                return Err(Error::invalid(
                    "--pids-limit",
                    n.to_string(),
                    "expected at least 1, or -1 for no limit",
                ))
            }
        };
        Ok(spec)
    }
}
