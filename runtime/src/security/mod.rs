//! Confinement beyond namespaces: which capabilities, masks, no_new_privs and
//! seccomp a container gets, and the flags that change them.
//!
//! The defaults are docker's. Each part is applied by init in its own module:
//! [`caps`] (capability sets), [`paths`] (masked and read-only paths, the
//! read-only rootfs) and [`seccomp`] (the syscall filter).

pub mod caps;
pub mod paths;
pub mod seccomp;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::init::Failure;

/// How a container is confined, beyond its namespaces and cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Security {
    /// Capabilities the container keeps, as a mask (bit N is capability N).
    pub capabilities: u64,
    /// Cover the sensitive `/proc` and `/sys` paths, make `/proc/sys` and the
    /// like read-only.
    pub mask_paths: bool,
    /// Set `no_new_privs`, so that no exec (setuid, file capabilities) can
    /// gain privileges.
    pub no_new_privileges: bool,
    /// Install the default seccomp filter.
    pub seccomp: bool,
    /// Mount the rootfs read-only, with tmpfs on `/tmp` and `/run` (`--read-only`).
    pub read_only_rootfs: bool,
}

impl Default for Security {
    fn default() -> Self {
        Security {
            capabilities: caps::DEFAULT,
            mask_paths: true,
            no_new_privileges: true,
            seccomp: true,
            read_only_rootfs: false,
        }
    }
}

impl Security {
    /// `--privileged`: every capability, nothing masked, no seccomp filter.
    /// `no_new_privs` stays as it was: it takes nothing a privileged
    /// container needs, and it has its own switch.
    pub fn privileged(self) -> Security {
        Security {
            capabilities: caps::ALL,
            mask_paths: false,
            seccomp: false,
            ..self
        }
    }

    /// Applies one `--security-opt` value: `no-new-privileges[=true|false]`
    /// or `seccomp=unconfined|default` (docker also spells the separator `:`).
    pub fn apply_option(&mut self, text: &str) -> Result<()> {
        let (key, value) = match text.split_once(['=', ':']) {
            Some((key, value)) => (key, Some(value)),
            None => (text, None),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => self.no_new_privileges = true,
            ("no-new-privileges", Some("false")) => self.no_new_privileges = false,
            ("no-new-privileges", Some(other)) => {
                return Err(Error::invalid(
                    "--security-opt no-new-privileges",
                    other,
                    "expected true or false",
                ))
            }
            ("seccomp", Some("unconfined")) => self.seccomp = false,
            ("seccomp", Some("default")) => self.seccomp = true,
            ("seccomp", Some(profile)) => {
                return Err(Error::invalid(
                    "--security-opt seccomp",
                    profile,
                    "expected unconfined or default (profile files are not supported)",
                ))
            }
            _ => {
                return Err(Error::invalid(
                    "--security-opt",
                    text,
                    "expected no-new-privileges[=true|false] or seccomp=unconfined|default",
                ))
            }
        }
        Ok(())
    }
}

/// Applies the process-wide parts of `security` to init, just before exec:
/// capabilities, then `no_new_privs`, then the seccomp filter, last.
///
/// The filter is built first, while nothing is dropped yet. Without
/// `no_new_privs`, the kernel lets only a holder of CAP_SYS_ADMIN install a
/// filter, so in that case it goes in before the capabilities are reduced
/// (runc orders it the same way).
pub fn confine(security: &Security) -> std::result::Result<(), Failure> {
    let filters = if security.seccomp {
        seccomp::filters(security.capabilities)?
    } else {
        Vec::new()
    };
    if !security.no_new_privileges {
        seccomp::install(&filters)?;
    }
    caps::reduce_to(security.capabilities)?;
    if security.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(Failure::sys("set no_new_privs"))?;
        seccomp::install(&filters)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_options_follow_docker() {
        let mut security = Security::default();
        security.apply_option("no-new-privileges=false").unwrap();
        assert!(!security.no_new_privileges);
        security.apply_option("no-new-privileges").unwrap();
        assert!(security.no_new_privileges);
        security.apply_option("no-new-privileges:false").unwrap();
        assert!(!security.no_new_privileges);
        security.apply_option("seccomp=unconfined").unwrap();
        assert!(!security.seccomp);
    }

    #[test]
    fn unknown_security_options_are_refused_by_name() {
        let mut security = Security::default();
        for bad in [
            "apparmor=unconfined",
            "no-new-privileges=maybe",
            "seccomp=/etc/profile.json",
        ] {
            let message = security.apply_option(bad).unwrap_err().to_string();
            let value = bad.split_once(['=', ':']).unwrap().1;
            assert!(message.contains(value), "{message}");
        }
        assert_eq!(security, Security::default());
    }

    #[test]
    fn privileged_lifts_everything_but_no_new_privs() {
        let privileged = Security::default().privileged();
        assert_eq!(privileged.capabilities, caps::ALL);
        assert!(!privileged.mask_paths && !privileged.seccomp);
        assert!(privileged.no_new_privileges);
    }
}
