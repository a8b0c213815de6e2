//! The OCI command line, runc's (parsed by liboci-cli): what podman, conmon
//! and runtime-tools call. Errors exit 1 with one line, as runc's do; a
//! `--log` file gets the line too, where podman looks for it.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use liboci_cli::{GlobalOpts, StandardCmd};
use runtime::error::Error;
use runtime::error::Result;

/// mydocker as an OCI runtime: create, start, state, kill, delete.
#[derive(Parser, Debug)]
#[command(name = "mydocker", version, max_term_width = 100)]
struct Oci {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: OciCommand,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand, Debug)]
enum OciCommand {
    #[command(flatten)]
    Standard(StandardCmd),
    /// Write a default config.json (one create takes as it is) into the bundle
    Spec(liboci_cli::Spec),
    /// Freeze every process of a running container (the cgroup freezer)
    Pause(liboci_cli::Pause),
    /// Thaw a paused container
    Resume(liboci_cli::Resume),
    /// Run a process in a running container (--process FILE, or ID CMD...)
    Exec(liboci_cli::Exec),
    /// The OCI containers of this --root (docker's `ps -a` lists them too)
    List(liboci_cli::List),
    /// What this runtime supports, as the specification's features JSON
    Features(liboci_cli::Features),
}

/// The commands only the OCI command line has.
const OCI_ONLY: [&str; 9] = [
    "create", "start", "state", "delete", "spec", "pause", "resume", "list", "features",
];

/// Global flags of either command line that take a value.
const VALUED: [&str; 5] = ["--root", "-r", "--log", "-l", "--log-format"];

/// Whether `args` (without the program's name) is an OCI invocation: its
/// command is one only the OCI interface has, or it is `kill` in the OCI
/// form (`kill ID SIGNAL`, or `--all`); docker's is `kill [-s SIG] NAME...`.
pub fn is_oci(args: &[OsString]) -> bool {
    // Lossy, not filtered: a flag's value that is not UTF-8 must still count.
    let args: Vec<std::borrow::Cow<str>> = args.iter().map(|a| a.to_string_lossy()).collect();
    let args: Vec<&str> = args.iter().map(|a| a.as_ref()).collect();
    let mut rest = args.iter();
    let command = loop {
        match rest.next() {
            Some(flag) if VALUED.contains(flag) => {
                rest.next();
            }
            Some(flag) if flag.starts_with('-') => {}
            Some(command) => break *command,
            None => return false,
        }
    };
    let rest: Vec<&str> = rest.copied().collect();
    match command {
        c if OCI_ONLY.contains(&c) => true,
        // Flags only runc's exec has; docker's shares -d, -t and -e.
        "exec" => rest.iter().any(|a| {
            [
                "--process",
                "-p",
                "--pid-file",
                "--console-socket",
                "--preserve-fds",
            ]
            .iter()
            .any(|flag| a == flag || a.starts_with(&format!("{flag}=")))
        }),
        "kill" => {
            if rest
                .iter()
                .any(|a| a.starts_with("-s") || a.starts_with("--signal"))
            {
                return false;
            }
            let positional: Vec<&&str> = rest.iter().filter(|a| !a.starts_with('-')).collect();
            rest.iter().any(|a| *a == "--all" || *a == "-a")
                || (positional.len() == 2
                    && runtime::lifecycle::parse_signal(positional[1]).is_ok())
        }
        _ => false,
    }
}

/// Parses and runs one OCI command; the process's exit code.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cli = match Oci::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprintln!("mydocker: {}", super::one_line(&e.render().to_string()));
            return ExitCode::FAILURE;
        }
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::SUCCESS;
        }
    };
    let root = cli
        .global
        .root
        .clone()
        .or_else(|| std::env::var_os("MYDOCKER_ROOT").map(PathBuf::from))
        .unwrap_or_else(runtime::store::default_root);
    match run(&root, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mydocker: {e}");
            if let Some(log) = &cli.global.log {
                log_error(log, cli.global.log_format.as_deref(), &e.to_string());
            }
            ExitCode::FAILURE
        }
    }
}

fn run(root: &Path, command: OciCommand) -> Result<()> {
    let command = match command {
        OciCommand::Standard(command) => command,
        OciCommand::Pause(pause) => {
            return runtime::oci::set_paused(root, &pause.container_id, true)
        }
        OciCommand::Resume(resume) => {
            return runtime::oci::set_paused(root, &resume.container_id, false)
        }
        OciCommand::List(list) => {
            let states = runtime::oci::list(root)?;
            print!("{}", format_list(&states, &list.format, list.quiet)?);
            return Ok(());
        }
        OciCommand::Features(_) => {
            let features = runtime::oci::features();
            println!(
                "{}",
                serde_json::to_string_pretty(&features).expect("a JSON value prints")
            );
            return Ok(());
        }
        OciCommand::Exec(exec) => {
            let code = runtime::oci::exec(
                root,
                &exec.container_id,
                &runtime::oci::Exec {
                    process: exec.process,
                    command: exec.command,
                    env: exec.env,
                    cwd: exec.cwd,
                    tty: exec.tty,
                    detach: exec.detach,
                    pid_file: exec.pid_file,
                    console_socket: exec.console_socket,
                },
            )?;
            // runc's exec exits with the process's code.
            if code != 0 {
                std::process::exit(code);
            }
            return Ok(());
        }
        OciCommand::Spec(spec) => {
            if spec.rootless {
                return Err(Error::invalid(
                    "--rootless",
                    "true",
                    "no flag: a rootless configuration is not supported yet",
                ));
            }
            let dir = spec.bundle.unwrap_or_else(|| PathBuf::from("."));
            runtime::oci::write_default_config(&dir)?;
            return Ok(());
        }
    };
    // A killed `delete` (or create) left a tombstone or an unwritten
    // directory; the next create or delete finishes it. The cheap commands
    // (state, start, kill) stay cheap.
    if matches!(command, StandardCmd::Create(_) | StandardCmd::Delete(_)) {
        if let Err(e) = runtime::store::Store::new(root).finish_interrupted() {
            eprintln!("mydocker: warning: finishing a killed removal: {e}");
        }
    }
    match command {
        StandardCmd::Create(create) => runtime::oci::create(
            root,
            &create.container_id,
            &runtime::oci::Create {
                bundle: create.bundle,
                pid_file: create.pid_file,
                console_socket: create.console_socket,
                preserve_fds: create.preserve_fds,
            },
        ),
        StandardCmd::Start(start) => runtime::oci::start(root, &start.container_id),
        StandardCmd::State(state) => {
            let state = runtime::oci::state(root, &state.container_id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&state).expect("a JSON value prints")
            );
            Ok(())
        }
        StandardCmd::Kill(kill) => {
            let signal = runtime::lifecycle::parse_signal(&kill.signal)?;
            runtime::oci::kill_container(root, &kill.container_id, signal, kill.all)
        }
        StandardCmd::Delete(delete) => {
            runtime::oci::delete(root, &delete.container_id, delete.force)
        }
    }
}

/// `list`'s output: ids alone (`-q`), runc's table, or a JSON array.
fn format_list(states: &[serde_json::Value], format: &str, quiet: bool) -> Result<String> {
    let field = |s: &serde_json::Value, key: &str| match &s[key] {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    if quiet {
        return Ok(states.iter().map(|s| field(s, "id") + "\n").collect());
    }
    match format {
        "json" => Ok(serde_json::to_string(states).expect("JSON values print") + "\n"),
        "table" => {
            let mut text = format!("{:<24} {:<8} {:<10} {}\n", "ID", "PID", "STATUS", "BUNDLE");
            for s in states {
                let pid = if field(s, "status") == "stopped" {
                    "0".to_owned()
                } else {
                    field(s, "pid")
                };
                text += &format!(
                    "{:<24} {:<8} {:<10} {}\n",
                    field(s, "id"),
                    pid,
                    field(s, "status"),
                    field(s, "bundle")
                );
            }
            Ok(text)
        }
        other => Err(Error::invalid("--format", other, "table or json")),
    }
}

/// Appends the error to the `--log` file, as text or as runc's JSON line.
fn log_error(path: &Path, format: Option<&str>, message: &str) {
    let line = match format {
        Some("json") => format!(
            "{}\n",
            serde_json::json!({"level": "error", "msg": message})
        ),
        _ => format!("mydocker: {message}\n"),
    };
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(line.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(line: &str) -> bool {
        let args: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        is_oci(&args)
    }

    #[test]
    fn the_oci_forms_are_told_from_dockers() {
        assert!(oci("create --bundle /b id"));
        assert!(oci(
            "--root /r --log /l --log-format json create id --bundle /b"
        ));
        assert!(oci("--systemd-cgroup start id"));
        assert!(oci("state id") && oci("delete --force id"));
        assert!(oci("kill id 9") && oci("kill id SIGTERM") && oci("kill --all id KILL"));
        assert!(!oci("kill id") && !oci("kill -s TERM a b") && !oci("kill a b c"));
        assert!(!oci("kill -sKILL a 9"), "docker's attached -s");
        assert!(
            !oci("kill web db"),
            "two names, the second no signal: docker's"
        );
        assert!(
            !oci("--root create run -d image sleep 1"),
            "--root takes a value"
        );
        assert!(!oci("run --rm image true") && !oci("ps -a") && !oci(""));
        assert!(oci("exec --pid-file /p --process /f --detach id"));
        assert!(oci("list -q") && oci("features") && oci("pause id"));
        assert!(oci("exec id --process=/f") && !oci("exec -d -t web sh"));
    }
}
