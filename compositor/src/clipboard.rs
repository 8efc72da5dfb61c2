//! The global clipboard (decision 6): one buffer in compositor memory, filled only by the
//! user's Ctrl+Shift+C and emptied into one qube by Ctrl+Shift+V, under the policy
//! `corral.ClipboardPaste` (docs/policy.md).
//!
//! - Copy: a new serial for every request; only one request is outstanding (globally), and only
//!   the reply carrying its serial, from the qube it was sent to, within the timeout, is
//!   accepted. Any other reply (unasked, stale, late, second) is dropped (QSB-13).
//! - A reply over the cap for its kind, or a PNG that does not look like one, is refused whole
//!   and the buffer is wiped, so nothing stale can be pasted in its place (QSB-11).
//! - Paste: pasting back into the source qube is refused; otherwise the policy decides; on allow
//!   the data goes to the focused qube only, then the buffer is wiped (paste-once) unless
//!   configured to keep it.
//!
//! The buffer is never shown anywhere: `corral msg clipboard` reports source, kind, size, age.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use corral_domains::policy::{Policy, QubeFacts, Request as PolicyRequest, Target};
use corral_protocol::limits::{DEFAULT_CLIPBOARD_TEXT_BYTES, MAX_CLIPBOARD_BYTES};
use corral_protocol::{ClipboardPayload, GuiMessage, PNG_SIGNATURE, Serial};
use serde::{Deserialize, Serialize};

use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, Mode, PostAction, RegistrationToken};
use smithay::wayland::selection::data_device::{
    request_data_device_client_selection, set_data_device_selection,
};

use crate::labels::Rgb;
use crate::qubes::ConnId;
use crate::state::State;

/// The policy service a paste asks for.
pub const PASTE_SERVICE: &str = "corral.ClipboardPaste";
/// Default cap for PNG images.
pub const DEFAULT_CLIPBOARD_PNG_BYTES: usize = 4 * 1024 * 1024;
/// Default time a qube has to answer a copy request.
pub const DEFAULT_COPY_TIMEOUT: Duration = Duration::from_secs(5);
/// The installed policy directory.
pub const SYSTEM_POLICY_DIR: &str = "/etc/corral/policy.d";

/// The policy directory when `--policy-dir` is not given: the repository's `config/policy.d`
/// for a debug build run from a source tree that has it, else `/etc/corral/policy.d`.
pub fn default_policy_dir() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/policy.d");
    if cfg!(debug_assertions) && repo.is_dir() {
        repo
    } else {
        PathBuf::from(SYSTEM_POLICY_DIR)
    }
}

#[derive(Debug, Clone)]
pub struct ClipboardConfig {
    pub policy_dir: PathBuf,
    /// Largest text accepted from a qube (bytes).
    pub text_max: usize,
    /// Largest PNG accepted from a qube (bytes).
    pub png_max: usize,
    /// How long a copy request waits for its reply.
    pub timeout: Duration,
    /// Keep the buffer after a paste (otherwise one copy pastes once).
    pub keep_after_paste: bool,
    /// Wipe the buffer this long after a copy.
    pub wipe_after: Option<Duration>,
    /// `ask` counts as allow for the shortcut-triggered paste (as in Qubes).
    pub ask_is_allow: bool,
}

impl Default for ClipboardConfig {
    fn default() -> Self {
        ClipboardConfig {
            policy_dir: default_policy_dir(),
            text_max: DEFAULT_CLIPBOARD_TEXT_BYTES,
            png_max: DEFAULT_CLIPBOARD_PNG_BYTES,
            timeout: DEFAULT_COPY_TIMEOUT,
            keep_after_paste: false,
            wipe_after: None,
            ask_is_allow: true,
        }
    }
}

/// Who a clipboard transfer is with: a qube (by its connection and trusted name) or the GUI
/// domain itself (`@adminvm` in the policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub conn: Option<ConnId>,
    pub name: String,
    pub colour: Rgb,
}

impl Party {
    fn facts(&self) -> QubeFacts {
        if self.conn.is_none() {
            QubeFacts::admin()
        } else {
            QubeFacts::app(&self.name)
        }
    }
}

#[derive(Debug)]
struct Outstanding {
    from: Party,
    serial: Serial,
    asked: Instant,
}

/// What the global buffer holds.
#[derive(Debug)]
pub struct Stored {
    pub source: Party,
    pub payload: ClipboardPayload,
    pub copied: Instant,
}

/// What became of a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplyOutcome {
    /// Not the answer to the outstanding request: dropped, nothing changes.
    Dropped(&'static str),
    /// The answer came after the timeout: dropped, the request is over.
    Late,
    Stored,
    /// The qube had nothing to copy; the buffer was wiped.
    Empty,
    /// Over the cap: refused whole, the buffer was wiped.
    TooLarge {
        size: usize,
        cap: usize,
    },
    /// Not acceptable content: refused whole, the buffer was wiped.
    Malformed(String),
}

#[derive(Debug, Default)]
pub struct GlobalClipboard {
    pub config: ClipboardConfig,
    outstanding: Option<Outstanding>,
    buffer: Option<Stored>,
    next_serial: u32,
    /// The MIME types of the selection a GUI-domain app set last (`wl_data_source`).
    pub local_client_mimes: Vec<String>,
    /// What the compositor offers the GUI domain's apps after a paste into one of them.
    pub local_offer: Option<ClipboardPayload>,
    /// The read of a GUI-domain app's selection in progress.
    local_read: Option<RegistrationToken>,
}

/// `corral msg clipboard`: never the content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipboardInfo {
    pub empty: bool,
    pub source: Option<String>,
    /// `text` or `png`.
    pub kind: Option<String>,
    pub size: Option<usize>,
    pub age_ms: Option<u64>,
    /// A copy request waiting for its reply: from which qube.
    pub pending_from: Option<String>,
    pub policy_dir: String,
    pub keep_after_paste: bool,
}

impl GlobalClipboard {
    pub fn new(config: ClipboardConfig) -> Self {
        GlobalClipboard {
            config,
            outstanding: None,
            buffer: None,
            next_serial: 1,
            local_client_mimes: Vec::new(),
            local_offer: None,
            local_read: None,
        }
    }

    /// Starts a copy from a qube: the serial to send. Any older request is forgotten.
    pub fn begin_copy(&mut self, from: Party, now: Instant) -> Serial {
        let serial = Serial(self.next_serial);
        self.next_serial = self.next_serial.wrapping_add(1).max(1);
        self.outstanding = Some(Outstanding {
            from,
            serial,
            asked: now,
        });
        serial
    }

    /// The cap for a payload's kind.
    pub fn cap(&self, payload: &ClipboardPayload) -> usize {
        let cap = match payload {
            ClipboardPayload::Text(_) => self.config.text_max,
            ClipboardPayload::Png(_) => self.config.png_max,
        };
        cap.min(MAX_CLIPBOARD_BYTES)
    }

    /// A reply from connection `conn` (`None`: the GUI domain's own selection) (`None` payload:
    /// `clipboard_empty`).
    pub fn reply(
        &mut self,
        conn: Option<ConnId>,
        serial: Serial,
        payload: Option<ClipboardPayload>,
        now: Instant,
    ) -> ReplyOutcome {
        let Some(out) = &self.outstanding else {
            return ReplyOutcome::Dropped("no copy request is outstanding");
        };
        if out.from.conn != conn {
            return ReplyOutcome::Dropped("the outstanding request went to another qube");
        }
        if out.serial != serial {
            return ReplyOutcome::Dropped("not the serial of the newest request");
        }
        if now.saturating_duration_since(out.asked) > self.config.timeout {
            self.outstanding = None;
            return ReplyOutcome::Late;
        }
        let Some(out) = self.outstanding.take() else {
            return ReplyOutcome::Dropped("no copy request is outstanding");
        };
        let Some(payload) = payload else {
            self.buffer = None;
            return ReplyOutcome::Empty;
        };
        let cap = self.cap(&payload);
        if payload.len() > cap {
            self.buffer = None;
            return ReplyOutcome::TooLarge {
                size: payload.len(),
                cap,
            };
        }
        if let Err(why) = check_payload(&payload) {
            self.buffer = None;
            return ReplyOutcome::Malformed(why);
        }
        self.buffer = Some(Stored {
            source: out.from,
            payload,
            copied: now,
        });
        ReplyOutcome::Stored
    }

    /// The request that timed out, if any (it is forgotten).
    pub fn expire_request(&mut self, now: Instant) -> Option<Party> {
        let out = self.outstanding.as_ref()?;
        if now.saturating_duration_since(out.asked) > self.config.timeout {
            return self.outstanding.take().map(|o| o.from);
        }
        None
    }

    /// Wipes the buffer if it is older than `wipe_after`; whether it did.
    pub fn expire_buffer(&mut self, now: Instant) -> bool {
        let (Some(after), Some(b)) = (self.config.wipe_after, &self.buffer) else {
            return false;
        };
        if now.saturating_duration_since(b.copied) >= after {
            self.buffer = None;
            return true;
        }
        false
    }

    /// When the loop must wake for a timeout or a timed wipe.
    pub fn next_deadline(&self) -> Option<Instant> {
        let a = self
            .outstanding
            .as_ref()
            .map(|o| o.asked + self.config.timeout + Duration::from_millis(1));
        let b = self
            .config
            .wipe_after
            .and_then(|d| self.buffer.as_ref().map(|b| b.copied + d));
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn stored(&self) -> Option<&Stored> {
        self.buffer.as_ref()
    }

    pub fn wipe(&mut self) -> bool {
        self.buffer.take().is_some()
    }

    pub fn info(&self, now: Instant) -> ClipboardInfo {
        let b = self.buffer.as_ref();
        ClipboardInfo {
            empty: b.is_none(),
            source: b.map(|b| b.source.name.clone()),
            kind: b.map(|b| b.payload.kind_name().to_string()),
            size: b.map(|b| b.payload.len()),
            age_ms: b.map(|b| now.saturating_duration_since(b.copied).as_millis() as u64),
            pending_from: self.outstanding.as_ref().map(|o| o.from.name.clone()),
            policy_dir: self.config.policy_dir.display().to_string(),
            keep_after_paste: self.config.keep_after_paste,
        }
    }
}

/// What the decoder cannot know: a PNG must at least have its header chunk right after the
/// signature (`IHDR`, 13 bytes, non-zero size within the protocol's surface limit).
pub fn check_payload(payload: &ClipboardPayload) -> Result<(), String> {
    match payload {
        ClipboardPayload::Text(t) => {
            if t.contains('\0') {
                return Err("text with NUL bytes".into());
            }
            Ok(())
        }
        ClipboardPayload::Png(p) => {
            let ok = p.len() >= 33
                && p[..8] == PNG_SIGNATURE
                && p[8..12] == [0, 0, 0, 13]
                && &p[12..16] == b"IHDR";
            if !ok {
                return Err("not a PNG image (no IHDR header)".into());
            }
            let w = u32::from_be_bytes([p[16], p[17], p[18], p[19]]);
            let h = u32::from_be_bytes([p[20], p[21], p[22], p[23]]);
            if !(1..=16384).contains(&w) || !(1..=16384).contains(&h) {
                return Err(format!("PNG image of {w}x{h} pixels"));
            }
            Ok(())
        }
    }
}

/// `1.2 KB`, `512 bytes`, `3.4 MB` (decimal units).
pub fn format_size(n: usize) -> String {
    if n < 1000 {
        if n == 1 {
            "1 byte".into()
        } else {
            format!("{n} bytes")
        }
    } else if n < 1_000_000 {
        format!("{:.1} KB", n as f64 / 1000.0)
    } else {
        format!("{:.1} MB", n as f64 / 1_000_000.0)
    }
}

/// The text types offered and looked for, best first (as the agent does).
pub const TEXT_MIMES: [&str; 5] = [
    "text/plain;charset=utf-8",
    "text/plain",
    "UTF8_STRING",
    "TEXT",
    "STRING",
];

/// The type to read from a selection offering `mimes`: text first, else PNG.
pub fn choose_mime(mimes: &[String]) -> Option<String> {
    TEXT_MIMES
        .iter()
        .chain(std::iter::once(&"image/png"))
        .find(|m| mimes.iter().any(|x| x == *m))
        .map(|m| m.to_string())
}

/// One line for `corral msg clipboard` (no `--json`).
pub fn describe(info: &ClipboardInfo) -> String {
    let mut s = match (&info.source, &info.kind, info.size, info.age_ms) {
        (Some(src), Some(kind), Some(size), Some(age)) => format!(
            "{} of {kind} from {src}, copied {:.1} s ago",
            format_size(size),
            age as f64 / 1000.0
        ),
        _ => "empty".to_string(),
    };
    if let Some(p) = &info.pending_from {
        s.push_str(&format!(" (waiting for a copy from {p})"));
    }
    s
}

fn kind_words(p: &ClipboardPayload) -> &'static str {
    match p {
        ClipboardPayload::Text(_) => "text",
        ClipboardPayload::Png(_) => "PNG image",
    }
}

impl State {
    /// The party the focused window belongs to.
    fn focused_party(&self) -> Option<Party> {
        let win = self.layout.focus()?;
        if self.local_windows.contains_key(&win) {
            return Some(Party {
                conn: None,
                name: crate::local::GUI_DOMAIN_NAME.to_string(),
                colour: State::gui_domain_colour(),
            });
        }
        let (conn, _) = self.qubes.window(win)?;
        Some(Party {
            conn: Some(conn.id),
            name: conn.identity.name.to_string(),
            colour: conn.identity.colour(),
        })
    }

    /// Ctrl+Shift+C.
    pub fn clipboard_copy(&mut self) {
        let black = State::gui_domain_colour();
        let Some(party) = self.focused_party() else {
            self.notify(
                black,
                "Nothing copied".into(),
                "no window is focused: focus the window to copy from, then Ctrl+Shift+C".into(),
            );
            return;
        };
        let Some(conn) = party.conn else {
            self.copy_from_local(party);
            return;
        };
        let serial = self.clipboard.begin_copy(party, Instant::now());
        tracing::info!("clipboard: copy request {} to channel {conn}", serial.0);
        self.send_to(conn, &GuiMessage::ClipboardRequest { serial });
    }

    /// A `clipboard_data` / `clipboard_empty` from a qube.
    pub(crate) fn clipboard_reply(
        &mut self,
        conn: ConnId,
        serial: Serial,
        payload: Option<ClipboardPayload>,
    ) {
        let now = Instant::now();
        let described = payload
            .as_ref()
            .map(|p| (format_size(p.len()), kind_words(p)));
        let qube = self
            .qubes
            .conns
            .get(&conn)
            .map(|c| (c.identity.name.to_string(), c.identity.colour()));
        let Some((name, colour)) = qube else {
            return;
        };
        let outcome = self.clipboard.reply(Some(conn), serial, payload, now);
        tracing::info!("clipboard: reply {} from {name}: {outcome:?}", serial.0);
        self.report_copy(outcome, &name, colour, described);
    }

    /// Tells the user what became of a copy.
    fn report_copy(
        &mut self,
        outcome: ReplyOutcome,
        name: &str,
        colour: Rgb,
        described: Option<(String, &'static str)>,
    ) {
        match outcome {
            ReplyOutcome::Dropped(_) => {}
            ReplyOutcome::Late => self.notify(
                colour,
                format!("Copy from {name} timed out"),
                "its answer came too late and was dropped".into(),
            ),
            ReplyOutcome::Stored => {
                let (size, kind) = described.unwrap_or_default();
                self.notify(
                    colour,
                    format!("Copied {size} from {name}"),
                    format!("{kind} in the global clipboard: Ctrl+Shift+V pastes it once"),
                );
            }
            ReplyOutcome::Empty => self.notify(
                colour,
                format!("Nothing copied from {name}"),
                "its clipboard is empty; the global clipboard is now empty too".into(),
            ),
            ReplyOutcome::TooLarge { size, cap } => {
                let (_, kind) = described.unwrap_or_default();
                self.notify(
                    colour,
                    format!("Copy from {name} refused: too large"),
                    format!(
                        "{} of {kind} is over the {} limit; nothing was kept",
                        format_size(size),
                        format_size(cap)
                    ),
                );
            }
            ReplyOutcome::Malformed(why) => self.notify(
                colour,
                format!("Copy from {name} refused: malformed"),
                format!("{why}; nothing was kept"),
            ),
        }
    }

    /// Ctrl+Shift+C on a GUI-domain window: reads the selection a GUI-domain app set (through
    /// Smithay's data device) into the global clipboard, as `@adminvm`.
    fn copy_from_local(&mut self, party: Party) {
        let now = Instant::now();
        if let Some(token) = self.clipboard.local_read.take() {
            self.handle.remove(token);
        }
        let serial = self.clipboard.begin_copy(party.clone(), now);
        let Some(mime) = choose_mime(&self.clipboard.local_client_mimes) else {
            self.local_copy_done(serial, None);
            return;
        };
        let png = mime == "image/png";
        let pipe = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC);
        let Ok((read, write)) = pipe else {
            self.local_copy_done(serial, None);
            return;
        };
        let _ = rustix::fs::fcntl_setfl(&read, rustix::fs::OFlags::NONBLOCK);
        if request_data_device_client_selection::<State>(&self.seat, mime, write).is_err() {
            self.local_copy_done(serial, None);
            return;
        }
        // One byte more than the largest cap: enough to know it is too large.
        let limit = self
            .clipboard
            .config
            .text_max
            .max(self.clipboard.config.png_max)
            .min(MAX_CLIPBOARD_BYTES)
            + 1;
        let mut data = Vec::new();
        let source = Generic::new(read, Interest::READ, Mode::Level);
        let token = self
            .handle
            .insert_source(source, move |_, fd, state: &mut State| {
                let mut chunk = [0u8; 65536];
                loop {
                    match rustix::io::read(&**fd, &mut chunk) {
                        Ok(0) => break,
                        Ok(n) => {
                            data.extend_from_slice(&chunk[..n]);
                            if data.len() >= limit {
                                data.truncate(limit);
                                break;
                            }
                        }
                        Err(rustix::io::Errno::AGAIN) => return Ok(PostAction::Continue),
                        Err(rustix::io::Errno::INTR) => continue,
                        Err(_) => {
                            state.clipboard.local_read = None;
                            state.local_copy_done(serial, None);
                            return Ok(PostAction::Remove);
                        }
                    }
                }
                let bytes = std::mem::take(&mut data);
                let payload = if bytes.is_empty() {
                    None
                } else if png {
                    Some(ClipboardPayload::Png(bytes))
                } else {
                    // As the agent does: invalid UTF-8 becomes U+FFFD, NULs are dropped.
                    Some(ClipboardPayload::text(&String::from_utf8_lossy(&bytes)))
                };
                state.clipboard.local_read = None;
                state.local_copy_done(serial, payload);
                Ok(PostAction::Remove)
            });
        match token {
            Ok(t) => self.clipboard.local_read = Some(t),
            Err(_) => self.local_copy_done(serial, None),
        }
    }

    /// The end of a read of a GUI-domain app's selection: handled like a qube's reply.
    fn local_copy_done(&mut self, serial: Serial, payload: Option<ClipboardPayload>) {
        let described = payload
            .as_ref()
            .map(|p| (format_size(p.len()), kind_words(p)));
        let name = crate::local::GUI_DOMAIN_NAME;
        let colour = State::gui_domain_colour();
        let outcome = self.clipboard.reply(None, serial, payload, Instant::now());
        tracing::info!("clipboard: GUI-domain selection read: {outcome:?}");
        self.report_copy(outcome, name, colour, described);
    }

    /// Offers the payload as the selection of the GUI domain's apps (server-side data source).
    fn offer_to_local(&mut self, payload: ClipboardPayload) {
        let mimes: Vec<String> = match payload {
            ClipboardPayload::Text(_) => TEXT_MIMES.iter().map(|m| m.to_string()).collect(),
            ClipboardPayload::Png(_) => vec!["image/png".to_string()],
        };
        self.clipboard.local_offer = Some(payload);
        let dh = self.wayland.display_handle.clone();
        set_data_device_selection(&dh, &self.seat, mimes, ());
    }

    /// A GUI-domain app reads what a paste offered it.
    pub(crate) fn send_local_offer(&mut self, mime: &str, fd: std::os::fd::OwnedFd) {
        let bytes = match &self.clipboard.local_offer {
            Some(ClipboardPayload::Text(t)) if TEXT_MIMES.contains(&mime) => t.as_bytes().to_vec(),
            Some(ClipboardPayload::Png(p)) if mime == "image/png" => p.clone(),
            _ => return,
        };
        // GUI-domain apps are trusted; a thread keeps a slow reader off the event loop.
        let _ = std::thread::Builder::new()
            .name("clipboard-offer".into())
            .spawn(move || {
                use std::io::Write;
                let mut f = std::fs::File::from(fd);
                let _ = f.write_all(&bytes);
            });
    }

    /// Ctrl+Shift+V.
    pub fn clipboard_paste(&mut self) {
        let black = State::gui_domain_colour();
        let Some(target) = self.focused_party() else {
            self.notify(
                black,
                "Nothing pasted".into(),
                "no window is focused".into(),
            );
            return;
        };
        let Some(stored) = self.clipboard.stored() else {
            self.notify(
                target.colour,
                "Nothing to paste".into(),
                "the global clipboard is empty: Ctrl+Shift+C in a qube's window first".into(),
            );
            return;
        };
        let source = stored.source.clone();
        // By name: a qube that reconnected is still the same qube.
        if source.name == target.name {
            self.notify(
                target.colour,
                format!("Not pasted back into {}", target.name),
                format!(
                    "the data came from {} itself; paste it there with its own Ctrl+V",
                    source.name
                ),
            );
            return;
        }
        let policy = Policy::load_dir(&self.clipboard.config.policy_dir);
        let (src, dst) = (source.facts(), target.facts());
        let decision = policy.evaluate(&PolicyRequest {
            service: PASTE_SERVICE,
            argument: "",
            source: &src,
            target: Target::Qube(&dst),
        });
        if !decision.permits(self.clipboard.config.ask_is_allow) {
            let origin = match (&decision.error, &decision.line) {
                (_, Some(at)) => at.to_string(),
                (Some(e), None) => e.file.display().to_string(),
                (None, None) => "no rule matched".into(),
            };
            let detail = match &decision.error {
                Some(e) => format!("the policy is invalid, so every paste is denied: {e}"),
                None if decision.line.is_none() => {
                    format!("no {PASTE_SERVICE} rule matched (the default is deny)")
                }
                None => format!("{PASTE_SERVICE}: {}", decision.action),
            };
            tracing::info!(
                "clipboard: paste {} -> {} denied ({origin})",
                source.name,
                target.name
            );
            self.notify(
                target.colour,
                format!(
                    "Paste from {} to {} denied by policy ({origin})",
                    source.name, target.name
                ),
                detail,
            );
            return;
        }
        let Some(stored) = self.clipboard.stored() else {
            return;
        };
        let payload = stored.payload.clone();
        let what = format!("{} of {}", format_size(payload.len()), kind_words(&payload));
        match target.conn {
            Some(conn) => self.send_to(conn, &GuiMessage::ClipboardPaste { payload }),
            None => self.offer_to_local(payload),
        }
        let wiped = !self.clipboard.config.keep_after_paste && self.clipboard.wipe();
        let at = decision.line.map(|l| l.to_string()).unwrap_or_default();
        tracing::info!(
            "clipboard: pasted {what} {} -> {} ({at})",
            source.name,
            target.name
        );
        self.notify(
            target.colour,
            format!("Pasted into {}", target.name),
            if wiped {
                format!("{what} from {}. Clipboard wiped", source.name)
            } else {
                format!("{what} from {}; kept for another paste", source.name)
            },
        );
    }

    /// Timeouts of a copy request and the timed wipe (from the loop's tick).
    pub fn clipboard_tick(&mut self) {
        let now = Instant::now();
        if let Some(party) = self.clipboard.expire_request(now) {
            if let Some(token) = self.clipboard.local_read.take() {
                self.handle.remove(token);
            }
            self.notify(
                party.colour,
                format!("Copy from {} timed out", party.name),
                "the qube did not answer; the global clipboard is unchanged".into(),
            );
        }
        if self.clipboard.expire_buffer(now) {
            self.notify(
                State::gui_domain_colour(),
                "Clipboard wiped".into(),
                "the global clipboard is emptied after the configured time".into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(conn: ConnId, name: &str) -> Party {
        Party {
            conn: Some(conn),
            name: name.into(),
            colour: Rgb::new(0, 0, 0),
        }
    }

    fn png(w: u32, h: u32, extra: usize) -> Vec<u8> {
        let mut p = PNG_SIGNATURE.to_vec();
        p.extend_from_slice(&[0, 0, 0, 13]);
        p.extend_from_slice(b"IHDR");
        p.extend_from_slice(&w.to_be_bytes());
        p.extend_from_slice(&h.to_be_bytes());
        p.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        p.resize(p.len() + extra, 0);
        p
    }

    #[test]
    fn only_the_newest_request_from_its_qube_is_accepted() {
        let mut c = GlobalClipboard::new(ClipboardConfig::default());
        let t = Instant::now();
        let text = |s: &str| Some(ClipboardPayload::text(s));
        assert!(matches!(
            c.reply(Some(1), Serial(1), text("unasked"), t),
            ReplyOutcome::Dropped(_)
        ));
        let old = c.begin_copy(party(1, "a"), t);
        let new = c.begin_copy(party(2, "b"), t);
        assert_ne!(old, new);
        // The late answer to the older request (QSB-13).
        assert!(matches!(
            c.reply(Some(1), old, text("late"), t),
            ReplyOutcome::Dropped(_)
        ));
        // The right serial from the wrong qube.
        assert!(matches!(
            c.reply(Some(1), new, text("spoof"), t),
            ReplyOutcome::Dropped(_)
        ));
        assert_eq!(c.reply(Some(2), new, text("good"), t), ReplyOutcome::Stored);
        // A second answer to the same request.
        assert!(matches!(
            c.reply(Some(2), new, text("again"), t),
            ReplyOutcome::Dropped(_)
        ));
        let s = c.stored().unwrap();
        assert_eq!(s.payload, ClipboardPayload::text("good"));
        assert_eq!(s.source.name, "b");
    }

    #[test]
    fn a_reply_after_the_timeout_is_dropped() {
        let mut c = GlobalClipboard::new(ClipboardConfig::default());
        let t = Instant::now();
        let s = c.begin_copy(party(1, "a"), t);
        let late = t + DEFAULT_COPY_TIMEOUT + Duration::from_millis(5);
        assert_eq!(
            c.reply(Some(1), s, Some(ClipboardPayload::text("x")), late),
            ReplyOutcome::Late
        );
        assert!(c.stored().is_none());
        let s = c.begin_copy(party(1, "a"), t);
        assert!(c.expire_request(t).is_none());
        assert_eq!(c.expire_request(late).map(|p| p.name), Some("a".into()));
        assert!(matches!(
            c.reply(Some(1), s, Some(ClipboardPayload::text("x")), late),
            ReplyOutcome::Dropped(_)
        ));
    }

    #[test]
    fn oversized_and_malformed_replies_are_refused_whole_and_wipe() {
        let mut c = GlobalClipboard::new(ClipboardConfig::default());
        let t = Instant::now();
        let s = c.begin_copy(party(1, "a"), t);
        assert_eq!(
            c.reply(Some(1), s, Some(ClipboardPayload::text("keep")), t),
            ReplyOutcome::Stored
        );
        let s = c.begin_copy(party(1, "a"), t);
        let big = "x".repeat(DEFAULT_CLIPBOARD_TEXT_BYTES + 1);
        assert_eq!(
            c.reply(Some(1), s, Some(ClipboardPayload::text(&big)), t),
            ReplyOutcome::TooLarge {
                size: DEFAULT_CLIPBOARD_TEXT_BYTES + 1,
                cap: DEFAULT_CLIPBOARD_TEXT_BYTES
            }
        );
        assert!(
            c.stored().is_none(),
            "an old buffer must not survive a refused copy"
        );
        // Exactly the cap is fine.
        let s = c.begin_copy(party(1, "a"), t);
        let max = "y".repeat(DEFAULT_CLIPBOARD_TEXT_BYTES);
        assert_eq!(
            c.reply(Some(1), s, Some(ClipboardPayload::text(&max)), t),
            ReplyOutcome::Stored
        );
        // PNG has its own, larger cap.
        let s = c.begin_copy(party(1, "a"), t);
        assert_eq!(
            c.reply(
                Some(1),
                s,
                Some(ClipboardPayload::Png(png(10, 10, 100_000))),
                t
            ),
            ReplyOutcome::Stored
        );
        let s = c.begin_copy(party(1, "a"), t);
        let bad = [&PNG_SIGNATURE[..], b"junkjunkjunkjunkjunkjunkjunkjunk"].concat();
        assert!(matches!(
            c.reply(Some(1), s, Some(ClipboardPayload::Png(bad)), t),
            ReplyOutcome::Malformed(_)
        ));
        assert!(c.stored().is_none());
        let s = c.begin_copy(party(1, "a"), t);
        assert!(matches!(
            c.reply(Some(1), s, Some(ClipboardPayload::Png(png(0, 10, 0))), t),
            ReplyOutcome::Malformed(_)
        ));
        let s = c.begin_copy(party(1, "a"), t);
        assert_eq!(c.reply(Some(1), s, None, t), ReplyOutcome::Empty);
    }

    #[test]
    fn timed_wipe_and_info_never_show_content() {
        let cfg = ClipboardConfig {
            wipe_after: Some(Duration::from_secs(10)),
            ..ClipboardConfig::default()
        };
        let mut c = GlobalClipboard::new(cfg);
        let t = Instant::now();
        let s = c.begin_copy(party(1, "work"), t);
        c.reply(Some(1), s, Some(ClipboardPayload::text("s3cret")), t);
        let info = c.info(t + Duration::from_secs(2));
        assert_eq!(info.source.as_deref(), Some("work"));
        assert_eq!(info.kind.as_deref(), Some("text"));
        assert_eq!(info.size, Some(6));
        assert_eq!(info.age_ms, Some(2000));
        assert!(!serde_json::to_string(&info).unwrap().contains("s3cret"));
        assert!(!c.expire_buffer(t + Duration::from_secs(9)));
        assert!(c.expire_buffer(t + Duration::from_secs(10)));
        assert!(c.info(t).empty);
    }

    #[test]
    fn sizes_read_like_the_toasts() {
        assert_eq!(format_size(1), "1 byte");
        assert_eq!(format_size(999), "999 bytes");
        assert_eq!(format_size(1234), "1.2 KB");
        assert_eq!(format_size(3_400_000), "3.4 MB");
    }
}
