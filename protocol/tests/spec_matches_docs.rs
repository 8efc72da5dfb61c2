//! `docs/protocol.md` must say what the code does.
//!
//! The specification carries machine-readable parts, each introduced by an HTML comment that
//! Markdown renderers hide:
//!
//! - `<!-- spec-table: agent-to-gui -->` and `<!-- spec-table: gui-to-agent -->`: the message
//!   summaries, one row per type: `| 0x0001 | hello | exact 8 | … |` or `| … | at most 1028 | … |`.
//!   They must equal [`codec::message_types`] exactly: same codes, names, order and body limits.
//! - `<!-- spec-layout: 0x000F -->`: the byte layout of one message body (one per message type),
//!   and `<!-- spec-layout: struct NAME -->` for repeated elements. Rows are
//!   `| offset | size | type | field | … |`; the numeric rows must be contiguous from offset 0,
//!   each size must match its type, and a fixed-size message's rows must add up to its exact
//!   body length.
//! - `<!-- spec-table: limits -->`: `| NAME | value | … |`. Every `pub const` of `limits.rs` must
//!   be listed, and every listed value must be the constant's value.
//! - `<!-- spec-table: session-limits -->`: the defaults of `SessionLimits` and `StreamLimits`.
//! - `<!-- spec-table: capabilities -->`, `window-states`, `cursor-shapes`, `state-requests`,
//!   `urgencies`, `close-reasons`,
//!   `pixel-formats`: the wire values of every flag and enumeration.
//! - `<!-- spec-example: NAME -->` followed by a fenced block of `offset  hex bytes` lines: the
//!   exact bytes the codec produces for the message built in [`examples`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use corral_protocol::channel::StreamLimits;
use corral_protocol::codec::{self, BodyLimit, Direction, MAX_LZ4_INLINE_BYTES};
use corral_protocol::limits::*;
use corral_protocol::session::SessionLimits;
use corral_protocol::{
    AgentMessage, BufferLayout, Capabilities, CloseReason, Compression, CursorShape, GuiMessage,
    InlinePixels, OutputId, OutputInfo, PixelFormat, Point, PoolBacking, PoolId, Rect,
    SanitizedText, Scale, Serial, Size, StateRequest, Urgency, Version, WindowId, WindowStates,
};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec() -> String {
    let path = manifest_dir().join("../docs/protocol.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Splits one Markdown table row into trimmed cells, honouring `\|` escapes.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                cell.push('|');
                chars.next();
            }
            '|' => out.push(std::mem::take(&mut cell)),
            c => cell.push(c),
        }
    }
    out.push(cell);
    out.into_iter()
        .map(|c| c.trim().trim_matches('`').trim().to_owned())
        .collect()
}

/// Every `<!-- KIND: ARG -->` marker in the document, in order, with the line it is on.
fn markers(doc: &str, kind: &str) -> Vec<(String, usize)> {
    let prefix = format!("<!-- {kind}:");
    doc.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let rest = line.trim().strip_prefix(&prefix)?;
            let arg = rest.strip_suffix("-->")?.trim();
            Some((arg.to_owned(), i))
        })
        .collect()
}

/// The data rows of the table that follows line `at` (header and separator skipped).
fn table_after(doc: &str, at: usize) -> Vec<Vec<String>> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut i = at + 1;
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    assert!(
        i < lines.len() && lines[i].trim_start().starts_with('|'),
        "docs/protocol.md line {}: a marker must be followed by a table",
        at + 1
    );
    let mut rows = Vec::new();
    let mut first = true;
    while i < lines.len() && lines[i].trim_start().starts_with('|') {
        let row = cells(lines[i]);
        let separator = row
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')));
        if !first && !separator {
            rows.push(row);
        }
        first = false;
        i += 1;
    }
    rows
}

/// The single table introduced by `<!-- spec-table: NAME -->`.
fn named_table(doc: &str, name: &str) -> Vec<Vec<String>> {
    let found: Vec<_> = markers(doc, "spec-table")
        .into_iter()
        .filter(|(arg, _)| arg == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "docs/protocol.md must contain exactly one `<!-- spec-table: {name} -->`"
    );
    table_after(doc, found[0].1)
}

fn parse_int(text: &str) -> Option<i128> {
    let t = text.replace(['_', ' ', ','], "");
    if let Some(hex) = t.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()
    } else {
        t.parse().ok()
    }
}

fn parse_limit(text: &str) -> Option<BodyLimit> {
    if let Some(n) = text.strip_prefix("exact ") {
        return Some(BodyLimit::Exact(parse_int(n)? as usize));
    }
    if let Some(n) = text.strip_prefix("at most ") {
        return Some(BodyLimit::AtMost(parse_int(n)? as usize));
    }
    None
}

fn direction_table(direction: Direction) -> &'static str {
    match direction {
        Direction::AgentToGui => "agent-to-gui",
        Direction::GuiToAgent => "gui-to-agent",
    }
}

#[test]
fn message_summaries_match_the_codec() {
    let doc = spec();
    for direction in [Direction::AgentToGui, Direction::GuiToAgent] {
        let rows = named_table(&doc, direction_table(direction));
        let documented: Vec<(u32, String, BodyLimit)> = rows
            .iter()
            .map(|row| {
                assert!(row.len() >= 3, "summary row too short: {row:?}");
                let code = parse_int(&row[0])
                    .and_then(|c| u32::try_from(c).ok())
                    .unwrap_or_else(|| panic!("bad type number {:?}", row[0]));
                let limit = parse_limit(&row[2])
                    .unwrap_or_else(|| panic!("bad body length {:?} for {}", row[2], row[1]));
                (code, row[1].clone(), limit)
            })
            .collect();
        let actual: Vec<(u32, String, BodyLimit)> = codec::message_types(direction)
            .iter()
            .map(|(c, n, l)| (*c, (*n).to_owned(), *l))
            .collect();
        assert_eq!(
            documented, actual,
            "the {direction:?} summary in docs/protocol.md differs from codec.rs"
        );
    }
}

fn type_size(ty: &str) -> Option<i128> {
    match ty {
        "u8" | "bool" => Some(1),
        "u16" => Some(2),
        "u32" | "i32" => Some(4),
        "u64" => Some(8),
        _ => None,
    }
}

/// Checks one layout table; returns the end of its contiguous numeric prefix and whether every
/// row was numeric.
fn check_layout(what: &str, rows: &[Vec<String>]) -> (i128, bool) {
    let mut expected = 0i128;
    for row in rows {
        assert!(row.len() >= 4, "{what}: layout row too short: {row:?}");
        let Some(offset) = parse_int(&row[0]) else {
            return (expected, false);
        };
        assert_eq!(
            offset, expected,
            "{what}: field {} starts at {offset}, but the previous field ends at {expected}",
            row[3]
        );
        let Some(size) = parse_int(&row[1]) else {
            return (expected, false);
        };
        if let Some(type_bytes) = type_size(&row[2]) {
            assert_eq!(
                type_bytes, size,
                "{what}: field {} is a {} but {size} bytes long",
                row[3], row[2]
            );
        }
        expected += size;
    }
    (expected, true)
}

#[test]
fn every_message_has_a_consistent_layout() {
    let doc = spec();
    let layouts = markers(&doc, "spec-layout");
    let mut documented = BTreeSet::new();
    for (arg, line) in &layouts {
        let rows = table_after(&doc, *line);
        if let Some(name) = arg.strip_prefix("struct ") {
            check_layout(&format!("struct {name}"), &rows);
            continue;
        }
        let code = parse_int(arg)
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or_else(|| panic!("bad spec-layout marker {arg:?}"));
        assert!(documented.insert(code), "two layouts for {code:#06x}");
        let limit = codec::body_limit(Direction::AgentToGui, code)
            .or_else(|| codec::body_limit(Direction::GuiToAgent, code))
            .unwrap_or_else(|| panic!("layout for unknown message type {code:#06x}"));
        let (end, all_numeric) = check_layout(&format!("{code:#06x}"), &rows);
        match limit {
            BodyLimit::Exact(n) => {
                assert!(
                    all_numeric,
                    "{code:#06x} has a fixed body; every row needs a number"
                );
                assert_eq!(
                    end, n as i128,
                    "{code:#06x}: layout adds up to {end} bytes, codec says exactly {n}"
                );
            }
            BodyLimit::AtMost(n) => assert!(
                end <= n as i128,
                "{code:#06x}: fixed part of {end} bytes exceeds the limit {n}"
            ),
        }
    }
    for direction in [Direction::AgentToGui, Direction::GuiToAgent] {
        for (code, name, _) in codec::message_types(direction) {
            assert!(
                documented.contains(code),
                "docs/protocol.md has no `<!-- spec-layout: {code:#06x} -->` for {name}"
            );
        }
    }
}

/// The value of every constant the limits table may name.
fn constant(name: &str) -> Option<i128> {
    let v = match name {
        "MAX_SURFACE_DIMENSION" => MAX_SURFACE_DIMENSION as i128,
        "MAX_TITLE_BYTES" => MAX_TITLE_BYTES as i128,
        "MAX_APP_ID_BYTES" => MAX_APP_ID_BYTES as i128,
        "MAX_REASON_BYTES" => MAX_REASON_BYTES as i128,
        "MAX_APP_NAME_BYTES" => MAX_APP_NAME_BYTES as i128,
        "MAX_APP_ENTRIES" => MAX_APP_ENTRIES as i128,
        "MAX_DAMAGE_RECTS" => MAX_DAMAGE_RECTS as i128,
        "MAX_POOL_BYTES" => MAX_POOL_BYTES as i128,
        "MAX_GRANT_REFS" => MAX_GRANT_REFS as i128,
        "MAX_CLIPBOARD_BYTES" => MAX_CLIPBOARD_BYTES as i128,
        "DEFAULT_CLIPBOARD_TEXT_BYTES" => DEFAULT_CLIPBOARD_TEXT_BYTES as i128,
        "MAX_KEYMAP_BYTES" => MAX_KEYMAP_BYTES as i128,
        "MAX_PRESSED_KEYS" => MAX_PRESSED_KEYS as i128,
        "MAX_OUTPUTS" => MAX_OUTPUTS as i128,
        "MAX_OUTPUT_NAME_BYTES" => MAX_OUTPUT_NAME_BYTES as i128,
        "MAX_LAUNCH_ARGS" => MAX_LAUNCH_ARGS as i128,
        "MAX_LAUNCH_ARG_BYTES" => MAX_LAUNCH_ARG_BYTES as i128,
        "MAX_INLINE_PIXEL_BYTES" => MAX_INLINE_PIXEL_BYTES as i128,
        "MAX_BODY_BYTES" => MAX_BODY_BYTES as i128,
        "HEADER_BYTES" => HEADER_BYTES as i128,
        "MAX_PENDING_FDS" => MAX_PENDING_FDS as i128,
        "MAX_COORDINATE" => MAX_COORDINATE as i128,
        "MAX_LAUNCH_TOTAL_BYTES" => MAX_LAUNCH_TOTAL_BYTES as i128,
        "MAX_NOTIFICATION_SUMMARY_BYTES" => MAX_NOTIFICATION_SUMMARY_BYTES as i128,
        "MAX_NOTIFICATION_BODY_BYTES" => MAX_NOTIFICATION_BODY_BYTES as i128,
        // Not in limits.rs, but a wire limit all the same (codec.rs).
        "MAX_LZ4_INLINE_BYTES" => MAX_LZ4_INLINE_BYTES as i128,
        _ => return None,
    };
    Some(v)
}

/// The names of the `pub const`s declared in `limits.rs`, read from its source so that a new
/// limit cannot be added without documenting it.
fn limits_rs_constants() -> BTreeSet<String> {
    let path = manifest_dir().join("src/limits.rs");
    let source = std::fs::read_to_string(&path).expect("reading limits.rs");
    source
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("pub const ")?;
            Some(rest.split(':').next()?.trim().to_owned())
        })
        .collect()
}

#[test]
fn limits_table_matches_limits_rs() {
    let doc = spec();
    let rows = named_table(&doc, "limits");
    let mut documented = BTreeMap::new();
    for row in &rows {
        let name = row[0].clone();
        let value =
            parse_int(&row[1]).unwrap_or_else(|| panic!("bad value for {name}: {:?}", row[1]));
        let actual = constant(&name).unwrap_or_else(|| {
            panic!(
                "docs/protocol.md names {name}, which this test does not know; add it to `constant`"
            )
        });
        assert_eq!(
            value, actual,
            "docs/protocol.md says {name} = {value}; the code says {actual}"
        );
        assert!(
            documented.insert(name.clone(), value).is_none(),
            "{name} listed twice"
        );
    }
    for name in limits_rs_constants() {
        assert!(
            documented.contains_key(&name),
            "limits.rs declares {name}, but the limits table of docs/protocol.md does not list it"
        );
        assert!(
            constant(&name).is_some(),
            "limits.rs declares {name}; add it to `constant` in this test"
        );
    }
}

#[test]
fn session_limits_table_matches_defaults() {
    let doc = spec();
    let rows = named_table(&doc, "session-limits");
    let s = SessionLimits::default();
    let expected: BTreeMap<&str, i128> = [
        ("max_windows", s.max_windows as i128),
        ("max_pools", s.max_pools as i128),
        ("max_pool_bytes", s.max_pool_bytes as i128),
        (
            "max_messages_per_second",
            i128::from(s.max_messages_per_second),
        ),
        ("message_burst", i128::from(s.message_burst)),
        (
            "max_queued_bytes",
            StreamLimits::default().max_queued_bytes as i128,
        ),
    ]
    .into_iter()
    .collect();
    let documented: BTreeMap<String, i128> = rows
        .iter()
        .map(|row| {
            let name = row[0].rsplit("::").next().unwrap_or(&row[0]).to_owned();
            let value = parse_int(&row[1]).unwrap_or_else(|| panic!("bad value for {name}"));
            (name, value)
        })
        .collect();
    let expected: BTreeMap<String, i128> = expected
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(
        documented, expected,
        "session budgets in docs/protocol.md differ from the defaults"
    );
}

/// `(value, name)` rows of a table whose first column is a number and a later column a name.
fn value_name_rows(doc: &str, table: &str, name_column: usize) -> Vec<(i128, String)> {
    named_table(doc, table)
        .iter()
        .map(|row| {
            let value =
                parse_int(&row[0]).unwrap_or_else(|| panic!("{table}: bad value {:?}", row[0]));
            (value, row[name_column].clone())
        })
        .collect()
}

fn kebab(debug_name: &str) -> String {
    let mut out = String::new();
    for (i, c) in debug_name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn flag_and_enum_tables_match_the_code() {
    let doc = spec();

    let caps: Vec<(i128, String)> = Capabilities::all()
        .iter_names()
        .map(|(name, flag)| (i128::from(flag.bits()), name.to_owned()))
        .collect();
    assert_eq!(
        value_name_rows(&doc, "capabilities", 1),
        caps,
        "capability bits"
    );

    let states: Vec<(i128, String)> = WindowStates::all()
        .iter_names()
        .map(|(name, flag)| (i128::from(flag.bits()), name.to_owned()))
        .collect();
    assert_eq!(
        value_name_rows(&doc, "window-states", 1),
        states,
        "window state bits"
    );

    let shapes: Vec<(i128, String)> = CursorShape::ALL
        .iter()
        .map(|s| (i128::from(s.to_wire()), kebab(&format!("{s:?}"))))
        .collect();
    assert_eq!(
        value_name_rows(&doc, "cursor-shapes", 1),
        shapes,
        "cursor shapes"
    );
    assert!(CursorShape::from_wire(CursorShape::ALL.len() as u32).is_err());

    let requests: Vec<(i128, String)> = StateRequest::ALL
        .iter()
        .map(|r| (i128::from(r.to_wire()), format!("{r:?}").to_lowercase()))
        .collect();
    assert_eq!(
        value_name_rows(&doc, "state-requests", 1),
        requests,
        "state requests"
    );
    assert!(StateRequest::from_wire(StateRequest::ALL.len() as u32).is_err());

    let formats: Vec<(i128, String)> = [PixelFormat::Argb8888, PixelFormat::Xrgb8888]
        .iter()
        .map(|f| (i128::from(f.to_wire()), format!("{f:?}").to_lowercase()))
        .collect();
    assert_eq!(
        value_name_rows(&doc, "pixel-formats", 1),
        formats,
        "pixel formats"
    );
    assert!(PixelFormat::from_wire(2).is_err());

    let urgencies: Vec<(i128, String)> = Urgency::ALL
        .iter()
        .map(|u| (i128::from(u.to_wire()), format!("{u:?}").to_lowercase()))
        .collect();
    assert_eq!(
        value_name_rows(&doc, "urgencies", 1),
        urgencies,
        "urgencies"
    );
    assert!(Urgency::from_wire(Urgency::ALL.len() as u8).is_err());

    let reasons: Vec<(i128, String)> = CloseReason::ALL
        .iter()
        .map(|r| (i128::from(r.to_wire()), format!("{r:?}").to_lowercase()))
        .collect();
    assert_eq!(
        value_name_rows(&doc, "close-reasons", 1),
        reasons,
        "close reasons"
    );
    assert!(CloseReason::from_wire(0).is_err());
    assert!(CloseReason::from_wire(CloseReason::ALL.len() as u32 + 1).is_err());
}

fn text(s: &str) -> SanitizedText {
    SanitizedText::sanitize(s, 256)
}

fn agent(msg: &AgentMessage) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_agent(msg, &mut out);
    // Every example must also decode back to itself.
    let (decoded, used) = codec::decode_agent_frame(&out).unwrap().unwrap();
    assert_eq!(used, out.len());
    assert_eq!(&decoded, msg);
    out
}

fn gui(msg: &GuiMessage) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_gui(msg, &mut out);
    let (decoded, used) = codec::decode_gui_frame(&out).unwrap().unwrap();
    assert_eq!(used, out.len());
    assert_eq!(&decoded, msg);
    out
}

/// The worked examples of the specification, by name.
fn examples() -> Vec<(&'static str, Vec<u8>)> {
    let window = WindowId::new(1).unwrap();
    let pool = PoolId::new(1).unwrap();
    let inline_pool = PoolId::new(2).unwrap();
    let unix_caps = Capabilities::MEMFD_POOLS
        | Capabilities::INLINE_PIXELS
        | Capabilities::LZ4
        | Capabilities::CLIPBOARD_PNG;
    let layout =
        BufferLayout::new(0, Size::new(640, 480).unwrap(), 2560, PixelFormat::Argb8888).unwrap();
    // Two rows of eight opaque pixels, 0xFF336699 (A=FF R=33 G=66 B=99).
    let row: Vec<u8> = std::iter::repeat_n(0xFF33_6699u32.to_le_bytes(), 8)
        .flatten()
        .collect();
    let two_rows = [row.clone(), row].concat();
    vec![
        (
            "hello",
            agent(&AgentMessage::Hello {
                version: Version::CURRENT,
                capabilities: unix_caps,
            }),
        ),
        (
            "welcome",
            gui(&GuiMessage::Welcome {
                version: Version::CURRENT,
                capabilities: unix_caps,
                outputs: vec![OutputInfo {
                    id: OutputId::new(1).unwrap(),
                    position: Point::new(0, 0).unwrap(),
                    size: Size::new(1920, 1080).unwrap(),
                    scale_120ths: Scale::ONE,
                    refresh_mhz: 60_000,
                    name: SanitizedText::sanitize("eDP-1", 64),
                }],
            }),
        ),
        (
            "create_toplevel",
            agent(&AgentMessage::CreateToplevel { window }),
        ),
        (
            "set_title",
            agent(&AgentMessage::SetTitle {
                window,
                title: text("Document.odt — LibreOffice"),
            }),
        ),
        ("map", agent(&AgentMessage::Map { window })),
        (
            "pool_create",
            agent(&AgentMessage::PoolCreate {
                pool,
                size: 640 * 480 * 4,
                backing: PoolBacking::MemFd,
            }),
        ),
        (
            "attach",
            agent(&AgentMessage::Attach {
                window,
                pool,
                layout,
            }),
        ),
        (
            "damage",
            agent(&AgentMessage::Damage {
                window,
                rects: vec![Rect::new(0, 0, 640, 480).unwrap()],
            }),
        ),
        (
            "commit",
            agent(&AgentMessage::Commit {
                window,
                serial: Serial(1),
            }),
        ),
        (
            "frame_done",
            gui(&GuiMessage::FrameDone {
                window,
                timestamp_ns: 16_666_667,
            }),
        ),
        (
            "pool_write",
            agent(&AgentMessage::PoolWrite {
                pool: inline_pool,
                pixels: InlinePixels::new(2560 * 10 + 4 * 20, 2560, 32, 2, two_rows.clone())
                    .unwrap(),
                compression: Compression::None,
            }),
        ),
        (
            "pool_write_lz4",
            agent(&AgentMessage::PoolWrite {
                pool: inline_pool,
                pixels: InlinePixels::new(2560 * 10 + 4 * 20, 2560, 32, 2, two_rows).unwrap(),
                compression: Compression::Lz4,
            }),
        ),
    ]
}

fn hex_lines(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        out.push_str(&format!("{:04x} ", i * 16));
        for (j, b) in chunk.iter().enumerate() {
            if j == 8 {
                out.push(' ');
            }
            out.push_str(&format!(" {b:02x}"));
        }
        out.push('\n');
    }
    out
}

/// Bytes of the fenced block after line `at`: each line is `OFFSET  hex hex …`; anything after
/// the hex bytes (an annotation) is ignored. Offsets must count up correctly.
fn example_bytes(doc: &str, name: &str, at: usize) -> Vec<u8> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut i = at + 1;
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    assert!(
        lines
            .get(i)
            .is_some_and(|l| l.trim_start().starts_with("```")),
        "example {name}: the marker must be followed by a fenced block"
    );
    i += 1;
    let mut bytes = Vec::new();
    while i < lines.len() && !lines[i].trim_start().starts_with("```") {
        let mut tokens = lines[i].split_whitespace();
        if let Some(offset) = tokens.next() {
            let offset = usize::from_str_radix(offset, 16)
                .unwrap_or_else(|_| panic!("example {name}: bad offset in {:?}", lines[i]));
            assert_eq!(
                offset,
                bytes.len(),
                "example {name}: offset {offset:#x} is wrong"
            );
            for token in tokens {
                if token.len() != 2 {
                    break;
                }
                match u8::from_str_radix(token, 16) {
                    Ok(b) => bytes.push(b),
                    Err(_) => break,
                }
            }
        }
        i += 1;
    }
    bytes
}

#[test]
fn worked_examples_are_the_codecs_bytes() {
    let doc = spec();
    let expected: BTreeMap<&str, Vec<u8>> = examples().into_iter().collect();
    let found = markers(&doc, "spec-example");
    let names: BTreeSet<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    let wanted: BTreeSet<&str> = expected.keys().copied().collect();
    assert_eq!(
        names, wanted,
        "the examples in docs/protocol.md and in this test differ"
    );
    for (name, line) in &found {
        let documented = example_bytes(&doc, name, *line);
        let actual = &expected[name.as_str()];
        assert_eq!(
            &documented,
            actual,
            "example {name} in docs/protocol.md is wrong; the codec produces:\n{}",
            hex_lines(actual)
        );
    }
}

/// The LZ4 bound the specification states holds for incompressible data of the largest size.
#[test]
fn lz4_worst_case_fits_the_documented_bound() {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let noise: Vec<u8> = (0..MAX_INLINE_PIXEL_BYTES)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    let compressed = lz4_flex::block::compress(&noise);
    assert!(
        compressed.len() <= MAX_LZ4_INLINE_BYTES,
        "{} bytes of LZ4 for incompressible input; the bound is {MAX_LZ4_INLINE_BYTES}",
        compressed.len()
    );
}

/// Prints every example in the document's format (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn print_examples() {
    for (name, bytes) in examples() {
        println!(
            "<!-- spec-example: {name} -->\n```text\n{}```\n",
            hex_lines(&bytes)
        );
    }
}
