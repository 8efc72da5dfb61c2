//! Property tests on the config parser's input: whatever the bytes, parsing never panics, and
//! an error always points inside the text it was given.

use corral::config::{DEFAULT_CONFIG_TEXT, load_text};
use proptest::prelude::*;

fn check(text: &str) {
    match load_text("c.toml", text) {
        Ok(loaded) => {
            // A config that loads compiles its bindings and look without conflict.
            assert!(!loaded.bindings.list.is_empty() || text.contains("[keybindings]"));
        }
        Err(e) => {
            if e.line > 0 {
                let lines = text.split('\n').count();
                assert!(e.line <= lines, "line {} of {lines}: {e}", e.line);
                let line = e.source_line.as_deref().unwrap();
                assert!(
                    e.column <= line.chars().count() + 1,
                    "column {}: {e}",
                    e.column
                );
            }
            // Rendering the error never panics either.
            let _ = e.to_string();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        check(&text);
    }

    #[test]
    fn toml_looking_text_never_panics(
        text in "(\\[{1,2}[a-z_.]{0,20}\\]{0,2}\n|[a-z_]{1,20} = (\"[^\"\n]{0,20}\"|-?[0-9]{1,12}|[0-9]\\.[0-9]|true|\\[\"[a-z+{}]{0,12}\"\\])\n|#.{0,10}\n){0,12}"
    ) {
        check(&text);
    }

    #[test]
    fn the_default_file_with_bytes_changed_never_panics(
        edits in prop::collection::vec((0usize..DEFAULT_CONFIG_TEXT.len(), any::<char>()), 1..6)
    ) {
        let mut chars: Vec<char> = DEFAULT_CONFIG_TEXT.chars().collect();
        for (at, c) in edits {
            let at = at % chars.len();
            chars[at] = c;
        }
        let text: String = chars.into_iter().collect();
        check(&text);
    }

    #[test]
    fn border_width_is_accepted_exactly_in_its_range(v in -100i64..100) {
        let text = format!("[decorations]\nborder_width = {v}\n");
        let result = load_text("c.toml", &text);
        prop_assert_eq!(result.is_ok(), (1..=32).contains(&v));
        if let Err(e) = result {
            prop_assert_eq!((e.line, e.column), (2, 16));
        }
    }
}
