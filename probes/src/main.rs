//! `mydocker-probe`: lists and runs the probes, and reports in several formats.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use probes::report::{self, Report};
use probes::runner::{self, Options};
use probes::Mutation;
use probes::{catalog, PROBES};

#[derive(Parser)]
#[command(
    name = "mydocker-probe",
    version,
    about = "Prove each container isolation property on the running kernel"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the probes and the property each one proves
    List,
    /// Run the probes (all, or those whose id contains a FILTER)
    Run(RunArgs),
    /// Run one probe in this process (used by `run`, one process per probe)
    #[command(name = "__probe", hide = true)]
    Probe {
        id: String,
        #[arg(long)]
        helper: PathBuf,
        #[arg(long)]
        mutation: Option<Mutation>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Run only probes whose id contains one of these
    filters: Vec<String>,
    /// Match filters exactly instead of as substrings
    #[arg(long)]
    exact: bool,
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Write the report here instead of to stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Inject a deliberate defect into the runtime (each probe must then fail)
    #[arg(long)]
    mutation: Option<Mutation>,
    /// The static helper binary [default: $MYDOCKER_PROBE_HELPER, or the one `cargo xtask helper` builds]
    #[arg(long, value_name = "PATH")]
    helper: Option<PathBuf>,
    /// Seconds after which a probe that has not finished is stopped (and counts as inconclusive)
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Times to run an inconclusive probe again before reporting it inconclusive
    #[arg(long, value_name = "N", default_value_t = runner::DEFAULT_RETRIES_INCONCLUSIVE)]
    retries_inconclusive: u32,
    /// Exit non-zero when a probe stays inconclusive, not only when one fails
    #[arg(long)]
    strict: bool,
    /// Print each probe's id to stderr as it starts, one line each, so that a
    /// console log shows which probe was running if the kernel dies
    #[arg(long)]
    progress: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Tap,
    Json,
    Junit,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Cmd::List => {
            print!("{}", list());
            ExitCode::SUCCESS
        }
        Cmd::Probe {
            id,
            helper,
            mutation,
        } => {
            let Some(probe) = catalog::find(&id) else {
                eprintln!("mydocker-probe: no probe {id:?}; `mydocker-probe list` shows them");
                return ExitCode::from(2);
            };
            let result = runner::run_here(probe, &helper, mutation);
            println!(
                "{}",
                serde_json::to_string(&result).expect("results serialize")
            );
            ExitCode::SUCCESS
        }
        Cmd::Run(args) => match run(&args) {
            Ok(report) if report.failed(args.strict) => ExitCode::FAILURE,
            Ok(_) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("mydocker-probe: {message}");
                ExitCode::from(2)
            }
        },
    }
}

/// One line per probe: id and property.
fn list() -> String {
    let width = PROBES.iter().map(|p| p.id.len()).max().unwrap_or(0);
    PROBES
        .iter()
        .map(|p| format!("{:<width$}  {}\n", p.id, p.property))
        .collect()
}

fn run(args: &RunArgs) -> Result<Report, String> {
    let probes = catalog::select(&args.filters, args.exact);
    if probes.is_empty() {
        return Err(format!(
            "no probe matches {:?}; `mydocker-probe list` shows them",
            args.filters
        ));
    }
    let accelerator = probes::Accelerator::from_env()?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    let helper = args
        .helper
        .clone()
        .or_else(|| std::env::var_os("MYDOCKER_PROBE_HELPER").map(PathBuf::from))
        .unwrap_or_else(|| {
            // Where `cargo xtask helper` puts it, seen from target/<profile>/;
            // else beside us, as in a static build or an initramfs.
            let beside = exe.with_file_name("mydocker-probe-helper");
            let target = exe
                .parent()
                .and_then(|p| p.parent())
                .unwrap_or(exe.as_path());
            let built = target.join(format!(
                "static/{}-unknown-linux-gnu/guest/mydocker-probe-helper",
                std::env::consts::ARCH
            ));
            // The static build first: a debug build of the helper also lands
            // beside a debug runner, but it is dynamic and cannot run in a
            // rootfs that holds nothing else.
            if built.is_file() {
                built
            } else {
                beside
            }
        });
    if !helper.is_file() {
        return Err(format!(
            "the probe helper {} does not exist: build it with `cargo xtask helper`, or pass --helper PATH",
            helper.display()
        ));
    }
    if !probes::lab::is_static_elf(&helper)? {
        return Err(format!(
            "the probe helper {} is linked dynamically, and a probe's rootfs holds nothing else to run it: build the static one with `cargo xtask helper`",
            helper.display()
        ));
    }
    let options = Options {
        exe,
        helper,
        timeout: Duration::from_secs(args.timeout),
        retries_inconclusive: args.retries_inconclusive,
    };
    let live = matches!(args.format, Format::Human)
        && args.out.is_none()
        && std::io::stderr().is_terminal();
    let mut results = Vec::new();
    for probe in probes {
        if live {
            eprint!("\r\x1b[2K  running {} ...", probe.id);
        } else if args.progress {
            eprintln!("{}{}", probes::PROGRESS_PREFIX, probe.id);
        }
        results.push(runner::run_isolated(&options, probe, args.mutation));
    }
    if live {
        eprint!("\r\x1b[2K");
    }
    let report = Report {
        kernel: probes::kernel::release(),
        cgroup_mode: runtime::cgroup::Mode::detect()
            .map_or_else(|e| format!("unknown ({e})"), |m| m.to_string()),
        accelerator,
        results,
        leftovers: runner::leftovers(),
    };
    let color = args.out.is_none() && std::io::stdout().is_terminal();
    let text = match args.format {
        Format::Human => report::human(&report, color),
        Format::Tap => report::tap(&report),
        Format::Json => report::json(&report),
        Format::Junit => report::junit(&report),
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))?
        }
        None => print!("{text}"),
    }
    Ok(report)
}
