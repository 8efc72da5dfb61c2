//! The qube's side of the global clipboard.
//!
//! - `ClipboardRequest{serial}`: read the qube's current selection from the app that owns it
//!   (text first, PNG second) through a non-blocking pipe on the event loop, bounded in size
//!   and time, and answer `ClipboardData` or `ClipboardEmpty` with the same serial. A newer
//!   request cancels an older read: only the latest serial counts in the GUI domain anyway.
//! - `ClipboardPaste{payload}`: the agent becomes the selection owner with that data, so apps
//!   paste it with their own Ctrl+V. Each app's read is served by a non-blocking writer.

use std::io::ErrorKind;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::calloop::{Interest, Mode, PostAction, RegistrationToken};
use smithay::wayland::selection::SelectionTarget;
use smithay::wayland::selection::data_device::{
    request_data_device_client_selection, set_data_device_selection,
};
use tracing::{debug, info, warn};

use corral_protocol::{AgentMessage, ClipboardPayload, PNG_SIGNATURE, Serial};

use crate::state::AgentState;

/// Text MIME types, most preferred first.
const TEXT_MIME_TYPES: [&str; 5] = [
    "text/plain;charset=utf-8",
    "text/plain",
    "UTF8_STRING",
    "TEXT",
    "STRING",
];
const PNG_MIME_TYPE: &str = "image/png";
/// How long an app may take to hand over its selection.
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an app may take to read pasted data before the agent gives up on it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK: usize = 64 * 1024;

/// Who owns the qube's selection when the agent set it.
#[derive(Debug, Clone)]
pub enum SelectionOrigin {
    /// Data the GUI domain pasted into this qube.
    Pasted(Arc<Vec<u8>>),
    /// An X11 app's selection, bridged by the X11 window manager.
    X11,
}

#[derive(Debug)]
struct ActiveRead {
    serial: Serial,
    png: bool,
    data: Vec<u8>,
    source: RegistrationToken,
    timer: Option<RegistrationToken>,
}

#[derive(Debug)]
pub struct Clipboard {
    max_bytes: usize,
    /// MIME types of the selection a client (or Xwayland) offers; `None` when there is none.
    offered: Option<Vec<String>>,
    /// The selection the agent owns after a paste.
    pasted: Option<ClipboardPayload>,
    read: Option<ActiveRead>,
    /// Incremented per read so callbacks of a cancelled read stop.
    read_generation: u64,
}

impl Clipboard {
    pub fn new(max_bytes: usize) -> Self {
        Clipboard {
            max_bytes: max_bytes.min(corral_protocol::limits::MAX_CLIPBOARD_BYTES),
            offered: None,
            pasted: None,
            read: None,
            read_generation: 0,
        }
    }

    /// A client (or Xwayland) set or cleared the selection.
    pub fn selection_offered(&mut self, mime_types: Option<Vec<String>>) {
        self.offered = mime_types;
        self.pasted = None;
    }

    /// Drops a read in progress (its pipe closes, the app sees EPIPE). Its sources notice
    /// the generation change and remove themselves.
    pub fn cancel_reads(&mut self) {
        self.read_generation += 1;
        self.read = None;
    }
}

/// Picks the MIME type to read: text first, then PNG.
fn choose_mime_type(offered: &[String]) -> Option<(String, bool)> {
    TEXT_MIME_TYPES
        .iter()
        .find(|wanted| offered.iter().any(|m| m == *wanted))
        .map(|m| (m.to_string(), false))
        .or_else(|| {
            offered
                .iter()
                .any(|m| m == PNG_MIME_TYPE)
                .then(|| (PNG_MIME_TYPE.to_string(), true))
        })
}

/// Builds the payload from what an app wrote, if it is acceptable.
fn payload_from(untrusted_data: Vec<u8>, png: bool) -> Option<ClipboardPayload> {
    if untrusted_data.is_empty() {
        return None;
    }
    if png {
        return untrusted_data
            .starts_with(&PNG_SIGNATURE)
            .then_some(ClipboardPayload::Png(untrusted_data));
    }
    let text = match String::from_utf8(untrusted_data) {
        Ok(text) => text,
        // Legacy X11 STRING data is Latin-1; anything invalid becomes U+FFFD, never an error.
        Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
    };
    Some(ClipboardPayload::text(&text))
}

impl AgentState {
    pub fn clipboard_request(&mut self, serial: Serial) {
        self.cancel_clipboard_read();
        if let Some(payload) = self.clipboard.pasted.clone() {
            // The qube's selection is what the GUI domain pasted here.
            self.link
                .send(&AgentMessage::ClipboardData { serial, payload });
            return;
        }
        let Some((mime_type, png)) = self.clipboard.offered.as_deref().and_then(choose_mime_type)
        else {
            self.link.send(&AgentMessage::ClipboardEmpty { serial });
            return;
        };
        if let Err(err) = self.start_clipboard_read(serial, mime_type, png) {
            warn!(%err, "could not read the qube's selection");
            self.link.send(&AgentMessage::ClipboardEmpty { serial });
        }
    }

    fn start_clipboard_read(
        &mut self,
        serial: Serial,
        mime_type: String,
        png: bool,
    ) -> std::io::Result<()> {
        let (read_end, write_end) = rustix::pipe::pipe_with(
            rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
        )?;
        // The app writes to its end however it likes; only our end must never block.
        rustix::io::ioctl_fionbio(&write_end, false)?;
        let origin_is_x11 = matches!(
            smithay::wayland::selection::data_device::current_data_device_selection_userdata(
                &self.seat
            )
            .as_deref(),
            Some(SelectionOrigin::X11)
        );
        if origin_is_x11 {
            let handle = self.loop_handle.clone();
            let xwm = self
                .xwm
                .as_mut()
                .ok_or_else(|| std::io::Error::other("Xwayland is gone"))?;
            xwm.send_selection(
                SelectionTarget::Clipboard,
                mime_type.clone(),
                write_end,
                handle,
            )
            .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        } else {
            request_data_device_client_selection(&self.seat, mime_type.clone(), write_end)
                .map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        }
        debug!(%mime_type, serial = serial.0, "reading the qube's selection");

        self.clipboard.read_generation += 1;
        let generation = self.clipboard.read_generation;
        let source = self
            .loop_handle
            .insert_source(
                Generic::new(read_end, Interest::READ, Mode::Level),
                move |_, fd, state: &mut AgentState| {
                    if state.clipboard.read_generation != generation {
                        return Ok(PostAction::Remove);
                    }
                    Ok(state.clipboard_readable(fd.as_fd()))
                },
            )
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let timer = self
            .loop_handle
            .insert_source(
                Timer::from_duration(READ_TIMEOUT),
                move |_, _, state: &mut AgentState| {
                    if state.clipboard.read_generation == generation {
                        info!("the app owning the selection did not answer in time");
                        state.finish_clipboard_read(None);
                    }
                    TimeoutAction::Drop
                },
            )
            .ok();
        self.clipboard.read = Some(ActiveRead {
            serial,
            png,
            data: Vec::new(),
            source,
            timer,
        });
        Ok(())
    }

    /// Reads what is there; ends the read at end of file, on error or when it is too big.
    fn clipboard_readable(&mut self, fd: BorrowedFd<'_>) -> PostAction {
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let Some(read) = self.clipboard.read.as_mut() else {
                return PostAction::Remove;
            };
            match rustix::io::read(fd, &mut chunk).map_err(std::io::Error::from) {
                Ok(0) => {
                    let data = std::mem::take(&mut read.data);
                    let png = read.png;
                    self.finish_clipboard_read(payload_from(data, png));
                    return PostAction::Remove;
                }
                Ok(n) => {
                    if read.data.len() + n > self.clipboard.max_bytes {
                        info!(
                            limit = self.clipboard.max_bytes,
                            "the qube's selection is larger than allowed; not sent"
                        );
                        self.finish_clipboard_read(None);
                        return PostAction::Remove;
                    }
                    read.data.extend_from_slice(&chunk[..n]);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return PostAction::Continue,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => {
                    warn!(%err, "reading the selection failed");
                    self.finish_clipboard_read(None);
                    return PostAction::Remove;
                }
            }
        }
    }

    fn finish_clipboard_read(&mut self, payload: Option<ClipboardPayload>) {
        let Some(read) = self.clipboard.read.take() else {
            return;
        };
        self.clipboard.read_generation += 1;
        if let Some(timer) = read.timer {
            self.loop_handle.remove(timer);
        }
        let _ = read.source;
        let message = match payload {
            Some(payload) => AgentMessage::ClipboardData {
                serial: read.serial,
                payload,
            },
            None => AgentMessage::ClipboardEmpty {
                serial: read.serial,
            },
        };
        self.link.send(&message);
    }

    fn cancel_clipboard_read(&mut self) {
        if let Some(read) = self.clipboard.read.take()
            && let Some(timer) = read.timer
        {
            self.loop_handle.remove(timer);
        }
        self.clipboard.read_generation += 1;
    }

    /// Makes pasted data the qube's selection.
    pub fn clipboard_paste(&mut self, payload: ClipboardPayload) {
        let (bytes, mime_types): (Vec<u8>, Vec<String>) = match &payload {
            ClipboardPayload::Text(text) => (
                text.as_bytes().to_vec(),
                TEXT_MIME_TYPES.iter().map(|m| m.to_string()).collect(),
            ),
            ClipboardPayload::Png(png) => (png.clone(), vec![PNG_MIME_TYPE.to_string()]),
        };
        info!(
            kind = payload.kind_name(),
            bytes = bytes.len(),
            "pasted data is now the qube's selection"
        );
        set_data_device_selection(
            &self.display_handle,
            &self.seat,
            mime_types.clone(),
            SelectionOrigin::Pasted(Arc::new(bytes)),
        );
        if let Some(xwm) = self.xwm.as_mut()
            && let Err(err) = xwm.new_selection(SelectionTarget::Clipboard, Some(mime_types))
        {
            warn!(?err, "could not offer the pasted data to X11 apps");
        }
        self.clipboard.offered = None;
        self.clipboard.pasted = Some(payload);
    }

    /// Writes pasted data to an app that asked for it, without blocking the loop.
    pub fn serve_pasted_data(&mut self, data: Arc<Vec<u8>>, fd: OwnedFd) {
        if let Err(err) = rustix::io::ioctl_fionbio(&fd, true) {
            warn!(%err, "could not make the paste pipe non-blocking");
            return;
        }
        let mut written = 0usize;
        let source = self.loop_handle.insert_source(
            Generic::new(fd, Interest::WRITE, Mode::Level),
            move |_, fd, _state: &mut AgentState| {
                while written < data.len() {
                    match rustix::io::write(fd.as_fd(), &data[written..])
                        .map_err(std::io::Error::from)
                    {
                        Ok(0) => return Ok(PostAction::Remove),
                        Ok(n) => written += n,
                        Err(err) if err.kind() == ErrorKind::WouldBlock => {
                            return Ok(PostAction::Continue);
                        }
                        Err(err) if err.kind() == ErrorKind::Interrupted => {}
                        // The reader went away (EPIPE): nothing more to do.
                        Err(_) => return Ok(PostAction::Remove),
                    }
                }
                Ok(PostAction::Remove)
            },
        );
        match source {
            Ok(token) => {
                let handle = self.loop_handle.clone();
                // A reader that never drains the pipe must not keep the descriptor forever.
                let _ = self.loop_handle.insert_source(
                    Timer::from_duration(WRITE_TIMEOUT),
                    move |_, _, _| {
                        handle.remove(token);
                        TimeoutAction::Drop
                    },
                );
            }
            Err(err) => warn!(%err, "could not serve pasted data"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_preferred_over_png_and_utf8_over_plain() {
        let offered = vec![
            "image/png".to_string(),
            "text/plain".to_string(),
            "text/plain;charset=utf-8".to_string(),
        ];
        assert_eq!(
            choose_mime_type(&offered),
            Some(("text/plain;charset=utf-8".to_string(), false))
        );
        assert_eq!(
            choose_mime_type(&["image/png".to_string()]),
            Some(("image/png".to_string(), true))
        );
        assert_eq!(choose_mime_type(&["application/x-foo".to_string()]), None);
    }

    #[test]
    fn payloads_are_checked() {
        assert_eq!(payload_from(Vec::new(), false), None);
        assert_eq!(
            payload_from(b"a\0b".to_vec(), false),
            Some(ClipboardPayload::Text("ab".into()))
        );
        assert_eq!(
            payload_from(vec![0xff, b'x'], false),
            Some(ClipboardPayload::Text("\u{fffd}x".into()))
        );
        assert_eq!(payload_from(b"not a png".to_vec(), true), None);
        let mut png = PNG_SIGNATURE.to_vec();
        png.push(1);
        assert_eq!(
            payload_from(png.clone(), true),
            Some(ClipboardPayload::Png(png))
        );
    }
}
