//! Applying a config to the running compositor: at start and on every good reload.
//! Command-line flags keep winning over the file ([`Overrides`]).

use std::path::PathBuf;
use std::time::Duration;

use smithay::input::keyboard::XkbConfig;

use super::live::Overrides;
use super::schema::{self, Config};
use super::{Loaded, theme};
use crate::clipboard::ClipboardConfig;
use crate::state::State;

/// The global clipboard's settings: the file's `[clipboard]`, then the flags.
pub fn clipboard_config(c: &schema::Clipboard, o: &Overrides) -> ClipboardConfig {
    let from_file = (!c.policy_dir.is_empty()).then(|| expand_home(&c.policy_dir));
    ClipboardConfig {
        policy_dir: o
            .policy_dir
            .clone()
            .or(from_file)
            .unwrap_or_else(crate::clipboard::default_policy_dir),
        text_max: o
            .clipboard_text_max
            .unwrap_or(c.text_max_bytes.get() as usize),
        png_max: o
            .clipboard_png_max
            .unwrap_or(c.png_max_bytes.get() as usize),
        timeout: Duration::from_millis(
            o.clipboard_timeout_ms
                .unwrap_or(c.copy_timeout_ms.get() as u64),
        ),
        keep_after_paste: o.clipboard_keep || !c.paste_once,
        wipe_after: o
            .clipboard_wipe_after
            .or((c.wipe_after_seconds.get() > 0).then_some(c.wipe_after_seconds.get() as u64))
            .map(Duration::from_secs),
        ask_is_allow: !o.clipboard_ask_denies && c.ask_is_allow,
    }
}

/// `~/x` → `$HOME/x`.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

impl State {
    /// Makes `loaded` the running config.
    pub fn apply_loaded(&mut self, loaded: Loaded, initial: bool) {
        let c = loaded.config.clone();
        theme::set_look(loaded.look.clone());
        let font = if c.decorations.font.is_empty() {
            None
        } else {
            // Checked when the file was parsed; a font that went away since keeps the bundled.
            match crate::render::text::load_font_file(std::path::Path::new(&c.decorations.font)) {
                Ok(font) => Some(font),
                Err(e) => {
                    tracing::warn!("decorations.font: {e}; drawing with the bundled font");
                    None
                }
            }
        };
        crate::render::text::set_font(font);

        let o = self.settings.overrides.clone();
        let d = &c.decorations;
        self.layout.config.border = o.border.unwrap_or(d.border_width.get() as i32);
        self.layout.config.title_height = d.title_height.get() as i32;
        self.layout.config.popup_border = d.popup_border_width.get() as i32;

        self.input.bindings = loaded.bindings.clone();
        self.clipboard.config = clipboard_config(&c.clipboard, &o);
        let headless = matches!(self.backend, crate::backend::Backend::Headless(_));
        self.config.allow_input_injection =
            headless || o.allow_input_injection || c.security.allow_input_injection;

        // The idle lock: the flag over the file; 0 is off.
        let idle = o
            .idle_lock
            .unwrap_or(c.security.idle_lock_seconds.get() as u64);
        self.lock.config.idle_timeout = (idle > 0).then(|| std::time::Duration::from_secs(idle));

        self.apply_keyboard(&c, initial);
        self.apply_outputs(&c);

        for w in &loaded.warnings {
            tracing::warn!("config: {w}");
        }
        if !initial && !loaded.warnings.is_empty() {
            self.notify(
                Self::gui_domain_colour(),
                "Config applied, with a warning".into(),
                loaded.warnings.join("; "),
            );
        }
        self.settings.loaded = loaded;
        // Title bars and toasts are drawn again in the new style.
        self.render_cache = crate::render::RenderCache::default();
        let wins: Vec<_> = self.layout.stack().to_vec();
        for w in wins {
            self.send_configure(w);
        }
        self.queue_redraw();
    }

    fn apply_keyboard(&mut self, c: &Config, initial: bool) {
        let i = &c.input;
        let xkb = XkbConfig {
            rules: "",
            model: &i.keyboard_model,
            layout: &i.keyboard_layout,
            variant: &i.keyboard_variant,
            options: (!i.keyboard_options.is_empty()).then(|| i.keyboard_options.clone()),
        };
        let keyboard = self.keyboard.clone();
        if let Err(e) = keyboard.set_xkb_config(self, xkb) {
            tracing::warn!("keeping the old keymap: {e:?}");
        }
        keyboard.change_repeat_info(i.repeat_rate.get() as i32, i.repeat_delay.get() as i32);
        match super::compile_keymap(
            &i.keyboard_model,
            &i.keyboard_layout,
            &i.keyboard_variant,
            &i.keyboard_options,
        ) {
            Ok(k) => self.keymap = k,
            Err(e) => tracing::warn!("keeping the old keymap: {e}"),
        }
        if initial {
            return;
        }
        // Agents take a new keymap at any time.
        let conns: Vec<_> = self
            .qubes
            .conns
            .iter()
            .filter(|(_, c)| c.established)
            .map(|(id, c)| (*id, c.identity.name.to_string()))
            .collect();
        for (id, name) in conns {
            let keymap = self.keymap_for(&name);
            self.send_to(id, &corral_protocol::GuiMessage::Keymap { keymap });
        }
    }

    /// The keymap a qube gets: its `input.qube_keyboard_layout` if it has one.
    pub fn keymap_for(&self, qube: &str) -> String {
        let i = &self.settings.loaded.config.input;
        match i.qube_keyboard_layout.get(qube) {
            Some(layout) => {
                super::compile_keymap(&i.keyboard_model, layout, "", &i.keyboard_options)
                    .unwrap_or_else(|e| {
                        tracing::warn!("qube {qube}: {e}; it gets the main keymap");
                        self.keymap.clone()
                    })
            }
            None => self.keymap.clone(),
        }
    }

    fn apply_outputs(&mut self, c: &Config) {
        if let crate::backend::Backend::Udev(udev) = &mut self.backend {
            // New devices get the new input settings; monitors are placed again by the rules.
            udev.input_settings = crate::backend::udev::InputSettings::from_config(&c.input);
            let rules = crate::backend::udev::placement::rules_from_config(&c.outputs);
            self.udev_set_output_settings(Box::new(rules));
            return;
        }
        let crate::backend::Backend::Headless(headless) = &mut self.backend else {
            if !c.outputs.is_empty() {
                tracing::info!("[[output]] settings apply to the headless and udev backends only");
            }
            return;
        };
        match headless.configure(&c.outputs) {
            Ok(true) => {
                let areas = self.backend.output_areas();
                self.set_outputs(areas);
            }
            Ok(false) => {}
            Err(e) => tracing::error!("outputs not changed: {e:#}"),
        }
    }

    /// Whether `qube`'s fullscreen requests are honoured (`security.fullscreen_allowed`).
    pub fn fullscreen_allowed(&self, qube: &str) -> bool {
        self.settings
            .loaded
            .config
            .security
            .fullscreen_allowed
            .iter()
            .any(|q| q == qube)
    }

    /// The `screenshot` shortcut: all outputs to a PNG file in `screenshot_dir`.
    pub fn save_screenshot(&mut self) {
        let dir = match self.settings.loaded.config.screenshot_dir.as_str() {
            "" => default_screenshot_dir(),
            d => expand_home(d),
        };
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let path = dir.join(format!("corral-{stamp}.png"));
        let result = self
            .screenshot()
            .and_then(|s| s.encode_png())
            .and_then(|png| {
                std::fs::create_dir_all(&dir)?;
                std::fs::write(&path, png)?;
                Ok(())
            });
        match result {
            Ok(()) => self.notify(
                Self::gui_domain_colour(),
                "Screenshot saved".into(),
                path.display().to_string(),
            ),
            Err(e) => self.notify(
                Self::gui_domain_colour(),
                "Screenshot failed".into(),
                format!("{e:#}"),
            ),
        }
    }
}

fn default_screenshot_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("XDG_PICTURES_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(p);
    }
    match std::env::var_os("HOME") {
        Some(h) => {
            let pictures = PathBuf::from(&h).join("Pictures");
            if pictures.is_dir() {
                pictures
            } else {
                PathBuf::from(h)
            }
        }
        None => std::env::temp_dir(),
    }
}
