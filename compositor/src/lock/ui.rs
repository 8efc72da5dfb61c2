//! The lock screen as drawn: on every output, a dark fill and a centred panel with the user
//! name, one dot per typed character (never the characters) and a status line; or, on an
//! output where a live locker gave a surface, that surface over the same fill.
//!
//! Drawing is from trusted data only (the user name from the password database or the command
//! line, counts, fixed strings, PAM's verdict as a fixed message). A panic while drawing the
//! panel is caught: that output shows the plain fill, still locked.

use smithay::backend::renderer::element::Id;
use smithay::backend::renderer::element::Kind;
use smithay::backend::renderer::element::memory::{
    MemoryRenderBuffer, MemoryRenderBufferRenderElement,
};
use smithay::backend::renderer::element::solid::SolidColorRenderElement;
use smithay::backend::renderer::element::surface::{
    WaylandSurfaceRenderElement, render_elements_from_surface_tree,
};
use smithay::backend::renderer::element::utils::CropRenderElement;
use smithay::backend::renderer::utils::CommitCounter;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Physical, Point, Rectangle};

use crate::labels::Rgb;
use crate::layout::Rect;
use crate::render::text::Pixels;
use crate::render::{CorralElement, CorralRenderer, pixels_buffer};

/// The fill behind the lock screen, on every output.
pub const LOCK_BACKGROUND: Rgb = Rgb::new(0x0b, 0x0d, 0x12);
/// The panel.
pub const PANEL: Rgb = Rgb::new(0x24, 0x28, 0x31);
/// The panel's edge.
pub const PANEL_EDGE: Rgb = Rgb::new(0x5c, 0x63, 0x70);
/// The password field.
pub const FIELD: Rgb = Rgb::new(0x12, 0x14, 0x19);
/// Dots and headline.
pub const INK: Rgb = Rgb::new(0xf0, 0xf0, 0xf0);
/// Secondary text.
pub const MUTED: Rgb = Rgb::new(0xa8, 0xae, 0xb8);
/// A failed attempt's message.
pub const WARN: Rgb = Rgb::new(0xff, 0x9a, 0x8a);

pub const PANEL_W: i32 = 440;
pub const PANEL_H: i32 = 190;
/// Dots drawn at most (more typed characters show as this many).
pub const MAX_DOTS: usize = 24;
const DOT: i32 = 10;
const DOT_STEP: i32 = 16;
const FIELD_X: i32 = 24;
const FIELD_Y: i32 = 84;
const FIELD_H: i32 = 36;

/// Everything the panel shows; equal keys draw identical pixels (the cache relies on it, and a
/// test checks that two passwords of one length look the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PanelKey {
    pub user: String,
    pub dots: usize,
    pub checking: bool,
    pub message: Option<String>,
    /// A live locker holds the lock (its own surfaces ask for the password).
    pub locker: bool,
}

/// What the lock screen needs from the state for one frame.
#[derive(Debug, Clone)]
pub struct LockFrame {
    pub panel: PanelKey,
    /// The live locker's surface for each output that has one.
    pub surfaces: Vec<(Rect, WlSurface)>,
}

/// Cached drawings of the lock screen.
#[derive(Debug)]
pub struct LockCache {
    background: Id,
    panel: Option<(PanelKey, MemoryRenderBuffer)>,
}

impl Default for LockCache {
    fn default() -> Self {
        LockCache {
            background: Id::new(),
            panel: None,
        }
    }
}

/// Where the panel goes on an output (centred), in output-local pixels.
pub fn panel_rect(output: Rect) -> Rect {
    let w = PANEL_W.min(output.w);
    let h = PANEL_H.min(output.h);
    Rect::new((output.w - w) / 2, (output.h - h) / 2, w, h)
}

/// Draws the panel.
pub fn draw_panel(key: &PanelKey) -> Pixels {
    let mut p = Pixels::filled(PANEL_W, PANEL_H, PANEL);
    p.fill_rect(0, 0, PANEL_W, 2, PANEL_EDGE);
    p.fill_rect(0, PANEL_H - 2, PANEL_W, 2, PANEL_EDGE);
    p.fill_rect(0, 0, 2, PANEL_H, PANEL_EDGE);
    p.fill_rect(PANEL_W - 2, 0, 2, PANEL_H, PANEL_EDGE);
    p.draw_text("Corral is locked", 24, 18, 22.0, PANEL_W - 48, INK);
    let who = format!("Password for {}", key.user);
    p.draw_text(&who, 24, 54, 14.0, PANEL_W - 48, MUTED);
    let field_w = PANEL_W - 2 * FIELD_X;
    p.fill_rect(FIELD_X, FIELD_Y, field_w, FIELD_H, PANEL_EDGE);
    p.fill_rect(FIELD_X + 1, FIELD_Y + 1, field_w - 2, FIELD_H - 2, FIELD);
    if key.locker {
        p.draw_text(
            "A screen locker holds the session",
            FIELD_X + 10,
            FIELD_Y + 9,
            14.0,
            field_w - 20,
            MUTED,
        );
    }
    let cy = FIELD_Y + FIELD_H / 2;
    for i in 0..key.dots.min(MAX_DOTS) as i32 {
        let cx = FIELD_X + 14 + i * DOT_STEP;
        draw_dot(&mut p, cx, cy, DOT / 2, INK);
    }
    let (status, colour) = match (&key.message, key.checking) {
        (_, true) => ("Checking…".to_owned(), MUTED),
        (Some(m), false) => (m.clone(), WARN),
        (None, false) => ("Type your password, then Return".to_owned(), MUTED),
    };
    p.draw_text(
        &status,
        24,
        FIELD_Y + FIELD_H + 16,
        14.0,
        PANEL_W - 48,
        colour,
    );
    p
}

/// A filled disc of radius `r` at (cx, cy).
fn draw_dot(p: &mut Pixels, cx: i32, cy: i32, r: i32, colour: Rgb) {
    for dy in -r..=r {
        let half = f64::from(r * r - dy * dy).sqrt().round() as i32;
        p.fill_rect(cx - half, cy + dy, 2 * half + 1, 1, colour);
    }
}

/// The elements of one output while locked, front to back: the locker's surface if it gave
/// this output one, else the panel; then the fill over the whole output. Nothing else.
pub fn output_elements<R: CorralRenderer>(
    renderer: &mut R,
    frame: &LockFrame,
    cache: &mut LockCache,
    output: Rect,
) -> Vec<CorralElement<R>> {
    let full = Rectangle::<i32, Physical>::new((0, 0).into(), (output.w, output.h).into());
    let mut elements = Vec::new();
    if let Some((_, surface)) = frame.surfaces.iter().find(|(r, _)| *r == output) {
        let surface_elements: Vec<WaylandSurfaceRenderElement<R>> =
            render_elements_from_surface_tree(
                renderer,
                surface,
                Point::<i32, Physical>::from((0, 0)),
                1.0,
                1.0,
                Kind::Unspecified,
            );
        elements.extend(
            surface_elements
                .into_iter()
                .filter_map(|e| CropRenderElement::from_element(e, 1.0, full))
                .map(CorralElement::Local),
        );
    } else if let Some(buffer) = panel_buffer(cache, &frame.panel) {
        let at = panel_rect(output);
        if let Ok(e) = MemoryRenderBufferRenderElement::from_buffer(
            renderer,
            Point::<f64, Physical>::from((f64::from(at.x), f64::from(at.y))),
            buffer,
            None,
            None,
            None,
            Kind::Unspecified,
        ) {
            elements.push(CorralElement::Memory(e));
        }
    }
    elements.push(CorralElement::Solid(SolidColorRenderElement::new(
        cache.background.clone(),
        full,
        CommitCounter::default(),
        LOCK_BACKGROUND.to_f32(),
        Kind::Unspecified,
    )));
    elements
}

/// The panel's buffer, drawn again only when what it shows changed. `None` if drawing it
/// panicked (the output then shows the fill alone; the session stays locked).
fn panel_buffer<'c>(cache: &'c mut LockCache, key: &PanelKey) -> Option<&'c MemoryRenderBuffer> {
    panel_buffer_with(cache, key, draw_panel)
}

fn panel_buffer_with<'c>(
    cache: &'c mut LockCache,
    key: &PanelKey,
    draw: impl Fn(&PanelKey) -> Pixels,
) -> Option<&'c MemoryRenderBuffer> {
    if cache.panel.as_ref().is_none_or(|(k, _)| k != key) {
        cache.panel = None;
        let drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| draw(key)));
        match drawn {
            Ok(pixels) => cache.panel = Some((key.clone(), pixels_buffer(&pixels))),
            Err(_) => {
                tracing::error!("drawing the lock screen panicked; showing the plain lock fill");
                return None;
            }
        }
    }
    cache.panel.as_ref().map(|(_, b)| b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(dots: usize) -> PanelKey {
        PanelKey {
            user: "alice".into(),
            dots,
            checking: false,
            message: None,
            locker: false,
        }
    }

    fn count(p: &Pixels, colour: Rgb, area: (i32, i32, i32, i32)) -> usize {
        let (x0, y0, w, h) = area;
        let mut n = 0;
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                let i = ((y * p.width + x) * 4) as usize;
                if p.data[i..i + 3] == [colour.b, colour.g, colour.r] {
                    n += 1;
                }
            }
        }
        n
    }

    #[test]
    fn the_field_shows_one_dot_per_character_and_nothing_else() {
        let field = (
            FIELD_X + 1,
            FIELD_Y + 1,
            PANEL_W - 2 * FIELD_X - 2,
            FIELD_H - 2,
        );
        let empty = draw_panel(&key(0));
        assert_eq!(count(&empty, INK, field), 0);
        let one = count(&draw_panel(&key(1)), INK, field);
        assert!(one > 20, "a dot has {one} pixels");
        assert_eq!(count(&draw_panel(&key(5)), INK, field), 5 * one);
        // Beyond MAX_DOTS the field does not grow.
        assert_eq!(
            draw_panel(&key(MAX_DOTS)),
            draw_panel(&key(MAX_DOTS + 10)).clone()
        );
    }

    #[test]
    fn the_panel_depends_on_the_length_only() {
        // The key holds no characters at all: two passwords of one length draw the same
        // pixels, by construction.
        let a = crate::lock::Lock::panel_key_for_test("alice", "hunter2");
        let b = crate::lock::Lock::panel_key_for_test("alice", "xyzzy42");
        assert_eq!(a, b);
        assert_eq!(draw_panel(&a), draw_panel(&b));
        let c = crate::lock::Lock::panel_key_for_test("alice", "hunter22");
        assert_ne!(draw_panel(&a), draw_panel(&c));
    }

    #[test]
    fn a_panic_while_drawing_leaves_no_panel_and_no_cache() {
        let mut cache = LockCache::default();
        let got = panel_buffer_with(&mut cache, &key(3), |_| panic!("a broken font"));
        assert!(got.is_none());
        assert!(cache.panel.is_none());
        // The next frame tries again.
        assert!(panel_buffer_with(&mut cache, &key(3), draw_panel).is_some());
    }

    #[test]
    fn the_panel_fits_small_outputs() {
        let r = panel_rect(Rect::new(0, 0, 320, 100));
        assert!(r.x >= 0 && r.y >= 0 && r.w <= 320 && r.h <= 100);
    }
}
