//! The command line: `corral [options]` runs the compositor, `corral msg …` talks to one.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::backend::BackendKind;
use crate::qubes::DevQubeSpec;

/// The compositor of Corral's trusted GUI domain: shows qube windows with frames and labels no
/// qube can forge, owns keyboard focus, and answers `corral msg` on its IPC socket.
///
/// Examples:
///   corral --backend headless --size 1600x900 --dev-qube work:blue --dev-qube personal:yellow
///   corral msg windows --json
///   corral msg screenshot shot.png
#[derive(Debug, Parser)]
#[command(name = "corral", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Talk to a running corral over its IPC socket (JSON replies).
    Msg(MsgArgs),
    /// Check a config file (default: the one corral would use) and its theme; print "ok" or
    /// the error with its file, line, column and the offending line.
    ValidateConfig {
        /// The file [default: $XDG_CONFIG_HOME/corral/config.toml, else
        /// /etc/corral/config.toml, else the built-in default].
        file: Option<PathBuf>,
    },
    /// Print the documented default config file (a starting point for your own).
    PrintDefaultConfig,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Backend: `udev` (the real session on this machine's screens: DRM/KMS, libinput, a seat
    /// from logind or seatd; what corral-session runs), `winit` (a window in your X11/Wayland
    /// session, GLES), `headless` (Pixman, offscreen: tests, CI, screenshots) or `auto` (winit
    /// when DISPLAY or WAYLAND_DISPLAY is set, otherwise headless; never udev).
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendKind,

    /// Size of a headless output, WIDTHxHEIGHT. Repeat for several outputs, placed left to
    /// right.
    #[arg(long = "size", value_parser = parse_size, default_value = "1600x900")]
    pub sizes: Vec<(i32, i32)>,

    /// Start a development qube: a channel with this identity (name and label, e.g. work:blue)
    /// and an agent process on its other end. Repeatable. The identity comes from this flag,
    /// never from the agent.
    #[arg(long = "dev-qube", value_name = "NAME:LABEL")]
    pub dev_qubes: Vec<DevQubeSpec>,

    /// Listen on a Unix socket for the agent of a development qube (`corral-agent --connect
    /// PATH`), which reconnects after a compositor restart. Repeatable. The identity comes from
    /// this flag; PATH must be reachable from that qube only.
    #[arg(long = "dev-listen", value_name = "NAME:LABEL:PATH")]
    pub dev_listen: Vec<crate::qubes::DevListenSpec>,

    /// The agent command for --dev-qube, a template where {fd} is the inherited channel's
    /// descriptor, {name} the qube name and {label} its label. Default: `corral-agent --gui-fd
    /// {fd}`, found next to corral or on PATH.
    #[arg(long, value_name = "COMMAND")]
    pub dev_agent_command: Option<String>,

    /// The IPC socket [default: $CORRAL_SOCKET, else $XDG_RUNTIME_DIR/corral/ipc.sock].
    #[arg(long, value_name = "PATH")]
    pub ipc_socket: Option<PathBuf>,

    /// Open a trusted Wayland socket in $XDG_RUNTIME_DIR for the GUI domain's own apps
    /// (framed black as `[corral]`). Without NAME the first free `wayland-N` is used. Never give
    /// this socket to a qube.
    #[arg(long, value_name = "NAME", num_args = 0..=1)]
    pub gui_socket: Option<Option<String>>,

    /// Start a GUI-domain app on the --gui-socket (with WAYLAND_DISPLAY set). Repeatable.
    #[arg(long, value_name = "COMMAND")]
    pub gui_exec: Vec<String>,

    /// Require the embedded domain manager (the default): fail, instead of running on without
    /// qubes from the store, when it cannot start.
    #[arg(long, conflicts_with = "no_domains")]
    pub domains: bool,

    /// Do not embed the domain manager (the qube store, the admin socket `corralctl` uses,
    /// autostart qubes, the launcher's list): only --dev-qube channels.
    #[arg(long)]
    pub no_domains: bool,

    /// The qube data directory [default: $CORRAL_DATA_DIR, else $XDG_DATA_HOME/corral, else
    /// ~/.local/share/corral, or /var/lib/corral as root].
    #[arg(long, value_name = "DIR", conflicts_with = "no_domains")]
    pub domains_data: Option<PathBuf>,

    /// The domain manager's admin socket [default: $XDG_RUNTIME_DIR/corral/admin.sock (or
    /// $CORRAL_RUNTIME_DIR/admin.sock), where corralctl looks with no flags]. The qubes' runtime
    /// state stays in that default directory either way.
    #[arg(long, value_name = "PATH", conflicts_with = "no_domains")]
    pub admin_socket: Option<PathBuf>,

    /// The config file [default: $XDG_CONFIG_HOME/corral/config.toml, else
    /// /etc/corral/config.toml, else the built-in default]. Reloaded live when it changes.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Width of window borders in pixels [default: decorations.border_width of the config].
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=32))]
    pub border: Option<i32>,

    /// No panel along the top of the outputs (windows may then use the whole output).
    #[arg(long)]
    pub no_panel: bool,

    /// Accept `corral msg key` and `corral msg pointer` on a backend other than headless.
    #[arg(long)]
    pub allow_input_injection: bool,

    /// Minimum time between two frames, in milliseconds. 0 draws as soon as anything changed
    /// (an unthrottled output, for benchmarks: `cargo xtask bench`).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(0..=1000))]
    pub frame_interval_ms: u64,

    /// Print the Corral GUI protocol version this compositor speaks and exit.
    #[arg(long)]
    pub protocol_version: bool,

    /// The directory of `*.policy` files (Qubes syntax) deciding `corral.ClipboardPaste`; read
    /// at every paste. [default: the source tree's config/policy.d for a debug build run from
    /// a checkout, else /etc/corral/policy.d]
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,

    /// Largest text a qube may copy into the global clipboard, in bytes (256 to 16 MiB)
    /// [default: clipboard.text_max_bytes of the config, 65536].
    #[arg(long, value_name = "BYTES", value_parser = parse_clipboard_cap)]
    pub clipboard_text_max: Option<usize>,

    /// Largest PNG image a qube may copy into the global clipboard, in bytes (256 to 16 MiB)
    /// [default: clipboard.png_max_bytes of the config, 4 MiB].
    #[arg(long, value_name = "BYTES", value_parser = parse_clipboard_cap)]
    pub clipboard_png_max: Option<usize>,

    /// How long a qube has to answer Ctrl+Shift+C, in milliseconds; a later answer is dropped
    /// [default: clipboard.copy_timeout_ms of the config, 5000].
    #[arg(long, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub clipboard_timeout_ms: Option<u64>,

    /// Keep the global clipboard after a paste (by default one copy pastes once).
    #[arg(long)]
    pub clipboard_keep: bool,

    /// Wipe the global clipboard this many seconds after a copy.
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub clipboard_wipe_after: Option<u64>,

    /// Treat `ask` in the paste policy as deny (by default the shortcut counts as the answer to
    /// `ask`, as in Qubes).
    #[arg(long)]
    pub clipboard_ask_denies: bool,

    /// Lock the session after this many seconds without keyboard or pointer input [default:
    /// security.idle_lock_seconds of the config, 0: never].
    #[arg(long, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_lock: Option<u64>,

    /// The user whose password unlocks the lock screen [default: the user running corral].
    #[arg(long, value_name = "USER")]
    pub lock_user: Option<String>,

    /// The PAM service the lock screen checks passwords with (/etc/pam.d/SERVICE).
    #[arg(long, value_name = "SERVICE", default_value = crate::lock::DEFAULT_PAM_SERVICE)]
    pub lock_pam_service: String,

    /// Do not ask logind (system bus) to lock before suspend and on `loginctl lock-session`.
    #[arg(long)]
    pub no_logind: bool,
}

impl RunArgs {
    /// The lock screen's settings: the flags over `base`.
    pub fn lock_config(&self, base: crate::lock::LockConfig) -> crate::lock::LockConfig {
        crate::lock::LockConfig {
            user: self.lock_user.clone().unwrap_or(base.user),
            pam_service: self.lock_pam_service.clone(),
            idle_timeout: self
                .idle_lock
                .map(std::time::Duration::from_secs)
                .or(base.idle_timeout),
        }
    }

    /// The settings given as flags, which win over the config file.
    pub fn overrides(&self) -> crate::config::live::Overrides {
        crate::config::live::Overrides {
            border: self.border,
            policy_dir: self.policy_dir.clone(),
            clipboard_text_max: self.clipboard_text_max,
            clipboard_png_max: self.clipboard_png_max,
            clipboard_timeout_ms: self.clipboard_timeout_ms,
            clipboard_keep: self.clipboard_keep,
            clipboard_wipe_after: self.clipboard_wipe_after,
            clipboard_ask_denies: self.clipboard_ask_denies,
            allow_input_injection: self.allow_input_injection,
            idle_lock: self.idle_lock,
        }
    }

    /// The global clipboard's settings from the flags over the built-in defaults.
    pub fn clipboard_config(&self) -> crate::clipboard::ClipboardConfig {
        crate::config::apply::clipboard_config(
            &crate::config::schema::Clipboard::default(),
            &self.overrides(),
        )
    }
}

/// A clipboard cap: 256 bytes to the protocol's hard maximum.
fn parse_clipboard_cap(s: &str) -> Result<usize, String> {
    let max = corral_protocol::limits::MAX_CLIPBOARD_BYTES;
    s.parse::<usize>()
        .ok()
        .filter(|n| (256..=max).contains(n))
        .ok_or_else(|| format!("{s:?} is not a number of bytes between 256 and {max}"))
}

/// `corral msg`: talk to a running corral.
#[derive(Debug, Clone, Args)]
pub struct MsgArgs {
    /// The socket [default: $CORRAL_SOCKET, else $XDG_RUNTIME_DIR/corral/ipc.sock].
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    #[command(subcommand)]
    pub request: MsgCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum MsgCommand {
    /// List windows: id, qube, label, colour, title, app_id, geometry, focus, output, workspace.
    Windows {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List outputs (JSON).
    Outputs,
    /// List connected qubes: name, label, colour, agent process (JSON).
    Qubes,
    /// List the notifications on screen (JSON).
    Notifications,
    /// Read the config file again now (corral also does when the file changes); prints the
    /// error, with its line and column, if the file has one.
    ReloadConfig,
    /// The global clipboard's state: source qube, kind, size, age; never the content.
    Clipboard {
        /// Print JSON instead of one line.
        #[arg(long)]
        json: bool,
    },
    /// Write the composited outputs to a PNG file.
    Screenshot { file: PathBuf },
    /// Focus and raise a window (by id from `windows`).
    Focus { id: u64 },
    /// Ask a window's qube to close it.
    Close { id: u64 },
    /// Switch to a workspace (1-based).
    Workspace { n: u32 },
    /// Lock the session now (the built-in lock screen; the user's password unlocks).
    Lock,
    /// The lock screen's state: locked, holder, characters typed (never the text), failures.
    LockState,
    /// Add a virtual output WIDTHxHEIGHT to the right of the others (headless backend).
    AddOutput {
        #[arg(value_parser = parse_size)]
        size: (i32, i32),
    },
    /// List qubes (stopped ones too) and the applications each offers, from the embedded
    /// domain manager.
    Apps {
        /// Only this qube.
        qube: Option<String>,
        /// Print JSON instead of a list.
        #[arg(long)]
        json: bool,
    },
    /// Open or close the launcher, as its shortcut does, or print its state.
    Launcher {
        #[arg(value_enum, default_value = "state")]
        action: crate::ipc::LauncherAction,
    },
    /// Start an application (an id from `apps`) in a qube, starting the qube first if needed.
    Launch {
        /// In a new disposable whose disposable template is QUBE.
        #[arg(long)]
        dispvm: bool,
        qube: String,
        app: String,
    },
    /// Inject a key combination as device input would, e.g. `ctrl+shift+c`, `a`, `Return`,
    /// `super+2`. Headless backend only, unless corral runs with --allow-input-injection.
    Key {
        combo: String,
        /// `tap` (press then release), `press` (hold) or `release`.
        #[arg(long, value_enum, default_value = "tap")]
        action: crate::ipc::KeyAction,
    },
    /// Inject pointer input at global coordinates: `move X Y` or `click X Y`.
    /// Headless backend only, unless corral runs with --allow-input-injection.
    Pointer {
        #[arg(value_enum)]
        action: PointerAction,
        x: f64,
        y: f64,
        /// Button for `click`: left, right or middle.
        #[arg(long, value_enum, default_value = "left")]
        button: ButtonName,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PointerAction {
    Move,
    Click,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ButtonName {
    Left,
    Right,
    Middle,
}

impl ButtonName {
    pub fn code(self) -> u32 {
        match self {
            ButtonName::Left => crate::input::BTN_LEFT,
            ButtonName::Right => crate::input::BTN_RIGHT,
            ButtonName::Middle => crate::input::BTN_MIDDLE,
        }
    }
}

/// Parses `WIDTHxHEIGHT`.
pub fn parse_size(s: &str) -> Result<(i32, i32), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT (for example 1600x900)"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<i32>()
            .ok()
            .filter(|n| (64..=16384).contains(n))
            .ok_or_else(|| format!("{v:?} in {s:?} is not a size between 64 and 16384"))
    };
    Ok((parse(w)?, parse(h)?))
}
