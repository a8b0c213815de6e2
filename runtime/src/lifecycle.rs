//! Operating on existing containers: stop, kill, pause, wait, remove, logs,
//! and the `ps` view. Every decision starts from the kernel's view of liveness.

use std::io::{Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::{Error, Result};
use crate::store::{self, Record, Status, Store};

/// How long `rm` waits for a monitor to finish its own teardown.
const MONITOR_GRACE: Duration = Duration::from_secs(5);

/// Parses a signal given as `KILL`, `SIGKILL` or `9`.
pub fn parse_signal(text: &str) -> Result<Signal> {
    let by_number = text
        .parse::<i32>()
        .ok()
        .and_then(|n| Signal::try_from(n).ok());
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    by_number.or_else(|| name.parse().ok()).ok_or_else(|| {
        Error::invalid(
            "signal",
            text,
            "expected a name such as TERM or SIGKILL, or a number such as 9",
        )
    })
}

/// Sends `signal` to the container's init, if it runs. A paused container
/// is thawed after SIGKILL, which a frozen v1 task would otherwise hold
/// until someone thawed it; other signals wait for `unpause`, as under docker.
///
/// As under docker, a kill ends the restart policy's care (the container
/// stays exited) when it is SIGKILL or the container's stop signal, or any
/// signal for a container without `--stop-signal`; for `unless-stopped`,
/// any signal does.
pub fn kill_container(store: &Store, query: &str, signal: Signal) -> Result<Record> {
    let record = store.resolve(query)?;
    let ends_it = match record.stop_signal.as_deref().map(parse_signal) {
        _ if signal == Signal::SIGKILL => true,
        Some(Ok(stop_signal)) => stop_signal == signal,
        _ => true,
    };
    let ends_care = record.bundle.is_none()
        && (ends_it || record.restart == crate::spec::restart::RestartPolicy::UnlessStopped);
    // Between two runs there is nothing to signal; as under docker, the
    // kill succeeds, and ends the policy's care if it would a run's.
    if record.is_restarting() {
        if !ends_care {
            return Ok(record);
        }
        store.request_stop(&record.id, store::StopRequest::Stop);
        return end(store, record, None, None);
    }
    if record.live_status() != Status::Running {
        return Err(Error::conflict("container", query, "it is not running"));
    }
    if ends_care {
        store.request_stop(&record.id, store::StopRequest::Stop);
    }
    match kill(Pid::from_raw(record.pid), signal) {
        // It exited since it was read: its policy ends all the same.
        Err(nix::errno::Errno::ESRCH) if ends_care && !record.restart.is_no() => {
            return end(store, record, None, None)
        }
        other => other.map_err(Error::sys(format!("send {signal} to {}", record.name)))?,
    }
    if signal == Signal::SIGKILL {
        thaw(&record);
        // A monitor whose policy the kill ended is let go before we
        // return, as docker's kill returns once the container is down: an
        // `rm` that follows finds it exited, not restarting.
        if ends_care && !record.restart.is_no() {
            wait_gone(&record, Duration::from_secs(10));
            wait_for_monitor(&record, RESTART_GRACE);
        }
    }
    Ok(record)
}

/// Freezes every process of a running container (`pause`), or thaws a
/// paused one (`unpause`), and returns once the kernel reports it done.
pub fn set_paused(store: &Store, query: &str, paused: bool) -> Result<Record> {
    let record = store.resolve(query)?;
    if record.live_status() != Status::Running {
        return Err(Error::conflict("container", query, "it is not running"));
    }
    match (paused, is_paused(&record)) {
        (true, true) => Err(Error::conflict("container", query, "it is already paused")),
        (false, false) => Err(Error::conflict("container", query, "it is not paused")),
        _ => {
            crate::cgroup::set_frozen(&record.cgroups, paused)?;
            Ok(record)
        }
    }
}

/// Changes a container's limits (`update`). `change` edits a copy of
/// them, which is checked as `run` checks its own, then written into the
/// cgroup of a running container and kept in its record (a stopped one
/// only keeps them). Under the store's lock, so that two updates cannot
/// interleave and the monitor's exit write keeps what was changed.
pub fn update(
    store: &Store,
    query: &str,
    change: impl FnOnce(&mut crate::spec::Limits) -> Result<()>,
) -> Result<Record> {
    let _lock = store.lock()?;
    let mut record = store.resolve(query)?;
    if record.bundle.is_some() {
        return Err(Error::conflict(
            "container",
            query,
            "it is an OCI container: its limits are its OCI runtime's to change",
        ));
    }
    // Until its monitor has recorded it started, the monitor writes the
    // record without the lock (as for `rename`). One that its policy is
    // starting again gets its cgroup, with the limits of the moment,
    // outside the lock too.
    if record.status == Status::Created && record.monitor_alive() {
        return Err(Error::conflict(
            "container",
            query,
            "it is still starting: try again in a moment",
        ));
    }
    if record.is_restarting() {
        return Err(Error::conflict(
            "container",
            query,
            "it is restarting (its restart policy, or `restart`): try again once it runs",
        ));
    }
    let mut limits = record.limits.clone();
    change(&mut limits)?;
    limits.validate(&crate::host::facts()?)?;
    if record.live_status() == Status::Running {
        let mode = crate::cgroup::Mode::detect()?;
        if let Err(e) = crate::cgroup::update_limits(mode, &record.cgroups, &record.limits, &limits)
        {
            // Some limits may be written already: put back what the record
            // says, so that the two still agree (best effort).
            let _ = crate::cgroup::update_limits(mode, &record.cgroups, &limits, &record.limits);
            return Err(e.into());
        }
    }
    record.limits = limits;
    store.write(&record)?;
    Ok(record)
}

/// docker's word for a container's state (`ps --filter status=`,
/// `{{.State}}`, `inspect`'s `State.Status`): `paused` for a running one
/// whose processes are frozen, `restarting` for an exited one that its
/// monitor is about to start again.
pub fn state_word(record: &Record) -> &'static str {
    match record.live_status() {
        Status::Running if is_paused(record) => "paused",
        Status::Running => "running",
        Status::Created => "created",
        Status::Exited if record.is_restarting() => "restarting",
        Status::Exited => "exited",
    }
}

/// Whether a running container's processes are frozen now.
pub fn is_paused(record: &Record) -> bool {
    crate::cgroup::is_frozen(&record.cgroups)
}

/// Thaws a paused container, so that a signal just sent takes effect.
/// Best effort: a container that a SIGKILL ended may have had its cgroup
/// removed by its monitor in the meantime (v2 lets the signal through the
/// freezer), and what follows waits for the exit either way.
fn thaw(record: &Record) {
    if is_paused(record) {
        let _ = crate::cgroup::set_frozen(&record.cgroups, false);
    }
}

/// Blocks until the container has stopped and returns its exit code (`wait`).
///
/// The code is the one its monitor recorded. A container run with `--rm`
/// is removed with its record as it exits, and its code with it: that is
/// said rather than guessed. As under docker, a container that its restart
/// policy starts again has stopped all the same (between two runs, `wait`
/// waits for the next run to end).
pub fn wait(store: &Store, query: &str) -> Result<i32> {
    let record = store.resolve(query)?;
    // The run to wait for: the one under way, or, between two runs by its
    // restart policy (docker counts that as running), the next one.
    let mut run = (!record.is_restarting()).then_some(record.pid);
    let finished = loop {
        let Ok(now) = store.load(&record.id) else {
            break None;
        };
        let live = now.live_status();
        match run {
            // The next run started (and may have ended already: a record
            // keeps the pid of its last run).
            None if now.pid != record.pid => {
                run = Some(now.pid);
                continue;
            }
            // Stopped by hand between runs, or its policy gave up.
            None if !now.is_restarting() => break Some(now),
            None => {}
            // Its monitor started it again already: the record still says
            // how the run we waited for ended.
            Some(pid) if now.pid != pid => break Some(now),
            // Ended, and recorded by its monitor (or the monitor is gone).
            Some(_)
                if live == Status::Exited
                    && (now.status == Status::Exited || !now.monitor_alive()) =>
            {
                break Some(now)
            }
            Some(_) => {}
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let gone = || {
        let why = match record.auto_remove {
            true => "it was removed as it exited (--rm), and its exit code with it",
            false => "it was removed before its exit code could be read",
        };
        Error::conflict("container", query, why)
    };
    let finished = finished.ok_or_else(gone)?;
    finished
        .exit_code
        .ok_or_else(|| match finished.auto_remove {
            true => gone(),
            false => Error::System(format!(
                "container {} stopped, but its monitor died before it recorded the exit code",
                finished.name
            )),
        })
}

/// How long `stop` waits for the first signal to work, unless the
/// container or the caller says otherwise (docker's 10 seconds).
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// The stop signal (SIGTERM unless the container was run with
/// `--stop-signal`, or `signal` is given), then SIGKILL after the grace
/// (`grace`, else the container's `--stop-timeout`, else 10 s) if init is
/// still there; returns once it has exited. An init that ignores SIGTERM (a
/// shell, as PID 1 of its namespace, has no handler for it) is still
/// stopped by the SIGKILL.
pub fn stop(
    store: &Store,
    query: &str,
    grace: Option<Duration>,
    signal: Option<Signal>,
) -> Result<Record> {
    let record = store.resolve(query)?;
    if record.bundle.is_none() {
        store.request_stop(&record.id, store::StopRequest::Stop);
    }
    end(store, record, grace, signal)
}

/// Stops a container as `stop` does, then starts it again under a new
/// monitor from the spec it was run with (`restart`): the same id, name,
/// upper layer, log and address. An exited container is only started.
/// Returns its name.
pub fn restart(
    store: &Store,
    query: &str,
    grace: Option<Duration>,
    signal: Option<Signal>,
) -> Result<String> {
    let record = store.resolve(query)?;
    // Refused before anything is stopped.
    if record.live_status() == Status::Created {
        return Err(Error::conflict(
            "container",
            query,
            "it is still starting: try again in a moment",
        ));
    }
    store.restart_spec(&record)?;
    // Its monitor (or `mydocker run`) must leave it to us, even with --rm.
    store.request_stop(&record.id, store::StopRequest::Restart);
    let record = end(store, record, grace, signal)?;
    if !wait_for_monitor(&record, RESTART_GRACE) {
        return Err(monitor_stays(&record));
    }
    crate::detach::start_again(store.root(), &record.id)?;
    Ok(record.name)
}

/// How long `restart`, and `stop` and `rm` of a container with a restart
/// policy, wait for its monitor to end.
const RESTART_GRACE: Duration = Duration::from_secs(30);

/// `stop`'s work once the restart policy has been told to leave it be.
/// The record is read again after that request: a start by the policy
/// that the request came too late to prevent shows in it.
fn end(
    store: &Store,
    record: Record,
    grace: Option<Duration>,
    signal: Option<Signal>,
) -> Result<Record> {
    let record = store.load(&record.id).unwrap_or(record);
    if record.live_status() != Status::Running {
        // A monitor that is waiting to start it again, or starting it,
        // sees the request and ends (killing a run it just started).
        let starting_again = record.is_restarting() || !record.restart.is_no();
        if starting_again && !wait_for_monitor(&record, RESTART_GRACE) {
            return Err(monitor_stays(&record));
        }
        return Ok(record);
    }
    let grace = grace
        .or(record.stop_timeout.map(Duration::from_secs))
        .unwrap_or(STOP_GRACE);
    let signal = match (signal, &record.stop_signal) {
        (Some(signal), _) => signal,
        (None, Some(name)) => parse_signal(name)?,
        (None, None) => Signal::SIGTERM,
    };
    let _ = kill(Pid::from_raw(record.pid), signal);
    // A paused container is thawed to act on the signal within its grace.
    thaw(&record);
    if !wait_gone(&record, grace) {
        let _ = kill(Pid::from_raw(record.pid), Signal::SIGKILL);
        if !wait_gone(&record, Duration::from_secs(10)) {
            return Err(Error::System(format!(
                "container {} did not exit after SIGKILL",
                record.name
            )));
        }
    }
    let limit = match record.restart.is_no() && !record.restarting {
        true => MONITOR_GRACE,
        false => RESTART_GRACE,
    };
    wait_for_monitor(&record, limit);
    Ok(record)
}

/// The error for a monitor that did not end when asked to leave its
/// container be.
fn monitor_stays(record: &Record) -> Error {
    Error::System(format!(
        "the monitor of container {} (pid {}) did not end within {} s of the request to stop it",
        record.name,
        record.monitor_pid,
        RESTART_GRACE.as_secs()
    ))
}

/// Removes a container: its record, upper layer, log, and any cgroup its
/// monitor could not remove. A running container only with `force`.
///
/// With `volumes` (`rm -v`), its anonymous volumes go too.
pub fn remove(store: &Store, query: &str, force: bool, volumes: bool) -> Result<()> {
    let record = match store.resolve(query) {
        Ok(record) => record,
        Err(not_found @ Error::NotFound { .. }) => {
            return remove_damaged(store, query, force).unwrap_or(Err(not_found))
        }
        Err(e) => return Err(e),
    };
    if record.is_restarting() && !force {
        return Err(Error::conflict(
            "container",
            query,
            "it is restarting (its restart policy): stop it first, or use rm -f",
        ));
    }
    let live = record.live_status();
    // An OCI container's init waiting for start is as alive as a running one.
    if live == Status::Running || (live == Status::Created && record.bundle.is_some()) {
        if !force {
            return Err(Error::conflict(
                "container",
                query,
                "it is running: stop it first, or use rm -f to kill and remove it",
            ));
        }
        // Its monitor must not start it again by its policy.
        if record.bundle.is_none() {
            store.request_stop(&record.id, store::StopRequest::Stop);
        }
        let _ = kill(Pid::from_raw(record.pid), Signal::SIGKILL);
        thaw(&record);
        wait_gone(&record, Duration::from_secs(10));
    }
    if record.live_status() == Status::Created && record.monitor_alive() && !force {
        return Err(Error::conflict(
            "container",
            query,
            "it is still starting: try again, or use rm -f",
        ));
    }
    // A monitor that would start it again by its policy ends instead;
    // one starting it now ends once it has killed that run. Until it has,
    // nothing is removed under it.
    if record.bundle.is_none() {
        store.request_stop(&record.id, store::StopRequest::Stop);
    }
    let starting_again = record.is_restarting() || !record.restart.is_no();
    if starting_again && !wait_for_monitor(&record, RESTART_GRACE) {
        return Err(monitor_stays(&record));
    }
    wait_for_monitor(&record, MONITOR_GRACE);
    // The monitor may have removed it already (--rm), or changed it.
    if !store.container_dir(&record.id).exists() {
        return Ok(());
    }
    let record = store.load(&record.id)?;
    // Running, or an OCI container's init waiting for start.
    if record.live_status() != Status::Exited && record.pid > 0 {
        let _ = kill(Pid::from_raw(record.pid), Signal::SIGKILL);
        wait_gone(&record, Duration::from_secs(10));
    }
    crate::cgroup::remove_recorded(&record.cgroups)?;
    crate::cgroup::remove_made_parents(&record.cgroup_parents);
    if record.endpoint.is_some() {
        crate::network::detach(&record.id);
    }
    // A failure to update the NAT table must not strand the container: it
    // is removed all the same, and the failure reported afterwards.
    let network = crate::network::forget(store.root(), store, &record.id, record.endpoint.as_ref());
    store.remove_dir(&record.id, record.userns)?;
    // The container is gone, as asked; a volume that could not go is
    // said, and left to `volume prune`.
    if volumes {
        let named = crate::volume::Volumes::new(store.root());
        if let Err(e) = named.remove_anonymous_of(store, &record) {
            eprintln!(
                "mydocker: warning: an anonymous volume of {} stays: {e}",
                record.name
            );
        }
    }
    match network {
        // The address stays in a file that must be repaired anyway (the
        // warning says how); the container is gone, as asked.
        Err(damaged @ Error::Corrupt { .. }) => {
            eprintln!("mydocker: warning: {damaged}");
            Ok(())
        }
        other => other,
    }
}

/// `rm` of a container whose record does not parse, named by its id (or
/// 12 digits of it): `None` if no damaged record answers to `query`.
///
/// Without the record, what it recorded is found another way: its cgroups
/// by its id in every hierarchy (their members are killed), its address
/// leases by its id in every network, its user-namespace claim by its
/// directory; the NAT table is rebuilt from the records that remain.
fn remove_damaged(store: &Store, query: &str, force: bool) -> Option<Result<()>> {
    let matching: Vec<(String, Error)> = store
        .damaged()
        .into_iter()
        .filter(|(id, _)| id == query || (query.len() >= 12 && id.starts_with(query)))
        .collect();
    let (id, damage) = match <[_; 1]>::try_from(matching) {
        Ok([one]) => one,
        Err(many) if many.len() > 1 => {
            return Some(Err(Error::invalid(
                "container",
                query,
                format!(
                    "the id prefix matches {} damaged records: give more digits",
                    many.len()
                ),
            )))
        }
        Err(_) => return None,
    };
    if !force {
        let record = match &damage {
            Error::Corrupt { path, .. } => path.display().to_string(),
            other => other.to_string(),
        };
        return Some(Err(Error::conflict(
            "container",
            query,
            format!("its record {record} does not parse, so its state is unknown: only rm -f removes it"),
        )));
    }
    Some((|| {
        let cgroups = crate::cgroup::named(&id);
        if cgroups.is_empty() {
            // Its processes, if any run, are beyond our reach: say so
            // rather than promise they were stopped.
            eprintln!(
                "mydocker: warning: no cgroup named {id} was found; any process of that container still running was not stopped"
            );
        }
        crate::cgroup::remove_recorded(&cgroups)?;
        let _ = crate::network::forget_everywhere(store.root(), &id);
        if let Ok(dir) = store.container_dir(&id).canonicalize() {
            crate::userns::release_held_by(&dir);
        }
        detach_damaged_link(&id);
        store.remove_dir(&id, None)?;
        let _ = crate::network::sync(&store.root().join("networks"), store);
        Ok(())
    })())
}

/// The host end of a damaged container's veth, if its namespace still holds
/// it (its init alive): named by its id, as `network::detach` does.
fn detach_damaged_link(id: &str) {
    if id.len() >= 8 {
        crate::network::detach(id);
    }
}

/// Polls until the container's init is gone; false if `limit` passed first.
fn wait_gone(record: &Record, limit: Duration) -> bool {
    // A limit past what the clock can hold is no limit (`stop -t -1`).
    let deadline = Instant::now().checked_add(limit);
    while store::process_is(record.pid, record.pid_start) {
        if deadline.is_some_and(|d| Instant::now() > d) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Gives a live monitor the moment it needs to record the exit and tear
/// down, `limit` at most; says whether it is gone.
fn wait_for_monitor(record: &Record, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while record.monitor_alive() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Where a container's output goes when it runs detached.
pub fn log_path(store: &Store, id: &str) -> std::path::PathBuf {
    store.container_dir(id).join("container.log")
}

/// What `logs` prints of a log.
#[derive(Debug, Default, Clone)]
pub struct LogOptions {
    /// Only the last N lines (of those `since` keeps).
    pub tail: Option<usize>,
    /// Keep printing what arrives until the container exits.
    pub follow: bool,
    /// Each line prefixed with when it was written (RFC 3339, nanoseconds).
    pub timestamps: bool,
    /// Only lines written at or after this time: docker's forms, RFC 3339,
    /// Unix seconds or a duration before now (`10m`).
    pub since: Option<String>,
}

/// Writes the container's log (stdout and stderr, interleaved in the order
/// they were written) to `out`, as `options` asks. Times come from the
/// monitor's record beside the log (see `log_times`).
pub fn logs(store: &Store, query: &str, options: &LogOptions, out: &mut dyn Write) -> Result<()> {
    let record = store.resolve(query)?;
    let path = log_path(store, &record.id);
    let since = match options.since.as_deref() {
        None => None,
        Some(text) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let now = (now.as_secs() as i64, now.subsec_nanos());
            Some(crate::log_times::parse_since(text, now).ok_or_else(|| {
                Error::invalid(
                    "--since",
                    text,
                    "expected an RFC 3339 time (2026-12-03T16:00:00Z), Unix seconds, or a duration such as 10m or 1h30m",
                )
            })?)
        }
    };
    let mut file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(_) if !record.detached => {
            return Err(Error::conflict(
                "container",
                query,
                "it ran in the foreground, so its output went to the terminal, not to a log",
            ))
        }
        Err(e) => return Err(Error::io(format!("open {}", path.display()))(e)),
    };
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .map_err(Error::io(format!("read {}", path.display())))?;
    let lines: Vec<&[u8]> = text.split_inclusive(|b| *b == b'\n').collect();
    let times = if options.timestamps || since.is_some() {
        crate::log_times::line_times(&path, &text, 0)
    } else {
        Vec::new()
    };
    let mut kept: Vec<usize> = (0..lines.len())
        .filter(|&i| since.is_none_or(|since| times[i] >= since))
        .collect();
    if let Some(n) = options.tail {
        kept.drain(..kept.len().saturating_sub(n));
    }
    let write = |out: &mut dyn Write, line: &[u8], time: Option<crate::log_times::Stamp>| {
        if let Some(time) = time {
            write!(out, "{} ", crate::log_times::format(time))?;
        }
        out.write_all(line)
    };
    let last_printed = kept.last() == Some(&lines.len().wrapping_sub(1));
    for &i in &kept {
        let time = options.timestamps.then(|| times[i]);
        write(out, lines[i], time).map_err(Error::io("write the log"))?;
    }
    if options.follow {
        let mut position = text.len() as u64;
        // A line cut short by the end of what was read goes on unprefixed
        // if it was printed; if it was left out, it is read again whole.
        let mut at_line_start = text.last().is_none_or(|b| *b == b'\n');
        let mut skipping = false;
        if !at_line_start && !last_printed {
            position -= lines.last().map_or(0, |l| l.len()) as u64;
            at_line_start = true;
        }
        loop {
            let running = record.live_status() == Status::Running;
            file.seek(SeekFrom::Start(position))
                .map_err(Error::io("read the log"))?;
            let mut more = Vec::new();
            file.read_to_end(&mut more)
                .map_err(Error::io("read the log"))?;
            let timed = (options.timestamps || since.is_some()) && !more.is_empty();
            let times = match timed {
                true => crate::log_times::line_times(&path, &more, position),
                false => Vec::new(),
            };
            for (i, line) in more.split_inclusive(|b| *b == b'\n').enumerate() {
                // A `--since` still ahead leaves out what arrives before it,
                // the rest of a line left out included.
                if at_line_start {
                    skipping = since.is_some_and(|since| times[i] < since);
                }
                if !skipping {
                    let time = (options.timestamps && at_line_start).then(|| times[i]);
                    write(out, line, time).map_err(Error::io("write the log"))?;
                }
                at_line_start = line.ends_with(b"\n");
            }
            position += more.len() as u64;
            out.flush().map_err(Error::io("write the log"))?;
            if !running {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// `top CONTAINER [ps OPTIONS]`: the host's `ps` with the options given
/// (`-ef` by default), as docker runs it, keeping the container's processes
/// (the members of its cgroup) and adding `CPID`, each one's pid inside the
/// container, after `PID`. The last column (the command) may hold spaces;
/// every other is one word.
pub fn top(store: &Store, query: &str, options: &[String]) -> Result<String> {
    let record = store.resolve(query)?;
    if record.live_status() != Status::Running {
        return Err(Error::conflict("container", query, "it is not running"));
    }
    let members = record
        .cgroups
        .first()
        .and_then(|dir| std::fs::read_to_string(dir.join("cgroup.procs")).ok())
        .ok_or_else(|| Error::System(format!("container {} has no cgroup to list", record.name)))?;
    let members: Vec<&str> = members.lines().collect();
    let default = ["-ef".to_owned()];
    let options = if options.is_empty() {
        &default[..]
    } else {
        options
    };
    let output = std::process::Command::new("ps")
        .args(options)
        .output()
        .map_err(|e| Error::System(format!("run the host's ps for top (procps): {e}")))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        return Err(Error::invalid(
            "ps options",
            options.join(" "),
            format!(
                "options the host's ps takes ({})",
                why.lines().next().unwrap_or("it failed").trim()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let pid_column = header.iter().position(|c| *c == "PID").ok_or_else(|| {
        Error::invalid(
            "ps options",
            options.join(" "),
            "options whose output has a PID column",
        )
    })?;
    let split = |line: &str| -> Vec<String> {
        let mut cells: Vec<String> = Vec::new();
        let mut rest = line.trim_start();
        while cells.len() + 1 < header.len() {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            cells.push(rest[..end].to_owned());
            rest = rest[end..].trim_start();
        }
        cells.push(rest.to_owned());
        cells
    };
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|c| c.to_string()).collect()];
    rows[0].insert(pid_column + 1, "CPID".into());
    for line in lines {
        let mut cells = split(line);
        let Some(pid) = cells.get(pid_column).cloned() else {
            continue;
        };
        if !members.contains(&pid.as_str()) {
            continue;
        }
        cells.insert(
            pid_column + 1,
            inner_pid(&pid).unwrap_or_else(|| "-".into()),
        );
        rows.push(cells);
    }
    Ok(align(&rows, "  "))
}

/// A process's pid in the innermost pid namespace it is in (the last
/// field of `NSpid` in its status).
fn inner_pid(pid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last().map(str::to_owned)
}

/// Rows as columns padded to their widest cell and separated by `gap`,
/// each line's trailing spaces trimmed.
pub(crate) fn align(rows: &[Vec<String>], gap: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    rows.iter()
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            cells.join(gap).trim_end().to_owned() + "\n"
        })
        .collect()
}

/// `port CONTAINER [PORT[/PROTO]]` as docker prints it: every published
/// port as `80/tcp -> 0.0.0.0:8080`, or with a port asked for, only where
/// it is published (`0.0.0.0:8080`). A port asked for and not published is
/// an error naming it.
pub fn ports(record: &Record, asked: Option<&str>) -> Result<String> {
    // A stopped container publishes nothing: its NAT rules went with it.
    let running = record.live_status() == Status::Running;
    let published: Vec<_> = record
        .endpoint
        .iter()
        .filter(|_| running)
        .flat_map(|e| &e.publish)
        .collect();
    let host = |p: &crate::spec::network::Publish| {
        let ip = p.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string());
        format!("{ip}:{}", p.host_port)
    };
    let Some(asked) = asked else {
        return Ok(published
            .iter()
            .map(|p| {
                format!(
                    "{}/{} -> {}\n",
                    p.container_port,
                    p.protocol.name(),
                    host(p)
                )
            })
            .collect());
    };
    let (port, protocol) = asked.split_once('/').unwrap_or((asked, "tcp"));
    let port: u16 = port.parse().map_err(|_| {
        Error::invalid(
            "port",
            asked,
            "expected PORT or PORT/tcp or PORT/udp, such as 80/tcp",
        )
    })?;
    if !["tcp", "udp"].contains(&protocol) {
        return Err(Error::invalid(
            "port",
            asked,
            "the protocol must be tcp or udp",
        ));
    }
    let lines: String = published
        .iter()
        .filter(|p| p.container_port == port && p.protocol.name() == protocol)
        .map(|p| host(p) + "\n")
        .collect();
    if lines.is_empty() {
        return Err(Error::not_found(
            "port",
            format!("{port}/{protocol}"),
            format!("container {} publishes no such port", record.name),
        ));
    }
    Ok(lines)
}

/// One `ps --filter KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PsFilter {
    /// `created`, `running`, `paused` or `exited`.
    Status(String),
    /// A part of the name.
    Name(String),
    /// A prefix of the id.
    Id(String),
    /// A label, with or without its value.
    Label(String, Option<String>),
}

impl PsFilter {
    pub fn parse(text: &str) -> Result<PsFilter> {
        let invalid = |expected: &str| Error::invalid("filter", text, expected.to_owned());
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| invalid("KEY=VALUE, such as status=running or name=web"))?;
        match key {
            "status" => match value {
                "created" | "running" | "paused" | "restarting" | "exited" => {
                    Ok(PsFilter::Status(value.into()))
                }
                _ => Err(invalid(
                    "a status of created, running, paused, restarting or exited",
                )),
            },
            "name" => Ok(PsFilter::Name(value.into())),
            "id" => Ok(PsFilter::Id(value.into())),
            "label" => {
                let (label, wanted) = match value.split_once('=') {
                    Some((label, wanted)) => (label, Some(wanted.to_owned())),
                    None => (value, None),
                };
                Ok(PsFilter::Label(label.into(), wanted))
            }
            _ => Err(invalid("a filter on status, name, id or label")),
        }
    }

    pub fn is_status(&self) -> bool {
        matches!(self, PsFilter::Status(_))
    }

    /// Whether `record` passes this filter.
    pub fn keeps(&self, record: &Record) -> bool {
        match self {
            PsFilter::Status(status) => state_word(record) == status,
            PsFilter::Name(part) => record.name.contains(part.as_str()),
            PsFilter::Id(prefix) => record.id.starts_with(prefix.as_str()),
            PsFilter::Label(key, wanted) => match (record.labels.get(key), wanted) {
                (Some(value), Some(wanted)) => value == wanted,
                (Some(_), None) => true,
                (None, _) => false,
            },
        }
    }
}

/// `ps` as docker prints it.
pub fn ps_table(records: &[Record]) -> String {
    const COLUMNS: [&str; 7] = [
        "ID",
        "Image",
        "Command",
        "RunningFor",
        "Status",
        "Ports",
        "Names",
    ];
    let now = store::now();
    let mut rows = vec![COLUMNS.iter().map(|c| ps_header(c).to_owned()).collect()];
    for r in records {
        let fields = ps_fields(r, now);
        rows.push(
            COLUMNS
                .iter()
                .map(|c| fields[*c].as_str().unwrap_or_default().to_owned())
                .collect(),
        );
    }
    align(&rows, "   ")
}

/// The title of a `ps` field in a table (`RunningFor` is `CREATED`).
pub(crate) fn ps_header(field: &str) -> &str {
    match field {
        "ID" => "CONTAINER ID",
        "Image" => "IMAGE",
        "Command" => "COMMAND",
        "CreatedAt" => "CREATED AT",
        "RunningFor" => "CREATED",
        "Status" => "STATUS",
        "Ports" => "PORTS",
        "Names" => "NAMES",
        "State" => "STATE",
        "Labels" => "LABELS",
        other => other,
    }
}

/// One container's `ps` fields, by the names docker's `ps --format`
/// knows them (`{{.ID}}`, `{{.Names}}`, `{{.Status}}`, …).
pub fn ps_fields(r: &Record, now: u64) -> serde_json::Value {
    let live = r.live_status();
    let state = state_word(r);
    let paused = state == "paused";
    let status = match (live, r.exit_code) {
        (Status::Running, _) => format!(
            "Up {}{}",
            ago(now.saturating_sub(r.started.unwrap_or(r.created))).trim_end_matches(" ago"),
            if paused { " (Paused)" } else { "" }
        ),
        (Status::Exited, Some(code)) if state == "restarting" => format!(
            "Restarting ({code}) {}",
            ago(now.saturating_sub(r.finished.unwrap_or(now)))
        ),
        (Status::Created, _) => "Created".into(),
        (Status::Exited, Some(code)) => format!(
            "Exited ({code}) {}",
            ago(now.saturating_sub(r.finished.unwrap_or(now)))
        ),
        (Status::Exited, None) => "Exited (unknown: its monitor died)".into(),
    };
    let ports: Vec<String> = r
        .endpoint
        .iter()
        .flat_map(|e| &e.publish)
        .map(|p| {
            let ip = p.host_ip.map_or("0.0.0.0".to_owned(), |ip| ip.to_string());
            format!(
                "{ip}:{}->{}/{}",
                p.host_port,
                p.container_port,
                p.protocol.name()
            )
        })
        .collect();
    let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    serde_json::json!({
        "ID": r.short_id(),
        "Image": shorten(&r.image, 24),
        "Command": shorten(&format!("\"{}\"", r.args.join(" ")), 22),
        "CreatedAt": crate::ident::rfc3339(r.created),
        "RunningFor": ago(now.saturating_sub(r.created)),
        "Status": status,
        "Ports": ports.join(", "),
        "Names": r.name,
        "State": state,
        "Labels": labels.join(","),
    })
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars().take(max - 1).collect::<String>() + "…"
    }
}

fn ago(seconds: u64) -> String {
    match seconds {
        0..=1 => "Less than a second ago".into(),
        2..=59 => format!("{seconds} seconds ago"),
        60..=3599 => format!("{} minutes ago", seconds / 60),
        3600..=86399 => format!("{} hours ago", seconds / 3600),
        _ => format!("{} days ago", seconds / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_by_name_or_number() {
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("sigterm").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE")
            .unwrap_err()
            .to_string()
            .contains("\"NOPE\""));
    }
}
