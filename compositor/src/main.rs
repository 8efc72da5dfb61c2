//! `corral`: the compositor of the trusted GUI domain.
//!
//! Built in the compositor issue. Until then this binary only documents itself.

use clap::Parser;

/// The compositor of Corral's trusted GUI domain: shows qube windows with unforgeable frames
/// and labels, owns focus and the global clipboard.
///
/// Not implemented yet: this build only reports the protocol version. See docs/protocol.md.
#[derive(Debug, Parser)]
#[command(name = "corral", version)]
struct Args {
    /// Print the Corral GUI protocol version this compositor speaks and exit.
    #[arg(long)]
    protocol_version: bool,
}

fn main() {
    let args = Args::parse();
    if args.protocol_version {
        println!("{}", corral_protocol::Version::CURRENT);
        return;
    }
    eprintln!("corral: the compositor is not implemented yet (see `corral --help`).");
    std::process::exit(2);
}
