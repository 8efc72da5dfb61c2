//! Password checks through PAM (`pam-client`), one thread per attempt, so the event loop never
//! waits on PAM (pam_unix's fail delay, a module that hangs on the network).
//!
//! Fail closed: the event loop unlocks only on an `Ok` answer that carries the number of the
//! attempt it is waiting for. Any PAM error is an `Err`; a thread that panics or dies still
//! answers `Err` through [`Answer`]'s `Drop`; a second secret prompt (a second factor, a
//! password change) is refused, so such a PAM stack fails rather than unlocking half-checked.

use std::ffi::{CStr, CString};

use pam_client::{ConversationHandler, ErrorCode, Flag};
use smithay::reexports::calloop::channel::Sender;
use zeroize::{Zeroize, Zeroizing};

/// One unlock attempt.
pub struct AuthRequest {
    pub attempt: u64,
    pub service: String,
    pub user: String,
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for AuthRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("AuthRequest")
            .field("attempt", &self.attempt)
            .field("service", &self.service)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Why an attempt failed: what the user sees, and what the log gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub shown: String,
    pub log: String,
}

/// A thread's answer for attempt `attempt`.
#[derive(Debug)]
pub struct AuthOutcome {
    pub attempt: u64,
    pub result: Result<(), AuthError>,
}

/// Sends exactly one answer: the real one, or a failure if the thread ends without one.
struct Answer {
    attempt: u64,
    tx: Sender<AuthOutcome>,
    sent: bool,
}

impl Answer {
    fn send(mut self, result: Result<(), AuthError>) {
        self.sent = true;
        let _ = self.tx.send(AuthOutcome {
            attempt: self.attempt,
            result,
        });
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if !self.sent {
            let _ = self.tx.send(AuthOutcome {
                attempt: self.attempt,
                result: Err(AuthError {
                    shown: "The password check failed; still locked".into(),
                    log: "the PAM thread ended without an answer".into(),
                }),
            });
        }
    }
}

/// Starts the check of `request` on its own thread; the answer arrives on `tx`.
pub fn spawn(request: AuthRequest, tx: Sender<AuthOutcome>) -> std::io::Result<()> {
    let answer = Answer {
        attempt: request.attempt,
        tx,
        sent: false,
    };
    std::thread::Builder::new()
        .name("corral-pam".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                authenticate(&request.service, &request.user, request.password)
            }))
            .unwrap_or_else(|_| {
                Err(AuthError {
                    shown: "The password check failed; still locked".into(),
                    log: "the PAM check panicked".into(),
                })
            });
            answer.send(result);
        })
        .map(|_| ())
}

/// Checks `password` for `user` with the PAM service `service`: `pam_authenticate`, then
/// `pam_acct_mgmt` (an expired or locked account does not unlock).
pub fn authenticate(
    service: &str,
    user: &str,
    password: Zeroizing<String>,
) -> Result<(), AuthError> {
    let conversation = Conversation {
        user: user.to_owned(),
        password: Some(password),
        messages: Vec::new(),
    };
    let mut context = pam_client::Context::new(service, Some(user), conversation)
        .map_err(|e| failure("Cannot start the password check", &e))?;
    let flags = Flag::DISALLOW_NULL_AUTHTOK;
    if let Err(e) = context.authenticate(flags) {
        let shown = match e.code() {
            ErrorCode::AUTH_ERR | ErrorCode::USER_UNKNOWN | ErrorCode::CONV_ERR => {
                "Wrong password".to_owned()
            }
            ErrorCode::MAXTRIES => "Too many attempts".to_owned(),
            _ => "The password check failed".to_owned(),
        };
        return Err(AuthError {
            shown,
            log: format!(
                "pam_authenticate for {user} (service {service}): {e}{}",
                context.conversation().log_suffix()
            ),
        });
    }
    context
        .acct_mgmt(flags)
        .map_err(|e| failure("The account may not log in", &e))?;
    Ok(())
}

fn failure(shown: &str, e: &impl std::fmt::Display) -> AuthError {
    AuthError {
        shown: shown.into(),
        log: format!("{shown}: {e}"),
    }
}

/// Answers PAM's prompts: the user name for a visible prompt, the typed password for the first
/// secret prompt, and nothing for any further secret prompt.
struct Conversation {
    user: String,
    password: Option<Zeroizing<String>>,
    /// PAM's info and error messages, for the log (at most a few).
    messages: Vec<String>,
}

impl Conversation {
    fn log_suffix(&self) -> String {
        if self.messages.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.messages.join("; "))
        }
    }

    fn remember(&mut self, msg: &CStr) {
        if self.messages.len() < 4 {
            let text = msg.to_string_lossy();
            self.messages.push(text.chars().take(200).collect());
        }
    }
}

impl ConversationHandler for Conversation {
    fn prompt_echo_on(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        CString::new(self.user.clone()).map_err(|_| ErrorCode::CONV_ERR)
    }

    fn prompt_echo_off(&mut self, _prompt: &CStr) -> Result<CString, ErrorCode> {
        // One typed secret answers one prompt; a second one gets no answer.
        let password = self.password.take().ok_or(ErrorCode::CONV_ERR)?;
        let mut bytes = password.as_bytes().to_vec();
        match CString::new(bytes.clone()) {
            Ok(c) => {
                bytes.zeroize();
                Ok(c)
            }
            Err(e) => {
                bytes.zeroize();
                let mut inner = e.into_vec();
                inner.zeroize();
                Err(ErrorCode::CONV_ERR)
            }
        }
    }

    fn text_info(&mut self, msg: &CStr) {
        self.remember(msg);
    }

    fn error_msg(&mut self, msg: &CStr) {
        self.remember(msg);
    }

    fn radio_prompt(&mut self, _prompt: &CStr) -> Result<bool, ErrorCode> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_answers_one_secret_prompt_only() {
        let mut c = Conversation {
            user: "alice".into(),
            password: Some(Zeroizing::new("s3cret".into())),
            messages: Vec::new(),
        };
        let prompt = CString::new("Password: ").unwrap();
        assert_eq!(
            c.prompt_echo_on(&prompt).unwrap().to_str().unwrap(),
            "alice"
        );
        assert_eq!(
            c.prompt_echo_off(&prompt).unwrap().to_str().unwrap(),
            "s3cret"
        );
        assert_eq!(c.prompt_echo_off(&prompt), Err(ErrorCode::CONV_ERR));
    }

    #[test]
    fn a_password_with_a_nul_is_refused() {
        let mut c = Conversation {
            user: "alice".into(),
            password: Some(Zeroizing::new("a\0b".into())),
            messages: Vec::new(),
        };
        let prompt = CString::new("Password: ").unwrap();
        assert_eq!(c.prompt_echo_off(&prompt), Err(ErrorCode::CONV_ERR));
    }

    #[test]
    fn an_unknown_service_or_user_never_unlocks() {
        // Whatever this machine's PAM says about a user that does not exist, it is not Ok.
        let r = authenticate(
            "corral-no-such-service",
            "corral-no-such-user-x",
            Zeroizing::new("x".into()),
        );
        assert!(r.is_err());
    }

    #[test]
    fn a_thread_that_ends_without_answering_still_answers_failure() {
        let mut event_loop =
            smithay::reexports::calloop::EventLoop::<Vec<AuthOutcome>>::try_new().unwrap();
        let (tx, rx) = smithay::reexports::calloop::channel::channel();
        event_loop
            .handle()
            .insert_source(rx, |e, _, got: &mut Vec<AuthOutcome>| {
                if let smithay::reexports::calloop::channel::Event::Msg(m) = e {
                    got.push(m);
                }
            })
            .unwrap();
        let answer = Answer {
            attempt: 7,
            tx,
            sent: false,
        };
        std::thread::spawn(move || {
            let _answer = answer;
            panic!("a PAM module blew up");
        })
        .join()
        .unwrap_err();
        let mut got = Vec::new();
        event_loop
            .dispatch(Some(std::time::Duration::from_secs(2)), &mut got)
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].attempt, 7);
        assert!(got[0].result.is_err());
    }
}
