//! Compositing a window's surface tree into the pool the GUI domain reads.
//!
//! Each window has one ARGB8888 buffer of its geometry size, in a sealed memfd. Smithay's
//! Pixman renderer draws the surface tree into it through a pixman image that wraps the
//! memfd's mapping, and an [`OutputDamageTracker`] per window limits each redraw to what
//! changed. Those damaged rectangles are what the GUI domain is told about (`Damage` +
//! `Commit`), and, on channels without fd passing, the only pixels that are copied
//! (`PoolWrite`). A size change makes a new pool; the old one is destroyed once the new one
//! is attached.

use std::time::Duration;

use smithay::backend::renderer::Bind;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::element::Kind;
use smithay::backend::renderer::element::surface::{
    WaylandSurfaceRenderElement, render_elements_from_surface_tree,
};
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::utils::with_renderer_surface_state;
use smithay::desktop::utils::{
    OutputPresentationFeedback, send_frames_surface_tree, take_presentation_feedback_surface_tree,
};
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};
use smithay::reexports::pixman;
use smithay::reexports::wayland_protocols::wp::presentation_time::server::wp_presentation_feedback;
use smithay::reexports::wayland_server::protocol::wl_surface::WlSurface;
use smithay::utils::{Logical, Physical, Point, Rectangle, Size, Transform};
use smithay::wayland::compositor::{TraversalAction, with_surface_tree_downward};
use smithay::wayland::fractional_scale::with_fractional_scale;
use tracing::{debug, warn};

use corral_protocol::channel::pool::SharedMemfd;
use corral_protocol::limits::{MAX_DAMAGE_RECTS, MAX_SURFACE_DIMENSION};
use corral_protocol::{AgentMessage, BufferLayout, PixelFormat, PoolId, Rect, WindowId};

use crate::state::AgentState;

/// How long a client waits for its frame callback when its commit brought nothing new to
/// show (so no `FrameDone` will come): about one frame at 60 Hz.
const IDLE_FRAME_DELAY: Duration = Duration::from_millis(16);

/// One window's pixels: a sealed memfd mapped read-write, and a pixman image over it.
pub struct WindowBuffer {
    // Field order matters: `image` points into `memory`'s mapping and is dropped first.
    image: pixman::Image<'static, 'static>,
    memory: SharedMemfd,
    pub pool: PoolId,
    pub size: Size<i32, Physical>,
    damage_tracker: OutputDamageTracker,
    /// Nothing was drawn into this buffer yet: the first render is a full one.
    fresh: bool,
}

impl std::fmt::Debug for WindowBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowBuffer")
            .field("pool", &self.pool)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl WindowBuffer {
    /// A cleared (fully transparent) buffer of `size` pixels in a new memfd.
    pub fn new(pool: PoolId, size: Size<i32, Physical>) -> std::io::Result<Self> {
        let width = usize::try_from(size.w).map_err(std::io::Error::other)?;
        let height = usize::try_from(size.h).map_err(std::io::Error::other)?;
        let stride = width * 4;
        let mut memory = SharedMemfd::create((stride * height) as u64)?;
        let bits = memory.bytes_mut().as_mut_ptr().cast::<u32>();
        // SAFETY: `bits` points to the start of a page-aligned (so 4-byte aligned) mapping of
        // exactly `stride * height` bytes, which `memory` keeps mapped for as long as the image
        // lives: both live in this struct and `image` is declared first, so it is dropped
        // before the mapping goes away. Only pixman writes through this pointer, and only
        // while the renderer draws into the image; nothing else holds a reference then.
        let image = unsafe {
            pixman::Image::from_raw_mut(
                pixman::FormatCode::A8R8G8B8,
                width,
                height,
                bits,
                stride,
                false,
            )
        }
        .map_err(|_| std::io::Error::other("pixman could not wrap the pool memory"))?;
        Ok(WindowBuffer {
            image,
            memory,
            pool,
            size,
            damage_tracker: OutputDamageTracker::new(size, 1.0, Transform::Normal),
            fresh: true,
        })
    }

    pub fn layout(&self) -> BufferLayout {
        let width = self.size.w as u32;
        let size = corral_protocol::Size::new(width, self.size.h as u32)
            .unwrap_or_else(|_| unreachable!("buffer sizes are clamped to protocol limits"));
        BufferLayout::new(0, size, width * 4, PixelFormat::Argb8888)
            .unwrap_or_else(|_| unreachable!("a tightly packed buffer is a valid layout"))
    }

    pub fn memfd(&self) -> &SharedMemfd {
        &self.memory
    }

    /// The whole rectangle of the buffer, for full damage.
    pub fn full_rect(&self) -> Rect {
        Rect::new(0, 0, self.size.w as u32, self.size.h as u32)
            .unwrap_or_else(|_| unreachable!("buffer sizes are clamped to protocol limits"))
    }
}

/// Turns renderer damage into protocol rectangles clamped to the buffer; more than the
/// protocol allows become their bounding box.
fn protocol_damage(damage: &[Rectangle<i32, Physical>], size: Size<i32, Physical>) -> Vec<Rect> {
    let bounds = Rectangle::from_size(size);
    let clamped: Vec<Rectangle<i32, Physical>> = damage
        .iter()
        .filter_map(|r| r.intersection(bounds))
        .filter(|r| !r.is_empty())
        .collect();
    let to_rect = |r: &Rectangle<i32, Physical>| {
        Rect::new(
            r.loc.x as u32,
            r.loc.y as u32,
            r.size.w as u32,
            r.size.h as u32,
        )
        .ok()
    };
    if clamped.len() > MAX_DAMAGE_RECTS {
        let bbox = clamped
            .iter()
            .skip(1)
            .fold(clamped[0], |acc, r| acc.merge(*r));
        return to_rect(&bbox).into_iter().collect();
    }
    clamped.iter().filter_map(to_rect).collect()
}

/// Whether the root surface has a buffer, i.e. the client mapped it.
pub fn surface_has_content(surface: &WlSurface) -> bool {
    with_renderer_surface_state(surface, |state| state.buffer().is_some()).unwrap_or(false)
}

impl AgentState {
    /// Composites every window whose surfaces changed and sends what changed.
    pub fn render_dirty_windows(&mut self) {
        if !self.link.is_ready() {
            return;
        }
        let dirty: Vec<WindowId> = self
            .windows
            .ids()
            .into_iter()
            .filter(|id| self.windows.get(*id).is_some_and(|w| w.dirty))
            .collect();
        for id in dirty {
            self.sync_window_metadata(id);
            self.render_window(id);
        }
    }

    fn render_window(&mut self, id: WindowId) {
        let scale = self.outputs.scale();
        let output = self.outputs.primary().clone();
        let Some(window) = self.windows.get_mut(id) else {
            return;
        };
        window.dirty = false;
        let Some(surface) = window.surface.clone() else {
            return;
        };
        if !window.remote.announced {
            // A popup whose parent is not announced yet: try again next time.
            window.dirty = true;
            return;
        }

        // Surfaces learn the output (and so the scale) they are shown on.
        with_surface_tree_downward(
            &surface,
            (),
            |_, _, _| TraversalAction::DoChildren(()),
            |surface, states, _| {
                output.enter(surface);
                smithay::wayland::compositor::send_surface_state(
                    surface,
                    states,
                    scale.ceil() as i32,
                    Transform::Normal,
                );
                with_fractional_scale(states, |fractional| {
                    fractional.set_preferred_scale(scale);
                });
            },
            |_, _, _| true,
        );

        if !surface_has_content(&surface) {
            if window.remote.mapped {
                window.remote.mapped = false;
                self.link.send(&AgentMessage::Unmap { window: id });
            }
            return;
        }
        let geometry = window.geometry();
        if geometry.size.w <= 0 || geometry.size.h <= 0 {
            return;
        }
        let max = MAX_SURFACE_DIMENSION as i32;
        let physical = geometry
            .size
            .to_f64()
            .to_physical(scale)
            .to_i32_round::<i32>();
        let physical: Size<i32, Physical> =
            (physical.w.clamp(1, max), physical.h.clamp(1, max)).into();

        let mut retired_pool = None;
        let needs_new_buffer = window
            .remote
            .buffer
            .as_ref()
            .is_none_or(|b| b.size != physical);
        if needs_new_buffer {
            let pool = self.link.next_pool_id();
            match WindowBuffer::new(pool, physical) {
                Ok(buffer) => {
                    if !self.link.announce_pool(&buffer) {
                        return;
                    }
                    retired_pool = window.remote.buffer.replace(buffer).map(|b| b.pool);
                }
                Err(err) => {
                    warn!(%err, window = %id, "could not allocate the window's pool");
                    return;
                }
            }
        }
        let Some(buffer) = window.remote.buffer.as_mut() else {
            return;
        };

        let location = (Point::<i32, Logical>::default() - geometry.loc)
            .to_f64()
            .to_physical(scale)
            .to_i32_round::<i32>();
        let elements: Vec<WaylandSurfaceRenderElement<PixmanRenderer>> =
            render_elements_from_surface_tree(
                &mut self.renderer,
                &surface,
                location,
                scale,
                1.0,
                Kind::Unspecified,
            );
        let age = if buffer.fresh { 0 } else { 1 };
        let damage = {
            let mut framebuffer = match self.renderer.bind(&mut buffer.image) {
                Ok(fb) => fb,
                Err(err) => {
                    warn!(%err, "binding the window buffer failed");
                    return;
                }
            };
            match buffer.damage_tracker.render_output(
                &mut self.renderer,
                &mut framebuffer,
                age,
                &elements,
                [0.0, 0.0, 0.0, 0.0],
            ) {
                Ok(result) => result.damage.cloned().unwrap_or_default(),
                Err(err) => {
                    warn!(?err, "rendering the window failed");
                    return;
                }
            }
        };
        let mut rects = protocol_damage(&damage, buffer.size);
        if buffer.fresh {
            rects = vec![buffer.full_rect()];
        }
        buffer.fresh = false;

        if rects.is_empty() {
            debug!(window = %id, awaiting = window.remote.awaiting_frame_done, "commit without visible change");
            // Nothing visible changed: no FrameDone will come for this commit, so the client
            // gets its frame callback on a short timer instead (never a busy loop).
            if !window.remote.awaiting_frame_done {
                self.schedule_idle_frame(id);
            }
            return;
        }
        let pool = buffer.pool;
        let layout = buffer.layout();
        self.link.send_pixels(buffer, &rects);
        if needs_new_buffer {
            self.link.send(&AgentMessage::Attach {
                window: id,
                pool,
                layout,
            });
        }
        self.link.send(&AgentMessage::Damage { window: id, rects });
        let serial = self.link.next_commit_serial();
        self.link.send(&AgentMessage::Commit { window: id, serial });
        if let Some(old) = retired_pool {
            self.link.send(&AgentMessage::PoolDestroy { pool: old });
        }
        if !window.remote.mapped {
            window.remote.mapped = true;
            self.link.send(&AgentMessage::Map { window: id });
        }
        window.remote.awaiting_frame_done = true;
        debug!(window = %id, ?damage, "committed");
    }

    /// The GUI domain showed the window's last commit: its surfaces may draw the next frame.
    pub fn frame_done(&mut self, id: WindowId) {
        let Some(window) = self.windows.get_mut(id) else {
            return;
        };
        window.remote.awaiting_frame_done = false;
        if let Some(surface) = window.surface.clone() {
            self.send_frame_callbacks(&surface, true);
        }
    }

    fn send_frame_callbacks(&mut self, surface: &WlSurface, presented: bool) {
        let output = self.outputs.primary().clone();
        let now = self.clock.now();
        if presented {
            let mut feedback = OutputPresentationFeedback::new(&output);
            take_presentation_feedback_surface_tree(
                surface,
                &mut feedback,
                |_, _| Some(output.clone()),
                |_, _| wp_presentation_feedback::Kind::empty(),
            );
            let refresh = output
                .current_mode()
                .and_then(|m| u64::try_from(m.refresh).ok())
                .filter(|mhz| *mhz > 0)
                .map(|mhz| Duration::from_nanos(1_000_000_000_000 / mhz))
                .map(smithay::wayland::presentation::Refresh::Fixed)
                .unwrap_or(smithay::wayland::presentation::Refresh::Unknown);
            feedback.presented::<_, Monotonic>(
                now,
                refresh,
                0,
                wp_presentation_feedback::Kind::empty(),
            );
        }
        send_frames_surface_tree(surface, &output, now, None, |_, _| Some(output.clone()));
    }

    fn schedule_idle_frame(&mut self, id: WindowId) {
        let Some(window) = self.windows.get_mut(id) else {
            return;
        };
        if window.idle_frame_scheduled {
            return;
        }
        window.idle_frame_scheduled = true;
        let inserted = self.loop_handle.insert_source(
            Timer::from_duration(IDLE_FRAME_DELAY),
            move |_, _, state: &mut AgentState| {
                if let Some(window) = state.windows.get_mut(id) {
                    debug!(window = %id, awaiting = window.remote.awaiting_frame_done, "idle frame");
                    window.idle_frame_scheduled = false;
                    if !window.remote.awaiting_frame_done
                        && let Some(surface) = window.surface.clone()
                    {
                        state.send_frame_callbacks(&surface, false);
                    }
                }
                TimeoutAction::Drop
            },
        );
        if inserted.is_err() {
            warn!("could not schedule a frame callback");
        }
    }

    /// Sends what the GUI domain does not know yet about a window's identity: creation, title,
    /// app id, size hints, popup placement.
    pub fn sync_window_metadata(&mut self, id: WindowId) {
        let scale = self.outputs.scale();
        let Some(window) = self.windows.get(id) else {
            return;
        };
        if let Some(parent) = window.parent
            && !self.windows.get(parent).is_some_and(|p| p.remote.announced)
        {
            // A popup waits for its parent.
            return;
        }
        let Some(window) = self.windows.get_mut(id) else {
            return;
        };
        let placement = popup_placement(window.popup_geometry, scale);
        if !window.remote.announced {
            let message = match (&window.role, window.parent) {
                (_, Some(parent)) => {
                    let (x, y, w, h) = placement;
                    match (
                        corral_protocol::Point::new(x, y),
                        corral_protocol::Size::new(w, h),
                    ) {
                        (Ok(position), Ok(size)) => AgentMessage::CreatePopup {
                            window: id,
                            parent,
                            position,
                            size,
                        },
                        _ => return,
                    }
                }
                _ => AgentMessage::CreateToplevel { window: id },
            };
            self.link.send(&message);
            window.remote.announced = true;
            window.remote.placement = Some(placement);
        }
        if window.is_popup() {
            if window.remote.placement != Some(placement) {
                let (x, y, w, h) = placement;
                if let (Ok(position), Ok(size)) = (
                    corral_protocol::Point::new(x, y),
                    corral_protocol::Size::new(w, h),
                ) {
                    self.link.send(&AgentMessage::RepositionPopup {
                        window: id,
                        position,
                        size,
                    });
                    window.remote.placement = Some(placement);
                }
            }
            return;
        }
        if window.remote.title.as_ref() != Some(&window.title) {
            self.link.send(&AgentMessage::SetTitle {
                window: id,
                title: window.title.clone(),
            });
            window.remote.title = Some(window.title.clone());
        }
        if window.remote.app_id.as_ref() != Some(&window.app_id) {
            self.link.send(&AgentMessage::SetAppId {
                window: id,
                app_id: window.app_id.clone(),
            });
            window.remote.app_id = Some(window.app_id.clone());
        }
        for request in std::mem::take(&mut window.state_requests) {
            self.link.send(&AgentMessage::RequestState {
                window: id,
                request,
            });
        }
        let hints = (window.min_size, window.max_size);
        if window.remote.size_hints != Some(hints) {
            self.link.send(&AgentMessage::SizeHints {
                window: id,
                min: hints.0,
                max: hints.1,
            });
            window.remote.size_hints = Some(hints);
        }
    }
}

/// A popup's position and size in buffer pixels, clamped to what the protocol accepts.
fn popup_placement(
    geometry: Rectangle<i32, smithay::utils::Logical>,
    scale: f64,
) -> (i32, i32, u32, u32) {
    let physical = geometry.to_f64().to_physical(scale).to_i32_round::<i32>();
    let limit = corral_protocol::limits::MAX_COORDINATE;
    let max = MAX_SURFACE_DIMENSION as i32;
    (
        physical.loc.x.clamp(-limit, limit),
        physical.loc.y.clamp(-limit, limit),
        physical.size.w.clamp(1, max) as u32,
        physical.size.h.clamp(1, max) as u32,
    )
}

use smithay::utils::Monotonic;
