//! A tiny, real Wayland client (wayland-client over the agent's socket) for tests that need
//! exact pixels, a subsurface, a popup on demand, configure serials or frame counting.
//! It is driven from the test thread: every call that waits does a roundtrip with the agent.

#![allow(dead_code)]

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use wayland_client::protocol::{
    wl_buffer, wl_callback, wl_compositor, wl_keyboard, wl_pointer, wl_registry, wl_seat, wl_shm,
    wl_shm_pool, wl_subcompositor, wl_subsurface, wl_surface,
};
use wayland_client::{Connection, Dispatch, EventQueue, QueueHandle, WEnum, delegate_noop};
use wayland_protocols::wp::cursor_shape::v1::client::{
    wp_cursor_shape_device_v1, wp_cursor_shape_manager_v1,
};
use wayland_protocols::xdg::activation::v1::client::{xdg_activation_token_v1, xdg_activation_v1};
use wayland_protocols::xdg::shell::client::{
    xdg_popup, xdg_positioner, xdg_surface, xdg_toplevel, xdg_wm_base,
};

/// What the client saw and did.
#[derive(Debug, Default)]
pub struct ClientState {
    compositor: Option<wl_compositor::WlCompositor>,
    subcompositor: Option<wl_subcompositor::WlSubcompositor>,
    shm: Option<wl_shm::WlShm>,
    wm_base: Option<xdg_wm_base::XdgWmBase>,
    seat: Option<wl_seat::WlSeat>,
    cursor_shape_manager: Option<wp_cursor_shape_manager_v1::WpCursorShapeManagerV1>,
    activation: Option<xdg_activation_v1::XdgActivationV1>,
    /// The serial of the last wl_pointer.enter (cursor shapes must quote it).
    pub pointer_enter_serial: Option<u32>,
    /// The token the compositor gave for an xdg-activation request.
    pub activation_token: Option<String>,
    keyboard: Option<wl_keyboard::WlKeyboard>,
    pointer: Option<wl_pointer::WlPointer>,

    surface: Option<wl_surface::WlSurface>,
    xdg_surface: Option<xdg_surface::XdgSurface>,
    toplevel: Option<xdg_toplevel::XdgToplevel>,
    pub popup_surface: Option<wl_surface::WlSurface>,
    popup_xdg_surface: Option<xdg_surface::XdgSurface>,
    popup: Option<xdg_popup::XdgPopup>,

    /// The toplevel size the last configure asked for (0 = client's choice).
    pub configured_size: (i32, i32),
    /// Serial of an xdg_surface.configure not yet acked, for the toplevel.
    pending_configure: Option<u32>,
    pending_popup_configure: Option<u32>,
    pub configure_count: u32,
    pub activated: bool,
    pub size: (i32, i32),
    pub colour: u32,
    /// Draw a new frame on every frame callback.
    pub animate: bool,
    pub frames_received: u32,
    pub commits: u32,
    pub closed: bool,
    pub popup_done: bool,
    pub popup_configured: Option<(i32, i32, i32, i32)>,
    pub keys: Vec<(u32, bool)>,
    pub keyboard_entered: bool,
    /// The last `mods_locked` mask the agent sent.
    pub mods_locked: u32,
    pub pointer_positions: Vec<(f64, f64)>,
    pub pointer_surface: Option<wl_surface::WlSurface>,
    pub buttons: Vec<(u32, bool)>,
    /// Buffers are kept until the client goes away; a test client draws few frames.
    buffers: Vec<wl_buffer::WlBuffer>,
}

pub struct TestClient {
    pub conn: Connection,
    queue: EventQueue<ClientState>,
    pub state: ClientState,
}

fn shm_buffer(
    state: &mut ClientState,
    qh: &QueueHandle<ClientState>,
    width: i32,
    height: i32,
    colour: u32,
) -> wl_buffer::WlBuffer {
    let stride = width * 4;
    let size = (stride * height) as usize;
    let fd = rustix::fs::memfd_create("test-buffer", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let mut file = std::fs::File::from(fd);
    let mut pixels = Vec::with_capacity(size);
    for _ in 0..(width * height) {
        pixels.extend_from_slice(&colour.to_le_bytes());
    }
    file.write_all(&pixels).unwrap();
    let shm = state.shm.as_ref().expect("wl_shm");
    let pool = shm.create_pool(file.as_fd(), size as i32, qh, ());
    let buffer = pool.create_buffer(0, width, height, stride, wl_shm::Format::Argb8888, qh, ());
    pool.destroy();
    state.buffers.push(buffer.clone());
    buffer
}

impl ClientState {
    /// Draws the toplevel in its colour at its size and commits, asking for a frame callback.
    fn draw(&mut self, qh: &QueueHandle<ClientState>) {
        let (w, h) = self.size;
        let colour = self.colour;
        let buffer = shm_buffer(self, qh, w, h, colour);
        let surface = self.surface.clone().expect("surface");
        surface.attach(Some(&buffer), 0, 0);
        surface.damage_buffer(0, 0, w, h);
        surface.frame(qh, ());
        surface.commit();
        self.commits += 1;
    }
}

impl TestClient {
    /// Connects to `runtime_dir/socket_name` and binds the globals.
    pub fn connect(runtime_dir: &Path, socket_name: &str) -> Self {
        let stream = UnixStream::connect(runtime_dir.join(socket_name)).expect("agent socket");
        let conn = Connection::from_socket(stream).expect("wayland connection");
        let mut queue = conn.new_event_queue();
        let qh = queue.handle();
        conn.display().get_registry(&qh, ());
        let mut state = ClientState {
            size: (200, 100),
            colour: 0xFF33_6699,
            ..Default::default()
        };
        queue.roundtrip(&mut state).unwrap();
        queue.roundtrip(&mut state).unwrap();
        assert!(state.compositor.is_some() && state.shm.is_some() && state.wm_base.is_some());
        TestClient { conn, queue, state }
    }

    pub fn roundtrip(&mut self) {
        self.queue.roundtrip(&mut self.state).expect("roundtrip");
    }

    /// Roundtrips until `done` or the timeout.
    pub fn wait_for(&mut self, what: &str, mut done: impl FnMut(&ClientState) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(&self.state) {
            assert!(
                Instant::now() < deadline,
                "client timed out waiting for {what}"
            );
            self.roundtrip();
            std::thread::sleep(Duration::from_millis(5));
        }
        // Requests made by event handlers (a redraw on a frame callback) go out now.
        self.conn.flush().expect("flush");
    }

    /// Creates a toplevel with a title and app id, waits for its configure and draws it.
    pub fn create_toplevel(&mut self, title: &str, app_id: &str) {
        let qh = self.queue.handle();
        let surface = self
            .state
            .compositor
            .as_ref()
            .unwrap()
            .create_surface(&qh, ());
        let xdg = self
            .state
            .wm_base
            .as_ref()
            .unwrap()
            .get_xdg_surface(&surface, &qh, ());
        let toplevel = xdg.get_toplevel(&qh, ());
        toplevel.set_title(title.into());
        toplevel.set_app_id(app_id.into());
        toplevel.set_min_size(50, 40);
        surface.commit();
        self.state.surface = Some(surface);
        self.state.xdg_surface = Some(xdg);
        self.state.toplevel = Some(toplevel);
        self.wait_for("the first configure", |s| s.pending_configure.is_some());
        self.ack_and_draw();
    }

    /// Acks the pending configure, adopts its size (if any) and draws.
    pub fn ack_and_draw(&mut self) {
        let qh = self.queue.handle();
        if let Some(serial) = self.state.pending_configure.take() {
            self.state
                .xdg_surface
                .as_ref()
                .unwrap()
                .ack_configure(serial);
            let (w, h) = self.state.configured_size;
            if w > 0 && h > 0 {
                self.state.size = (w, h);
            }
        }
        self.state.draw(&qh);
        self.roundtrip();
    }

    /// Redraws in a new colour.
    pub fn redraw(&mut self, colour: u32) {
        let qh = self.queue.handle();
        self.state.colour = colour;
        self.state.draw(&qh);
        self.roundtrip();
    }

    /// Attaches a new buffer filled with `colour` but declares only `damage` as changed.
    pub fn redraw_damaged(&mut self, colour: u32, damage: (i32, i32, i32, i32)) {
        let qh = self.queue.handle();
        let (w, h) = self.state.size;
        let buffer = shm_buffer(&mut self.state, &qh, w, h, colour);
        let surface = self.state.surface.clone().unwrap();
        surface.attach(Some(&buffer), 0, 0);
        surface.damage_buffer(damage.0, damage.1, damage.2, damage.3);
        surface.frame(&qh, ());
        surface.commit();
        self.state.commits += 1;
        self.roundtrip();
    }

    /// Adds a subsurface of `size` at `position` filled with `colour`.
    pub fn add_subsurface(&mut self, position: (i32, i32), size: (i32, i32), colour: u32) {
        let qh = self.queue.handle();
        let parent = self.state.surface.clone().unwrap();
        let child = self
            .state
            .compositor
            .as_ref()
            .unwrap()
            .create_surface(&qh, ());
        let sub = self
            .state
            .subcompositor
            .as_ref()
            .expect("wl_subcompositor")
            .get_subsurface(&child, &parent, &qh, ());
        sub.set_position(position.0, position.1);
        sub.set_desync();
        let buffer = shm_buffer(&mut self.state, &qh, size.0, size.1, colour);
        child.attach(Some(&buffer), 0, 0);
        child.damage_buffer(0, 0, size.0, size.1);
        child.commit();
        parent.commit();
        self.state.commits += 1;
        self.roundtrip();
    }

    /// Opens a popup of `size` anchored at `anchor` (a point in window geometry coordinates),
    /// growing down and right, with an explicit grab when `grab`.
    pub fn open_popup(&mut self, anchor: (i32, i32), size: (i32, i32), colour: u32) {
        let qh = self.queue.handle();
        let wm_base = self.state.wm_base.clone().unwrap();
        let positioner = wm_base.create_positioner(&qh, ());
        positioner.set_size(size.0, size.1);
        positioner.set_anchor_rect(anchor.0, anchor.1, 1, 1);
        positioner.set_anchor(xdg_positioner::Anchor::TopLeft);
        positioner.set_gravity(xdg_positioner::Gravity::BottomRight);
        positioner.set_constraint_adjustment(
            xdg_positioner::ConstraintAdjustment::FlipX
                | xdg_positioner::ConstraintAdjustment::FlipY
                | xdg_positioner::ConstraintAdjustment::SlideX
                | xdg_positioner::ConstraintAdjustment::SlideY,
        );
        let surface = self
            .state
            .compositor
            .as_ref()
            .unwrap()
            .create_surface(&qh, ());
        let xdg = wm_base.get_xdg_surface(&surface, &qh, ());
        let popup = xdg.get_popup(self.state.xdg_surface.as_ref(), &positioner, &qh, ());
        surface.commit();
        self.state.popup_surface = Some(surface.clone());
        self.state.popup_xdg_surface = Some(xdg.clone());
        self.state.popup = Some(popup);
        self.wait_for("the popup configure", |s| {
            s.pending_popup_configure.is_some()
        });
        let serial = self.state.pending_popup_configure.take().unwrap();
        xdg.ack_configure(serial);
        let buffer = shm_buffer(&mut self.state, &qh, size.0, size.1, colour);
        surface.attach(Some(&buffer), 0, 0);
        surface.damage_buffer(0, 0, size.0, size.1);
        surface.commit();
        self.roundtrip();
    }

    /// Binds the keyboard and pointer.
    pub fn use_seat(&mut self) {
        let qh = self.queue.handle();
        let seat = self.state.seat.clone().expect("wl_seat");
        self.state.keyboard = Some(seat.get_keyboard(&qh, ()));
        self.state.pointer = Some(seat.get_pointer(&qh, ()));
        self.roundtrip();
    }

    /// Sets the pointer's cursor with wp_cursor_shape_v1 (after a pointer enter).
    pub fn set_cursor_shape(&mut self, shape: wp_cursor_shape_device_v1::Shape) {
        let qh = self.queue.handle();
        let manager = self
            .state
            .cursor_shape_manager
            .clone()
            .expect("wp_cursor_shape_manager_v1");
        let pointer = self.state.pointer.clone().expect("use_seat first");
        let serial = self
            .state
            .pointer_enter_serial
            .expect("a pointer enter first");
        manager
            .get_pointer(&pointer, &qh, ())
            .set_shape(serial, shape);
        self.roundtrip();
    }

    /// Asks to activate the toplevel with a fresh xdg-activation token (as an app that wants
    /// the user's attention would).
    pub fn request_activation(&mut self) {
        let qh = self.queue.handle();
        let activation = self.state.activation.clone().expect("xdg_activation_v1");
        let token = activation.get_activation_token(&qh, ());
        token.set_surface(&self.toplevel_surface());
        token.commit();
        self.wait_for("an activation token", |s| s.activation_token.is_some());
        let token = self.state.activation_token.clone().unwrap();
        activation.activate(token, &self.toplevel_surface());
        self.roundtrip();
    }

    pub fn toplevel_surface(&self) -> wl_surface::WlSurface {
        self.state.surface.clone().unwrap()
    }
}

impl Dispatch<wl_registry::WlRegistry, ()> for ClientState {
    fn event(
        state: &mut Self,
        registry: &wl_registry::WlRegistry,
        event: wl_registry::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_registry::Event::Global {
            name,
            interface,
            version,
        } = event
        {
            match interface.as_str() {
                "wl_compositor" => {
                    state.compositor = Some(registry.bind(name, version.min(5), qh, ()))
                }
                "wl_subcompositor" => state.subcompositor = Some(registry.bind(name, 1, qh, ())),
                "wl_shm" => state.shm = Some(registry.bind(name, 1, qh, ())),
                "xdg_wm_base" => state.wm_base = Some(registry.bind(name, version.min(5), qh, ())),
                "wl_seat" => state.seat = Some(registry.bind(name, version.min(7), qh, ())),
                "wp_cursor_shape_manager_v1" => {
                    state.cursor_shape_manager = Some(registry.bind(name, 1, qh, ()))
                }
                "xdg_activation_v1" => state.activation = Some(registry.bind(name, 1, qh, ())),
                _ => {}
            }
        }
    }
}

impl Dispatch<xdg_wm_base::XdgWmBase, ()> for ClientState {
    fn event(
        _: &mut Self,
        wm_base: &xdg_wm_base::XdgWmBase,
        event: xdg_wm_base::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_wm_base::Event::Ping { serial } = event {
            wm_base.pong(serial);
        }
    }
}

impl Dispatch<xdg_surface::XdgSurface, ()> for ClientState {
    fn event(
        state: &mut Self,
        surface: &xdg_surface::XdgSurface,
        event: xdg_surface::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_surface::Event::Configure { serial } = event {
            if Some(surface) == state.popup_xdg_surface.as_ref() {
                state.pending_popup_configure = Some(serial);
            } else {
                state.pending_configure = Some(serial);
                state.configure_count += 1;
            }
        }
    }
}

impl Dispatch<xdg_toplevel::XdgToplevel, ()> for ClientState {
    fn event(
        state: &mut Self,
        _: &xdg_toplevel::XdgToplevel,
        event: xdg_toplevel::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            xdg_toplevel::Event::Configure {
                width,
                height,
                states,
            } => {
                state.configured_size = (width, height);
                state.activated = states
                    .chunks_exact(4)
                    .map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .any(|s| s == xdg_toplevel::State::Activated as u32);
            }
            xdg_toplevel::Event::Close => state.closed = true,
            _ => {}
        }
    }
}

impl Dispatch<xdg_popup::XdgPopup, ()> for ClientState {
    fn event(
        state: &mut Self,
        _: &xdg_popup::XdgPopup,
        event: xdg_popup::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            xdg_popup::Event::Configure {
                x,
                y,
                width,
                height,
            } => state.popup_configured = Some((x, y, width, height)),
            xdg_popup::Event::PopupDone => state.popup_done = true,
            _ => {}
        }
    }
}

impl Dispatch<wl_callback::WlCallback, ()> for ClientState {
    fn event(
        state: &mut Self,
        _: &wl_callback::WlCallback,
        event: wl_callback::Event,
        _: &(),
        _: &Connection,
        qh: &QueueHandle<Self>,
    ) {
        if let wl_callback::Event::Done { .. } = event {
            state.frames_received += 1;
            if state.animate {
                state.colour = state.colour.wrapping_add(0x0001_0203) | 0xFF00_0000;
                state.draw(qh);
            }
        }
    }
}

impl Dispatch<wl_seat::WlSeat, ()> for ClientState {
    fn event(
        _: &mut Self,
        _: &wl_seat::WlSeat,
        _: wl_seat::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
    }
}

impl Dispatch<wl_keyboard::WlKeyboard, ()> for ClientState {
    fn event(
        state: &mut Self,
        _: &wl_keyboard::WlKeyboard,
        event: wl_keyboard::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wl_keyboard::Event::Enter { .. } => state.keyboard_entered = true,
            wl_keyboard::Event::Leave { .. } => state.keyboard_entered = false,
            wl_keyboard::Event::Modifiers { mods_locked, .. } => state.mods_locked = mods_locked,
            wl_keyboard::Event::Key {
                key,
                state: WEnum::Value(key_state),
                ..
            } => state
                .keys
                .push((key, key_state == wl_keyboard::KeyState::Pressed)),
            _ => {}
        }
    }
}

impl Dispatch<wl_pointer::WlPointer, ()> for ClientState {
    fn event(
        state: &mut Self,
        _: &wl_pointer::WlPointer,
        event: wl_pointer::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        match event {
            wl_pointer::Event::Enter {
                serial,
                surface,
                surface_x,
                surface_y,
            } => {
                state.pointer_enter_serial = Some(serial);
                state.pointer_surface = Some(surface);
                state.pointer_positions.push((surface_x, surface_y));
            }
            wl_pointer::Event::Motion {
                surface_x,
                surface_y,
                ..
            } => state.pointer_positions.push((surface_x, surface_y)),
            wl_pointer::Event::Button {
                button,
                state: WEnum::Value(button_state),
                ..
            } => state
                .buttons
                .push((button, button_state == wl_pointer::ButtonState::Pressed)),
            _ => {}
        }
    }
}

delegate_noop!(ClientState: ignore wl_compositor::WlCompositor);
delegate_noop!(ClientState: ignore wp_cursor_shape_manager_v1::WpCursorShapeManagerV1);
delegate_noop!(ClientState: ignore wp_cursor_shape_device_v1::WpCursorShapeDeviceV1);
delegate_noop!(ClientState: ignore xdg_activation_v1::XdgActivationV1);

impl Dispatch<xdg_activation_token_v1::XdgActivationTokenV1, ()> for ClientState {
    fn event(
        state: &mut Self,
        _: &xdg_activation_token_v1::XdgActivationTokenV1,
        event: xdg_activation_token_v1::Event,
        _: &(),
        _: &Connection,
        _: &QueueHandle<Self>,
    ) {
        if let xdg_activation_token_v1::Event::Done { token } = event {
            state.activation_token = Some(token);
        }
    }
}
delegate_noop!(ClientState: ignore wl_subcompositor::WlSubcompositor);
delegate_noop!(ClientState: ignore wl_subsurface::WlSubsurface);
delegate_noop!(ClientState: ignore wl_surface::WlSurface);
delegate_noop!(ClientState: ignore wl_shm::WlShm);
delegate_noop!(ClientState: ignore wl_shm_pool::WlShmPool);
delegate_noop!(ClientState: ignore wl_buffer::WlBuffer);
delegate_noop!(ClientState: ignore xdg_positioner::XdgPositioner);
