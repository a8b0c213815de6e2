//! Confinement beyond namespaces: which capabilities, masks, no_new_privs and
//! seccomp a container gets, and the flags that change them.
//!
//! The defaults are docker's. Each part is applied by init in its own module:
//! [`caps`] (capability sets), [`paths`] (masked and read-only paths, the
//! read-only rootfs) and [`seccomp`] (the syscall filter).

pub mod caps;
pub mod paths;
pub mod profile;
pub mod seccomp;

use crate::setup::Failure;
use crate::spec::security::CapabilitySets;
pub use crate::spec::security::Security;
use crate::spec::{OciParts, User};
use crate::syscall::Syscall;

/// Applies the process-wide parts of `security` to init, just before exec:
/// capabilities, then `no_new_privs`, then the seccomp filter, last.
///
/// The filter is built first, while nothing is dropped yet. Without
/// `no_new_privs`, the kernel lets only a holder of CAP_SYS_ADMIN install a
/// filter, so in that case it goes in before the capabilities are reduced
/// (runc orders it the same way).
///
/// An OCI configuration (`oci`) brings its own five capability sets, user
/// and seccomp profile in place of docker's mask and filter.
pub fn confine(
    sys: &impl Syscall,
    security: &Security,
    user: &User,
    oci: Option<&OciParts>,
) -> std::result::Result<(), Failure> {
    let filters = match oci {
        Some(parts) => match &parts.seccomp {
            Some(profile) => profile::compile(profile)?,
            None => Vec::new(),
        },
        None if security.seccomp => seccomp::filters(security.capabilities)?,
        None => Vec::new(),
    };
    let (sets, user) = match oci {
        Some(parts) => (parts.capabilities, parts.user.clone()),
        None => (CapabilitySets::docker(security.capabilities), user.clone()),
    };
    if !security.no_new_privileges {
        sys.install_seccomp(&filters)?;
    }
    sys.reduce_capabilities(sets, &user)?;
    if security.no_new_privileges {
        sys.set_no_new_privs()?;
        sys.install_seccomp(&filters)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscall::record::{Call, Recorder};

    #[test]
    fn with_no_new_privs_capabilities_drop_before_the_filter_goes_in() {
        let sys = Recorder::default();
        confine(&sys, &Security::default(), &User::default(), None).unwrap();
        assert_eq!(
            sys.calls(),
            [
                Call::ReduceCapabilities(CapabilitySets::docker(caps::DEFAULT)),
                Call::SetNoNewPrivs,
                Call::InstallSeccomp(1),
            ]
        );
    }

    #[test]
    fn without_no_new_privs_the_filter_goes_in_while_cap_sys_admin_is_held() {
        let sys = Recorder::default();
        let mut security = Security::default();
        security.apply_option("no-new-privileges=false").unwrap();
        confine(&sys, &security, &User::default(), None).unwrap();
        assert_eq!(
            sys.calls(),
            [
                Call::InstallSeccomp(1),
                Call::ReduceCapabilities(CapabilitySets::docker(caps::DEFAULT)),
            ],
            "the kernel refuses a filter from a process without CAP_SYS_ADMIN or no_new_privs"
        );
    }

    #[test]
    fn a_failed_step_ends_confinement_there() {
        let sys = Recorder {
            fail_at: Some(|call| matches!(call, Call::ReduceCapabilities(_))),
            ..Recorder::default()
        };
        let failure = confine(&sys, &Security::default(), &User::default(), None).unwrap_err();
        assert_eq!(failure.exit_code, crate::error::EXIT_RUNTIME);
        assert_eq!(
            sys.calls(),
            [Call::ReduceCapabilities(CapabilitySets::docker(
                caps::DEFAULT
            ))]
        );
    }

    #[test]
    fn unconfined_seccomp_installs_no_program() {
        let sys = Recorder::default();
        let mut security = Security::default();
        security.apply_option("seccomp=unconfined").unwrap();
        confine(&sys, &security, &User::default(), None).unwrap();
        assert!(sys.calls().contains(&Call::InstallSeccomp(0)));
        assert!(sys.calls().contains(&Call::SetNoNewPrivs));
    }

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
