//! When each stretch of a detached container's log was written, for
//! `logs --timestamps` and `--since`.
//!
//! The container writes its output straight into `container.log`: no
//! process sits in the way, so a monitor that dies cannot block it. The
//! file itself keeps no times, so the monitor keeps them beside it. It
//! watches the log with inotify, and each time the kernel reports a
//! write it appends a line `OFFSET SECONDS.NANOS` to `container.log.times`:
//! the log's size then, and its modification time, the kernel's time of
//! the last write, so every byte before OFFSET was written by then. A line
//! of the log takes the time of the first entry past its start. Bytes
//! written after the last entry (the monitor has not woken yet, or is
//! gone) take the log's modification time as it is now.

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// The monitor's side: an inotify watch on the log, and the index it writes.
pub struct LogClock {
    inotify: Inotify,
    log: PathBuf,
    index: File,
    indexed: u64,
    /// When the last entry was written: a chatty container is noted at
    /// most every [`SPACING`], so that the index stays small.
    noted: Option<std::time::Instant>,
}

/// The least time between two entries of the index.
const SPACING: std::time::Duration = std::time::Duration::from_millis(10);

/// The index kept beside a log.
pub fn index_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".times");
    PathBuf::from(name)
}

impl LogClock {
    /// Starts watching `log`, which exists.
    pub fn start(log: &Path) -> std::io::Result<LogClock> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        inotify.add_watch(log, AddWatchFlags::IN_MODIFY)?;
        let index = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(index_path(log))?;
        Ok(LogClock {
            inotify,
            log: log.to_owned(),
            index,
            indexed: 0,
            noted: None,
        })
    }

    /// What to poll: readable when the log was written.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Takes the kernel's reports of writes, and notes the time unless the
    /// last note is too recent (the monitor's next timeout, within a
    /// quarter second, notes what this one left).
    pub fn on_ready(&mut self) {
        while matches!(self.inotify.read_events(), Ok(events) if !events.is_empty()) {}
        if self.noted.is_none_or(|t| t.elapsed() >= SPACING) {
            self.note();
        }
    }

    /// Notes how far the log goes now, and the kernel's time of its last
    /// write (its mtime): not when we happened to look, which a busy
    /// machine may make much later, and the same time the reader falls
    /// back on for bytes not noted yet.
    pub fn note(&mut self) {
        let Ok(meta) = std::fs::metadata(&self.log) else {
            return;
        };
        if meta.len() <= self.indexed {
            return;
        }
        let line = format!("{} {}.{:09}\n", meta.len(), meta.mtime(), meta.mtime_nsec());
        if self.index.write_all(line.as_bytes()).is_ok() {
            self.indexed = meta.len();
            self.noted = Some(std::time::Instant::now());
        }
    }
}

/// A time as seconds and nanoseconds since the epoch.
pub type Stamp = (i64, u32);

/// The time each line of `text` was written, by the index beside `log`;
/// `text` is the log from byte `base` on.
pub fn line_times(log: &Path, text: &[u8], base: u64) -> Vec<Stamp> {
    let index = read_index(&index_path(log));
    let fallback = std::fs::metadata(log)
        .map(|m| (m.mtime(), m.mtime_nsec() as u32))
        .unwrap_or((0, 0));
    let mut times = Vec::new();
    let mut entry = 0;
    let mut start = base;
    for line in text.split_inclusive(|b| *b == b'\n') {
        while entry < index.len() && index[entry].0 <= start {
            entry += 1;
        }
        times.push(index.get(entry).map_or(fallback, |e| e.1));
        start += line.len() as u64;
    }
    times
}

fn read_index(path: &Path) -> Vec<(u64, Stamp)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (offset, time) = line.split_once(' ')?;
            let (secs, nanos) = time.split_once('.')?;
            Some((
                offset.parse().ok()?,
                (secs.parse().ok()?, nanos.parse().ok()?),
            ))
        })
        .collect()
}

/// docker's `--timestamps` form: RFC 3339 with nanoseconds.
pub fn format(stamp: Stamp) -> String {
    chrono::DateTime::from_timestamp(stamp.0, stamp.1)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default()
}

/// docker's `--since`: an RFC 3339 time, Unix seconds (`1700000000.5`),
/// or a duration before now (`42s`, `10m`, `1h30m`).
pub fn parse_since(text: &str, now: Stamp) -> Option<Stamp> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some((time.timestamp(), time.timestamp_subsec_nanos()));
    }
    // SECONDS[.FRACTION], digits only (no `inf`, no exponent).
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !whole.is_empty() && digits(whole) && digits(fraction) && fraction.len() <= 9 {
        let nanos = format!("{fraction:0<9}").parse().ok()?;
        return Some((whole.parse().ok()?, nanos));
    }
    let ago = parse_duration(text)?;
    let now_ns = now.0 as i128 * 1_000_000_000 + now.1 as i128;
    let then = now_ns.checked_sub(i128::try_from(ago).ok()?)?;
    let seconds = i64::try_from(then.div_euclid(1_000_000_000)).ok()?;
    Some((seconds, then.rem_euclid(1_000_000_000) as u32))
}

/// A Go duration of hours, minutes, seconds and milliseconds
/// (`1h30m`, `2.5s`, `500ms`), in nanoseconds.
fn parse_duration(text: &str) -> Option<u128> {
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().ok()?;
        let (scale, tail) = [("ms", 1e6), ("h", 3.6e12), ("m", 6e10), ("s", 1e9)]
            .iter()
            .find_map(|(unit, scale)| tail.strip_prefix(unit).map(|t| (*scale, t)))?;
        total += value * scale;
        rest = tail;
    }
    // Beyond any clock (some 3 × 10^11 years): no time at all.
    (total.is_finite() && total < 1e28).then_some(total as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_line_takes_the_first_time_past_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("container.log");
        std::fs::write(&log, "a\nbb\nccc\n").unwrap();
        // "a\n" by t=10, "bb\n" by t=20, "ccc\n" after the last entry.
        std::fs::write(index_path(&log), "2 10.000000000\n5 20.000000005\n").unwrap();
        let times = line_times(&log, &std::fs::read(&log).unwrap(), 0);
        let mtime = std::fs::metadata(&log).unwrap().mtime();
        assert_eq!(times[0], (10, 0));
        assert_eq!(times[1], (20, 5));
        assert_eq!(times[2].0, mtime);
    }

    #[test]
    fn since_reads_dockers_forms() {
        let now = (1_000_000, 0);
        assert_eq!(parse_since("1h30m", now), Some((1_000_000 - 5400, 0)));
        assert_eq!(parse_since("500ms", now), Some((999_999, 500_000_000)));
        assert_eq!(
            parse_since("1700000000.5", now),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(
            parse_since("2026-12-03T16:14:31Z", now),
            Some((1_796_314_471, 0))
        );
        for bad in [
            "",
            "yesterday",
            "10x",
            "-5",
            "inf",
            "1e9",
            "1.2.3",
            "99999999999999999999999999999h",
        ] {
            assert_eq!(parse_since(bad, now), None, "{bad}");
        }
        assert_eq!(format((1_796_314_471, 5)), "2026-12-03T16:14:31.000000005Z");
    }
}
