//! Window management: where qube windows are, their stacking, focus and workspaces.
//!
//! Pure data and geometry, no Smithay and no I/O, so it can be driven by randomized operation
//! sequences and checked against invariants (see `tests` below and `compositor/tests/`).
//!
//! Geometry of a toplevel (all in global pixels):
//!
//! ```text
//! outer frame ┌──────────────────────────┐  border: `border` px in the label colour
//!             │ [qube] title             │  title bar: `title_height` px, label colour
//!             │┌────────────────────────┐│
//!             ││ content (interior)     ││  the qube's pixels, clipped to this rectangle
//!             │└────────────────────────┘│
//!             └──────────────────────────┘
//! ```
//!
//! Popups are placed relative to their parent's content, get a `popup_border` frame, are kept on
//! their toplevel's output and are never larger than `popup_max_percent` of it.

mod rect;

pub use rect::Rect;

use std::collections::HashMap;

/// A window as the compositor numbers it (unique across all qubes, never reused).
pub type WinId = u64;

/// Decoration and placement settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayoutConfig {
    pub border: i32,
    pub title_height: i32,
    pub popup_border: i32,
    /// A popup covers at most this share of its output, per axis, in percent.
    pub popup_max_percent: i32,
    /// Pixels of a title bar that always stay on an output, so a window can be grabbed back.
    pub min_visible: i32,
    /// Size of a window shown before any content arrived.
    pub default_size: (i32, i32),
    pub workspaces: u32,
    /// Pixels along the top of every output that belong to the trusted panel: windows are
    /// placed, maximised and kept below them.
    pub reserved_top: i32,
}

impl Default for LayoutConfig {
    fn default() -> Self {
        LayoutConfig {
            border: 4,
            title_height: 24,
            popup_border: 2,
            popup_max_percent: 90,
            min_visible: 48,
            default_size: (640, 400),
            workspaces: 9,
            reserved_top: 0,
        }
    }
}

/// One output's area in the global space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputArea {
    pub name: String,
    pub rect: Rect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toplevel {
    /// Top-left corner of the outer frame.
    pub x: i32,
    pub y: i32,
    /// Size of the content (interior).
    pub width: i32,
    pub height: i32,
    /// The size the compositor imposed (maximise, user resize); `None`: the buffer decides.
    pub configured: Option<(i32, i32)>,
    /// Saved outer frame position and content size while maximised.
    pub maximized: Option<(i32, i32, i32, i32)>,
    pub minimized: bool,
    /// The agent mapped it.
    pub mapped: bool,
    /// It has shown at least once (placement done).
    pub placed: bool,
    /// The user moved or resized it (no automatic re-placement any more).
    pub user_placed: bool,
    pub has_content: bool,
    pub workspace: u32,
    pub attention: bool,
    pub min_size: (i32, i32),
    pub max_size: (i32, i32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Popup {
    pub parent: WinId,
    pub toplevel: WinId,
    /// Requested position relative to the parent's content, and size.
    pub offset: (i32, i32),
    pub size: (i32, i32),
    pub mapped: bool,
}

/// What is under a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Hit {
    /// Inside a window's content, at these content-local coordinates.
    Content {
        x: f64,
        y: f64,
    },
    Title,
    /// On the border; which edges (left, top, right, bottom).
    Border {
        left: bool,
        top: bool,
        right: bool,
        bottom: bool,
    },
}

/// The whole window-management state.
#[derive(Debug, Clone)]
pub struct Layout {
    pub config: LayoutConfig,
    outputs: Vec<OutputArea>,
    toplevels: HashMap<WinId, Toplevel>,
    popups: HashMap<WinId, Popup>,
    /// Popups in creation order (later ones on top).
    popup_order: Vec<WinId>,
    /// Toplevels, bottom first.
    stack: Vec<WinId>,
    focus: Option<WinId>,
    active_workspace: u32,
    /// Most recently focused window per workspace.
    last_focus: HashMap<u32, WinId>,
}

impl Layout {
    pub fn new(config: LayoutConfig, outputs: Vec<OutputArea>) -> Self {
        Layout {
            config,
            outputs,
            toplevels: HashMap::new(),
            popups: HashMap::new(),
            popup_order: Vec::new(),
            stack: Vec::new(),
            focus: None,
            active_workspace: 1,
            last_focus: HashMap::new(),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Queries

    pub fn outputs(&self) -> &[OutputArea] {
        &self.outputs
    }

    pub fn focus(&self) -> Option<WinId> {
        self.focus
    }

    pub fn active_workspace(&self) -> u32 {
        self.active_workspace
    }

    pub fn toplevel(&self, id: WinId) -> Option<&Toplevel> {
        self.toplevels.get(&id)
    }

    pub fn popup(&self, id: WinId) -> Option<&Popup> {
        self.popups.get(&id)
    }

    pub fn is_toplevel(&self, id: WinId) -> bool {
        self.toplevels.contains_key(&id)
    }

    /// Toplevels, bottom first.
    pub fn stack(&self) -> &[WinId] {
        &self.stack
    }

    /// Popups of `toplevel` (the whole tree under it), bottom first.
    pub fn popups_of(&self, toplevel: WinId) -> impl Iterator<Item = WinId> + '_ {
        self.popup_order
            .iter()
            .copied()
            .filter(move |p| self.popups.get(p).is_some_and(|p| p.toplevel == toplevel))
    }

    /// Shown on screen now: mapped, not minimised, on the active workspace.
    pub fn is_visible(&self, id: WinId) -> bool {
        if let Some(t) = self.toplevels.get(&id) {
            return t.mapped && t.placed && !t.minimized && t.workspace == self.active_workspace;
        }
        let Some(popup) = self.popups.get(&id) else {
            return false;
        };
        // A popup is shown only while it and every ancestor are mapped.
        let mut current = popup;
        loop {
            if !current.mapped {
                return false;
            }
            match self.popups.get(&current.parent) {
                Some(parent) => current = parent,
                None => return self.is_visible(current.parent),
            }
        }
    }

    /// The outer frame of a toplevel.
    pub fn frame_rect(&self, id: WinId) -> Option<Rect> {
        let t = self.toplevels.get(&id)?;
        let c = self.config;
        Some(Rect::new(
            t.x,
            t.y,
            t.width + 2 * c.border,
            t.height + c.title_height + 2 * c.border,
        ))
    }

    /// The content (interior) of a toplevel or popup, in global coordinates.
    pub fn content_rect(&self, id: WinId) -> Option<Rect> {
        if let Some(t) = self.toplevels.get(&id) {
            let c = self.config;
            return Some(Rect::new(
                t.x + c.border,
                t.y + c.border + c.title_height,
                t.width,
                t.height,
            ));
        }
        self.popup_content_rect(id)
    }

    /// The title bar of a toplevel.
    pub fn title_rect(&self, id: WinId) -> Option<Rect> {
        let t = self.toplevels.get(&id)?;
        let c = self.config;
        Some(Rect::new(
            t.x + c.border,
            t.y + c.border,
            t.width,
            c.title_height,
        ))
    }

    /// The four border strips of a toplevel or popup: top, bottom, left, right.
    pub fn border_rects(&self, id: WinId) -> Option<[Rect; 4]> {
        let (outer, b) = if self.toplevels.contains_key(&id) {
            (self.frame_rect(id)?, self.config.border)
        } else {
            let b = self.config.popup_border;
            (self.popup_content_rect(id)?.expand(b), b)
        };
        Some([
            Rect::new(outer.x, outer.y, outer.w, b),
            Rect::new(outer.x, outer.bottom() - b, outer.w, b),
            Rect::new(outer.x, outer.y + b, b, outer.h - 2 * b),
            Rect::new(outer.right() - b, outer.y + b, b, outer.h - 2 * b),
        ])
    }

    /// The output a window belongs to: the one its frame overlaps most, else the nearest.
    pub fn output_of(&self, id: WinId) -> Option<usize> {
        let toplevel = match self.popups.get(&id) {
            Some(p) => p.toplevel,
            None => id,
        };
        let frame = self.frame_rect(toplevel)?;
        self.output_for_rect(frame)
    }

    fn output_for_rect(&self, rect: Rect) -> Option<usize> {
        let best = self
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| (i, rect.intersection(o.rect).map_or(0, |r| r.area())))
            .max_by_key(|(i, area)| (*area, std::cmp::Reverse(*i)));
        match best {
            Some((i, area)) if area > 0 => Some(i),
            _ => {
                let (cx, cy) = rect.centre();
                self.outputs
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, o)| o.rect.distance_sq(cx, cy))
                    .map(|(i, _)| i)
            }
        }
    }

    /// The output containing a point, if any.
    pub fn output_at(&self, x: f64, y: f64) -> Option<usize> {
        self.outputs.iter().position(|o| o.rect.contains_f(x, y))
    }

    /// Where a popup's content is, after it was kept on its output and clamped in size.
    pub fn popup_content_rect(&self, id: WinId) -> Option<Rect> {
        let popup = self.popups.get(&id)?;
        let parent = self.content_rect(popup.parent)?;
        let output = self.outputs.get(self.output_of(popup.toplevel)?)?.rect;
        let pb = self.config.popup_border;
        let share = self.config.popup_max_percent;
        let max_w = (output.w * share / 100 - 2 * pb).max(1);
        let max_h = (output.h * share / 100 - 2 * pb).max(1);
        let w = popup.size.0.clamp(1, max_w);
        let h = popup.size.1.clamp(1, max_h);
        let x = (parent.x + popup.offset.0).clamp(output.x + pb, output.right() - pb - w);
        let y = (parent.y + popup.offset.1).clamp(output.y + pb, output.bottom() - pb - h);
        Some(Rect::new(x, y, w, h))
    }

    /// The topmost visible window under a point and what part of it.
    pub fn hit(&self, x: f64, y: f64) -> Option<(WinId, Hit)> {
        for &top in self.stack.iter().rev() {
            if !self.is_visible(top) {
                continue;
            }
            let popups: Vec<WinId> = self.popups_of(top).collect();
            for &p in popups.iter().rev() {
                if !self.is_visible(p) {
                    continue;
                }
                let content = self.popup_content_rect(p)?;
                if content.contains_f(x, y) {
                    return Some((
                        p,
                        Hit::Content {
                            x: x - f64::from(content.x),
                            y: y - f64::from(content.y),
                        },
                    ));
                }
                if content.expand(self.config.popup_border).contains_f(x, y) {
                    // A popup's border belongs to the popup but does nothing.
                    return Some((
                        p,
                        Hit::Border {
                            left: false,
                            top: false,
                            right: false,
                            bottom: false,
                        },
                    ));
                }
            }
            let frame = self.frame_rect(top)?;
            if !frame.contains_f(x, y) {
                continue;
            }
            let content = self.content_rect(top)?;
            if content.contains_f(x, y) {
                return Some((
                    top,
                    Hit::Content {
                        x: x - f64::from(content.x),
                        y: y - f64::from(content.y),
                    },
                ));
            }
            if self.title_rect(top)?.contains_f(x, y) {
                return Some((top, Hit::Title));
            }
            let b = f64::from(self.config.border);
            return Some((
                top,
                Hit::Border {
                    left: x < f64::from(frame.x) + b,
                    top: y < f64::from(frame.y) + b,
                    right: x >= f64::from(frame.right()) - b,
                    bottom: y >= f64::from(frame.bottom()) - b,
                },
            ));
        }
        None
    }

    // ---------------------------------------------------------------------------------------
    // Windows appear and disappear

    pub fn add_toplevel(&mut self, id: WinId) {
        let (w, h) = self.config.default_size;
        self.toplevels.insert(
            id,
            Toplevel {
                x: 0,
                y: 0,
                width: w,
                height: h,
                configured: None,
                maximized: None,
                minimized: false,
                mapped: false,
                placed: false,
                user_placed: false,
                has_content: false,
                workspace: self.active_workspace,
                attention: false,
                min_size: (0, 0),
                max_size: (0, 0),
            },
        );
        self.stack.push(id);
    }

    /// Adds a popup under `parent` (a toplevel or popup). Returns false if the parent is unknown.
    pub fn add_popup(
        &mut self,
        id: WinId,
        parent: WinId,
        offset: (i32, i32),
        size: (i32, i32),
    ) -> bool {
        let toplevel = if self.toplevels.contains_key(&parent) {
            parent
        } else if let Some(p) = self.popups.get(&parent) {
            p.toplevel
        } else {
            return false;
        };
        self.popups.insert(
            id,
            Popup {
                parent,
                toplevel,
                offset,
                size: (size.0.max(1), size.1.max(1)),
                mapped: false,
            },
        );
        self.popup_order.push(id);
        true
    }

    pub fn reposition_popup(&mut self, id: WinId, offset: (i32, i32), size: (i32, i32)) {
        if let Some(p) = self.popups.get_mut(&id) {
            p.offset = offset;
            p.size = (size.0.max(1), size.1.max(1));
        }
    }

    /// Removes a window; popups below it go too. Focus on it becomes none: a window that goes
    /// away never hands focus to another by itself.
    pub fn remove(&mut self, id: WinId) {
        let doomed: Vec<WinId> = self
            .popup_order
            .iter()
            .copied()
            .filter(|p| self.is_descendant(*p, id))
            .collect();
        for p in doomed {
            self.popups.remove(&p);
        }
        self.popups.remove(&id);
        self.toplevels.remove(&id);
        self.popup_order.retain(|p| self.popups.contains_key(p));
        self.stack.retain(|w| *w != id);
        self.last_focus.retain(|_, w| *w != id);
        if self.focus == Some(id) {
            self.focus = None;
        }
    }

    fn is_descendant(&self, popup: WinId, ancestor: WinId) -> bool {
        let mut current = popup;
        for _ in 0..=self.popups.len() {
            match self.popups.get(&current) {
                Some(p) if p.parent == ancestor || p.toplevel == ancestor => return true,
                Some(p) => current = p.parent,
                None => return false,
            }
        }
        false
    }

    /// The agent mapped or unmapped a window. A toplevel shown for the first time is placed on
    /// the output under the pointer.
    pub fn set_mapped(&mut self, id: WinId, mapped: bool, pointer: (f64, f64)) {
        if let Some(p) = self.popups.get_mut(&id) {
            p.mapped = mapped;
            return;
        }
        let Some(t) = self.toplevels.get_mut(&id) else {
            return;
        };
        t.mapped = mapped;
        if mapped && !t.placed {
            self.place(id, pointer);
        }
        if !mapped && self.focus == Some(id) {
            self.focus = None;
        }
        self.constrain(id);
    }

    /// A commit brought a buffer of this size.
    pub fn content_committed(&mut self, id: WinId, buffer: (i32, i32), pointer: (f64, f64)) {
        let usable = self.usable_content_size(id);
        let Some(t) = self.toplevels.get_mut(&id) else {
            return;
        };
        let first = !t.has_content;
        t.has_content = true;
        if t.configured.is_none() {
            t.width = buffer.0.clamp(1, usable.0);
            t.height = buffer.1.clamp(1, usable.1);
        }
        if first && t.placed && !t.user_placed && t.maximized.is_none() {
            // Place again now that the real size is known.
            self.place(id, pointer);
        }
        self.constrain(id);
    }

    pub fn set_size_hints(&mut self, id: WinId, min: (i32, i32), max: (i32, i32)) {
        if let Some(t) = self.toplevels.get_mut(&id) {
            t.min_size = min;
            t.max_size = max;
        }
    }

    pub fn set_attention(&mut self, id: WinId, attention: bool) {
        if let Some(t) = self.toplevels.get_mut(&id) {
            // The focused window needs no attention mark.
            t.attention = attention && self.focus != Some(id);
        }
    }

    // ---------------------------------------------------------------------------------------
    // The user's actions

    /// Focuses and raises a toplevel (a popup focuses its toplevel). Only user actions call this.
    /// A minimised window is restored; a window on another workspace brings that workspace.
    /// Returns whether focus is now on it.
    pub fn focus_window(&mut self, id: WinId) -> bool {
        let id = self.popups.get(&id).map_or(id, |p| p.toplevel);
        let Some(t) = self.toplevels.get_mut(&id) else {
            return false;
        };
        if !t.mapped || !t.placed {
            return false;
        }
        t.minimized = false;
        t.attention = false;
        let ws = t.workspace;
        if ws != self.active_workspace {
            self.active_workspace = ws;
        }
        self.focus = Some(id);
        self.last_focus.insert(ws, id);
        self.raise(id);
        true
    }

    /// Drops keyboard focus (for example when the user clicks the background).
    pub fn clear_focus(&mut self) {
        self.focus = None;
    }

    pub fn raise(&mut self, id: WinId) {
        if let Some(pos) = self.stack.iter().position(|w| *w == id) {
            let w = self.stack.remove(pos);
            self.stack.push(w);
        }
    }

    pub fn move_to(&mut self, id: WinId, x: i32, y: i32) {
        if let Some(t) = self.toplevels.get_mut(&id) {
            if t.maximized.is_some() {
                return;
            }
            t.x = x;
            t.y = y;
            t.user_placed = true;
        }
        self.constrain(id);
    }

    pub fn move_by(&mut self, id: WinId, dx: i32, dy: i32) {
        if let Some(t) = self.toplevels.get(&id) {
            let (x, y) = (t.x.saturating_add(dx), t.y.saturating_add(dy));
            self.move_to(id, x, y);
        }
    }

    /// Resizes the content; returns the size to configure the client with.
    pub fn resize(&mut self, id: WinId, width: i32, height: i32) -> Option<(i32, i32)> {
        let usable = self.usable_content_size(id);
        let t = self.toplevels.get_mut(&id)?;
        if t.maximized.is_some() {
            return None;
        }
        let clamp = |v: i32, min: i32, max: i32, usable: i32| {
            let mut v = v.max(min.max(32));
            if max > 0 {
                v = v.min(max);
            }
            v.clamp(1, usable.max(1))
        };
        t.width = clamp(width, t.min_size.0, t.max_size.0, usable.0);
        t.height = clamp(height, t.min_size.1, t.max_size.1, usable.1);
        t.configured = Some((t.width, t.height));
        t.user_placed = true;
        let size = (t.width, t.height);
        self.constrain(id);
        Some(size)
    }

    /// Maximises or restores; returns the content size to configure and whether it is now
    /// maximised.
    pub fn toggle_maximize(&mut self, id: WinId) -> Option<((i32, i32), bool)> {
        let t = self.toplevels.get(&id)?;
        if t.maximized.is_some() {
            self.set_maximized(id, false)
        } else {
            self.set_maximized(id, true)
        }
    }

    /// The part of an output windows may use: all of it but the panel's strip.
    pub fn work_area(&self, output: Rect) -> Rect {
        let top = self.config.reserved_top.clamp(0, output.h / 2);
        Rect::new(output.x, output.y + top, output.w, output.h - top)
    }

    pub fn set_maximized(&mut self, id: WinId, maximized: bool) -> Option<((i32, i32), bool)> {
        let output = self.work_area(self.outputs.get(self.output_of(id)?)?.rect);
        let c = self.config;
        let t = self.toplevels.get_mut(&id)?;
        match (maximized, t.maximized) {
            (true, None) => {
                t.maximized = Some((t.x, t.y, t.width, t.height));
                t.x = output.x;
                t.y = output.y;
                t.width = (output.w - 2 * c.border).max(1);
                t.height = (output.h - c.title_height - 2 * c.border).max(1);
                t.configured = Some((t.width, t.height));
            }
            (false, Some((x, y, w, h))) => {
                t.maximized = None;
                t.x = x;
                t.y = y;
                t.width = w;
                t.height = h;
                t.configured = Some((w, h));
            }
            _ => {}
        }
        let result = ((t.width, t.height), t.maximized.is_some());
        self.constrain(id);
        Some(result)
    }

    pub fn minimize(&mut self, id: WinId) {
        if let Some(t) = self.toplevels.get_mut(&id) {
            t.minimized = true;
            if self.focus == Some(id) {
                self.focus = None;
            }
        }
    }

    /// Shows workspace `n` (1-based) and focuses the window last focused there.
    pub fn switch_workspace(&mut self, n: u32) {
        if n == 0 || n > self.config.workspaces || n == self.active_workspace {
            return;
        }
        self.active_workspace = n;
        self.focus = None;
        if let Some(&w) = self.last_focus.get(&n)
            && self.is_visible(w)
        {
            self.focus = Some(w);
            self.raise(w);
        }
    }

    pub fn move_to_workspace(&mut self, id: WinId, n: u32) {
        if n == 0 || n > self.config.workspaces {
            return;
        }
        if let Some(t) = self.toplevels.get_mut(&id) {
            t.workspace = n;
            if n != self.active_workspace && self.focus == Some(id) {
                self.focus = None;
            }
        }
    }

    /// The window switcher's step: focuses the next window of the active workspace (minimised
    /// ones included) below the focused one in the stacking order, wrapping around.
    pub fn cycle_focus(&mut self) -> Option<WinId> {
        let candidates: Vec<WinId> = self
            .stack
            .iter()
            .rev()
            .copied()
            .filter(|w| {
                self.toplevels
                    .get(w)
                    .is_some_and(|t| t.mapped && t.placed && t.workspace == self.active_workspace)
            })
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let next = match self
            .focus
            .and_then(|f| candidates.iter().position(|w| *w == f))
        {
            // The focused window is on top; the next one is the one below it. Raising it puts
            // it on top, so cycling walks through all windows: take the bottom-most instead.
            Some(_) => *candidates.last()?,
            None => candidates[0],
        };
        self.focus_window(next);
        Some(next)
    }

    /// Replaces the outputs and keeps every window reachable.
    pub fn set_outputs(&mut self, outputs: Vec<OutputArea>) {
        self.outputs = outputs;
        let ids: Vec<WinId> = self.toplevels.keys().copied().collect();
        for id in ids {
            let maximized = self
                .toplevels
                .get(&id)
                .is_some_and(|t| t.maximized.is_some());
            if maximized {
                // Fit the maximised window to its (possibly new) output.
                if let Some(t) = self.toplevels.get_mut(&id)
                    && let Some(saved) = t.maximized.take()
                {
                    t.maximized = None;
                    self.set_maximized(id, true);
                    if let Some(t) = self.toplevels.get_mut(&id) {
                        t.maximized = Some(saved);
                    }
                }
            }
            self.constrain(id);
        }
    }

    // ---------------------------------------------------------------------------------------
    // Placement and constraints

    /// Largest content that fits an output with its frame.
    fn usable_content_size(&self, id: WinId) -> (i32, i32) {
        let c = self.config;
        let output = self
            .output_of(id)
            .and_then(|i| self.outputs.get(i))
            .or_else(|| self.outputs.first());
        match output.map(|o| self.work_area(o.rect)) {
            Some(o) => (
                (o.w - 2 * c.border).max(1),
                (o.h - c.title_height - 2 * c.border).max(1),
            ),
            None => (16384, 16384),
        }
    }

    /// Places a toplevel on the output under the pointer: the first free spot scanning from
    /// the top-left, or cascaded from the centre when the output is full.
    fn place(&mut self, id: WinId, pointer: (f64, f64)) {
        let output = self
            .output_at(pointer.0, pointer.1)
            .or(if self.outputs.is_empty() {
                None
            } else {
                Some(0)
            })
            .map(|i| self.work_area(self.outputs[i].rect));
        let Some(output) = output else {
            if let Some(t) = self.toplevels.get_mut(&id) {
                t.placed = true;
            }
            return;
        };
        let c = self.config;
        let Some(t) = self.toplevels.get(&id) else {
            return;
        };
        let (w, h) = (
            t.width.min((output.w - 2 * c.border).max(1)),
            t.height
                .min((output.h - c.title_height - 2 * c.border).max(1)),
        );
        let outer = (w + 2 * c.border, h + c.title_height + 2 * c.border);
        let others: Vec<Rect> = self
            .stack
            .iter()
            .filter(|o| **o != id && self.is_visible(**o))
            .filter_map(|o| self.frame_rect(*o))
            .collect();
        const MARGIN: i32 = 16;
        const STEP: i32 = 32;
        let mut spot = None;
        let mut y = output.y + MARGIN;
        'scan: while y + outer.1 <= output.bottom() {
            let mut x = output.x + MARGIN;
            while x + outer.0 <= output.right() {
                let candidate = Rect::new(x, y, outer.0, outer.1);
                if let Some(blocker) = others.iter().find(|o| o.intersects(candidate)) {
                    x = blocker.right() + MARGIN;
                    continue;
                }
                spot = Some((x, y));
                break 'scan;
            }
            y += STEP;
        }
        let (x, y) = spot.unwrap_or_else(|| {
            let n = i32::try_from(others.len() % 8).unwrap_or(0);
            (
                output.x + (output.w - outer.0) / 2 + n * STEP,
                output.y + (output.h - outer.1) / 2 + n * STEP,
            )
        });
        if let Some(t) = self.toplevels.get_mut(&id) {
            t.width = w;
            t.height = h;
            t.x = x;
            t.y = y;
            t.placed = true;
        }
    }

    /// Keeps a toplevel reachable: its whole title bar height on an output, and at least
    /// `min_visible` pixels of it horizontally.
    fn constrain(&mut self, id: WinId) {
        let Some(frame) = self.frame_rect(id) else {
            return;
        };
        let Some(out) = self
            .output_for_rect(frame)
            .map(|i| self.work_area(self.outputs[i].rect))
        else {
            return;
        };
        let c = self.config;
        let Some(t) = self.toplevels.get_mut(&id) else {
            return;
        };
        let keep = c.min_visible.min(frame.w);
        let min_x = out.x - frame.w + keep;
        let max_x = out.right() - keep;
        t.x = t.x.clamp(min_x, max_x.max(min_x));
        let min_y = out.y;
        let max_y = out.bottom() - (c.title_height + c.border);
        t.y = t.y.clamp(min_y, max_y.max(min_y));
    }

    /// Checks the invariants the rest of the compositor relies on. Used by tests.
    pub fn check_invariants(&self) -> Result<(), String> {
        if let Some(f) = self.focus
            && !(self.toplevels.contains_key(&f) && self.is_visible(f))
        {
            return Err(format!("focus {f} is not a visible toplevel"));
        }
        let mut seen = std::collections::HashSet::new();
        for w in &self.stack {
            if !self.toplevels.contains_key(w) || !seen.insert(*w) {
                return Err(format!("stack entry {w} is stale or repeated"));
            }
        }
        if seen.len() != self.toplevels.len() {
            return Err("a toplevel is missing from the stack".into());
        }
        for (&id, t) in &self.toplevels {
            if t.width < 1 || t.height < 1 {
                return Err(format!("window {id} has an empty content size"));
            }
            if !t.placed || self.outputs.is_empty() {
                continue;
            }
            let title = self.title_rect(id).ok_or("no title")?;
            let frame = self.frame_rect(id).ok_or("no frame")?;
            let title_strip = Rect::new(frame.x, title.y, frame.w, title.h);
            let reachable = self.outputs.iter().any(|o| {
                title_strip
                    .intersection(self.work_area(o.rect))
                    .is_some_and(|r| {
                        r.h == title_strip.h && r.w >= self.config.min_visible.min(frame.w)
                    })
            });
            if !reachable {
                return Err(format!(
                    "window {id}'s title bar {title_strip:?} cannot be reached on any output"
                ));
            }
            let under_panel = self.outputs.iter().any(|o| {
                let panel = Rect::new(
                    o.rect.x,
                    o.rect.y,
                    o.rect.w,
                    self.work_area(o.rect).y - o.rect.y,
                );
                !panel.is_empty() && frame.intersects(panel)
            });
            if under_panel {
                return Err(format!(
                    "window {id}'s frame {frame:?} reaches under the panel"
                ));
            }
            let content = self.content_rect(id).ok_or("no content")?;
            if !frame.contains_rect(content) || content.intersects(title) {
                return Err(format!("window {id}'s content is not inside its frame"));
            }
            for border in self.border_rects(id).ok_or("no border")? {
                if border.intersects(content) {
                    return Err(format!("window {id}'s content overlaps its border"));
                }
            }
        }
        for &p in self.popups.keys() {
            if !self.toplevels.contains_key(&self.popups[&p].toplevel) {
                return Err(format!("popup {p} outlived its toplevel"));
            }
            let Some(content) = self.popup_content_rect(p) else {
                continue;
            };
            let Some(output) = self.output_of(p).map(|i| self.outputs[i].rect) else {
                continue;
            };
            let outer = content.expand(self.config.popup_border);
            if !output.contains_rect(outer) {
                return Err(format!(
                    "popup {p} at {outer:?} leaves its output {output:?}"
                ));
            }
            let share = self.config.popup_max_percent;
            if outer.w > output.w * share / 100 || outer.h > output.h * share / 100 {
                return Err(format!("popup {p} covers more than {share}% of its output"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests;
