//! Keybindings from `[keybindings]`: key combinations matched against a key press, and the
//! action each one runs.
//!
//! Reserved-shortcut semantics (decision 5): a combination the compositor takes is consumed,
//! press and release, and never reaches any qube. Every combination with Super is reserved
//! even when nothing is bound to it, so qubes never see Super shortcuts at all.

use smithay::input::keyboard::{ModifiersState, keysyms};

use super::schema::Keybindings;
use super::values::{Combo, ComboKey, Mods, normalise_sym};
use crate::input::{Action, KEY_STEP};

/// One bound combination.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub mods: Mods,
    pub key: ComboKey,
    pub action: Action,
}

/// The compiled `[keybindings]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bindings {
    pub list: Vec<Binding>,
}

impl Default for Bindings {
    fn default() -> Self {
        compile(&Keybindings::default()).expect("the default keybindings do not conflict")
    }
}

/// A binding that cannot be used: the action's key name, the index in its list, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingError {
    pub action: &'static str,
    pub index: usize,
    /// The binding it clashes with.
    pub other: (&'static str, usize),
    pub message: String,
}

/// An action's key name, its combinations, and what it does (given the digit for `{n}`).
pub type ActionEntry<'a> = (&'static str, Vec<ComboOf<'a>>, fn(u32) -> Action);

/// Every action with its key name in `[keybindings]`, its combinations and what it does.
pub fn actions(k: &Keybindings) -> Vec<ActionEntry<'_>> {
    fn plain(list: &[Combo<false>]) -> Vec<ComboOf<'_>> {
        list.iter().map(ComboOf::Plain).collect()
    }
    fn digits(list: &[Combo<true>]) -> Vec<ComboOf<'_>> {
        list.iter().map(ComboOf::Digit).collect()
    }
    vec![
        ("copy", plain(&k.copy), |_| Action::Copy),
        ("paste", plain(&k.paste), |_| Action::Paste),
        ("launcher", plain(&k.launcher), |_| Action::Launcher),
        ("switcher", plain(&k.switcher), |_| Action::Switcher),
        ("lock", plain(&k.lock), |_| Action::Lock),
        ("close", plain(&k.close), |_| Action::Close),
        ("maximize", plain(&k.maximize), |_| Action::ToggleMaximize),
        ("minimize", plain(&k.minimize), |_| Action::Minimize),
        ("fullscreen", plain(&k.fullscreen), |_| Action::Fullscreen),
        ("screenshot", plain(&k.screenshot), |_| Action::Screenshot),
        ("move_left", plain(&k.move_left), |_| {
            Action::MoveBy(-KEY_STEP, 0)
        }),
        ("move_right", plain(&k.move_right), |_| {
            Action::MoveBy(KEY_STEP, 0)
        }),
        ("move_up", plain(&k.move_up), |_| {
            Action::MoveBy(0, -KEY_STEP)
        }),
        ("move_down", plain(&k.move_down), |_| {
            Action::MoveBy(0, KEY_STEP)
        }),
        ("grow_width", plain(&k.grow_width), |_| {
            Action::ResizeBy(KEY_STEP, 0)
        }),
        ("shrink_width", plain(&k.shrink_width), |_| {
            Action::ResizeBy(-KEY_STEP, 0)
        }),
        ("grow_height", plain(&k.grow_height), |_| {
            Action::ResizeBy(0, KEY_STEP)
        }),
        ("shrink_height", plain(&k.shrink_height), |_| {
            Action::ResizeBy(0, -KEY_STEP)
        }),
        ("workspace", digits(&k.workspace), Action::Workspace),
        (
            "move_to_workspace",
            digits(&k.move_to_workspace),
            Action::MoveToWorkspace,
        ),
    ]
}

/// A combination of either kind.
#[derive(Debug, Clone, Copy)]
pub enum ComboOf<'a> {
    Plain(&'a Combo<false>),
    Digit(&'a Combo<true>),
}

impl ComboOf<'_> {
    fn parts(self) -> (Mods, ComboKey) {
        match self {
            ComboOf::Plain(c) => (c.mods, c.key),
            ComboOf::Digit(c) => (c.mods, c.key),
        }
    }

    fn text(self) -> String {
        match self {
            ComboOf::Plain(c) => c.text.clone(),
            ComboOf::Digit(c) => c.text.clone(),
        }
    }
}

/// The keysyms a key pattern stands for.
fn syms(key: ComboKey) -> Vec<u32> {
    match key {
        ComboKey::Sym(s) => vec![s],
        ComboKey::Digit => (1..=9).map(|d| keysyms::KEY_0 + d).collect(),
    }
}

/// Compiles the bindings; a combination bound to two actions (or twice) is an error.
pub fn compile(k: &Keybindings) -> Result<Bindings, BindingError> {
    let mut list = Vec::new();
    let mut seen: Vec<(Mods, u32, (&'static str, usize), String)> = Vec::new();
    for (name, combos, make) in actions(k) {
        for (index, combo) in combos.iter().enumerate() {
            let (mods, key) = combo.parts();
            for sym in syms(key) {
                if let Some((_, _, other, text)) =
                    seen.iter().find(|(m, s, _, _)| *m == mods && *s == sym)
                {
                    return Err(BindingError {
                        action: name,
                        index,
                        other: *other,
                        message: format!(
                            "{:?} is already bound to {} (as {text:?}): a combination runs one action",
                            combo.text(),
                            other.0
                        ),
                    });
                }
                seen.push((mods, sym, (name, index), combo.text()));
            }
            // `{n}` bindings get their digit at match time.
            list.push(Binding {
                mods,
                key,
                action: make(0),
            });
        }
    }
    Ok(Bindings { list })
}

impl Bindings {
    /// The action of a key press: `sym` is the keysym with modifiers applied, `raw` the one
    /// without (so `super+shift+1` matches although Shift makes it `!`). `None`: the key goes
    /// to the focused window. `Some(Action::None)`: reserved, consumed, does nothing.
    pub fn action(&self, mods: &ModifiersState, sym: u32, raw: u32) -> Option<Action> {
        let (sym, raw) = (normalise_sym(sym), normalise_sym(raw));
        let held = Mods {
            ctrl: mods.ctrl,
            alt: mods.alt,
            shift: mods.shift,
            logo: mods.logo,
        };
        for b in &self.list {
            if b.mods != held {
                continue;
            }
            match b.key {
                ComboKey::Sym(s) if s == sym || s == raw => return Some(b.action),
                ComboKey::Digit => {
                    for candidate in [raw, sym] {
                        if (keysyms::KEY_1..=keysyms::KEY_9).contains(&candidate) {
                            let n = candidate - keysyms::KEY_0;
                            return Some(match b.action {
                                Action::Workspace(_) => Action::Workspace(n),
                                Action::MoveToWorkspace(_) => Action::MoveToWorkspace(n),
                                other => other,
                            });
                        }
                    }
                }
                ComboKey::Sym(_) => {}
            }
        }
        if mods.logo || matches!(sym, keysyms::KEY_Super_L | keysyms::KEY_Super_R) {
            return Some(Action::None);
        }
        None
    }
}

/// Warnings about bindings that are allowed but probably not meant.
pub fn warnings(k: &Keybindings) -> Vec<String> {
    let mut out = Vec::new();
    if k.copy.is_empty() {
        out.push("keybindings.copy is empty: nothing can copy to the global clipboard".into());
    }
    if k.paste.is_empty() {
        out.push("keybindings.paste is empty: nothing can paste from the global clipboard".into());
    }
    for (name, combos, _) in actions(k) {
        for combo in combos {
            let (mods, key) = combo.parts();
            let bare = !(mods.ctrl || mods.alt || mods.logo);
            let typing = matches!(key, ComboKey::Digit)
                || matches!(key, ComboKey::Sym(s) if s < 0x100 || s == keysyms::KEY_Return || s == keysyms::KEY_BackSpace || s == keysyms::KEY_Tab);
            if bare && typing {
                out.push(format!(
                    "keybindings.{name}: {:?} takes a typing key from every qube",
                    combo.text()
                ));
            }
        }
    }
    out
}
