//! The `mydocker` command.

use std::process::ExitCode;

use clap::Parser;
use runtime::cli::{Cli, Command, RunArgs};
use runtime::error::EXIT_RUNTIME;
use runtime::parse::format_size;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // Usage errors are runtime errors to docker (125), told in one line.
            eprintln!("mydocker: {}", one_line(&e.render().to_string()));
            return ExitCode::from(EXIT_RUNTIME as u8);
        }
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::SUCCESS;
        }
    };
    let code = match &cli.command {
        Command::Run(args) => run(&cli.root, args),
    };
    ExitCode::from(code as u8)
}

fn run(root: &std::path::Path, args: &RunArgs) -> i32 {
    let outcome = args.to_spec().and_then(|spec| {
        let memory = spec.limits.memory;
        runtime::run(&spec, root).map(|outcome| (outcome, memory))
    });
    match outcome {
        Ok((outcome, memory)) => {
            if outcome.oom_killed {
                let limit = memory.map_or_else(
                    || "no memory limit of its own".to_owned(),
                    |m| format!("memory limit {}", format_size(m)),
                );
                let victim = if outcome.signal.is_some() {
                    "the container's init"
                } else {
                    "a process of the container"
                };
                eprintln!("mydocker: the OOM killer killed {victim} ({limit})");
            }
            if let Some(problem) = &outcome.cleanup_error {
                eprintln!("mydocker: warning: cleanup was incomplete: {problem}");
            }
            outcome.exit_code
        }
        Err(e) => {
            eprintln!("mydocker: {e}");
            e.exit_code()
        }
    }
}

/// Folds clap's first paragraph into one line and points at the help.
fn one_line(rendered: &str) -> String {
    let first_paragraph: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let text = first_paragraph.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text} (see `mydocker run --help`)")
}
