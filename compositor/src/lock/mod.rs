//! The lock screen, built into the compositor, in the trusted layer.
//!
//! While the session is locked:
//! - every output shows only the lock screen: the built-in one ([`ui`]: a panel with the user
//!   name, one dot per typed character — never the text — and a status line), or the surface a
//!   GUI-domain locker (swaylock, through ext-session-lock-v1, [`session_lock`]) gave that
//!   output. No qube content, no frames, no toasts. An output added while locked is covered
//!   from its first frame (QSB-68), because the rule is applied per output at draw time, not
//!   to a list of outputs remembered at lock time.
//! - every key and pointer event goes to the lock screen or to the locker's surface, none to
//!   any qube: keyboard focus is taken from the qube window when the lock engages (it gets its
//!   key releases and `keyboard_leave`, QSB-104), the pointer's grab and focus are dropped, and
//!   `State::sync_focus` will not give focus back to any window until the session is unlocked.
//!
//! Fail closed. The only ways out are [`State::unlock`] after PAM accepted the password of the
//! *current* attempt ([`auth`], on its own thread, so the event loop never waits for PAM), or a
//! live locker that holds the lock asking to unlock. A PAM error, a thread that dies, a panic
//! caught while drawing or handling a key, or a locker that crashes all leave the session
//! locked; a crashed locker's lock is "abandoned": the built-in screen takes over and a new
//! locker may take it.
//!
//! The lock engages on the lock shortcut, on `corral msg lock`, and after `--idle-lock`
//! seconds without input.

pub mod auth;
pub mod logind;
pub mod session_lock;
pub mod ui;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use smithay::input::keyboard::{FilterResult, Keycode, keysyms};
use smithay::reexports::calloop::RegistrationToken;
use smithay::reexports::calloop::channel::{self, Sender};
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::utils::SERIAL_COUNTER;
use smithay::wayland::session_lock::SessionLockManagerState;
use zeroize::Zeroizing;

use crate::input::FocusTarget;
use crate::layout::Rect;
use crate::state::State;
use auth::{AuthOutcome, AuthRequest};
use session_lock::ActiveLocker;

/// The longest password the lock screen keeps (characters); further keys are ignored.
pub const MAX_PASSWORD_CHARS: usize = 512;

/// Settings of the lock screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockConfig {
    /// Whose password unlocks: the user running the compositor unless `--lock-user` says.
    pub user: String,
    /// The PAM service (`/etc/pam.d/<service>`).
    pub pam_service: String,
    /// Lock after this long without input; `None`: never.
    pub idle_timeout: Option<Duration>,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            user: current_user_name(),
            pam_service: DEFAULT_PAM_SERVICE.into(),
            idle_timeout: None,
        }
    }
}

/// The PAM service the lock screen uses by default (`config/pam.d/corral`).
pub const DEFAULT_PAM_SERVICE: &str = "corral";

/// The name of the user running this process (from the password database, else `$USER`).
pub fn current_user_name() -> String {
    let uid = rustix::process::getuid().as_raw();
    let mut pwd: libc::passwd = unsafe_zeroed_passwd();
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: `pwd`, `buf` and `result` are valid for the call; getpwuid_r writes at most
    // `buf.len()` bytes into `buf` and points `result` at `pwd` (or sets it to null).
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: on success `pw_name` points to a NUL-terminated string inside `buf`.
        let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
        if let Ok(name) = name.to_str() {
            return name.to_owned();
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "root".into())
}

fn unsafe_zeroed_passwd() -> libc::passwd {
    // SAFETY: `passwd` is a plain C struct of pointers and integers; all-zero is a valid value
    // (null pointers), and getpwuid_r overwrites it before anything reads it.
    unsafe { std::mem::zeroed() }
}

/// Who holds the lock now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// The compositor's own lock screen (shortcut, IPC, idle).
    Builtin,
    /// A live GUI-domain locker (ext-session-lock-v1).
    Locker,
    /// A locker that went away without unlocking: the built-in screen stands in, and a new
    /// locker may take over.
    Abandoned,
}

/// Why the lock engaged (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockReason {
    Shortcut,
    Ipc,
    Idle,
    Locker,
    /// logind's `PrepareForSleep(true)`.
    Suspend,
    /// logind's `Lock` for this session (`loginctl lock-session`).
    Logind,
}

/// What `corral msg lock-state` reports: never the password, only how many characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub locked: bool,
    pub holder: Option<Holder>,
    pub user: String,
    pub pam_service: String,
    /// Characters typed so far (dots on screen).
    pub typed: usize,
    /// A PAM check is running.
    pub checking: bool,
    /// Wrong passwords and failed checks since the lock engaged.
    pub failures: u32,
    /// The status line shown under the password field.
    pub message: Option<String>,
    /// Outputs covered by a locker's own surface.
    pub locker_surfaces: usize,
    pub idle_timeout_ms: Option<u64>,
}

/// The lock state machine.
pub struct Lock {
    pub config: LockConfig,
    locked: bool,
    holder: Option<Holder>,
    password: Zeroizing<String>,
    /// The attempt whose answer is awaited; answers for any other number are dropped.
    attempt: u64,
    checking: bool,
    failures: u32,
    message: Option<String>,
    /// Where PAM threads send their answers (registered on the event loop at first use).
    auth_tx: Option<Sender<AuthOutcome>>,
    auth_token: Option<RegistrationToken>,
    pub(crate) manager: SessionLockManagerState,
    pub(crate) locker: Option<ActiveLocker>,
    /// The lock object whose `unlock_and_destroy` is being dispatched (see [`session_lock`]).
    pub(crate) unlock_request:
        Option<smithay::reexports::wayland_protocols::ext::session_lock::v1::server::ext_session_lock_v1::ExtSessionLockV1>,
    last_activity: Instant,
    /// logind's delay inhibitor for sleep ([`logind`]): closed once locked before a suspend.
    pub(crate) sleep_inhibitor: Option<std::os::fd::OwnedFd>,
    /// A suspend waits for the locked frame to be on every monitor, at most until this time
    /// (see [`logind`]).
    pub(crate) sleep_release_deadline: Option<Instant>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Lock")
            .field("locked", &self.locked)
            .field("holder", &self.holder)
            .field("typed", &self.password.chars().count())
            .field("checking", &self.checking)
            .finish_non_exhaustive()
    }
}

impl Lock {
    /// The lock, with the ext-session-lock global on the GUI domain's display (whose only
    /// clients come from the trusted local socket, never from a qube).
    pub fn new(display: &DisplayHandle, config: LockConfig) -> Lock {
        Lock {
            config,
            locked: false,
            holder: None,
            password: empty_password(),
            attempt: 0,
            checking: false,
            failures: 0,
            message: None,
            auth_tx: None,
            auth_token: None,
            manager: session_lock::manager_global(display),
            locker: None,
            unlock_request: None,
            last_activity: Instant::now(),
            sleep_inhibitor: None,
            sleep_release_deadline: None,
        }
    }

    pub fn is_locked(&self) -> bool {
        self.locked
    }

    pub fn holder(&self) -> Option<Holder> {
        self.holder
    }

    /// When the idle lock is due, if it is armed.
    pub fn next_deadline(&self) -> Option<Instant> {
        let idle = if self.locked {
            None
        } else {
            self.config.idle_timeout.map(|t| self.last_activity + t)
        };
        match (idle, self.sleep_release_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Input happened (device or injected).
    pub fn activity(&mut self) {
        self.last_activity = Instant::now();
    }

    pub fn typed(&self) -> usize {
        self.password.chars().count()
    }

    /// What the lock screen shows (no password, only its length).
    pub fn view(&self) -> Option<ui::PanelKey> {
        if !self.locked {
            return None;
        }
        Some(panel_key(
            &self.config.user,
            &self.password,
            self.checking,
            self.message.clone(),
            self.holder == Some(Holder::Locker),
        ))
    }

    #[cfg(test)]
    pub(crate) fn panel_key_for_test(user: &str, password: &str) -> ui::PanelKey {
        panel_key(user, password, false, None, false)
    }

    pub fn info(&self) -> LockInfo {
        LockInfo {
            locked: self.locked,
            holder: self.holder,
            user: self.config.user.clone(),
            pam_service: self.config.pam_service.clone(),
            typed: self.typed(),
            checking: self.checking,
            failures: self.failures,
            message: self.message.clone(),
            locker_surfaces: self.locker.as_ref().map_or(0, |l| {
                l.surfaces.iter().filter(|s| s.surface.alive()).count()
            }),
            idle_timeout_ms: self.config.idle_timeout.map(|t| t.as_millis() as u64),
        }
    }

    /// Edits the password field with one key press. Returns `true` for Return (submit).
    fn edit(&mut self, sym: u32, utf8: &str, ctrl: bool) -> bool {
        match edit_field(&mut self.password, sym, utf8, ctrl) {
            Edit::Submit => return true,
            Edit::Cancel if self.checking => {
                // Gives up waiting for a PAM check that hangs: its answer will be dropped.
                self.attempt += 1;
                self.checking = false;
                self.message = Some("Check cancelled".into());
            }
            Edit::Cancel | Edit::Changed => {}
        }
        false
    }

    /// Stops waiting for the PAM check in flight: its answer will be dropped.
    pub(crate) fn cancel_attempt(&mut self) {
        if self.checking {
            self.attempt += 1;
            self.checking = false;
        }
        self.clear_password();
    }

    fn clear_password(&mut self) {
        // Zeroizing<String>::clear does not wipe the bytes; replacing drops (and wipes) them.
        self.password = empty_password();
    }
}

/// What a key press did to the password field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edit {
    Changed,
    Submit,
    Cancel,
}

/// Applies one key press to the password field: printable characters are appended (at most
/// [`MAX_PASSWORD_CHARS`]), BackSpace removes one, Ctrl+U and Escape empty it, Return submits.
fn edit_field(password: &mut Zeroizing<String>, sym: u32, utf8: &str, ctrl: bool) -> Edit {
    match sym {
        keysyms::KEY_Return | keysyms::KEY_KP_Enter => return Edit::Submit,
        keysyms::KEY_BackSpace => {
            // Copied rather than popped, so the removed character is wiped with the old buffer.
            let keep = password.chars().count().saturating_sub(1);
            let mut shorter = empty_password();
            shorter.extend(password.chars().take(keep));
            *password = shorter;
        }
        keysyms::KEY_Escape => {
            *password = empty_password();
            return Edit::Cancel;
        }
        keysyms::KEY_u | keysyms::KEY_U if ctrl => *password = empty_password(),
        _ if ctrl => {}
        _ => {
            for ch in utf8.chars().filter(|c| !c.is_control()) {
                if password.chars().count() >= MAX_PASSWORD_CHARS {
                    break;
                }
                password.push(ch);
            }
        }
    }
    Edit::Changed
}

/// An empty password field with room for the longest password, so typing never reallocates
/// (a reallocation would leave a copy of the text behind, unwiped).
fn empty_password() -> Zeroizing<String> {
    Zeroizing::new(String::with_capacity(MAX_PASSWORD_CHARS * 4))
}

/// The panel for a password: only its length goes in.
fn panel_key(
    user: &str,
    password: &str,
    checking: bool,
    message: Option<String>,
    locker: bool,
) -> ui::PanelKey {
    ui::PanelKey {
        user: user.to_owned(),
        dots: password.chars().count().min(ui::MAX_DOTS),
        checking,
        message,
        locker,
    }
}

/// One key press as the lock screen sees it.
struct LockKey {
    sym: u32,
    utf8: String,
    ctrl: bool,
}

impl State {
    /// Locks the session with the built-in lock screen (no-op when already locked).
    pub fn lock(&mut self, reason: LockReason) {
        self.engage_lock(Holder::Builtin, reason);
    }

    /// Engages the lock: from here no qube gets input or pixels.
    pub(crate) fn engage_lock(&mut self, holder: Holder, reason: LockReason) {
        if self.lock.locked {
            return;
        }
        tracing::info!("session locked ({reason:?})");
        self.lock.locked = true;
        self.lock.holder = Some(holder);
        self.lock.clear_password();
        self.lock.failures = 0;
        self.lock.message = None;
        self.lock.checking = false;
        // Keys held now were pressed for the old focus; their releases are not ours to keep.
        self.input.suppressed.clear();
        self.input.drag = None;
        let serial = SERIAL_COUNTER.next_serial();
        let time = self.now_ms();
        // A held button keeps Smithay's implicit grab on a window: end it first.
        let pointer = self.pointer.clone();
        pointer.unset_grab(self, serial, time);
        pointer.motion(
            self,
            None,
            &smithay::input::pointer::MotionEvent {
                location: self.input.pointer.into(),
                serial,
                time,
            },
        );
        pointer.frame(self);
        self.input.buttons.clear();
        // The focused qube gets its releases and keyboard_leave (QSB-104), then nothing more.
        let keyboard = self.keyboard.clone();
        keyboard.set_focus(self, None, serial);
        self.queue_redraw();
    }

    /// Ends the lock. Only called after PAM accepted the current attempt, or when the live
    /// locker holding the lock unlocks.
    pub(crate) fn unlock(&mut self) {
        if !self.lock.locked {
            return;
        }
        tracing::info!("session unlocked");
        self.lock.locked = false;
        self.lock.holder = None;
        self.lock.clear_password();
        self.lock.checking = false;
        self.lock.attempt += 1;
        self.lock.message = None;
        self.lock.failures = 0;
        self.lock.locker = None;
        self.lock.activity();
        let serial = SERIAL_COUNTER.next_serial();
        let keyboard = self.keyboard.clone();
        keyboard.set_focus(self, None, serial);
        // Focus goes back to the window the user had focused (decision 5: the user's choice).
        self.sync_focus();
        let (x, y) = self.input.pointer;
        let time = self.now_ms();
        self.pointer_motion(x, y, time);
        self.queue_redraw();
    }

    /// The keyboard focus while locked: the live locker's surface on the output under the
    /// pointer (else its first), or nothing. Called by `sync_focus` while locked.
    pub(crate) fn sync_lock_focus(&mut self) {
        let wanted = self.locker_focus_target();
        let current = self.keyboard.current_focus();
        if wanted == current {
            return;
        }
        let serial = SERIAL_COUNTER.next_serial();
        let keyboard = self.keyboard.clone();
        keyboard.set_focus(self, wanted, serial);
    }

    fn locker_focus_target(&self) -> Option<FocusTarget> {
        if self.lock.holder != Some(Holder::Locker) {
            return None;
        }
        let (x, y) = self.input.pointer;
        let surface = self
            .lock_surface_at(x, y)
            .map(|(s, _)| s)
            .or_else(|| self.lock.locker.as_ref()?.first_surface())?;
        Some(FocusTarget::Local {
            win: session_lock::LOCK_SURFACE_WIN,
            surface,
        })
    }

    /// Every key while locked comes here. Returns whether the key was taken (always, while
    /// locked); updates the idle clock either way.
    pub fn lock_intercepts_key(&mut self, keycode: u32, pressed: bool, time: u32) -> bool {
        self.lock.activity();
        if !self.lock.locked {
            return false;
        }
        self.sync_lock_focus();
        let serial = SERIAL_COUNTER.next_serial();
        let state = if pressed {
            smithay::backend::input::KeyState::Pressed
        } else {
            smithay::backend::input::KeyState::Released
        };
        let locker_holds = self.lock.holder == Some(Holder::Locker);
        let to_locker = locker_holds
            && matches!(self.keyboard.current_focus(), Some(FocusTarget::Local { win, .. }) if win == session_lock::LOCK_SURFACE_WIN);
        let keyboard = self.keyboard.clone();
        // XKB state is kept up to date either way; the key reaches a client only if that client
        // is the locker holding the lock (keyboard focus is never a qube while locked).
        let key = keyboard.input(
            self,
            Keycode::new(keycode + 8),
            state,
            serial,
            time,
            |_, mods, handle| {
                if to_locker {
                    return FilterResult::Forward;
                }
                // A live locker asks for the password itself; until it shows a surface, keys
                // go nowhere.
                if !pressed || locker_holds {
                    return FilterResult::Intercept(None);
                }
                FilterResult::Intercept(Some(LockKey {
                    sym: handle.modified_sym().raw(),
                    utf8: handle
                        .modified_sym()
                        .key_char()
                        .map(String::from)
                        .unwrap_or_default(),
                    ctrl: mods.ctrl,
                }))
            },
        );
        if let Some(Some(key)) = key {
            // A panic in the password field must not unlock anything: it is caught, the field
            // is emptied, and the screen stays locked.
            let lock = &mut self.lock;
            let submit = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                lock.edit(key.sym, &key.utf8, key.ctrl)
            }));
            match submit {
                Ok(true) => self.submit_password(),
                Ok(false) => {}
                Err(_) => {
                    tracing::error!("the lock screen's key handling panicked; staying locked");
                    self.lock.clear_password();
                    self.lock.message = Some("Internal error; still locked".into());
                }
            }
            self.queue_redraw();
        }
        true
    }

    /// Pointer motion while locked: only the live locker's surface may see it.
    pub fn lock_intercepts_motion(&mut self, x: f64, y: f64, time: u32) -> bool {
        self.lock.activity();
        if !self.lock.locked {
            return false;
        }
        let (x, y) = self.clamp_to_outputs(x, y);
        self.input.pointer = (x, y);
        let under = self.lock_surface_at(x, y).map(|(surface, origin)| {
            (
                FocusTarget::Local {
                    win: session_lock::LOCK_SURFACE_WIN,
                    surface,
                },
                origin,
            )
        });
        let under = if self.lock.holder == Some(Holder::Locker) {
            under
        } else {
            None
        };
        let serial = SERIAL_COUNTER.next_serial();
        let pointer = self.pointer.clone();
        pointer.motion(
            self,
            under,
            &smithay::input::pointer::MotionEvent {
                location: (x, y).into(),
                serial,
                time,
            },
        );
        pointer.frame(self);
        true
    }

    /// A button while locked: to the locker's surface under the pointer, if any.
    pub fn lock_intercepts_button(&mut self, button: u32, pressed: bool, time: u32) -> bool {
        self.lock.activity();
        if !self.lock.locked {
            return false;
        }
        let on_locker = matches!(self.pointer.current_focus(), Some(FocusTarget::Local { win, .. }) if win == session_lock::LOCK_SURFACE_WIN);
        if on_locker && self.lock.holder == Some(Holder::Locker) {
            let pointer = self.pointer.clone();
            pointer.button(
                self,
                &smithay::input::pointer::ButtonEvent {
                    serial: SERIAL_COUNTER.next_serial(),
                    time,
                    button,
                    state: if pressed {
                        smithay::backend::input::ButtonState::Pressed
                    } else {
                        smithay::backend::input::ButtonState::Released
                    },
                },
            );
            pointer.frame(self);
        }
        true
    }

    /// Scrolling while locked: dropped (the locker gets none either; it needs none).
    pub fn lock_intercepts_axis(&mut self) -> bool {
        self.lock.activity();
        self.lock.locked
    }

    /// Hands the typed password to a PAM thread.
    fn submit_password(&mut self) {
        if self.lock.checking {
            return;
        }
        if self.lock.password.is_empty() {
            self.lock.message = Some("Type your password, then Return".into());
            return;
        }
        let Some(tx) = self.auth_sender() else {
            self.lock.message = Some("Cannot check passwords now; still locked".into());
            return;
        };
        self.lock.attempt += 1;
        self.lock.checking = true;
        self.lock.message = Some("Checking…".into());
        let password = std::mem::replace(&mut self.lock.password, empty_password());
        let request = AuthRequest {
            attempt: self.lock.attempt,
            service: self.lock.config.pam_service.clone(),
            user: self.lock.config.user.clone(),
            password,
        };
        if let Err(e) = auth::spawn(request, tx) {
            tracing::error!("starting the PAM thread: {e}");
            self.lock.checking = false;
            self.lock.failures += 1;
            self.lock.message = Some("Cannot check passwords now; still locked".into());
        }
    }

    /// The event loop's end of the PAM threads' channel, registered at first use.
    fn auth_sender(&mut self) -> Option<Sender<AuthOutcome>> {
        if let Some(tx) = &self.lock.auth_tx {
            return Some(tx.clone());
        }
        let (tx, rx) = channel::channel::<AuthOutcome>();
        let token = self
            .handle
            .insert_source(rx, |event, _, state: &mut State| {
                if let channel::Event::Msg(outcome) = event {
                    state.auth_finished(outcome);
                }
            })
            .map_err(|e| tracing::error!("registering the PAM channel: {e}"))
            .ok()?;
        self.lock.auth_token = Some(token);
        self.lock.auth_tx = Some(tx.clone());
        Some(tx)
    }

    /// A PAM thread's answer. Only `Ok` for the attempt now awaited unlocks.
    fn auth_finished(&mut self, outcome: AuthOutcome) {
        if outcome.attempt != self.lock.attempt || !self.lock.checking || !self.lock.locked {
            tracing::info!("dropping the answer to an old unlock attempt");
            return;
        }
        self.lock.checking = false;
        match outcome.result {
            Ok(()) if self.lock.holder != Some(Holder::Locker) => self.unlock(),
            Ok(()) => {
                // A live locker holds the lock: it decides (cannot happen: keys go to it).
                self.lock.message = Some("A locker holds the session".into());
            }
            Err(e) => {
                self.lock.failures = self.lock.failures.saturating_add(1);
                tracing::warn!("unlock attempt failed: {}", e.log);
                self.lock.message = Some(e.shown);
            }
        }
        self.queue_redraw();
    }

    /// Called from the loop between events: the idle lock.
    pub fn lock_tick(&mut self) {
        self.sleep_release_tick();
        if !self.lock.locked
            && let Some(due) = self.lock.next_deadline()
            && Instant::now() >= due
        {
            self.lock(LockReason::Idle);
        }
    }

    /// The lock surface under a global point and that output's origin.
    pub(crate) fn lock_surface_at(
        &self,
        x: f64,
        y: f64,
    ) -> Option<(
        smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
        smithay::utils::Point<f64, smithay::utils::Logical>,
    )> {
        let locker = self.lock.locker.as_ref()?;
        let output = self.layout.output_at(x, y)?;
        let rect = self.layout.outputs().get(output)?.rect;
        let surface = locker.surface_for(&self.wayland, self.layout.outputs(), rect)?;
        Some((surface, (f64::from(rect.x), f64::from(rect.y)).into()))
    }

    /// What the renderer needs while locked; `None` when unlocked.
    pub fn lock_frame(&self) -> Option<ui::LockFrame> {
        let panel = self.lock.view()?;
        Some(ui::LockFrame {
            panel,
            surfaces: self.lock_surfaces(),
        })
    }

    /// The lock surfaces to draw, per output rectangle.
    pub fn lock_surfaces(
        &self,
    ) -> Vec<(
        Rect,
        smithay::reexports::wayland_server::protocol::wl_surface::WlSurface,
    )> {
        let Some(locker) = self.lock.locker.as_ref() else {
            return Vec::new();
        };
        if self.lock.holder != Some(Holder::Locker) {
            return Vec::new();
        }
        self.layout
            .outputs()
            .iter()
            .filter_map(|o| {
                let s = locker.surface_for(&self.wayland, self.layout.outputs(), o.rect)?;
                Some((o.rect, s))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[(u32, &str, bool)]) -> (String, Vec<Edit>) {
        let mut p = Zeroizing::new(String::new());
        let edits = keys
            .iter()
            .map(|(sym, utf8, ctrl)| edit_field(&mut p, *sym, utf8, *ctrl))
            .collect();
        (p.to_string(), edits)
    }

    #[test]
    fn the_field_takes_printable_text_and_editing_keys() {
        let (p, e) = typed(&[
            (keysyms::KEY_a, "a", false),
            (keysyms::KEY_B, "B", false),
            (keysyms::KEY_eacute, "é", false),
            (keysyms::KEY_BackSpace, "\u{8}", false),
            (keysyms::KEY_Tab, "\t", false),
            (keysyms::KEY_c, "c", true),
            (keysyms::KEY_Return, "\r", false),
        ]);
        assert_eq!(p, "aB");
        assert_eq!(e.last(), Some(&Edit::Submit));
        let (p, _) = typed(&[(keysyms::KEY_a, "a", false), (keysyms::KEY_u, "u", true)]);
        assert_eq!(p, "");
        let (p, e) = typed(&[
            (keysyms::KEY_a, "a", false),
            (keysyms::KEY_Escape, "", false),
        ]);
        assert_eq!((p.as_str(), e[1]), ("", Edit::Cancel));
    }

    #[test]
    fn the_field_is_bounded() {
        let mut p = Zeroizing::new(String::new());
        for _ in 0..MAX_PASSWORD_CHARS + 50 {
            edit_field(&mut p, keysyms::KEY_x, "x", false);
        }
        assert_eq!(p.chars().count(), MAX_PASSWORD_CHARS);
    }
}
