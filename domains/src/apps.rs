//! The applications a qube offers: the `.desktop` entries of its template's root.
//!
//! Like Qubes' app menus, the list comes from the template, so it exists for a stopped qube
//! too and needs nothing running. A template is qube-controlled, so everything here treats its
//! files as hostile:
//!
//! - The applications folder is opened with `openat2(RESOLVE_IN_ROOT)` on the template's root:
//!   a symlink planted in the template (`usr/share/applications -> /etc`) resolves inside the
//!   template, never into the GUI domain's files.
//! - Each entry is opened with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` and `O_NONBLOCK`, must be
//!   a regular file of at most [`MAX_DESKTOP_FILE_BYTES`], and at most [`MAX_DESKTOP_FILES`]
//!   entries are looked at: a template cannot make the manager block (a FIFO), read forever or
//!   allocate without bound.
//! - Names are sanitised like window titles (no control, bidi or invisible characters) and
//!   bounded; ids are restricted to `[A-Za-z0-9._-]`. An entry that fails a check is skipped,
//!   not repaired.
//!
//! The command line comes from the entry's `Exec` key with field codes removed. It runs inside
//! the qube, which could run anything anyway; it is checked only so that what the user is shown
//! is what runs.
//!
//! A qube's `menu-items` feature (space-separated ids, as in Qubes) narrows the list to those
//! applications, in that order.

use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use corral_protocol::text::SanitizedText;
use rustix::fs::{Dir, FileType, Mode, OFlags, ResolveFlags};
use serde::{Deserialize, Serialize};

/// Where a root keeps its desktop entries, relative to the root.
pub const APPLICATIONS_DIR: &str = "usr/share/applications";
/// Most directory entries looked at.
pub const MAX_DESKTOP_FILES: usize = 2048;
/// Largest desktop file read.
pub const MAX_DESKTOP_FILE_BYTES: usize = 64 * 1024;
/// Longest shown name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest application id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Most arguments of a command line.
pub const MAX_ARGS: usize = 64;
/// Longest command line, all arguments together, in bytes.
pub const MAX_COMMAND_BYTES: usize = 4096;
/// The feature that narrows a qube's menu.
pub const MENU_ITEMS_FEATURE: &str = "menu-items";

/// One application a qube offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppEntry {
    /// The desktop file id: its file name without `.desktop`.
    pub id: String,
    /// The sanitised display name.
    pub name: String,
    /// The command, field codes removed.
    pub argv: Vec<String>,
    /// Whether it wants a terminal (`Terminal=true`).
    pub terminal: bool,
}

/// Whether `id` is an application id this module accepts.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_BYTES
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Reads the applications under `root`/[`APPLICATIONS_DIR`], sorted by name then id. A missing
/// folder is an empty list; entries that fail a check are skipped.
pub fn scan(root: &Path) -> io::Result<Vec<AppEntry>> {
    let root_fd = rustix::fs::open(
        root,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let dir = match rustix::fs::openat2(
        &root_fd,
        APPLICATIONS_DIR,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Missing, or links that lead nowhere inside the root: the template offers nothing.
        Err(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR | rustix::io::Errno::LOOP) => {
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    let mut names = Vec::new();
    for (seen, entry) in Dir::read_from(&dir)?.enumerate() {
        if seen >= MAX_DESKTOP_FILES {
            break;
        }
        let entry = entry?;
        let Ok(untrusted_name) = entry.file_name().to_str() else {
            continue;
        };
        let Some(id) = untrusted_name.strip_suffix(".desktop") else {
            continue;
        };
        if valid_id(id) && matches!(entry.file_type(), FileType::RegularFile | FileType::Unknown) {
            names.push(id.to_owned());
        }
    }
    let mut apps: Vec<AppEntry> = names
        .into_iter()
        .filter_map(|id| {
            let text = read_bounded(&dir, &format!("{id}.desktop")).ok()??;
            parse_desktop_entry(&id, &text)
        })
        .collect();
    apps.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
    Ok(apps)
}

/// The list a qube shows: `apps` narrowed and ordered by the `menu-items` feature when it is
/// set.
pub fn menu(apps: Vec<AppEntry>, menu_items: Option<&str>) -> Vec<AppEntry> {
    let Some(items) = menu_items else {
        return apps;
    };
    let mut out = Vec::new();
    for id in items.split_whitespace() {
        if let Some(app) = apps.iter().find(|a| a.id == id)
            && !out.iter().any(|a: &AppEntry| a.id == id)
        {
            out.push(app.clone());
        }
    }
    out
}

/// The file's bytes when it is a regular file of at most [`MAX_DESKTOP_FILE_BYTES`].
fn read_bounded(dir: &OwnedFd, name: &str) -> io::Result<Option<Vec<u8>>> {
    let fd = rustix::fs::openat2(
        dir,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )?;
    let stat = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile
        || stat.st_size < 0
        || stat.st_size as u64 > MAX_DESKTOP_FILE_BYTES as u64
    {
        return Ok(None);
    }
    let mut buf = Vec::new();
    // The size may change under us: never read past the bound.
    std::fs::File::from(fd)
        .take(MAX_DESKTOP_FILE_BYTES as u64 + 1)
        .read_to_end(&mut buf)?;
    Ok((buf.len() <= MAX_DESKTOP_FILE_BYTES).then_some(buf))
}

/// Parses one desktop entry (the `[Desktop Entry]` group of the freedesktop.org format).
/// `None` when it is not a shown application or a value fails a check.
pub fn parse_desktop_entry(id: &str, untrusted_text: &[u8]) -> Option<AppEntry> {
    if !valid_id(id) {
        return None;
    }
    let untrusted_text = std::str::from_utf8(untrusted_text).ok()?;
    let mut in_main_group = false;
    let (mut kind, mut name, mut exec) = (None, None, None);
    let (mut terminal, mut hidden) = (false, false);
    for line in untrusted_text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with('[') {
            in_main_group = line == "[Desktop Entry]";
            continue;
        }
        if !in_main_group {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "Type" => kind = Some(value),
            "Name" => name = Some(value),
            "Exec" => exec = Some(value),
            "Terminal" => terminal = value == "true",
            "NoDisplay" | "Hidden" => hidden |= value == "true",
            _ => {}
        }
    }
    if kind != Some("Application") || hidden {
        return None;
    }
    let name = SanitizedText::sanitize(&unescape_string(name?), MAX_NAME_BYTES);
    if name.as_str().trim().is_empty() {
        return None;
    }
    let argv = parse_exec(&unescape_string(exec?))?;
    Some(AppEntry {
        id: id.to_owned(),
        name: name.as_str().trim().to_owned(),
        argv,
        terminal,
    })
}

/// The string-value escapes of the desktop entry format: `\s \n \t \r \\`.
fn unescape_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => {
                // `\"` and friends belong to the Exec quoting rules: keep them for that pass.
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Splits an `Exec` value into arguments: double-quoted arguments with `\" \` \$ \\` escapes,
/// field codes (`%f %U …`) dropped, `%%` kept as `%`. `None` for a malformed or oversized
/// line or one with control characters.
pub fn parse_exec(untrusted_exec: &str) -> Option<Vec<String>> {
    if untrusted_exec.len() > MAX_COMMAND_BYTES || untrusted_exec.chars().any(|c| c.is_control()) {
        return None;
    }
    let mut args: Vec<String> = Vec::new();
    let mut chars = untrusted_exec.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut arg = String::new();
        let mut field_code_only = false;
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        c @ ('"' | '`' | '$' | '\\') => arg.push(c),
                        _ => return None,
                    },
                    c => arg.push(c),
                }
            }
            match chars.peek() {
                None | Some(' ') => {}
                Some(_) => return None,
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                chars.next();
                if c == '%' {
                    match chars.next()? {
                        '%' => arg.push('%'),
                        'f' | 'F' | 'u' | 'U' | 'i' | 'c' | 'k' | 'd' | 'D' | 'n' | 'N' | 'v'
                        | 'm' => field_code_only = arg.is_empty(),
                        _ => return None,
                    }
                } else if matches!(c, '"' | '\\' | '`' | '$') {
                    // Reserved characters must be quoted.
                    return None;
                } else {
                    arg.push(c);
                }
            }
        }
        if field_code_only && arg.is_empty() {
            continue;
        }
        if args.len() == MAX_ARGS {
            return None;
        }
        args.push(arg);
    }
    (!args.is_empty() && !args[0].is_empty()).then_some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> Option<AppEntry> {
        parse_desktop_entry("org.example.App", text.as_bytes())
    }

    #[test]
    fn parses_an_application() {
        let app = entry(
            "[Desktop Entry]\nType=Application\nName=Text Editor\nName[de]=Texteditor\n\
             Exec=gedit %U\nTerminal=false\n[Desktop Action new]\nName=Other\nExec=evil\n",
        )
        .unwrap();
        assert_eq!(app.name, "Text Editor");
        assert_eq!(app.argv, ["gedit"]);
        assert!(!app.terminal);
    }

    #[test]
    fn hidden_and_non_applications_are_skipped() {
        assert!(entry("[Desktop Entry]\nType=Link\nName=x\nExec=x\n").is_none());
        assert!(
            entry("[Desktop Entry]\nType=Application\nName=x\nExec=x\nNoDisplay=true").is_none()
        );
        assert!(entry("[Desktop Entry]\nType=Application\nName=x\nExec=x\nHidden=true").is_none());
        assert!(entry("[Desktop Entry]\nType=Application\nName=x\n").is_none());
        assert!(entry("[Other]\nType=Application\nName=x\nExec=x\n").is_none());
    }

    #[test]
    fn names_are_sanitised() {
        let app = entry(
            "[Desktop Entry]\nType=Application\nName=\u{202e}gnp.exe\u{200b} [dom0]\nExec=x\n",
        )
        .unwrap();
        assert_eq!(app.name, "gnp.exe [dom0]");
        let long = format!(
            "[Desktop Entry]\nType=Application\nName={}\nExec=x\n",
            "é".repeat(500)
        );
        assert!(entry(&long).unwrap().name.len() <= MAX_NAME_BYTES);
        assert!(entry("[Desktop Entry]\nType=Application\nName=\u{200b}\nExec=x\n").is_none());
    }

    #[test]
    fn exec_quoting_and_field_codes() {
        assert_eq!(
            parse_exec(r#"foot -e "my prog" --title="x" %f"#),
            None,
            "a quote inside an unquoted argument is malformed"
        );
        assert_eq!(
            parse_exec(r#"foot -e "my \"prog\"" 100%% %F"#).unwrap(),
            ["foot", "-e", "my \"prog\"", "100%"]
        );
        assert_eq!(parse_exec("%U"), None, "nothing left to run");
        assert_eq!(parse_exec("x %z"), None, "unknown field code");
        assert_eq!(parse_exec("x \"open"), None, "unterminated quote");
        assert_eq!(parse_exec("x $HOME"), None, "reserved character unquoted");
        assert_eq!(parse_exec("x\u{1b}[2J"), None, "control characters");
        assert_eq!(parse_exec(&"a ".repeat(MAX_ARGS + 1)), None);
        assert_eq!(parse_exec(&"a".repeat(MAX_COMMAND_BYTES + 1)), None);
    }

    #[test]
    fn ids_are_restricted() {
        assert!(valid_id("org.gnome.gedit"));
        assert!(valid_id("foot-server"));
        assert!(!valid_id(""));
        assert!(!valid_id(".hidden"));
        assert!(!valid_id("a/b"));
        assert!(!valid_id("a b"));
        assert!(!valid_id(&"a".repeat(MAX_ID_BYTES + 1)));
    }

    #[test]
    fn menu_items_narrow_and_order() {
        let app = |id: &str| AppEntry {
            id: id.into(),
            name: id.into(),
            argv: vec![id.into()],
            terminal: false,
        };
        let all = vec![app("a"), app("b"), app("c")];
        assert_eq!(menu(all.clone(), None), all);
        let ids: Vec<String> = menu(all, Some("c missing a c"))
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["c", "a"]);
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = parse_desktop_entry("x", &text);
            if let Ok(s) = std::str::from_utf8(&text) {
                let _ = parse_exec(s);
            }
        }
    }
}
