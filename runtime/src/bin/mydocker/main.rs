//! The `mydocker` command.

use std::path::Path;
use std::process::ExitCode;

mod docker;
mod oci;

use docker::{Cli, Command, ExecArgs, NetworkCommand, RunArgs, SystemCommand, VolumeCommand};
use runtime::error::{Result, EXIT_RUNTIME};
use runtime::image::Images;
use runtime::lifecycle;
use runtime::parse::{format_size, parse_env};
use runtime::store::{Status, Store};

fn main() -> ExitCode {
    // One binary, two command lines over one store: runc's, for the OCI
    // clients, and docker's for everything else.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if oci::is_oci(&args[1..]) {
        return oci::main(args);
    }
    // docker's `--help`: the commands under its headings.
    if matches!(
        args.get(1..).map(|a| a.iter().map(|s| s.to_str()).collect::<Vec<_>>()),
        Some(ref rest) if rest.is_empty() || rest[..] == [Some("--help")] || rest[..] == [Some("-h")] || rest[..] == [Some("help")]
    ) {
        print!("{}", docker::grouped_help());
        return ExitCode::SUCCESS;
    }
    let command = <Cli as clap::CommandFactory>::command()
        .mut_subcommands(|c| c.help_template(docker::COMMAND_HELP));
    let parsed = command
        .try_get_matches_from(args)
        .and_then(|matches| <Cli as clap::FromArgMatches>::from_arg_matches(&matches));
    let cli = match parsed {
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
    let code = match dispatch(&cli.root, cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mydocker: {e}");
            e.exit_code()
        }
    };
    ExitCode::from(code as u8)
}

/// Runs one subcommand; returns the exit code.
fn dispatch(root: &Path, command: Command) -> Result<i32> {
    let store = Store::new(root);
    // A killed `mydocker run` or monitor left its teardown undone; whoever
    // comes next finishes it (see runtime::reap). It must not stop the
    // command asked for.
    if let Err(e) = runtime::reap::orphans(&store) {
        eprintln!("mydocker: warning: finishing the teardown of killed containers: {e}");
    }
    if let Err(e) = runtime::reap::networks(&store) {
        eprintln!("mydocker: warning: finishing a killed network create or remove: {e}");
    }
    let images = Images::new(root);
    match command {
        Command::Run(args) => run(root, &args),
        Command::Ps {
            all,
            quiet,
            filter,
            last,
            latest,
            format,
        } => {
            let filters = filter
                .iter()
                .map(|f| lifecycle::PsFilter::parse(f))
                .collect::<Result<Vec<_>>>()?;
            // A damaged record hides nothing else, and is not hidden itself.
            for (_, damage) in store.damaged() {
                eprintln!("mydocker: warning: {damage}");
            }
            // As docker's: -n and -l look at every container, and a status
            // filter does too.
            let last = if latest { Some(1) } else { last };
            let every = all || last.is_some() || filters.iter().any(|f| f.is_status());
            let mut records: Vec<_> = store
                .list()?
                .into_iter()
                // docker counts a restarting container as running.
                .filter(|r| every || r.live_status() == Status::Running || r.is_restarting())
                .filter(|r| filters.iter().all(|f| f.keeps(r)))
                .collect();
            if let Some(n) = last {
                records.sort_by_key(|r| r.created);
                records.drain(..records.len().saturating_sub(n));
            }
            match (quiet, format) {
                (true, _) => records.iter().for_each(|r| println!("{}", r.id)),
                (false, Some(format)) => {
                    print!("{}", runtime::inspect::ps_formatted(&records, &format)?)
                }
                (false, None) => print!("{}", lifecycle::ps_table(&records)),
            }
            Ok(0)
        }
        Command::Inspect {
            format,
            kind,
            record,
            names,
        } => inspect(&store, &names, format.as_deref(), kind.as_deref(), record),
        Command::Logs {
            follow,
            tail,
            timestamps,
            since,
            container,
        } => {
            let options = lifecycle::LogOptions {
                tail,
                follow,
                timestamps,
                since,
            };
            lifecycle::logs(&store, &container, &options, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Command::Exec(args) => exec(&store, &args),
        Command::Stop(args) => {
            let (grace, signal) = args.parsed()?;
            each(&args.containers, |c| {
                lifecycle::stop(&store, c, grace, signal).map(|r| println!("{}", r.name))
            })
        }
        Command::Restart(args) => {
            let (grace, signal) = args.parsed()?;
            each(&args.containers, |c| {
                lifecycle::restart(&store, c, grace, signal).map(|_| println!("{c}"))
            })
        }
        Command::Kill { signal, containers } => {
            let signal = lifecycle::parse_signal(&signal)?;
            each(&containers, |c| {
                lifecycle::kill_container(&store, c, signal).map(|r| println!("{}", r.name))
            })
        }
        Command::Unpause { containers } => each(&containers, |c| {
            lifecycle::set_paused(&store, c, false).map(|_| println!("{c}"))
        }),
        Command::Port { container, port } => {
            let record = store.resolve(&container)?;
            print!("{}", lifecycle::ports(&record, port.as_deref())?);
            Ok(0)
        }
        Command::Top { container, options } => {
            print!("{}", lifecycle::top(&store, &container, &options)?);
            Ok(0)
        }
        Command::Update { limits, containers } => {
            if limits.is_empty() {
                return Err(runtime::Error::invalid(
                    "update",
                    "no limit",
                    "give at least one of --memory, --memory-swap, --cpus, --cpu-shares, --cpuset-cpus, --cpuset-mems, --pids-limit",
                ));
            }
            each(&containers, |c| {
                lifecycle::update(&store, c, |current| update_limits(&limits, current))
                    .map(|_| println!("{c}"))
            })
        }
        Command::Stats {
            all,
            no_stream,
            no_trunc,
            format,
            containers,
        } => runtime::stats::show(
            &store,
            &containers,
            all,
            no_stream,
            no_trunc,
            format.as_deref(),
        ),
        Command::Cp {
            follow_link,
            source,
            destination,
        } => {
            runtime::copy::copy(&store, &source, &destination, follow_link)?;
            Ok(0)
        }
        Command::Rename {
            container,
            new_name,
        } => {
            store.rename(&container, &new_name)?;
            Ok(0)
        }
        Command::Wait { containers } => each(&containers, |c| {
            lifecycle::wait(&store, c).map(|code| println!("{code}"))
        }),
        Command::Rm {
            force,
            volumes,
            containers,
        } => each(&containers, |c| {
            lifecycle::remove(&store, c, force, volumes).map(|()| println!("{c}"))
        }),
        Command::Commit { container, image } => {
            let record = store.resolve(&container)?;
            let meta = images.commit(&store, &record, &image)?;
            println!("{}", meta.name);
            Ok(0)
        }
        Command::Import { tarball, name } => {
            images.finish_interrupted();
            let meta = images.import(&tarball, &name)?;
            println!("{} ({})", meta.name, format_size(meta.size));
            Ok(0)
        }
        Command::Images => {
            println!("{:<24} {:>10}   CREATED", "IMAGE", "SIZE");
            for image in images.list()? {
                let age = runtime::store::now().saturating_sub(image.created);
                println!(
                    "{:<24} {:>10}   {age} seconds ago",
                    image.name,
                    format_size(image.size)
                );
            }
            Ok(0)
        }
        Command::Network(command) => network(root, &store, command),
        Command::System(SystemCommand::Prune { all, force }) => prune(&store, all, force),
        Command::Volume(command) => volume(root, &store, command),
        Command::Rmi { force, image } => {
            images.finish_interrupted();
            images.remove(&image, force, &store)?;
            println!("{image}");
            Ok(0)
        }
    }
}

fn network(root: &Path, store: &Store, command: NetworkCommand) -> Result<i32> {
    let networks = runtime::network::Networks::new(root);
    match command {
        NetworkCommand::Create {
            driver,
            subnet,
            gateway,
            name,
        } => {
            if driver != "bridge" {
                return Err(runtime::Error::invalid(
                    "--driver",
                    driver,
                    "only bridge is supported",
                ));
            }
            let network = networks.create(store, &name, &subnet, gateway.as_deref())?;
            println!("{}", network.name);
        }
        NetworkCommand::Ls => {
            for (_, damage) in networks.damaged() {
                eprintln!("mydocker: warning: {damage}");
            }
            println!("{:<20} {:<20} {:<16} BRIDGE", "NAME", "SUBNET", "GATEWAY");
            for n in networks.list()? {
                println!(
                    "{:<20} {:<20} {:<16} {}",
                    n.name,
                    n.subnet.to_string(),
                    n.gateway.to_string(),
                    n.bridge
                );
            }
        }
        NetworkCommand::Inspect { name } => {
            let network = networks.get(&name)?;
            let leases = networks.leased(&name)?;
            let json = serde_json::json!({ "network": network, "leases": leases.leased });
            println!(
                "{}",
                serde_json::to_string_pretty(&json).expect("serializes")
            );
        }
        NetworkCommand::Rm { name } => {
            networks.remove(store, &name)?;
            println!("{name}");
        }
    }
    Ok(0)
}

fn volume(root: &Path, store: &Store, command: VolumeCommand) -> Result<i32> {
    let volumes = runtime::volume::Volumes::new(root);
    match command {
        VolumeCommand::Create { name } => {
            let name = name.unwrap_or_else(runtime::store::new_id);
            volumes.create(&name, false, None)?;
            println!("{name}");
            Ok(0)
        }
        VolumeCommand::Ls { quiet } => {
            if !quiet {
                println!("DRIVER    VOLUME NAME");
            }
            for volume in volumes.list() {
                match quiet {
                    true => println!("{}", volume.name),
                    false => println!("local     {}", volume.name),
                }
            }
            Ok(0)
        }
        VolumeCommand::Inspect { names } => {
            // As docker's: those found, then an error for each other.
            let mut shown = Vec::new();
            let mut code = 0;
            for name in &names {
                match volumes.get(name) {
                    Ok(meta) => shown.push(runtime::volume::inspect(&volumes, &meta)),
                    Err(e) => {
                        eprintln!("mydocker: {e}");
                        code = EXIT_RUNTIME;
                    }
                }
            }
            println!("{}", pretty(&serde_json::Value::Array(shown)));
            Ok(code)
        }
        // -f: a volume that is not there is no error.
        VolumeCommand::Rm { force, names } => each(&names, |n| {
            match volumes.remove(store, n) {
                Err(runtime::Error::NotFound { .. }) if force => Ok(()),
                other => other,
            }
            .map(|()| println!("{n}"))
        }),
        VolumeCommand::Prune { all, force } => {
            let what = match all {
                true => "all volumes not used by at least one container",
                false => "all anonymous volumes not used by at least one container",
            };
            if !force && !confirmed(&format!("WARNING! This will remove {what}.\n")) {
                return Ok(0);
            }
            let (removed, freed) = volumes.prune(store, all)?;
            if !removed.is_empty() {
                println!("Deleted Volumes:\n{}\n", removed.join("\n"));
            }
            println!("Total reclaimed space: {}", format_size(freed));
            Ok(0)
        }
    }
}

/// docker's question before a prune, after `warning`, answered on stdin.
fn confirmed(warning: &str) -> bool {
    eprint!("{warning}Are you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// `system prune`: asks first unless forced (as docker does, reading the
/// answer from stdin), then prints what went in docker's sections.
fn prune(store: &Store, images_too: bool, force: bool) -> Result<i32> {
    if !force {
        let images = if images_too {
            "all images without at least one container associated to them"
        } else {
            "no images (-a would remove those no container uses)"
        };
        if !confirmed(&format!(
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - {images}\n\n"
        )) {
            return Ok(0);
        }
    }
    let pruned = runtime::prune::prune(store, images_too)?;
    for damage in &pruned.damaged {
        eprintln!("mydocker: warning: {damage}; prune leaves it");
    }
    if pruned.images_kept {
        eprintln!("mydocker: warning: no image was removed: a damaged record may use any of them (remove it with rm -f first)");
    }
    for (title, names) in [
        ("Deleted Containers", &pruned.containers),
        ("Deleted Networks", &pruned.networks),
        ("Deleted Images", &pruned.images),
    ] {
        if !names.is_empty() {
            println!("{title}:\n{}\n", names.join("\n"));
        }
    }
    println!("Total reclaimed space: {}", format_size(pruned.reclaimed));
    for failure in &pruned.failures {
        eprintln!("mydocker: {failure}");
    }
    Ok(if pruned.failures.is_empty() {
        0
    } else {
        EXIT_RUNTIME
    })
}

/// `update`'s change to one container's limits. A new `--memory` alone
/// keeps a `--memory-swap` given before (docker's rule), which it may not
/// exceed; without one, swap may match memory, as at `run`.
fn update_limits(args: &docker::LimitArgs, limits: &mut runtime::spec::Limits) -> Result<()> {
    let swap_before = limits.memory_swap;
    args.apply(limits)?;
    if let (Some(memory), None, Some(runtime::spec::SwapLimit::Total(total))) =
        (limits.memory, &args.memory_swap, swap_before)
    {
        if memory > total {
            return Err(runtime::Error::invalid(
                "--memory",
                format_size(memory),
                format!(
                    "the container's --memory-swap is {}: raise it in the same update",
                    format_size(total)
                ),
            ));
        }
    }
    Ok(())
}

/// `inspect`: each object named, as a JSON array (docker's shape) or
/// through a template; a name that is nothing is reported, the others
/// still printed, and the exit is 125. `--record` prints one container's
/// record as mydocker keeps it.
fn inspect(
    store: &Store,
    names: &[String],
    format: Option<&str>,
    kind: Option<&str>,
    record: bool,
) -> Result<i32> {
    if record {
        let [name] = names else {
            return Err(runtime::Error::invalid(
                "--record",
                names.join(" "),
                "give one container",
            ));
        };
        let mut record = store.resolve(name)?;
        record.status = record.live_status();
        println!(
            "{}",
            serde_json::to_string_pretty(&record).expect("records serialize")
        );
        return Ok(0);
    }
    let template = format
        .map(|f| runtime::inspect::Format::parse("--format", f))
        .transpose()?;
    let mut found = Vec::new();
    let mut code = 0;
    for name in names {
        let object = runtime::inspect::find(store, name, kind);
        match object {
            Ok(object) => found.push(object),
            Err(e) => {
                eprintln!("mydocker: {e}");
                code = EXIT_RUNTIME;
            }
        }
    }
    match template {
        Some(template) => {
            for object in &found {
                print!("{}", template.render("--format", object)?);
            }
        }
        None => println!("{}", pretty(&serde_json::Value::Array(found))),
    }
    Ok(code)
}

/// JSON as docker indents it: four spaces.
fn pretty(value: &serde_json::Value) -> String {
    use serde::Serialize;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut serializer)
        .expect("JSON values serialize");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Applies `action` to every container named; reports each failure and
/// returns 125 if any failed, as docker does for multi-container commands.
fn each(containers: &[String], mut action: impl FnMut(&str) -> Result<()>) -> Result<i32> {
    let mut code = 0;
    for container in containers {
        if let Err(e) = action(container) {
            eprintln!("mydocker: {e}");
            code = EXIT_RUNTIME;
        }
    }
    Ok(code)
}

fn run(root: &Path, args: &RunArgs) -> Result<i32> {
    let spec = args.to_spec(root)?;
    if args.detach {
        println!("{}", runtime::detach::run_detached(&spec, root)?);
        return Ok(0);
    }
    let memory = spec.limits.memory;
    let outcome = runtime::run(&spec, root)?;
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
    Ok(outcome.exit_code)
}

fn exec(store: &Store, args: &ExecArgs) -> Result<i32> {
    let request = runtime::exec::ExecRequest {
        args: args.command.clone(),
        env: args
            .env
            .iter()
            .map(|e| parse_env(e))
            .collect::<Result<_, _>>()?,
        workdir: args.workdir.clone(),
        interactive: args.interactive,
        tty: args.tty,
        oci: None,
        detach: false,
        pid_file: None,
        console_socket: None,
    };
    runtime::exec::exec(store, &args.container, &request)
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
    format!("{text} (see `mydocker --help`)")
}
