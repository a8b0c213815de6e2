//! Bad input to the probe runner and its helper: one clear line each, and
//! the exit codes the runner documents. Nothing here starts a container.

use std::process::{Command, Output, Stdio};

fn run(binary: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(binary);
    command.args(args).stdin(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the binary runs")
}

const RUNNER: &str = env!("CARGO_BIN_EXE_mydocker-probe");
/// Built by cargo for this test, so dynamically linked: what a probe's
/// rootfs cannot run.
const DYNAMIC_HELPER: &str = env!("CARGO_BIN_EXE_mydocker-probe-helper");

#[test]
fn a_dynamic_helper_is_refused_in_one_line_naming_it() {
    let out = run(
        RUNNER,
        &["run", "pid.view", "--helper", DYNAMIC_HELPER],
        &[],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(DYNAMIC_HELPER) && stderr.contains("linked dynamically"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_accelerator_is_refused_naming_it() {
    let out = run(RUNNER, &["run", "pid.view"], &[("MYDOCKER_ACCEL", "bogus")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"bogus\"") && stderr.contains("expected host, kvm or tcg"),
        "{stderr}"
    );
}

#[test]
fn the_helper_refuses_an_unknown_probe_id_listing_the_known() {
    let out = run(DYNAMIC_HELPER, &["no.such"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\"no.such\"") && stderr.contains("pid.view"),
        "{stderr}"
    );
}

#[test]
fn the_helper_reports_a_request_that_does_not_parse_as_an_error_line() {
    // uts.hostname reads its request before it does anything.
    let out = run(DYNAMIC_HELPER, &["uts.hostname", "{"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let error = line["error"].as_str().expect("an error line");
    assert!(error.contains("does not parse"), "{error}");
}
