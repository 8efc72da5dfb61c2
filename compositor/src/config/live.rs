//! Live reload: a calloop timer looks at the config file (and the theme file it names) every
//! [`POLL`], by (device, inode, modification time, size), so an editor that saves by
//! writing a new file and renaming it over the old one is seen as well as one writing in
//! place. A change is parsed; a good file is applied at once, a bad one keeps the last good
//! config and raises a notification naming the file, line, column and what was expected.
//!
//! Polling is chosen over inotify: it needs no extra crate, survives the directory being
//! replaced, and two `stat` calls a second cost nothing.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use smithay::reexports::calloop::LoopHandle;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};

use super::{ConfigError, Loaded, Source};
use crate::state::State;

/// How often the files are looked at.
pub const POLL: Duration = Duration::from_millis(500);

/// What identifies a version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    mtime_ns: i128,
    size: u64,
}

fn stamp(path: &PathBuf) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        dev: m.dev(),
        ino: m.ino(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        size: m.len(),
    })
}

/// Settings the command line gives, which win over the file (so scripts and tests that pass
/// flags keep working whatever the file says).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub border: Option<i32>,
    pub policy_dir: Option<PathBuf>,
    pub clipboard_text_max: Option<usize>,
    pub clipboard_png_max: Option<usize>,
    pub clipboard_timeout_ms: Option<u64>,
    pub clipboard_keep: bool,
    pub clipboard_wipe_after: Option<u64>,
    pub clipboard_ask_denies: bool,
    pub allow_input_injection: bool,
    /// `--idle-lock SECONDS`.
    pub idle_lock: Option<u64>,
}

/// The config the compositor runs with, where it came from, and what is watched.
#[derive(Debug)]
pub struct Settings {
    pub source: Source,
    /// The path watched for the config: the file in use, or where the user's file would be
    /// (creating it then takes effect).
    pub watched: Option<PathBuf>,
    pub loaded: Loaded,
    pub overrides: Overrides,
    stamps: Vec<Option<Stamp>>,
    /// The error last reported, so a broken file is reported once, not every poll.
    last_error: Option<ConfigError>,
    /// Input held back by `security.input_jitter_ms`.
    pub delayed: super::jitter::Delayed,
}

impl Settings {
    pub fn new(source: Source, loaded: Loaded, overrides: Overrides) -> Settings {
        let watched = match &source {
            Source::File(p) => Some(p.clone()),
            Source::BuiltIn => super::user_config_dir().map(|d| d.join("config.toml")),
        };
        let mut s = Settings {
            source,
            watched,
            loaded,
            overrides,
            stamps: Vec::new(),
            last_error: None,
            delayed: Default::default(),
        };
        s.stamps = s.current_stamps();
        s
    }

    /// The built-in default and no flags (tests, tools).
    pub fn builtin() -> Settings {
        Settings::new(Source::BuiltIn, Loaded::builtin(), Overrides::default())
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.watched.iter().cloned().collect();
        let theme = PathBuf::from(&self.loaded.theme_file);
        if theme.is_absolute() {
            files.push(theme);
        }
        files
    }

    fn current_stamps(&self) -> Vec<Option<Stamp>> {
        self.files().iter().map(stamp).collect()
    }
}

/// Starts watching the config file.
pub fn watch(handle: &LoopHandle<'static, State>) -> anyhow::Result<()> {
    handle
        .insert_source(Timer::from_duration(POLL), |_, _, state: &mut State| {
            state.poll_config();
            TimeoutAction::ToDuration(POLL)
        })
        .map_err(|e| anyhow::anyhow!("watching the config file: {e}"))?;
    Ok(())
}

impl State {
    /// Reloads the config if its file (or theme file) changed.
    pub fn poll_config(&mut self) {
        let now = self.settings.current_stamps();
        if now == self.settings.stamps {
            return;
        }
        self.settings.stamps = now;
        // A bad file is reported by reload_config itself.
        let _ = self.reload_config();
    }

    /// Reads the config again: applies it if it is good; otherwise keeps the last good one
    /// and tells the user what is wrong and where. Returns the error, if any.
    pub fn reload_config(&mut self) -> Result<(), ConfigError> {
        let source = match &self.settings.watched {
            Some(p) if p.exists() => Source::File(p.clone()),
            _ => self.settings.source.clone(),
        };
        // Stamped before reading: an edit made while loading is seen by the next poll.
        let stamps = self.settings.current_stamps();
        match super::load(&source) {
            Ok(loaded) => {
                tracing::info!("config reloaded from {}", source.describe());
                self.settings.source = source;
                self.settings.last_error = None;
                self.settings.stamps = stamps;
                self.apply_loaded(loaded, false);
                Ok(())
            }
            Err(e) => {
                if self.settings.last_error.as_ref() != Some(&e) {
                    tracing::error!("config not reloaded, keeping the last good one:\n{e}");
                    self.notify(
                        Self::gui_domain_colour(),
                        "Config error: kept the last good config".into(),
                        e.short_headline(),
                    );
                    self.settings.last_error = Some(e.clone());
                }
                Err(e)
            }
        }
    }
}
