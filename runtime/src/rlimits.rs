//! Applies a container's resource limits (`setrlimit`) to the process about
//! to exec its command: init, or a command `exec` starts. See `spec::rlimit`
//! for what the limits are.

use crate::setup::Failure;
use crate::spec::rlimit::Rlimit;

/// Sets each limit on this process. Call it while CAP_SYS_RESOURCE is still
/// held: raising a hard limit above the current one needs it.
pub fn apply(limits: &[Rlimit]) -> Result<(), Failure> {
    for limit in limits {
        let value = libc::rlimit {
            rlim_cur: limit.soft,
            rlim_max: limit.hard,
        };
        // SAFETY: setrlimit reads one rlimit struct that outlives the call.
        let rc = unsafe { libc::setrlimit(limit.resource.number() as _, &value) };
        if rc != 0 {
            let errno = nix::errno::Errno::last();
            let show = |v: u64| {
                if v == u64::MAX {
                    "unlimited".to_owned()
                } else {
                    v.to_string()
                }
            };
            return Err(Failure::runtime(format!(
                "set the {} limit to {}:{}: {}{}",
                limit.resource.name(),
                show(limit.soft),
                show(limit.hard),
                errno.desc(),
                if errno == nix::errno::Errno::EPERM {
                    " (above what the kernel allows, such as fs.nr_open for nofile)"
                } else {
                    ""
                }
            )));
        }
    }
    Ok(())
}
