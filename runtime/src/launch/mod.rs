//! Launch: the parent side of a container's life, in three steps, one file
//! each. [`prepare`] makes everything init needs, under one rollback guard;
//! [`clone`] creates init in its namespaces and releases it; [`supervise`]
//! sees it to its end and tears everything down.

mod clone;
mod prepare;
mod supervise;

use std::path::{Path, PathBuf};

pub use self::prepare::{Stdio, START_FIFO};
pub use self::supervise::{Container, Outcome};

use crate::error::{Error, Result};
use crate::spec::{Fault, Spec};
use crate::timeline::{Phase, Timeline};

/// Creates and starts a container from `spec`, keeping its state under `state_root`.
///
/// Returns once init has been released; [`Container::wait`] learns whether the
/// exec succeeded and supervises it to the end. Call it from a single-threaded
/// process: the child runs Rust code (and allocates) between clone and exec,
/// which is only safe when no other thread can hold a lock at clone time.
pub fn launch(spec: &Spec, state_root: &Path) -> Result<Container> {
    launch_with(spec, state_root, Stdio::default())
}

/// [`launch`] with the container's stdio connected to the given descriptors.
pub fn launch_with(spec: &Spec, state_root: &Path, stdio: Stdio) -> Result<Container> {
    launch_inner(spec, state_root, stdio, None)
}

/// Starts an exited container again from the spec it was run with: the
/// same id, name, upper layer, log and address. `record` is its record as
/// [`crate::store::Store::claim_restart`] left it. A failure leaves it
/// exited, as it was.
pub fn relaunch_with(
    spec: &Spec,
    state_root: &Path,
    stdio: Stdio,
    record: crate::store::Record,
) -> Result<Container> {
    launch_inner(spec, state_root, stdio, Some(record))
}

fn launch_inner(
    spec: &Spec,
    state_root: &Path,
    stdio: Stdio,
    again: Option<crate::store::Record>,
) -> Result<Container> {
    let mut timeline = Timeline::start();
    // Block the signals we forward (and SIGCHLD) before anything exists
    // that a Ctrl-C could strand: none kills us halfway, none is lost
    // between clone and the signalfd (init unblocks them). Declared first,
    // the guard is dropped last, after any rollback, and restores the
    // caller's mask on every path out.
    let signals = supervise::BlockedSignals::block()?;
    let restarted = again.is_some();
    let logged = stdio.log;
    let prepare::Prepared {
        mut rollback,
        mut config,
        stdio,
        start_fifo,
        network,
        merged,
        rootless,
        mode,
    } = prepare::prepare(spec, state_root, stdio, &mut timeline, again)?;
    let cgroup = rollback.cgroup.as_ref().expect("prepared");
    config.join_cgroup = cgroup.self_join_files();
    let (parent_end, child_end) =
        crate::channel::pair().map_err(Error::sys("create the launch channel"))?;
    // On v2, init is born in its cgroup; v1 init joins by itself. Not with
    // a cpuset: a task born into a cpuset cgroup by CLONE_INTO_CGROUP kept
    // its parent's CPUs until cpuset_fork learned that flag (Linux 6.3, and
    // some stable series; Debian's 5.10 pins nothing that way), while a task
    // moved in gets the cgroup's CPUs on every kernel.
    let pins = spec.limits.cpuset_cpus.is_some() || spec.limits.cpuset_mems.is_some();
    let born_in = cgroup.dirs().first().filter(|_| mode.is_v2() && !pins);
    let user_ns = rollback.record.userns;
    let (pid, in_cgroup) = clone::clone_init(
        spec,
        user_ns.is_some(),
        born_in.map(PathBuf::as_path),
        &parent_end,
        &child_end,
    )?;
    rollback.init = Some(pid);
    // Init waits for its release, so it cannot act before it has ids.
    match spec.oci.as_deref().filter(|p| !p.uid_mappings.is_empty()) {
        Some(parts) => {
            crate::userns::write_mappings(pid.as_raw(), &parts.uid_mappings, &parts.gid_mappings)?
        }
        None => {
            if let Some(map) = user_ns {
                crate::userns::write_maps(pid.as_raw(), map, rootless)?;
            }
        }
    }
    // The child holds its own copies of the channel's end and of stdio now.
    drop((child_end, stdio, start_fifo));
    timeline.lap(Phase::Clone);
    // From here on, dropping `container` tears down what the guard held.
    let (store, record, cgroup, pid) = rollback.hand_over();
    let endpoint = record.endpoint.clone();
    let mut container = Container::new(supervise::Parts {
        store,
        record,
        cgroup,
        pid,
        channel: parent_end,
        signals,
        merged,
        tty: spec.tty,
        interactive: spec.interactive,
        hand_out_pty: spec.wait_for_start,
        timeline,
        log: logged,
        restarted,
    });
    if config.join_cgroup.is_empty() && !in_cgroup {
        container.cgroup().attach(pid)?;
    }
    container.timeline().lap(Phase::Cgroup);
    if let Some((net, endpoint)) = network
        .as_ref()
        .filter(|_| !spec.faults.has(Fault::SkipNetworkAttach))
    {
        crate::network::attach(net, endpoint, pid.as_raw(), &container.id)?;
    }
    container.timeline().lap(Phase::Network);
    // Released before its record is rewritten: init's mounts and the record
    // write (an ext4 rename) then overlap. The timeline charges the write to
    // init's phase, which it runs beside.
    clone::release(container.channel(), &config)?;
    container.record_started(spec.wait_for_start)?;
    // The NAT rules are made from the records of running containers, this
    // one's included, so they follow its write.
    if endpoint.is_some_and(|e| !e.publish.is_empty()) {
        crate::network::sync(&state_root.join("networks"), container.store())?;
    }
    Ok(container)
}

/// Runs `spec` in the foreground to completion: launch, wait, tear down.
pub fn run(spec: &Spec, state_root: &Path) -> Result<Outcome> {
    launch(spec, state_root)?.wait()
}
