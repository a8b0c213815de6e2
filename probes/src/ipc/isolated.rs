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

use crate::prelude::*;

pub static PROBE: Probe = Probe {
    id: "ipc.isolated",
    property: "System V IPC objects are not shared with the host",
    needs: Needs::config(&["IPC_NS"]),
    mutations: &[Mutation::SkipIpcNamespace],
    why_no_mutation: None,
    selftests: &[],
    run,
    inside,
};

/// The helper's report: the key of every shared memory segment its IPC
/// namespace holds, as `/proc/sysvipc/shm` lists them.
#[derive(Debug, Serialize, Deserialize)]
struct ShmKeys(Vec<i32>);

fn run(lab: &Lab) -> Result<Finding, LabError> {
    let key = 0x4d44_0000 | (std::process::id() as i32 & 0xffff);
    // SAFETY: shmget creates a segment and returns its id; no memory is mapped.
    let id = unsafe { libc::shmget(key, 4096, libc::IPC_CREAT | libc::IPC_EXCL | 0o600) };
    if id < 0 {
        Err(std::io::Error::last_os_error()).or_broken("shmget")?;
    }
    let result = compare(lab, key);
    // SAFETY: removes the segment we created; a null buffer is allowed for IPC_RMID.
    unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) };
    result
}

/// Lists the segments with and without an IPC namespace, and judges
/// whether the host's segment `key` showed up inside.
fn compare(lab: &Lab, key: i32) -> Result<Finding, LabError> {
    let ShmKeys(keys) = lab.report(lab.spec(&()), Role::Isolated)?;
    let mut spec = lab.spec(&());
    spec.namespaces.ipc = false;
    let ShmKeys(control_keys) = lab.report(spec, Role::Control)?;
    Ok(Judgement {
        evidence: evidence![
            "host segment key" => key,
            "keys in the container's /proc/sysvipc/shm" => format!("{keys:?}"),
        ],
        control: evidence!["keys without CLONE_NEWIPC" => format!("{control_keys:?}")],
        control_separated: control_keys.contains(&key),
        property: Property::held_if(
            !keys.contains(&key),
            format!("the host's segment {key} was listed in the container"),
        ),
    }
    .finding())
}

/// Inside: reports the keys in `/proc/sysvipc/shm` (a header line, then
/// one segment a line, its key first).
fn inside(helper: &mut Helper) -> anyhow::Result<()> {
    let table = std::fs::read_to_string("/proc/sysvipc/shm").context("read /proc/sysvipc/shm")?;
    let keys = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(|k| k.parse().with_context(|| format!("a segment key {k:?}")))
        .collect::<anyhow::Result<_>>()?;
    helper.say(&ShmKeys(keys))
}
