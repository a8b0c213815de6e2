//! The runtime's error type and the docker exit code each error maps to.

use std::path::PathBuf;

/// Exit code when the runtime itself failed (docker's 125).
pub const EXIT_RUNTIME: i32 = 125;
/// Exit code when the command exists but cannot be executed (docker's 126).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code when the command is not found in the container (docker's 127).
pub const EXIT_NOT_FOUND: i32 = 127;

/// Everything that can stop a container from running, phrased for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-supplied value did not parse or is out of range.
    #[error("invalid {what} {value:?}: {expected}")]
    InvalidValue {
        what: &'static str,
        value: String,
        expected: String,
    },
    /// The rootfs argument is unusable.
    #[error("rootfs {path:?} {problem}")]
    Rootfs { path: PathBuf, problem: String },
    /// No command was given, and the image or rootfs directory (named) has no default.
    #[error(
        "no command given, and {0} has no default command: name one after it (for example `sh`)"
    )]
    NoCommand(String),
    /// The caller lacks the privileges the runtime needs.
    #[error("{0}")]
    Privilege(String),
    /// A cgroup could not be created, limited, joined or removed (the
    /// cgroup layer's error, unchanged).
    #[error(transparent)]
    Cgroup(#[from] cgroups::Error),
    /// A system call in the parent failed.
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
    /// An I/O operation in the parent failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The container's init failed while preparing the container.
    #[error("container setup failed: {0}")]
    Setup(String),

    /// The kernel lacks a feature the container needs (exit 125).
    #[error("container setup failed: {0}")]
    KernelLacks(String),
    /// A value the spec cannot take (the plain layer's error, unchanged).
    #[error(transparent)]
    Spec(#[from] spec::Error),
    /// The command could not be executed; carries the exit code to use (126 or 127).
    #[error("{message}")]
    Exec { message: String, code: i32 },
}

impl Error {
    /// The process exit code docker would use for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } => *code,
            _ => EXIT_RUNTIME,
        }
    }

    pub fn invalid(
        what: &'static str,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Error::InvalidValue {
            what,
            value: value.into(),
            expected: expected.into(),
        }
    }

    pub(crate) fn sys(context: impl Into<String>) -> impl FnOnce(nix::Error) -> Self {
        let context = context.into();
        move |source| Error::Sys { context, source }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
