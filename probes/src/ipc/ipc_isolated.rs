//! # `ipc.isolated`: System V IPC objects are not shared with the host
//!
//! **The feature.** System V shared memory segments, semaphores and message
//! queues are found by a numeric key, machine-wide, by anyone with the
//! permissions: a classic channel between processes that share nothing else.
//! `clone(CLONE_NEWIPC)` gives the child its own, empty, set of IPC objects
//! (and its own POSIX message queue filesystem).
//!
//! **How the probe looks.** The probe creates a shared memory segment with a
//! unique key on the host side (in its throwaway IPC namespace). The helper
//! lists the keys in `/proc/sysvipc/shm`, which shows the segments of the
//! reading process's IPC namespace.
//!
//! **The control.** The same helper without `CLONE_NEWIPC` lists the key.
//!
//! **Verdict.** Pass when the key is absent inside.

use crate::lab::{Lab, LabError, Role};
use crate::verdict::{Evidence, Finding, Judgement, Property};

pub fn run(lab: &Lab) -> Result<Finding, LabError> {
    let key = 0x4d44_0000 | (std::process::id() as i32 & 0xffff);
    // SAFETY: shmget creates a segment and returns its id; no memory is mapped.
    let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    if id < 0 {
        return Err(LabError::Broken(format!(
            "shmget: {}",
            std::io::Error::last_os_error()
        )));
    }
    let result = compare(lab, key);
    // SAFETY: removes the segment we created; a null buffer is allowed for IPC_RMID.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    result
}

fn compare(lab: &Lab, key: i32) -> Result<Finding, LabError> {
    let listed = |spec: runtime::Spec, role: Role| -> Result<(bool, String), LabError> {
        let keys = lab.report(spec, role, "shm_keys")?;
        Ok((keys.split(',').any(|k| k == key.to_string()), keys))
    };
    let (inside, keys) = listed(lab.spec(&["ipc-list"]), Role::Isolated)?;
    let mut spec = lab.spec(&["ipc-list"]);
    spec.namespaces.ipc = false;
    let (control_listed, control_keys) = listed(spec, Role::Control)?;
    let mut evidence = Evidence::new();
    evidence.saw("host segment key", key).saw(
        "keys in the container's /proc/sysvipc/shm",
        if keys.is_empty() { "(none)" } else { &keys },
    );
    let mut control = Evidence::new();
    control.saw("keys without CLONE_NEWIPC", &control_keys);
    Ok(Judgement {
        evidence,
        control,
        control_separated: control_listed,
        property: Property::held_if(
            !inside,
            format!("the host's segment {key} was listed in the container"),
        ),
    }
    .finding())
}
