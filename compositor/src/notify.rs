//! The trusted layer's notifications (toasts): drawn by the compositor above every qube window,
//! from trusted data only.
//!
//! Two sources, drawn so that they can never be mistaken for each other:
//!
//! - **System** toasts ([`ToastSource::System`]) are the GUI domain's own words (a qube cut off,
//!   a policy denial). A thin neutral edge and a stripe in the colour of the qube they are about.
//! - **Qube** toasts ([`ToastSource::Qube`]) are a qube's desktop notifications, forwarded by its
//!   agent (`notify`, docs/protocol.md section 12.5). They carry a frame of [`QUBE_FRAME`] pixels
//!   in the qube's label colour on all four sides and a tag with the qube's trusted name, drawn
//!   here, before the qube's own (sanitised) summary. No system toast has that frame, so a qube
//!   cannot dress its notification up as the system's.
//!
//! A qube may show at most [`QUBE_TOASTS_PER_QUBE`] toasts at once; what is over that is dropped
//! (not queued, so a flood costs no memory) and the user is told once per [`TOAST_TIME`] by a
//! system toast. Qube toasts never push system toasts off the screen: when the screen is full,
//! the oldest qube toast makes room.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use corral_protocol::{CloseReason, NotificationId, SanitizedText, Urgency};

use crate::labels::{Rgb, text_colour_on};
use crate::layout::Rect;
use crate::qubes::ConnId;
use crate::render::text::{Pixels, text_width};

/// How long a toast stays.
pub const TOAST_TIME: Duration = Duration::from_secs(8);
/// How long a qube's critical notification stays (the freedesktop spec would keep it until
/// dismissed; a qube could then pin its toasts, so it only gets longer).
pub const CRITICAL_TOAST_TIME: Duration = Duration::from_secs(16);
const TOAST_HEIGHT: i32 = 52;
const TOAST_MAX_WIDTH: i32 = 640;
const MARGIN: i32 = 12;
/// Most toasts on screen, both sources together.
pub const MAX_TOASTS: usize = 5;
/// Most toasts one qube may have on screen at once.
pub const QUBE_TOASTS_PER_QUBE: usize = 3;
/// Width of the label-coloured frame around a qube's toast.
pub const QUBE_FRAME: i32 = 4;
/// Close notices waiting to be sent; older ones are dropped (a notice is a courtesy to the
/// qube, and this keeps a flood from growing the queue between two drains).
const MAX_PENDING_CLOSES: usize = 64;

/// Where a toast's words come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToastSource {
    /// The GUI domain itself.
    System,
    /// A qube's notification, on connection `conn` under the agent's id `id`.
    Qube {
        conn: ConnId,
        /// The qube's trusted name (from the channel, never from the agent).
        name: String,
        id: NotificationId,
        urgency: Urgency,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toast {
    /// Changes whenever the toast's content changes (the renderer caches by it).
    pub id: u64,
    /// The label colour of the qube it is about or from, or the GUI domain's black.
    pub colour: Rgb,
    /// For a qube toast: the qube's sanitised summary (shown after the trusted name).
    pub headline: String,
    pub detail: String,
    pub expires: Instant,
    pub source: ToastSource,
}

impl Toast {
    pub fn qube_conn(&self) -> Option<ConnId> {
        match self.source {
            ToastSource::Qube { conn, .. } => Some(conn),
            ToastSource::System => None,
        }
    }
}

/// What became of a qube's notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QubeToastOutcome {
    Shown,
    /// A live notification with the same id was replaced in place.
    Replaced,
    /// Not shown: the qube is at its limit, or the screen is full of system toasts. `warn`:
    /// this is the first drop of a flood, tell the user.
    Dropped {
        warn: bool,
    },
}

#[derive(Debug, Default)]
pub struct Notifications {
    toasts: Vec<Toast>,
    next_id: u64,
    /// Per connection: no new "too many notifications" warning before this time. Entries go
    /// once their time has passed, so this holds at most one entry per flooding qube.
    flood_quiet_until: HashMap<ConnId, Instant>,
    /// Qube notifications no longer shown, for `notification_closed`.
    closed: VecDeque<(ConnId, NotificationId, CloseReason)>,
}

impl Notifications {
    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A system toast. When the screen is full, the oldest qube toast goes first; only when
    /// there is none does the oldest system toast go.
    pub fn push(&mut self, colour: Rgb, headline: String, detail: String, now: Instant) {
        if self.toasts.len() >= MAX_TOASTS {
            let victim = self
                .toasts
                .iter()
                .position(|t| t.qube_conn().is_some())
                .unwrap_or(0);
            self.remove_at(victim, CloseReason::Undefined);
        }
        let id = self.fresh_id();
        self.toasts.push(Toast {
            id,
            colour,
            headline,
            detail,
            expires: now + TOAST_TIME,
            source: ToastSource::System,
        });
    }

    /// A qube's notification, from connection `conn` of the qube `name` (trusted) whose label
    /// colour is `colour`. The texts were sanitised by the decoder.
    #[allow(clippy::too_many_arguments)]
    pub fn push_from_qube(
        &mut self,
        conn: ConnId,
        name: &str,
        colour: Rgb,
        id: NotificationId,
        urgency: Urgency,
        summary: &SanitizedText,
        body: &SanitizedText,
        now: Instant,
    ) -> QubeToastOutcome {
        let expires = now
            + if urgency == Urgency::Critical {
                CRITICAL_TOAST_TIME
            } else {
                TOAST_TIME
            };
        let source = ToastSource::Qube {
            conn,
            name: name.to_owned(),
            id,
            urgency,
        };
        if let Some(i) = self.position_of(conn, id) {
            let fresh = self.fresh_id();
            let t = &mut self.toasts[i];
            t.id = fresh;
            t.headline = summary.as_str().to_owned();
            t.detail = body.as_str().to_owned();
            // The first showing's expiry stays: replacing a notification (progress updates)
            // never keeps it up longer.
            t.source = source;
            return QubeToastOutcome::Replaced;
        }
        let shown = self
            .toasts
            .iter()
            .filter(|t| t.qube_conn() == Some(conn))
            .count();
        let room = if self.toasts.len() < MAX_TOASTS {
            true
        } else if let Some(oldest_qube) = self.toasts.iter().position(|t| t.qube_conn().is_some()) {
            // Room is made from qube toasts only, never from the system's.
            if shown < QUBE_TOASTS_PER_QUBE {
                self.remove_at(oldest_qube, CloseReason::Undefined);
                true
            } else {
                false
            }
        } else {
            false
        };
        if shown >= QUBE_TOASTS_PER_QUBE || !room {
            self.flood_quiet_until.retain(|_, until| *until > now);
            let warn = shown >= QUBE_TOASTS_PER_QUBE && !self.flood_quiet_until.contains_key(&conn);
            if warn {
                self.flood_quiet_until.insert(conn, now + TOAST_TIME);
            }
            self.note_closed(conn, id, CloseReason::Undefined);
            return QubeToastOutcome::Dropped { warn };
        }
        let toast_id = self.fresh_id();
        self.toasts.push(Toast {
            id: toast_id,
            colour,
            headline: summary.as_str().to_owned(),
            detail: body.as_str().to_owned(),
            expires,
            source,
        });
        QubeToastOutcome::Shown
    }

    /// The qube withdrew its notification `id`; returns whether one was shown.
    pub fn close_from_qube(&mut self, conn: ConnId, id: NotificationId) -> bool {
        match self.position_of(conn, id) {
            Some(i) => {
                self.remove_at(i, CloseReason::Closed);
                true
            }
            None => false,
        }
    }

    /// A connection ended: its toasts go at once (a qube cut off for breaking the protocol
    /// keeps nothing it wrote on screen), and nothing is queued for it.
    pub fn forget_conn(&mut self, conn: ConnId) {
        self.toasts.retain(|t| t.qube_conn() != Some(conn));
        self.closed.retain(|(c, _, _)| *c != conn);
        self.flood_quiet_until.remove(&conn);
    }

    /// Qube notifications that went since the last call, for `notification_closed`.
    pub fn take_closed(&mut self) -> Vec<(ConnId, NotificationId, CloseReason)> {
        self.closed.drain(..).collect()
    }

    fn position_of(&self, conn: ConnId, id: NotificationId) -> Option<usize> {
        self.toasts.iter().position(|t| {
            matches!(&t.source, ToastSource::Qube { conn: c, id: i, .. } if *c == conn && *i == id)
        })
    }

    fn remove_at(&mut self, index: usize, reason: CloseReason) {
        let t = self.toasts.remove(index);
        if let ToastSource::Qube { conn, id, .. } = t.source {
            self.note_closed(conn, id, reason);
        }
    }

    fn note_closed(&mut self, conn: ConnId, id: NotificationId, reason: CloseReason) {
        // A notice for a connection that is gone by the time it is sent is simply dropped.
        if self.closed.len() >= MAX_PENDING_CLOSES {
            self.closed.pop_front();
        }
        self.closed.push_back((conn, id, reason));
    }

    /// Drops expired toasts; returns whether any went.
    pub fn expire(&mut self, now: Instant) -> bool {
        let before = self.toasts.len();
        let mut i = 0;
        while i < self.toasts.len() {
            if self.toasts[i].expires <= now {
                self.remove_at(i, CloseReason::Expired);
            } else {
                i += 1;
            }
        }
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

/// Draws a toast. System: dark box, a thin neutral edge, a stripe in the label colour, headline
/// and detail. Qube: dark box inside a [`QUBE_FRAME`]-pixel frame in the qube's label colour,
/// a tag in that colour with the qube's trusted name, then the qube's summary and body.
/// Colours and stripe width come from the theme's `[notifications]`.
pub fn draw_toast(toast: &Toast, width: i32, height: i32) -> Pixels {
    let style = crate::config::theme::look().notifications;
    let mut p = Pixels::filled(width, height, style.background.0);
    match &toast.source {
        ToastSource::System => {
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
        }
        ToastSource::Qube { name, .. } => {
            let f = QUBE_FRAME;
            let c = toast.colour;
            p.fill_rect(0, 0, width, f, c);
            p.fill_rect(0, height - f, width, f, c);
            p.fill_rect(0, 0, f, height, c);
            p.fill_rect(width - f, 0, f, height, c);
            // The tag: the qube's name on its label colour, at most half the width.
            let tag_text = crate::render::text::fit(name, 14.0, width / 2);
            let tag_w = text_width(&tag_text, 14.0).ceil() as i32 + 12;
            p.fill_rect(f, f, tag_w, 22, c);
            p.draw_text(&tag_text, f + 6, f + 3, 14.0, tag_w, text_colour_on(c));
            let text_x = f + tag_w + 8;
            p.draw_text(
                &toast.headline,
                text_x,
                f + 3,
                15.0,
                width - text_x - f - 6,
                style.headline.0,
            );
            p.draw_text(
                &toast.detail,
                f + 6,
                f + 25,
                13.0,
                width - 2 * f - 12,
                style.detail.0,
            );
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> SanitizedText {
        SanitizedText::sanitize(s, 256)
    }

    fn nid(n: u32) -> NotificationId {
        NotificationId::new(n).unwrap()
    }

    fn qube(n: &mut Notifications, conn: ConnId, id: u32, now: Instant) -> QubeToastOutcome {
        n.push_from_qube(
            conn,
            "work",
            Rgb::from_hex(0x3465a4),
            nid(id),
            Urgency::Normal,
            &text(&format!("s{id}")),
            &text("b"),
            now,
        )
    }

    #[test]
    fn a_flooding_qube_is_capped_warned_once_and_keeps_no_backlog() {
        let mut n = Notifications::default();
        let now = Instant::now();
        let mut warnings = 0;
        for id in 1..=10_000 {
            match qube(&mut n, 7, id, now) {
                QubeToastOutcome::Shown => {}
                QubeToastOutcome::Dropped { warn } => warnings += usize::from(warn),
                QubeToastOutcome::Replaced => panic!("no id repeats"),
            }
        }
        assert_eq!(n.toasts().len(), QUBE_TOASTS_PER_QUBE);
        assert_eq!(warnings, 1);
        assert!(n.take_closed().len() <= MAX_PENDING_CLOSES);
        assert_eq!(n.flood_quiet_until.len(), 1);
    }

    #[test]
    fn qube_toasts_never_push_system_toasts_away() {
        let mut n = Notifications::default();
        let now = Instant::now();
        n.push(Rgb::from_hex(0), "system".into(), "detail".into(), now);
        for conn in 1..=4 {
            for id in 1..=3 {
                qube(&mut n, conn, id, now);
            }
        }
        assert_eq!(n.toasts().len(), MAX_TOASTS);
        assert!(n.toasts().iter().any(|t| t.source == ToastSource::System));
        // And a system toast makes room from the qube toasts.
        for i in 0..4 {
            n.push(Rgb::from_hex(0), format!("system {i}"), String::new(), now);
        }
        assert_eq!(
            n.toasts()
                .iter()
                .filter(|t| t.source == ToastSource::System)
                .count(),
            MAX_TOASTS
        );
    }

    #[test]
    fn same_id_replaces_close_and_expiry_are_reported() {
        let mut n = Notifications::default();
        let now = Instant::now();
        assert_eq!(qube(&mut n, 3, 1, now), QubeToastOutcome::Shown);
        assert_eq!(qube(&mut n, 3, 1, now), QubeToastOutcome::Replaced);
        assert_eq!(qube(&mut n, 3, 2, now), QubeToastOutcome::Shown);
        assert_eq!(n.toasts().len(), 2);
        assert!(n.close_from_qube(3, nid(1)));
        assert!(!n.close_from_qube(4, nid(2)), "another qube's id");
        assert!(n.expire(now + TOAST_TIME));
        assert_eq!(
            n.take_closed(),
            vec![
                (3, nid(1), CloseReason::Closed),
                (3, nid(2), CloseReason::Expired)
            ]
        );
    }

    #[test]
    fn replacing_never_extends_a_toast_and_an_ended_connection_leaves_nothing() {
        let mut n = Notifications::default();
        let now = Instant::now();
        qube(&mut n, 5, 1, now);
        // Re-sent just before it would go: it still goes when the first one would have.
        let late = now + TOAST_TIME - Duration::from_millis(1);
        assert_eq!(qube(&mut n, 5, 1, late), QubeToastOutcome::Replaced);
        assert!(n.expire(now + TOAST_TIME));
        assert!(n.toasts().is_empty());
        // A connection cut off while its toasts show: they go, and no notice is queued for it.
        qube(&mut n, 6, 1, now);
        qube(&mut n, 6, 2, now);
        qube(&mut n, 7, 1, now);
        let _ = n.take_closed();
        n.forget_conn(6);
        assert_eq!(n.toasts().len(), 1);
        assert_eq!(n.toasts()[0].qube_conn(), Some(7));
        assert!(n.take_closed().is_empty());
    }

    #[test]
    fn qube_toasts_are_framed_and_system_toasts_are_not() {
        let blue = Rgb::from_hex(0x3465a4);
        let now = Instant::now();
        let mut n = Notifications::default();
        n.push(blue, "[work] cut off".into(), "d".into(), now);
        qube(&mut n, 1, 1, now);
        let px = |p: &Pixels, x: i32, y: i32| {
            let i = ((y * p.width + x) * 4) as usize;
            Rgb::new(p.data[i + 2], p.data[i + 1], p.data[i])
        };
        let system = draw_toast(&n.toasts()[0], 400, 52);
        let framed = draw_toast(&n.toasts()[1], 400, 52);
        for (x, y) in [(200, 1), (200, 50), (398, 26), (2, 51)] {
            assert_eq!(px(&framed, x, y), blue, "qube frame at ({x}, {y})");
            assert_ne!(px(&system, x, y), blue, "system toast at ({x}, {y})");
        }
    }
}
