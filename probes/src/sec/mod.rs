//! Confinement probes: capabilities, masked `/proc`, no_new_privs, seccomp.

pub mod sec_caps;
pub mod sec_no_new_privs;
pub mod sec_proc_masked;
pub mod sec_seccomp;
