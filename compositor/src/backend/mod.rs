//! Backends side by side: `headless` (Pixman into offscreen images: tests, CI, screenshots),
//! `winit` (GLES, nested in an existing X11 or Wayland session) and `udev` (the real session:
//! DRM/KMS, libinput, libseat). Everything above this module is backend-agnostic.

pub mod headless;
pub mod udev;
pub mod winit;

use anyhow::Context;
use smithay::backend::allocator::Fourcc;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::{Bind, ExportMem, Offscreen};
use smithay::utils::{Buffer as BufferCoords, Rectangle, Transform};

use crate::layout::{OutputArea, Rect};
use crate::render::{self, CorralRenderer, Frame};
use crate::state::State;

/// Which backend to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Winit when DISPLAY or WAYLAND_DISPLAY is set, headless otherwise.
    Auto,
    Headless,
    Winit,
    /// The real session on this machine's screens (DRM/KMS, libinput, a libseat seat). Never
    /// chosen by `auto`.
    Udev,
}

impl BackendKind {
    /// Resolves `auto` from the environment.
    pub fn resolve(self) -> BackendKind {
        match self {
            BackendKind::Auto => {
                let set = |v: &str| std::env::var_os(v).is_some_and(|s| !s.is_empty());
                if set("WAYLAND_DISPLAY") || set("DISPLAY") {
                    BackendKind::Winit
                } else {
                    BackendKind::Headless
                }
            }
            other => other,
        }
    }
}

#[derive(Debug)]
pub enum Backend {
    Headless(headless::Headless),
    Winit(Box<winit::Winit>),
    Udev(Box<udev::Udev>),
}

/// A screenshot of all outputs, composited into one RGBA image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screenshot {
    pub width: u32,
    pub height: u32,
    /// Bytes R, G, B, A per pixel, rows top to bottom.
    pub rgba: Vec<u8>,
}

impl Screenshot {
    pub fn encode_png(&self) -> anyhow::Result<Vec<u8>> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, self.width, self.height);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&self.rgba)?;
        }
        Ok(out)
    }
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Headless(_) => "headless",
            Backend::Winit(_) => "winit",
            Backend::Udev(_) => "udev",
        }
    }

    pub fn output_areas(&self) -> Vec<OutputArea> {
        match self {
            Backend::Headless(h) => h.output_areas(),
            Backend::Winit(w) => w.output_areas(),
            Backend::Udev(u) => u.output_areas(),
        }
    }
}

impl State {
    /// Draws every output if something changed; sends `frame_done` for the commits shown.
    /// Whether every monitor now shows a frame drawn while locked. Headless and nested frames
    /// are shown when drawn; on udev a frame is on the monitor at its page flip (and a
    /// session switched away from shows nothing).
    pub fn locked_frame_on_every_output(&self) -> bool {
        match &self.backend {
            Backend::Headless(_) | Backend::Winit(_) => true,
            Backend::Udev(u) => u.locked_frame_on_every_output(),
        }
    }

    pub fn render(&mut self) {
        let started = std::time::Instant::now();
        let result = match &self.backend {
            Backend::Headless(_) => headless::render(self),
            Backend::Winit(_) => winit::render(self),
            Backend::Udev(_) => udev::render(self),
        };
        // What `cargo xtask bench` reads (RUST_LOG=corral::frame_time=trace) for the compositor's
        // frame time: composition of every output, without sending frame callbacks.
        tracing::trace!(
            target: "corral::frame_time",
            render_us = started.elapsed().as_micros() as u64,
            "frame rendered"
        );
        if let Err(e) = result {
            tracing::warn!("rendering failed: {e:#}");
        }
        self.redraw_needed = false;
        self.drawn_pulse = self.pulse_on();
        self.last_frame = Some(std::time::Instant::now());
        self.frames_presented();
        self.local_frames_presented();
        self.lock_frames_presented();
    }

    /// The composited outputs, as they are now.
    pub fn screenshot(&mut self) -> anyhow::Result<Screenshot> {
        match &self.backend {
            Backend::Headless(_) => {
                if self.redraw_needed {
                    self.render();
                }
                headless::screenshot(self)
            }
            Backend::Winit(_) => winit::screenshot(self),
            Backend::Udev(_) => udev::screenshot(self),
        }
    }
}

/// The bounding box of the outputs.
pub fn bounds(outputs: &[OutputArea]) -> Rect {
    let x0 = outputs.iter().map(|o| o.rect.x).min().unwrap_or(0);
    let y0 = outputs.iter().map(|o| o.rect.y).min().unwrap_or(0);
    let x1 = outputs.iter().map(|o| o.rect.right()).max().unwrap_or(1);
    let y1 = outputs.iter().map(|o| o.rect.bottom()).max().unwrap_or(1);
    Rect::new(x0, y0, (x1 - x0).max(1), (y1 - y0).max(1))
}

/// Copies `rgba` of an output at `rect` into the screenshot canvas covering `bounds`.
pub fn blit(canvas: &mut Screenshot, bounds: Rect, rect: Rect, rgba: &[u8]) {
    let row = rect.w as usize * 4;
    for y in 0..rect.h as usize {
        let src = &rgba[y * row..(y + 1) * row];
        let cy = (rect.y - bounds.y) as usize + y;
        let cx = (rect.x - bounds.x) as usize;
        let start = (cy * canvas.width as usize + cx) * 4;
        canvas.rgba[start..start + row].copy_from_slice(src);
    }
}

/// Renders one output into a fresh offscreen buffer and reads it back as RGBA (for screenshots
/// where the visible framebuffer cannot be read, as with winit).
pub fn render_offscreen<R, T>(
    renderer: &mut R,
    state_parts: &mut OffscreenParts<'_>,
    output: Rect,
) -> anyhow::Result<Vec<u8>>
where
    R: CorralRenderer + Offscreen<T> + Bind<T> + ExportMem,
{
    let size = (output.w, output.h);
    let mut buffer = renderer
        .create_buffer(Fourcc::Abgr8888, size.into())
        .map_err(|e| anyhow::anyhow!("creating an offscreen buffer: {e:?}"))?;
    let elements = render::output_elements(
        renderer,
        state_parts.frame,
        state_parts.qubes,
        state_parts.cache,
        output,
    );
    let mut target = renderer
        .bind(&mut buffer)
        .map_err(|e| anyhow::anyhow!("binding the offscreen buffer: {e:?}"))?;
    let mut damage = OutputDamageTracker::new(size, 1.0, Transform::Normal);
    damage
        .render_output(
            renderer,
            &mut target,
            0,
            &elements,
            render::background().to_f32(),
        )
        .map_err(|e| anyhow::anyhow!("rendering the screenshot: {e:?}"))?;
    read_back(renderer, &target, output.w, output.h)
}

/// Prepares what every frame draws, the same for every backend, and hands it to `draw` with
/// the backend: the layout, the GUI domain's windows, the toasts and where they go, the pulse
/// phase, the qubes' pools and the texture cache. Textures of toasts that have expired are
/// dropped here, so no backend keeps them.
pub(super) fn with_frame<T>(
    state: &mut State,
    draw: impl FnOnce(&mut Backend, &Frame<'_>, &mut crate::qubes::Qubes, &mut render::RenderCache) -> T,
) -> T {
    let pulse_on = state.pulse_on();
    let first = state.first_output();
    // Locked: every output gets the lock screen only (see `render::output_elements`).
    let lock = state.lock_frame();
    let panel =
        (state.layout.config.reserved_top > 0 && lock.is_none()).then(|| state.panel_model());
    let State {
        backend,
        layout,
        qubes,
        notifications,
        render_cache,
        local_windows,
        launcher,
        panel_menu,
        ..
    } = state;
    let launcher = (launcher.is_open() && lock.is_none())
        .then(|| first.map(|out| (&*launcher, crate::launcher::Launcher::rect_on(out))))
        .flatten();
    let live: Vec<u64> = notifications.toasts().iter().map(|t| t.id).collect();
    render_cache.retain_toasts(|id| live.contains(&id));
    // Toasts stack below the panel.
    let toast_rects = notifications.rects(first.map(|o| layout.work_area(o)));
    let frame = Frame {
        layout,
        local: local_windows,
        toasts: notifications.toasts(),
        toast_rects: &toast_rects,
        pulse_on,
        lock: lock.as_ref(),
        launcher,
        panel: panel.as_ref(),
        panel_menu: panel_menu.as_ref().filter(|_| panel.is_some()),
    };
    draw(backend, &frame, qubes, render_cache)
}

/// What [`render_offscreen`] needs from the state.
#[derive(Debug)]
pub struct OffscreenParts<'a> {
    pub frame: &'a Frame<'a>,
    pub qubes: &'a mut crate::qubes::Qubes,
    pub cache: &'a mut render::RenderCache,
}

/// Reads a framebuffer back as RGBA bytes.
pub fn read_back<R: ExportMem>(
    renderer: &mut R,
    target: &R::Framebuffer<'_>,
    w: i32,
    h: i32,
) -> anyhow::Result<Vec<u8>> {
    let region: Rectangle<i32, BufferCoords> = Rectangle::from_size((w, h).into());
    let mapping = renderer
        .copy_framebuffer(target, region, Fourcc::Abgr8888)
        .map_err(|e| anyhow::anyhow!("reading the framebuffer: {e:?}"))?;
    let bytes = renderer
        .map_texture(&mapping)
        .map_err(|e| anyhow::anyhow!("mapping the framebuffer copy: {e:?}"))?;
    let expected = (w * h * 4) as usize;
    let mut out = bytes
        .get(..expected)
        .context("short framebuffer copy")?
        .to_vec();
    // Every pixel on screen is opaque.
    for px in out.chunks_exact_mut(4) {
        px[3] = 0xff;
    }
    Ok(out)
}
