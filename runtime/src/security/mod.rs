//! Confinement beyond namespaces: which capabilities, masks, no_new_privs and
//! seccomp a container gets, and the flags that change them.
//!
//! The defaults are docker's. Each part is applied by init in its own module:
//! [`caps`] (capability sets), [`paths`] (masked and read-only paths, the
//! read-only rootfs) and [`seccomp`] (the syscall filter).

pub mod caps;
pub mod paths;
pub mod seccomp;

use crate::setup::Failure;
pub use crate::spec::security::Security;

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
