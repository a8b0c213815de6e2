//! `stats`: containers' resource usage in docker's columns, from the
//! kernel's own counters (the cgroup, and the container's network namespace).
//!
//! CPU % is the CPU time the cgroup was charged between two readings,
//! divided by the wall time between them: 100 % is one CPU kept busy, so a
//! container using two CPUs fully shows 200 %, as under docker.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::cgroup::{Mode, Usage};
use crate::error::Result;
use crate::store::{Record, Status, Store};

/// The time between the two readings a CPU % is computed from, and between
/// two refreshes of the live view (docker's own period).
const PERIOD: Duration = Duration::from_secs(1);

/// Prints the usage of the containers named (or of every running one,
/// every one with `all`): refreshed in place every second in a terminal,
/// once with `no_stream` or when stdout is not a terminal.
pub fn show(
    store: &Store,
    names: &[String],
    all: bool,
    no_stream: bool,
    no_trunc: bool,
    format: Option<&str>,
) -> Result<i32> {
    let mode = Mode::detect()?;
    // A bad template is refused at once, not after the first second.
    if let Some(format) = format.filter(|f| *f != "json" && *f != "table") {
        let template = format.strip_prefix("table ").unwrap_or(format);
        crate::inspect::Format::parse("--format", template)?;
    }
    let live = !no_stream && std::io::stdout().is_terminal();
    // Named containers must all exist; refusing one is refusing the command.
    let named: Vec<Record> = names
        .iter()
        .map(|n| store.resolve(n))
        .collect::<Result<_>>()?;
    let host_memory = host_memory();
    loop {
        let records = if names.is_empty() {
            store
                .list()?
                .into_iter()
                .filter(|r| all || r.live_status() == Status::Running)
                .collect()
        } else {
            named.clone()
        };
        let before: Vec<Reading> = records.iter().map(|r| Reading::take(mode, r)).collect();
        std::thread::sleep(PERIOD);
        let mut rows = vec![HEADER.iter().map(|h| h.to_string()).collect()];
        for (record, before) in records.iter().zip(&before) {
            let after = Reading::take(mode, record);
            rows.push(row(record, before, &after, host_memory, no_trunc));
        }
        let table = match format.filter(|f| *f != "table") {
            Some(format) => formatted(format, &rows)?,
            None => crate::lifecycle::align(&rows, "   "),
        };
        let mut out = std::io::stdout().lock();
        if live {
            // Home the cursor and clear the screen, then draw the table.
            let _ = write!(out, "\x1b[2J\x1b[H");
        }
        let _ = write!(out, "{table}");
        let _ = out.flush();
        if !live {
            return Ok(0);
        }
    }
}

const HEADER: [&str; 8] = [
    "CONTAINER ID",
    "NAME",
    "CPU %",
    "MEM USAGE / LIMIT",
    "MEM %",
    "NET I/O",
    "BLOCK I/O",
    "PIDS",
];

/// docker's `--format` names for the columns, in [`HEADER`]'s order.
const FIELDS: [&str; 8] = [
    "ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs",
];

/// `stats --format`: [`crate::inspect::format_list`] over docker's field
/// names (`{{.Name}}`, `{{.CPUPerc}}`, `{{.MemUsage}}`, …; `{{.Container}}`
/// is the id too). `rows` are the table's, titles first.
fn formatted(format: &str, rows: &[Vec<String>]) -> Result<String> {
    let object = |row: &[String], container: &str| {
        let mut map: serde_json::Map<String, serde_json::Value> = FIELDS
            .iter()
            .zip(row)
            .map(|(f, cell)| (f.to_string(), serde_json::Value::from(cell.as_str())))
            .collect();
        map.insert("Container".into(), container.into());
        serde_json::Value::Object(map)
    };
    let titles = object(&rows[0], "CONTAINER");
    let objects: Vec<serde_json::Value> = rows[1..].iter().map(|r| object(r, &r[0])).collect();
    crate::inspect::format_list(format, &titles, &objects)
}

/// The counters of one container at one moment; `None` when it is not running.
struct Reading {
    at: Instant,
    running: Option<(Usage, Option<(u64, u64)>)>,
}

impl Reading {
    fn take(mode: Mode, record: &Record) -> Reading {
        let running = (record.live_status() == Status::Running).then(|| {
            (
                crate::cgroup::usage(mode, &record.cgroups),
                network_bytes(record.pid),
            )
        });
        Reading {
            at: Instant::now(),
            running,
        }
    }
}

/// One line of the table. A stopped container, or one that stopped
/// between the readings, shows `--` as under docker.
fn row(
    record: &Record,
    before: &Reading,
    after: &Reading,
    host_memory: Option<u64>,
    no_trunc: bool,
) -> Vec<String> {
    let id = if no_trunc {
        record.id.clone()
    } else {
        record.short_id().to_owned()
    };
    let (Some((start, _)), Some((usage, net))) = (&before.running, &after.running) else {
        let mut cells = vec![id, record.name.clone()];
        cells.extend(std::iter::repeat_n("--".to_owned(), HEADER.len() - 2));
        return cells;
    };
    let cpu = match (start.cpu_ns, usage.cpu_ns) {
        (Some(a), Some(b)) => {
            let wall = after.at.duration_since(before.at).as_nanos().max(1) as f64;
            format!("{:.2}%", b.saturating_sub(a) as f64 / wall * 100.0)
        }
        _ => "--".to_owned(),
    };
    // Without a limit of its own, the container may use the host's memory.
    let limit = usage.memory_limit.or(host_memory);
    let (memory, memory_percent) = match (usage.memory, limit) {
        (Some(used), Some(limit)) => (
            format!("{} / {}", binary_size(used), binary_size(limit)),
            format!("{:.2}%", used as f64 / limit.max(1) as f64 * 100.0),
        ),
        _ => ("--".to_owned(), "--".to_owned()),
    };
    let pair = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!("{} / {}", decimal_size(a), decimal_size(b)),
        _ => "--".to_owned(),
    };
    vec![
        id,
        record.name.clone(),
        cpu,
        memory,
        memory_percent,
        net.map_or_else(|| "--".to_owned(), |(rx, tx)| pair(Some(rx), Some(tx))),
        pair(usage.block_read, usage.block_write),
        usage
            .pids
            .map_or_else(|| "--".to_owned(), |p| p.to_string()),
    ]
}

/// Bytes received and sent by the interfaces of `pid`'s network namespace,
/// loopback aside: `/proc/PID/net/dev` is the view of the namespace the
/// process is in. `None` when it shares the host's namespace (`--network
/// host`), whose traffic is not the container's own.
fn network_bytes(pid: i32) -> Option<(u64, u64)> {
    let inode = |path: String| {
        std::fs::metadata(path).ok().map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.ino()
        })
    };
    let own = inode(format!("/proc/{pid}/ns/net"))?;
    if Some(own) == inode("/proc/self/ns/net".to_owned()) {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(sum_interfaces(&text))
}

/// Sums received and sent bytes over the interfaces of a `/proc/net/dev`
/// text, loopback aside. After `name:` come 8 receive counters, bytes
/// first, then 8 send counters, bytes first.
fn sum_interfaces(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0, 0);
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        if fields.len() >= 9 {
            rx += fields[0];
            tx += fields[8];
        }
    }
    (rx, tx)
}

/// The host's memory, which is the limit of a container without one.
fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Memory sizes as docker prints them: binary units, four significant
/// digits (`1.465MiB`, `15.63GiB`).
fn binary_size(bytes: u64) -> String {
    scaled(bytes, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"], 4)
}

/// Traffic as docker prints it: decimal units, three significant digits
/// (`1.23kB`, `648B`).
fn decimal_size(bytes: u64) -> String {
    scaled(bytes, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], 3)
}

fn scaled(bytes: u64, base: f64, units: &[&str], digits: usize) -> String {
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= base && unit + 1 < units.len() {
        value /= base;
        unit += 1;
    }
    format!("{}{}", significant(value, digits), units[unit])
}

/// `value` to `digits` significant digits, trailing zeros dropped (Go's `%.Ng`).
fn significant(value: f64, digits: usize) -> String {
    if value == 0.0 {
        return "0".to_owned();
    }
    let whole_digits = value.abs().log10().floor() as i64 + 1;
    let decimals = (digits as i64 - whole_digits).max(0) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_dockers() {
        assert_eq!(binary_size(0), "0B");
        assert_eq!(binary_size(1536 * 1024), "1.5MiB");
        assert_eq!(binary_size(1_536_000), "1.465MiB");
        assert_eq!(binary_size(16_790_000_000), "15.64GiB");
        assert_eq!(decimal_size(648), "648B");
        assert_eq!(decimal_size(1234), "1.23kB");
        assert_eq!(decimal_size(12_000_000), "12MB");
    }

    #[test]
    fn loopback_is_not_the_containers_traffic() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    5000      10    0    0    0     0          0         0     5000      10    0    0    0     0       0          0
  eth0:    1200       8    0    0    0     0          0         0      700       5    0    0    0     0       0          0
";
        assert_eq!(sum_interfaces(text), (1200, 700));
    }
}
