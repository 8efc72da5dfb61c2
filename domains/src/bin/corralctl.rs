//! `corralctl`: the admin CLI of Corral (the `qvm-*` tools of Qubes).
//!
//! The domain manager it talks to is built in the domains issue. Until then it can only check
//! qube names.

use clap::{Parser, Subcommand};

/// Administers Corral's qubes.
///
/// Not implemented yet beyond `check-name`: the domain manager comes with the domains issue.
#[derive(Debug, Parser)]
#[command(name = "corralctl", version)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Checks whether NAME is a valid qube name and says why not.
    CheckName {
        /// The name to check.
        name: String,
    },
}

fn main() {
    let args = Args::parse();
    match args.command {
        Command::CheckName { name } => match corral_domains::QubeName::new(&name) {
            Ok(name) => println!("{name}: ok"),
            Err(e) => {
                eprintln!("corralctl: {e}");
                std::process::exit(1);
            }
        },
    }
}
