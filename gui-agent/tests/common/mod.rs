//! The test GUI endpoint: starts `corral-agent` with one end of a socketpair (or a listening
//! socket for `--connect`), plays the GUI domain with `corral-protocol`'s `GuiConnection`,
//! and records what the agent announced. Every test gets its own XDG_RUNTIME_DIR, bounded
//! waits, and a guard that kills the agent and every client it started.

#![allow(dead_code)]

pub mod client;

use std::collections::BTreeMap;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corral_protocol::channel::pool::copy_rect;
use corral_protocol::channel::stream::StreamTransport;
use corral_protocol::channel::unix::{UnixTransport, share_with_child, wait_readable};
use corral_protocol::channel::{ConnectionError, GuiConnection, StreamLimits};
use corral_protocol::session::{Applied, SessionLimits};
use corral_protocol::{
    AgentMessage, GuiMessage, OutputId, OutputInfo, Point, Rect, SanitizedText, Scale, Size,
    WindowId,
};

pub const TIMEOUT: Duration = Duration::from_secs(15);
pub const OUTPUT_SIZE: (u32, u32) = (1280, 800);

/// Between clearing close-on-exec on the agent's end and dropping it, no other test thread
/// may spawn, or its child would keep the channel open.
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// What the GUI side knows of one window.
#[derive(Debug, Clone, Default)]
pub struct SeenWindow {
    pub title: String,
    pub app_id: String,
    pub parent: Option<WindowId>,
    pub popup_position: Option<(i32, i32)>,
    pub popup_size: Option<(u32, u32)>,
    pub mapped: bool,
    pub commits: u32,
    pub destroyed: bool,
    pub min_size: Option<(u32, u32)>,
}

/// Either transport of the GUI side.
pub enum Gui {
    Unix(GuiConnection<UnixTransport>),
    Stream(GuiConnection<StreamTransport<UnixStream>>),
}

macro_rules! with_conn {
    ($gui:expr, $c:ident => $body:expr) => {
        match $gui {
            Gui::Unix($c) => $body,
            Gui::Stream($c) => $body,
        }
    };
}

pub struct Harness {
    pub agent: Child,
    pub gui: Option<Gui>,
    pub runtime_dir: tempfile::TempDir,
    pub socket_name: String,
    pub windows: BTreeMap<WindowId, SeenWindow>,
    pub messages: Vec<AgentMessage>,
    clients: Vec<Child>,
    listener: Option<UnixListener>,
    log_path: PathBuf,
}

impl Drop for Harness {
    fn drop(&mut self) {
        for child in &mut self.clients {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The agent runs in its own process group with every app it launched.
        if let Some(pgid) = rustix::process::Pid::from_raw(self.agent.id() as i32) {
            let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
        }
        let _ = self.agent.wait();
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(&self.log_path)
        {
            let tail: String = log
                .lines()
                .rev()
                .take(60)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            eprintln!("---- agent log (tail) ----\n{tail}");
        }
    }
}

/// Options for starting the agent.
#[derive(Default)]
pub struct Options {
    pub inline_pixels: bool,
    pub connect: bool,
    pub xwayland: bool,
    pub env: Vec<(String, String)>,
}

impl Harness {
    pub fn start() -> Self {
        Self::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Self {
        let runtime_dir = tempfile::Builder::new()
            .prefix("corral-agent-test")
            .tempdir()
            .unwrap();
        let socket_name = "wayland-test".to_string();
        let log_path = runtime_dir.path().join("agent.log");
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_corral-agent"));
        command
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .env("CORRAL_LOG", "debug")
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .args(["--socket-name", &socket_name])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        for (k, v) in &options.env {
            command.env(k, v);
        }
        if options.inline_pixels {
            command.arg("--inline-pixels");
        }
        if options.xwayland {
            command.arg("--xwayland");
        }
        let (agent, gui, listener) = if options.connect {
            let path = runtime_dir.path().join("gui.sock");
            let listener = UnixListener::bind(&path).unwrap();
            command.arg("--connect").arg(&path);
            let agent = {
                let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
                command.spawn().unwrap()
            };
            (agent, None, Some(listener))
        } else {
            let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
            let (gui_end, agent_end) = UnixStream::pair().unwrap();
            let fd = share_with_child(&agent_end).unwrap();
            command.args(["--gui-fd", &fd.to_string()]);
            let agent = command.spawn().unwrap();
            drop(agent_end);
            (
                agent,
                Some(Self::wrap(gui_end, options.inline_pixels)),
                None,
            )
        };
        let mut harness = Harness {
            agent,
            gui,
            runtime_dir,
            socket_name,
            windows: BTreeMap::new(),
            messages: Vec::new(),
            clients: Vec::new(),
            listener,
            log_path,
        };
        if harness.listener.is_some() {
            harness.accept(options.inline_pixels);
        }
        harness.handshake();
        harness
    }

    fn wrap(socket: UnixStream, inline: bool) -> Gui {
        if inline {
            socket.set_nonblocking(true).unwrap();
            Gui::Stream(GuiConnection::new(
                StreamTransport::new(socket),
                SessionLimits::default(),
                StreamLimits::default(),
            ))
        } else {
            Gui::Unix(GuiConnection::new(
                UnixTransport::new(socket).unwrap(),
                SessionLimits::default(),
                StreamLimits::default(),
            ))
        }
    }

    /// Accepts the agent's (re)connection on the listening socket.
    pub fn accept(&mut self, inline: bool) {
        let listener = self.listener.as_ref().expect("started with --connect");
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + TIMEOUT;
        let socket = loop {
            match listener.accept() {
                Ok((socket, _)) => break socket,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "the agent did not connect");
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("accept: {e}"),
            }
        };
        socket.set_nonblocking(false).unwrap();
        self.gui = Some(Self::wrap(socket, inline));
        self.windows.clear();
    }

    /// Drops the GUI end, as a compositor crash would.
    pub fn drop_gui(&mut self) {
        self.gui = None;
    }

    /// Waits for hello and answers with one 1280×800 output at scale 1.
    pub fn handshake(&mut self) {
        self.wait_for("hello", |m| matches!(m, AgentMessage::Hello { .. }));
    }

    pub fn send(&mut self, message: GuiMessage) {
        let gui = self.gui.as_mut().expect("connected");
        with_conn!(gui, c => { c.send(&message).unwrap(); c.flush().unwrap(); });
    }

    fn on_message(&mut self, message: &AgentMessage, applied: &Applied) {
        if let Applied::Established {
            version,
            capabilities,
        } = applied
        {
            let welcome = GuiMessage::Welcome {
                version: *version,
                capabilities: *capabilities,
                outputs: vec![OutputInfo {
                    id: OutputId::new(1).unwrap(),
                    position: Point::new(0, 0).unwrap(),
                    size: Size::new(OUTPUT_SIZE.0, OUTPUT_SIZE.1).unwrap(),
                    scale_120ths: Scale::ONE,
                    refresh_mhz: 60_000,
                    name: SanitizedText::sanitize("test-1", 64),
                }],
            };
            self.send(welcome);
        }
        use AgentMessage as M;
        match message {
            M::CreateToplevel { window } => {
                self.windows.insert(*window, SeenWindow::default());
            }
            M::CreatePopup {
                window,
                parent,
                position,
                size,
            } => {
                self.windows.insert(
                    *window,
                    SeenWindow {
                        parent: Some(*parent),
                        popup_position: Some((position.x(), position.y())),
                        popup_size: Some((size.width(), size.height())),
                        ..Default::default()
                    },
                );
            }
            M::RepositionPopup {
                window,
                position,
                size,
            } => {
                if let Some(w) = self.windows.get_mut(window) {
                    w.popup_position = Some((position.x(), position.y()));
                    w.popup_size = Some((size.width(), size.height()));
                }
            }
            M::SetTitle { window, title } => {
                if let Some(w) = self.windows.get_mut(window) {
                    w.title = title.to_string();
                }
            }
            M::SetAppId { window, app_id } => {
                if let Some(w) = self.windows.get_mut(window) {
                    w.app_id = app_id.to_string();
                }
            }
            M::SizeHints { window, min, .. } => {
                if let Some(w) = self.windows.get_mut(window) {
                    w.min_size = Some((min.width(), min.height()));
                }
            }
            M::Map { window } => {
                if let Some(w) = self.windows.get_mut(window) {
                    w.mapped = true;
                }
            }
            M::Unmap { window } => {
                if let Some(w) = self.windows.get_mut(window) {
                    w.mapped = false;
                }
            }
            M::Commit { window, .. } => {
                if let Some(w) = self.windows.get_mut(window) {
                    w.commits += 1;
                }
            }
            M::DestroyWindow { window } => {
                if let Some(w) = self.windows.get_mut(window) {
                    w.destroyed = true;
                }
            }
            _ => {}
        }
    }

    /// Receives until `want` matches a message (which is returned), or panics after the
    /// timeout. Every message is recorded.
    pub fn wait_for(
        &mut self,
        what: &str,
        mut want: impl FnMut(&AgentMessage) -> bool,
    ) -> AgentMessage {
        self.try_wait_for(TIMEOUT, &mut want)
            .unwrap_or_else(|| panic!("timed out waiting for {what}; windows: {:?}", self.windows))
    }

    /// Like `wait_for` with a custom timeout; `None` when nothing matched in time.
    pub fn try_wait_for(
        &mut self,
        timeout: Duration,
        want: &mut dyn FnMut(&AgentMessage) -> bool,
    ) -> Option<AgentMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            let gui = self.gui.as_mut().expect("connected");
            let received = with_conn!(gui, c => { c.flush().unwrap(); c.receive(Instant::now()) });
            match received {
                Ok(Some(received)) => {
                    self.on_message(&received.message, &received.applied);
                    self.messages.push(received.message.clone());
                    if want(&received.message) {
                        return Some(received.message);
                    }
                }
                Ok(None) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    let gui = self.gui.as_ref().expect("connected");
                    let fd =
                        with_conn!(gui, c => c.stream().poll_fd().try_clone_to_owned().unwrap());
                    let _ = wait_readable(
                        std::os::fd::AsFd::as_fd(&fd),
                        left.min(Duration::from_millis(50)),
                    );
                }
                Err(ConnectionError::Closed) => panic!("the agent closed the channel"),
                Err(e) => panic!("channel error: {e}"),
            }
        }
    }

    /// Receives everything that arrives within `duration`.
    pub fn pump(&mut self, duration: Duration) {
        let _ = self.try_wait_for(duration, &mut |_| false);
    }

    /// Waits for the first mapped toplevel with `title`.
    pub fn wait_for_window(&mut self, title: &str) -> WindowId {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some((id, _)) = self
                .windows
                .iter()
                .find(|(_, w)| w.title == title && w.mapped && !w.destroyed)
            {
                return *id;
            }
            assert!(
                Instant::now() < deadline,
                "no mapped window titled {title:?}; windows: {:?}",
                self.windows
            );
            self.pump(Duration::from_millis(50));
        }
    }

    /// Reads one pixel of a window's current buffer (ARGB as a u32).
    pub fn pixel(&self, window: WindowId, x: u32, y: u32) -> u32 {
        let gui = self.gui.as_ref().expect("connected");
        with_conn!(gui, c => {
            let (pool, layout) = c.session().attachment(window).expect("window has a buffer");
            let mut bytes = Vec::new();
            copy_rect(c.pool(pool).expect("pool mapped"), layout, Rect::new(x, y, 1, 1).unwrap(), &mut bytes);
            u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
        })
    }

    /// The size of a window's current buffer.
    pub fn buffer_size(&self, window: WindowId) -> (u32, u32) {
        let gui = self.gui.as_ref().expect("connected");
        with_conn!(gui, c => {
            let (_, layout) = c.session().attachment(window).expect("window has a buffer");
            (layout.size().width(), layout.size().height())
        })
    }

    /// Starts a Wayland client of the agent; it is killed when the harness is dropped.
    pub fn spawn_client(&mut self, program: &str, args: &[&str]) -> u32 {
        let child = self
            .client_command(program, args)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {program}: {e} (run scripts/install-deps.sh)"));
        let pid = child.id();
        self.clients.push(child);
        pid
    }

    /// A command with the agent's Wayland display and nothing else graphical.
    pub fn client_command(&self, program: &str, args: &[&str]) -> Command {
        let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
        let mut command = Command::new(program);
        command
            .args(args)
            .env("XDG_RUNTIME_DIR", self.runtime_dir.path())
            .env("WAYLAND_DISPLAY", &self.socket_name)
            .env("GDK_BACKEND", "wayland")
            .env("NO_AT_BRIDGE", "1")
            .env_remove("DISPLAY")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Kills one client started with `spawn_client`.
    pub fn kill_client(&mut self, pid: u32) {
        if let Some(child) = self.clients.iter_mut().find(|c| c.id() == pid) {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Whether a client started with `spawn_client` has exited.
    pub fn client_exited(&mut self, pid: u32) -> bool {
        self.clients
            .iter_mut()
            .find(|c| c.id() == pid)
            .is_some_and(|c| c.try_wait().unwrap().is_some())
    }

    pub fn runtime_dir(&self) -> &Path {
        self.runtime_dir.path()
    }

    /// An in-process Wayland client of the agent.
    pub fn connect_client(&self) -> client::TestClient {
        client::TestClient::connect(self.runtime_dir.path(), &self.socket_name)
    }

    /// Whether the agent process is still running.
    pub fn agent_alive(&mut self) -> bool {
        self.agent.try_wait().unwrap().is_none()
    }
}

/// Polls `done` until it holds or the timeout passes.
pub fn eventually(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Linux evdev keycodes for the test's typing.
pub fn evdev_key(c: char) -> u32 {
    match c {
        'a' => 30,
        'b' => 48,
        'c' => 46,
        'd' => 32,
        'e' => 18,
        'h' => 35,
        'i' => 23,
        'k' => 37,
        'l' => 38,
        'o' => 24,
        'r' => 19,
        's' => 31,
        't' => 20,
        'w' => 17,
        'y' => 21,
        '\n' => 28,
        other => panic!("no keycode for {other:?} in this test"),
    }
}
