//! The error of one step of setting up the container from inside it: what
//! failed, in words for the user, and the exit code init reports. Every
//! mechanism init drives (rootfs, masks, capabilities, seccomp) returns it,
//! so it sits below all of them and below init.

use nix::errno::Errno;

use crate::error::EXIT_RUNTIME;

/// Why init could not reach `execve`, with the exit code to report.
#[derive(Debug)]
pub struct Failure {
    pub exit_code: i32,
    pub message: String,
    /// The kernel lacks what this step needs (not a fault of the spec or
    /// the image): the runtime reports it as [`crate::Error::KernelLacks`].
    pub kernel_lacks: bool,
}

impl Failure {
    /// A setup failure (exit 125) with this message.
    pub fn runtime(message: impl Into<String>) -> Failure {
        Failure {
            exit_code: EXIT_RUNTIME,
            message: message.into(),
            kernel_lacks: false,
        }
    }

    /// An exit with nothing to report: the launcher went away, and there is
    /// nobody to tell (init::main sends no report for an empty message).
    pub fn quiet() -> Failure {
        Failure::runtime(String::new())
    }

    pub fn sys(context: impl Into<String>) -> impl FnOnce(Errno) -> Failure {
        let context = context.into();
        move |errno| Failure {
            exit_code: EXIT_RUNTIME,
            message: format!("{context}: {}", errno.desc()),
            kernel_lacks: false,
        }
    }

    /// A setup failure (exit 125) because the kernel lacks a feature.
    pub fn kernel_lacks(message: impl Into<String>) -> Failure {
        Failure {
            exit_code: EXIT_RUNTIME,
            message: message.into(),
            kernel_lacks: true,
        }
    }

    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Failure {
        let context = context.into();
        move |e| Failure {
            exit_code: EXIT_RUNTIME,
            message: format!("{context}: {e}"),
            kernel_lacks: false,
        }
    }
}
