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
    /// No container, image or network answers to that name.
    #[error("invalid {what} {name:?}: {hint}")]
    NotFound {
        what: &'static str,
        name: String,
        hint: String,
    },
    /// It exists, but its state (or a name taken) forbids this.
    #[error("invalid {what} {name:?}: {why}")]
    Conflict {
        what: &'static str,
        name: String,
        why: String,
    },
    /// A record the runtime wrote does not parse: the state is damaged.
    #[error("{} is damaged: {source}; {}", path.display(), repair(path))]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// The machine did not do what it must (a process outlived SIGKILL).
    #[error("{0}")]
    System(String),
    /// The rootfs argument is unusable.
    #[error("rootfs {path:?} {problem}")]
    Rootfs { path: PathBuf, problem: String },
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
    /// An error another mydocker process met and reported over a channel
    /// (the detached monitor's, when the container could not start): its
    /// kind, words and exit code survive the trip, its source chain cannot.
    #[error("{message}")]
    Reported {
        kind: Kind,
        message: String,
        code: i32,
    },
}

/// What kind of failure an error is, for callers that react differently
/// (the OCI command line, scripts, tests), whatever its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A value the user gave does not parse or does not fit.
    Input,
    /// No such container, image or network.
    NotFound,
    /// The state forbids it (not running, still running, a name taken).
    Conflict,
    /// Damaged state on disk.
    Corrupt,
    /// The kernel lacks a feature, or the caller a privilege.
    Unsupported,
    /// A system call, a file, a cgroup or the container's setup failed.
    System,
    /// The command could not be executed.
    Exec,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> Kind {
        match self {
            Error::Rootfs { .. } => Kind::Input,
            Error::Spec(spec::Error::Unsupported { .. }) => Kind::Unsupported,
            Error::Spec(_) => Kind::Input,
            Error::NotFound { .. } => Kind::NotFound,
            Error::Conflict { .. } => Kind::Conflict,
            Error::Corrupt { .. } => Kind::Corrupt,
            Error::Privilege(_) | Error::KernelLacks(_) => Kind::Unsupported,
            Error::Cgroup(
                cgroups::Error::MissingController { .. } | cgroups::Error::Privilege(_),
            ) => Kind::Unsupported,
            Error::Cgroup(_)
            | Error::Sys { .. }
            | Error::Io { .. }
            | Error::Setup(_)
            | Error::System(_) => Kind::System,
            Error::Exec { .. } => Kind::Exec,
            Error::Reported { kind, .. } => *kind,
        }
    }

    pub fn not_found(what: &'static str, name: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::NotFound {
            what,
            name: name.into(),
            hint: hint.into(),
        }
    }

    pub fn conflict(what: &'static str, name: impl Into<String>, why: impl Into<String>) -> Self {
        Error::Conflict {
            what,
            name: name.into(),
            why: why.into(),
        }
    }

    pub(crate) fn corrupt(path: &std::path::Path) -> impl FnOnce(serde_json::Error) -> Self + '_ {
        move |source| Error::Corrupt {
            path: path.to_owned(),
            source,
        }
    }

    /// The process exit code docker would use for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exec { code, .. } | Error::Reported { code, .. } => *code,
            _ => EXIT_RUNTIME,
        }
    }

    /// A value the user gave that does not parse or fit: the plain
    /// layer's error, whichever layer found it.
    pub fn invalid(
        what: &'static str,
        value: impl Into<String>,
        expected: impl Into<String>,
    ) -> Self {
        Error::Spec(spec::Error::invalid(what, value, expected))
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

/// What to do about a damaged file, by what the file is.
fn repair(path: &std::path::Path) -> String {
    let dir = path
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match path.file_name().and_then(|n| n.to_str()) {
        Some("state.json") => format!(
            "`mydocker rm -f {dir}` removes that container and what it left (no other container is affected)"
        ),
        Some("leases.json") | Some("network.json") => format!(
            "remove the containers on network {dir} (`mydocker rm -f`), then `mydocker network rm {dir}` and create it again (no other network is affected)"
        ),
        _ => format!("restore or remove {}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_keeps_its_words_and_docker_exit_code() {
        let missing = Error::not_found("container", "web", "no such container");
        assert_eq!(missing.kind(), Kind::NotFound);
        assert_eq!(
            missing.to_string(),
            "invalid container \"web\": no such container"
        );
        let busy = Error::conflict("container", "web", "it is not running");
        assert_eq!(busy.kind(), Kind::Conflict);
        let damaged = Error::corrupt(std::path::Path::new("/x/state.json"))(
            serde_json::from_str::<u8>("{").unwrap_err(),
        );
        assert_eq!(damaged.kind(), Kind::Corrupt);
        assert!(damaged
            .to_string()
            .starts_with("/x/state.json is damaged: "));
        assert!(
            damaged.to_string().ends_with("`mydocker rm -f x` removes that container and what it left (no other container is affected)"),
            "{damaged}"
        );
        // The cause stays reachable as the source, not only as words.
        assert!(std::error::Error::source(&damaged).is_some());
        assert_eq!(Error::invalid("--memory", "x", "y").kind(), Kind::Input);
        let lacking = Error::from(spec::Error::Unsupported {
            field: "linux.sysctl".into(),
            why: "not yet".into(),
        });
        assert_eq!(lacking.kind(), Kind::Unsupported);
        let refused = Error::from(cgroups::Error::Privilege("not delegated".into()));
        assert_eq!(refused.kind(), Kind::Unsupported);
        for e in [missing, busy, damaged] {
            assert_eq!(e.exit_code(), EXIT_RUNTIME);
        }
    }
}
