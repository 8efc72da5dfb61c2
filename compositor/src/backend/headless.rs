//! The headless backend: virtual outputs side by side, each an offscreen Pixman image. Qube
//! pools are read in place by Pixman. What tests, CI and screenshots run on.

use smithay::backend::renderer::Bind;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::reexports::pixman;
use smithay::utils::Transform;

use super::{Backend, Screenshot, blit, bounds, read_back};
use crate::layout::{OutputArea, Rect};
use crate::render;
use crate::state::State;

pub struct HeadlessOutput {
    pub area: OutputArea,
    image: pixman::Image<'static, 'static>,
    damage: OutputDamageTracker,
    /// 0 until the image holds a frame, then 1 (the same image is reused).
    age: usize,
}

impl std::fmt::Debug for HeadlessOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadlessOutput")
            .field("area", &self.area)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct Headless {
    renderer: PixmanRenderer,
    outputs: Vec<HeadlessOutput>,
    /// The `--size` of each virtual output, `headless-1`, `headless-2`...
    sizes: Vec<(i32, i32)>,
}

impl Headless {
    /// Outputs of the given sizes, left to right.
    pub fn new(sizes: &[(i32, i32)]) -> anyhow::Result<Headless> {
        let renderer =
            PixmanRenderer::new().map_err(|e| anyhow::anyhow!("starting Pixman: {e:?}"))?;
        let mut headless = Headless {
            renderer,
            outputs: Vec::new(),
            sizes: sizes.to_vec(),
        };
        headless.configure(&[])?;
        Ok(headless)
    }

    /// Applies the config's `[[output]]` tables to the virtual outputs (matched by name):
    /// `mode` sets the size, `position` the place (unset: right of the previous one),
    /// `transform` 90/270 swaps width and height, `enabled = false` leaves the output out
    /// (one always stays). `scale` is not drawn by this backend. Returns whether anything
    /// changed; an output whose area stayed keeps its image.
    pub fn configure(&mut self, config: &[crate::config::schema::Output]) -> anyhow::Result<bool> {
        let mut areas = Vec::new();
        let mut x = 0;
        for (i, &(w, h)) in self.sizes.iter().enumerate() {
            let name = format!("headless-{}", i + 1);
            let c = config.iter().find(|c| c.matches == name);
            if c.is_some_and(|c| !c.enabled) {
                continue;
            }
            let (mut w, mut h) = c
                .and_then(|c| c.mode.as_deref())
                .and_then(|m| crate::config::schema::Output::parse_mode(m).ok())
                .map_or((w, h), |(w, h, _)| (w, h));
            if c.is_some_and(|c| c.transform.swaps_axes()) {
                std::mem::swap(&mut w, &mut h);
            }
            let (ox, oy) = c
                .and_then(|c| c.position)
                .map_or((x, 0), |[px, py]| (px.get() as i32, py.get() as i32));
            areas.push(OutputArea {
                name,
                rect: Rect::new(ox, oy, w, h),
            });
            x = ox + w;
        }
        if areas.is_empty() {
            // Every output disabled: keep the first, so there is somewhere to draw the lock
            // screen and notifications.
            let (w, h) = self.sizes.first().copied().unwrap_or((1600, 900));
            areas.push(OutputArea {
                name: "headless-1".into(),
                rect: Rect::new(0, 0, w, h),
            });
        }
        if areas == self.output_areas() {
            return Ok(false);
        }
        let mut old = std::mem::take(&mut self.outputs);
        for area in areas {
            let (w, h) = (area.rect.w, area.rect.h);
            if let Some(i) = old
                .iter()
                .position(|o| o.area.name == area.name && (o.area.rect.w, o.area.rect.h) == (w, h))
            {
                let mut kept = old.swap_remove(i);
                kept.area = area;
                kept.age = 0;
                self.outputs.push(kept);
                continue;
            }
            let image =
                pixman::Image::new(pixman::FormatCode::A8R8G8B8, w as usize, h as usize, true)
                    .map_err(|_| anyhow::anyhow!("allocating a {w}x{h} output image"))?;
            self.outputs.push(HeadlessOutput {
                area,
                image,
                damage: OutputDamageTracker::new((w, h), 1.0, Transform::Normal),
                age: 0,
            });
        }
        Ok(true)
    }

    pub fn output_areas(&self) -> Vec<OutputArea> {
        self.outputs.iter().map(|o| o.area.clone()).collect()
    }

    /// Adds a virtual output of `w`×`h` after the others (`corral msg add-output`, what a
    /// monitor plugged in is on real hardware), with the config's `[[output]]` settings applied
    /// as to the others. Returns its name.
    pub fn add_output(
        &mut self,
        w: i32,
        h: i32,
        config: &[crate::config::schema::Output],
    ) -> anyhow::Result<String> {
        if !(64..=16384).contains(&w) || !(64..=16384).contains(&h) {
            anyhow::bail!("an output is 64 to 16384 pixels on each side, not {w}x{h}");
        }
        if self.sizes.len() >= MAX_OUTPUTS {
            anyhow::bail!("at most {MAX_OUTPUTS} virtual outputs");
        }
        self.sizes.push((w, h));
        if let Err(e) = self.configure(config) {
            self.sizes.pop();
            return Err(e);
        }
        Ok(format!("headless-{}", self.sizes.len()))
    }
}

/// The most virtual outputs `add-output` makes.
const MAX_OUTPUTS: usize = 16;

pub(super) fn render(state: &mut State) -> anyhow::Result<()> {
    super::with_frame(state, |backend, frame, qubes, render_cache| {
        let Backend::Headless(headless) = backend else {
            return Ok(());
        };
        for out in &mut headless.outputs {
            let elements = render::output_elements(
                &mut headless.renderer,
                frame,
                qubes,
                render_cache,
                out.area.rect,
            );
            let mut target = headless
                .renderer
                .bind(&mut out.image)
                .map_err(|e| anyhow::anyhow!("binding {}: {e:?}", out.area.name))?;
            out.damage
                .render_output(
                    &mut headless.renderer,
                    &mut target,
                    out.age,
                    &elements,
                    render::background().to_f32(),
                )
                .map_err(|e| anyhow::anyhow!("rendering {}: {e:?}", out.area.name))?;
            out.age = 1;
        }
        Ok(())
    })
}

pub(super) fn screenshot(state: &mut State) -> anyhow::Result<Screenshot> {
    let Backend::Headless(headless) = &mut state.backend else {
        anyhow::bail!("not the headless backend");
    };
    let areas = headless.output_areas();
    let bounds = bounds(&areas);
    let mut canvas = Screenshot {
        width: bounds.w as u32,
        height: bounds.h as u32,
        rgba: vec![0; (bounds.w * bounds.h * 4) as usize],
    };
    for out in &mut headless.outputs {
        let rect = out.area.rect;
        let target = headless
            .renderer
            .bind(&mut out.image)
            .map_err(|e| anyhow::anyhow!("binding {}: {e:?}", out.area.name))?;
        let rgba = read_back(&mut headless.renderer, &target, rect.w, rect.h)?;
        blit(&mut canvas, bounds, rect, &rgba);
    }
    Ok(canvas)
}
