//! What is drawn on an output, front to back, before any renderer is involved.
//!
//! Order is the security property here, so it is built in one place and tested:
//! 1. the trusted layer (notifications) in front of everything;
//! 2. qube windows from the top of the stack down; each toplevel's popups right above it (so a
//!    popup never rises above another toplevel), and for every window its chrome (title bar,
//!    border) *in front of* its content;
//! 3. content clipped to the frame's interior, over a neutral fill (a window mapped before
//!    any content shows its frame around that fill, QSB-39).

use crate::labels::Rgb;
use crate::layout::{Layout, Rect, WinId};

/// One thing to draw. Rectangles are global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item {
    /// A notification of the trusted layer.
    Toast { index: usize, rect: Rect },
    /// A border strip (0 top, 1 bottom, 2 left, 3 right) in the label colour.
    Border {
        win: WinId,
        side: usize,
        rect: Rect,
        colour: Rgb,
    },
    /// The title bar with the trusted `[qube] title` text.
    Title { win: WinId, rect: Rect },
    /// The qube's pixels, already clipped to the interior.
    Content { win: WinId, rect: Rect },
    /// Neutral fill of the interior, under the content.
    Fill { win: WinId, rect: Rect },
}

impl Item {
    pub fn rect(&self) -> Rect {
        match *self {
            Item::Toast { rect, .. }
            | Item::Border { rect, .. }
            | Item::Title { rect, .. }
            | Item::Content { rect, .. }
            | Item::Fill { rect, .. } => rect,
        }
    }

    pub fn win(&self) -> Option<WinId> {
        match *self {
            Item::Toast { .. } => None,
            Item::Border { win, .. }
            | Item::Title { win, .. }
            | Item::Content { win, .. }
            | Item::Fill { win, .. } => Some(win),
        }
    }

    pub fn is_trusted_layer(&self) -> bool {
        matches!(self, Item::Toast { .. })
    }
}

/// What the scene needs to know about a window beyond its geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLook {
    pub colour: Rgb,
    /// Size of the committed buffer, if any.
    pub buffer: Option<(i32, i32)>,
}

/// Builds the items for `output`, front to back.
pub fn build(
    layout: &Layout,
    toasts: &[Rect],
    output: Rect,
    look: impl Fn(WinId) -> Option<WindowLook>,
) -> Vec<Item> {
    let mut items = Vec::new();
    for (index, &rect) in toasts.iter().enumerate() {
        if rect.intersects(output) {
            items.push(Item::Toast { index, rect });
        }
    }
    for &top in layout.stack().iter().rev() {
        if !layout.is_visible(top) {
            continue;
        }
        let popups: Vec<WinId> = layout.popups_of(top).collect();
        for &popup in popups.iter().rev() {
            if layout.is_visible(popup) {
                push_window(layout, popup, output, &look, &mut items);
            }
        }
        push_window(layout, top, output, &look, &mut items);
    }
    items
}

fn push_window(
    layout: &Layout,
    win: WinId,
    output: Rect,
    look: &impl Fn(WinId) -> Option<WindowLook>,
    items: &mut Vec<Item>,
) {
    let Some(look) = look(win) else {
        return;
    };
    let Some(interior) = layout.content_rect(win) else {
        return;
    };
    let Some(borders) = layout.border_rects(win) else {
        return;
    };
    let outer = if layout.is_toplevel(win) {
        layout.frame_rect(win)
    } else {
        Some(interior.expand(layout.config.popup_border))
    };
    if !outer.is_some_and(|o| o.intersects(output)) {
        return;
    }
    // Chrome first: it is in front of the content.
    if layout.is_toplevel(win)
        && let Some(title) = layout.title_rect(win)
    {
        items.push(Item::Title { win, rect: title });
    }
    for (side, rect) in borders.into_iter().enumerate() {
        if !rect.is_empty() {
            items.push(Item::Border {
                win,
                side,
                rect,
                colour: look.colour,
            });
        }
    }
    if let Some((w, h)) = look.buffer
        && let Some(visible) = interior.intersection(Rect::new(interior.x, interior.y, w, h))
    {
        items.push(Item::Content { win, rect: visible });
    }
    items.push(Item::Fill {
        win,
        rect: interior,
    });
}

/// Checks the ordering rules of a scene. Used by tests.
pub fn check(items: &[Item], layout: &Layout) -> Result<(), String> {
    let first_qube = items.iter().position(|i| !i.is_trusted_layer());
    if let Some(first) = first_qube
        && items[first..].iter().any(Item::is_trusted_layer)
    {
        return Err("a qube window is drawn in front of the trusted layer".into());
    }
    for (i, item) in items.iter().enumerate() {
        if let Item::Content { win, rect } = item {
            let interior = layout
                .content_rect(*win)
                .ok_or("content of an unknown window")?;
            if !interior.contains_rect(*rect) {
                return Err(format!(
                    "window {win}'s content {rect:?} leaves its interior"
                ));
            }
            // Nothing of the window's own chrome may come after (behind) its content... and
            // nothing of its content may cover its own chrome.
            if items[i..].iter().any(|later| {
                matches!(later, Item::Title { win: w, .. } | Item::Border { win: w, .. } if w == win)
            }) {
                return Err(format!("window {win}'s chrome is drawn behind its content"));
            }
            for chrome in items.iter().filter(|c| {
                matches!(c, Item::Title { win: w, .. } | Item::Border { win: w, .. } if w == win)
            }) {
                if chrome.rect().intersects(*rect) {
                    return Err(format!("window {win}'s content overlaps its own frame"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::layout::tests::{apply, op};
    use crate::layout::{LayoutConfig, OutputArea};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Whatever the window manager does, the trusted layer is in front, every window's
        /// chrome is in front of its content, and content stays inside its interior.
        #[test]
        fn scenes_keep_their_order(
            ops in prop::collection::vec(op(), 1..60),
            buffers in prop::collection::vec((1..5000i32, 1..5000i32), 16),
            toasts in 0..4usize,
        ) {
            let outputs = vec![
                OutputArea { name: "a".into(), rect: Rect::new(0, 0, 1600, 900) },
                OutputArea { name: "b".into(), rect: Rect::new(1600, 0, 1280, 1024) },
            ];
            let mut layout = Layout::new(LayoutConfig::default(), outputs);
            let mut ids = Vec::new();
            let mut next = 0;
            let toast_rects: Vec<Rect> =
                (0..toasts).map(|i| Rect::new(900, 12 + 60 * i as i32, 640, 52)).collect();
            for op in &ops {
                apply(&mut layout, &mut ids, &mut next, op).map_err(TestCaseError::fail)?;
                for output in layout.outputs().to_vec() {
                    let items = build(&layout, &toast_rects, output.rect, |win| {
                        Some(WindowLook {
                            colour: Rgb::new(0xcc, 0, 0),
                            buffer: Some(buffers[(win as usize) % buffers.len()]),
                        })
                    });
                    check(&items, &layout).map_err(|e| TestCaseError::fail(format!("{op:?}: {e}")))?;
                }
            }
        }
    }
}
