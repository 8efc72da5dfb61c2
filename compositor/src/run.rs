//! Starting the compositor and its event loop.

use std::time::{Duration, Instant};

use anyhow::Context;
use smithay::reexports::calloop::EventLoop;

use crate::backend::{Backend, BackendKind, headless, udev, winit};
use crate::cli::RunArgs;
use crate::ipc;
use crate::layout::LayoutConfig;
use crate::local::Wayland;
use crate::state::{Config, PULSE, State};

/// Runs the compositor until it is closed.
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    init_logging();
    // The config first. A broken file does not keep the session from starting: the built-in
    // default runs, a notification says where the error is, and fixing the file applies it.
    let config_source = crate::config::Source::find(args.config.as_deref());
    let (loaded, config_error) = match crate::config::load(&config_source) {
        Ok(loaded) => (loaded, None),
        Err(e) => {
            tracing::error!("config error, running with the built-in default:\n{e}");
            (crate::config::Loaded::builtin(), Some(e))
        }
    };
    tracing::info!("config: {}", config_source.describe());
    let kind = args.backend.resolve();
    let mut event_loop: EventLoop<'static, State> =
        EventLoop::try_new().context("creating the event loop")?;
    let (backend, winit_events) = match kind {
        BackendKind::Winit => {
            let (w, events) = winit::Winit::new()?;
            (Backend::Winit(Box::new(w)), Some(events))
        }
        BackendKind::Udev => {
            let u = udev::Udev::new(
                &event_loop.handle(),
                Box::new(udev::placement::rules_from_config(&loaded.config.outputs)),
                udev::InputSettings::from_config(&loaded.config.input),
            )?;
            tracing::info!("udev backend: rendering with {}", u.renderer_name());
            (Backend::Udev(Box::new(u)), None)
        }
        _ => (
            Backend::Headless(headless::Headless::new(&args.sizes)?),
            None,
        ),
    };
    let headless = matches!(backend, Backend::Headless(_));
    let config = Config {
        layout: LayoutConfig {
            border: args
                .border
                .unwrap_or(loaded.config.decorations.border_width.get() as i32),
            reserved_top: if args.no_panel {
                0
            } else {
                crate::panel::PANEL_HEIGHT
            },
            ..LayoutConfig::default()
        },
        allow_input_injection: headless || args.allow_input_injection,
        allow_fullscreen: false,
        dev_agent_command: args.dev_agent_command.clone(),
        ipc_socket: args.ipc_socket.clone(),
        clipboard: args.clipboard_config(),
        frame_interval: Duration::from_millis(args.frame_interval_ms),
    };
    let handle = event_loop.handle();
    if let Some(events) = winit_events {
        winit::register(&handle, events)?;
    }
    let (mut wayland, _display_handle) = Wayland::new(&handle)?;
    let gui_socket = match &args.gui_socket {
        Some(name) => Some(wayland.listen(&handle, name.as_deref())?),
        None => None,
    };
    let mut state = State::new(
        handle.clone(),
        event_loop.get_signal(),
        config,
        backend,
        wayland,
    )?;
    state.settings =
        crate::config::live::Settings::new(config_source, loaded.clone(), args.overrides());
    state.apply_loaded(loaded, true);
    crate::config::live::watch(&handle)?;
    if let Some(e) = config_error {
        state.notify(
            State::gui_domain_colour(),
            "Config error: running with the built-in default".into(),
            e.short_headline(),
        );
    }
    state.lock.config = args.lock_config(state.lock.config.clone());
    if !args.no_logind {
        crate::lock::logind::start(&handle)?;
    }

    let socket = args
        .ipc_socket
        .clone()
        .unwrap_or_else(ipc::default_socket_path);
    let socket = ipc::server::listen(&handle, &socket)?;
    state.ipc_path = Some(socket.clone());
    let outputs: Vec<String> = state
        .layout
        .outputs()
        .iter()
        .map(|o| {
            format!(
                "{} {}x{}+{}+{}",
                o.name, o.rect.w, o.rect.h, o.rect.x, o.rect.y
            )
        })
        .collect();
    tracing::info!(
        "corral running: {} backend, outputs [{}], IPC socket {}, clipboard policy {}",
        state.backend.name(),
        outputs.join(", "),
        socket.display(),
        state.clipboard.config.policy_dir.display()
    );

    if let Some(name) = &gui_socket {
        tracing::info!("GUI-domain apps connect to WAYLAND_DISPLAY={name}");
    }
    let mut gui_apps = Vec::new();
    for command in &args.gui_exec {
        let Some(name) = &gui_socket else {
            anyhow::bail!("--gui-exec needs --gui-socket");
        };
        match crate::qubes::spawn_gui_app(command, name) {
            Ok(child) => gui_apps.push(child),
            Err(e) => tracing::error!("starting {command:?}: {e:#}"),
        }
    }

    // The domain manager runs inside the compositor unless told otherwise. When it cannot
    // start (its store is another manager's, its socket is taken), the desktop still comes up,
    // without qubes from the store, and says so; `--domains` makes that an error instead.
    let domains = if args.no_domains {
        None
    } else {
        crate::domains::exit_on_signals(&handle)?;
        let config = crate::domains::DomainsConfig {
            data: args.domains_data.clone(),
            admin_socket: args.admin_socket.clone(),
        };
        match crate::domains::Domains::start(&handle, &config) {
            Ok(domains) => Some(domains),
            Err(e) if args.domains => return Err(e),
            Err(e) => {
                tracing::error!("the domain manager did not start: {e:#}");
                state.notify(
                    crate::labels::GUI_DOMAIN_LABEL.colour,
                    "Qubes unavailable: the domain manager did not start".into(),
                    format!("{e:#}"),
                );
                None
            }
        }
    };
    state.domain_manager = domains.as_ref().map(|d| d.manager());
    // The panel's clock and qube states change on their own: look again every few seconds
    // (the panel's drawing is cached, so an unchanged panel costs no redraw).
    if state.layout.config.reserved_top > 0 {
        use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
        let refresh = std::time::Duration::from_secs(2);
        handle
            .insert_source(
                Timer::from_duration(refresh),
                move |_, _, state: &mut State| {
                    state.queue_redraw();
                    TimeoutAction::ToDuration(refresh)
                },
            )
            .map_err(|e| anyhow::anyhow!("registering the panel's timer: {e}"))?;
    }

    for spec in &args.dev_listen {
        crate::qubes::listen_dev_qube(&handle, spec)?;
    }
    for spec in &args.dev_qubes {
        if let Err(e) = state.spawn_dev_qube(spec.identity.clone()) {
            // One qube failing to start does not stop the others.
            tracing::error!("{e:#}");
            let colour = spec.identity.label.colour;
            state.notify(
                colour,
                format!("[{}] could not start", spec.identity.name),
                format!("{e:#}"),
            );
        }
    }

    let result = main_loop(&mut event_loop, &mut state);
    if let Some(domains) = domains {
        // Qubes stop (and disposables go) with the session.
        domains.stop();
    }
    drop(gui_apps);
    let _ = std::fs::remove_file(&socket);
    // Connections (and dev agent processes) end here.
    state.qubes.conns.clear();
    result
}

fn main_loop(event_loop: &mut EventLoop<'static, State>, state: &mut State) -> anyhow::Result<()> {
    while state.running {
        let timeout = next_timeout(state);
        event_loop
            .dispatch(timeout, state)
            .context("event loop failed")?;
        state.flush_all_qubes();
        let _ = state.wayland.display_handle.flush_clients();
        tick(state);
        state.flush_all_qubes();
        let _ = state.wayland.display_handle.flush_clients();
    }
    Ok(())
}

/// How long the loop may sleep.
fn next_timeout(state: &State) -> Option<Duration> {
    let now = Instant::now();
    let mut wake: Option<Instant> = None;
    let mut consider = |t: Instant| {
        wake = Some(wake.map_or(t, |w| w.min(t)));
    };
    if state.redraw_needed {
        consider(
            state
                .last_frame
                .map_or(now, |f| f + state.config.frame_interval),
        );
    }
    if state.attention_pending() {
        consider(now + PULSE / 4);
    }
    if let Some(t) = state.notifications.next_expiry() {
        consider(t);
    }
    if let Some(t) = state.clipboard.next_deadline() {
        consider(t);
    }
    if let Some(t) = state.lock.next_deadline() {
        consider(t);
    }
    wake.map(|t| t.saturating_duration_since(now))
}

/// Work that happens between events: expiring toasts, the attention pulse, drawing.
fn tick(state: &mut State) {
    state.clipboard_tick();
    state.lock_tick();
    let now = Instant::now();
    if state.notifications.expire(now) {
        state.queue_redraw();
    }
    // Qube notifications that went (expired, or pushed out by a system toast): their agents
    // are told (notification_closed). Nothing to do when none went.
    state.send_notification_closes();
    if state.attention_pending() && state.pulse_on() != state.drawn_pulse {
        // The pulse changed phase.
        state.queue_redraw();
    }
    let due = state
        .last_frame
        .is_none_or(|f| now.saturating_duration_since(f) >= state.config.frame_interval);
    if state.redraw_needed && due {
        state.render();
    }
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("corral=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
