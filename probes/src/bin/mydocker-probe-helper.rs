//! `mydocker-probe-helper`: the static binary that runs as the command of
//! every probe container and runs that probe's inside half (see `inside.rs`).

fn main() -> std::process::ExitCode {
    probes::inside::main()
}
