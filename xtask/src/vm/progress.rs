//! The live view of a matrix run: cells done out of the total, and each
//! running cell with the probe it is on. The probe comes from the cell's
//! serial console, where the guest's runner prints a
//! [`probes::PROGRESS_PREFIX`] line before each probe; a thread tails the
//! console file while the cell runs.
//!
//! On a terminal this is an `indicatif` display: a bar of cells and a bar
//! per running cell. Elsewhere (CI logs, a pipe) it is plain lines without
//! escape codes: one when a cell starts, one when it ends with its time and
//! verdict counts.

use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use probes::Verdict;
use vm_tests::cell::{CellReport, CgroupMode};

/// How often a running cell's console is read.
const POLL: Duration = Duration::from_millis(250);

/// The probe id in a console line the guest's runner printed before a probe.
pub fn probe_in_line(line: &str) -> Option<&str> {
    let rest = line.split(probes::PROGRESS_PREFIX).nth(1)?;
    // A kernel message can land on the same serial line: take the id only.
    let id = rest.split(|c: char| c.is_whitespace() || c == '[').next()?;
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    valid.then_some(id)
}

/// The console files a VM cell may write, one per boot, in the order
/// `run_vm_cell` boots them (a crashed or hung guest is booted again).
pub fn console_files(out: &Path, label: &str, mode: CgroupMode, retries: u32) -> Vec<PathBuf> {
    (1..=retries + 1)
        .map(|attempt| {
            let suffix = if attempt == 1 {
                String::new()
            } else {
                format!("-attempt{attempt}")
            };
            out.join(format!("cell-{label}-{mode}{suffix}.console.log"))
        })
        .collect()
}

/// What a console says, read as it grows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Boot `n` (from 1) of the cell began writing its console.
    Attempt(u32),
    /// The guest is starting this probe.
    Probe(String),
}

/// Follows the console of a running cell across its boots. A console file
/// left by an earlier run is ignored until this run's QEMU truncates and
/// writes it, which changes its modification time.
pub struct ConsoleTail {
    files: Vec<PathBuf>,
    /// Each file's modification time when the tail began, if it existed.
    /// (A time, not a comparison with the clock: file times come from a
    /// coarser clock and can lag `SystemTime::now()` by a tick.)
    before: Vec<Option<SystemTime>>,
    /// Index in `files` of the console being read.
    current: Option<usize>,
    offset: u64,
    /// The text after the last line break read.
    partial: Vec<u8>,
}

impl ConsoleTail {
    pub fn new(files: Vec<PathBuf>) -> ConsoleTail {
        let before = files.iter().map(|f| modified(f)).collect();
        ConsoleTail {
            files,
            before,
            current: None,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// What was written since the last call, oldest first.
    pub fn poll(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        // The latest boot whose console this run has written.
        let fresh = (0..self.files.len()).rposition(|i| {
            let now = modified(&self.files[i]);
            now.is_some() && now != self.before[i]
        });
        let Some(index) = fresh else {
            return events;
        };
        if self.current != Some(index) {
            if self.current.is_some() || index > 0 {
                events.push(Event::Attempt(index as u32 + 1));
            }
            self.current = Some(index);
            self.offset = 0;
            self.partial.clear();
        }
        let Ok(mut file) = std::fs::File::open(&self.files[index]) else {
            return events;
        };
        let len = file.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            // Truncated under us: read it again from the start.
            self.offset = 0;
            self.partial.clear();
        }
        let mut new = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut new).is_err() {
            return events;
        }
        self.offset += new.len() as u64;
        self.partial.extend_from_slice(&new);
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return events;
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        for line in String::from_utf8_lossy(&complete).lines() {
            if let Some(id) = probe_in_line(line) {
                events.push(Event::Probe(id.to_owned()));
            }
        }
        events
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// A running cell, as the display shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub column: String,
    pub started: Instant,
    pub attempt: u32,
    /// Probes started in the current boot, the current one included.
    pub probes_started: usize,
    pub probe: Option<String>,
}

/// The state behind either display: cells done and cells running.
#[derive(Debug, Clone)]
pub struct State {
    pub total: usize,
    /// Probes each VM cell runs (the catalog, filtered by `--probe`).
    pub probes: usize,
    pub done: usize,
    pub running: Vec<Running>,
}

impl State {
    pub fn new(total: usize, probes: usize) -> State {
        State {
            total,
            probes,
            done: 0,
            running: Vec::new(),
        }
    }

    pub fn start(&mut self, column: &str, now: Instant) {
        self.running.push(Running {
            column: column.to_owned(),
            started: now,
            attempt: 1,
            probes_started: 0,
            probe: None,
        });
    }

    /// Applies a console event; the cell as it now is, if it is running.
    pub fn event(&mut self, column: &str, event: Event) -> Option<&Running> {
        let cell = self.running.iter_mut().find(|r| r.column == column)?;
        match event {
            Event::Attempt(n) => {
                cell.attempt = n;
                cell.probes_started = 0;
                cell.probe = None;
            }
            Event::Probe(id) => {
                cell.probes_started += 1;
                cell.probe = Some(id);
            }
        }
        Some(cell)
    }

    /// Ends a running cell; false when it was not running.
    pub fn finish(&mut self, column: &str) -> bool {
        let before = self.running.len();
        self.running.retain(|r| r.column != column);
        self.done += 1;
        self.running.len() < before
    }

    /// What a running cell is doing, after its column: the probe (with its
    /// place among the cell's probes) or the boot.
    pub fn doing(&self, cell: &Running) -> String {
        let mut text = if cell.attempt > 1 {
            format!("boot {}: ", cell.attempt)
        } else {
            String::new()
        };
        match &cell.probe {
            Some(probe) if self.probes > 0 => text.push_str(&format!(
                "probe {}/{} {probe}",
                cell.probes_started.min(self.probes),
                self.probes
            )),
            Some(probe) => text.push_str(&format!("probe {probe}")),
            None => text.push_str("booting"),
        }
        text
    }

    /// The plain line for a cell that starts.
    pub fn started_line(&self, column: &str) -> String {
        format!(
            "xtask: [{}/{}] {column} started ({} running)",
            self.done,
            self.total,
            self.running.len()
        )
    }

    /// The line for a finished cell: done or failed, its time, and its
    /// verdict counts or why it has none. Call after [`State::finish`].
    pub fn finished_line(&self, cell: &CellReport) -> String {
        let state = if cell.failure.is_some() {
            "failed"
        } else {
            "done"
        };
        format!(
            "xtask: [{}/{}] {} {state} in {:.1}s: {}",
            self.done,
            self.total,
            cell.column(),
            cell.seconds,
            outcome(cell)
        )
    }
}

/// Verdict counts of a cell (`19 pass, 2 unsupported`), or why it has none.
pub fn outcome(cell: &CellReport) -> String {
    if let Some(failure) = &cell.failure {
        return failure.lines().next().unwrap_or("no report").to_owned();
    }
    let results: Vec<&probes::ProbeResult> = cell
        .guest
        .iter()
        .flat_map(|g| &g.probes)
        .flat_map(|r| &r.results)
        .collect();
    if results.is_empty() {
        let why = cell.guest.as_ref().and_then(|g| g.error.as_deref());
        return format!("no probe ran: {}", why.unwrap_or("no results"));
    }
    let mut counts = [0usize; 4];
    for result in &results {
        counts[match result.verdict {
            Verdict::Pass => 0,
            Verdict::Fail(_) => 1,
            Verdict::Unsupported(_) => 2,
            Verdict::Inconclusive(_) => 3,
        }] += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .zip(["pass", "FAIL", "unsupported", "inconclusive"])
        .filter(|(n, _)| **n > 0)
        .map(|(n, label)| format!("{n} {label}"))
        .collect();
    parts.join(", ")
}

enum Display {
    /// Lines on stderr.
    Plain,
    /// An `indicatif` display on stderr: the cells bar, then a bar per
    /// running cell.
    Bars {
        multi: MultiProgress,
        cells: ProgressBar,
        running: Vec<(String, ProgressBar)>,
    },
}

/// The display of one matrix run. The run loop calls [`Progress::cell_started`],
/// runs the cell inside [`Progress::watch`] (which reports each probe as the
/// console shows it), then calls [`Progress::cell_finished`] and, at the end,
/// [`Progress::finish`].
pub struct Progress {
    inner: Mutex<(State, Display)>,
}

impl Progress {
    /// Bars when stderr is a terminal, plain lines when it is not.
    pub fn new(total: usize, probes: usize) -> Progress {
        let bars = std::io::stderr()
            .is_terminal()
            .then(ProgressDrawTarget::stderr);
        Progress::to(total, probes, bars)
    }

    /// Bars drawn to `bars`, or plain lines on stderr when it is `None`.
    pub fn to(total: usize, probes: usize, bars: Option<ProgressDrawTarget>) -> Progress {
        let display = match bars {
            Some(target) => {
                let multi = MultiProgress::with_draw_target(target);
                let cells = multi.add(ProgressBar::new(total as u64));
                cells.set_style(
                    ProgressStyle::with_template(
                        "{prefix:.bold} [{bar:30.cyan/blue}] {pos}/{len} cells done  {elapsed}",
                    )
                    .expect("a valid template")
                    .progress_chars("=> "),
                );
                cells.set_prefix("vm-test");
                cells.enable_steady_tick(Duration::from_millis(500));
                Display::Bars {
                    multi,
                    cells,
                    running: Vec::new(),
                }
            }
            None => Display::Plain,
        };
        Progress {
            inner: Mutex::new((State::new(total, probes), display)),
        }
    }

    pub fn cell_started(&self, column: &str) {
        let mut inner = self.inner.lock().expect("progress");
        let (state, display) = &mut *inner;
        state.start(column, Instant::now());
        match display {
            Display::Plain => eprintln!("{}", state.started_line(column)),
            Display::Bars {
                multi,
                cells,
                running,
            } => {
                let bar = multi.insert_after(
                    running.last().map_or(&*cells, |(_, b)| b),
                    ProgressBar::new(state.probes as u64),
                );
                let template = if state.probes > 0 {
                    "  {spinner} {prefix:20} [{bar:20}] {wide_msg} {elapsed:>4}"
                } else {
                    "  {spinner} {prefix:20} {wide_msg} {elapsed:>4}"
                };
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .expect("a valid template")
                        .progress_chars("=> "),
                );
                bar.set_prefix(column.to_owned());
                if let Some(cell) = state.running.last() {
                    bar.set_message(state.doing(cell));
                }
                bar.enable_steady_tick(Duration::from_millis(200));
                running.push((column.to_owned(), bar));
            }
        }
    }

    /// The guest of a running cell is starting `probe`.
    pub fn probe_started(&self, column: &str, probe: &str) {
        self.apply(column, Event::Probe(probe.to_owned()));
    }

    /// A running cell is booted again (`attempt` from 2), after its guest
    /// crashed or hung: its probes start over.
    pub fn boot_started(&self, column: &str, attempt: u32) {
        self.apply(column, Event::Attempt(attempt));
    }

    fn apply(&self, column: &str, event: Event) {
        let mut inner = self.inner.lock().expect("progress");
        let (state, display) = &mut *inner;
        let probes = state.probes;
        let Some(cell) = state.event(column, event).cloned() else {
            return;
        };
        // Plain lines say nothing per probe: a log gets a line per cell.
        if let Display::Bars { running, .. } = display {
            if let Some((_, bar)) = running.iter().find(|(c, _)| c == column) {
                let finished = cell.probes_started.saturating_sub(1).min(probes);
                bar.set_position(finished as u64);
                bar.set_message(state.doing(&cell));
            }
        }
    }

    pub fn cell_finished(&self, column: &str, cell: &CellReport) {
        let mut inner = self.inner.lock().expect("progress");
        let (state, display) = &mut *inner;
        state.finish(column);
        let line = state.finished_line(cell);
        match display {
            Display::Plain => eprintln!("{line}"),
            Display::Bars {
                multi,
                cells,
                running,
            } => {
                if let Some(i) = running.iter().position(|(c, _)| c == column) {
                    let (_, bar) = running.remove(i);
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(line);
                cells.inc(1);
            }
        }
    }

    /// Takes the display down, leaving the finished lines.
    pub fn finish(&self) {
        let mut inner = self.inner.lock().expect("progress");
        if let Display::Bars {
            multi,
            cells,
            running,
        } = &mut inner.1
        {
            for (_, bar) in running.drain(..) {
                bar.finish_and_clear();
            }
            cells.finish_and_clear();
            let _ = multi.clear();
        }
    }

    /// Runs `work` (a VM cell) while a thread follows its console and
    /// reports each probe it starts.
    pub fn watch<T>(&self, column: &str, mut tail: ConsoleTail, work: impl FnOnce() -> T) -> T {
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let watcher = scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    for event in tail.poll() {
                        match event {
                            Event::Probe(id) => self.probe_started(column, &id),
                            Event::Attempt(n) => self.boot_started(column, n),
                        }
                    }
                    std::thread::park_timeout(POLL);
                }
            });
            let result = work();
            stop.store(true, Ordering::Relaxed);
            watcher.thread().unpark();
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_id_is_read_from_its_console_line() {
        assert_eq!(
            probe_in_line("mydocker-probe: running pid.view"),
            Some("pid.view")
        );
        assert_eq!(
            probe_in_line("mydocker-probe: running cgroup.memory_oom\r"),
            Some("cgroup.memory_oom")
        );
        // A kernel message written over the end of the line.
        assert_eq!(
            probe_in_line("mydocker-probe: running net.veth[    3.1] eth0: link up"),
            Some("net.veth")
        );
        assert_eq!(
            probe_in_line("[    2.9] cgroup: Unknown subsys name 'memory'"),
            None
        );
        assert_eq!(probe_in_line("mydocker-probe: running "), None);
        assert_eq!(probe_in_line("mydocker-vm-init: PID 1 running 2.25s"), None);
    }

    fn cell(failure: Option<&str>, verdicts: &[Verdict]) -> CellReport {
        let ids: Vec<String> = (0..verdicts.len()).map(|i| format!("p{i}")).collect();
        let named: Vec<(&str, Verdict)> = ids
            .iter()
            .map(String::as_str)
            .zip(verdicts.iter().cloned())
            .collect();
        let mut cell = CellReport::sample(
            "debian-6.12",
            CgroupMode::V1,
            "6.12.117+deb12-amd64",
            &named,
        );
        cell.seconds = 95.26;
        if let Some(why) = failure {
            cell.guest = None;
            cell.failure = Some(why.to_owned());
        }
        cell
    }

    #[test]
    fn plain_lines_say_start_and_end_with_time_and_verdict_counts() {
        let mut state = State::new(4, 21);
        let now = Instant::now();
        state.start("debian-6.12/v1", now);
        assert_eq!(
            state.started_line("debian-6.12/v1"),
            "xtask: [0/4] debian-6.12/v1 started (1 running)"
        );
        state.start("debian-6.12/v2", now);
        assert!(state.finish("debian-6.12/v1"));
        let done = cell(
            None,
            &[
                Verdict::Pass,
                Verdict::Pass,
                Verdict::Unsupported("no memory".into()),
                Verdict::Fail("leaked".into()),
            ],
        );
        let line = state.finished_line(&done);
        assert_eq!(
            line,
            "xtask: [1/4] debian-6.12/v1 done in 95.3s: 2 pass, 1 FAIL, 1 unsupported"
        );
        assert!(!line.contains('\x1b'));
        assert!(state.finish("debian-6.12/v2"));
        let failed = cell(
            Some("the guest did not power off within 300s\nconsole (last lines):"),
            &[],
        );
        assert_eq!(
            state.finished_line(&failed),
            "xtask: [2/4] debian-6.12/v1 failed in 95.3s: the guest did not power off within 300s"
        );
    }

    #[test]
    fn the_state_follows_probes_and_boots_of_each_running_cell() {
        let mut state = State::new(2, 3);
        let now = Instant::now();
        state.start("a/v1", now);
        state.start("a/v2", now);
        let cell = state.running[0].clone();
        assert_eq!(state.doing(&cell), "booting");
        state.event("a/v1", Event::Probe("pid.view".into()));
        let cell = state
            .event("a/v1", Event::Probe("net.veth".into()))
            .unwrap()
            .clone();
        assert_eq!(state.doing(&cell), "probe 2/3 net.veth");
        assert_eq!(state.doing(&state.running[1].clone()), "booting");
        // The guest crashed and the cell boots again: its probes start over.
        let cell = state.event("a/v1", Event::Attempt(2)).unwrap().clone();
        assert_eq!(state.doing(&cell), "boot 2: booting");
        let cell = state
            .event("a/v1", Event::Probe("pid.view".into()))
            .unwrap()
            .clone();
        assert_eq!(state.doing(&cell), "boot 2: probe 1/3 pid.view");
        // An event for a cell that is not running changes nothing.
        assert!(state.event("b/v1", Event::Probe("x".into())).is_none());
        assert!(state.finish("a/v1"));
        assert_eq!(
            state
                .running
                .iter()
                .map(|r| r.column.as_str())
                .collect::<Vec<_>>(),
            ["a/v2"]
        );
        assert_eq!(state.done, 1);
        // Host cells run without a count of probes.
        let mut host = State::new(1, 0);
        host.start("host", now);
        let cell = host
            .event("host", Event::Probe("pid.view".into()))
            .unwrap()
            .clone();
        assert_eq!(host.doing(&cell), "probe pid.view");
    }

    /// The bar of a running cell: its position and message.
    fn bar_of(progress: &Progress, column: &str) -> Option<(u64, String)> {
        let inner = progress.inner.lock().unwrap();
        let Display::Bars { running, .. } = &inner.1 else {
            panic!("not bars");
        };
        running
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, bar)| (bar.position(), bar.message()))
    }

    #[test]
    fn the_bars_follow_the_cells_and_their_probes() {
        let progress = Progress::to(2, 3, Some(ProgressDrawTarget::hidden()));
        progress.cell_started("debian-6.12/v1");
        progress.cell_started("debian-6.12/v2");
        assert_eq!(
            bar_of(&progress, "debian-6.12/v1"),
            Some((0, "booting".into()))
        );
        progress.probe_started("debian-6.12/v1", "pid.view");
        progress.probe_started("debian-6.12/v1", "net.veth");
        assert_eq!(
            bar_of(&progress, "debian-6.12/v1"),
            Some((1, "probe 2/3 net.veth".into()))
        );
        progress.boot_started("debian-6.12/v1", 2);
        assert_eq!(
            bar_of(&progress, "debian-6.12/v1"),
            Some((0, "boot 2: booting".into()))
        );
        progress.cell_finished("debian-6.12/v1", &cell(None, &[Verdict::Pass]));
        assert_eq!(bar_of(&progress, "debian-6.12/v1"), None);
        assert!(bar_of(&progress, "debian-6.12/v2").is_some());
        {
            let inner = progress.inner.lock().unwrap();
            let Display::Bars { cells, .. } = &inner.1 else {
                panic!("not bars");
            };
            assert_eq!(cells.position(), 1);
            assert_eq!(inner.0.done, 1);
        }
        progress.finish();
    }

    #[test]
    fn watching_a_cell_reports_the_probes_its_console_shows() {
        let dir = std::env::temp_dir().join(format!("xtask-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = console_files(&dir, "k", CgroupMode::V1, 0);
        let _ = std::fs::remove_file(&files[0]);
        let progress = Progress::to(1, 2, Some(ProgressDrawTarget::hidden()));
        progress.cell_started("k/v1");
        let seen = progress.watch("k/v1", ConsoleTail::new(files.clone()), || {
            std::fs::write(&files[0], "mydocker-probe: running pid.view\n").unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let bar = bar_of(&progress, "k/v1").unwrap();
                if bar.1 != "booting" || Instant::now() > deadline {
                    break bar;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        assert_eq!(seen, (0, "probe 1/2 pid.view".into()));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_tail_reads_new_console_lines_and_follows_a_second_boot() {
        let dir = std::env::temp_dir().join(format!("xtask-progress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = console_files(&dir, "k", CgroupMode::V2, 1);
        assert_eq!(
            files,
            [
                dir.join("cell-k-v2.console.log"),
                dir.join("cell-k-v2-attempt2.console.log")
            ]
        );
        // A console of an earlier run, older than the tail: ignored.
        std::fs::write(&files[1], "mydocker-probe: running stale.probe\n").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&files[1])
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut tail = ConsoleTail::new(files.clone());
        assert_eq!(tail.poll(), []);
        let append = |path: &Path, text: &str| {
            use std::io::Write;
            let mut f = std::fs::File::options()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            f.write_all(text.as_bytes()).unwrap();
        };
        append(
            &files[0],
            "[ 1.0] boot\nmydocker-probe: running pid.view\nmydocker-probe: run",
        );
        assert_eq!(tail.poll(), [Event::Probe("pid.view".into())]);
        // The half-written line is read once it is whole.
        append(&files[0], "ning net.veth\n");
        assert_eq!(tail.poll(), [Event::Probe("net.veth".into())]);
        assert_eq!(tail.poll(), []);
        // The second boot truncates and writes its own console.
        std::fs::write(&files[1], "mydocker-probe: running pid.view\n").unwrap();
        assert_eq!(
            tail.poll(),
            [Event::Attempt(2), Event::Probe("pid.view".into())]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
