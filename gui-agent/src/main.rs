//! `corral-agent`: the in-qube side of Corral's GUI.
//!
//! The Wayland compositor that apps inside a qube connect to is built in the gui-agent issue.
//! Until then this binary only documents itself and the protocol version it will speak.

use clap::Parser;

/// Runs inside a qube: the in-qube Wayland compositor that forwards app windows to the GUI
/// domain over the Corral GUI protocol.
///
/// Not implemented yet: this build only reports the protocol version. See docs/protocol.md.
#[derive(Debug, Parser)]
#[command(name = "corral-agent", version)]
struct Args {
    /// Print the Corral GUI protocol version this agent speaks and exit.
    #[arg(long)]
    protocol_version: bool,
}

fn main() {
    let args = Args::parse();
    if args.protocol_version {
        println!("{}", corral_protocol::Version::CURRENT);
        return;
    }
    eprintln!(
        "corral-agent: the in-qube compositor is not implemented yet (see `corral-agent --help`)."
    );
    std::process::exit(2);
}
