//! The config parser on arbitrary text: `corral::config::parse` must return a config or a
//! located error (whose position code slices the text by the parser's spans), never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A config file is read as UTF-8 text; anything else is refused before parsing.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = corral::config::parse("fuzz.toml", text) {
        // The error is shown to people: building its text must not panic either.
        let _ = e.to_string();
    }
});
