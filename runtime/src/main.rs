//! The `mydocker` command.

use std::process::ExitCode;

use clap::Parser;
use runtime::cli::{Cli, Command};
use runtime::error::EXIT_RUNTIME;
use runtime::parse::format_size;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors are runtime errors to docker (125); --help is not an error.
            return ExitCode::from(if e.use_stderr() {
                EXIT_RUNTIME as u8
            } else {
                0
            });
        }
    };
    let code = match cli.command {
        Command::Run(args) => run(&cli.root, &args),
    };
    ExitCode::from(code as u8)
}

fn run(root: &std::path::Path, args: &runtime::cli::RunArgs) -> i32 {
    let outcome = args.to_spec().and_then(|spec| {
        let memory = spec.limits.memory;
        runtime::run(&spec, root).map(|outcome| (outcome, memory))
    });
    match outcome {
        Ok((outcome, memory)) => {
            if outcome.oom_killed {
                let limit = memory.map_or_else(
                    || "no memory limit".to_owned(),
                    |m| format!("memory limit {}", format_size(m)),
                );
                let victim = if outcome.signal.is_some() {
                    "the container's init"
                } else {
                    "a process of the container"
                };
                eprintln!("mydocker: the OOM killer killed {victim} ({limit})");
            }
            outcome.exit_code
        }
        Err(e) => {
            eprintln!("mydocker: {e}");
            e.exit_code()
        }
    }
}
