//! The trusted layer's notifications (toasts): drawn by the compositor above every qube window,
//! from trusted data only. A qube is named by its trusted name and label colour; any text that
//! came from a qube (an error naming a rule it broke) is already sanitised.

use std::time::{Duration, Instant};

use crate::labels::{self, Rgb};
use crate::layout::Rect;
use crate::render::text::Pixels;

/// How long a toast stays.
pub const TOAST_TIME: Duration = Duration::from_secs(8);
const TOAST_HEIGHT: i32 = 52;
const TOAST_MAX_WIDTH: i32 = 640;
const MARGIN: i32 = 12;
const MAX_TOASTS: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    pub id: u64,
    /// The label colour of the qube it is about, or the GUI domain's black.
    pub colour: Rgb,
    pub headline: String,
    pub detail: String,
    pub expires: Instant,
}

#[derive(Debug, Default)]
pub struct Notifications {
    toasts: Vec<Toast>,
    next_id: u64,
}

impl Notifications {
    pub fn push(&mut self, colour: Rgb, headline: String, detail: String, now: Instant) {
        self.next_id += 1;
        self.toasts.push(Toast {
            id: self.next_id,
            colour,
            headline,
            detail,
            expires: now + TOAST_TIME,
        });
        if self.toasts.len() > MAX_TOASTS {
            self.toasts.remove(0);
        }
    }

    /// Drops expired toasts; returns whether any went.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.toasts.len();
        self.toasts.retain(|t| t.expires > now);
        before != self.toasts.len()
    }

    pub fn toasts(&self) -> &[Toast] {
        &self.toasts
    }

    pub fn next_expiry(&self) -> Option<Instant> {
        self.toasts.iter().map(|t| t.expires).min()
    }

    /// Where the toasts go: stacked in the top-right corner of the first output.
    pub fn rects(&self, first_output: Option<Rect>) -> Vec<Rect> {
        let Some(out) = first_output else {
            return Vec::new();
        };
        let w = (out.w - 2 * MARGIN).clamp(1, TOAST_MAX_WIDTH);
        self.toasts
            .iter()
            .enumerate()
            .map(|(i, _)| {
                Rect::new(
                    out.right() - MARGIN - w,
                    out.y + MARGIN + i as i32 * (TOAST_HEIGHT + MARGIN / 2),
                    w,
                    TOAST_HEIGHT,
                )
            })
            .collect()
    }
}

/// Draws a toast: dark box, a stripe in the label colour, headline and detail.
pub fn draw_toast(toast: &Toast, width: i32, height: i32) -> Pixels {
    let bg = Rgb::new(0x18, 0x18, 0x1a);
    let mut p = Pixels::filled(width, height, bg);
    // Frame in light grey so the box stands out on any window.
    let edge = Rgb::new(0xd0, 0xd0, 0xd0);
    p.fill_rect(0, 0, width, 1, edge);
    p.fill_rect(0, height - 1, width, 1, edge);
    p.fill_rect(0, 0, 1, height, edge);
    p.fill_rect(width - 1, 0, 1, height, edge);
    p.fill_rect(1, 1, 8, height - 2, toast.colour);
    p.draw_text(&toast.headline, 16, 5, 15.0, width - 24, labels::WHITE);
    p.draw_text(
        &toast.detail,
        16,
        27,
        13.0,
        width - 24,
        Rgb::new(0xc8, 0xc8, 0xc8),
    );
    p
}
