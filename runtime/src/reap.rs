//! Finishing the teardown of containers whose runtime was killed.
//!
//! mydocker has no daemon: the process that starts a container (`mydocker
//! run`, or the monitor of `run -d`) waits for it and tears it down. Kill
//! that process with SIGKILL and nothing tears down: init dies with it
//! (its parent-death signal), but the cgroups, the veth, the NAT rules and
//! the record saying "running" stay. Like podman's cleanup, every later
//! command that reads the store finds such containers (nothing of theirs
//! alive, the record never marked exited) and finishes the job, and
//! finishes a network create or remove that was killed half-way.

use crate::error::Result;
use crate::network;
use crate::store::{self, Record, Status, Store};

/// Whether `record` lost both its process and its monitor before its
/// teardown ran. An OCI container has no monitor: its init may end long
/// before `delete`, which is what tears it down.
///
/// Only judged where the judgement holds: in the pid namespace the record
/// was made in (elsewhere every pid looks dead, and a live container would
/// be torn down), with both start times known, and for a record whose id
/// and cgroups are the runtime's own shape (a record is only a file; this
/// runs on every command).
pub fn is_orphan(record: &Record) -> bool {
    let own_shape = record.id.len() == 64
        && record.id.bytes().all(|b| b.is_ascii_hexdigit())
        && record.cgroups.iter().all(|dir| {
            dir.starts_with(crate::cgroup::CGROUP_ROOT)
                && dir.file_name().is_some_and(|n| n == record.id.as_str())
        });
    // Cheapest first: most records say exited, and cost no system call.
    matches!(record.status, Status::Running | Status::Created)
        && record.bundle.is_none()
        && own_shape
        && record.pid_ns != 0
        && record.monitor_start != 0
        && record.pid_ns == store::own_pid_namespace()
        && !store::process_is(record.pid, record.pid_start)
        && !record.monitor_alive()
}

/// Finishes the teardown of every orphan in `store` and returns their ids.
/// Each that ran is marked exited with an unknown exit code and kept, as
/// docker keeps an exited container, unless it was started with `--rm`.
/// One that cannot be finished does not stop the others; the first such
/// error is returned after them all.
pub fn orphans(store: &Store) -> Result<Vec<String>> {
    let mut reaped = Vec::new();
    let mut first_error = store.finish_interrupted().err();
    for record in store.list()?.into_iter().filter(is_orphan) {
        let id = record.id.clone();
        match finish(store, record) {
            Ok(true) => reaped.push(id),
            Ok(false) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(reaped),
    }
}

/// Finishes every network create or remove a killed command left half
/// done (see `Networks::finish_interrupted`); returns their names.
pub fn networks(store: &Store) -> Result<Vec<String>> {
    network::Networks::new(store.root()).finish_interrupted(store)
}

/// One orphan's teardown, as `launch::supervise` would have done it.
fn finish(store: &Store, record: Record) -> Result<bool> {
    let _lock = store.lock()?;
    // Another command may have reaped or removed it meanwhile.
    let Ok(mut record) = store.load(&record.id) else {
        return Ok(false);
    };
    if !is_orphan(&record) {
        return Ok(false);
    }
    // A launcher killed before it recorded its cgroups made them all the
    // same: they are found by the container's id.
    let mut cgroups = record.cgroups.clone();
    if cgroups.is_empty() {
        cgroups = crate::cgroup::named(&record.id);
    }
    // Whatever still runs in them (a child that outlived init without a
    // pid namespace, say) is killed there.
    let removed = crate::cgroup::remove_recorded(&cgroups);
    crate::cgroup::remove_made_parents(&record.cgroup_parents);
    let endpoint = record.endpoint.clone();
    if endpoint.is_some() {
        network::detach(&record.id);
    }
    // As the monitor would: one that never ran its command, or asked for
    // --rm, leaves nothing; any other keeps its record until `rm`.
    if record.auto_remove || record.status == Status::Created {
        let _ = network::forget(store.root(), store, &record.id, endpoint.as_ref());
        // Its anonymous volumes go too (this holds the store's lock).
        let _ =
            crate::volume::Volumes::new(store.root()).remove_anonymous_of_locked(store, &record);
        if endpoint.is_none() && record.status == Status::Created {
            // Killed between taking an address and recording it: the lease
            // names the container, and only the lease does.
            let _ = network::forget_everywhere(store.root(), &record.id);
        }
        store.remove_dir(&record.id, record.userns)?;
    } else {
        record.status = Status::Exited;
        record.exit_code = None;
        record.finished = Some(store::now());
        match store.write(&record) {
            // Removed by an `rm` that did not wait for the lock.
            Err(_) if !store.container_dir(&record.id).exists() => {}
            other => other?,
        }
        if endpoint.is_some_and(|e| !e.publish.is_empty()) {
            let _ = network::sync(&store.root().join("networks"), store);
        }
    }
    removed.map_err(crate::error::Error::from)?;
    Ok(true)
}
