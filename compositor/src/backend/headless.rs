//! The headless backend: virtual outputs side by side, each an offscreen Pixman image. Qube
//! pools are read in place by Pixman. What tests, CI and screenshots run on.

use smithay::backend::renderer::Bind;
use smithay::backend::renderer::damage::OutputDamageTracker;
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::reexports::pixman;
use smithay::utils::Transform;

use super::{Backend, Screenshot, blit, bounds, read_back};
use crate::layout::{OutputArea, Rect};
use crate::render::{self, BACKGROUND};
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
}

impl Headless {
    /// Outputs of the given sizes, left to right.
    pub fn new(sizes: &[(i32, i32)]) -> anyhow::Result<Headless> {
        let renderer =
            PixmanRenderer::new().map_err(|e| anyhow::anyhow!("starting Pixman: {e:?}"))?;
        let mut outputs = Vec::new();
        let mut x = 0;
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let image =
                pixman::Image::new(pixman::FormatCode::A8R8G8B8, w as usize, h as usize, true)
                    .map_err(|_| anyhow::anyhow!("allocating a {w}x{h} output image"))?;
            outputs.push(HeadlessOutput {
                area: OutputArea {
                    name: format!("headless-{}", i + 1),
                    rect: Rect::new(x, 0, w, h),
                },
                image,
                damage: OutputDamageTracker::new((w, h), 1.0, Transform::Normal),
                age: 0,
            });
            x += w;
        }
        Ok(Headless { renderer, outputs })
    }

    pub fn output_areas(&self) -> Vec<OutputArea> {
        self.outputs.iter().map(|o| o.area.clone()).collect()
    }
}

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
                    BACKGROUND.to_f32(),
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
