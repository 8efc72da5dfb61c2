//! The winit backend: one output, a window in an existing X11 or Wayland session, drawn with
//! GLES. For development and for the demo on a machine with a display.

use smithay::backend::input::{
    AbsolutePositionEvent, ButtonState, Event, InputEvent, KeyState, KeyboardKeyEvent,
    PointerButtonEvent,
};
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::gles::{GlesRenderer, GlesTexture};
use smithay::backend::winit::{
    self as smithay_winit, WinitEvent, WinitEventLoop, WinitGraphicsBackend, WinitInput,
};
use smithay::reexports::calloop::LoopHandle;
use smithay::utils::Transform;

use super::{Backend, OffscreenParts, Screenshot, blit, bounds, render_offscreen};
use crate::layout::{OutputArea, Rect};
use crate::render;
use crate::state::State;

pub struct Winit {
    backend: WinitGraphicsBackend<GlesRenderer>,
    damage: OutputDamageTracker,
    area: OutputArea,
    full_redraw: u8,
}

impl std::fmt::Debug for Winit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Winit")
            .field("area", &self.area)
            .finish_non_exhaustive()
    }
}

impl Winit {
    /// Opens the window. Fails without a display.
    pub fn new() -> anyhow::Result<(Winit, WinitEventLoop)> {
        let (backend, events) = smithay_winit::init::<GlesRenderer>()
            .map_err(|e| anyhow::anyhow!("opening a nested window (winit, GLES): {e}"))?;
        let size = backend.window_size();
        let area = OutputArea {
            name: "winit".into(),
            rect: Rect::new(0, 0, size.w.max(1), size.h.max(1)),
        };
        Ok((
            Winit {
                backend,
                damage: OutputDamageTracker::new(
                    (area.rect.w, area.rect.h),
                    1.0,
                    Transform::Flipped180,
                ),
                area,
                full_redraw: 4,
            },
            events,
        ))
    }

    pub fn output_areas(&self) -> Vec<OutputArea> {
        vec![self.area.clone()]
    }
}

/// Feeds the window's events into the compositor.
pub fn register(handle: &LoopHandle<'static, State>, events: WinitEventLoop) -> anyhow::Result<()> {
    handle
        .insert_source(events, |event, _, state: &mut State| {
            state.winit_event(event)
        })
        .map_err(|e| anyhow::anyhow!("registering the winit event source: {e}"))?;
    Ok(())
}

impl State {
    fn winit_event(&mut self, event: WinitEvent) {
        match event {
            WinitEvent::Resized { size, .. } => {
                let area = OutputArea {
                    name: "winit".into(),
                    rect: Rect::new(0, 0, size.w.max(1), size.h.max(1)),
                };
                if let Backend::Winit(w) = &mut self.backend {
                    w.area = area.clone();
                    w.damage = OutputDamageTracker::new(
                        (area.rect.w, area.rect.h),
                        1.0,
                        Transform::Flipped180,
                    );
                    w.full_redraw = 4;
                }
                self.set_outputs(vec![area]);
            }
            WinitEvent::Input(event) => self.winit_input(event),
            WinitEvent::CloseRequested => {
                self.running = false;
                self.signal.stop();
            }
            WinitEvent::Redraw => self.queue_redraw(),
            WinitEvent::Focus(_) => {}
        }
    }

    fn winit_input(&mut self, event: InputEvent<WinitInput>) {
        match event {
            InputEvent::Keyboard { event } => {
                let code = event.key_code().raw().saturating_sub(8);
                self.handle_key(code, event.state() == KeyState::Pressed, event.time_msec());
            }
            InputEvent::PointerMotionAbsolute { event } => {
                let rect = self
                    .layout
                    .outputs()
                    .first()
                    .map(|o| o.rect)
                    .unwrap_or_default();
                let x = f64::from(rect.x) + event.x_transformed(rect.w);
                let y = f64::from(rect.y) + event.y_transformed(rect.h);
                self.pointer_motion(x, y, event.time_msec());
            }
            InputEvent::PointerButton { event } => {
                self.pointer_button(
                    event.button_code(),
                    event.state() == ButtonState::Pressed,
                    event.time_msec(),
                );
            }
            InputEvent::PointerAxis { event } => self.pointer_axis_event(&event),
            _ => {}
        }
    }
}

pub(super) fn render(state: &mut State) -> anyhow::Result<()> {
    super::with_frame(state, |backend, frame, qubes, render_cache| {
        let Backend::Winit(w) = backend else {
            return Ok(());
        };
        // The buffer age EGL reports is not trustworthy everywhere (Xvfb with llvmpipe showed
        // stale regions), and this backend is for development: redraw whole frames.
        w.full_redraw = w.full_redraw.saturating_sub(1);
        let age = 0;
        let rect = w.area.rect;
        let damage = {
            let (renderer, mut fb) = w
                .backend
                .bind()
                .map_err(|e| anyhow::anyhow!("binding the window: {e}"))?;
            let elements = render::output_elements(renderer, frame, qubes, render_cache, rect);
            let result = w
                .damage
                .render_output(
                    renderer,
                    &mut fb,
                    age,
                    &elements,
                    render::background().to_f32(),
                )
                .map_err(|e| anyhow::anyhow!("rendering: {e:?}"))?;
            result.damage.cloned()
        };
        if let Some(damage) = damage {
            w.backend
                .submit(Some(&damage))
                .map_err(|e| anyhow::anyhow!("presenting: {e}"))?;
        }
        Ok(())
    })
}

pub(super) fn screenshot(state: &mut State) -> anyhow::Result<Screenshot> {
    super::with_frame(state, |backend, frame, qubes, render_cache| {
        let Backend::Winit(w) = backend else {
            anyhow::bail!("not the winit backend");
        };
        let rect = w.area.rect;
        let mut parts = OffscreenParts {
            frame,
            qubes,
            cache: render_cache,
        };
        let rgba =
            render_offscreen::<GlesRenderer, GlesTexture>(w.backend.renderer(), &mut parts, rect)?;
        let areas = [w.area.clone()];
        let b = bounds(&areas);
        let mut canvas = Screenshot {
            width: b.w as u32,
            height: b.h as u32,
            rgba: vec![0; (b.w * b.h * 4) as usize],
        };
        blit(&mut canvas, b, rect, &rgba);
        Ok(canvas)
    })
}
