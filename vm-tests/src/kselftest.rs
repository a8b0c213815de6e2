//! The kernel's own selftests as a guest runs them: a kselftest binary's TAP
//! output read into one result per test, and the tests known to fail or
//! flake under TCG's emulation. Pure: the guest parses, the host renders.
//!
//! kselftest prints (`tools/testing/selftests/kselftest.h` and
//! `kselftest_harness.h`):
//!
//! ```text
//! TAP version 13
//! 1..3
//! # a diagnostic
//! ok 1 test_memcg_subtree_control
//! not ok 2 test_memcg_min
//! ok 3 # SKIP test_memcg_swap_max          (kselftest.h: the name after SKIP)
//! ok 4 global.mount_setattr # SKIP no tmpfs (the harness: name, then reason)
//! not ok 5 global.x #  the harness's reason (a comment after two spaces)
//! # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0
//! ```
//!
//! and, for a binary that skips as a whole, `1..0 # SKIP reason`.

use probes::{Accelerator, Verdict};
use serde::{Deserialize, Serialize};

/// At most this many diagnostic lines are kept with a result (the last ones).
pub const MAX_DIAGNOSTICS: usize = 20;
/// A diagnostic line longer than this many characters is cut.
pub const MAX_LINE: usize = 240;
/// At most this many diagnostic lines make up a failure's reason.
const REASON_LINES: usize = 3;

/// One test of a kselftest binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelftestResult {
    /// The selftests directory (`cgroup`, `pidfd`).
    pub suite: String,
    /// The binary that ran it (`test_memcontrol`).
    pub binary: String,
    /// The test's name as TAP gives it (`test_memcg_min`,
    /// `global.mount_setattr_wrong_user_namespace`); `#N` when the output
    /// named no test N.
    pub name: String,
    /// Pass; Fail with the diagnostics just before `not ok`; Unsupported
    /// with the skip reason; Inconclusive when the binary ended (crashed,
    /// timed out, bailed out) before reporting this test, or the test
    /// errored.
    pub verdict: Verdict,
    /// The diagnostic lines printed since the previous result (the last
    /// [`MAX_DIAGNOSTICS`], each at most [`MAX_LINE`] characters).
    pub diagnostics: Vec<String>,
    /// From the previous result line (or the binary's start) to this one.
    pub seconds: f64,
}

impl SelftestResult {
    /// `suite/name`, as [`probes::Probe::selftests`] patterns name tests.
    pub fn id(&self) -> String {
        format!("{}/{}", self.suite, self.name)
    }
}

/// How a selftest binary's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", content = "code", rename_all = "lowercase")]
pub enum Ending {
    /// It exited with this status (kselftest: 0 pass, 1 fail, 4 skip).
    Exited(i32),
    /// A signal killed it.
    Signalled(i32),
    /// The runner killed it when its time ran out.
    TimedOut,
}

/// kselftest's exit status of a binary that skipped as a whole.
pub const KSFT_SKIP: i32 = 4;

impl Ending {
    pub fn describe(self) -> String {
        match self {
            Ending::Exited(code) => format!("the binary exited with status {code}"),
            Ending::Signalled(signal) => {
                format!("the binary was killed by signal {}", signal_name(signal))
            }
            Ending::TimedOut => "the binary timed out and was killed".into(),
        }
    }

    fn abnormal(self) -> bool {
        !matches!(self, Ending::Exited(_))
    }
}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return signal.to_string(),
    };
    format!("{signal} ({name})")
}

/// kselftest's `# Totals:` line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub pass: u32,
    pub fail: u32,
    pub xfail: u32,
    pub xpass: u32,
    pub skip: u32,
    pub error: u32,
}

impl Totals {
    /// `# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:2 error:0`.
    pub fn parse(line: &str) -> Option<Totals> {
        let rest = line.trim().strip_prefix('#')?.trim_start();
        let rest = rest.strip_prefix("Totals:")?;
        let mut totals = Totals::default();
        for field in rest.split_whitespace() {
            let (key, value) = field.split_once(':')?;
            let value: u32 = value.parse().ok()?;
            match key {
                "pass" => totals.pass = value,
                "fail" => totals.fail = value,
                "xfail" => totals.xfail = value,
                "xpass" => totals.xpass = value,
                "skip" => totals.skip = value,
                "error" => totals.error = value,
                _ => {}
            }
        }
        Some(totals)
    }
}

/// What one binary's output says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parsed {
    /// One per test: reported ones in output order, then one inconclusive
    /// result for each planned test the binary never reported.
    pub results: Vec<SelftestResult>,
    /// `1..N`.
    pub plan: Option<u32>,
    pub totals: Option<Totals>,
    /// What did not add up (a duplicate result line, totals that disagree
    /// with the result lines, a crash after the last result).
    pub notes: Vec<String>,
}

/// One TAP result line.
#[derive(Debug, PartialEq, Eq)]
struct ResultLine<'a> {
    ok: bool,
    number: u32,
    name: &'a str,
    /// After `#`: `SKIP reason`, `XFAIL reason`, `error reason`, or the
    /// harness's comment; trimmed, possibly empty.
    directive: Option<&'a str>,
}

fn result_line(line: &str) -> Option<ResultLine<'_>> {
    let (ok, rest) = if let Some(rest) = line.strip_prefix("not ok ") {
        (false, rest)
    } else if let Some(rest) = line.strip_prefix("ok ") {
        (true, rest)
    } else {
        return None;
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let number: u32 = rest[..digits].parse().ok()?;
    let rest = &rest[digits..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    let (name, directive) = match rest.find('#') {
        Some(i) => (&rest[..i], Some(rest[i + 1..].trim())),
        None => (rest, None),
    };
    Some(ResultLine {
        ok,
        number,
        name: name.trim(),
        directive,
    })
}

/// The directive's keyword (`SKIP`, `XFAIL`, `XPASS`, `TODO`, `error`), if
/// it starts with one, and the text after it.
fn keyword(directive: &str) -> (Option<&'static str>, &str) {
    let first = directive.split_whitespace().next().unwrap_or("");
    for key in ["SKIP", "XFAIL", "XPASS", "TODO", "error"] {
        if first.eq_ignore_ascii_case(key) {
            return (Some(key), directive[first.len()..].trim());
        }
    }
    (None, directive)
}

/// A diagnostic line without its `# ` and trailing blanks, cut to [`MAX_LINE`].
fn diagnostic(line: &str) -> String {
    let text = line.strip_prefix('#').unwrap_or(line).trim();
    if text.chars().count() > MAX_LINE {
        let cut: String = text.chars().take(MAX_LINE).collect();
        format!("{cut}…")
    } else {
        text.to_owned()
    }
}

/// The harness's bookkeeping lines (`RUN x ...`, `OK x`, `FAIL x`), which
/// say nothing about why.
fn boilerplate(text: &str) -> bool {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("");
    match first {
        "RUN" => true,
        "OK" | "FAIL" | "SKIP" | "XFAIL" | "XPASS" => words.count() == 1,
        _ => text.starts_with("Starting ") && text.ends_with(" test cases."),
    }
}

/// The last few informative diagnostics, as one line.
fn reason_from(diagnostics: &[String]) -> Option<String> {
    let useful: Vec<&str> = diagnostics
        .iter()
        .map(String::as_str)
        .filter(|d| !boilerplate(d))
        .collect();
    if useful.is_empty() {
        return None;
    }
    let from = useful.len().saturating_sub(REASON_LINES);
    Some(useful[from..].join("; "))
}

/// The name a harness `RUN` line announces (`RUN global.foo ...`).
fn announced(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("RUN")?.trim();
    Some(rest.strip_suffix("...").unwrap_or(rest).trim())
}

/// Reads one binary's output, untimed: every reported result's `seconds` is
/// 0, and the binary's time goes to the first test it did not report.
pub fn parse_text(suite: &str, binary: &str, output: &str, ending: Ending, seconds: f64) -> Parsed {
    parse(
        suite,
        binary,
        output.lines().map(|l| (0.0, l)),
        ending,
        seconds,
    )
}

/// Reads one binary's output: each line with the time it arrived, in
/// seconds since the binary started; `ending` and `seconds` say how and
/// when it ended.
pub fn parse<'a>(
    suite: &str,
    binary: &str,
    lines: impl IntoIterator<Item = (f64, &'a str)>,
    ending: Ending,
    seconds: f64,
) -> Parsed {
    let make =
        |name: String, verdict: Verdict, diagnostics: Vec<String>, seconds: f64| SelftestResult {
            suite: suite.to_owned(),
            binary: binary.to_owned(),
            name,
            verdict,
            diagnostics,
            seconds,
        };
    let mut plan: Option<u32> = None;
    let mut skip_all: Option<String> = None;
    let mut totals: Option<Totals> = None;
    let mut bail: Option<String> = None;
    let mut notes: Vec<String> = Vec::new();
    let mut results: Vec<SelftestResult> = Vec::new();
    let mut numbers: Vec<u32> = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let mut running: Option<String> = None;
    let mut last_at = 0.0_f64;
    for (at, raw) in lines {
        let line = raw.trim_end();
        if line.is_empty() || line.starts_with("TAP version") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("1..") {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if let Ok(n) = rest[..digits].parse::<u32>() {
                plan = Some(n);
                if let Some((Some("SKIP"), why)) = rest[digits..]
                    .trim()
                    .strip_prefix('#')
                    .map(|d| keyword(d.trim()))
                {
                    skip_all = Some(why.to_owned());
                }
                continue;
            }
        }
        if let Some(t) = Totals::parse(line) {
            totals = Some(t);
            continue;
        }
        if let Some(why) = line.strip_prefix("Bail out!") {
            bail = Some(why.trim().to_owned());
            continue;
        }
        let Some(r) = result_line(line) else {
            let text = diagnostic(line);
            if text.is_empty() {
                continue;
            }
            if let Some(name) = announced(&text) {
                running = Some(name.to_owned());
            }
            pending.push(text);
            if pending.len() > MAX_DIAGNOSTICS {
                pending.remove(0);
            }
            continue;
        };
        if numbers.contains(&r.number) {
            notes.push(format!(
                "a second result line for test {} was ignored: {line:?} (buffered output repeated by a forked child?)",
                r.number
            ));
            continue;
        }
        numbers.push(r.number);
        let (key, text) = match r.directive {
            Some(d) => keyword(d),
            None => (None, ""),
        };
        // kselftest.h's `ok N # SKIP name`: the name comes after SKIP.
        let (name, text) = if !r.name.is_empty() {
            (r.name.to_owned(), text)
        } else if !text.is_empty() && !text.contains(char::is_whitespace) {
            (text.to_owned(), "")
        } else {
            (format!("#{}", r.number), text)
        };
        let diagnostics = std::mem::take(&mut pending);
        let said = |fallback: &str| -> String {
            if !text.is_empty() {
                text.to_owned()
            } else {
                reason_from(&diagnostics).unwrap_or_else(|| fallback.to_owned())
            }
        };
        let verdict = match (r.ok, key) {
            (_, Some("SKIP")) => Verdict::Unsupported(said("the test skipped without a reason")),
            (true, Some("XFAIL")) => {
                Verdict::Unsupported(format!("expected to fail (XFAIL): {}", said("no reason")))
            }
            (true, _) => Verdict::Pass,
            (false, Some("error")) => {
                Verdict::Inconclusive(format!("the test errored: {}", said("no reason")))
            }
            (false, Some("TODO")) => {
                Verdict::Inconclusive(format!("a TODO test: {}", said("no reason")))
            }
            (false, _) => Verdict::Fail(said("not ok, with no diagnostic")),
        };
        results.push(make(name, verdict, diagnostics, (at - last_at).max(0.0)));
        last_at = at;
        running = None;
    }

    if let Some(t) = totals {
        let count =
            |f: fn(&Verdict) -> bool| results.iter().filter(|r| f(&r.verdict)).count() as u32;
        let pass = count(|v| *v == Verdict::Pass);
        let fail = count(|v| matches!(v, Verdict::Fail(_)));
        let skip = count(|v| matches!(v, Verdict::Unsupported(_)));
        if pass != t.pass + t.xpass || fail != t.fail || skip != t.skip + t.xfail {
            notes.push(format!(
                "the Totals line (pass:{} fail:{} xfail:{} xpass:{} skip:{} error:{}) disagrees with the result lines (pass {pass}, fail {fail}, skip {skip})",
                t.pass, t.fail, t.xfail, t.xpass, t.skip, t.error
            ));
        }
    }

    let tail = (seconds - last_at).max(0.0);
    let cause = match &bail {
        Some(why) => format!("the binary bailed out ({why})"),
        None => ending.describe(),
    };
    match plan {
        _ if results.is_empty() && skip_all.is_some() => {
            let why = skip_all.unwrap_or_default();
            let why = if why.is_empty() {
                "the binary skipped all its tests without a reason".to_owned()
            } else {
                why
            };
            results.push(make(
                binary.to_owned(),
                Verdict::Unsupported(why),
                pending,
                seconds,
            ));
        }
        Some(planned) => {
            let missing: Vec<u32> = (1..=planned).filter(|n| !numbers.contains(n)).collect();
            let reported = planned as usize - missing.len();
            for (i, number) in missing.iter().enumerate() {
                let name = match (i, &running) {
                    (0, Some(name)) => name.clone(),
                    _ => format!("#{number}"),
                };
                let verdict = Verdict::Inconclusive(format!(
                    "no result for test {number}: {cause} after reporting {reported} of {planned} tests"
                ));
                let (diagnostics, secs) = if i == 0 {
                    (std::mem::take(&mut pending), tail)
                } else {
                    (Vec::new(), 0.0)
                };
                results.push(make(name, verdict, diagnostics, secs));
            }
            if missing.is_empty() && (ending.abnormal() || bail.is_some()) {
                notes.push(format!("every planned test reported, but then {cause}"));
            }
            let extra = numbers.iter().filter(|n| **n > planned).count();
            if extra > 0 {
                notes.push(format!(
                    "{extra} result line(s) numbered beyond the plan of {planned}"
                ));
            }
        }
        None if results.is_empty() => {
            let verdict = match (ending, &bail) {
                (Ending::Exited(KSFT_SKIP), None) => Verdict::Unsupported(
                    reason_from(&pending)
                        .unwrap_or_else(|| "the binary exited with kselftest's skip status".into()),
                ),
                _ => {
                    let said = reason_from(&pending)
                        .map(|r| format!(" (it said: {r})"))
                        .unwrap_or_default();
                    Verdict::Inconclusive(format!(
                        "no TAP result: {cause} before reporting any test{said}"
                    ))
                }
            };
            results.push(make(binary.to_owned(), verdict, pending, seconds));
        }
        None => {
            if ending.abnormal() || bail.is_some() {
                let name = running.unwrap_or_else(|| format!("#{}", results.len() + 1));
                results.push(make(
                    name,
                    Verdict::Inconclusive(format!(
                        "{cause} after {} results, and it printed no plan: how many tests it left unreported is unknown",
                        results.len()
                    )),
                    pending,
                    tail,
                ));
            }
        }
    }

    // kselftest.h's ksft_exit_skip after a plan was printed (test_pids when
    // cgroup2 has no pids controller) reports one `ok 1 # SKIP reason` and
    // exits with the skip status, leaving the rest of the plan unreported:
    // the binary skipped as a whole, and says so once.
    let skipped = |r: &SelftestResult| matches!(r.verdict, Verdict::Unsupported(_));
    let unreported = |r: &SelftestResult| {
        r.name.starts_with('#') && matches!(r.verdict, Verdict::Inconclusive(_))
    };
    if ending == Ending::Exited(KSFT_SKIP)
        && bail.is_none()
        && results
            .first()
            .is_some_and(|r| skipped(r) && r.name.starts_with('#'))
        && results.iter().all(|r| skipped(r) || unreported(r))
        && results.len() > 1
    {
        let first = results.remove(0);
        notes.push(format!(
            "the binary skipped as a whole after its plan: {} planned tests are one unsupported row",
            results.len() + 1
        ));
        results = vec![make(
            binary.to_owned(),
            first.verdict,
            first.diagnostics,
            seconds,
        )];
    }

    Parsed {
        results,
        plan,
        totals,
        notes,
    }
}

// ---------------------------------------------------------------------------
// What the host packs and what the guest sends back.

/// The prefix of a selftest's row in the matrix: `kselftest.cgroup.test_kill`.
pub const ROW_PREFIX: &str = "kselftest.";

/// The file in each suite's directory on the guest's selftest disk that
/// says what to run ([`SuitePlan`]).
pub const PLAN_FILE: &str = "plan.json";

/// A suite as the host packed it for a guest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuitePlan {
    pub suite: String,
    /// The kernel source it was built from (`linux-source-6.12 6.12.118-1`).
    pub source: String,
    /// The test binaries to run, in this order (helpers the tests exec are
    /// beside them, not listed).
    pub tests: Vec<String>,
    /// Tests that are not on the disk, with why: left out on purpose, or
    /// they did not build from this kernel's source.
    pub not_run: Vec<(String, String)>,
}

/// One run of one binary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinaryRun {
    pub binary: String,
    pub ending: Ending,
    pub seconds: f64,
    pub plan: Option<u32>,
    pub totals: Option<Totals>,
    /// What did not add up in its output ([`Parsed::notes`]).
    pub notes: Vec<String>,
}

/// A suite as the guest ran it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SuiteRun {
    pub suite: String,
    pub source: String,
    /// How the guest was set up for it, one line each: where cgroup2 was and
    /// which controllers it offered, the scratch filesystem.
    pub setup: Vec<String>,
    /// Every run of every binary, retries included, in order.
    pub runs: Vec<BinaryRun>,
    /// From the plan: tests not run, with why.
    pub not_run: Vec<(String, String)>,
    /// Why the suite could not run at all, if it could not.
    pub error: Option<String>,
    pub seconds: f64,
}

/// The matrix row of a selftest.
pub fn row_id(suite: &str, name: &str) -> String {
    format!("{ROW_PREFIX}{suite}.{name}")
}

/// `(suite, name)` of a selftest's row id; `None` for a probe's. A suite's
/// name has no dot, so the first dot after the prefix ends it.
pub fn split_row_id(id: &str) -> Option<(&str, &str)> {
    id.strip_prefix(ROW_PREFIX)?.split_once('.')
}

/// A selftest's result as a matrix row, with the earlier runs of it that
/// were retried. There is no control: the selftest's own assertions are
/// its evidence.
pub fn to_row(result: &SelftestResult, earlier: &[SelftestResult]) -> probes::ProbeResult {
    let evidence = |r: &SelftestResult| {
        let mut evidence = probes::Evidence::new();
        evidence.saw("binary", format!("{}/{}", r.suite, r.binary));
        for line in &r.diagnostics {
            evidence.saw("output", line);
        }
        evidence
    };
    probes::ProbeResult {
        id: row_id(&result.suite, &result.name),
        property: format!(
            "the kernel's own selftest {}/{} {}",
            result.suite, result.binary, result.name
        ),
        mutation: None,
        verdict: result.verdict.clone(),
        cause: None,
        evidence: evidence(result),
        control: probes::Evidence::new(),
        kernel_events: Vec::new(),
        seconds: result.seconds + earlier.iter().map(|r| r.seconds).sum::<f64>(),
        attempts: earlier
            .iter()
            .map(|r| probes::runner::Attempt {
                verdict: r.verdict.clone(),
                evidence: evidence(r),
                control: probes::Evidence::new(),
                seconds: r.seconds,
            })
            .collect(),
    }
}

/// How the inconclusive verdict of a FAIL that a second run did not repeat
/// begins.
pub const NOT_REPRODUCED: &str = "not reproducible on this machine: ";

/// Whether a binary is worth running again: a test in it FAILed and was
/// not yet run a second time (a FAIL counts once it reproduces), or one
/// stayed inconclusive that another run could settle. A test known to
/// fail in every boot, known to be wrong, or that the guest cannot host
/// would only cost the binary's time again. `attempts` is indexed like
/// `results`.
pub fn worth_retrying(
    results: &[SelftestResult],
    attempts: &[Vec<SelftestResult>],
    release: &str,
    accelerator: Accelerator,
) -> bool {
    results
        .iter()
        .zip(attempts)
        .any(|(r, earlier)| match &r.verdict {
            Verdict::Fail(_) => earlier.is_empty(),
            Verdict::Inconclusive(why) => {
                !why.starts_with(GUEST_LACKS)
                    && !why.starts_with(NOT_REPRODUCED)
                    && !known_failure(&r.suite, &r.name, release, accelerator)
                        .is_some_and(|k| k.rate == Rate::Always || k.kind == Kind::TestDefect)
            }
            _ => false,
        })
}

/// Folds a retry into the results so far, and the earlier result joins the
/// test's attempts:
/// - an inconclusive test takes the retry's verdict;
/// - a FAIL seen for the first time stays a FAIL if the retry failed too
///   (it reproduced), and becomes inconclusive if the retry passed: a
///   selftest has no control, and a failure that a second run of the same
///   binary on the same kernel does not repeat is the machine's, not a
///   broken promise;
/// - a pass is not run twice to be doubted.
///
/// `attempts` is indexed like `results`.
pub fn fold_retry(
    results: &mut [SelftestResult],
    attempts: &mut [Vec<SelftestResult>],
    retry: &[SelftestResult],
) {
    for (result, earlier) in results.iter_mut().zip(attempts.iter_mut()) {
        let Some(again) = retry.iter().find(|r| r.name == result.name) else {
            continue;
        };
        match (&result.verdict, &again.verdict) {
            // Settled as what it is: a third run does not make it a pass.
            (Verdict::Inconclusive(why), _) if why.starts_with(NOT_REPRODUCED) => {}
            (Verdict::Inconclusive(_), _) => {
                earlier.push(std::mem::replace(result, again.clone()));
            }
            (Verdict::Fail(first), second) if earlier.is_empty() => {
                let verdict = match second {
                    Verdict::Pass => Verdict::Inconclusive(format!(
                        "{NOT_REPRODUCED}it failed, then passed when its binary ran again; the failure: {first}"
                    )),
                    _ => result.verdict.clone(),
                };
                let failed = std::mem::replace(
                    result,
                    SelftestResult {
                        verdict,
                        ..again.clone()
                    },
                );
                earlier.push(failed);
            }
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------
// Tests known to fail or flake under TCG.

/// How often a known test failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// In `failed` of `boots` boots that ran it.
    Flaky { failed: u32, boots: u32 },
    /// In every boot.
    Always,
}

/// Why a known test fails where it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Under TCG's emulation only: the test's timing or accounting
    /// assumptions do not survive an emulated CPU.
    Emulation,
    /// On any machine: the test of these versions is wrong, and a later
    /// version of the suite changed it (the cause says how).
    TestDefect,
}

/// A selftest whose FAIL says nothing about the kernel where it is known
/// to fail (`../shared/KERNELS.md` and this harness's own runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownFailure {
    pub suite: &'static str,
    pub name: &'static str,
    /// The kernel series (`6.1`, `6.12`) it fails on; empty: every series.
    pub series: &'static [&'static str],
    pub rate: Rate,
    pub kind: Kind,
    pub cause: &'static str,
}

impl KnownFailure {
    pub fn describe(&self) -> String {
        let on = if self.series.is_empty() {
            String::new()
        } else {
            format!(" on {}", self.series.join(" and "))
        };
        let how = match self.rate {
            Rate::Flaky { failed, boots } => format!("in {failed} of {boots} boots"),
            Rate::Always => "in every boot".into(),
        };
        let kind = match self.kind {
            Kind::Emulation => "under TCG emulation",
            Kind::TestDefect => "on any machine, a defect of the test",
        };
        format!(
            "{}/{} failed {how}{on} {kind}: {}",
            self.suite, self.name, self.cause
        )
    }
}

/// The selftests known to fail, and why.
pub const KNOWN_FAILURES: &[KnownFailure] = &[
    // CPU time against the wall clock: under TCG the two drift apart.
    KnownFailure {
        suite: "cgroup",
        name: "test_cpucg_max",
        series: &["7.2"],
        rate: Rate::Always,
        kind: Kind::Emulation,
        cause: CPU_MAX_WALL_CLOCK,
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_cpucg_max",
        series: &[],
        rate: Rate::Flaky {
            failed: 1,
            boots: 16,
        },
        kind: Kind::Emulation,
        cause: CPU_MAX_WALL_CLOCK,
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_cpucg_max_nested",
        series: &["7.2"],
        rate: Rate::Always,
        kind: Kind::Emulation,
        cause: CPU_MAX_WALL_CLOCK,
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_cpucg_max_nested",
        series: &[],
        rate: Rate::Flaky {
            failed: 1,
            boots: 5,
        },
        kind: Kind::Emulation,
        cause: CPU_MAX_WALL_CLOCK,
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_cpucg_stats",
        series: &[],
        rate: Rate::Flaky {
            failed: 4,
            boots: 18,
        },
        kind: Kind::Emulation,
        cause: "it compares usage_usec with the wall-clock time the hog ran, which drift apart \
                under TCG",
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_cpucg_weight_overprovisioned",
        series: &[],
        rate: Rate::Flaky {
            failed: 1,
            boots: 7,
        },
        kind: Kind::Emulation,
        cause: "it expects three hogs weighted 50, 100 and 150 to get CPU time in that order over \
                10 s, and TCG runs both vCPUs on one host thread (cause not proven)",
    },
    // The freezer's waits.
    KnownFailure {
        suite: "cgroup",
        name: "test_cgfreezer_migrate",
        series: &[],
        rate: Rate::Flaky {
            failed: 2,
            boots: 14,
        },
        kind: Kind::Emulation,
        cause: "the cgroup was not frozen when the test looked, in v1 cells only (cgroup2 beside \
                the v1 hierarchies); it passed in the same cells booted again (cause not proven)",
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_cgfreezer_time_migrate",
        series: &[],
        rate: Rate::Flaky {
            failed: 1,
            boots: 4,
        },
        kind: Kind::Emulation,
        cause: "the cgroup was not frozen when the test looked (cause not proven)",
    },
    // Memory.
    KnownFailure {
        suite: "cgroup",
        name: "test_memcg_min",
        series: &["5.10"],
        rate: Rate::Flaky {
            failed: 2,
            boots: 3,
        },
        kind: Kind::TestDefect,
        cause: "it expects the protected siblings to keep 33 and 17 MiB (within 10%) after \
                reclaim; the 6.1 suite rewrote it, with test_memcg_low, as test_memcg_protection \
                and expects 29 and 21 MiB",
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_memcg_min",
        series: &[],
        rate: Rate::Flaky {
            failed: 1,
            boots: 12,
        },
        kind: Kind::Emulation,
        cause: "a protected cgroup's usage after reclaim fell outside the test's bounds (cause \
                not proven)",
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_percpu_basic",
        series: &["6.12"],
        rate: Rate::Always,
        kind: Kind::Emulation,
        cause: "memory.current exceeds the percpu charge of 1000 child cgroups by about 3 MiB, \
                over its bound of 256 KiB per CPU (cause not proven; the 7.2 suite passes)",
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_memcg_sock",
        series: &["5.10", "6.1"],
        rate: Rate::Flaky {
            failed: 3,
            boots: 4,
        },
        kind: Kind::TestDefect,
        cause: "it expects memory.current to equal the socket memory, so any other page the \
                cgroup holds fails it; the 6.12 suite subtracts what the cgroup held before the \
                connection",
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_memcg_oom_group_leaf_events",
        series: &["5.10"],
        rate: Rate::Always,
        kind: Kind::TestDefect,
        cause: "it expects the parent's oom_kill count to stay 0, which holds only with the \
                memory_localevents mount option; the 6.1 suite expects the parent to count its \
                children's kills, the default since 5.2",
    },
    KnownFailure {
        suite: "cgroup",
        name: "test_memcg_low",
        series: &["5.10"],
        rate: Rate::Always,
        kind: Kind::TestDefect,
        cause: "it expects the protected siblings to keep 33 and 17 MiB (within 10%) after \
             reclaim; the 6.1 suite rewrote it as test_memcg_protection and expects 29 and 21 MiB",
    },
];

/// Why `test_cpucg_max` and its nested twin fail under TCG.
const CPU_MAX_WALL_CLOCK: &str = "it compares the CPU time charged under a 1 ms quota with 1 s of \
     wall-clock time at 10% tolerance (about 2.7 ms), less than one tick at HZ=250; the kernel \
     throttles at a tick and repays the overrun from later periods, but the last debt is still \
     unpaid when the test reads cpu.stat, and under TCG a stalled vCPU's time lands on the hog \
     too (the probe cgroup.cpu_quota judges the same quota by the kernel's own books instead)";

/// The series (`6.12`) of a kernel release or package version
/// (`6.12.118+deb13-amd64`, `6.1.0-57-cloud-amd64`, `7.2.13-1`).
pub fn series_of(release: &str) -> Option<String> {
    let mut parts = release.splitn(3, '.');
    let major = parts.next()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if major.is_empty() || !major.chars().all(|c| c.is_ascii_digit()) || minor.is_empty() {
        return None;
    }
    Some(format!("{major}.{minor}"))
}

/// The known failure that matches a test on a kernel under an
/// accelerator, if any: a test defect anywhere, an emulation artefact only
/// under TCG.
pub fn known_failure(
    suite: &str,
    name: &str,
    release: &str,
    accelerator: Accelerator,
) -> Option<&'static KnownFailure> {
    let series = series_of(release);
    KNOWN_FAILURES.iter().find(|k| {
        k.suite == suite
            && k.name == name
            && (k.kind == Kind::TestDefect || accelerator == Accelerator::Tcg)
            && (k.series.is_empty() || series.as_deref().is_some_and(|s| k.series.contains(&s)))
    })
}

/// How an inconclusive verdict for a test the guest cannot host begins.
pub const GUEST_LACKS: &str = "the guest cannot host this test: ";

/// What the guest lacks that a failed test needed, read from its failure:
/// `system(3)` returning 32512 (exit status 127 from the shell) means the
/// shell or the command was not found, and the guest has no shell and no
/// tools (mount_setattr's idmapped tests run `mkfs.ext4`).
pub fn guest_lacks(why: &str) -> Option<String> {
    let call = why.split("Expected system(").nth(1)?;
    let (command, after) = call.split_once(") (")?;
    after
        .starts_with("32512)")
        .then(|| format!("it runs {command} through /bin/sh, and the guest has neither"))
}

/// A FAIL of a test known to fail on this kernel (see [`known_failure`]),
/// or of one the guest cannot host ([`guest_lacks`]), becomes
/// inconclusive: it stays visible with its reason, but it is not held
/// against the kernel. Any other test or verdict is unchanged.
pub fn annotate(result: SelftestResult, release: &str, accelerator: Accelerator) -> SelftestResult {
    let Verdict::Fail(why) = &result.verdict else {
        return result;
    };
    let verdict = if let Some(lack) = guest_lacks(why) {
        Verdict::Inconclusive(format!("{GUEST_LACKS}{lack}; this run: {why}"))
    } else if let Some(known) = known_failure(&result.suite, &result.name, release, accelerator) {
        Verdict::Inconclusive(format!(
            "known to fail: {}; this run: {why}",
            known.describe()
        ))
    } else {
        return result;
    };
    SelftestResult { verdict, ..result }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(parsed: &Parsed) -> Vec<(String, Verdict)> {
        parsed
            .results
            .iter()
            .map(|r| (r.name.clone(), r.verdict.clone()))
            .collect()
    }

    #[test]
    fn pass_fail_and_both_skip_forms() {
        let out = "TAP version 13\n1..4\n\
                   ok 1 test_memcg_subtree_control\n\
                   # memory.current is 0, expected 50M\n\
                   # values_close failed\n\
                   not ok 2 test_memcg_min\n\
                   ok 3 # SKIP test_memcg_swap_max\n\
                   # no tmpfs here\n\
                   ok 4 global.tmpfs # SKIP tmpfs lacks idmapping\n\
                   # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:2 error:0\n";
        let parsed = parse_text("cgroup", "test_memcontrol", out, Ending::Exited(1), 3.0);
        assert_eq!(parsed.plan, Some(4));
        assert_eq!(
            parsed.totals,
            Some(Totals {
                pass: 1,
                fail: 1,
                skip: 2,
                ..Totals::default()
            })
        );
        assert_eq!(
            verdicts(&parsed),
            [
                ("test_memcg_subtree_control".into(), Verdict::Pass),
                (
                    "test_memcg_min".into(),
                    Verdict::Fail("memory.current is 0, expected 50M; values_close failed".into())
                ),
                (
                    "test_memcg_swap_max".into(),
                    Verdict::Unsupported("the test skipped without a reason".into())
                ),
                (
                    "global.tmpfs".into(),
                    Verdict::Unsupported("tmpfs lacks idmapping".into())
                ),
            ]
        );
        let r = &parsed.results[1];
        assert_eq!(
            (r.suite.as_str(), r.binary.as_str()),
            ("cgroup", "test_memcontrol")
        );
        assert_eq!(r.id(), "cgroup/test_memcg_min");
        assert_eq!(
            r.diagnostics,
            ["memory.current is 0, expected 50M", "values_close failed"]
        );
        assert!(parsed.results[0].diagnostics.is_empty());
        assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
    }

    #[test]
    fn a_skip_with_diagnostics_takes_its_reason_from_them() {
        let out = "1..1\n# memory.swap.max isn't available\nok 1 # SKIP test_memcg_swap_max\n";
        let parsed = parse_text("cgroup", "test_memcontrol", out, Ending::Exited(0), 1.0);
        assert_eq!(
            verdicts(&parsed),
            [(
                "test_memcg_swap_max".into(),
                Verdict::Unsupported("memory.swap.max isn't available".into())
            )]
        );
        // A skip whose text is a sentence is a reason, not a name.
        let out = "1..2\nok 1 a\nok 2 # SKIP cgroup v2 isn't mounted\n";
        let parsed = parse_text("cgroup", "test_core", out, Ending::Exited(4), 1.0);
        assert_eq!(
            parsed.results[1].verdict,
            Verdict::Unsupported("cgroup v2 isn't mounted".into())
        );
        assert_eq!(parsed.results[1].name, "#2");
    }

    #[test]
    fn the_harness_forms_and_its_bookkeeping() {
        let out = "TAP version 13\n1..3\n\
                   # Starting 3 tests from 1 test cases.\n\
                   #  RUN           global.pidfd_open ...\n\
                   #            OK  global.pidfd_open\n\
                   ok 1 global.pidfd_open\n\
                   #  RUN           global.pidfd_poll ...\n\
                   # pidfd_poll_test.c:42:pidfd_poll:Expected 0 (0) == ret (-1)\n\
                   # pidfd_poll: Test terminated by assertion\n\
                   #          FAIL  global.pidfd_poll\n\
                   not ok 2 global.pidfd_poll\n\
                   #  RUN           global.xattr ...\n\
                   #      SKIP      no xattr support\n\
                   not ok 3 global.xattr #  the harness's own reason\n\
                   # FAILED: 1 / 3 tests passed.\n\
                   # Totals: pass:1 fail:2 xfail:0 xpass:0 skip:0 error:0\n";
        let parsed = parse_text("pidfd", "pidfd_poll_test", out, Ending::Exited(1), 2.0);
        assert_eq!(
            verdicts(&parsed),
            [
                ("global.pidfd_open".into(), Verdict::Pass),
                (
                    "global.pidfd_poll".into(),
                    Verdict::Fail(
                        "pidfd_poll_test.c:42:pidfd_poll:Expected 0 (0) == ret (-1); pidfd_poll: Test terminated by assertion"
                            .into()
                    )
                ),
                (
                    "global.xattr".into(),
                    Verdict::Fail("the harness's own reason".into())
                ),
            ]
        );
        assert!(parsed.notes.is_empty(), "{:?}", parsed.notes);
    }

    #[test]
    fn xfail_xpass_error_and_todo() {
        let out = "1..4\nok 1 a # XFAIL needs 6.9\nok 2 b # XPASS\nnot ok 3 c # error setup broke\nnot ok 4 d # TODO later\n";
        let parsed = parse_text("x", "y", out, Ending::Exited(1), 1.0);
        assert_eq!(
            verdicts(&parsed),
            [
                (
                    "a".into(),
                    Verdict::Unsupported("expected to fail (XFAIL): needs 6.9".into())
                ),
                ("b".into(), Verdict::Pass),
                (
                    "c".into(),
                    Verdict::Inconclusive("the test errored: setup broke".into())
                ),
                (
                    "d".into(),
                    Verdict::Inconclusive("a TODO test: later".into())
                ),
            ]
        );
    }

    #[test]
    fn a_binary_that_skips_as_a_whole() {
        let out = "TAP version 13\n1..0 # SKIP cgroup v2 isn't mounted\n";
        let parsed = parse_text("cgroup", "test_kill", out, Ending::Exited(4), 0.1);
        assert_eq!(
            verdicts(&parsed),
            [(
                "test_kill".into(),
                Verdict::Unsupported("cgroup v2 isn't mounted".into())
            )]
        );
        assert_eq!(parsed.plan, Some(0));
        // Without a plan, the skip status says so.
        let parsed = parse_text(
            "timens",
            "timens",
            "# Time namespaces are not supported\n",
            Ending::Exited(4),
            0.1,
        );
        assert_eq!(
            parsed.results[0].verdict,
            Verdict::Unsupported("Time namespaces are not supported".into())
        );
    }

    #[test]
    fn a_crash_mid_way_leaves_the_missing_tests_inconclusive() {
        let lines = [
            (0.0, "TAP version 13"),
            (0.0, "1..4"),
            (1.5, "ok 1 test_memcg_subtree_control"),
            (4.0, "ok 2 test_memcg_current_peak"),
            (4.1, "# allocating 50M"),
        ];
        let parsed = parse(
            "cgroup",
            "test_memcontrol",
            lines,
            Ending::Signalled(9),
            10.0,
        );
        let got: Vec<(&str, f64)> = parsed
            .results
            .iter()
            .map(|r| (r.name.as_str(), r.seconds))
            .collect();
        assert_eq!(
            got,
            [
                ("test_memcg_subtree_control", 1.5),
                ("test_memcg_current_peak", 2.5),
                ("#3", 6.0),
                ("#4", 0.0)
            ]
        );
        assert_eq!(
            parsed.results[2].verdict,
            Verdict::Inconclusive(
                "no result for test 3: the binary was killed by signal 9 (SIGKILL) after reporting 2 of 4 tests"
                    .into()
            )
        );
        assert_eq!(parsed.results[2].diagnostics, ["allocating 50M"]);
        assert!(matches!(
            parsed.results[3].verdict,
            Verdict::Inconclusive(_)
        ));

        // The harness names the test that was running.
        let out = "1..2\n#  RUN  global.a ...\nok 1 global.a\n#  RUN           global.b ...\n";
        let parsed = parse_text("pidfd", "pidfd_test", out, Ending::TimedOut, 60.0);
        assert_eq!(parsed.results[1].name, "global.b");
        let Verdict::Inconclusive(why) = &parsed.results[1].verdict else {
            panic!("{:?}", parsed.results[1]);
        };
        assert!(why.contains("timed out"), "{why}");
        assert_eq!(parsed.results[1].seconds, 60.0);

        // A bail-out is named as the cause.
        let out = "1..2\nBail out! cannot open cgroup root\n";
        let parsed = parse_text("cgroup", "test_core", out, Ending::Exited(1), 1.0);
        assert_eq!(parsed.results.len(), 2);
        assert!(parsed.results.iter().all(|r| matches!(
            &r.verdict,
            Verdict::Inconclusive(w) if w.contains("bailed out (cannot open cgroup root)")
        )));
    }

    #[test]
    fn a_binary_that_dies_before_any_tap() {
        let parsed = parse_text(
            "cgroup",
            "test_cpu",
            "Segmentation fault\n",
            Ending::Signalled(11),
            0.2,
        );
        assert_eq!(
            verdicts(&parsed),
            [(
                "test_cpu".into(),
                Verdict::Inconclusive(
                    "no TAP result: the binary was killed by signal 11 (SIGSEGV) before reporting any test (it said: Segmentation fault)".into()
                )
            )]
        );
        // No plan, some results, then a crash: one inconclusive for the rest.
        let parsed = parse_text("x", "y", "ok 1 a\n", Ending::Signalled(6), 1.0);
        assert_eq!(parsed.results.len(), 2);
        assert!(matches!(
            parsed.results[1].verdict,
            Verdict::Inconclusive(_)
        ));
        // No plan, results, a clean exit: nothing made up.
        let parsed = parse_text("x", "y", "ok 1 a\n", Ending::Exited(0), 1.0);
        assert_eq!(parsed.results.len(), 1);
    }

    #[test]
    fn duplicates_and_disagreeing_totals_are_noted() {
        let out = "1..2\nok 1 a\nok 1 a\nnot ok 2 b\n# Totals: pass:2 fail:1 xfail:0 xpass:0 skip:0 error:0\n";
        let parsed = parse_text("x", "y", out, Ending::Exited(1), 1.0);
        assert_eq!(parsed.results.len(), 2);
        assert_eq!(parsed.notes.len(), 2, "{:?}", parsed.notes);
        assert!(parsed.notes[0].contains("second result line for test 1"));
        assert!(parsed.notes[1].contains("Totals line"));
    }

    #[test]
    fn diagnostics_are_bounded() {
        let mut out = String::from("1..1\n");
        for i in 0..50 {
            out.push_str(&format!("# line {i} {}\n", "x".repeat(400)));
        }
        out.push_str("not ok 1 big\n");
        let parsed = parse_text("x", "y", &out, Ending::Exited(1), 1.0);
        let d = &parsed.results[0].diagnostics;
        assert_eq!(d.len(), MAX_DIAGNOSTICS);
        assert!(d[0].starts_with("line 30 "), "{}", d[0]);
        assert!(d.iter().all(|l| l.chars().count() == MAX_LINE + 1));
    }

    #[test]
    fn the_totals_line_parses() {
        assert_eq!(
            Totals::parse("# Totals: pass:7 fail:1 xfail:0 xpass:0 skip:2 error:0"),
            Some(Totals {
                pass: 7,
                fail: 1,
                skip: 2,
                ..Totals::default()
            })
        );
        assert_eq!(Totals::parse("# Totals: pass:x"), None);
        assert_eq!(Totals::parse("ok 1 Totals"), None);
    }

    fn failed(name: &str) -> SelftestResult {
        SelftestResult {
            suite: "cgroup".into(),
            binary: "test_kmem".into(),
            name: name.into(),
            verdict: Verdict::Fail("memory.current differs from the sum".into()),
            diagnostics: vec!["x".into()],
            seconds: 1.0,
        }
    }

    #[test]
    fn a_known_failure_under_tcg_is_inconclusive_and_keeps_its_reason() {
        let r = annotate(
            failed("test_percpu_basic"),
            "6.12.118+deb13-amd64",
            Accelerator::Tcg,
        );
        let Verdict::Inconclusive(why) = &r.verdict else {
            panic!("{r:?}");
        };
        assert!(
            why.starts_with("known to fail: cgroup/test_percpu_basic failed in every boot on 6.12 under TCG emulation: "),
            "{why}"
        );
        assert!(
            why.ends_with("; this run: memory.current differs from the sum"),
            "{why}"
        );
        assert_eq!(r.diagnostics, ["x"]);
        let r = annotate(
            failed("test_cpucg_stats"),
            "5.10.0-32-cloud-amd64",
            Accelerator::Tcg,
        );
        let Verdict::Inconclusive(why) = r.verdict else {
            panic!("{r:?}");
        };
        assert!(why.contains("failed in 4 of 18 boots under TCG"), "{why}");
        // A series of its own comes before the general entry.
        let r = annotate(
            failed("test_cpucg_max"),
            "7.2.13+deb14-cloud-amd64",
            Accelerator::Tcg,
        );
        let Verdict::Inconclusive(why) = r.verdict else {
            panic!("{r:?}");
        };
        assert!(why.contains("failed in every boot on 7.2"), "{why}");
    }

    #[test]
    fn a_test_defect_is_known_under_any_accelerator_on_its_series_only() {
        for accelerator in [Accelerator::Tcg, Accelerator::Kvm, Accelerator::Host] {
            let r = annotate(
                failed("test_memcg_sock"),
                "6.1.0-57-cloud-amd64",
                accelerator,
            );
            let Verdict::Inconclusive(why) = &r.verdict else {
                panic!("{accelerator}: {r:?}");
            };
            assert!(why.contains("a defect of the test"), "{why}");
        }
        // The 6.12 suite fixed it: a FAIL there is a FAIL.
        let r = annotate(
            failed("test_memcg_sock"),
            "6.12.118+deb13-amd64",
            Accelerator::Tcg,
        );
        assert!(matches!(r.verdict, Verdict::Fail(_)));
    }

    #[test]
    fn other_kernels_accelerators_tests_and_verdicts_are_left_alone() {
        // Known on 6.12 only.
        for release in ["7.2.13+deb14-cloud-amd64", "6.1.0-57-cloud-amd64"] {
            let r = annotate(failed("test_percpu_basic"), release, Accelerator::Tcg);
            assert!(matches!(r.verdict, Verdict::Fail(_)), "{release}");
        }
        // Under KVM an emulation artefact is no excuse.
        let r = annotate(
            failed("test_percpu_basic"),
            "6.12.118+deb13-amd64",
            Accelerator::Kvm,
        );
        assert!(matches!(r.verdict, Verdict::Fail(_)));
        // An unknown test keeps its FAIL.
        let r = annotate(
            failed("test_kmem_basic"),
            "6.12.118+deb13-amd64",
            Accelerator::Tcg,
        );
        assert!(matches!(r.verdict, Verdict::Fail(_)));

        // A pass stays a pass.
        let mut pass = failed("test_kmem_basic");
        pass.verdict = Verdict::Pass;
        assert_eq!(
            annotate(pass.clone(), "6.1.0-57-cloud-amd64", Accelerator::Tcg),
            pass
        );
    }

    #[test]
    fn the_series_of_a_release() {
        assert_eq!(series_of("6.1.0-57-cloud-amd64").as_deref(), Some("6.1"));
        assert_eq!(series_of("6.12.118+deb13-amd64").as_deref(), Some("6.12"));
        assert_eq!(series_of("7.2.13-1").as_deref(), Some("7.2"));
        assert_eq!(series_of("7.3-cloud-amd64").as_deref(), Some("7.3"));
        assert_eq!(series_of("host"), None);
    }

    /// Reads real outputs: `KSELFTEST_OUTPUT=file[,file...]` (each a
    /// binary's stdout and stderr; its exit status is taken as 0 or 1 by
    /// whether a `not ok` appears).
    #[test]
    #[ignore]
    fn parse_real_outputs() {
        let files = std::env::var("KSELFTEST_OUTPUT").expect("KSELFTEST_OUTPUT=file,...");
        for file in files.split(',') {
            let text = std::fs::read_to_string(file).unwrap();
            let code = i32::from(text.contains("\nnot ok "));
            let parsed = parse_text("suite", file, &text, Ending::Exited(code), 1.0);
            println!(
                "== {file}: plan {:?}, totals {:?}",
                parsed.plan, parsed.totals
            );
            for r in &parsed.results {
                println!(
                    "   {:<45} {}",
                    r.name,
                    match r.verdict.reason() {
                        Some(why) => format!("{}: {why}", r.verdict.label()),
                        None => r.verdict.label().to_owned(),
                    }
                );
            }
            for note in &parsed.notes {
                println!("   note: {note}");
            }
            assert!(parsed.notes.is_empty(), "{file}: {:?}", parsed.notes);
            assert_eq!(parsed.results.len() as u32, parsed.plan.unwrap(), "{file}");
        }
    }

    #[test]
    fn results_round_trip_through_json() {
        let r = failed("test_kmem_basic");
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"state\":\"fail\""), "{text}");
        assert_eq!(serde_json::from_str::<SelftestResult>(&text).unwrap(), r);
    }

    fn with(name: &str, verdict: Verdict) -> SelftestResult {
        SelftestResult {
            name: name.into(),
            verdict,
            ..failed(name)
        }
    }

    #[test]
    fn a_row_id_names_suite_and_test_and_splits_back() {
        let id = row_id("mount_setattr", "global.mount_setattr_basic");
        assert_eq!(id, "kselftest.mount_setattr.global.mount_setattr_basic");
        assert_eq!(
            split_row_id(&id),
            Some(("mount_setattr", "global.mount_setattr_basic"))
        );
        assert_eq!(split_row_id("cgroup.kill"), None);
    }

    #[test]
    fn a_row_keeps_the_verdict_the_output_and_earlier_attempts() {
        let earlier = with(
            "test_cpucg_max",
            Verdict::Inconclusive("known flake".into()),
        );
        let row = to_row(&with("test_cpucg_max", Verdict::Pass), &[earlier]);
        assert_eq!(row.id, "kselftest.cgroup.test_cpucg_max");
        assert_eq!(row.verdict, Verdict::Pass);
        assert_eq!(row.attempts.len(), 1);
        assert_eq!(row.seconds, 2.0);
        assert!(row.control.is_empty(), "a selftest has no control of ours");
        assert!(row.evidence.0.iter().any(|f| f.value == "cgroup/test_kmem"));
    }

    #[test]
    fn a_retry_settles_the_inconclusive_and_tells_a_reproduced_fail_from_noise() {
        let unsure = || Verdict::Inconclusive("known flake".into());
        let fail = |why: &str| Verdict::Fail(why.into());
        let mut results = vec![
            with("test_cpucg_max", unsure()),
            with("test_cpucg_stats", Verdict::Pass),
            with("test_cpucg_weight", fail("off by 20%")),
            with("test_cgfreezer_ptrace", fail("isn't frozen")),
        ];
        let mut attempts = vec![Vec::new(); 4];
        let retry = vec![
            with("test_cpucg_max", Verdict::Pass),
            with("test_cpucg_stats", fail("now failing")),
            with("test_cpucg_weight", fail("off by 25%")),
            with("test_cgfreezer_ptrace", Verdict::Pass),
        ];
        fold_retry(&mut results, &mut attempts, &retry);
        let verdicts: Vec<&Verdict> = results.iter().map(|r| &r.verdict).collect();
        assert_eq!(verdicts[0], &Verdict::Pass, "settled by the retry");
        assert_eq!(verdicts[1], &Verdict::Pass, "a pass is not doubted");
        assert_eq!(verdicts[2], &fail("off by 20%"), "reproduced: a FAIL");
        let Verdict::Inconclusive(why) = verdicts[3] else {
            panic!("a FAIL the retry did not repeat: {:?}", verdicts[3]);
        };
        assert!(
            why.contains("not reproducible") && why.ends_with("isn't frozen"),
            "{why}"
        );
        assert_eq!(
            attempts.iter().map(Vec::len).collect::<Vec<_>>(),
            [1, 0, 1, 1]
        );
        // Each FAIL was checked once: nothing more to run.
        let release = "6.12.118+deb13-amd64";
        assert!(!worth_retrying(
            &results,
            &attempts,
            release,
            Accelerator::Tcg
        ));
    }

    #[test]
    fn only_a_test_that_can_settle_is_worth_a_retry() {
        let unsure = |name: &str| with(name, Verdict::Inconclusive("x".into()));
        let tcg = Accelerator::Tcg;
        let none = vec![Vec::new()];
        // test_percpu_basic fails in every boot on 6.12 under TCG.
        let percpu = [unsure("test_percpu_basic")];
        assert!(!worth_retrying(&percpu, &none, "6.12.118+deb13-amd64", tcg));
        assert!(worth_retrying(&percpu, &none, "7.2.13-amd64", tcg));
        let max = [unsure("test_cpucg_max")];
        assert!(worth_retrying(&max, &none, "6.12.118+deb13-amd64", tcg));
        let passed = [with("test_cpucg_max", Verdict::Pass)];
        assert!(!worth_retrying(&passed, &none, "6.12.118+deb13-amd64", tcg));
        // A first FAIL is run again, to see whether it reproduces.
        let failed = [with("test_cgfreezer_ptrace", Verdict::Fail("x".into()))];
        assert!(worth_retrying(&failed, &none, "6.12.118+deb13-amd64", tcg));
    }

    #[test]
    fn a_binary_that_skips_after_its_plan_is_one_unsupported_row() {
        let out = "TAP version 13\n1..2\n\
                   ok 1 # SKIP pids controller isn't available\n\
                   # Planned tests != run tests (2 != 1)\n";
        let parsed = parse_text("cgroup", "test_pids", out, Ending::Exited(KSFT_SKIP), 0.1);
        assert_eq!(
            verdicts(&parsed),
            vec![(
                "test_pids".to_owned(),
                Verdict::Unsupported("pids controller isn't available".into())
            )]
        );
        // The same output from a binary that then crashed is not a skip.
        let crashed = parse_text("cgroup", "test_pids", out, Ending::Signalled(11), 0.1);
        assert_eq!(crashed.results.len(), 2);
        assert!(matches!(
            crashed.results[1].verdict,
            Verdict::Inconclusive(_)
        ));
    }

    #[test]
    fn a_test_that_needs_a_shell_is_inconclusive_and_not_retried() {
        let why = "mount_setattr_test.c:1055:change_idmapping:Expected system(\"mkfs.ext4 -q /mnt/C/ext4.img\") (32512) == 0 (0); change_idmapping: Test terminated by assertion";
        let r = annotate(
            with(
                "mount_setattr_idmapped.change_idmapping",
                Verdict::Fail(why.into()),
            ),
            "6.12.118+deb13-amd64",
            Accelerator::Kvm,
        );
        let Verdict::Inconclusive(said) = &r.verdict else {
            panic!("{r:?}");
        };
        assert!(
            said.starts_with("the guest cannot host this test: it runs \"mkfs.ext4 -q /mnt/C/ext4.img\" through /bin/sh"),
            "{said}"
        );
        assert!(!worth_retrying(
            &[r],
            &[Vec::new()],
            "6.12.118+deb13-amd64",
            Accelerator::Kvm
        ));
        // Any other status of system() is the test's own verdict.
        let other = why.replace("32512", "256");
        assert_eq!(guest_lacks(&other), None);
    }
}
