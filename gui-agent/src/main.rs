//! `corral-agent`: see `corral-agent --help` and `docs/agent.md`.

use std::process::ExitCode;

use clap::Parser;
use corral_agent::cli::Args;

fn main() -> ExitCode {
    let args = Args::parse();
    if args.protocol_version {
        println!("{}", corral_protocol::Version::CURRENT);
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match corral_agent::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("corral-agent: {err:#}");
            ExitCode::FAILURE
        }
    }
}
