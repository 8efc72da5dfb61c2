//! The domain manager, embedded (`corral --domains`).
//!
//! The compositor owns the domain manager of `corral-domains` as a library: the store, the
//! sandbox backend and the admin socket that `corralctl` talks to. The manager is blocking
//! code, so it runs on its own threads (one per admin client, as `corralctl daemon` does, plus
//! one for autostart); nothing of it runs on the event loop.
//!
//! Every qube the manager starts — `corralctl start`, `run`, `run --dispvm`, autostart, a netvm
//! started for another qube — gets `corral-agent --gui-fd 3` started inside it, through
//! [`Manager::spawn_with_channel`]'s path. The GUI domain's end of that socketpair comes back
//! here over a calloop channel as an [`AgentChannel`], with the qube's name and label **from the
//! store** (decision 2), and is registered exactly like a `--dev-qube` channel. When the qube
//! stops, its agent dies, the channel closes and the qube's windows go.
//!
//! The agent binary is the `corral-agent` next to `corral`; the sandbox binds it read-only into
//! each qube at [`AGENT_IN_QUBE`] and gives the qube a private `/run` with its
//! `XDG_RUNTIME_DIR` ([`QUBE_RUNTIME_DIR`]), where the agent opens `wayland-0`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use corral_domains::manager::{AgentChannel, GuiHook, Manager, Paths, QUBE_WAYLAND_DISPLAY};
use corral_domains::sandbox::{AGENT_IN_QUBE, QUBE_RUNTIME_DIR, SandboxBackend};
use smithay::reexports::calloop::channel::{self, Event};
use smithay::reexports::calloop::generic::Generic;
use smithay::reexports::calloop::{Interest, LoopHandle, Mode, PostAction};

use crate::labels::Label;
use crate::qubes::{DevAgent, QubeIdentity};
use crate::state::State;

/// Where the embedded manager keeps things.
#[derive(Debug, Clone, Default)]
pub struct DomainsConfig {
    /// Qube data [default: `$CORRAL_DATA_DIR`, else `$XDG_DATA_HOME/corral`, …].
    pub data: Option<PathBuf>,
    /// The admin socket [default: `$XDG_RUNTIME_DIR/corral/admin.sock`].
    pub admin_socket: Option<PathBuf>,
}

/// The running embedded manager.
#[derive(Debug)]
pub struct Domains {
    manager: Arc<Manager>,
    socket: PathBuf,
}

impl Domains {
    /// Opens the store, binds the admin socket, starts serving it and the autostart qubes, and
    /// routes every new agent channel into the event loop.
    pub fn start(
        handle: &LoopHandle<'static, State>,
        config: &DomainsConfig,
    ) -> anyhow::Result<Self> {
        let mut paths = Paths::from_env();
        if let Some(data) = &config.data {
            paths.data = data.clone();
        }
        let socket = config
            .admin_socket
            .clone()
            .unwrap_or_else(|| paths.socket());
        let mut backend = SandboxBackend::new(&paths.runtime)
            .with_context(|| format!("the sandbox backend in {}", paths.runtime.display()))?;
        let agent = agent_binary();
        match &agent {
            Some(a) => backend = backend.with_agent(a.clone()),
            None => tracing::error!(
                "corral-agent not found next to corral: qubes will start without GUI"
            ),
        }
        let manager = Arc::new(
            Manager::open(paths.clone(), Arc::new(backend))
                .with_context(|| format!("opening the qube store in {}", paths.data.display()))?,
        );

        if agent.is_some() {
            let (tx, rx) = channel::channel::<AgentChannel>();
            handle
                .insert_source(rx, |event, _, state: &mut State| {
                    if let Event::Msg(channel) = event {
                        state.add_agent_channel(channel);
                    }
                })
                .map_err(|e| anyhow::anyhow!("registering the domain manager's channel: {e}"))?;
            let tx = Mutex::new(tx);
            let (failed_tx, failed_rx) = channel::channel::<(String, String)>();
            handle
                .insert_source(failed_rx, |event, _, state: &mut State| {
                    if let Event::Msg((qube, why)) = event {
                        state.agent_failed_to_start(&qube, &why);
                    }
                })
                .map_err(|e| anyhow::anyhow!("registering the domain manager's channel: {e}"))?;
            let failed_tx = Mutex::new(failed_tx);
            let hook = GuiHook {
                agent_argv: vec![
                    AGENT_IN_QUBE.into(),
                    "--gui-fd".into(),
                    "3".into(),
                    "--socket-name".into(),
                    QUBE_WAYLAND_DISPLAY.into(),
                ],
                runtime_dir: QUBE_RUNTIME_DIR.into(),
                wayland_display: QUBE_WAYLAND_DISPLAY.into(),
                deliver: Box::new(move |channel| {
                    // The loop is gone only when the compositor is exiting.
                    let _ = tx.lock().unwrap().send(channel);
                }),
                failed: Box::new(move |qube, why| {
                    let _ = failed_tx.lock().unwrap().send((qube.to_string(), why));
                }),
            };
            manager
                .set_gui(hook)
                .map_err(|_| anyhow::anyhow!("the GUI hook was already set"))?;
        }

        let listener = Manager::bind(&socket)
            .with_context(|| format!("binding the admin socket {}", socket.display()))?;
        let server = Arc::clone(&manager);
        std::thread::Builder::new()
            .name("corral-admin".into())
            .spawn(move || {
                if let Err(e) = server.serve(listener) {
                    tracing::error!("admin socket: {e}");
                }
            })
            .context("starting the admin thread")?;
        // A qube that should have come up at login and did not is something the user must
        // see, not only the journal: each failure becomes a toast.
        let (autostart_tx, autostart_rx) = channel::channel::<DomainEvent>();
        handle
            .insert_source(autostart_rx, |event, _, state: &mut State| {
                if let Event::Msg(event) = event {
                    state.domain_event(event);
                }
            })
            .map_err(|e| anyhow::anyhow!("registering the autostart channel: {e}"))?;
        let autostart = Arc::clone(&manager);
        std::thread::Builder::new()
            .name("corral-autostart".into())
            .spawn(move || {
                for (name, e) in autostart.autostart() {
                    tracing::error!("autostart of {name} failed: {e}");
                    let _ = autostart_tx.send(DomainEvent::ActionFailed {
                        qube: name,
                        what: "autostart".into(),
                        why: e.to_string(),
                    });
                }
            })
            .context("starting the autostart thread")?;
        tracing::info!(
            "domain manager: data {}, admin socket {}",
            paths.data.display(),
            socket.display()
        );
        Ok(Domains { manager, socket })
    }

    /// Stops every qube (their windows go with their channels) and removes the admin socket.
    /// The manager, for the compositor's own questions (is a qube running?).
    pub fn manager(&self) -> Arc<Manager> {
        self.manager.clone()
    }

    pub fn stop(self) {
        let _ = std::fs::remove_file(&self.socket);
        self.manager.stop_all();
    }
}

/// `corral-agent` next to the running `corral`.
fn agent_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let agent = exe.parent()?.join("corral-agent");
    agent.is_file().then_some(agent)
}

/// The colour a qube's label `name` (store colour `hex`) is drawn in: the theme's for that
/// label, as its window frames are.
pub fn colour_of(name: &str, hex: &str) -> crate::labels::Rgb {
    // The index only matters for built-in labels, which the theme knows by name anyway.
    crate::config::theme::look().label_colour(&Label::from_store(u32::MAX, name, hex))
}

/// A label of the store as the compositor draws it.
pub fn label_from_store(label: &corral_domains::Label) -> Label {
    Label::from_store(label.index, &label.name, &label.color)
}

impl State {
    /// A qube started without its GUI agent: its apps cannot show windows. Say so, in the
    /// qube's colour, rather than leave the user waiting for a window.
    fn agent_failed_to_start(&mut self, qube: &str, why: &str) {
        let colour = self.store_colour(qube);
        self.notify(
            colour,
            format!("[{qube}] runs without GUI"),
            format!("its GUI agent did not start: {why}"),
        );
    }

    /// Registers a channel the domain manager made for a qube it started: the identity is the
    /// store's, attached by the manager when it created the socketpair; the agent says nothing
    /// about it.
    pub fn add_agent_channel(&mut self, channel: AgentChannel) {
        let identity = QubeIdentity {
            name: channel.qube,
            label: label_from_store(&channel.label),
        };
        let name = identity.name.to_string();
        let agent = DevAgent {
            child: channel.child,
        };
        if let Err(e) = self.add_channel(identity, channel.stream, Some(agent)) {
            tracing::error!("qube {name}: registering its GUI channel: {e:#}");
        }
    }
}

/// SIGTERM, SIGINT and SIGHUP end the event loop (so the embedded manager can stop its qubes)
/// instead of killing the process. The handler only writes a byte to a pipe that the loop
/// watches.
pub fn exit_on_signals(handle: &LoopHandle<'static, State>) -> anyhow::Result<()> {
    let (read, write) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::CLOEXEC | rustix::pipe::PipeFlags::NONBLOCK,
    )
    .context("creating the signal pipe")?;
    // The write end lives for the rest of the process.
    let write: OwnedFd = write;
    SIGNAL_PIPE.store(write.as_raw_fd(), std::sync::atomic::Ordering::SeqCst);
    std::mem::forget(write);
    handle
        .insert_source(
            Generic::new(read, Interest::READ, Mode::Level),
            |_, fd, state: &mut State| {
                let mut buf = [0u8; 16];
                // SAFETY: `fd` is our pipe's read end, owned by the source.
                let _ = rustix::io::read(unsafe { fd.get_mut() }, &mut buf);
                tracing::info!("signal received: stopping");
                state.running = false;
                Ok(PostAction::Continue)
            },
        )
        .map_err(|e| anyhow::anyhow!("registering the signal pipe: {e}"))?;
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        // SAFETY: installs a handler that only calls write(2), which is async-signal-safe, on
        // an fd stored before; sigaction is given a zeroed, then filled, struct.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(sig, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error()).context("installing a signal handler");
            }
        }
    }
    Ok(())
}

static SIGNAL_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

extern "C" fn on_signal(_: libc::c_int) {
    let fd = SIGNAL_PIPE.load(std::sync::atomic::Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) of one byte from a static buffer; async-signal-safe.
        unsafe {
            libc::write(fd, b"x".as_ptr().cast(), 1);
        }
    }
}

/// One qube and its applications, as `corral msg apps` reports it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct QubeApps {
    pub name: String,
    pub class: String,
    /// `Running`, `Halted`, `Paused`.
    pub state: String,
    pub label: String,
    pub colour: String,
    /// A disposable template: its apps can also start in a new disposable.
    #[serde(default)]
    pub template_for_dispvms: bool,
    pub apps: Vec<corral_domains::apps::AppEntry>,
    /// Why the list could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the domain manager's threads report back to the event loop.
#[derive(Debug)]
pub enum DomainEvent {
    /// The launcher's list of qubes and their applications, for its opening with this token.
    LauncherList(u64, Result<Vec<QubeApps>, String>),
    /// A launch from the launcher failed.
    LaunchFailed {
        qube: String,
        app: String,
        why: String,
    },
    /// A pause, shutdown… from the panel's menu failed.
    ActionFailed {
        qube: String,
        what: String,
        why: String,
    },
}

/// Runs `work` on a named thread of its own (the manager's calls block: files, processes).
pub fn in_background(name: &str, work: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name.into()).spawn(work) {
        tracing::warn!("no thread for {name}: {e}");
    }
}

impl State {
    /// The sender whose events reach [`State::domain_event`] on the event loop (registered on
    /// first use).
    pub fn domain_events(&mut self) -> channel::Sender<DomainEvent> {
        if let Some(tx) = &self.domain_events {
            return tx.clone();
        }
        let (tx, rx) = channel::channel::<DomainEvent>();
        if let Err(e) = self
            .handle
            .insert_source(rx, |event, _, state: &mut State| {
                if let Event::Msg(event) = event {
                    state.domain_event(event);
                }
            })
        {
            tracing::error!("registering the domain event channel: {e}");
        }
        self.domain_events = Some(tx.clone());
        tx
    }

    fn domain_event(&mut self, event: DomainEvent) {
        match event {
            DomainEvent::LauncherList(token, list) => {
                self.launcher.set_qubes(token, list);
                self.queue_redraw();
            }
            DomainEvent::LaunchFailed { qube, app, why } => {
                let colour = self.store_colour(&qube);
                self.notify(colour, format!("[{qube}] could not start {app}"), why);
            }
            DomainEvent::ActionFailed { qube, what, why } => {
                let colour = self.store_colour(&qube);
                self.notify(colour, format!("[{qube}]: {what} failed"), why);
            }
        }
    }

    /// A qube's label colour from the store (the GUI domain's when unknown).
    fn store_colour(&self, qube: &str) -> crate::labels::Rgb {
        self.domain_manager
            .as_ref()
            .and_then(|m| {
                let model = m.model();
                let q = model.get(qube).ok()?;
                let label = label_from_store(model.label(&q.label).ok()?);
                Some(crate::config::theme::look().label_colour(&label))
            })
            .unwrap_or(crate::labels::GUI_DOMAIN_LABEL.colour)
    }
}

/// Every qube but dom0 (or only `only`) with its state, colour and applications.
pub fn qube_apps(manager: &Arc<Manager>, only: Option<&str>) -> Result<Vec<QubeApps>, String> {
    let mut out = Vec::new();
    let model = manager.model();
    for q in manager.list() {
        if q.class == corral_domains::Class::AdminVM.to_string()
            || only.is_some_and(|wanted| wanted != q.name)
        {
            continue;
        }
        let (apps, error) = match manager.apps(&q.name) {
            Ok(apps) => (apps, None),
            Err(e) => (Vec::new(), Some(e.to_string())),
        };
        let template_for_dispvms = model.get(&q.name).is_ok_and(|m| m.template_for_dispvms);
        out.push(QubeApps {
            template_for_dispvms,
            name: q.name,
            class: q.class,
            state: q.state,
            label: q.label,
            colour: q.color,
            apps,
            error,
        });
    }
    if let Some(wanted) = only
        && out.is_empty()
    {
        return Err(format!("there is no qube {wanted:?}"));
    }
    Ok(out)
}

/// Answers an `apps` or `launch` request on its own thread and writes the reply to `stream`.
pub fn answer_in_background(
    manager: Arc<Manager>,
    request: crate::ipc::Request,
    stream: std::os::unix::net::UnixStream,
) {
    in_background("corral-ipc-domains", move || {
        let answer = match manager_request(&manager, request) {
            Ok(value) => crate::ipc::Reply {
                ok: true,
                result: Some(value),
                error: None,
            },
            Err(e) => crate::ipc::server::error_reply(e),
        };
        crate::ipc::server::reply(&stream, &answer);
    });
}

fn manager_request(
    manager: &Arc<Manager>,
    request: crate::ipc::Request,
) -> Result<serde_json::Value, String> {
    use corral_domains::api;
    match request {
        crate::ipc::Request::Apps { qube } => {
            serde_json::to_value(qube_apps(manager, qube.as_deref())?).map_err(|e| e.to_string())
        }
        crate::ipc::Request::Launch { qube, app, dispvm } => manager
            .handle(
                api::Request::Launch {
                    name: qube,
                    app,
                    dispvm,
                },
                Vec::new(),
            )
            .map_err(|e| e.to_string()),
        other => Err(format!("not a domain manager request: {other:?}")),
    }
}
