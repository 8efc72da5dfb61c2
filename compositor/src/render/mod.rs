//! Rendering: turns the scene (see [`scene`]) into Smithay render elements for any renderer.
//!
//! Qube pixels come straight from the mapped pools. With Pixman the pool is read in place
//! (a Pixman image over `PoolMemory::as_ptr()`, zero copies); other renderers (GLES) get a
//! memory buffer that is updated from the damaged regions only. Chrome (title bars, borders)
//! and the trusted layer are drawn from trusted data only.

pub mod scene;
pub mod text;

use std::collections::HashMap;

use corral_protocol::PixelFormat;
use corral_protocol::channel::PoolMemory;
use corral_protocol::channel::pool::copy_rect;
use smithay::backend::allocator::Fourcc;
use smithay::backend::renderer::element::memory::{
    MemoryRenderBuffer, MemoryRenderBufferRenderElement,
};
use smithay::backend::renderer::element::solid::SolidColorRenderElement;
use smithay::backend::renderer::element::surface::{
    WaylandSurfaceRenderElement, render_elements_from_surface_tree,
};
use smithay::backend::renderer::element::texture::TextureRenderElement;
use smithay::backend::renderer::element::utils::CropRenderElement;
use smithay::backend::renderer::element::{Id, Kind};
use smithay::backend::renderer::gles::GlesRenderer;
use smithay::backend::renderer::pixman::{PixmanRenderer, PixmanTexture};
use smithay::backend::renderer::utils::CommitCounter;
use smithay::backend::renderer::{ImportAll, ImportMem, Renderer};
use smithay::reexports::pixman;
use smithay::utils::{Buffer as BufferCoords, Physical, Point, Rectangle, Size, Transform};

use crate::labels::{self, Rgb};
use crate::layout::{Layout, Rect, WinId};
use crate::local::{self, GUI_DOMAIN_NAME, LocalWindows};
use crate::notify::Toast;
use crate::qubes::{QubeConnection, QubeWindow, Qubes, WindowKind};
use scene::{Item, WindowLook};
use text::Pixels;

smithay::backend::renderer::element::render_elements! {
    /// Everything the compositor draws.
    pub CorralElement<R> where R: ImportMem + ImportAll;
    Solid = SolidColorRenderElement,
    Memory = MemoryRenderBufferRenderElement<R>,
    Texture = TextureRenderElement<R::TextureId>,
    Local = CropRenderElement<WaylandSurfaceRenderElement<R>>,
}

impl<R: Renderer + ImportMem + ImportAll> std::fmt::Debug for CorralElement<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Solid(e) => f.debug_tuple("Solid").field(e).finish(),
            Self::Memory(e) => f.debug_tuple("Memory").field(e).finish(),
            Self::Texture(_) => f.write_str("Texture"),
            Self::Local(_) => f.write_str("Local"),
            Self::_GenericCatcher(_) => f.write_str("_GenericCatcher"),
        }
    }
}

/// The colour behind everything in the default theme (the theme's `frame.background` is drawn).
pub const BACKGROUND: Rgb = Rgb::new(0x20, 0x22, 0x26);
/// The neutral fill of a window's interior where it has no content (QSB-39), in the default
/// theme (the theme's `frame.empty_fill` is drawn).
pub const NEUTRAL_FILL: Rgb = Rgb::new(0x80, 0x80, 0x80);
/// Title text size in pixels by default (`decorations.font_size` is drawn).
pub const TITLE_PX: f32 = 15.0;

/// A renderer the compositor can draw qube content with.
pub trait CorralRenderer:
    Renderer<TextureId: Clone + Send + 'static> + ImportMem + ImportAll + Sized
{
    /// The element showing a window's committed buffer, `visible` pixels of it, at `location`
    /// (output-local).
    fn content_element(
        &mut self,
        window: &mut QubeWindow,
        pool: &dyn PoolMemory,
        location: Point<i32, Physical>,
        visible: (i32, i32),
    ) -> Option<CorralElement<Self>>;
}

impl CorralRenderer for PixmanRenderer {
    fn content_element(
        &mut self,
        window: &mut QubeWindow,
        pool: &dyn PoolMemory,
        location: Point<i32, Physical>,
        visible: (i32, i32),
    ) -> Option<CorralElement<Self>> {
        let current = window.current?;
        let layout = current.layout;
        if window.cache.pixman.is_none() {
            window.cache.pixman = zero_copy_texture(pool, current.layout);
        }
        let Some(texture) = window.cache.pixman.clone() else {
            // The memory cannot be read in place (unaligned inline pool): copy it.
            return memory_element(self, window, pool, location, visible);
        };
        let size = layout.size();
        let opaque = (layout.format() == PixelFormat::Xrgb8888).then(|| {
            vec![Rectangle::from_size(
                (size.width() as i32, size.height() as i32).into(),
            )]
        });
        Some(CorralElement::Texture(
            TextureRenderElement::from_texture_with_damage(
                window.cache.id.clone(),
                self.context_id(),
                location.to_f64(),
                texture,
                1,
                Transform::Normal,
                None,
                Some(Rectangle::from_size((visible.0, visible.1).into()).to_f64()),
                Some(visible.into()),
                opaque,
                window.damage.snapshot(),
                Kind::Unspecified,
            ),
        ))
    }
}

impl CorralRenderer for GlesRenderer {
    fn content_element(
        &mut self,
        window: &mut QubeWindow,
        pool: &dyn PoolMemory,
        location: Point<i32, Physical>,
        visible: (i32, i32),
    ) -> Option<CorralElement<Self>> {
        memory_element(self, window, pool, location, visible)
    }
}

/// A Pixman image that reads the buffer where it lies in the pool.
fn zero_copy_texture(
    pool: &dyn PoolMemory,
    layout: corral_protocol::BufferLayout,
) -> Option<PixmanTexture> {
    let base = pool.as_ptr()?;
    let offset = usize::try_from(layout.offset()).ok()?;
    if layout.end() > pool.len() || !(base.as_ptr() as usize + offset).is_multiple_of(4) {
        return None;
    }
    let format = match layout.format() {
        PixelFormat::Argb8888 => pixman::FormatCode::A8R8G8B8,
        PixelFormat::Xrgb8888 => pixman::FormatCode::X8R8G8B8,
    };
    // SAFETY: `base` is the start of the pool's mapping, valid for `pool.len()` bytes while the
    // pool lives. The session checked `layout.end() <= pool size` (re-checked above), so the
    // image's rows (offset + stride × (height − 1) + width × 4 bytes) lie inside it, and offset
    // and stride are multiples of 4 with a 4-byte aligned start (checked above), so every pixel
    // is an aligned u32. Pixman only reads from this image (it is used as a source, never
    // bound as a target). The image must not outlive the mapping: it lives in the window's
    // `ContentCache`, which is cleared when the pool is destroyed (`forget_pool`) and dropped
    // before the connection (and its pools) when the qube goes away (field order of
    // `QubeConnection`). The agent may write pixels concurrently; that only changes pixel
    // values, never sizes.
    let image = unsafe {
        pixman::Image::from_raw_mut(
            format,
            layout.size().width() as usize,
            layout.size().height() as usize,
            base.as_ptr().add(offset).cast::<u32>(),
            layout.stride() as usize,
            false,
        )
    }
    .ok()?;
    Some(PixmanTexture::from(image))
}

/// A copy of the visible part of the buffer in compositor memory, refreshed from damaged
/// regions. Only what can be shown is copied, so a qube attaching a huge buffer costs the
/// compositor no more memory than its window's interior.
pub(crate) fn memory_element<R: CorralRenderer>(
    renderer: &mut R,
    window: &mut QubeWindow,
    pool: &dyn PoolMemory,
    location: Point<i32, Physical>,
    visible: (i32, i32),
) -> Option<CorralElement<R>> {
    let current = window.current?;
    let layout = current.layout;
    let (bw, bh) = (layout.size().width() as i32, layout.size().height() as i32);
    let (w, h) = (bw.min(visible.0).max(1), bh.min(visible.1).max(1));
    let fourcc = match layout.format() {
        PixelFormat::Argb8888 => Fourcc::Argb8888,
        PixelFormat::Xrgb8888 => Fourcc::Xrgb8888,
    };
    let cache = &mut window.cache;
    if cache.memory_size != (w, h) {
        cache.memory = None;
    }
    if cache.memory.is_none() {
        cache.memory = Some(MemoryRenderBuffer::new(
            fourcc,
            (w, h),
            1,
            Transform::Normal,
            None,
        ));
        cache.memory_size = (w, h);
        cache.upload_all = true;
    }
    let rects: Vec<corral_protocol::Rect> = if cache.upload_all {
        corral_protocol::Rect::new(0, 0, w as u32, h as u32)
            .ok()
            .into_iter()
            .collect()
    } else {
        std::mem::take(&mut cache.upload_damage)
    };
    cache.upload_all = false;
    cache.upload_damage.clear();
    let buffer = cache.memory.as_mut()?;
    if !rects.is_empty() {
        let mut ctx = buffer.render();
        let mut scratch = Vec::new();
        let _ = ctx.draw(
            |mem: &mut [u8]| -> Result<Vec<Rectangle<i32, BufferCoords>>, ()> {
                let mut damage = Vec::new();
                let row_bytes = w as usize * 4;
                for rect in &rects {
                    // Clipped to the copied part (which is inside the buffer).
                    let Some(rect) = rect.clamp_to(w as u32, h as u32) else {
                        continue;
                    };
                    copy_rect(pool, layout, rect, &mut scratch);
                    let rw = rect.width() as usize * 4;
                    for (i, row) in scratch.chunks_exact(rw).enumerate() {
                        let start = (rect.y() as usize + i) * row_bytes + rect.x() as usize * 4;
                        if let Some(dst) = mem.get_mut(start..start + rw) {
                            dst.copy_from_slice(row);
                        }
                    }
                    damage.push(Rectangle::new(
                        (rect.x() as i32, rect.y() as i32).into(),
                        (rect.width() as i32, rect.height() as i32).into(),
                    ));
                }
                Ok(damage)
            },
        );
    }
    MemoryRenderBufferRenderElement::from_buffer(
        renderer,
        location.to_f64(),
        buffer,
        None,
        Some(Rectangle::from_size((w, h).into()).to_f64()),
        Some((w, h).into()),
        Kind::Unspecified,
    )
    .ok()
    .map(CorralElement::Memory)
}

/// Element ids and cached text of one window's chrome.
#[derive(Debug)]
struct Chrome {
    borders: [Id; 4],
    fill: Id,
    title_key: Option<(String, i32, i32, Rgb, Rgb, bool)>,
    title: Option<MemoryRenderBuffer>,
}

impl Chrome {
    fn new() -> Self {
        Chrome {
            borders: [Id::new(), Id::new(), Id::new(), Id::new()],
            fill: Id::new(),
            title_key: None,
            title: None,
        }
    }
}

/// Renderer-independent caches of trusted drawings.
#[derive(Debug, Default)]
pub struct RenderCache {
    chrome: HashMap<WinId, Chrome>,
    toasts: HashMap<u64, MemoryRenderBuffer>,
    lock: crate::lock::ui::LockCache,
    /// The launcher's drawing, with the launcher version and size it shows.
    launcher: Option<(u64, Rect, MemoryRenderBuffer)>,
    /// Each output's panel drawing (by output origin), with the model and width it shows.
    panels: HashMap<(i32, i32), (crate::panel::PanelModel, i32, MemoryRenderBuffer)>,
    /// The open panel menu's drawing, with the menu it shows.
    panel_menu: Option<(crate::panel::QubeMenu, MemoryRenderBuffer)>,
}

impl RenderCache {
    pub fn forget_window(&mut self, win: WinId) {
        self.chrome.remove(&win);
    }

    pub fn retain_toasts(&mut self, live: impl Fn(u64) -> bool) {
        self.toasts.retain(|id, _| live(*id));
    }
}

/// The text of a title bar: `decorations.title_format` (by default the trusted `[qube]`
/// prefix, then the qube's sanitised title). With `decorations.utf8_titles` off, only
/// printable ASCII of the title is shown (anything else becomes `_`, as in Qubes).
pub fn title_text(qube: &str, untrusted_title: &str) -> String {
    let look = crate::config::theme::look();
    let d = &look.decorations;
    if d.utf8_titles {
        d.title_format.render(qube, untrusted_title)
    } else {
        let ascii: String = untrusted_title
            .chars()
            .map(|c| if (' '..='~').contains(&c) { c } else { '_' })
            .collect();
        d.title_format.render(qube, &ascii)
    }
}

/// Colour of a title bar: the label colour, lightened on the bright phase of an attention
/// pulse (by the theme's `attention_mix_percent`). Borders always keep the exact label colour.
pub fn title_colour(label: Rgb, attention: bool, pulse_on: bool) -> Rgb {
    if attention && pulse_on {
        let mix = crate::config::theme::look()
            .frame
            .attention_mix_percent
            .get();
        label.mix(labels::WHITE, mix as f64 / 100.0)
    } else {
        label
    }
}

/// The colour behind everything, from the theme.
pub fn background() -> Rgb {
    crate::config::theme::look().frame.background.0
}

/// A whole drawing of the trusted layer (toast, launcher, panel, menu) at `at` on the output.
fn trusted_drawing<R: CorralRenderer>(
    renderer: &mut R,
    at: Point<i32, Physical>,
    buffer: &MemoryRenderBuffer,
) -> Option<CorralElement<R>> {
    MemoryRenderBufferRenderElement::from_buffer(
        renderer,
        at.to_f64(),
        buffer,
        None,
        None,
        None,
        Kind::Unspecified,
    )
    .ok()
    .map(CorralElement::Memory)
}

/// What is needed to draw one output.
#[derive(Debug)]
pub struct Frame<'a> {
    pub layout: &'a Layout,
    pub local: &'a LocalWindows,
    pub toasts: &'a [Toast],
    pub toast_rects: &'a [Rect],
    pub pulse_on: bool,
    /// Set while the session is locked: then the lock screen is all any output shows.
    pub lock: Option<&'a crate::lock::ui::LockFrame>,
    /// The launcher, while open, and where it goes: in front of everything else.
    pub launcher: Option<(&'a crate::launcher::Launcher, Rect)>,
    /// The panel, drawn along the top of every output (`layout.config.reserved_top` high).
    pub panel: Option<&'a crate::panel::PanelModel>,
    /// A qube's panel menu, while open.
    pub panel_menu: Option<&'a crate::panel::QubeMenu>,
}

/// The scene items of one output (global rectangles), front to back.
pub fn scene_for(frame: &Frame<'_>, qubes: &Qubes, output: Rect) -> Vec<Item> {
    scene::build(frame.layout, frame.toast_rects, output, |win| {
        if let Some(local) = frame.local.get(&win) {
            return Some(WindowLook {
                colour: crate::config::theme::look().label_colour(&labels::GUI_DOMAIN_LABEL),
                buffer: local::surface_size(local.toplevel.wl_surface()),
            });
        }
        let (conn, window) = qubes.window(win)?;
        Some(WindowLook {
            colour: conn.identity.colour(),
            buffer: window.current.map(|c| {
                (
                    c.layout.size().width() as i32,
                    c.layout.size().height() as i32,
                )
            }),
        })
    })
}

/// Builds the render elements of one output.
pub fn output_elements<R: CorralRenderer>(
    renderer: &mut R,
    frame: &Frame<'_>,
    qubes: &mut Qubes,
    cache: &mut RenderCache,
    output: Rect,
) -> Vec<CorralElement<R>> {
    // Locked: the lock screen and nothing else — no qube content, frames or toasts. Decided
    // here, per output and per frame, so every output is covered, new ones included (QSB-68).
    if let Some(lock) = frame.lock {
        return crate::lock::ui::output_elements(renderer, lock, &mut cache.lock, output);
    }
    let items = scene_for(frame, qubes, output);
    let look = crate::config::theme::look();
    let origin = |r: Rect| Point::<i32, Physical>::from((r.x - output.x, r.y - output.y));
    let phys = |r: Rect| Rectangle::<i32, Physical>::new(origin(r), (r.w, r.h).into());
    let mut elements = Vec::with_capacity(items.len() + 1);
    // The launcher: the trusted layer's front, above toasts and every window.
    if let Some((launcher, rect)) = frame.launcher
        && rect.intersects(output)
    {
        let fresh =
            matches!(&cache.launcher, Some((v, r, _)) if *v == launcher.version() && *r == rect);
        if !fresh {
            let pixels = crate::launcher::draw(launcher, rect.w, rect.h);
            cache.launcher = Some((launcher.version(), rect, pixels_buffer(&pixels)));
        }
        if let Some((_, _, buffer)) = &cache.launcher {
            elements.extend(trusted_drawing(renderer, origin(rect), buffer));
        }
    }
    // A qube's panel menu, in front of the panel and every window.
    if let Some(menu) = frame.panel_menu
        && menu.rect.intersects(output)
    {
        if !matches!(&cache.panel_menu, Some((m, _)) if m == menu) {
            cache.panel_menu = Some((menu.clone(), pixels_buffer(&menu.draw())));
        }
        if let Some((_, buffer)) = &cache.panel_menu {
            elements.extend(trusted_drawing(renderer, origin(menu.rect), buffer));
        }
    }
    // The panel along the top: in front of every window (they are kept below it anyway).
    if let Some(model) = frame.panel {
        let key = (output.x, output.y);
        let fresh =
            matches!(cache.panels.get(&key), Some((m, w, _)) if m == model && *w == output.w);
        if !fresh {
            let pixels = crate::panel::draw(model, output.w);
            cache
                .panels
                .insert(key, (model.clone(), output.w, pixels_buffer(&pixels)));
        }
        if let Some((_, _, buffer)) = cache.panels.get(&key) {
            let at = origin(Rect::new(output.x, output.y, output.w, 1));
            elements.extend(trusted_drawing(renderer, at, buffer));
        }
    }
    for item in items {
        match item {
            Item::Toast { index, rect } => {
                let Some(toast) = frame.toasts.get(index) else {
                    continue;
                };
                let buffer = cache.toasts.entry(toast.id).or_insert_with(|| {
                    let pixels = crate::notify::draw_toast(toast, rect.w, rect.h);
                    pixels_buffer(&pixels)
                });
                elements.extend(trusted_drawing(renderer, origin(rect), buffer));
            }
            Item::Border {
                win,
                side,
                rect,
                colour,
            } => {
                let chrome = cache.chrome.entry(win).or_insert_with(Chrome::new);
                elements.push(CorralElement::Solid(SolidColorRenderElement::new(
                    chrome.borders[side].clone(),
                    phys(rect),
                    CommitCounter::from(colour.argb() as usize),
                    colour.to_f32(),
                    Kind::Unspecified,
                )));
            }
            Item::Title { win, rect } => {
                let (name, colour, untrusted_title) = if let Some(local) = frame.local.get(&win) {
                    (
                        GUI_DOMAIN_NAME.to_owned(),
                        look.label_colour(&labels::GUI_DOMAIN_LABEL),
                        corral_protocol::SanitizedText::sanitize(
                            &local::local_title(&local.toplevel),
                            corral_protocol::limits::MAX_TITLE_BYTES,
                        ),
                    )
                } else if let Some((conn, window)) = qubes.window(win) {
                    (
                        conn.identity.name.to_string(),
                        conn.identity.colour(),
                        window.untrusted_title.clone(),
                    )
                } else {
                    continue;
                };
                let attention = frame.layout.toplevel(win).is_some_and(|t| t.attention);
                let bg = title_colour(colour, attention, frame.pulse_on);
                let fg = look.text_on(bg);
                let text = title_text(&name, untrusted_title.as_str());
                let focused = frame.layout.focus() == Some(win);
                let key = (text, rect.w, rect.h, fg, bg, focused);
                let chrome = cache.chrome.entry(win).or_insert_with(Chrome::new);
                if chrome.title_key.as_ref() != Some(&key) {
                    let mut pixels = Pixels::filled(rect.w, rect.h, bg);
                    let px = look.decorations.font_size.get() as f32;
                    let y = ((rect.h as f32 - px * 1.2) / 2.0).max(0.0) as i32;
                    pixels.draw_text(&key.0, 6, y, px, rect.w - 12, fg);
                    let line = look.frame.focus_underline.get() as i32;
                    if focused && line > 0 {
                        // The focused window's title bar is underlined in its text colour.
                        pixels.fill_rect(0, rect.h - line, rect.w, line, fg);
                    }
                    chrome.title = Some(pixels_buffer(&pixels));
                    chrome.title_key = Some(key);
                }
                if let Some(buffer) = &chrome.title
                    && let Ok(e) = MemoryRenderBufferRenderElement::from_buffer(
                        renderer,
                        origin(rect).to_f64(),
                        buffer,
                        None,
                        None,
                        None,
                        Kind::Unspecified,
                    )
                {
                    elements.push(CorralElement::Memory(e));
                }
            }
            Item::Content { win, rect } if frame.local.contains_key(&win) => {
                let Some(local) = frame.local.get(&win) else {
                    continue;
                };
                let surface_elements: Vec<WaylandSurfaceRenderElement<R>> =
                    render_elements_from_surface_tree(
                        renderer,
                        local.toplevel.wl_surface(),
                        origin(rect),
                        1.0,
                        1.0,
                        Kind::Unspecified,
                    );
                // Clipped to the interior, like qube content.
                elements.extend(
                    surface_elements
                        .into_iter()
                        .filter_map(|e| CropRenderElement::from_element(e, 1.0, phys(rect)))
                        .map(CorralElement::Local),
                );
            }
            Item::Content { win, rect } => {
                let Some((conn, id)) = qubes.window_mut(win) else {
                    continue;
                };
                if let Some(e) = content_for(renderer, conn, id, origin(rect), (rect.w, rect.h)) {
                    elements.push(e);
                }
            }
            Item::Fill { win, rect } => {
                let chrome = cache.chrome.entry(win).or_insert_with(Chrome::new);
                elements.push(CorralElement::Solid(SolidColorRenderElement::new(
                    chrome.fill.clone(),
                    phys(rect),
                    CommitCounter::from(look.frame.empty_fill.0.argb() as usize),
                    look.frame.empty_fill.0.to_f32(),
                    Kind::Unspecified,
                )));
            }
        }
    }
    elements
}

fn content_for<R: CorralRenderer>(
    renderer: &mut R,
    conn: &mut QubeConnection,
    id: corral_protocol::WindowId,
    location: Point<i32, Physical>,
    visible: (i32, i32),
) -> Option<CorralElement<R>> {
    let QubeConnection { windows, conn, .. } = conn;
    let window = windows.get_mut(&id)?;
    let pool = conn.pool(window.current?.pool)?;
    renderer.content_element(window, pool, location, visible)
}

/// A memory buffer holding trusted pixels.
pub fn pixels_buffer(pixels: &Pixels) -> MemoryRenderBuffer {
    let full: Rectangle<i32, BufferCoords> =
        Rectangle::from_size(Size::from((pixels.width, pixels.height)));
    MemoryRenderBuffer::from_slice(
        &pixels.data,
        Fourcc::Argb8888,
        (pixels.width, pixels.height),
        1,
        Transform::Normal,
        Some(vec![full]),
    )
}

/// Whether a window is a popup (for callers that only have the kind).
pub fn is_popup(kind: WindowKind) -> bool {
    matches!(kind, WindowKind::Popup { .. })
}
