//! `corral msg`: a Unix socket (mode 0600, in a 0700 directory) under
//! `$XDG_RUNTIME_DIR/corral/`, one JSON request per connection, one JSON reply.
//!
//! The path can be set with `--ipc-socket` or `CORRAL_SOCKET`, so tests run several instances
//! side by side. Input injection (`key`, `pointer`) is refused unless the backend is headless or
//! `--allow-input-injection` was given.

pub mod client;
pub mod server;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The environment variable naming the socket, for the compositor and for `corral msg`.
pub const SOCKET_ENV: &str = "CORRAL_SOCKET";

/// Where the socket is when nothing says otherwise.
pub fn default_socket_path() -> PathBuf {
    if let Some(path) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::temp_dir().join(format!("corral-{}", rustix::process::getuid().as_raw()))
        });
    base.join("corral").join("ipc.sock")
}

/// A request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// Every window (toplevels and popups).
    Windows,
    /// The outputs.
    Outputs,
    /// The connected qubes: name, label, agent process.
    Qubes,
    /// The notifications shown on the trusted layer now.
    Notifications,
    /// Read the config file again now (as saving it does); an error keeps the last good one.
    ReloadConfig,
    /// The global clipboard's state (never its content).
    Clipboard,
    /// Writes the composited outputs as a PNG to `path` (absolute).
    Screenshot {
        path: PathBuf,
    },
    Focus {
        id: u64,
    },
    Close {
        id: u64,
    },
    /// Injects a key combination, like `ctrl+shift+c`, as device input would: pressed in
    /// order and released in reverse (`tap`), or only pressed, or only released.
    Key {
        combo: String,
        #[serde(default)]
        action: KeyAction,
    },
    /// Moves the pointer to global (x, y), optionally clicking `button` there.
    Pointer {
        x: f64,
        y: f64,
        #[serde(default)]
        click: Option<u32>,
    },
    /// Switches to workspace `n` (1-based).
    Workspace {
        n: u32,
    },
    /// Locks the session (the built-in lock screen).
    Lock,
    /// The lock screen's state (`crate::lock::LockInfo`): never the typed text.
    LockState,
    /// Adds a virtual output to the right of the others (headless backend only).
    AddOutput {
        width: i32,
        height: i32,
    },
    /// The qubes of the embedded domain manager (stopped ones too) and the applications each
    /// offers; with `qube`, that one only. Answered off the event loop.
    Apps {
        #[serde(default)]
        qube: Option<String>,
    },
    /// Opens or closes the launcher, as its shortcut does, or (`state`, the default) only
    /// reports: whether it is open, what is typed into it (the GUI domain's own words) and the
    /// rows it shows.
    Launcher {
        #[serde(default)]
        action: LauncherAction,
    },
    /// Starts application `app` (an id from `apps`) in `qube`, starting the qube first if
    /// needed; with `dispvm`, in a new disposable of the disposable template `qube`.
    Launch {
        qube: String,
        app: String,
        #[serde(default)]
        dispvm: bool,
    },
}

/// What `launcher` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LauncherAction {
    #[default]
    State,
    Open,
    Close,
}

/// What `key` does with the combination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum KeyAction {
    #[default]
    Tap,
    Press,
    Release,
}

/// A reply: `{"ok": true, "result": …}` or `{"ok": false, "error": "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A rectangle in global pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RectInfo {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

/// One window as `windows --json` reports it. Geometry is the content (interior) in global
/// pixels; `frame` is the outer frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowInfo {
    pub id: u64,
    /// The qube's trusted name (from the channel, never from the agent).
    pub qube: String,
    pub label: String,
    /// The label colour, `#rrggbb`.
    pub colour: String,
    /// The qube's sanitised title (its own words).
    pub title: String,
    /// What the title bar shows: `[qube] title`.
    pub display_title: String,
    pub app_id: String,
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
    pub frame: RectInfo,
    pub focused: bool,
    /// Index of the output it is on (0-based), and its name.
    pub output: Option<usize>,
    pub output_name: Option<String>,
    pub workspace: u32,
    /// `toplevel` or `popup`.
    pub kind: String,
    pub parent: Option<u64>,
    pub visible: bool,
    pub mapped: bool,
    pub minimized: bool,
    pub maximized: bool,
    pub attention: bool,
    pub has_content: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputDesc {
    pub name: String,
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationInfo {
    /// For a qube's notification: its (sanitised) summary, shown after the qube's name.
    pub headline: String,
    pub detail: String,
    pub colour: String,
    /// `system` (the GUI domain's own) or `qube` (a qube's notification, framed in its colour).
    #[serde(default)]
    pub source: String,
    /// The qube a `qube` notification came from (its trusted name).
    #[serde(default)]
    pub qube: Option<String>,
    /// `low`, `normal` or `critical`, for a qube's notification.
    #[serde(default)]
    pub urgency: Option<String>,
    /// Where it is on screen (global pixels), if an output shows it.
    #[serde(default)]
    pub rect: Option<RectInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QubeInfo {
    pub name: String,
    pub label: String,
    pub colour: String,
    /// The compositor's number for the channel.
    pub channel: u64,
    /// The agent process, for `--dev-qube` channels.
    pub agent_pid: Option<u32>,
    pub windows: usize,
    pub established: bool,
}
