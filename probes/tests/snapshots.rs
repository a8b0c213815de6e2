//! Snapshots of every report rendering and of the probe list, so that a
//! change to an output format shows up in review. Times, pids and kernel
//! strings vary from run to run and are redacted.

use probes::report::{self, Report};
use probes::runner::{Attempt, ProbeResult};
use probes::{Cause, Evidence, Verdict};

/// A report with one result of each kind, with the variable parts a real
/// run has (durations, a kernel release, host pids).
fn fixture() -> Report {
    let mut pid_evidence = Evidence::new();
    pid_evidence
        .saw("getpid() inside", 1)
        .saw("NSpid of host pid 48213", "48213 1");
    let mut pid_control = Evidence::new();
    pid_control.saw("getpid() without CLONE_NEWPID", 48220);
    let mut quota_evidence = Evidence::new();
    quota_evidence
        .saw("cpu time charged to the cgroup", "0.612 s")
        .saw("expected (n × quota + min(r, quota))", "0.250 s")
        .saw("nr_throttled", 0);
    let mut quota_control = Evidence::new();
    quota_control.saw("cpu time without a quota", "0.998 s");
    let mut veth_evidence = Evidence::new();
    veth_evidence.saw("host → container", "timed out: read");
    let mut veth_control = Evidence::new();
    veth_control.saw(
        "container on no network → server",
        "no connection: Network is unreachable",
    );
    Report {
        kernel: "6.12.107+deb12-amd64".into(),
        cgroup_mode: "cgroup v1, legacy layout".into(),
        accelerator: probes::Accelerator::Tcg,
        results: vec![
            ProbeResult {
                id: "pid.view".into(),
                property:
                    "a PID namespace shows its first process as PID 1 and hides every host process"
                        .into(),
                mutation: None,
                verdict: Verdict::Pass,
                cause: None,
                evidence: pid_evidence,
                control: pid_control,
                kernel_events: vec![],
                seconds: 0.0413,
                attempts: vec![],
            },
            ProbeResult {
                id: "cgroup.cpu_quota".into(),
                property: "a CFS bandwidth quota throttles a busy process to its share".into(),
                mutation: Some("skip-limits".into()),
                verdict: Verdict::Fail("used 0.612 s of CPU where the quota allows 0.250 s".into()),
                cause: Some(Cause::Property),
                evidence: quota_evidence,
                control: quota_control,
                kernel_events: vec!["kernel taint changed from 0 to 512".into()],
                seconds: 2.0871,
                attempts: vec![],
            },
            ProbeResult {
                id: "cgroup.memory_oom".into(),
                property:
                    "a process over its memory limit is OOM-killed and the kernel counts the kill"
                        .into(),
                mutation: None,
                verdict: Verdict::Unsupported(
                    "--memory needs the memory cgroup controller, which this host does not provide"
                        .into(),
                ),
                cause: None,
                evidence: Evidence::new(),
                control: Evidence::new(),
                kernel_events: vec![],
                seconds: 0.0022,
                attempts: vec![],
            },
            ProbeResult {
                id: "net.veth".into(),
                property:
                    "a veth pair carries traffic between containers, the host and the gateway"
                        .into(),
                mutation: None,
                verdict: Verdict::Inconclusive(
                    "a wait of 10s ran out, which a slow machine can cause".into(),
                ),
                cause: None,
                evidence: veth_evidence.clone(),
                control: veth_control.clone(),
                kernel_events: vec![],
                seconds: 31.2,
                attempts: vec![Attempt {
                    verdict: Verdict::Inconclusive(
                        "the helper did not report \"reply\" within 30s".into(),
                    ),
                    evidence: Evidence::new(),
                    control: Evidence::new(),
                    seconds: 30.1,
                }],
            },
        ],
        leftovers: vec![],
    }
}

fn text_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\d+\.\d+s\b", "[time]");
    settings.add_filter(r"host pid \d+", "host pid [pid]");
    settings.add_filter(r"\b\d{4,}( 1)?\b", "[pid]$1");
    settings.add_filter(r"kernel \S+,", "kernel [release],");
    settings
}

#[test]
fn human_report() {
    text_settings().bind(|| insta::assert_snapshot!(report::human(&fixture(), false)));
}

#[test]
fn tap_report() {
    text_settings().bind(|| insta::assert_snapshot!(report::tap(&fixture())));
}

#[test]
fn json_report() {
    // Host pids in evidence values (four digits or more) vary from run to run.
    let pids = |value: insta::internals::Content, _path: insta::internals::ContentPath<'_>| {
        let text = value.as_str().unwrap_or_default().to_owned();
        let redacted: Vec<String> = text
            .split(' ')
            .map(|w| {
                if w.len() >= 4 && w.bytes().all(|b| b.is_ascii_digit()) {
                    "[pid]".into()
                } else {
                    w.to_owned()
                }
            })
            .collect();
        redacted.join(" ")
    };
    insta::assert_json_snapshot!(fixture(), {
        ".kernel" => "[release]",
        ".results[].seconds" => "[seconds]",
        ".results[].evidence[].value" => insta::dynamic_redaction(pids),
        ".results[].control[].value" => insta::dynamic_redaction(pids),
    });
}

#[test]
fn json_rendering_round_trips() {
    let report = fixture();
    let parsed: Report = serde_json::from_str(&report::json(&report)).unwrap();
    assert_eq!(parsed, report);
}

#[test]
fn junit_report_is_well_formed() {
    let xml = report::junit(&fixture());
    // quick-junit counts skipped cases in the suite's `disabled` attribute.
    assert!(
        xml.contains(r#"tests="4""#)
            && xml.contains(r#"failures="1""#)
            && xml.contains(r#"disabled="2""#),
        "{xml}"
    );
    assert!(xml.contains("<skipped message=\"--memory needs"), "{xml}");
    assert!(
        xml.contains("<skipped message=\"inconclusive: a wait"),
        "{xml}"
    );
}

#[test]
fn probe_list() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_mydocker-probe"))
        .arg("list")
        .output()
        .unwrap();
    assert!(output.status.success());
    insta::assert_snapshot!(String::from_utf8(output.stdout).unwrap());
}
