//! The udev backend: the real session on the machine's own screens and devices.
//!
//! - The seat comes from libseat (systemd-logind or seatd): it opens the DRM and input device
//!   nodes for us, and tells us when the session is paused (VT switch away) and resumed.
//! - Every GPU on the seat (udev, `drm` subsystem) is opened and driven with KMS through
//!   Smithay's `DrmOutputManager`. The primary GPU renders with GLES (EGL on GBM); outputs on
//!   other GPUs get the frame through Smithay's multi-GPU renderer (rendered on the primary,
//!   copied to the other). Where the primary GPU has no hardware GL (no EGL, only a software
//!   rasteriser, or `CORRAL_RENDERER=pixman`), Pixman renders on the CPU into linear GBM buffers.
//! - Monitors are placed by [`placement::place`] from per-connector settings
//!   ([`placement::OutputSettingsSource`], the config file's `[[output]]` tables), again on every
//!   hotplug, so the layout of a given set of monitors is always the same.
//! - Keyboards, mice and touchpads come from libinput on the session's seat. Ctrl+Alt+F1…F12
//!   switch virtual terminals (the keys are never forwarded to a qube).
//! - Everything is composited into the primary plane (no direct scan-out, no overlay or cursor
//!   planes): the trusted chrome and layer are drawn in one pass over qube content and nothing
//!   a plane assignment does can reorder them.
//!
//! Nothing here runs without a seat and a DRM device: `Udev::new` fails with a message saying
//! which is missing. The parts that can be tested without hardware are in [`placement`] and
//! [`edid`].

pub mod edid;
pub mod placement;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use smithay::backend::allocator::format::FormatSet;
use smithay::backend::allocator::gbm::{GbmAllocator, GbmBufferFlags, GbmDevice};
use smithay::backend::allocator::{Fourcc, Modifier};
use smithay::backend::drm::compositor::FrameFlags;
use smithay::backend::drm::exporter::gbm::GbmFramebufferExporter;
use smithay::backend::drm::output::{DrmOutput, DrmOutputManager, DrmOutputRenderElements};
use smithay::backend::drm::{DrmDevice, DrmDeviceFd, DrmEvent, DrmNode};
use smithay::backend::egl::{EGLDevice, EGLDisplay};
use smithay::backend::input::{
    AbsolutePositionEvent, ButtonState, Event, InputEvent, KeyState, KeyboardKeyEvent,
    PointerButtonEvent, PointerMotionEvent,
};
use smithay::backend::libinput::{LibinputInputBackend, LibinputSessionInterface};
use smithay::backend::renderer::element::Kind;
use smithay::backend::renderer::element::memory::{
    MemoryRenderBuffer, MemoryRenderBufferRenderElement,
};
use smithay::backend::renderer::gles::{GlesRenderer, GlesTexture};
use smithay::backend::renderer::multigpu::gbm::GbmGlesBackend;
use smithay::backend::renderer::multigpu::{GpuManager, MultiRenderer};
use smithay::backend::renderer::pixman::PixmanRenderer;
use smithay::backend::renderer::{Bind, ImportDma, Texture};
use smithay::backend::session::libseat::LibSeatSession;
use smithay::backend::session::{Event as SessionEvent, Session};
use smithay::backend::udev::{UdevBackend, UdevEvent, all_gpus, primary_gpu};
use smithay::output::OutputModeSource;
use smithay::reexports::calloop::{LoopHandle, RegistrationToken};
use smithay::reexports::drm::control::{
    Device as ControlDevice, Mode as DrmMode, ModeTypeFlags, connector, crtc,
};
use smithay::reexports::input::{DeviceCapability, Libinput};
use smithay::reexports::pixman;
use smithay::reexports::rustix::fs::OFlags;
use smithay::utils::{DeviceFd, Physical, Point, Transform};

use self::placement::{ConnectorDesc, ModeDesc, OutputSettingsSource, Placement};
use super::{Backend, OffscreenParts, Screenshot, blit, bounds, render_offscreen};
use crate::layout::{OutputArea, Rect};
use crate::qubes::QubeWindow;
use crate::render::{self, CorralElement, CorralRenderer, Frame};
use crate::state::State;

/// The GLES renderer of the multi-GPU manager: renders on one GPU, shows on another.
pub type UdevRenderer<'a> = MultiRenderer<
    'a,
    'a,
    GbmGlesBackend<GlesRenderer, DrmDeviceFd>,
    GbmGlesBackend<GlesRenderer, DrmDeviceFd>,
>;
type Gpus = GpuManager<GbmGlesBackend<GlesRenderer, DrmDeviceFd>>;
type OutputManager = DrmOutputManager<
    GbmAllocator<DrmDeviceFd>,
    GbmFramebufferExporter<DrmDeviceFd>,
    (),
    DrmDeviceFd,
>;
type KmsOutput =
    DrmOutput<GbmAllocator<DrmDeviceFd>, GbmFramebufferExporter<DrmDeviceFd>, (), DrmDeviceFd>;

/// Primary-plane formats, in order of preference: 8 bits per channel, widely supported.
const COLOR_FORMATS: [Fourcc; 2] = [Fourcc::Argb8888, Fourcc::Abgr8888];

impl CorralRenderer for UdevRenderer<'_> {
    fn content_element(
        &mut self,
        window: &mut QubeWindow,
        pool: &dyn corral_protocol::channel::PoolMemory,
        location: Point<i32, Physical>,
        visible: (i32, i32),
    ) -> Option<CorralElement<Self>> {
        // As with GLES nested: a copy of the damaged regions into a memory buffer, uploaded to
        // the rendering GPU. Qube memory is never imported as a dmabuf.
        render::memory_element(self, window, pool, location, visible)
    }
}

/// Who renders.
enum Renderers {
    /// GLES on `primary` (a render node); other GPUs get copies.
    Gles { gpus: Gpus, primary: DrmNode },
    /// Pixman on the CPU, into linear buffers of each GPU.
    Pixman(PixmanRenderer),
}

impl std::fmt::Debug for Renderers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Renderers::Gles { primary, .. } => write!(f, "Gles({primary})"),
            Renderers::Pixman(_) => f.write_str("Pixman"),
        }
    }
}

/// One lit monitor.
struct Surface {
    name: String,
    connector: connector::Handle,
    mode: DrmMode,
    transform: placement::OutputTransform,
    rect: Rect,
    output: KmsOutput,
    /// A page flip is queued; the next frame waits for its vblank.
    flip_pending: bool,
    /// Something changed while a flip was pending: draw again at the vblank.
    dirty: bool,
    /// The frame whose flip is pending was drawn while locked.
    pending_locked: bool,
    /// The frame on the monitor (the last flipped) was drawn while locked.
    shows_locked: bool,
}

/// One GPU (a DRM primary node).
struct Gpu {
    /// Dropped before the manager (field order): each `DrmOutput` unregisters from it.
    surfaces: HashMap<crtc::Handle, Surface>,
    manager: OutputManager,
    /// This GPU's own GL render node, in the GLES mode; `None`: the primary GPU renders for it.
    render_node: Option<DrmNode>,
    path: PathBuf,
    token: RegistrationToken,
}

/// Settings of libinput devices (the config file's `[input]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputSettings {
    /// libinput's pointer acceleration speed, -1 to 1.
    pub pointer_acceleration: f64,
    pub natural_scrolling: bool,
    /// Tap to click on touchpads.
    pub tap: bool,
}

impl InputSettings {
    /// From the config file's `[input]`.
    pub fn from_config(input: &crate::config::schema::Input) -> Self {
        InputSettings {
            pointer_acceleration: input.pointer_acceleration.get(),
            natural_scrolling: input.natural_scrolling,
            ..InputSettings::default()
        }
    }
}

impl Default for InputSettings {
    fn default() -> Self {
        InputSettings {
            pointer_acceleration: 0.0,
            natural_scrolling: false,
            tap: true,
        }
    }
}

/// The udev backend's state.
pub struct Udev {
    // Field order is drop order: outputs and GPUs before the renderers, the session last.
    gpus: HashMap<DrmNode, Gpu>,
    renderers: Renderers,
    cursor: MemoryRenderBuffer,
    libinput: Libinput,
    settings: Box<dyn OutputSettingsSource>,
    pub input_settings: InputSettings,
    areas: Vec<OutputArea>,
    /// Keys of a Ctrl+Alt+Fn VT switch: their release is swallowed too.
    vt_keys: HashSet<u32>,
    /// Keyboards, for their lock lights.
    keyboards: Vec<smithay::reexports::input::Device>,
    leds: smithay::input::keyboard::LedState,
    session: LibSeatSession,
    active: bool,
    handle: LoopHandle<'static, State>,
}

impl std::fmt::Debug for Udev {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Udev")
            .field("seat", &self.session.seat())
            .field("renderers", &self.renderers)
            .field("gpus", &self.gpus.keys().collect::<Vec<_>>())
            .field("areas", &self.areas)
            .finish_non_exhaustive()
    }
}

impl Udev {
    /// Every lit monitor shows a frame drawn while locked (trivially so while the session is
    /// switched away: nothing of ours is on screen).
    pub fn locked_frame_on_every_output(&self) -> bool {
        !self.active
            || self
                .gpus
                .values()
                .flat_map(|g| g.surfaces.values())
                .all(|s| s.shows_locked)
    }

    /// Takes the seat, opens every GPU and input device on it and lights the monitors. Fails,
    /// saying what is missing, without a seat (neither logind nor seatd) or without a GPU.
    pub fn new(
        handle: &LoopHandle<'static, State>,
        settings: Box<dyn OutputSettingsSource>,
        input_settings: InputSettings,
    ) -> anyhow::Result<Udev> {
        let (session, notifier) = LibSeatSession::new().map_err(|e| {
            anyhow::anyhow!(
                "the udev backend found no seat to take ({e}): libseat reached neither \
                 systemd-logind nor seatd. Start `corral --backend udev` (or corral-session) from \
                 a display manager or a text-console login on a local VT, or run seatd and add \
                 your user to its group; inside an existing desktop use --backend winit"
            )
        })?;
        let seat = session.seat();
        let primary_path = find_primary_gpu(&seat)?;
        let udev = UdevBackend::new(&seat)
            .with_context(|| format!("watching udev for GPUs on seat {seat}"))?;

        let mut libinput = Libinput::new_with_udev::<LibinputSessionInterface<LibSeatSession>>(
            session.clone().into(),
        );
        libinput.udev_assign_seat(&seat).map_err(|()| {
            anyhow::anyhow!("libinput could not take the input devices of seat {seat}")
        })?;

        let mut this = Udev {
            gpus: HashMap::new(),
            // Replaced below, once the primary GPU says whether it has GL.
            renderers: Renderers::Pixman(
                PixmanRenderer::new().map_err(|e| anyhow::anyhow!("starting Pixman: {e:?}"))?,
            ),
            cursor: cursor_buffer(),
            libinput: libinput.clone(),
            settings,
            input_settings,
            areas: Vec::new(),
            vt_keys: HashSet::new(),
            keyboards: Vec::new(),
            leds: smithay::input::keyboard::LedState::default(),
            active: session.is_active(),
            session,
            handle: handle.clone(),
        };

        // The primary GPU first: it decides GLES or Pixman, and display-only GPUs borrow its
        // allocator.
        let primary_node = DrmNode::from_path(&primary_path)
            .with_context(|| format!("{} is not a DRM device node", primary_path.display()))?;
        this.add_gpu(primary_node, &primary_path, true)
            .with_context(|| format!("opening the primary GPU {}", primary_path.display()))?;
        let others: Vec<(DrmNode, PathBuf)> = udev
            .device_list()
            .filter_map(|(id, path)| Some((DrmNode::from_dev_id(id).ok()?, path.to_path_buf())))
            .filter(|(node, _)| node.dev_id() != primary_node.dev_id())
            .collect();
        for (node, path) in others {
            if let Err(e) = this.add_gpu(node, &path, false) {
                tracing::error!("skipping GPU {}: {e:#}", path.display());
            }
        }
        this.relayout(true);
        if this.areas.is_empty() {
            tracing::warn!("no monitor is connected; waiting for one to be plugged in");
        }

        handle
            .insert_source(notifier, |event, _, state: &mut State| {
                state.udev_session_event(event)
            })
            .map_err(|e| anyhow::anyhow!("registering the session: {e}"))?;
        handle
            .insert_source(
                LibinputInputBackend::new(libinput),
                |event, _, state: &mut State| state.udev_input(event),
            )
            .map_err(|e| anyhow::anyhow!("registering libinput: {e}"))?;
        handle
            .insert_source(udev, |event, _, state: &mut State| state.udev_event(event))
            .map_err(|e| anyhow::anyhow!("registering udev: {e}"))?;
        Ok(this)
    }

    pub fn output_areas(&self) -> Vec<OutputArea> {
        self.areas.clone()
    }

    pub fn renderer_name(&self) -> &'static str {
        match self.renderers {
            Renderers::Gles { .. } => "GLES",
            Renderers::Pixman(_) => "Pixman",
        }
    }

    /// Opens a GPU through the seat and sets up its KMS output manager.
    fn add_gpu(&mut self, node: DrmNode, path: &Path, primary: bool) -> anyhow::Result<()> {
        let fd = self
            .session
            .open(
                path,
                OFlags::RDWR | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            )
            .with_context(|| format!("the seat refused to open {}", path.display()))?;
        let fd = DrmDeviceFd::new(DeviceFd::from(fd));
        let (drm, notifier) =
            DrmDevice::new(fd.clone(), true).context("taking the device for KMS")?;
        let gbm = GbmDevice::new(fd).context("creating a GBM device")?;

        if primary {
            let force_pixman = std::env::var("CORRAL_RENDERER").is_ok_and(|v| v == "pixman");
            let gl = if force_pixman {
                Err(anyhow::anyhow!("CORRAL_RENDERER=pixman"))
            } else {
                new_gles_manager().and_then(|mut gpus| {
                    let render = add_gl_node(&mut gpus, node, &gbm)?;
                    Ok((gpus, render))
                })
            };
            match gl {
                Ok((gpus, render)) => {
                    tracing::info!("rendering with GLES on {render}");
                    self.renderers = Renderers::Gles {
                        gpus,
                        primary: render,
                    };
                }
                Err(e) => {
                    tracing::warn!("no hardware GL on {node} ({e:#}): rendering with Pixman");
                }
            }
        }

        let (render_node, allocator, render_formats) = match &mut self.renderers {
            Renderers::Gles { gpus, primary: p } => {
                let own = if primary {
                    Some(*p)
                } else {
                    add_gl_node(gpus, node, &gbm)
                        .inspect_err(|e| {
                            tracing::info!(
                                "{node} has no GL of its own ({e:#}): the primary GPU renders for it"
                            )
                        })
                        .ok()
                };
                let allocator = match own {
                    Some(_) => GbmAllocator::new(
                        gbm.clone(),
                        GbmBufferFlags::RENDERING | GbmBufferFlags::SCANOUT,
                    ),
                    // Display-only: buffers come from the primary GPU, which renders into them.
                    None => self
                        .gpus
                        .values()
                        .find(|g| g.render_node == Some(*p))
                        .map(|g| g.manager.allocator().clone())
                        .context("the primary GPU is gone")?,
                };
                let mut renderer = gpus
                    .single_renderer(&own.unwrap_or(*p))
                    .map_err(|e| anyhow::anyhow!("getting a renderer: {e}"))?;
                let formats: FormatSet = renderer
                    .as_mut()
                    .egl_context()
                    .dmabuf_render_formats()
                    .iter()
                    .filter(|f| own.is_some() || f.modifier == Modifier::Linear)
                    .copied()
                    .collect();
                (own, allocator, formats)
            }
            Renderers::Pixman(pixman) => {
                // Pixman reads and writes the buffers through a CPU mapping: linear only.
                let allocator = GbmAllocator::new(gbm.clone(), GbmBufferFlags::SCANOUT);
                (None, allocator, pixman.dmabuf_formats())
            }
        };
        let exporter = GbmFramebufferExporter::new(gbm.clone(), render_node);
        let manager = DrmOutputManager::new(
            drm,
            allocator,
            exporter,
            // No cursor plane: the pointer is composited like everything else.
            None::<GbmDevice<DrmDeviceFd>>,
            COLOR_FORMATS,
            render_formats,
        );
        let token = self
            .handle
            .insert_source(notifier, move |event, _, state: &mut State| match event {
                DrmEvent::VBlank(crtc) => state.udev_vblank(node, crtc),
                DrmEvent::Error(e) => tracing::error!("DRM error on {node}: {e}"),
            })
            .map_err(|e| anyhow::anyhow!("registering the DRM device: {e}"))?;
        tracing::info!(
            "GPU {} ({node}){}",
            path.display(),
            if primary { ", primary" } else { "" }
        );
        self.gpus.insert(
            node,
            Gpu {
                surfaces: HashMap::new(),
                manager,
                render_node,
                path: path.to_path_buf(),
                token,
            },
        );
        Ok(())
    }

    fn remove_gpu(&mut self, node: DrmNode) {
        let Some(mut gpu) = self.gpus.remove(&node) else {
            return;
        };
        tracing::info!("GPU {} removed", gpu.path.display());
        gpu.surfaces.clear();
        self.handle.remove(gpu.token);
        if let (Some(render), Renderers::Gles { gpus, primary }) =
            (gpu.render_node, &mut self.renderers)
            && render != *primary
        {
            gpus.as_mut().remove_node(&render);
        }
    }

    /// Scans every GPU's connectors, places the monitors and lights, moves or darkens them.
    /// Returns whether the output areas changed.
    fn relayout(&mut self, probe: bool) -> bool {
        let mut found: Vec<(DrmNode, connector::Info, ConnectorDesc)> = Vec::new();
        let mut names = HashSet::new();
        let mut nodes: Vec<DrmNode> = self.gpus.keys().copied().collect();
        nodes.sort_by_key(|n| n.dev_id());
        for node in nodes {
            let Some(gpu) = self.gpus.get(&node) else {
                continue;
            };
            for (info, mut desc) in scan_connectors(gpu.manager.device(), probe) {
                // Two GPUs can both have a DP-1: the later one is named after its card.
                if !names.insert(desc.name.clone()) {
                    desc.name = format!("{}@{}", desc.name, node);
                    names.insert(desc.name.clone());
                }
                found.push((node, info, desc));
            }
        }
        let descs: Vec<ConnectorDesc> = found.iter().map(|(_, _, d)| d.clone()).collect();
        let placements = placement::place(&descs, self.settings.as_ref());
        for (a, b) in placement::overlaps(&placements) {
            tracing::warn!("outputs {a} and {b} overlap in the configured layout");
        }
        let wanted = |name: &str| placements.iter().find(|p| p.name == name && p.enabled);

        // Darken what is gone, disabled, or changes mode or transform (it is set up again below).
        for (node, gpu) in self.gpus.iter_mut() {
            gpu.surfaces.retain(|_, s| {
                // Connector handles are per GPU: compare the GPU too.
                let keep = found.iter().any(|(n, info, d)| {
                    n == node
                        && info.handle() == s.connector
                        && d.name == s.name
                        && wanted(&d.name).is_some_and(|p| {
                            info.modes().get(p.mode) == Some(&s.mode) && p.transform == s.transform
                        })
                });
                if !keep {
                    tracing::info!("output {} off", s.name);
                }
                keep
            });
        }
        for (node, info, desc) in &found {
            let Some(place) = wanted(&desc.name) else {
                continue;
            };
            if let Some(s) = self.gpus.get_mut(node).and_then(|g| {
                g.surfaces
                    .values_mut()
                    .find(|s| s.connector == info.handle())
            }) {
                s.rect = place.rect;
                continue;
            }
            // What `[[output]] match = "MAKE MODEL"` would name it by.
            tracing::info!(
                "monitor on {}: make {:?}, model {:?}",
                desc.name,
                desc.make,
                desc.model
            );
            if let Err(e) = self.light(*node, info, place) {
                tracing::error!("cannot light output {}: {e:#}", desc.name);
            }
        }

        let mut areas: Vec<OutputArea> = self
            .gpus
            .values()
            .flat_map(|g| g.surfaces.values())
            .map(|s| OutputArea {
                name: s.name.clone(),
                rect: s.rect,
            })
            .collect();
        areas.sort_by_key(|a| (a.rect.x, a.rect.y, a.name.clone()));
        let changed = areas != self.areas;
        self.areas = areas;
        changed
    }

    /// Sets up KMS output for one monitor.
    fn light(
        &mut self,
        node: DrmNode,
        info: &connector::Info,
        place: &Placement,
    ) -> anyhow::Result<()> {
        let Some(gpu) = self.gpus.get_mut(&node) else {
            bail!("its GPU is gone");
        };
        let mode = *info
            .modes()
            .get(place.mode)
            .context("the mode disappeared")?;
        let taken: HashSet<crtc::Handle> = gpu.surfaces.keys().copied().collect();
        let crtc = pick_crtc(gpu.manager.device(), info, &taken)
            .context("no free CRTC can drive this connector")?;
        if place.mode_fallback {
            tracing::warn!(
                "output {}: the configured mode is not offered; using {}x{}",
                place.name,
                mode.size().0,
                mode.size().1
            );
        }
        if (place.scale - 1.0).abs() > f64::EPSILON {
            tracing::warn!(
                "output {}: scale {} is not supported yet, drawing at scale 1",
                place.name,
                place.scale
            );
        }
        let source = OutputModeSource::Static {
            size: (i32::from(mode.size().0), i32::from(mode.size().1)).into(),
            scale: 1.0.into(),
            transform: place.transform.to_smithay(),
        };
        let output = match &mut self.renderers {
            Renderers::Gles { gpus, primary } => {
                let target = gpu.render_node.unwrap_or(*primary);
                let mut renderer = if target == *primary {
                    gpus.single_renderer(primary)
                } else {
                    gpus.renderer(primary, &target, COLOR_FORMATS[0])
                }
                .map_err(|e| anyhow::anyhow!("getting a renderer: {e}"))?;
                init_output(
                    &mut gpu.manager,
                    crtc,
                    mode,
                    info.handle(),
                    source,
                    &mut renderer,
                )?
            }
            Renderers::Pixman(pixman) => {
                init_output(&mut gpu.manager, crtc, mode, info.handle(), source, pixman)?
            }
        };
        tracing::info!(
            "output {} on: {}x{}@{} at {},{} ({:?})",
            place.name,
            mode.size().0,
            mode.size().1,
            mode.vrefresh(),
            place.rect.x,
            place.rect.y,
            place.transform
        );
        gpu.surfaces.insert(
            crtc,
            Surface {
                name: place.name.clone(),
                connector: info.handle(),
                mode,
                transform: place.transform,
                rect: place.rect,
                output,
                flip_pending: false,
                dirty: false,
                pending_locked: false,
                shows_locked: false,
            },
        );
        Ok(())
    }
}

fn new_gles_manager() -> anyhow::Result<Gpus> {
    GpuManager::new(GbmGlesBackend::default())
        .map_err(|e| anyhow::anyhow!("starting the GPU manager: {e}"))
}

/// Adds a GPU's render node to the GLES manager; fails where there is no hardware GL.
fn add_gl_node(
    gpus: &mut Gpus,
    node: DrmNode,
    gbm: &GbmDevice<DrmDeviceFd>,
) -> anyhow::Result<DrmNode> {
    // SAFETY: `EGLDisplay::new` is unsafe because another library calling `eglTerminate` on the
    // same native display would invalidate it. Nothing in this process creates EGL displays
    // on GBM devices other than Smithay (the winit backend is not running at the same time).
    let display = unsafe { EGLDisplay::new(gbm.clone()) }.context("EGL on GBM")?;
    let device = EGLDevice::device_for_display(&display).context("the EGL device")?;
    if device.is_software() {
        bail!("EGL offers only a software rasteriser");
    }
    let render = device.try_get_render_node().ok().flatten().unwrap_or(node);
    gpus.as_mut()
        .add_node(render, gbm.clone())
        .context("a GLES context")?;
    Ok(render)
}

fn init_output<R>(
    manager: &mut OutputManager,
    crtc: crtc::Handle,
    mode: DrmMode,
    connector: connector::Handle,
    source: OutputModeSource,
    renderer: &mut R,
) -> anyhow::Result<KmsOutput>
where
    R: CorralRenderer + Bind<smithay::backend::allocator::dmabuf::Dmabuf>,
    R::TextureId: Texture + 'static,
    R::Error: Send + Sync + 'static,
{
    manager
        .initialize_output::<R, CorralElement<R>>(
            crtc,
            mode,
            &[connector],
            source,
            None,
            renderer,
            &DrmOutputRenderElements::default(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The primary GPU: `CORRAL_DRM_DEVICE`, else the seat's boot GPU, else its first GPU.
fn find_primary_gpu(seat: &str) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("CORRAL_DRM_DEVICE").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let boot =
        primary_gpu(seat).with_context(|| format!("asking udev for the GPUs of seat {seat}"))?;
    if let Some(path) = boot {
        return Ok(path);
    }
    let all = all_gpus(seat).with_context(|| format!("asking udev for the GPUs of seat {seat}"))?;
    all.into_iter().next().with_context(|| {
        format!(
            "the udev backend found no DRM device (a GPU with KMS, /dev/dri/card*) on seat \
             {seat}; on a machine without one use --backend headless (or winit inside a desktop)"
        )
    })
}

/// Connected desktop connectors (VR headsets and other non-desktop ones left out), with what
/// placement needs to know about them.
fn scan_connectors(drm: &DrmDevice, probe: bool) -> Vec<(connector::Info, ConnectorDesc)> {
    let Ok(resources) = drm.resource_handles() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &handle in resources.connectors() {
        let Ok(info) = drm.get_connector(handle, probe) else {
            continue;
        };
        if info.state() != connector::State::Connected {
            continue;
        }
        if connector_property(drm, handle, "non-desktop")
            .and_then(|(p, v)| p.value_type().convert_value(v).as_boolean())
            .unwrap_or(false)
        {
            continue;
        }
        let monitor = connector_property(drm, handle, "EDID")
            .and_then(|(_, blob)| drm.get_property_blob(blob).ok())
            .and_then(|bytes| edid::parse(&bytes))
            .unwrap_or_default();
        let modes = info
            .modes()
            .iter()
            .map(|m| ModeDesc {
                width: i32::from(m.size().0),
                height: i32::from(m.size().1),
                refresh_mhz: u32::try_from(smithay::output::Mode::from(*m).refresh).unwrap_or(0),
                preferred: m.mode_type().contains(ModeTypeFlags::PREFERRED),
            })
            .collect();
        let desc = ConnectorDesc {
            name: format!("{}-{}", info.interface().as_str(), info.interface_id()),
            make: monitor.make,
            model: monitor.model,
            modes,
        };
        out.push((info, desc));
    }
    out
}

fn connector_property(
    drm: &DrmDevice,
    handle: connector::Handle,
    name: &str,
) -> Option<(smithay::reexports::drm::control::property::Info, u64)> {
    let props = drm.get_properties(handle).ok()?;
    props.into_iter().find_map(|(prop, value)| {
        let info = drm.get_property(prop).ok()?;
        (info.name().to_str() == Ok(name)).then_some((info, value))
    })
}

/// A CRTC that can drive the connector and is not driving another one.
fn pick_crtc(
    drm: &DrmDevice,
    info: &connector::Info,
    taken: &HashSet<crtc::Handle>,
) -> Option<crtc::Handle> {
    let resources = drm.resource_handles().ok()?;
    info.encoders()
        .iter()
        .filter_map(|e| drm.get_encoder(*e).ok())
        .flat_map(|encoder| resources.filter_crtcs(encoder.possible_crtcs()))
        .find(|c| !taken.contains(c))
}

/// The pointer: a trusted arrow, outlined black, drawn above everything.
fn cursor_buffer() -> MemoryRenderBuffer {
    const ARROW: [&str; 19] = [
        "#",
        "##",
        "#.#",
        "#..#",
        "#...#",
        "#....#",
        "#.....#",
        "#......#",
        "#.......#",
        "#........#",
        "#.........#",
        "#......#####",
        "#...#..#",
        "#..##..#",
        "#.# #..#",
        "##   #..#",
        "#    #..#",
        "      #..#",
        "       ##",
    ];
    let (w, h) = (12usize, ARROW.len());
    let mut argb = vec![0u8; w * h * 4];
    for (y, row) in ARROW.iter().enumerate() {
        for (x, c) in row.bytes().enumerate() {
            let px: [u8; 4] = match c {
                // Little-endian ARGB8888: B, G, R, A.
                b'#' => [0x00, 0x00, 0x00, 0xff],
                b'.' => [0xff, 0xff, 0xff, 0xff],
                _ => continue,
            };
            let at = (y * w + x) * 4;
            argb[at..at + 4].copy_from_slice(&px);
        }
    }
    MemoryRenderBuffer::from_slice(
        &argb,
        Fourcc::Argb8888,
        (w as i32, h as i32),
        1,
        Transform::Normal,
        None,
    )
}

/// `Some(vt)` for Ctrl+Alt+F1…F12 (evdev key codes; modifiers as Smithay's keyboard has them).
pub fn vt_switch_target(keycode: u32, ctrl: bool, alt: bool) -> Option<i32> {
    if !(ctrl && alt) {
        return None;
    }
    match keycode {
        // KEY_F1 … KEY_F10
        59..=68 => Some(keycode as i32 - 58),
        87 => Some(11),
        88 => Some(12),
        _ => None,
    }
}

/// Draws one monitor: the pointer first (in front), then the scene.
#[allow(clippy::too_many_arguments)]
fn draw_surface<R>(
    renderer: &mut R,
    surface: &mut Surface,
    frame: &Frame<'_>,
    qubes: &mut crate::qubes::Qubes,
    cache: &mut render::RenderCache,
    cursor: &MemoryRenderBuffer,
    pointer: (f64, f64),
) -> anyhow::Result<()>
where
    R: CorralRenderer + Bind<smithay::backend::allocator::dmabuf::Dmabuf>,
    R::TextureId: Texture + 'static,
    R::Error: Send + Sync + 'static,
{
    let rect = surface.rect;
    let mut elements = Vec::new();
    let (px, py) = (pointer.0.floor() as i32, pointer.1.floor() as i32);
    if px >= rect.x && px < rect.right() && py >= rect.y && py < rect.bottom() {
        let at = Point::<f64, Physical>::from((f64::from(px - rect.x), f64::from(py - rect.y)));
        if let Ok(e) = MemoryRenderBufferRenderElement::from_buffer(
            renderer,
            at,
            cursor,
            None,
            None,
            None,
            Kind::Cursor,
        ) {
            elements.push(CorralElement::Memory(e));
        }
    }
    elements.extend(render::output_elements(renderer, frame, qubes, cache, rect));
    let result = surface
        .output
        .render_frame(
            renderer,
            &elements,
            render::background().to_f32(),
            FrameFlags::empty(),
        )
        .map_err(|e| anyhow::anyhow!("rendering {}: {e}", surface.name))?;
    if !result.is_empty {
        surface
            .output
            .queue_frame(())
            .map_err(|e| anyhow::anyhow!("queueing a page flip on {}: {e}", surface.name))?;
        surface.flip_pending = true;
        surface.pending_locked = frame.lock.is_some();
    }
    Ok(())
}

pub(super) fn render(state: &mut State) -> anyhow::Result<()> {
    let pointer = state.input.pointer;
    super::with_frame(state, |backend, frame, qubes, cache| {
        let Backend::Udev(u) = backend else {
            return Ok(());
        };
        if !u.active {
            return Ok(());
        }
        let Udev {
            gpus,
            renderers,
            cursor,
            ..
        } = &mut **u;
        let mut first_error = None;
        for gpu in gpus.values_mut() {
            for surface in gpu.surfaces.values_mut() {
                if surface.flip_pending {
                    surface.dirty = true;
                    continue;
                }
                let result = match renderers {
                    Renderers::Gles { gpus, primary } => {
                        let target = gpu.render_node.unwrap_or(*primary);
                        let renderer = if target == *primary {
                            gpus.single_renderer(primary)
                        } else {
                            gpus.renderer(primary, &target, surface.output.format())
                        };
                        match renderer {
                            Ok(mut r) => {
                                draw_surface(&mut r, surface, frame, qubes, cache, cursor, pointer)
                            }
                            Err(e) => Err(anyhow::anyhow!("getting a renderer: {e}")),
                        }
                    }
                    Renderers::Pixman(p) => {
                        draw_surface(p, surface, frame, qubes, cache, cursor, pointer)
                    }
                };
                if let Err(e) = result {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    })
}

pub(super) fn screenshot(state: &mut State) -> anyhow::Result<Screenshot> {
    super::with_frame(state, |backend, frame, qubes, cache| {
        let Backend::Udev(u) = backend else {
            bail!("not the udev backend");
        };
        let areas = u.areas.clone();
        let b = bounds(&areas);
        let mut canvas = Screenshot {
            width: b.w as u32,
            height: b.h as u32,
            rgba: vec![0; (b.w * b.h * 4) as usize],
        };
        let mut parts = OffscreenParts {
            frame,
            qubes,
            cache,
        };
        for area in &areas {
            let rgba = match &mut u.renderers {
                Renderers::Gles { gpus, primary } => {
                    let mut r = gpus
                        .single_renderer(primary)
                        .map_err(|e| anyhow::anyhow!("getting a renderer: {e}"))?;
                    render_offscreen::<UdevRenderer<'_>, GlesTexture>(
                        &mut r, &mut parts, area.rect,
                    )?
                }
                Renderers::Pixman(p) => render_offscreen::<
                    PixmanRenderer,
                    pixman::Image<'static, 'static>,
                >(p, &mut parts, area.rect)?,
            };
            blit(&mut canvas, b, area.rect, &rgba);
        }
        Ok(canvas)
    })
}

impl State {
    fn udev(&mut self) -> Option<&mut Udev> {
        match &mut self.backend {
            Backend::Udev(u) => Some(u),
            _ => None,
        }
    }

    /// New per-output settings (a config reload): places the monitors again.
    pub fn udev_set_output_settings(&mut self, settings: Box<dyn OutputSettingsSource>) {
        let Some(u) = self.udev() else {
            return;
        };
        u.settings = settings;
        self.udev_relayout(false);
    }

    /// Places the monitors again and tells the layout, the agents and GUI-domain apps.
    fn udev_relayout(&mut self, probe: bool) {
        let Some(u) = self.udev() else {
            return;
        };
        if u.relayout(probe) {
            let areas = u.output_areas();
            self.set_outputs(areas);
        }
        self.queue_redraw();
    }

    fn udev_vblank(&mut self, node: DrmNode, crtc: crtc::Handle) {
        let Some(u) = self.udev() else {
            return;
        };
        let Some(surface) = u
            .gpus
            .get_mut(&node)
            .and_then(|g| g.surfaces.get_mut(&crtc))
        else {
            return;
        };
        if let Err(e) = surface.output.frame_submitted() {
            tracing::warn!("page flip on {}: {e}", surface.name);
        }
        surface.flip_pending = false;
        surface.shows_locked = surface.pending_locked;
        if std::mem::take(&mut surface.dirty) {
            self.queue_redraw();
        }
    }

    fn udev_event(&mut self, event: UdevEvent) {
        let Some(u) = self.udev() else {
            return;
        };
        match event {
            UdevEvent::Added { device_id, path } => {
                match DrmNode::from_dev_id(device_id) {
                    Ok(node) if !u.gpus.contains_key(&node) => {
                        if let Err(e) = u.add_gpu(node, &path, false) {
                            tracing::error!("skipping GPU {}: {e:#}", path.display());
                        }
                    }
                    _ => {}
                }
                self.udev_relayout(true);
            }
            // A monitor plugged in or out.
            UdevEvent::Changed { .. } => self.udev_relayout(true),
            UdevEvent::Removed { device_id } => {
                if let Ok(node) = DrmNode::from_dev_id(device_id) {
                    u.remove_gpu(node);
                }
                self.udev_relayout(false);
            }
        }
    }

    fn udev_session_event(&mut self, event: SessionEvent) {
        let Some(u) = self.udev() else {
            return;
        };
        match event {
            SessionEvent::PauseSession => {
                tracing::info!("session paused (another VT is active)");
                u.active = false;
                u.vt_keys.clear();
                self.release_all_keys();
                let Some(u) = self.udev() else {
                    return;
                };
                u.libinput.suspend();
                for gpu in u.gpus.values_mut() {
                    gpu.manager.pause();
                }
            }
            SessionEvent::ActivateSession => {
                tracing::info!("session active again");
                u.active = true;
                if u.libinput.resume().is_err() {
                    tracing::error!("libinput could not resume its devices");
                }
                for gpu in u.gpus.values_mut() {
                    if let Err(e) = gpu.manager.activate(false) {
                        tracing::error!("reactivating {}: {e}", gpu.path.display());
                    }
                    for s in gpu.surfaces.values_mut() {
                        // Whatever the other session left on screen is not ours to reuse.
                        s.output.reset_buffers();
                        s.flip_pending = false;
                        s.dirty = false;
                    }
                }
                // Monitors may have changed while we were away.
                self.udev_relayout(true);
            }
        }
    }

    /// Releases every key held (the devices go to another session, which gets their
    /// releases): the focused qube sees them released and no modifier stays stuck when we
    /// come back (QSB-104).
    fn release_all_keys(&mut self) {
        let time = self.now_ms();
        let mut held: Vec<u32> = self
            .keyboard
            .pressed_keys()
            .into_iter()
            .map(|k| k.raw().saturating_sub(8))
            .collect();
        held.sort_unstable();
        for code in held {
            self.handle_key(code, false, time);
        }
    }

    /// Caps, Num and Scroll Lock lights follow the keyboard state.
    fn udev_update_leds(&mut self) {
        let leds = self.keyboard.led_state();
        let Some(u) = self.udev() else {
            return;
        };
        if u.leds != leds {
            u.leds = leds;
            for k in &mut u.keyboards {
                k.led_update(leds.into());
            }
        }
    }

    fn udev_input(&mut self, event: InputEvent<LibinputInputBackend>) {
        match event {
            InputEvent::DeviceAdded { mut device } => {
                let Some(u) = self.udev() else {
                    return;
                };
                let s = u.input_settings;
                if device.has_capability(DeviceCapability::Pointer) {
                    let _ = device.config_accel_set_speed(s.pointer_acceleration.clamp(-1.0, 1.0));
                    let _ = device.config_scroll_set_natural_scroll_enabled(s.natural_scrolling);
                    let _ = device.config_tap_set_enabled(s.tap);
                }
                if device.has_capability(DeviceCapability::Keyboard) {
                    device.led_update(u.leds.into());
                    u.keyboards.push(device.clone());
                }
                tracing::info!("input device: {}", device.name());
            }
            InputEvent::DeviceRemoved { device } => {
                if let Some(u) = self.udev() {
                    u.keyboards.retain(|k| *k != device);
                }
            }
            InputEvent::Keyboard { event } => {
                let code = event.key_code().raw().saturating_sub(8);
                let pressed = event.state() == KeyState::Pressed;
                let mods = self.keyboard.modifier_state();
                let Some(u) = self.udev() else {
                    return;
                };
                if pressed && let Some(vt) = vt_switch_target(code, mods.ctrl, mods.alt) {
                    u.vt_keys.insert(code);
                    tracing::info!("switching to VT {vt}");
                    if let Err(e) = u.session.change_vt(vt) {
                        tracing::warn!("switching to VT {vt}: {e}");
                    }
                    return;
                }
                if !pressed && u.vt_keys.remove(&code) {
                    return;
                }
                self.handle_key(code, pressed, event.time_msec());
                self.udev_update_leds();
            }
            InputEvent::PointerMotion { event } => {
                let (x, y) = self.input.pointer;
                let d = event.delta();
                self.pointer_motion(x + d.x, y + d.y, event.time_msec());
                self.queue_redraw();
            }
            InputEvent::PointerMotionAbsolute { event } => {
                let b = bounds(self.layout.outputs());
                let x = f64::from(b.x) + event.x_transformed(b.w);
                let y = f64::from(b.y) + event.y_transformed(b.h);
                self.pointer_motion(x, y, event.time_msec());
                self.queue_redraw();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pointer_is_an_opaque_outlined_arrow_with_its_tip_at_the_hotspot() {
        let mut buffer = cursor_buffer();
        let mut ctx = buffer.render();
        let mut pixels = Vec::new();
        ctx.draw(|mem: &mut [u8]| -> Result<Vec<_>, ()> {
            pixels = mem.to_vec();
            Ok(Vec::new())
        })
        .unwrap();
        let px = |x: usize, y: usize| {
            let at = (y * 12 + x) * 4;
            [pixels[at], pixels[at + 1], pixels[at + 2], pixels[at + 3]]
        };
        assert_eq!(pixels.len(), 12 * 19 * 4);
        // Tip: black, opaque. Inside: white. Outside the arrow: fully transparent.
        assert_eq!(px(0, 0), [0, 0, 0, 0xff]);
        assert_eq!(px(1, 5), [0xff, 0xff, 0xff, 0xff]);
        assert_eq!(px(11, 0), [0, 0, 0, 0]);
        // Every pixel is either fully opaque or fully transparent: no half-blended edges a
        // qube's content could show through ambiguously.
        assert!(pixels.chunks_exact(4).all(|p| p[3] == 0 || p[3] == 0xff));
    }

    #[test]
    fn vt_switch_needs_ctrl_and_alt_and_a_function_key() {
        assert_eq!(vt_switch_target(59, true, true), Some(1));
        assert_eq!(vt_switch_target(68, true, true), Some(10));
        assert_eq!(vt_switch_target(87, true, true), Some(11));
        assert_eq!(vt_switch_target(88, true, true), Some(12));
        assert_eq!(vt_switch_target(59, true, false), None);
        assert_eq!(vt_switch_target(59, false, true), None);
        // F13 and letters are not VT switches.
        assert_eq!(vt_switch_target(183, true, true), None);
        assert_eq!(vt_switch_target(30, true, true), None);
    }
}
