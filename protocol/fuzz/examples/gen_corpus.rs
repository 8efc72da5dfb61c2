//! Writes the seed corpus of every fuzz target: `cargo run --example gen_corpus` (from
//! `protocol/fuzz`). Seeds go to `corpus/<target>/seed-<name>`; existing files are kept.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in ["decode_agent", "decode_gui", "stream_agent"] {
        let dir = root.join(target);
        fs::create_dir_all(&dir)?;
        let seeds = corral_protocol::fuzzing::seed_corpus(target);
        for (name, bytes) in &seeds {
            fs::write(dir.join(format!("seed-{name}")), bytes)?;
        }
        println!("{target}: {} seeds in {}", seeds.len(), dir.display());
    }
    Ok(())
}
