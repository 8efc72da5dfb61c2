//! The panel: a strip along the top of every output, in the trusted layer.
//!
//! It shows what the user must be able to trust at a glance: which qubes run (each a chip in
//! its label colour, with its state, disposables marked, a marker when one of its windows asks
//! for attention), where the global clipboard's content came from and how big it is (never the
//! content), and the time. Everything here comes from the compositor and the domain manager;
//! the only qube-chosen thing a qube can influence is whether its attention marker is lit.
//!
//! The panel is drawn in front of every window and windows are placed below it, so no qube can
//! cover or imitate it (a window can only be inside its own frame, under the trusted layer).
//! This module is the model, its drawing and its hit-testing; the renderer and the pointer
//! handling call it.

use crate::labels::Rgb;
use crate::render::text::{Pixels, text_width};

/// Height of the panel, in pixels.
pub const PANEL_HEIGHT: i32 = 28;
const CHIP_GAP: i32 = 6;
const CHIP_PADDING: i32 = 8;
const CHIP_MAX_WIDTH: i32 = 220;
const TEXT_PX: f32 = 13.0;
/// Width kept for the clock at the right.
const CLOCK_WIDTH: i32 = 64;
/// Width kept for the clipboard state, left of the clock.
const CLIPBOARD_WIDTH: i32 = 240;
/// Width of the "Qubes" button at the left (shown with the domain manager): its menu starts a
/// halted qube.
const QUBES_BUTTON_WIDTH: i32 = 64;

/// A qube's power state as the panel shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QubeState {
    Starting,
    Running,
    Paused,
    Stopping,
}

impl QubeState {
    fn word(self) -> &'static str {
        match self {
            QubeState::Starting => "starting",
            QubeState::Running => "",
            QubeState::Paused => "paused",
            QubeState::Stopping => "stopping",
        }
    }
}

/// One qube chip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelQube {
    pub name: String,
    pub colour: Rgb,
    pub state: QubeState,
    pub disposable: bool,
    /// One of its windows asks for attention.
    pub attention: bool,
}

/// The global clipboard as the panel shows it: never the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelClipboard {
    pub source: String,
    pub colour: Rgb,
    /// `text` or `png`.
    pub kind: String,
    pub bytes: usize,
}

/// What the panel shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PanelModel {
    pub qubes: Vec<PanelQube>,
    pub clipboard: Option<PanelClipboard>,
    /// `HH:MM`.
    pub clock: String,
    /// The "Qubes" button is shown (only with the domain manager, which can start qubes).
    pub qubes_button: bool,
}

/// Where a click on the panel landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PanelHit {
    /// The chip of this qube.
    Qube(String),
    /// The "Qubes" button (its menu starts halted qubes).
    QubesButton,
    Clipboard,
    Clock,
}

impl PanelModel {
    /// The chips' x ranges on a panel `width` pixels wide, left to right; chips that do not fit
    /// are left out (the last one shown says how many more there are).
    pub fn chips(&self, width: i32) -> Vec<(usize, i32, i32)> {
        let limit = width - CLOCK_WIDTH - CLIPBOARD_WIDTH - CHIP_GAP;
        let mut x = self.chips_start();
        let mut out = Vec::new();
        for (i, q) in self.qubes.iter().enumerate() {
            let w = chip_width(q);
            if x + w > limit {
                break;
            }
            out.push((i, x, x + w));
            x += w + CHIP_GAP;
        }
        out
    }

    /// Where the first chip starts: right of the "Qubes" button when there is one.
    fn chips_start(&self) -> i32 {
        if self.qubes_button {
            CHIP_GAP + QUBES_BUTTON_WIDTH + CHIP_GAP
        } else {
            CHIP_GAP
        }
    }

    pub fn hit(&self, width: i32, x: i32) -> Option<PanelHit> {
        if x >= width - CLOCK_WIDTH {
            return Some(PanelHit::Clock);
        }
        if x >= width - CLOCK_WIDTH - CLIPBOARD_WIDTH {
            return self.clipboard.as_ref().map(|_| PanelHit::Clipboard);
        }
        if self.qubes_button && (CHIP_GAP..CHIP_GAP + QUBES_BUTTON_WIDTH).contains(&x) {
            return Some(PanelHit::QubesButton);
        }
        self.chips(width)
            .into_iter()
            .find(|&(_, from, to)| (from..to).contains(&x))
            .map(|(i, _, _)| PanelHit::Qube(self.qubes[i].name.clone()))
    }
}

fn chip_text(q: &PanelQube) -> String {
    let mut text = q.name.clone();
    if q.disposable {
        text.push_str(" (disp)");
    }
    let word = q.state.word();
    if !word.is_empty() {
        text.push_str(" · ");
        text.push_str(word);
    }
    text
}

fn chip_width(q: &PanelQube) -> i32 {
    let attention = if q.attention { 10 } else { 0 };
    ((text_width(&chip_text(q), TEXT_PX).ceil() as i32) + 2 * CHIP_PADDING + attention)
        .min(CHIP_MAX_WIDTH)
}

/// Where the clipboard's source colour is shown on a panel `width` pixels wide (relative to
/// the panel).
pub fn clipboard_marker(width: i32) -> crate::layout::Rect {
    crate::layout::Rect::new(width - CLOCK_WIDTH - CLIPBOARD_WIDTH, 9, 10, 10)
}

/// What an entry of a qube's panel menu does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MenuAction {
    /// Open the launcher on the qube's applications.
    Applications,
    Pause,
    Unpause,
    /// Shut the qube down (its processes are killed after the manager's timeout).
    Shutdown,
    Kill,
    /// Start a halted qube (an entry of the "Qubes" button's menu).
    Start,
}

impl MenuAction {
    fn text(self) -> &'static str {
        match self {
            MenuAction::Applications => "Applications…",
            MenuAction::Pause => "Pause",
            MenuAction::Unpause => "Unpause",
            MenuAction::Shutdown => "Shut down",
            MenuAction::Kill => "Kill",
            MenuAction::Start => "Start",
        }
    }
}

/// One row of a panel menu: what it does to which qube, and the qube's colour down its side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MenuRow {
    pub action: MenuAction,
    pub qube: String,
    pub colour: Rgb,
}

impl MenuRow {
    fn text(&self) -> String {
        match self.action {
            // The start menu lists several qubes: each row names its own.
            MenuAction::Start => format!("Start {}", self.qube),
            action => action.text().to_owned(),
        }
    }
}

/// A menu under the panel: a qube chip's (its actions), or the "Qubes" button's (start a halted
/// qube).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QubeMenu {
    /// Whose chip opened it; empty for the "Qubes" button's menu.
    pub qube: String,
    pub rows: Vec<MenuRow>,
    /// Where it is drawn (global).
    pub rect: crate::layout::Rect,
}

const MENU_ROW: i32 = 28;
const MENU_WIDTH: i32 = 180;

impl QubeMenu {
    /// The menu for `qube` in `state`, under the chip starting at global `x` of the output
    /// `output`. Without the domain manager only the applications entry is offered.
    pub fn new(qube: &PanelQube, managed: bool, x: i32, output: crate::layout::Rect) -> QubeMenu {
        let mut entries = vec![MenuAction::Applications];
        if managed {
            match qube.state {
                QubeState::Paused => entries.push(MenuAction::Unpause),
                _ => entries.push(MenuAction::Pause),
            }
            entries.extend([MenuAction::Shutdown, MenuAction::Kill]);
        }
        let rows = entries
            .into_iter()
            .map(|action| MenuRow {
                action,
                qube: qube.name.clone(),
                colour: qube.colour,
            })
            .collect();
        QubeMenu::placed(qube.name.clone(), rows, x, output)
    }

    /// The "Qubes" button's menu: a Start row per halted qube (name, colour), as many as fit on
    /// the output under the panel.
    pub fn start_menu(halted: Vec<(String, Rgb)>, x: i32, output: crate::layout::Rect) -> QubeMenu {
        let fit = usize::try_from((output.h - PANEL_HEIGHT - 2) / MENU_ROW).unwrap_or(0);
        let rows = halted
            .into_iter()
            .take(fit)
            .map(|(qube, colour)| MenuRow {
                action: MenuAction::Start,
                qube,
                colour,
            })
            .collect();
        QubeMenu::placed(String::new(), rows, x, output)
    }

    fn placed(qube: String, rows: Vec<MenuRow>, x: i32, output: crate::layout::Rect) -> QubeMenu {
        // An empty menu still shows one (inert) row saying so.
        let h = MENU_ROW * (rows.len().max(1)) as i32 + 2;
        let x = x.clamp(output.x, (output.right() - MENU_WIDTH).max(output.x));
        QubeMenu {
            qube,
            rows,
            rect: crate::layout::Rect::new(x, output.y + PANEL_HEIGHT, MENU_WIDTH, h),
        }
    }

    /// The row at global (`x`, `y`), if any.
    pub fn hit(&self, x: f64, y: f64) -> Option<&MenuRow> {
        if !self.rect.contains_f(x, y) {
            return None;
        }
        let row = ((y as i32) - self.rect.y - 1) / MENU_ROW;
        self.rows.get(usize::try_from(row).ok()?)
    }

    pub fn draw(&self) -> Pixels {
        let (w, h) = (self.rect.w, self.rect.h);
        let mut p = Pixels::filled(w, h, Rgb::from_hex(0x1e1e1e));
        let edge = Rgb::from_hex(0x888a85);
        p.fill_rect(0, 0, w, 1, edge);
        p.fill_rect(0, h - 1, w, 1, edge);
        p.fill_rect(0, 0, 1, h, edge);
        p.fill_rect(w - 1, 0, 1, h, edge);
        if self.rows.is_empty() {
            p.draw_text(
                "No halted qubes",
                14,
                7,
                TEXT_PX + 1.0,
                w - 20,
                Rgb::from_hex(0x9a9996),
            );
        }
        for (i, row) in self.rows.iter().enumerate() {
            let y = 1 + i as i32 * MENU_ROW;
            if i > 0 {
                p.fill_rect(5, y, w - 6, 1, Rgb::from_hex(0x3a3a3a));
            }
            // The qube's colour down the side: which qube the row acts on.
            p.fill_rect(1, y, 4, MENU_ROW, row.colour);
            p.draw_text(
                &row.text(),
                14,
                y + 6,
                TEXT_PX + 1.0,
                w - 20,
                Rgb::from_hex(0xeeeeec),
            );
        }
        p
    }
}

/// A size with a unit, for the clipboard state.
fn human_size(bytes: usize) -> String {
    match bytes {
        b if b < 1024 => format!("{b} B"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
    }
}

/// Draws the panel, `width` × [`PANEL_HEIGHT`].
pub fn draw(model: &PanelModel, width: i32) -> Pixels {
    let background = Rgb::from_hex(0x111111);
    let text = Rgb::from_hex(0xeeeeec);
    let dim = Rgb::from_hex(0x9a9996);
    let mut p = Pixels::filled(width, PANEL_HEIGHT, background);
    p.fill_rect(0, PANEL_HEIGHT - 1, width, 1, Rgb::from_hex(0x555753));
    if model.qubes_button {
        let edge = Rgb::from_hex(0x555753);
        let (x, w) = (CHIP_GAP, QUBES_BUTTON_WIDTH);
        p.fill_rect(x, 3, w, 1, edge);
        p.fill_rect(x, PANEL_HEIGHT - 5, w, 1, edge);
        p.fill_rect(x, 3, 1, PANEL_HEIGHT - 7, edge);
        p.fill_rect(x + w - 1, 3, 1, PANEL_HEIGHT - 7, edge);
        p.draw_text("Qubes ▾", x + 8, 6, TEXT_PX, w - 12, text);
    }
    for (i, from, to) in model.chips(width) {
        let q = &model.qubes[i];
        let chip_text_colour = crate::config::theme::look().text_on(q.colour);
        p.fill_rect(from, 3, to - from, PANEL_HEIGHT - 7, q.colour);
        if q.disposable {
            // Disposables are outlined, so they read differently even at a glance.
            let edge = chip_text_colour;
            p.fill_rect(from, 3, to - from, 1, edge);
            p.fill_rect(from, PANEL_HEIGHT - 5, to - from, 1, edge);
        }
        let mut x = from + CHIP_PADDING;
        if q.attention {
            p.fill_rect(x, 10, 6, 6, chip_text_colour);
            x += 10;
        }
        p.draw_text(
            &chip_text(q),
            x,
            6,
            TEXT_PX,
            to - x - CHIP_PADDING + 2,
            chip_text_colour,
        );
    }
    let shown = model.chips(width).len();
    if shown < model.qubes.len() {
        let x = model
            .chips(width)
            .last()
            .map_or(model.chips_start(), |c| c.2 + CHIP_GAP);
        p.draw_text(
            &format!("+{}", model.qubes.len() - shown),
            x,
            6,
            TEXT_PX,
            40,
            dim,
        );
    }
    let marker = clipboard_marker(width);
    let clip_x = marker.x;
    match &model.clipboard {
        Some(c) => {
            p.fill_rect(marker.x, marker.y, marker.w, marker.h, c.colour);
            p.draw_text(
                &format!(
                    "clipboard: {} {} from {}",
                    human_size(c.bytes),
                    c.kind,
                    c.source
                ),
                clip_x + 14,
                6,
                TEXT_PX,
                CLIPBOARD_WIDTH - 20,
                text,
            );
        }
        None => {
            p.draw_text(
                "clipboard empty",
                clip_x + 14,
                6,
                TEXT_PX,
                CLIPBOARD_WIDTH - 20,
                dim,
            );
        }
    }
    p.draw_text(
        &model.clock,
        width - CLOCK_WIDTH + 10,
        6,
        TEXT_PX,
        CLOCK_WIDTH - 12,
        text,
    );
    p
}

/// The local time as `HH:MM`, from the system's time zone (`/etc/localtime`); UTC if it
/// cannot be read.
pub fn clock_now() -> String {
    // SAFETY: `time(NULL)` only returns the time; `localtime_r` writes into the zeroed `tm` we
    // own and pass by pointer, and reads `now`, which lives across the call.
    let tm = unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return "--:--".into();
        }
        tm
    };
    format!("{:02}:{:02}", tm.tm_hour, tm.tm_min)
}

impl crate::state::State {
    /// What the panel shows now. Qubes: those with a GUI channel, plus (with the domain manager)
    /// running or paused qubes without one (a netvm, a qube whose agent died), in name order.
    pub fn panel_model(&self) -> PanelModel {
        let mut qubes: Vec<PanelQube> = Vec::new();
        // Read per frame: the manager's states come from a cache refreshed twice a second,
        // never a copy of its model.
        let states = self
            .domain_manager
            .as_ref()
            .map(|m| self.panel_manager_states(m))
            .unwrap_or_default();
        let dispvm = corral_domains::Class::DispVM.to_string();
        let disposable = |name: &str| states.iter().any(|q| q.name == name && q.class == dispvm);
        for conn in self.qubes.conns.values() {
            let name = conn.identity.name.to_string();
            let attention = conn
                .windows
                .values()
                .any(|w| self.layout.toplevel(w.win).is_some_and(|t| t.attention));
            if let Some(q) = qubes.iter_mut().find(|q| q.name == name) {
                q.attention |= attention;
                continue;
            }
            qubes.push(PanelQube {
                disposable: disposable(&name),
                name,
                colour: conn.identity.colour(),
                state: QubeState::Running,
                attention,
            });
        }
        if self.domain_manager.is_some() {
            for info in states.iter().cloned() {
                let state = match info.state.as_str() {
                    "Paused" => QubeState::Paused,
                    "Running" => QubeState::Running,
                    "Transient" => QubeState::Starting,
                    "Halting" => QubeState::Stopping,
                    _ => continue,
                };
                if info.class == corral_domains::Class::AdminVM.to_string() {
                    continue;
                }
                match qubes.iter_mut().find(|q| q.name == info.name) {
                    Some(q) => q.state = state,
                    None => qubes.push(PanelQube {
                        disposable: info.class == corral_domains::Class::DispVM.to_string(),
                        colour: crate::domains::colour_of(&info.label, &info.color),
                        name: info.name,
                        state,
                        attention: false,
                    }),
                }
            }
        }
        qubes.sort_by(|a, b| a.name.cmp(&b.name));
        let info = self.clipboard.info(std::time::Instant::now());
        let clipboard = match (info.source, info.kind, info.size) {
            (Some(source), Some(kind), Some(bytes)) if !info.empty => Some(PanelClipboard {
                colour: qubes
                    .iter()
                    .find(|q| q.name == source)
                    .map_or(crate::labels::GUI_DOMAIN_LABEL.colour, |q| q.colour),
                source,
                kind,
                bytes,
            }),
            _ => None,
        };
        PanelModel {
            qubes,
            clipboard,
            clock: clock_now(),
            qubes_button: self.domain_manager.is_some(),
        }
    }

    /// The manager's view of which qubes run (read at most twice a second: it takes the
    /// store's lock).
    fn panel_manager_states(
        &self,
        manager: &corral_domains::manager::Manager,
    ) -> Vec<corral_domains::api::QubeInfo> {
        let mut cache = self.panel_states.borrow_mut();
        let now = std::time::Instant::now();
        if cache
            .as_ref()
            .is_none_or(|(at, _)| now.duration_since(*at) > std::time::Duration::from_millis(500))
        {
            *cache = Some((now, manager.list()));
        }
        cache.as_ref().map(|(_, l)| l.clone()).unwrap_or_default()
    }

    /// A left click on the panel: a qube's chip opens its menu (or closes it, when it is that
    /// qube's menu already).
    pub fn panel_click(&mut self, x: f64, y: f64) {
        let Some(strip) = self.panel_at(x, y) else {
            return;
        };
        let previous = self.panel_menu.take();
        self.queue_redraw();
        let model = self.panel_model();
        let at = (x - f64::from(strip.x)) as i32;
        let Some(output) = self
            .layout
            .outputs()
            .iter()
            .find(|o| o.rect.x == strip.x && o.rect.y == strip.y)
            .map(|o| o.rect)
        else {
            return;
        };
        let name = match model.hit(strip.w, at) {
            Some(PanelHit::Qube(name)) => name,
            Some(PanelHit::QubesButton) => {
                if previous.is_some_and(|m| m.qube.is_empty()) {
                    return;
                }
                self.panel_menu = Some(QubeMenu::start_menu(
                    self.halted_qubes(),
                    strip.x + CHIP_GAP,
                    output,
                ));
                return;
            }
            _ => return,
        };
        if previous.is_some_and(|m| m.qube == name) {
            return;
        }
        let Some((i, from, _)) = model
            .chips(strip.w)
            .into_iter()
            .find(|(i, _, _)| model.qubes[*i].name == name)
        else {
            return;
        };
        // The manager's state now, not the panel's cached view: the menu must offer what
        // applies (Unpause for a qube paused a moment ago).
        let fresh = self.domain_manager.as_ref().and_then(|m| {
            m.list()
                .into_iter()
                .find(|q| q.name == name)
                .map(|q| q.state)
        });
        let managed = fresh.is_some();
        let mut qube = model.qubes[i].clone();
        match fresh.as_deref() {
            Some("Paused") => qube.state = QubeState::Paused,
            Some("Running") => qube.state = QubeState::Running,
            _ => {}
        }
        *self.panel_states.borrow_mut() = None;
        self.panel_menu = Some(QubeMenu::new(&qube, managed, strip.x + from, output));
    }

    /// A click while a qube's menu is open: an entry runs; anywhere else closes the menu.
    /// Returns whether the click was the menu's (then no window gets it).
    pub fn panel_menu_click(&mut self, x: f64, y: f64) -> bool {
        let Some(menu) = self.panel_menu.as_ref() else {
            return false;
        };
        let row = menu.hit(x, y).cloned();
        let inside = menu.rect.contains_f(x, y);
        if self.panel_at(x, y).is_some() {
            // The panel's own handling decides (another chip opens its menu).
            return false;
        }
        self.panel_menu = None;
        self.queue_redraw();
        match row {
            Some(MenuRow {
                action: MenuAction::Applications,
                qube,
                ..
            }) => {
                self.open_launcher();
                for c in qube.chars().chain(std::iter::once(' ')) {
                    self.launcher.key(crate::launcher::LauncherKey::Text(c));
                }
            }
            Some(row) => self.qube_action(row.qube, row.action),
            None => {}
        }
        inside
    }

    /// Pauses, unpauses, shuts down or kills a qube through the domain manager, on a thread;
    /// a failure becomes a toast.
    fn qube_action(&mut self, qube: String, action: MenuAction) {
        let Some(manager) = self.domain_manager.clone() else {
            return;
        };
        let events = self.domain_events();
        crate::domains::in_background("corral-panel-action", move || {
            let request = match action {
                MenuAction::Pause => corral_domains::api::Request::Pause { name: qube.clone() },
                MenuAction::Unpause => corral_domains::api::Request::Unpause { name: qube.clone() },
                MenuAction::Shutdown => corral_domains::api::Request::Shutdown {
                    name: qube.clone(),
                    wait: false,
                    timeout_s: None,
                    force: false,
                },
                MenuAction::Kill => corral_domains::api::Request::Kill { name: qube.clone() },
                MenuAction::Start => corral_domains::api::Request::Start { name: qube.clone() },
                MenuAction::Applications => return,
            };
            if let Err(e) = manager.handle(request, Vec::new()) {
                let _ = events.send(crate::domains::DomainEvent::ActionFailed {
                    qube,
                    what: action.text().to_lowercase(),
                    why: e.to_string(),
                });
            }
        });
    }

    /// Halted qubes the "Qubes" menu offers to start, in name order, with their colours: every
    /// class but the GUI domain and disposables (a halted disposable is on its way out).
    fn halted_qubes(&self) -> Vec<(String, Rgb)> {
        let Some(manager) = self.domain_manager.as_ref() else {
            return Vec::new();
        };
        let skip = [
            corral_domains::Class::AdminVM.to_string(),
            corral_domains::Class::DispVM.to_string(),
        ];
        let mut halted: Vec<(String, Rgb)> = manager
            .list()
            .into_iter()
            .filter(|q| q.state == "Halted" && !skip.contains(&q.class))
            .map(|q| (q.name, crate::domains::colour_of(&q.label, &q.color)))
            .collect();
        halted.sort_by(|a, b| a.0.cmp(&b.0));
        halted
    }

    /// The panel strip of the output under (`x`, `y`), if that is where the point is.
    pub fn panel_at(&self, x: f64, y: f64) -> Option<crate::layout::Rect> {
        let height = self.layout.config.reserved_top;
        if height <= 0 {
            return None;
        }
        let output = self
            .layout
            .outputs()
            .iter()
            .find(|o| o.rect.contains_f(x, y))?;
        let strip = crate::layout::Rect::new(output.rect.x, output.rect.y, output.rect.w, height);
        strip.contains_f(x, y).then_some(strip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qube(name: &str, colour: u32, state: QubeState) -> PanelQube {
        PanelQube {
            name: name.into(),
            colour: Rgb::from_hex(colour),
            state,
            disposable: false,
            attention: false,
        }
    }

    fn model() -> PanelModel {
        PanelModel {
            qubes: vec![
                qube("work", 0x3465a4, QubeState::Running),
                qube("personal", 0xc4a000, QubeState::Paused),
                PanelQube {
                    disposable: true,
                    attention: true,
                    ..qube("disp42", 0xcc0000, QubeState::Starting)
                },
            ],
            clipboard: Some(PanelClipboard {
                source: "work".into(),
                colour: Rgb::from_hex(0x3465a4),
                kind: "text".into(),
                bytes: 2048,
            }),
            clock: "12:34".into(),
            qubes_button: false,
        }
    }

    fn pixel(p: &Pixels, x: i32, y: i32) -> Rgb {
        let i = ((y * p.width + x) * 4) as usize;
        Rgb {
            r: p.data[i + 2],
            g: p.data[i + 1],
            b: p.data[i],
        }
    }

    #[test]
    fn chips_show_each_running_qube_in_its_colour() {
        let m = model();
        let p = draw(&m, 1600);
        assert_eq!((p.width, p.height), (1600, PANEL_HEIGHT));
        let chips = m.chips(1600);
        assert_eq!(chips.len(), 3);
        for (i, from, _) in chips {
            // Just inside the chip's left edge, below the outline a disposable gets.
            assert_eq!(
                pixel(&p, from + 1, 12),
                m.qubes[i].colour,
                "{}",
                m.qubes[i].name
            );
        }
        assert_eq!(chip_text(&m.qubes[2]), "disp42 (disp) · starting");
        assert_eq!(chip_text(&m.qubes[0]), "work");
    }

    #[test]
    fn clicks_find_the_chip_the_clipboard_and_the_clock() {
        let m = model();
        let chips = m.chips(1600);
        let (_, from, to) = chips[1];
        assert_eq!(
            m.hit(1600, (from + to) / 2),
            Some(PanelHit::Qube("personal".into()))
        );
        assert_eq!(m.hit(1600, 1599), Some(PanelHit::Clock));
        assert_eq!(
            m.hit(1600, 1600 - CLOCK_WIDTH - 10),
            Some(PanelHit::Clipboard)
        );
        assert_eq!(m.hit(1600, chips[2].2 + 100), None);
    }

    #[test]
    fn the_qubes_button_comes_first_and_its_menu_starts_halted_qubes() {
        let mut m = model();
        let without = m.chips(1600)[0].1;
        m.qubes_button = true;
        let chips = m.chips(1600);
        assert!(
            chips[0].1 >= without + QUBES_BUTTON_WIDTH,
            "chips moved right"
        );
        assert_eq!(m.hit(1600, CHIP_GAP + 5), Some(PanelHit::QubesButton));
        assert_eq!(
            m.hit(1600, chips[0].1 + 2),
            Some(PanelHit::Qube("work".into()))
        );
        let output = crate::layout::Rect::new(0, 0, 1600, 900);
        let halted = vec![
            ("mail".to_owned(), Rgb::from_hex(0x73d216)),
            ("vault".to_owned(), Rgb::from_hex(0x555753)),
        ];
        let menu = QubeMenu::start_menu(halted, CHIP_GAP, output);
        let row = |i: i32| f64::from(PANEL_HEIGHT + 1 + i * MENU_ROW + 14);
        let second = menu.hit(20.0, row(1)).unwrap();
        assert_eq!(
            (second.action, second.qube.as_str()),
            (MenuAction::Start, "vault")
        );
        assert_eq!(second.text(), "Start vault");
        assert!(menu.hit(20.0, row(2)).is_none(), "below the last row");
        // Each row carries its own qube's colour down its side.
        let p = menu.draw();
        assert_eq!(pixel(&p, 2, 1 + 14), Rgb::from_hex(0x73d216));
        assert_eq!(pixel(&p, 2, 1 + MENU_ROW + 14), Rgb::from_hex(0x555753));
        // A short output lists only the rows that fit; none halted shows an inert menu.
        let short = crate::layout::Rect::new(0, 0, 800, PANEL_HEIGHT + 2 + MENU_ROW);
        let many = (0..10)
            .map(|i| (format!("q{i}"), Rgb::from_hex(0x73d216)))
            .collect();
        assert_eq!(QubeMenu::start_menu(many, 0, short).rows.len(), 1);
        let empty = QubeMenu::start_menu(Vec::new(), 0, output);
        assert!(empty.hit(20.0, row(0)).is_none());
        assert_eq!(empty.rect.h, MENU_ROW + 2);
    }

    #[test]
    fn chips_that_do_not_fit_are_counted_not_drawn_over_the_clock() {
        let mut m = model();
        for i in 0..40 {
            m.qubes
                .push(qube(&format!("qube-{i}"), 0x73d216, QubeState::Running));
        }
        let chips = m.chips(800);
        assert!(chips.len() < m.qubes.len());
        assert!(
            chips
                .iter()
                .all(|c| c.2 <= 800 - CLOCK_WIDTH - CLIPBOARD_WIDTH)
        );
        let _ = draw(&m, 800);
    }

    #[test]
    fn sizes_read_like_sizes() {
        assert_eq!(human_size(12), "12 B");
        assert_eq!(human_size(2048), "2.0 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(clock_now().len(), 5);
    }
}
