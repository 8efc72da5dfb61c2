//! Command-line flags of `corral-agent`.

use std::path::PathBuf;

use clap::Parser;

/// Runs inside a qube: a headless Wayland compositor that the qube's apps connect to. It forwards
/// their windows (toplevels, popups, titles, sizes, damaged pixels) to the GUI domain over the
/// Corral GUI protocol and delivers input, configure events and clipboard data back.
///
/// Exactly one of `--gui-fd` or `--connect` names the channel to the GUI domain. Logs go to
/// stderr; CORRAL_LOG sets their filter (default `info`, e.g. `debug` or
/// `corral_agent=debug`). Design and tested behaviours: docs/agent.md.
#[derive(Debug, Clone, Parser)]
#[command(name = "corral-agent", version)]
pub struct Args {
    /// The GUI channel as an inherited file descriptor: one end of a Unix socketpair that the
    /// domain manager passed when it started this agent. When this channel closes the agent
    /// exits, because nothing could hand it a new one.
    #[arg(long, value_name = "FD", conflicts_with = "connect")]
    pub gui_fd: Option<i32>,

    /// The GUI channel as a Unix socket path the GUI domain listens on. If the channel drops
    /// (the compositor restarted), apps keep running; the agent reconnects with backoff and
    /// re-announces every window with its title and current content.
    #[arg(long, value_name = "PATH")]
    pub connect: Option<PathBuf>,

    /// Send pixels inline in protocol messages instead of sharing memfds, as on channels that
    /// cannot pass file descriptors (vsock). Mostly for testing that path on a Unix socket.
    #[arg(long)]
    pub inline_pixels: bool,

    /// Name of the Wayland socket in $XDG_RUNTIME_DIR. By default the first free `wayland-N`.
    #[arg(long, value_name = "NAME")]
    pub socket_name: Option<String>,

    /// Start Xwayland so X11 apps (xterm, older toolkits) run too; their windows are forwarded
    /// like Wayland ones. Launched apps then also get DISPLAY.
    #[arg(long)]
    pub xwayland: bool,

    /// Largest clipboard content read from an app in this qube, in bytes. A larger selection is
    /// not sent at all (the GUI domain is told the clipboard is empty) rather than cut short.
    #[arg(long, value_name = "BYTES", default_value_t = corral_protocol::limits::MAX_CLIPBOARD_BYTES)]
    pub clipboard_max_bytes: usize,

    /// Run this command once the Wayland socket is ready (with WAYLAND_DISPLAY set), e.g. an
    /// app to start with the qube. May be repeated.
    #[arg(long = "exec", value_name = "COMMAND")]
    pub exec: Vec<String>,

    /// Do not serve org.freedesktop.Notifications. By default the agent serves it on the qube's
    /// session bus (starting `dbus-daemon` at $XDG_RUNTIME_DIR/bus if there is none) once the
    /// GUI domain agreed to show the qube's notifications, and forwards each one.
    #[arg(long)]
    pub no_notifications: bool,

    /// Print the Corral GUI protocol version this agent speaks and exit.
    #[arg(long)]
    pub protocol_version: bool,
}

impl Args {
    /// Which channel to use, or why the flags do not name one.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        match (self.gui_fd, &self.connect) {
            (Some(fd), None) => Ok(Endpoint::InheritedFd(fd)),
            (None, Some(path)) => Ok(Endpoint::Connect(path.clone())),
            (None, None) => Err("name the GUI channel with --gui-fd FD or --connect PATH".into()),
            (Some(_), Some(_)) => Err("--gui-fd and --connect cannot be used together".into()),
        }
    }
}

/// Where the channel to the GUI domain comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    InheritedFd(i32),
    Connect(PathBuf),
    /// A socket handed over in-process (see [`crate::embedded`]); used once, like an fd.
    Embedded,
}
