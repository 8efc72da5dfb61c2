//! The trusted layer's notifications (toasts): drawn by the compositor above every qube window,
//! from trusted data only. A qube is named by its trusted name and label colour; any text that
//! came from a qube (an error naming a rule it broke) is already sanitised.

use std::time::{Duration, Instant};

use crate::labels::Rgb;
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
/// Colours and stripe width come from the theme's `[notifications]`.
pub fn draw_toast(toast: &Toast, width: i32, height: i32) -> Pixels {
    let style = crate::config::theme::look().notifications;
    let mut p = Pixels::filled(width, height, style.background.0);
    // An edge so the box stands out on any window.
    let edge = style.edge.0;
    p.fill_rect(0, 0, width, 1, edge);
    p.fill_rect(0, height - 1, width, 1, edge);
    p.fill_rect(0, 0, 1, height, edge);
    p.fill_rect(width - 1, 0, 1, height, edge);
    let stripe = style.stripe_width.get() as i32;
    p.fill_rect(1, 1, stripe, height - 2, toast.colour);
    let text_x = stripe + 8;
    p.draw_text(
        &toast.headline,
        text_x,
        5,
        15.0,
        width - text_x - 8,
        style.headline.0,
    );
    p.draw_text(
        &toast.detail,
        text_x,
        27,
        13.0,
        width - text_x - 8,
        style.detail.0,
    );
    p
}
