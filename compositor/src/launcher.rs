//! The launcher: a search box in the trusted layer listing every qube's applications.
//!
//! It is part of the compositor, not an app: no qube sees what is typed into it (while it is
//! open the keyboard goes to it and to nothing else), and what it shows comes from the domain
//! manager (qube names, label colours, states) and from templates' menu entries that the
//! manager has already sanitised (`corral_domains::apps`). Picking an entry asks the manager to
//! start the app, starting its qube first if needed; the manager's work happens on a thread,
//! never on the event loop, and a failure comes back as a notification.
//!
//! This module is the model and its drawing; `input.rs` routes keys here while it is open, and
//! the renderer draws [`draw`]'s pixels in the trusted layer.

use crate::domains::QubeApps;
use crate::labels::Rgb;
use crate::render::text::Pixels;

/// Rows shown at once.
pub const VISIBLE_ROWS: usize = 12;
/// Longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 64;
const WIDTH: i32 = 640;
const ROW_HEIGHT: i32 = 30;
const SEARCH_HEIGHT: i32 = 40;
const PADDING: i32 = 8;

/// Application ids of terminals, in order of preference, for a qube's "Terminal" entry.
const TERMINALS: &[&str] = &[
    "foot",
    "org.gnome.Console",
    "org.gnome.Terminal",
    "org.kde.konsole",
    "xfce4-terminal",
    "debian-xterm",
    "xterm",
];

/// What picking an entry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchRequest {
    pub qube: String,
    pub app: String,
    /// In a new disposable whose disposable template is `qube`.
    pub dispvm: bool,
}

/// One row of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub qube: String,
    pub colour: Rgb,
    /// `Running`, `Halted`, `Paused`.
    pub state: String,
    /// What the row says after the qube's name.
    pub text: String,
    pub request: LaunchRequest,
    /// Lowercase words the search matches against.
    haystack: String,
}

/// A key the launcher understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LauncherKey {
    Up,
    Down,
    PageUp,
    PageDown,
    Enter,
    Escape,
    Backspace,
    Text(char),
}

/// What a key did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still open (the list or the search changed, or nothing happened).
    Open,
    /// Closed without launching.
    Closed,
    /// Closed; launch this.
    Launch(LaunchRequest),
}

/// The launcher's state. Closed by default.
#[derive(Debug, Default)]
pub struct Launcher {
    open: bool,
    /// Whether the qube list is still being read.
    loading: bool,
    /// Why the list could not be read, if it could not.
    error: Option<String>,
    query: String,
    entries: Vec<Entry>,
    /// Indices into `entries` that match `query`.
    shown: Vec<usize>,
    selected: usize,
    /// Changes whenever what is drawn changes (the renderer caches the drawing by it).
    version: u64,
    /// Which opening the list being read belongs to (a list read for an earlier opening is
    /// dropped).
    opening: u64,
}

impl Launcher {
    pub fn is_open(&self) -> bool {
        self.open
    }

    /// Opens with an empty search, waiting for the list ([`Launcher::set_qubes`] with the
    /// token returned here).
    pub fn open(&mut self) -> u64 {
        *self = Launcher {
            open: true,
            loading: true,
            version: self.version + 1,
            opening: self.opening + 1,
            ..Launcher::default()
        };
        self.opening
    }

    pub fn close(&mut self) {
        *self = Launcher {
            version: self.version + 1,
            opening: self.opening,
            ..Launcher::default()
        };
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Where the box goes on an output: centred, a sixth of the way down.
    pub fn rect_on(output: crate::layout::Rect) -> crate::layout::Rect {
        let (w, h) = Launcher::size(output.w);
        crate::layout::Rect::new(
            output.x + (output.w - w) / 2,
            output.y + output.h / 6,
            w,
            h.min(output.h),
        )
    }

    /// The list read for opening `token` arrived (or could not be read). Ignored when the
    /// launcher was closed or opened again since.
    pub fn set_qubes(&mut self, token: u64, qubes: Result<Vec<QubeApps>, String>) {
        if !self.open || token != self.opening {
            return;
        }
        self.version += 1;
        self.loading = false;
        match qubes {
            Ok(qubes) => {
                self.entries = entries(&qubes);
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
        self.filter();
    }

    pub fn query(&self) -> &str {
        &self.query
    }

    /// The rows that match the search, in order.
    pub fn shown(&self) -> impl Iterator<Item = &Entry> {
        self.shown.iter().map(|&i| &self.entries[i])
    }

    pub fn selected(&self) -> Option<&Entry> {
        self.shown.get(self.selected).map(|&i| &self.entries[i])
    }

    pub fn key(&mut self, key: LauncherKey) -> Outcome {
        if !self.open {
            return Outcome::Closed;
        }
        self.version += 1;
        let last = self.shown.len().saturating_sub(1);
        match key {
            LauncherKey::Escape => {
                self.close();
                return Outcome::Closed;
            }
            LauncherKey::Enter => {
                let Some(entry) = self.selected() else {
                    return Outcome::Open;
                };
                let request = entry.request.clone();
                self.close();
                return Outcome::Launch(request);
            }
            LauncherKey::Up => self.selected = self.selected.saturating_sub(1),
            LauncherKey::Down => self.selected = (self.selected + 1).min(last),
            LauncherKey::PageUp => self.selected = self.selected.saturating_sub(VISIBLE_ROWS),
            LauncherKey::PageDown => self.selected = (self.selected + VISIBLE_ROWS).min(last),
            LauncherKey::Backspace => {
                self.query.pop();
                self.filter();
            }
            LauncherKey::Text(c) => {
                if !c.is_control() && self.query.chars().count() < MAX_QUERY_CHARS {
                    self.query.push(c);
                    self.filter();
                }
            }
        }
        Outcome::Open
    }

    /// Every word of the search must appear in the qube's name, the app's name or its id.
    fn filter(&mut self) {
        let words: Vec<String> = self
            .query
            .split_whitespace()
            .map(str::to_lowercase)
            .collect();
        self.shown = (0..self.entries.len())
            .filter(|&i| {
                words
                    .iter()
                    .all(|w| self.entries[i].haystack.contains(w.as_str()))
            })
            .collect();
        self.selected = 0;
    }

    /// The box's size for an output of `output_width` pixels.
    pub fn size(output_width: i32) -> (i32, i32) {
        let width = WIDTH.min(output_width - 2 * PADDING).max(64);
        (
            width,
            SEARCH_HEIGHT + VISIBLE_ROWS as i32 * ROW_HEIGHT + 2 * PADDING,
        )
    }
}

/// The rows for these qubes: each application, a "Terminal" entry where the qube has a known
/// terminal, and for a disposable template each application again as "in a new disposable".
fn entries(qubes: &[QubeApps]) -> Vec<Entry> {
    let mut out = Vec::new();
    for q in qubes {
        let colour = crate::domains::colour_of(&q.label, &q.colour);
        let mut push = |text: String, app: &str, dispvm: bool, extra: &str| {
            out.push(Entry {
                qube: q.name.clone(),
                colour,
                state: q.state.clone(),
                haystack: format!("{} {} {} {extra}", q.name, text, app).to_lowercase(),
                text,
                request: LaunchRequest {
                    qube: q.name.clone(),
                    app: app.to_owned(),
                    dispvm,
                },
            });
        };
        if let Some(term) = TERMINALS
            .iter()
            .find_map(|t| q.apps.iter().find(|a| a.id == *t))
        {
            push("Terminal".into(), &term.id, false, "shell console");
        }
        for app in &q.apps {
            push(app.name.clone(), &app.id, false, "");
        }
        if q.template_for_dispvms {
            for app in &q.apps {
                push(
                    format!("{} (new disposable)", app.name),
                    &app.id,
                    true,
                    "dispvm disposable",
                );
            }
        }
    }
    out
}

/// Draws the launcher box (`Launcher::size` for this output).
pub fn draw(launcher: &Launcher, width: i32, height: i32) -> Pixels {
    let background = Rgb::from_hex(0x1e1e1e);
    let text = Rgb::from_hex(0xeeeeec);
    let dim = Rgb::from_hex(0x9a9996);
    let highlight = Rgb::from_hex(0x3a3a3a);
    let mut p = Pixels::filled(width, height, background);
    let edge = Rgb::from_hex(0x888a85);
    p.fill_rect(0, 0, width, 1, edge);
    p.fill_rect(0, height - 1, width, 1, edge);
    p.fill_rect(0, 0, 1, height, edge);
    p.fill_rect(width - 1, 0, 1, height, edge);

    // The search field: what the user typed, and a caret.
    let field_w = width - 2 * PADDING;
    p.fill_rect(
        PADDING,
        PADDING,
        field_w,
        SEARCH_HEIGHT - 8,
        Rgb::from_hex(0x2d2d2d),
    );
    let prompt = if launcher.query.is_empty() {
        "Search applications in every qube…".to_owned()
    } else {
        launcher.query.clone()
    };
    let colour = if launcher.query.is_empty() { dim } else { text };
    let drawn = p.draw_text(
        &prompt,
        PADDING + 8,
        PADDING + 7,
        16.0,
        field_w - 20,
        colour,
    );
    let caret_x = if launcher.query.is_empty() {
        PADDING + 8
    } else {
        PADDING + 8 + drawn + 1
    };
    p.fill_rect(caret_x, PADDING + 6, 2, 20, text);

    let top = PADDING + SEARCH_HEIGHT;
    let message = if launcher.loading {
        Some("Reading the qubes' menus…".to_owned())
    } else if let Some(e) = &launcher.error {
        Some(format!("Cannot list qubes: {e}"))
    } else if launcher.shown.is_empty() {
        Some("No application matches".to_owned())
    } else {
        None
    };
    if let Some(message) = message {
        p.draw_text(&message, PADDING + 8, top + 6, 14.0, field_w - 16, dim);
        return p;
    }
    // Scroll so the selection stays visible.
    let first = launcher.selected.saturating_sub(VISIBLE_ROWS - 1);
    for (row, entry) in launcher.shown().skip(first).take(VISIBLE_ROWS).enumerate() {
        let y = top + row as i32 * ROW_HEIGHT;
        if first + row == launcher.selected {
            p.fill_rect(PADDING, y, field_w, ROW_HEIGHT, highlight);
        }
        // The label colour, as the frame of the app's windows will be.
        p.fill_rect(PADDING + 6, y + 7, 16, 16, entry.colour);
        let label = format!("[{}]", entry.qube);
        let x = PADDING + 30;
        let used = p.draw_text(&label, x, y + 6, 14.0, 200, text);
        let state_w = 70;
        p.draw_text(
            &entry.text,
            x + used + 8,
            y + 6,
            14.0,
            field_w - (x + used + 8) - state_w,
            text,
        );
        if entry.state != "Running" {
            p.draw_text(
                &entry.state.to_lowercase(),
                width - PADDING - state_w + 6,
                y + 8,
                12.0,
                state_w - 10,
                dim,
            );
        }
    }
    p
}

impl crate::state::State {
    /// Opens the launcher (the shortcut, or `corral msg launcher`): the keyboard leaves the
    /// focused window, and the domain manager's list is read on a thread.
    pub fn open_launcher(&mut self) {
        if self.lock.is_locked() {
            return;
        }
        let token = self.launcher.open();
        self.sync_focus();
        match self.domain_manager.clone() {
            Some(manager) => {
                let events = self.domain_events();
                crate::domains::in_background("corral-launcher-list", move || {
                    let list = crate::domains::qube_apps(&manager, None);
                    let _ = events.send(crate::domains::DomainEvent::LauncherList(token, list));
                });
            }
            None => self.launcher.set_qubes(
                token,
                Err("this corral runs without a domain manager (--no-domains)".into()),
            ),
        }
        self.queue_redraw();
    }

    pub fn close_launcher(&mut self) {
        self.launcher.close();
        self.sync_focus();
        self.queue_redraw();
    }

    /// Asks the domain manager to start `request` (on a thread); a failure becomes a toast.
    pub fn launch(&mut self, request: LaunchRequest) {
        let Some(manager) = self.domain_manager.clone() else {
            return;
        };
        let events = self.domain_events();
        crate::domains::in_background("corral-launch", move || {
            let result = manager.handle(
                corral_domains::api::Request::Launch {
                    name: request.qube.clone(),
                    app: request.app.clone(),
                    dispvm: request.dispvm,
                },
                Vec::new(),
            );
            if let Err(e) = result {
                let _ = events.send(crate::domains::DomainEvent::LaunchFailed {
                    qube: request.qube,
                    app: request.app,
                    why: e.to_string(),
                });
            }
        });
    }

    /// While the launcher is open every key goes to it (no window has the keyboard), except
    /// the shortcuts that must always work: lock, and the launcher's own (which closes it).
    pub fn launcher_intercepts_key(&mut self, keycode: u32, pressed: bool, time: u32) -> bool {
        use smithay::input::keyboard::{FilterResult, Keycode, keysyms};
        if !self.launcher.is_open() {
            return false;
        }
        enum Input {
            Key(LauncherKey),
            Action(crate::input::Action),
        }
        let serial = smithay::utils::SERIAL_COUNTER.next_serial();
        let state = if pressed {
            smithay::backend::input::KeyState::Pressed
        } else {
            smithay::backend::input::KeyState::Released
        };
        let keyboard = self.keyboard.clone();
        let input = keyboard.input(
            self,
            Keycode::new(keycode + 8),
            state,
            serial,
            time,
            |state, mods, handle| {
                if !pressed {
                    return FilterResult::Intercept(None);
                }
                let sym = handle.modified_sym().raw();
                let raw = handle.raw_syms().first().map(|s| s.raw()).unwrap_or(sym);
                if let Some(
                    action @ (crate::input::Action::Lock | crate::input::Action::Launcher),
                ) = state.input.bindings.action(mods, sym, raw)
                {
                    return FilterResult::Intercept(Some(Input::Action(action)));
                }
                let key = match sym {
                    keysyms::KEY_Up => LauncherKey::Up,
                    keysyms::KEY_Down | keysyms::KEY_Tab => LauncherKey::Down,
                    keysyms::KEY_Page_Up => LauncherKey::PageUp,
                    keysyms::KEY_Page_Down => LauncherKey::PageDown,
                    keysyms::KEY_Return | keysyms::KEY_KP_Enter => LauncherKey::Enter,
                    keysyms::KEY_Escape => LauncherKey::Escape,
                    keysyms::KEY_BackSpace => LauncherKey::Backspace,
                    _ if mods.ctrl || mods.alt || mods.logo => {
                        return FilterResult::Intercept(None);
                    }
                    _ => match handle.modified_sym().key_char() {
                        Some(c) => LauncherKey::Text(c),
                        None => return FilterResult::Intercept(None),
                    },
                };
                FilterResult::Intercept(Some(Input::Key(key)))
            },
        );
        match input.flatten() {
            Some(Input::Action(crate::input::Action::Lock)) => {
                self.close_launcher();
                self.lock(crate::lock::LockReason::Shortcut);
            }
            Some(Input::Action(_)) => self.close_launcher(),
            Some(Input::Key(key)) => {
                match self.launcher.key(key) {
                    Outcome::Open => {}
                    Outcome::Closed => self.sync_focus(),
                    Outcome::Launch(request) => {
                        self.sync_focus();
                        self.launch(request);
                    }
                }
                self.queue_redraw();
            }
            None => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corral_domains::apps::AppEntry;

    fn app(id: &str, name: &str) -> AppEntry {
        AppEntry {
            id: id.into(),
            name: name.into(),
            argv: vec![id.into()],
            terminal: false,
        }
    }

    fn qube(name: &str, colour: &str, apps: Vec<AppEntry>, dvm: bool) -> QubeApps {
        // The label whose default colour this is: rows are drawn in the theme's label colour.
        let label = match colour {
            "#3465a4" => "blue",
            "#cc0000" => "red",
            _ => "yellow",
        };
        QubeApps {
            name: name.into(),
            class: "AppVM".into(),
            state: "Halted".into(),
            label: label.into(),
            colour: colour.into(),
            template_for_dispvms: dvm,
            apps,
            error: None,
        }
    }

    fn opened() -> Launcher {
        let mut l = Launcher::default();
        let token = l.open();
        l.set_qubes(
            token,
            Ok(vec![
                qube(
                    "work",
                    "#3465a4",
                    vec![
                        app("foot", "Foot"),
                        app("org.gnome.TextEditor", "Text Editor"),
                    ],
                    false,
                ),
                qube(
                    "personal",
                    "#c4a000",
                    vec![app("firefox", "Firefox")],
                    false,
                ),
                qube("dvm", "#cc0000", vec![app("firefox", "Firefox")], true),
            ]),
        );
        l
    }

    fn texts(l: &Launcher) -> Vec<String> {
        l.shown()
            .map(|e| format!("{} {}", e.qube, e.text))
            .collect()
    }

    #[test]
    fn lists_apps_terminals_and_disposables() {
        let l = opened();
        assert_eq!(
            texts(&l),
            [
                "work Terminal",
                "work Foot",
                "work Text Editor",
                "personal Firefox",
                "dvm Firefox",
                "dvm Firefox (new disposable)"
            ]
        );
        let dvm = l.shown().last().unwrap();
        assert_eq!(dvm.colour, Rgb::from_hex(0xcc0000));
        assert!(dvm.request.dispvm);
    }

    #[test]
    fn every_search_word_must_match_and_enter_launches_the_selection() {
        let mut l = opened();
        for c in "fire".chars() {
            assert_eq!(l.key(LauncherKey::Text(c)), Outcome::Open);
        }
        assert_eq!(texts(&l).len(), 3);
        for c in " pers".chars() {
            l.key(LauncherKey::Text(c));
        }
        assert_eq!(texts(&l), ["personal Firefox"]);
        let out = l.key(LauncherKey::Enter);
        assert_eq!(
            out,
            Outcome::Launch(LaunchRequest {
                qube: "personal".into(),
                app: "firefox".into(),
                dispvm: false
            })
        );
        assert!(!l.is_open());
    }

    #[test]
    fn selection_is_clamped_and_escape_closes() {
        let mut l = opened();
        l.key(LauncherKey::Up);
        assert_eq!(l.selected().unwrap().text, "Terminal");
        for _ in 0..50 {
            l.key(LauncherKey::Down);
        }
        assert_eq!(l.selected().unwrap().text, "Firefox (new disposable)");
        l.key(LauncherKey::PageUp);
        assert_eq!(l.selected().unwrap().text, "Terminal");
        for c in "zzz".chars() {
            l.key(LauncherKey::Text(c));
        }
        assert!(l.selected().is_none());
        assert_eq!(
            l.key(LauncherKey::Enter),
            Outcome::Open,
            "nothing to launch"
        );
        l.key(LauncherKey::Backspace);
        assert_eq!(l.query(), "zz");
        assert_eq!(l.key(LauncherKey::Escape), Outcome::Closed);
        assert!(!l.is_open());
        assert_eq!(l.key(LauncherKey::Enter), Outcome::Closed);
    }

    #[test]
    fn the_query_is_bounded_and_control_characters_are_ignored() {
        let mut l = opened();
        l.key(LauncherKey::Text('\u{1b}'));
        assert_eq!(l.query(), "");
        for _ in 0..200 {
            l.key(LauncherKey::Text('x'));
        }
        assert_eq!(l.query().chars().count(), MAX_QUERY_CHARS);
    }

    #[test]
    fn a_late_list_after_closing_is_ignored() {
        let mut l = Launcher::default();
        let first = l.open();
        l.close();
        l.set_qubes(
            first,
            Ok(vec![qube(
                "work",
                "#3465a4",
                vec![app("foot", "Foot")],
                false,
            )]),
        );
        assert!(!l.is_open());
        assert_eq!(l.shown().count(), 0);
        // Opened again: the first opening's list is still not this one's.
        let second = l.open();
        l.set_qubes(
            first,
            Ok(vec![qube(
                "work",
                "#3465a4",
                vec![app("foot", "Foot")],
                false,
            )]),
        );
        assert_eq!(l.shown().count(), 0, "a stale list was taken");
        l.set_qubes(
            second,
            Ok(vec![qube(
                "work",
                "#3465a4",
                vec![app("foot", "Foot")],
                false,
            )]),
        );
        assert_eq!(l.shown().count(), 2);
    }

    #[test]
    fn the_selected_row_shows_its_label_colour() {
        let l = opened();
        let (w, h) = Launcher::size(1600);
        let p = draw(&l, w, h);
        assert_eq!((p.width, p.height), (w, h));
        // The colour square of the first row (work, blue).
        let (x, y) = (PADDING + 6 + 8, PADDING + SEARCH_HEIGHT + 7 + 8);
        let i = ((y * p.width + x) * 4) as usize;
        assert_eq!(&p.data[i..i + 3], &[0xa4, 0x65, 0x34], "BGR of #3465a4");
    }
}
