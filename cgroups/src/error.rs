//! The cgroup layer's error: which cgroup, what was attempted, and why it
//! failed, phrased for the user. The runtime wraps it unchanged.

/// Why a cgroup could not be created, limited, joined or removed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A requested limit needs a cgroup controller this host does not offer.
    #[error("{flag} needs the {controller} cgroup controller, which this host does not provide ({mode})")]
    MissingController {
        flag: &'static str,
        controller: &'static str,
        mode: String,
    },
    /// A cgroup operation failed.
    #[error("cgroup {path}: {action}: {cause}")]
    Cgroup {
        path: String,
        action: String,
        cause: String,
    },
    /// The caller may not create or write the cgroups it needs.
    #[error("{0}")]
    Privilege(String),
    /// A system call failed.
    #[error("{context}: {source}")]
    Sys {
        context: String,
        #[source]
        source: nix::Error,
    },
}

impl Error {
    pub(crate) fn sys(context: impl Into<String>) -> impl FnOnce(nix::Error) -> Self {
        let context = context.into();
        move |source| Error::Sys { context, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
