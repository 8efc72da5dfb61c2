//! What the compositor does with each message an agent sent. Everything here already passed the
//! decoder and the session rules of `corral-protocol`; what is left is policy (P rules of
//! docs/protocol.md): placement, clamping, focus, attention, fullscreen, clipboard replies.

use corral_protocol::channel::{ConnectionError, Received};
use corral_protocol::session::Applied;
use corral_protocol::{
    AgentMessage, Capabilities, GuiMessage, NotificationId, SanitizedText, StateRequest, Urgency,
    WindowId,
};
use std::time::Instant;

use super::{CommittedBuffer, ConnId, QubeWindow, WindowKind};
use crate::notify::{QUBE_TOASTS_PER_QUBE, QubeToastOutcome};
use crate::state::State;

/// Most pending damage rectangles kept per window before they are merged into one.
const MAX_PENDING_DAMAGE: usize = 256;

impl State {
    pub(crate) fn handle_agent_message(
        &mut self,
        id: ConnId,
        received: Received,
    ) -> Result<(), ConnectionError> {
        let Received { message, applied } = received;
        if let Applied::Established {
            version,
            capabilities,
        } = applied
        {
            let outputs = self.output_infos();
            let keymap = match self.qubes.conns.get(&id) {
                Some(conn) => self.keymap_for(conn.identity.name.as_str()),
                None => self.keymap.clone(),
            };
            if let Some(conn) = self.qubes.conns.get_mut(&id) {
                conn.established = true;
                conn.keymap_sent = true;
            }
            self.send_to(
                id,
                &GuiMessage::Welcome {
                    version,
                    capabilities,
                    outputs,
                },
            );
            // The keymap goes once, before any keyboard_enter.
            self.send_to(id, &GuiMessage::Keymap { keymap });
            return Ok(());
        }
        if let Applied::WindowsDestroyed(ids) = &applied {
            for window in ids {
                self.destroy_window(id, *window);
            }
            self.sync_focus();
            self.queue_redraw();
            return Ok(());
        }
        let pointer = self.input.pointer;
        match message {
            AgentMessage::CreateToplevel { window } => {
                let win = self.qubes.alloc_win();
                self.insert_window(id, win, window, WindowKind::Toplevel);
                self.layout.add_toplevel(win);
                // Let the client choose its size; not activated.
                self.send_configure(win);
            }
            AgentMessage::CreatePopup {
                window,
                parent,
                position,
                size,
            } => {
                let Some(parent_win) = self.qubes.win_of(id, parent) else {
                    return Ok(());
                };
                let win = self.qubes.alloc_win();
                self.insert_window(id, win, window, WindowKind::Popup { parent });
                self.layout.add_popup(
                    win,
                    parent_win,
                    (position.x(), position.y()),
                    (size.width() as i32, size.height() as i32),
                );
            }
            AgentMessage::RepositionPopup {
                window,
                position,
                size,
            } => {
                if let Some(win) = self.qubes.win_of(id, window) {
                    self.layout.reposition_popup(
                        win,
                        (position.x(), position.y()),
                        (size.width() as i32, size.height() as i32),
                    );
                    self.queue_redraw();
                }
            }
            AgentMessage::Map { window } | AgentMessage::Unmap { window } => {
                let mapped = matches!(message, AgentMessage::Map { .. });
                if let Some(win) = self.qubes.win_of(id, window) {
                    self.layout.set_mapped(win, mapped, pointer);
                    self.sync_focus();
                    self.queue_redraw();
                }
            }
            AgentMessage::SetTitle { window, title } => {
                if let Some(w) = self.window_of(id, window) {
                    w.untrusted_title = title;
                    w.decoration_commit += 1;
                    self.queue_redraw();
                }
            }
            AgentMessage::SetAppId { window, app_id } => {
                if let Some(w) = self.window_of(id, window) {
                    w.untrusted_app_id = app_id;
                }
            }
            AgentMessage::SizeHints { window, min, max } => {
                if let Some(win) = self.qubes.win_of(id, window) {
                    let dim = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
                    self.layout.set_size_hints(
                        win,
                        (dim(min.width()), dim(min.height())),
                        (dim(max.width()), dim(max.height())),
                    );
                }
            }
            AgentMessage::PoolDestroy { pool } => {
                // The connection has already unmapped the pool: drop every view into it now,
                // before anything can render.
                if let Some(conn) = self.qubes.conns.get_mut(&id) {
                    conn.forget_pool(pool);
                }
                self.queue_redraw();
            }
            AgentMessage::Attach {
                window,
                pool,
                layout,
            } => {
                if let Some(w) = self.window_of(id, window) {
                    w.pending_buffer = Some(CommittedBuffer { pool, layout });
                }
            }
            AgentMessage::Damage { window, rects } => {
                if let Some(w) = self.window_of(id, window) {
                    w.pending_damage.extend(rects);
                    if w.pending_damage.len() > MAX_PENDING_DAMAGE {
                        let all = bounding_box(&w.pending_damage);
                        w.pending_damage.clear();
                        w.pending_damage.extend(all);
                    }
                }
            }
            AgentMessage::Commit { window, .. } => self.commit(id, window),
            AgentMessage::AckConfigure { window, serial } => {
                if let Some(w) = self.window_of(id, window)
                    && w.last_configure.is_some_and(|(s, _, _)| s == serial)
                {
                    // An ack of a serial never sent is ignored (P).
                    w.acked_serial = Some(serial);
                }
            }
            AgentMessage::RequestAttention { window } => {
                // Marks the window; never moves focus or raises it (decision 5).
                if let Some(win) = self.qubes.win_of(id, window) {
                    let toplevel = self.layout.popup(win).map_or(win, |p| p.toplevel);
                    self.layout.set_attention(toplevel, true);
                    self.queue_redraw();
                }
            }
            AgentMessage::RequestState { window, request } => {
                if let Some(win) = self.qubes.win_of(id, window) {
                    self.request_state(win, request);
                }
            }
            // Accepted only as the answer to the newest copy request (QSB-13).
            AgentMessage::ClipboardData { serial, payload } => {
                self.clipboard_reply(id, serial, Some(payload));
            }
            AgentMessage::ClipboardEmpty { serial } => self.clipboard_reply(id, serial, None),
            AgentMessage::Notify {
                id: untrusted_id,
                urgency,
                summary,
                body,
            } => self.qube_notification(id, untrusted_id, urgency, &summary, &body),
            AgentMessage::CloseNotification { id: untrusted_id } => {
                if self.notifications.close_from_qube(id, untrusted_id) {
                    self.queue_redraw();
                }
                self.send_notification_closes();
            }
            AgentMessage::SetCursor { .. }
            | AgentMessage::PoolCreate { .. }
            | AgentMessage::PoolWrite { .. }
            | AgentMessage::AppList { .. }
            | AgentMessage::Pong { .. }
            | AgentMessage::Hello { .. }
            | AgentMessage::Goodbye { .. }
            | AgentMessage::DestroyWindow { .. } => {}
        }
        Ok(())
    }

    /// A qube's desktop notification: shown in the trusted layer, framed in the qube's label
    /// colour under its trusted name (docs/protocol.md section 12.5), within the qube's quota.
    fn qube_notification(
        &mut self,
        id: ConnId,
        notification: NotificationId,
        urgency: Urgency,
        summary: &SanitizedText,
        body: &SanitizedText,
    ) {
        let Some(conn) = self.qubes.conns.get(&id) else {
            return;
        };
        // Name and colour from the channel's identity, never from the message (decision 2).
        let name = conn.identity.name.to_string();
        let colour = conn.identity.colour();
        let outcome = self.notifications.push_from_qube(
            id,
            &name,
            colour,
            notification,
            urgency,
            summary,
            body,
            Instant::now(),
        );
        match outcome {
            QubeToastOutcome::Dropped { warn: true } => {
                tracing::warn!("qube {name} sent too many notifications; dropping the rest");
                self.notify(
                    colour,
                    format!("[{name}] sent too many notifications"),
                    format!(
                        "At most {QUBE_TOASTS_PER_QUBE} are shown at once; the rest are dropped."
                    ),
                );
            }
            QubeToastOutcome::Dropped { warn: false } => {}
            QubeToastOutcome::Shown | QubeToastOutcome::Replaced => self.queue_redraw(),
        }
        self.send_notification_closes();
    }

    /// Tells each qube which of its notifications are no longer shown.
    pub(crate) fn send_notification_closes(&mut self) {
        let closed = self.notifications.take_closed();
        let mut touched = Vec::new();
        for (conn, id, reason) in closed {
            let negotiated = self.qubes.conns.get(&conn).is_some_and(|c| {
                c.conn
                    .session()
                    .established()
                    .is_some_and(|(_, caps)| caps.contains(Capabilities::NOTIFICATIONS))
            });
            if negotiated {
                self.send_to(conn, &GuiMessage::NotificationClosed { id, reason });
                if !touched.contains(&conn) {
                    touched.push(conn);
                }
            }
        }
        for conn in touched {
            self.flush_qube(conn);
        }
    }

    fn insert_window(&mut self, id: ConnId, win: u64, window: WindowId, kind: WindowKind) {
        if let Some(conn) = self.qubes.conns.get_mut(&id) {
            conn.windows
                .insert(window, QubeWindow::new(win, window, kind));
            self.qubes.windows.insert(win, (id, window));
        }
    }

    fn window_of(&mut self, id: ConnId, window: WindowId) -> Option<&mut QubeWindow> {
        self.qubes.conns.get_mut(&id)?.windows.get_mut(&window)
    }

    fn destroy_window(&mut self, id: ConnId, window: WindowId) {
        let Some(conn) = self.qubes.conns.get_mut(&id) else {
            return;
        };
        if let Some(w) = conn.windows.remove(&window) {
            self.forget_window(w.win);
        }
    }

    fn commit(&mut self, id: ConnId, window: WindowId) {
        let pointer = self.input.pointer;
        let Some(w) = self.window_of(id, window) else {
            return;
        };
        let damage = std::mem::take(&mut w.pending_damage);
        if let Some(buffer) = w.pending_buffer.take()
            && w.current != Some(buffer)
        {
            w.current = Some(buffer);
            w.cache.clear();
            w.damage.reset();
        }
        let Some(current) = w.current else {
            return;
        };
        let (bw, bh) = (
            current.layout.size().width(),
            current.layout.size().height(),
        );
        let clipped: Vec<_> = damage.iter().filter_map(|r| r.clamp_to(bw, bh)).collect();
        w.damage.add(clipped.iter().map(|r| {
            smithay::utils::Rectangle::new(
                (r.x() as i32, r.y() as i32).into(),
                (r.width() as i32, r.height() as i32).into(),
            )
        }));
        w.cache.upload_damage.extend(clipped);
        w.frame_done_pending = true;
        let (win, is_toplevel) = (w.win, matches!(w.kind, WindowKind::Toplevel));
        if is_toplevel {
            self.layout
                .content_committed(win, (bw as i32, bh as i32), pointer);
        }
        self.queue_redraw();
    }

    /// A qube's request for a state: a request, not a command (P).
    fn request_state(&mut self, win: u64, request: StateRequest) {
        match request {
            StateRequest::Maximize => {
                self.layout.set_maximized(win, true);
            }
            StateRequest::Unmaximize | StateRequest::Unfullscreen => {
                self.layout.set_maximized(win, false);
            }
            StateRequest::Fullscreen => {
                // Fullscreen would drop the frame: only maximise, frame kept. A qube in
                // `security.fullscreen_allowed` is honoured, still drawn maximised and framed
                // (decision 4: no qube window ever loses its frame).
                let qube = self
                    .qubes
                    .window(win)
                    .map(|(c, _)| c.identity.name.to_string());
                if self.config.allow_fullscreen || qube.is_some_and(|q| self.fullscreen_allowed(&q))
                {
                    tracing::info!("fullscreen is allowed by policy but drawn maximised, framed");
                }
                self.layout.set_maximized(win, true);
            }
            StateRequest::Minimize => self.layout.minimize(win),
        }
        self.send_configure(win);
        self.sync_focus();
        self.queue_redraw();
    }
}

fn bounding_box(rects: &[corral_protocol::Rect]) -> Option<corral_protocol::Rect> {
    let x0 = rects.iter().map(|r| r.x()).min()?;
    let y0 = rects.iter().map(|r| r.y()).min()?;
    let x1 = rects.iter().map(|r| r.x() + r.width()).max()?;
    let y1 = rects.iter().map(|r| r.y() + r.height()).max()?;
    corral_protocol::Rect::new(x0, y0, x1 - x0, y1 - y0).ok()
}
