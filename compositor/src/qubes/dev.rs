//! `--dev-qube NAME:LABEL`: a channel with an explicit identity and an agent process on its
//! other end, until the domain manager exists.
//!
//! The compositor creates the socketpair, so it knows which qube the channel belongs to: the
//! identity comes from the command line (the person starting the compositor), never from the
//! agent. The agent inherits the other end (`--gui-fd N`).

use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use corral_domains::QubeName;
use corral_protocol::channel::unix::share_with_child;

use super::QubeIdentity;
use crate::labels::Label;

/// The agent started when `--dev-agent-command` is not given.
pub const DEFAULT_AGENT_COMMAND: &str = "corral-agent --gui-fd {fd}";

/// A parsed `--dev-qube NAME:LABEL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevQubeSpec {
    pub identity: QubeIdentity,
}

impl std::str::FromStr for DevQubeSpec {
    type Err = String;

    fn from_str(untrusted: &str) -> Result<Self, String> {
        let (name, label) = untrusted
            .split_once(':')
            .ok_or_else(|| format!("{untrusted:?} is not NAME:LABEL (for example work:blue)"))?;
        let name = QubeName::new(name).map_err(|e| e.to_string())?;
        let label = Label::parse(label)?;
        Ok(DevQubeSpec {
            identity: QubeIdentity { name, label },
        })
    }
}

/// A parsed `--dev-listen NAME:LABEL:PATH`: a Unix socket at PATH that agents of that one qube
/// connect to (`corral-agent --connect PATH`), so they survive a compositor restart and come
/// back. The identity comes from the flag; PATH must be reachable from that qube only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevListenSpec {
    pub identity: QubeIdentity,
    pub path: PathBuf,
}

impl std::str::FromStr for DevListenSpec {
    type Err = String;

    fn from_str(untrusted: &str) -> Result<Self, String> {
        let mut parts = untrusted.splitn(3, ':');
        let (Some(name), Some(label), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{untrusted:?} is not NAME:LABEL:PATH (for example work:blue:/run/corral/work.sock)"
            ));
        };
        let DevQubeSpec { identity } = format!("{name}:{label}").parse()?;
        if path.is_empty() {
            return Err("the socket path is empty".into());
        }
        Ok(DevListenSpec {
            identity,
            path: PathBuf::from(path),
        })
    }
}

/// Binds `spec.path` (mode 0600; a stale socket is replaced, a live one is refused) and makes
/// every connection on it a channel of `spec.identity`, one at a time: a second connection while
/// one is live is closed at once, so the qube cannot open parallel channels.
///
/// The socket is bound inside a fresh 0700 directory beside `path`, made 0600 there and only
/// then renamed into place: at no moment can another user connect to it (binding at `path` and
/// chmod-ing afterwards would leave a window with the umask's permissions).
fn bind_private(path: &std::path::Path) -> anyhow::Result<std::os::unix::net::UnixListener> {
    use anyhow::Context;
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let staging = parent.join(format!(".corral-bind-{}", std::process::id()));
    // A leftover from a crashed run of a process with our pid: ours to remove.
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&staging)
        .with_context(|| format!("creating {}", staging.display()))?;
    let bound = (|| {
        let inner = staging.join("socket");
        let listener = std::os::unix::net::UnixListener::bind(&inner)
            .with_context(|| format!("binding {}", path.display()))?;
        std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} private", path.display()))?;
        std::fs::rename(&inner, path)
            .with_context(|| format!("moving the socket to {}", path.display()))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&staging);
    bound
}

pub fn listen_dev_qube(
    handle: &smithay::reexports::calloop::LoopHandle<'static, crate::state::State>,
    spec: &DevListenSpec,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use smithay::reexports::calloop::generic::Generic;
    use smithay::reexports::calloop::{Interest, Mode, PostAction};
    let path = &spec.path;
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!("another compositor is serving {}", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    let listener = bind_private(path)?;
    listener.set_nonblocking(true)?;
    let identity = spec.identity.clone();
    handle
        .insert_source(
            Generic::new(listener, Interest::READ, Mode::Level),
            move |_, listener, state: &mut crate::state::State| {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let live = state
                                .qubes
                                .conns
                                .values()
                                .any(|c| c.identity.name == identity.name);
                            if live {
                                tracing::warn!(
                                    "qube {} already has a channel; refusing another",
                                    identity.name
                                );
                                continue;
                            }
                            if let Err(e) = state.add_channel(identity.clone(), stream, None) {
                                tracing::warn!("channel of {}: {e:#}", identity.name);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            tracing::warn!("accept on {}: {e}", identity.name);
                            break;
                        }
                    }
                }
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| anyhow::anyhow!("registering {}: {e}", path.display()))?;
    tracing::info!(
        "agents of {} connect to {}",
        spec.identity.name,
        path.display()
    );
    Ok(())
}

/// An agent process started by the compositor. Killed and reaped when dropped.
#[derive(Debug)]
pub struct DevAgent {
    pub child: Child,
}

impl DevAgent {
    /// Starts `command_line` (a template with `{fd}`, `{name}` and `{label}`) with the agent's
    /// end of the channel inherited.
    pub fn spawn(
        command_line: &str,
        identity: &QubeIdentity,
        agent_end: UnixStream,
    ) -> std::io::Result<DevAgent> {
        let fd = share_with_child(&agent_end)?;
        let words = split_command(command_line)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let words: Vec<String> = words
            .into_iter()
            .map(|w| {
                w.replace("{fd}", &fd.to_string())
                    .replace("{name}", identity.name.as_str())
                    .replace("{label}", identity.label.name)
            })
            .collect();
        let Some((program, args)) = words.split_first() else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the agent command is empty",
            ));
        };
        let program = resolve_program(program);
        let mut command = Command::new(&program);
        command.args(args).stdin(Stdio::null());
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: the closure runs in the child between fork and exec, where only
            // async-signal-safe calls are allowed; prctl(PR_SET_PDEATHSIG) is a single system
            // call that allocates nothing. It makes the agent die with the compositor, so a
            // killed compositor leaves no agent behind.
            unsafe {
                command.pre_exec(|| {
                    rustix::process::set_parent_process_death_signal(Some(
                        rustix::process::Signal::KILL,
                    ))
                    .map_err(std::io::Error::from)
                });
            }
        }
        let child = command.spawn().map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("starting agent {}: {e}", program.display()),
            )
        });
        // The child has its copy (or failed); ours must go so that the channel closes when the
        // agent exits.
        drop(agent_end);
        Ok(DevAgent { child: child? })
    }
}

impl Drop for DevAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts an app of the GUI domain itself on the trusted local Wayland socket `display`.
pub fn spawn_gui_app(command_line: &str, display: &str) -> std::io::Result<DevAgent> {
    let words = split_command(command_line)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let Some((program, args)) = words.split_first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the command is empty",
        ));
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env("WAYLAND_DISPLAY", display)
        .env_remove("DISPLAY")
        .stdin(Stdio::null());
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: as in `DevAgent::spawn`: one async-signal-safe system call between fork and
        // exec, so the app dies with the compositor.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .map_err(std::io::Error::from)
            });
        }
    }
    Ok(DevAgent {
        child: command.spawn()?,
    })
}

/// A bare program name is looked up next to the running `corral` first, then on PATH.
fn resolve_program(program: &str) -> PathBuf {
    if program.contains('/') {
        return PathBuf::from(program);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        let beside = dir.join(program);
        if beside.is_file() {
            return beside;
        }
    }
    PathBuf::from(program)
}

/// The command line that `--dev-agent-command` (or the default) gives for one qube, for
/// messages and `--help`.
pub fn agent_command_line(template: Option<&str>) -> &str {
    template.unwrap_or(DEFAULT_AGENT_COMMAND)
}

/// Splits a command line into words: whitespace separates, single and double quotes group,
/// a backslash escapes the next character. No variables, no globbing.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (q, '\\') if q != Some('\'') => {
                word.push(chars.next().ok_or("a backslash ends the command")?);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote in the agent command".into());
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_sockets_are_private_from_the_start_and_leave_no_staging_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("corral-dev-bind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("work.sock");
        let listener = bind_private(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        UnixStream::connect(&path).unwrap();
        assert!(
            listener.accept().is_ok(),
            "the renamed socket is the bound one"
        );
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from("work.sock")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn dev_qube_specs_are_validated() {
        let spec: DevQubeSpec = "work:blue".parse().unwrap();
        assert_eq!(spec.identity.name.as_str(), "work");
        assert_eq!(spec.identity.label.name, "blue");
        assert!("work".parse::<DevQubeSpec>().is_err());
        assert!("dom0:black".parse::<DevQubeSpec>().is_err());
        assert!("9lives:red".parse::<DevQubeSpec>().is_err());
        assert!("work:pink".parse::<DevQubeSpec>().is_err());
    }

    #[test]
    fn dev_listen_specs_are_validated() {
        let spec: DevListenSpec = "work:blue:/run/x:y.sock".parse().unwrap();
        assert_eq!(spec.identity.name.as_str(), "work");
        assert_eq!(spec.path, PathBuf::from("/run/x:y.sock"));
        assert!("work:blue".parse::<DevListenSpec>().is_err());
        assert!("work:blue:".parse::<DevListenSpec>().is_err());
        assert!("dom0:black:/tmp/s".parse::<DevListenSpec>().is_err());
        assert!("work:pink:/tmp/s".parse::<DevListenSpec>().is_err());
    }

    #[test]
    fn commands_split_like_a_shell_would_for_simple_cases() {
        assert_eq!(
            split_command("a --gui-fd {fd} 'b c' \"d e\" f\\ g").unwrap(),
            vec!["a", "--gui-fd", "{fd}", "b c", "d e", "f g"]
        );
        assert!(split_command("a 'b").is_err());
    }
}
