//! The IPC socket on the event loop, and what each request does.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, LoopHandle, Mode, PostAction};

use super::{
    KeyAction, NotificationInfo, OutputDesc, QubeInfo, RectInfo, Reply, Request, WindowInfo,
};
use crate::input::{BTN_LEFT, parse_combo};
use crate::local::{self, GUI_DOMAIN_NAME, LocalWindow, local_app_id, local_title};
use crate::render::title_text;
use crate::state::State;
use corral_protocol::SanitizedText;
use corral_protocol::limits::MAX_TITLE_BYTES;

/// Largest request accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// Binds the socket (refusing to steal a live one) and serves it on the event loop.
pub fn listen(handle: &LoopHandle<'static, State>, path: &Path) -> anyhow::Result<PathBuf> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another corral is serving {}; give this one its own socket with --ipc-socket PATH",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making {} private", path.display()))?;
    listener.set_nonblocking(true)?;
    handle
        .insert_source(
            Generic::new(listener, Interest::READ, Mode::Level),
            |_, listener, state: &mut State| {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => state.ipc_client(stream),
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!("IPC accept failed: {e}");
                            break;
                        }
                    }
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| anyhow::anyhow!("registering the IPC socket: {e}"))?;
    Ok(path.to_owned())
}

impl State {
    fn ipc_client(&mut self, stream: UnixStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let mut buffer = Vec::new();
        let result = self.handle.insert_source(
            Generic::new(stream, Interest::READ, Mode::Level),
            move |_, stream, state: &mut State| {
                let mut chunk = [0u8; 4096];
                loop {
                    match (&**stream).read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => {
                            buffer.extend_from_slice(&chunk[..n]);
                            if buffer.len() > MAX_REQUEST {
                                reply(stream, &error_reply("request too large".into()));
                                return Ok(PostAction::Remove);
                            }
                            if buffer.contains(&b'\n') {
                                break;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            return Ok(PostAction::Continue);
                        }
                        Err(_) => return Ok(PostAction::Remove),
                    }
                }
                let line = buffer.split(|b| *b == b'\n').next().unwrap_or(&[]);
                let answer = match serde_json::from_slice::<Request>(line) {
                    // The domain manager reads template files and starts qubes: never on the
                    // event loop.
                    Ok(request @ (Request::Apps { .. } | Request::Launch { .. }))
                        if state.domain_manager.is_some() =>
                    {
                        match (state.domain_manager.clone(), (**stream).try_clone()) {
                            (Some(manager), Ok(copy)) => {
                                crate::domains::answer_in_background(manager, request, copy);
                            }
                            (_, Err(e)) => reply(stream, &error_reply(format!("IPC: {e}"))),
                            (None, _) => {}
                        }
                        return Ok(PostAction::Remove);
                    }
                    Ok(request) => match state.ipc_request(request) {
                        Ok(value) => Reply {
                            ok: true,
                            result: Some(value),
                            error: None,
                        },
                        Err(e) => error_reply(e),
                    },
                    Err(e) => error_reply(format!("not a request this corral understands: {e}")),
                };
                reply(stream, &answer);
                Ok(PostAction::Remove)
            },
        );
        if let Err(e) = result {
            tracing::warn!("IPC client not registered: {e}");
        }
    }

    /// Carries out one request.
    pub fn ipc_request(&mut self, request: Request) -> Result<serde_json::Value, String> {
        let json = |v: serde_json::Result<serde_json::Value>| v.map_err(|e| e.to_string());
        match request {
            Request::Windows => json(serde_json::to_value(self.window_infos())),
            Request::Outputs => json(serde_json::to_value(
                self.layout
                    .outputs()
                    .iter()
                    .map(|o| OutputDesc {
                        name: o.name.clone(),
                        x: o.rect.x,
                        y: o.rect.y,
                        width: o.rect.w,
                        height: o.rect.h,
                    })
                    .collect::<Vec<_>>(),
            )),
            Request::Qubes => {
                let mut qubes: Vec<QubeInfo> = self
                    .qubes
                    .conns
                    .values()
                    .map(|c| QubeInfo {
                        name: c.identity.name.to_string(),
                        label: c.identity.label.name.to_string(),
                        colour: c.identity.colour().hex(),
                        channel: c.id,
                        agent_pid: c.agent.as_ref().map(|a| a.child.id()),
                        windows: c.windows.len(),
                        established: c.established,
                    })
                    .collect();
                qubes.sort_by_key(|q| q.channel);
                json(serde_json::to_value(qubes))
            }
            Request::Clipboard => json(serde_json::to_value(
                self.clipboard.info(std::time::Instant::now()),
            )),
            Request::ReloadConfig => match self.reload_config() {
                Ok(()) => Ok(serde_json::json!({ "config": self.settings.source.describe() })),
                Err(e) => Err(e.to_string()),
            },
            Request::Notifications => {
                // The same placement the renderer uses (backend::with_frame).
                let rects = self
                    .notifications
                    .rects(self.first_output().map(|o| self.layout.work_area(o)));
                json(serde_json::to_value(
                    self.notifications
                        .toasts()
                        .iter()
                        .enumerate()
                        .map(|(i, t)| {
                            let (source, qube, urgency) = match &t.source {
                                crate::notify::ToastSource::System => ("system", None, None),
                                crate::notify::ToastSource::Qube { name, urgency, .. } => (
                                    "qube",
                                    Some(name.clone()),
                                    Some(format!("{urgency:?}").to_lowercase()),
                                ),
                            };
                            NotificationInfo {
                                headline: t.headline.clone(),
                                detail: t.detail.clone(),
                                colour: t.colour.hex(),
                                source: source.to_owned(),
                                qube,
                                urgency,
                                rect: rects.get(i).map(|r| RectInfo {
                                    x: r.x,
                                    y: r.y,
                                    width: r.w,
                                    height: r.h,
                                }),
                            }
                        })
                        .collect::<Vec<_>>(),
                ))
            }
            Request::Screenshot { path } => {
                if !path.is_absolute() {
                    return Err(format!("{} is not an absolute path", path.display()));
                }
                let shot = self.screenshot().map_err(|e| format!("{e:#}"))?;
                let png = shot.encode_png().map_err(|e| format!("{e:#}"))?;
                std::fs::write(&path, png)
                    .map_err(|e| format!("writing {}: {e}", path.display()))?;
                Ok(serde_json::json!({
                    "path": path,
                    "width": shot.width,
                    "height": shot.height,
                }))
            }
            Request::Focus { id } => {
                if self.lock.is_locked() {
                    return Err("the session is locked".into());
                }
                if !self.layout.is_toplevel(id) && self.layout.popup(id).is_none() {
                    return Err(format!("there is no window {id}"));
                }
                if self.user_focus(id) {
                    Ok(serde_json::json!({ "focused": id }))
                } else {
                    Err(format!(
                        "window {id} is not mapped yet and cannot take focus"
                    ))
                }
            }
            Request::Close { id } => {
                if self.qubes.window(id).is_none() && !self.local_windows.contains_key(&id) {
                    return Err(format!("there is no window {id}"));
                }
                self.request_close(id);
                Ok(serde_json::json!({ "close_requested": id }))
            }
            Request::Key { combo, action } => {
                self.check_injection()?;
                let codes = parse_combo(&combo)?;
                // When the key entered the compositor, on the clock every process shares:
                // `cargo xtask bench` compares it with the time the client received it.
                let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
                let injected_ns = now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64;
                if action != KeyAction::Release {
                    for &code in &codes {
                        let t = self.now_ms();
                        self.handle_key(code, true, t);
                    }
                }
                if action != KeyAction::Press {
                    for &code in codes.iter().rev() {
                        let t = self.now_ms();
                        self.handle_key(code, false, t);
                    }
                }
                Ok(serde_json::json!({ "keys": codes, "injected_ns": injected_ns }))
            }
            Request::Pointer { x, y, click } => {
                self.check_injection()?;
                if !x.is_finite() || !y.is_finite() {
                    return Err("the position must be finite".into());
                }
                let t = self.now_ms();
                self.pointer_motion(x, y, t);
                if let Some(button) = click {
                    let button = if button == 0 { BTN_LEFT } else { button };
                    self.pointer_button(button, true, t);
                    self.pointer_button(button, false, t);
                }
                let (px, py) = self.input.pointer;
                Ok(serde_json::json!({ "x": px, "y": py }))
            }
            Request::Launcher { action } => {
                match action {
                    super::LauncherAction::State => {}
                    super::LauncherAction::Open if !self.launcher.is_open() => {
                        self.open_launcher();
                    }
                    super::LauncherAction::Open => {}
                    super::LauncherAction::Close => self.close_launcher(),
                }
                let rows: Vec<String> = self
                    .launcher
                    .shown()
                    .map(|e| format!("[{}] {}", e.qube, e.text))
                    .collect();
                Ok(serde_json::json!({
                    "open": self.launcher.is_open(),
                    "query": self.launcher.query(),
                    "rows": rows,
                    "selected": self.launcher.selected().map(|e| format!("[{}] {}", e.qube, e.text)),
                }))
            }
            Request::Apps { .. } | Request::Launch { .. } => Err(
                "this corral runs without a domain manager (--no-domains): no qubes to list or launch"
                    .into(),
            ),
            Request::Workspace { n } => {
                if n == 0 || n > self.layout.config.workspaces {
                    return Err(format!(
                        "workspaces are numbered 1 to {}",
                        self.layout.config.workspaces
                    ));
                }
                self.layout.switch_workspace(n);
                self.sync_focus();
                self.queue_redraw();
                Ok(serde_json::json!({ "workspace": n }))
            }
            Request::Lock => {
                self.lock(crate::lock::LockReason::Ipc);
                json(serde_json::to_value(self.lock.info()))
            }
            Request::LockState => json(serde_json::to_value(self.lock.info())),
            Request::AddOutput { width, height } => {
                let outputs = self.settings.loaded.config.outputs.clone();
                let crate::backend::Backend::Headless(headless) = &mut self.backend else {
                    return Err(format!(
                        "outputs can be added on the headless backend only, not {}",
                        self.backend.name()
                    ));
                };
                let name = headless
                    .add_output(width, height, &outputs)
                    .map_err(|e| format!("{e:#}"))?;
                let areas = self.backend.output_areas();
                self.set_outputs(areas);
                Ok(serde_json::json!({ "added": name }))
            }
        }
    }

    fn check_injection(&self) -> Result<(), String> {
        if self.config.allow_input_injection {
            Ok(())
        } else {
            Err(format!(
                "input injection is off on the {} backend; start corral with --allow-input-injection to allow it",
                self.backend.name()
            ))
        }
    }

    /// What `windows --json` reports.
    pub fn window_infos(&self) -> Vec<WindowInfo> {
        let mut ids: Vec<u64> = self
            .qubes
            .windows
            .keys()
            .chain(self.local_windows.keys())
            .copied()
            .collect();
        ids.sort_unstable();
        ids.into_iter()
            .filter_map(|win| {
                if let Some(local) = self.local_windows.get(&win) {
                    return self.local_window_info(win, local);
                }
                let (conn, window) = self.qubes.window(win)?;
                let owner = WindowOwner {
                    qube: conn.identity.name.to_string(),
                    label: conn.identity.label.name.to_string(),
                    colour: conn.identity.colour().hex(),
                    title: window.untrusted_title.to_string(),
                    display_title: title_text(
                        conn.identity.name.as_str(),
                        window.untrusted_title.as_str(),
                    ),
                    app_id: if window.untrusted_app_id.is_empty() {
                        String::new()
                    } else {
                        // Qualified by the qube, like Qubes' `vmname:class`.
                        format!("{}:{}", conn.identity.name, window.untrusted_app_id)
                    },
                    has_content: window.current.is_some(),
                };
                self.window_info(win, owner)
            })
            .collect()
    }
}

/// The part of a window's report that comes from whoever owns the window (a qube's channel or
/// the GUI domain); the rest comes from the layout, the same for every window.
struct WindowOwner {
    qube: String,
    label: String,
    colour: String,
    title: String,
    display_title: String,
    app_id: String,
    has_content: bool,
}

impl State {
    /// A GUI-domain window, reported as the qube `corral` with the black label.
    fn local_window_info(&self, win: u64, local: &LocalWindow) -> Option<WindowInfo> {
        let title = SanitizedText::sanitize(&local_title(&local.toplevel), MAX_TITLE_BYTES);
        let label = crate::labels::GUI_DOMAIN_LABEL;
        let owner = WindowOwner {
            qube: GUI_DOMAIN_NAME.into(),
            label: label.name.into(),
            colour: label.colour.hex(),
            title: title.to_string(),
            display_title: title_text(GUI_DOMAIN_NAME, title.as_str()),
            app_id: format!("{GUI_DOMAIN_NAME}:{}", local_app_id(&local.toplevel)),
            has_content: local::surface_size(local.toplevel.wl_surface()).is_some(),
        };
        self.window_info(win, owner)
    }

    /// A window's report: `owner` says whose it is, the layout says where and in what state.
    fn window_info(&self, win: u64, owner: WindowOwner) -> Option<WindowInfo> {
        let layout = &self.layout;
        let content = layout.content_rect(win)?;
        let (frame, kind, parent, toplevel, mapped) = match layout.toplevel(win) {
            Some(t) => (layout.frame_rect(win)?, "toplevel", None, t, t.mapped),
            None => {
                let p = layout.popup(win)?;
                (
                    content.expand(layout.config.popup_border),
                    "popup",
                    Some(p.parent),
                    layout.toplevel(p.toplevel)?,
                    p.mapped,
                )
            }
        };
        let output = layout.output_of(win);
        Some(WindowInfo {
            id: win,
            qube: owner.qube,
            label: owner.label,
            colour: owner.colour,
            title: owner.title,
            display_title: owner.display_title,
            app_id: owner.app_id,
            x: content.x,
            y: content.y,
            width: content.w,
            height: content.h,
            frame: RectInfo {
                x: frame.x,
                y: frame.y,
                width: frame.w,
                height: frame.h,
            },
            focused: layout.focus() == Some(win),
            output,
            output_name: output
                .and_then(|i| layout.outputs().get(i))
                .map(|o| o.name.clone()),
            workspace: toplevel.workspace,
            kind: kind.into(),
            parent,
            visible: layout.is_visible(win),
            mapped,
            minimized: toplevel.minimized,
            maximized: toplevel.maximized.is_some(),
            attention: toplevel.attention,
            has_content: owner.has_content,
        })
    }
}

pub(crate) fn error_reply(error: String) -> Reply {
    Reply {
        ok: false,
        result: None,
        error: Some(error),
    }
}

pub(crate) fn reply(stream: &UnixStream, answer: &Reply) {
    let mut bytes = serde_json::to_vec(answer).unwrap_or_else(|_| b"{\"ok\":false}".to_vec());
    bytes.push(b'\n');
    // Replies are small; a client that does not read within a second loses its answer.
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let mut stream = stream;
    let _ = stream.write_all(&bytes);
}
