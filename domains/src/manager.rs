//! The domain manager: the one owner of the store, driving a [`Backend`], serving the admin API.
//!
//! Use it as a library (the compositor embeds it: [`Manager::open`], then call methods or
//! [`Manager::serve`] on a listener), or run `corralctl daemon`.

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{self, ErrorReply, QubeInfo, Reply, Request};
use crate::apps::AppEntry;
use crate::backend::{Backend, BackendError, PowerState, StartSpec, Stdio3, VolumeSpec};
use crate::model::{Class, ModelError};
use crate::store::{Store, StoreError};
use crate::{Label, QubeName};

/// Default shutdown timeout, as Qubes' `qvm-shutdown --wait` default.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// Most clients served at once.
pub const MAX_CLIENTS: usize = 64;

/// Where the manager keeps data and runtime state.
#[derive(Debug, Clone)]
pub struct Paths {
    /// Qube data (`$XDG_DATA_HOME/corral`).
    pub data: PathBuf,
    /// Sockets and per-qube runtime state (`$XDG_RUNTIME_DIR/corral`).
    pub runtime: PathBuf,
}

impl Paths {
    /// From `CORRAL_DATA_DIR`/`CORRAL_RUNTIME_DIR`, else the XDG directories, else (as root)
    /// `/var/lib/corral` and `/run/corral`.
    pub fn from_env() -> Paths {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let root = rustix::process::geteuid().is_root();
        let data = env("CORRAL_DATA_DIR")
            .or_else(|| env("XDG_DATA_HOME").map(|d| d.join("corral")))
            .or_else(|| {
                (!root)
                    .then(|| env("HOME").map(|h| h.join(".local/share/corral")))
                    .flatten()
            })
            .unwrap_or_else(|| PathBuf::from("/var/lib/corral"));
        let runtime = env("CORRAL_RUNTIME_DIR")
            .or_else(|| env("XDG_RUNTIME_DIR").map(|d| d.join("corral")))
            .unwrap_or_else(|| PathBuf::from("/run/corral"));
        Paths { data, runtime }
    }

    /// The admin socket.
    pub fn socket(&self) -> PathBuf {
        self.runtime.join("admin.sock")
    }
}

/// A failure of a manager operation; `kind` maps to the API's error kinds.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{0}")]
    State(String),
    #[error("{0}")]
    BadRequest(String),
}

impl From<ModelError> for ManagerError {
    fn from(e: ModelError) -> Self {
        ManagerError::Store(StoreError::Model(e))
    }
}

impl ManagerError {
    fn reply(&self) -> ErrorReply {
        let kind = match self {
            ManagerError::Store(StoreError::Model(ModelError::NoSuchQube(_))) => "no-such-qube",
            ManagerError::Store(StoreError::Model(ModelError::InUse { .. })) => "in-use",
            ManagerError::Store(StoreError::Model(_)) => "invalid",
            ManagerError::Store(_) => "store",
            ManagerError::Backend(
                BackendError::NotRunning(_)
                | BackendError::AlreadyRunning(_)
                | BackendError::Paused(_),
            ) => "state",
            ManagerError::Backend(_) => "backend",
            ManagerError::State(_) => "state",
            ManagerError::BadRequest(_) => "bad-request",
        };
        ErrorReply {
            kind: kind.into(),
            message: self.to_string(),
        }
    }
}

type Result<T> = std::result::Result<T, ManagerError>;

/// A GUI channel to a qube's agent: the caller's end, and who is at the other end, taken from
/// the store (never from the qube).
#[derive(Debug)]
pub struct AgentChannel {
    pub stream: UnixStream,
    pub qube: QubeName,
    pub label: Label,
    /// The agent process (as seen from the GUI domain); reap it.
    pub child: std::process::Child,
}

/// The Wayland socket name of a qube's GUI agent, in the qube's `XDG_RUNTIME_DIR`.
pub const QUBE_WAYLAND_DISPLAY: &str = "wayland-0";

/// How long a command run in a GUI qube waits for its agent's Wayland socket to appear (the
/// agent is started with the qube and may still be coming up).
pub const AGENT_SOCKET_WAIT: Duration = Duration::from_secs(5);

/// The [`GuiHook::failed`] callback: the qube, and why its agent did not start.
pub type AgentFailed = Box<dyn Fn(&QubeName, String) + Send + Sync>;

/// What makes the manager start a GUI agent in every qube it starts (the compositor sets it
/// when it embeds the manager): the agent's argument vector inside the qube (it gets its end of
/// the channel as fd 3), where it puts its Wayland socket, and where the other end goes.
pub struct GuiHook {
    /// The agent command in the qube, e.g. `[AGENT_IN_QUBE, "--gui-fd", "3", "--socket-name",
    /// "wayland-0"]`.
    pub agent_argv: Vec<String>,
    /// `XDG_RUNTIME_DIR` inside the qube (the agent's and every `run` command's).
    pub runtime_dir: String,
    /// `WAYLAND_DISPLAY` of `run` commands: the agent's socket name.
    pub wayland_display: String,
    /// Receives the GUI domain's end of each new agent channel, with the qube's identity from
    /// the store. Called on the manager's threads; it must not block.
    pub deliver: Box<dyn Fn(AgentChannel) + Send + Sync>,
    /// Told when a qube started but its agent could not be (the qube runs without GUI), with
    /// the reason, so the user hears of it. Called on the manager's threads; must not block.
    pub failed: AgentFailed,
}

impl std::fmt::Debug for GuiHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuiHook")
            .field("agent_argv", &self.agent_argv)
            .field("runtime_dir", &self.runtime_dir)
            .field("wayland_display", &self.wayland_display)
            .finish_non_exhaustive()
    }
}

/// The domain manager.
#[derive(Debug)]
pub struct Manager {
    store: Mutex<Store>,
    backend: Arc<dyn Backend>,
    paths: Paths,
    gui: std::sync::OnceLock<GuiHook>,
    /// Qubes this manager was asked to stop (shutdown, kill, a disposable's end), until their
    /// next start: their agents are expected to go.
    stopping: Mutex<std::collections::HashSet<String>>,
    /// Qubes being started right now: `list` shows them `Transient`, as qvm-ls does.
    starting: Mutex<std::collections::HashSet<String>>,
    /// The network chain (see `docs/networking.md`); unset: qubes get no network.
    net: std::sync::OnceLock<crate::net::chain::Chain>,
}

fn parse_name(s: &str) -> Result<QubeName> {
    Ok(QubeName::new(s).map_err(ModelError::from)?)
}

impl Manager {
    /// Opens the store (taking its lock) and cleans up what a previous run left: disposables
    /// (they never outlive their manager) and their volumes.
    pub fn open(paths: Paths, backend: Arc<dyn Backend>) -> Result<Manager> {
        let mut store = Store::open(&paths.data)?;
        let stale: Vec<String> = store
            .model()
            .qubes
            .iter()
            .filter(|(_, q)| q.class == Class::DispVM)
            .map(|(n, _)| n.to_string())
            .collect();
        for n in stale {
            store.remove_qube(&n)?;
        }
        Ok(Manager {
            store: Mutex::new(store),
            backend,
            paths,
            gui: std::sync::OnceLock::new(),
            stopping: Mutex::new(std::collections::HashSet::new()),
            starting: Mutex::new(std::collections::HashSet::new()),
            net: std::sync::OnceLock::new(),
        })
        .and_then(|m| {
            // `DATA/network.json` turns the network chain on.
            let cfg_path = m.paths.data.join("network.json");
            match fs::read(&cfg_path) {
                Ok(bytes) => {
                    let cfg = serde_json::from_slice(&bytes)
                        .map_err(|e| e.to_string())
                        .and_then(|c| m.enable_network(c));
                    cfg.map_err(|msg| StoreError::Corrupt {
                        path: cfg_path,
                        msg,
                    })?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(StoreError::Io {
                        path: cfg_path,
                        source: e,
                    }
                    .into());
                }
            }
            Ok(m)
        })
    }

    /// Turns the network chain on (once, before qubes start): qubes started from now on are
    /// linked to their netvm, netvms route and enforce their clients' firewall rules.
    pub fn enable_network(&self, cfg: crate::net::NetConfig) -> std::result::Result<(), String> {
        let chain = crate::net::chain::Chain::new(cfg).map_err(|e| e.to_string())?;
        if !rustix::process::geteuid().is_root() {
            // Unprivileged: the qubes' namespaces are reachable through the backend's shared
            // user namespace, and the uplink can only be user-mode networking.
            let Some(userns) = self.backend.net_userns() else {
                return Err(
                    "the network chain needs root, or a backend whose qubes share one \
                            user namespace of the manager's (the sandbox backend)"
                        .into(),
                );
            };
            if chain.config().uplink.is_some() {
                return Err(
                    "without root the uplink must be user_uplink (slirp4netns): a \
                            veth into another namespace needs root"
                        .into(),
                );
            }
            if !crate::net::link::set_userns(userns) {
                return Err("the network is already configured".into());
            }
        }
        self.net
            .set(chain)
            .map_err(|_| "the network is already configured".to_owned())
    }

    /// The network chain, if on.
    pub fn network(&self) -> Option<&crate::net::chain::Chain> {
        self.net.get()
    }

    /// Links a just-started qube into the chain. A failure leaves it (or its clients) without
    /// network, and is reported on stderr.
    fn net_started(&self, n: &QubeName) {
        if let Some(chain) = self.net.get() {
            let b = &self.backend;
            let m = self.model();
            if let Err(e) = chain.started(&|| self.model(), n, &|q| b.netns_pid(q)) {
                eprintln!("corral-domains: {n}: network: {e}");
            }
            if m.effective_netvm(n).is_some()
                && let Err(e) = self.write_resolv_conf(n, chain.config().virtual_dns)
            {
                eprintln!("corral-domains: {n}: writing /etc/resolv.conf: {e}");
            }
        }
    }

    /// Points the qube's resolver at the virtual DNS servers, as Qubes' network scripts do in
    /// every qube (a symlink there, e.g. to systemd-resolved's stub, is replaced).
    fn write_resolv_conf(&self, n: &QubeName, dns: [std::net::Ipv4Addr; 2]) -> Result<()> {
        let argv: Vec<String> = [
            "sh",
            "-c",
            "rm -f /etc/resolv.conf && printf 'nameserver %s\\nnameserver %s\\n' \"$1\" \"$2\" > /etc/resolv.conf",
            "corral-dns",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .chain(dns.iter().map(ToString::to_string))
        .collect();
        let mut child = self.backend.exec(n, &argv, Stdio3::null(), Vec::new())?;
        let st = child.wait().map_err(|e| BackendError::Io {
            what: "waiting for the resolv.conf writer".into(),
            source: e,
        })?;
        if !st.success() {
            return Err(ManagerError::Backend(BackendError::Failed(format!(
                "the resolv.conf writer exited with {st}"
            ))));
        }
        Ok(())
    }

    /// Drops a stopped qube from its netvm's ruleset (its links went with its namespace).
    fn net_stopped(&self, n: &QubeName) {
        if let Some(chain) = self.net.get() {
            let b = &self.backend;
            if let Err(e) = chain.stopped(&|| self.model(), n, &|q| b.netns_pid(q)) {
                eprintln!("corral-domains: {n}: network: {e}");
            }
        }
    }

    /// The running qubes whose netvm is `n`.
    fn running_clients(&self, n: &QubeName) -> Vec<String> {
        let m = self.model();
        m.qubes
            .keys()
            .filter(|c| {
                m.effective_netvm(c).as_ref() == Some(n) && self.state_of(c) != PowerState::Halted
            })
            .map(ToString::to_string)
            .collect()
    }

    /// A qube's firewall rules (the default list when it has none of its own).
    pub fn firewall_list(&self, name: &str) -> Result<Vec<crate::net::Rule>> {
        let n = parse_name(name)?;
        let m = self.model();
        m.get(name)?;
        Ok(crate::net::chain::rules_of(&m, &n))
    }

    /// Changes a qube's rule list (stored durably first), then applies it if the qube runs.
    /// `change` gets the current list (the default one when unset).
    fn firewall_change(
        &self,
        name: &str,
        change: impl FnOnce(&mut Vec<crate::net::Rule>) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let n = parse_name(name)?;
        self.update(|m| {
            let mut rules = crate::net::chain::rules_of(m, &n);
            m.get(name)?;
            change(&mut rules).map_err(ModelError::Invalid)?;
            m.qubes.get_mut(&n).expect("checked").firewall = Some(rules);
            Ok(())
        })?;
        self.firewall_apply(&n)
    }

    fn firewall_apply(&self, n: &QubeName) -> Result<()> {
        let Some(chain) = self.net.get() else {
            return Ok(());
        };
        let m = self.model();
        let netvm_runs = m
            .effective_netvm(n)
            .is_some_and(|v| self.state_of(&v) != PowerState::Halted);
        if self.state_of(n) == PowerState::Halted || !netvm_runs {
            return Ok(());
        }
        let b = &self.backend;
        chain.refresh(&|| self.model(), n, &|q| b.netns_pid(q)).map_err(|e| {
            ManagerError::State(format!(
                "{n}: the rules are stored, but applying them failed ({e}); it has no network until they apply"
            ))
        })
    }

    /// A running netvm's `vpn-interface` feature changed: its ruleset follows at once.
    fn net_feature_changed(&self, name: &str, key: &str) -> Result<()> {
        let Some(chain) = self.net.get() else {
            return Ok(());
        };
        let n = parse_name(name)?;
        if key != crate::net::chain::VPN_FEATURE || self.state_of(&n) == PowerState::Halted {
            return Ok(());
        }
        let b = &self.backend;
        chain
            .refresh_router(&|| self.model(), &n, &|q| b.netns_pid(q))
            .map_err(|e| {
                ManagerError::State(format!(
                    "{name}: the feature is stored, but its ruleset failed ({e}); its clients have no network until it applies"
                ))
            })
    }

    /// Adds a rule (text as `qvm-firewall` takes it) at the end or before rule `before`.
    /// Expired rules are dropped from the list at the same time.
    pub fn firewall_add(
        &self,
        name: &str,
        untrusted_rule: &str,
        before: Option<usize>,
    ) -> Result<()> {
        let now = crate::net::chain::now();
        let rule = crate::net::Rule::parse(untrusted_rule, now)
            .map_err(|e| ManagerError::BadRequest(e.to_string()))?;
        self.firewall_change(name, |rules| {
            let at = before.unwrap_or(rules.len());
            if at > rules.len() {
                return Err(format!(
                    "there is no rule {at} (the list has {})",
                    rules.len()
                ));
            }
            rules.insert(at, rule);
            rules.retain(|r| !r.expired(now));
            crate::net::rules::check_list(rules).map_err(|e| e.to_string())
        })
    }

    /// Removes rule number `index` (from 0, as `list` numbers them).
    pub fn firewall_del(&self, name: &str, index: usize) -> Result<()> {
        self.firewall_change(name, |rules| {
            if index >= rules.len() {
                return Err(format!(
                    "there is no rule {index} (the list has {})",
                    rules.len()
                ));
            }
            rules.remove(index);
            Ok(())
        })
    }

    /// Back to the default list (a single accept).
    pub fn firewall_reset(&self, name: &str) -> Result<()> {
        let n = parse_name(name)?;
        self.update(|m| {
            m.get(name)?;
            m.qubes.get_mut(&n).expect("checked").firewall = None;
            Ok(())
        })?;
        self.firewall_apply(&n)
    }

    /// From now on every qube this manager starts gets a GUI agent, whose channel goes to
    /// `hook.deliver`; commands given to `run` get `WAYLAND_DISPLAY` and `XDG_RUNTIME_DIR` and
    /// wait (at most [`AGENT_SOCKET_WAIT`]) for the agent's socket. Set once, before serving.
    pub fn set_gui(&self, hook: GuiHook) -> std::result::Result<(), GuiHook> {
        self.gui.set(hook)
    }

    /// Starts the GUI agent in a just-started qube and hands its channel on. A failure leaves
    /// the qube running without GUI and is reported on stderr.
    fn start_agent(&self, n: &QubeName) {
        let Some(hook) = self.gui.get() else {
            return;
        };
        let mut argv = vec![
            "env".to_owned(),
            format!("XDG_RUNTIME_DIR={}", hook.runtime_dir),
        ];
        argv.extend(hook.agent_argv.iter().cloned());
        // The agent's log goes where ours goes.
        let stderr = io::stderr().as_fd().try_clone_to_owned().ok();
        let stdio = Stdio3 {
            stdin: None,
            stdout: None,
            stderr,
        };
        match self.channel_in(n, &argv, stdio) {
            Ok(ch) => (hook.deliver)(ch),
            Err(e) => {
                eprintln!("corral-domains: {n}: starting the GUI agent: {e}");
                (hook.failed)(n, e.to_string());
            }
        }
    }

    /// `argv` as `run` starts it: in a GUI qube, with the agent's environment, after waiting
    /// for the agent's socket.
    fn gui_argv(&self, argv: &[String]) -> Vec<String> {
        let Some(hook) = self.gui.get() else {
            return argv.to_vec();
        };
        let tries = AGENT_SOCKET_WAIT.as_millis() / 10;
        let mut out = vec![
            "env".to_owned(),
            format!("XDG_RUNTIME_DIR={}", hook.runtime_dir),
            format!("WAYLAND_DISPLAY={}", hook.wayland_display),
            "sh".into(),
            "-c".into(),
            format!(
                "i=0; while [ ! -S \"$XDG_RUNTIME_DIR/$WAYLAND_DISPLAY\" ] && [ $i -lt {tries} ]; \
                 do sleep 0.01; i=$((i+1)); done; exec \"$@\""
            ),
            "corral-run".into(),
        ];
        out.extend(argv.iter().cloned());
        out
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// A snapshot of the model.
    pub fn model(&self) -> crate::Model {
        self.store.lock().unwrap().model().clone()
    }

    fn state_of(&self, name: &QubeName) -> PowerState {
        self.backend.state(name)
    }

    /// The state `ls` shows, in qvm-ls's words: `Running`, `Halted`, `Paused`, `Transient`
    /// (starting) or `Halting` (asked to stop, not stopped yet).
    fn shown_state(&self, name: &QubeName) -> String {
        let state = self.state_of(name);
        if self.starting.lock().unwrap().contains(name.as_str()) {
            return "Transient".into();
        }
        if state != PowerState::Halted && self.stopping.lock().unwrap().contains(name.as_str()) {
            return "Halting".into();
        }
        format!("{state:?}")
    }

    /// All qubes, the admin domain first.
    pub fn list(&self) -> Vec<QubeInfo> {
        let m = self.model();
        let black = m
            .label("black")
            .map(|l| l.color.clone())
            .unwrap_or_default();
        let mut out = vec![QubeInfo {
            name: crate::ADMIN_NAME.into(),
            class: Class::AdminVM.to_string(),
            state: "Running".into(),
            label: "black".into(),
            color: black,
            template: None,
            netvm: None,
        }];
        for (n, q) in &m.qubes {
            out.push(QubeInfo {
                name: n.to_string(),
                class: q.class.to_string(),
                state: self.shown_state(n),
                label: q.label.clone(),
                color: m
                    .label(&q.label)
                    .map(|l| l.color.clone())
                    .unwrap_or_default(),
                template: q.template.as_ref().map(|t| t.to_string()),
                netvm: m.effective_netvm(n).map(|t| t.to_string()),
            });
        }
        out
    }

    /// Creates a qube. A TemplateVM gets an empty `host`-style root; a StandaloneVM created
    /// with a template gets a copy of that template's root.
    pub fn create(
        &self,
        name: &str,
        class: &str,
        template: Option<&str>,
        label: &str,
        netvm: Option<&str>,
    ) -> Result<()> {
        let name = parse_name(name)?;
        let class: Class = class.parse()?;
        let template = template.map(parse_name).transpose()?;
        let mut store = self.store.lock().unwrap();
        let (record_template, copy_from) = match class {
            Class::StandaloneVM => {
                let src = match &template {
                    Some(t) => {
                        let tq = store.model().get(t.as_str())?;
                        if !matches!(tq.class, Class::TemplateVM | Class::StandaloneVM) {
                            return Err(ModelError::Invalid(format!(
                                "a standalone copies a TemplateVM or StandaloneVM; {t} is a {}",
                                tq.class
                            ))
                            .into());
                        }
                        Some(store.volume_dir(tq.qid).join("root"))
                    }
                    None => None,
                };
                (None, src)
            }
            _ => (template, None),
        };
        let mut probe = store.model().clone();
        let qid = probe
            .create(name.clone(), class, record_template.clone(), label)?
            .qid;
        if let Some(n) = netvm {
            probe.set_pref(name.as_str(), "netvm", n)?;
        }
        probe.validate()?;
        // Volumes first (an unreferenced volume is collected at the next open), then record.
        let vol = store.volume_dir(qid);
        if matches!(class, Class::TemplateVM | Class::StandaloneVM) {
            match copy_from {
                Some(src) => {
                    fs::create_dir_all(&vol).map_err(|e| StoreError::Io {
                        path: vol.clone(),
                        source: e,
                    })?;
                    crate::store::copy_tree_durably(&src, &vol.join("root"))?;
                }
                None => self.backend.init_template_root(&vol.join("root"))?,
            }
        }
        store.update(|m| {
            m.create(name.clone(), class, record_template, label)?;
            if let Some(n) = netvm {
                m.set_pref(name.as_str(), "netvm", n)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn halted(&self, name: &str) -> Result<QubeName> {
        let n = parse_name(name)?;
        if self.state_of(&n) != PowerState::Halted {
            return Err(ManagerError::State(format!(
                "{name} is running; shut it down first"
            )));
        }
        Ok(n)
    }

    pub fn clone_qube(&self, src: &str, dst: &str) -> Result<()> {
        let dst = parse_name(dst)?;
        let mut store = self.store.lock().unwrap();
        store.model().get(src)?;
        self.halted(src)?;
        store.clone_qube(src, dst)?;
        Ok(())
    }

    pub fn rename(&self, old: &str, new: &str) -> Result<()> {
        let new = parse_name(new)?;
        let mut store = self.store.lock().unwrap();
        store.model().get(old)?;
        self.halted(old)?;
        store.update(|m| m.rename(old, new))?;
        Ok(())
    }

    /// Removes a qube; refused while it runs or while others depend on it.
    pub fn remove(&self, name: &str) -> Result<()> {
        let mut store = self.store.lock().unwrap();
        store.model().get(name)?;
        self.halted(name)?;
        store.remove_qube(name)?;
        Ok(())
    }

    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut crate::Model) -> std::result::Result<T, ModelError>,
    ) -> Result<T> {
        Ok(self.store.lock().unwrap().update(f)?)
    }

    fn start_spec(store: &Store, name: &QubeName) -> Result<StartSpec> {
        let m = store.model();
        let q = m.get(name.as_str())?;
        let own = |kind: &str| store.volume_dir(q.qid).join(kind);
        let (root, home) = match q.class {
            Class::TemplateVM | Class::StandaloneVM => (
                VolumeSpec::Persistent(own("root")),
                VolumeSpec::Persistent(own("private")),
            ),
            Class::AppVM => {
                let t = m.get(q.template.as_ref().expect("validated").as_str())?;
                (
                    VolumeSpec::Volatile {
                        lower: store.volume_dir(t.qid).join("root"),
                    },
                    VolumeSpec::Persistent(own("private")),
                )
            }
            Class::DispVM => {
                let dvm = m.get(q.template.as_ref().expect("validated").as_str())?;
                let root = match &dvm.template {
                    Some(t) => store.volume_dir(m.get(t.as_str())?.qid).join("root"),
                    None => store.volume_dir(dvm.qid).join("root"),
                };
                (
                    VolumeSpec::Volatile { lower: root },
                    VolumeSpec::Volatile {
                        lower: store.volume_dir(dvm.qid).join("private"),
                    },
                )
            }
            Class::AdminVM => {
                return Err(ManagerError::BadRequest("dom0 cannot be started".into()));
            }
        };
        Ok(StartSpec {
            name: name.clone(),
            qid: q.qid,
            root,
            home,
            memory_mb: q.memory,
            vcpus: q.vcpus,
            net_admin: crate::net::chain::feature_on(
                q.features
                    .get(crate::net::chain::NET_ADMIN_FEATURE)
                    .map(String::as_str),
            ),
        })
    }

    /// The applications `name` offers (see [`crate::apps`]): read from its template's root, so
    /// a stopped qube has them too, narrowed by its `menu-items` feature.
    pub fn apps(&self, name: &str) -> Result<Vec<AppEntry>> {
        let n = parse_name(name)?;
        let (root, menu_items) = {
            let store = self.store.lock().unwrap();
            let menu_items = store
                .model()
                .get(name)?
                .features
                .get(crate::apps::MENU_ITEMS_FEATURE)
                .cloned();
            let root = match Self::start_spec(&store, &n)?.root {
                VolumeSpec::Persistent(p) | VolumeSpec::Volatile { lower: p } => Some(p),
                VolumeSpec::Empty => None,
            };
            (root, menu_items)
        };
        let Some(root) = root else {
            return Ok(Vec::new());
        };
        let tree = self.backend.applications_root(&root);
        let all = crate::apps::scan(&tree).map_err(|e| BackendError::Io {
            what: format!("reading the applications of {name} in {}", tree.display()),
            source: e,
        })?;
        Ok(crate::apps::menu(all, menu_items.as_deref()))
    }

    /// The command line of application `app` of `name`.
    fn app_argv(&self, name: &str, app: &str) -> Result<Vec<String>> {
        if !crate::apps::valid_id(app) {
            return Err(ManagerError::BadRequest(format!(
                "{app:?} is not an application id (letters, digits, '.', '_', '-')"
            )));
        }
        self.apps(name)?
            .into_iter()
            .find(|a| a.id == app)
            .map(|a| a.argv)
            .ok_or_else(|| {
                ManagerError::BadRequest(format!(
                    "{name} has no application {app} (see `corralctl apps {name}`)"
                ))
            })
    }

    /// Starts a qube and, first, its netvm chain. Starting a running qube is an error.
    pub fn start(&self, name: &str) -> Result<()> {
        let n = parse_name(name)?;
        let m = self.model();
        m.get(name)?;
        if self.state_of(&n) != PowerState::Halted {
            return Err(ManagerError::Backend(BackendError::AlreadyRunning(
                name.into(),
            )));
        }
        if let Some(net) = m.effective_netvm(&n)
            && self.state_of(&net) == PowerState::Halted
        {
            // Another client may be starting the same netvm right now: that is fine.
            self.ensure_running(&net)?;
        }
        self.stopping.lock().unwrap().remove(name);
        // Only for `ls`: a concurrent start of the same qube waits on the store in start_now
        // and then finds it running. Whoever marked it unmarks it.
        let marked = self.starting.lock().unwrap().insert(name.to_owned());
        let started = self.start_now(&n);
        if marked {
            self.starting.lock().unwrap().remove(name);
        }
        started
    }

    fn start_now(&self, n: &QubeName) -> Result<()> {
        // Hold the store while starting, so a concurrent remove/rename/clone (which check that
        // the qube is halted under the same lock) cannot pull its volumes away mid-start.
        {
            let store = self.store.lock().unwrap();
            let spec = Self::start_spec(&store, n)?;
            self.backend.start(&spec)?;
        }
        self.net_started(n);
        self.start_agent(n);
        Ok(())
    }

    fn ensure_running(&self, n: &QubeName) -> Result<()> {
        match self.state_of(n) {
            PowerState::Running => Ok(()),
            PowerState::Paused => Err(ManagerError::Backend(BackendError::Paused(n.to_string()))),
            PowerState::Halted => match self.start(n.as_str()) {
                Err(ManagerError::Backend(BackendError::AlreadyRunning(_))) => Ok(()),
                r => r,
            },
        }
    }

    /// Shuts a qube down (timeout, then kill). With `wait: false` it returns at once and the
    /// shutdown completes in the background.
    pub fn shutdown(self: &Arc<Self>, name: &str, wait: bool, timeout: Duration) -> Result<()> {
        self.shutdown_with(name, wait, timeout, false)
    }

    /// [`Manager::shutdown`]; a netvm with running clients is refused unless `force` (its
    /// clients then lose their network).
    pub fn shutdown_with(
        self: &Arc<Self>,
        name: &str,
        wait: bool,
        timeout: Duration,
        force: bool,
    ) -> Result<()> {
        let n = parse_name(name)?;
        self.model().get(name)?;
        if self.state_of(&n) == PowerState::Halted {
            return Err(ManagerError::Backend(BackendError::NotRunning(name.into())));
        }
        let clients = self.running_clients(&n);
        if !force && !clients.is_empty() {
            return Err(ManagerError::State(format!(
                "{name} is the netvm of running qubes: {}; shut them down first, or force it",
                clients.join(", ")
            )));
        }
        self.mark_stopping(&n);
        if wait {
            let r = self.backend.shutdown(&n, timeout);
            self.net_stopped(&n);
            r?;
        } else {
            let me = Arc::clone(self);
            std::thread::spawn(move || {
                let _ = me.backend.shutdown(&n, timeout);
                me.net_stopped(&n);
            });
        }
        Ok(())
    }

    pub fn kill(&self, name: &str) -> Result<()> {
        let n = parse_name(name)?;
        self.model().get(name)?;
        self.mark_stopping(&n);
        let r = self.backend.kill(&n);
        self.net_stopped(&n);
        Ok(r?)
    }

    pub fn pause(&self, name: &str) -> Result<()> {
        let n = parse_name(name)?;
        self.model().get(name)?;
        Ok(self.backend.pause(&n)?)
    }

    pub fn unpause(&self, name: &str) -> Result<()> {
        let n = parse_name(name)?;
        self.model().get(name)?;
        Ok(self.backend.unpause(&n)?)
    }

    /// Runs `argv` in `name`, starting it if needed. Returns the process (as seen from here).
    pub fn run(
        &self,
        name: &str,
        argv: &[String],
        stdio: Stdio3,
        extra_fds: Vec<OwnedFd>,
    ) -> Result<std::process::Child> {
        let n = parse_name(name)?;
        self.model().get(name)?;
        self.ensure_running(&n)?;
        Ok(self
            .backend
            .exec(&n, &self.gui_argv(argv), stdio, extra_fds)?)
    }

    /// Runs `argv` in `name` as its root with only the network capabilities, over the qube's
    /// own namespaces ([`Backend::exec_root`]); the qube needs the `net-admin` feature.
    /// Started if needed.
    pub fn run_root(
        &self,
        name: &str,
        argv: &[String],
        stdio: Stdio3,
    ) -> Result<std::process::Child> {
        let n = parse_name(name)?;
        let on = crate::net::chain::feature_on(
            self.model()
                .get(name)?
                .features
                .get(crate::net::chain::NET_ADMIN_FEATURE)
                .map(String::as_str),
        );
        if !on {
            return Err(ManagerError::BadRequest(format!(
                "{name} has no net-admin feature; its root gets no capabilities \
                 (corralctl features {name} net-admin 1, then restart it)"
            )));
        }
        self.ensure_running(&n)?;
        Ok(self.backend.exec_root(&n, argv, stdio)?)
    }

    /// Starts `argv` in `name` (starting the qube if needed) with one end of a new socketpair
    /// as its fd 3 (`CORRAL_FDS=1` in its environment), and returns the other end with the
    /// qube's name and label from the store — the GUI channel of decision 2.
    pub fn spawn_with_channel(&self, name: &str, argv: &[String]) -> Result<AgentChannel> {
        let n = parse_name(name)?;
        self.model().get(name)?;
        self.ensure_running(&n)?;
        self.channel_in(&n, argv, Stdio3::null())
    }

    /// [`Manager::spawn_with_channel`] in a running qube, `argv` as given.
    fn channel_in(&self, n: &QubeName, argv: &[String], stdio: Stdio3) -> Result<AgentChannel> {
        let label = {
            let m = self.model();
            m.label(&m.get(n.as_str())?.label)?.clone()
        };
        let (ours, theirs) = UnixStream::pair().map_err(|e| BackendError::Io {
            what: "socketpair".into(),
            source: e,
        })?;
        let child = self
            .backend
            .exec(n, argv, stdio, vec![OwnedFd::from(theirs)])?;
        Ok(AgentChannel {
            stream: ours,
            qube: n.clone(),
            label,
            child,
        })
    }

    /// Creates a disposable from `dvm_template` (or the default), starts it and returns its
    /// name. Destroy it with [`Manager::destroy_dispvm`].
    pub fn new_dispvm(&self, dvm_template: Option<&str>) -> Result<QubeName> {
        let m = self.model();
        let dvm = match dvm_template {
            Some(t) => parse_name(t)?,
            None => m.effective_default_dispvm(None).ok_or_else(|| {
                ManagerError::Store(
                    ModelError::Invalid(
                        "no disposable template given and no global default_dispvm set".into(),
                    )
                    .into(),
                )
            })?,
        };
        let label = m.get(dvm.as_str())?.label.clone();
        let name = {
            let mut store = self.store.lock().unwrap();
            let mut seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos()
                ^ std::process::id();
            let name = loop {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let cand = parse_name(&format!("disp{}", seed % 9000 + 1000))?;
                if store.model().get(cand.as_str()).is_err() {
                    break cand;
                }
            };
            store.update(|m| {
                m.create(name.clone(), Class::DispVM, Some(dvm.clone()), &label)?;
                m.set_pref(name.as_str(), "include_in_backups", "False")
            })?;
            name
        };
        if let Err(e) = self.start(name.as_str()) {
            let _ = self.store.lock().unwrap().remove_qube(name.as_str());
            return Err(e);
        }
        Ok(name)
    }

    /// Kills a disposable and removes it and its record.
    pub fn destroy_dispvm(&self, name: &QubeName) -> Result<()> {
        self.mark_stopping(name);
        if self.state_of(name) != PowerState::Halted {
            self.backend.kill(name)?;
            self.net_stopped(name);
        }
        self.store.lock().unwrap().remove_qube(name.as_str())?;
        Ok(())
    }

    /// Builds a Debian TemplateVM `name` with debootstrap (see [`crate::template`]).
    pub fn install_debian_template(
        &self,
        name: &str,
        suite: Option<&str>,
        mirror: Option<&str>,
        label: Option<&str>,
        progress: &mut dyn FnMut(&str),
    ) -> Result<()> {
        let qname = parse_name(name)?;
        let label = label.unwrap_or("black");
        // Check the name and label now, build without holding the store, then write the record.
        let qid = {
            let store = self.store.lock().unwrap();
            let mut probe = store.model().clone();
            let qid = probe
                .create(qname.clone(), Class::TemplateVM, None, label)?
                .qid;
            probe.validate()?;
            qid
        };
        let root = self.store.lock().unwrap().volume_dir(qid).join("root");
        if root.exists() {
            return Err(ManagerError::State(format!(
                "{} exists: another install is running",
                root.display()
            )));
        }
        progress(&format!(
            "debootstrap {} from {}",
            suite.unwrap_or(crate::template::DEFAULT_SUITE),
            mirror.unwrap_or(crate::template::DEFAULT_MIRROR)
        ));
        crate::template::debootstrap(
            &root,
            suite.unwrap_or(crate::template::DEFAULT_SUITE),
            mirror.unwrap_or(crate::template::DEFAULT_MIRROR),
            progress,
        )
        .map_err(|e| {
            let _ = crate::store::remove_tree(root.parent().expect("volume dir"));
            BackendError::Io {
                what: format!("building template {name}"),
                source: e,
            }
        })?;
        let mut store = self.store.lock().unwrap();
        let r = store.update(|m| {
            let q = m.create(qname.clone(), Class::TemplateVM, None, label)?;
            if q.qid != qid {
                return Err(ModelError::Invalid(format!(
                    "{name}: the store changed during the install; try again"
                )));
            }
            Ok(())
        });
        if let Err(e) = r {
            let _ = crate::store::remove_tree(&store.volume_dir(qid));
            return Err(e.into());
        }
        Ok(())
    }

    /// Stops every qube (the manager is going away).
    fn mark_stopping(&self, name: &QubeName) {
        self.stopping.lock().unwrap().insert(name.to_string());
    }

    /// Whether `name` runs and nobody asked it to stop: its GUI agent should be there, so an
    /// agent channel that closes now means the agent died on its own.
    pub fn expects_agent(&self, name: &str) -> bool {
        let Ok(n) = QubeName::new(name) else {
            return false;
        };
        self.state_of(&n) == PowerState::Running && !self.stopping.lock().unwrap().contains(name)
    }

    pub fn stop_all(&self) {
        self.backend.stop_all();
        if let Some(chain) = self.net.get() {
            chain.all_stopped(&self.model());
        }
        let disp: Vec<String> = self
            .model()
            .qubes
            .iter()
            .filter(|(_, q)| q.class == Class::DispVM)
            .map(|(n, _)| n.to_string())
            .collect();
        let mut store = self.store.lock().unwrap();
        for n in disp {
            let _ = store.remove_qube(&n);
        }
    }

    /// Starts qubes marked autostart; returns the failures.
    pub fn autostart(&self) -> Vec<(String, ManagerError)> {
        let m = self.model();
        let mut errs = Vec::new();
        for (n, q) in &m.qubes {
            if q.autostart
                && self.state_of(n) == PowerState::Halted
                && let Err(e) = self.start(n.as_str())
            {
                errs.push((n.to_string(), e));
            }
        }
        errs
    }

    /// Handles one request; `fds` are those sent with it.
    pub fn handle(self: &Arc<Self>, req: Request, mut fds: Vec<OwnedFd>) -> Result<Value> {
        match req {
            Request::List => Ok(serde_json::to_value(self.list()).expect("serialisable")),
            Request::Create {
                name,
                class,
                template,
                label,
                netvm,
            } => {
                self.create(&name, &class, template.as_deref(), &label, netvm.as_deref())?;
                Ok(Value::Null)
            }
            Request::Clone { src, dst } => self.clone_qube(&src, &dst).map(|_| Value::Null),
            Request::Rename { old, new } => self.rename(&old, &new).map(|_| Value::Null),
            Request::Remove { name } => self.remove(&name).map(|_| Value::Null),
            Request::Prefs { name, key, value } => match (key, value) {
                (None, _) => Ok(to_json(&self.model().prefs(&name)?)),
                (Some(k), None) => Ok(to_json(&vec![self.model().pref(&name, &k)?])),
                (Some(k), Some(v)) => {
                    self.update(|m| m.set_pref(&name, &k, &v))?;
                    if k == "netvm"
                        && let Ok(n) = QubeName::new(&name)
                        && self.state_of(&n) != PowerState::Halted
                    {
                        // A running qube moves to its new netvm (or off the network) at once.
                        self.net_started(&n);
                    }
                    Ok(Value::Null)
                }
            },
            Request::Features {
                name,
                key,
                value,
                delete,
            } => match (key, value, delete) {
                (None, _, _) => Ok(to_json(&self.model().get(&name)?.features)),
                (Some(k), None, true) => {
                    self.update(|m| m.set_feature(&name, &k, None))?;
                    self.net_feature_changed(&name, &k)?;
                    Ok(Value::Null)
                }
                (Some(k), None, false) => {
                    let m = self.model();
                    let v = m
                        .get(&name)?
                        .features
                        .get(&k)
                        .cloned()
                        .ok_or(ModelError::NoSuchFeature(k))?;
                    Ok(Value::String(v))
                }
                (Some(k), Some(v), _) => {
                    self.update(|m| m.set_feature(&name, &k, Some(&v)))?;
                    self.net_feature_changed(&name, &k)?;
                    Ok(Value::Null)
                }
            },
            Request::Globals { key, value } => match (key, value) {
                (None, _) => Ok(to_json(&self.model().global_prefs())),
                (Some(k), None) => {
                    let rows = self.model().global_prefs();
                    let row: Vec<_> = rows.into_iter().filter(|r| r.key == k).collect();
                    if row.is_empty() {
                        return Err(ModelError::NoSuchProperty(k).into());
                    }
                    Ok(to_json(&row))
                }
                (Some(k), Some(v)) => self.update(|m| m.set_global(&k, &v)).map(|_| Value::Null),
            },
            Request::TemplateInstall {
                name,
                suite,
                mirror,
                label,
            } => self
                .install_debian_template(
                    &name,
                    suite.as_deref(),
                    mirror.as_deref(),
                    label.as_deref(),
                    &mut |_| {},
                )
                .map(|_| Value::Null),
            Request::Labels => Ok(to_json(&self.model().labels)),
            Request::AddLabel { name, color } => self
                .update(|m| m.add_label(&name, &color).map(|_| ()))
                .map(|_| Value::Null),
            Request::Start { name } => self.start(&name).map(|_| Value::Null),
            Request::Shutdown {
                name,
                wait,
                timeout_s,
                force,
            } => {
                let t = timeout_s
                    .map(Duration::from_secs)
                    .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT);
                self.shutdown_with(&name, wait, t, force)
                    .map(|_| Value::Null)
            }
            Request::FirewallList { name } => Ok(to_json(
                &self
                    .firewall_list(&name)?
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )),
            Request::FirewallAdd { name, rule, before } => {
                self.firewall_add(&name, &rule, before).map(|_| Value::Null)
            }
            Request::FirewallDel { name, index } => {
                self.firewall_del(&name, index).map(|_| Value::Null)
            }
            Request::FirewallReset { name } => self.firewall_reset(&name).map(|_| Value::Null),
            Request::Kill { name } => self.kill(&name).map(|_| Value::Null),
            Request::Pause { name } => self.pause(&name).map(|_| Value::Null),
            Request::Unpause { name } => self.unpause(&name).map(|_| Value::Null),
            Request::Apps { name } => self.apps(&name).map(|apps| to_json(&apps)),
            Request::Launch { name, app, dispvm } => {
                let argv = self.app_argv(&name, &app)?;
                self.handle(
                    Request::Run {
                        name: Some(name),
                        dispvm,
                        argv,
                        pass_io: false,
                        root: false,
                    },
                    Vec::new(),
                )
            }
            Request::Run {
                name,
                dispvm,
                argv,
                pass_io,
                root,
            } => {
                if argv.is_empty() {
                    return Err(ManagerError::BadRequest("no command given".into()));
                }
                if root && dispvm {
                    return Err(ManagerError::BadRequest(
                        "run: root is not for disposables".into(),
                    ));
                }
                let stdio = if pass_io {
                    if fds.len() != 3 {
                        return Err(ManagerError::BadRequest(
                            "run with pass_io needs 3 fds (stdin, stdout, stderr)".into(),
                        ));
                    }
                    let stderr = fds.pop();
                    let stdout = fds.pop();
                    let stdin = fds.pop();
                    Stdio3 {
                        stdin,
                        stdout,
                        stderr,
                    }
                } else {
                    Stdio3::null()
                };
                let (qube, disposable) = match (name, dispvm) {
                    (Some(n), false) => (parse_name(&n)?, false),
                    (t, true) => (self.new_dispvm(t.as_deref())?, true),
                    (None, false) => {
                        return Err(ManagerError::BadRequest(
                            "run: give a qube name, or dispvm".into(),
                        ));
                    }
                };
                let child = match if root {
                    self.run_root(qube.as_str(), &argv, stdio)
                } else {
                    self.run(qube.as_str(), &argv, stdio, Vec::new())
                } {
                    Ok(c) => c,
                    Err(e) => {
                        if disposable {
                            let _ = self.destroy_dispvm(&qube);
                        }
                        return Err(e);
                    }
                };
                let qube_name = qube.to_string();
                let me = Arc::clone(self);
                let wait = move |mut child: std::process::Child| {
                    let st = child.wait();
                    if disposable {
                        let _ = me.destroy_dispvm(&qube);
                    }
                    st
                };
                if pass_io {
                    let st = wait(child).map_err(|e| BackendError::Io {
                        what: "waiting".into(),
                        source: e,
                    })?;
                    let code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
                    Ok(json!({ "exit": code, "qube": qube_name }))
                } else {
                    std::thread::spawn(move || wait(child));
                    Ok(json!({ "qube": qube_name }))
                }
            }
        }
    }

    /// Serves the admin API on `listener`, one thread per client (at most [`MAX_CLIENTS`]),
    /// until the listener fails.
    pub fn serve(self: &Arc<Self>, listener: UnixListener) -> io::Result<()> {
        let clients = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for conn in listener.incoming() {
            let conn = conn?;
            if clients.load(std::sync::atomic::Ordering::SeqCst) >= MAX_CLIENTS {
                let _ = api::send_line(
                    &conn,
                    &Reply::Error(ErrorReply {
                        kind: "busy".into(),
                        message: "too many clients".into(),
                    }),
                    &[],
                );
                continue;
            }
            clients.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let me = Arc::clone(self);
            let count = Arc::clone(&clients);
            std::thread::spawn(move || {
                me.serve_client(conn);
                count.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        Ok(())
    }

    fn serve_client(self: &Arc<Self>, conn: UnixStream) {
        let mut reader = api::LineReader::new();
        loop {
            let (line, fds) = match reader.read_line(&conn, api::MAX_REQUEST) {
                Ok(Some(x)) => x,
                Ok(None) => return,
                Err(e) => {
                    let _ = api::send_line(
                        &conn,
                        &Reply::Error(ErrorReply {
                            kind: "bad-request".into(),
                            message: e.to_string(),
                        }),
                        &[],
                    );
                    return;
                }
            };
            let reply = match serde_json::from_slice::<Request>(&line) {
                Err(e) => Reply::Error(ErrorReply {
                    kind: "bad-request".into(),
                    message: format!("bad request: {e}"),
                }),
                Ok(Request::TemplateInstall {
                    name,
                    suite,
                    mirror,
                    label,
                }) => {
                    let mut progress = |p: &str| {
                        let _ = api::send_line(&conn, &Reply::Progress(p.to_owned()), &[]);
                    };
                    match self.install_debian_template(
                        &name,
                        suite.as_deref(),
                        mirror.as_deref(),
                        label.as_deref(),
                        &mut progress,
                    ) {
                        Ok(()) => Reply::Ok(Value::Null),
                        Err(e) => Reply::Error(e.reply()),
                    }
                }
                Ok(req) => match self.handle(req, fds) {
                    Ok(v) => Reply::Ok(v),
                    Err(e) => Reply::Error(e.reply()),
                },
            };
            if api::send_line(&conn, &reply, &[]).is_err() {
                return;
            }
        }
    }

    /// Binds the admin socket (mode 0600 directory), replacing a stale one but refusing to
    /// replace a live one.
    pub fn bind(path: &Path) -> io::Result<UnixListener> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
            fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        }
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by a running manager", path.display()),
                ));
            }
            fs::remove_file(path)?;
        }
        UnixListener::bind(path)
    }
}

/// A client of the admin API.
#[derive(Debug)]
pub struct Client {
    sock: UnixStream,
    reader: api::LineReader,
}

impl Client {
    pub fn connect(path: &Path) -> io::Result<Client> {
        Ok(Client {
            sock: UnixStream::connect(path)?,
            reader: api::LineReader::new(),
        })
    }

    /// Sends `req` (with `fds`) and reads the reply.
    pub fn call(
        &mut self,
        req: &Request,
        fds: &[std::os::fd::BorrowedFd<'_>],
    ) -> io::Result<Reply> {
        self.call_with_progress(req, fds, &mut |_| {})
    }

    /// Like [`Client::call`], passing `progress` replies to `on_progress`.
    pub fn call_with_progress(
        &mut self,
        req: &Request,
        fds: &[std::os::fd::BorrowedFd<'_>],
        on_progress: &mut dyn FnMut(&str),
    ) -> io::Result<Reply> {
        api::send_line(&self.sock, req, fds)?;
        loop {
            match self.read_reply()? {
                Reply::Progress(p) => on_progress(&p),
                r => return Ok(r),
            }
        }
    }

    fn read_reply(&mut self) -> io::Result<Reply> {
        let (line, _) = self
            .reader
            .read_line(&self.sock, api::MAX_REPLY)?
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the manager closed the connection",
                )
            })?;
        serde_json::from_slice(&line).map_err(io::Error::other)
    }

    /// The raw socket (for tests).
    pub fn socket(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).expect("model types always serialise")
}
