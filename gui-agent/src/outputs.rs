//! `wl_output`s mirroring the GUI domain's outputs (from `Welcome` and `OutputsChanged`).
//!
//! Apps learn the scale to render at from them. Windows are composited at the first output's
//! scale: the GUI domain sees every window in buffer pixels, and the agent converts its sizes
//! and pointer positions to logical coordinates with that one factor.

use smithay::output::{Mode, Output, PhysicalProperties, Scale, Subpixel};
use smithay::reexports::wayland_server::DisplayHandle;
use smithay::reexports::wayland_server::backend::GlobalId;
use smithay::utils::{Logical, Point, Size, Transform};

use corral_protocol::OutputInfo;

use crate::state::AgentState;

/// Used until the GUI domain describes its outputs.
const FALLBACK_SIZE: (i32, i32) = (1920, 1080);

#[derive(Debug)]
struct MirroredOutput {
    output: Output,
    global: GlobalId,
}

#[derive(Debug)]
pub struct Outputs {
    mirrored: Vec<MirroredOutput>,
}

impl Outputs {
    pub fn new(dh: &DisplayHandle) -> Self {
        let mut outputs = Outputs {
            mirrored: Vec::new(),
        };
        outputs.add(
            dh,
            "corral-0",
            FALLBACK_SIZE.into(),
            (0, 0).into(),
            120,
            60_000,
        );
        outputs
    }

    fn add(
        &mut self,
        dh: &DisplayHandle,
        name: &str,
        size: Size<i32, smithay::utils::Physical>,
        position: Point<i32, Logical>,
        scale_120ths: u32,
        refresh_mhz: u32,
    ) {
        let output = Output::new(
            name.to_string(),
            PhysicalProperties {
                size: (0, 0).into(),
                subpixel: Subpixel::Unknown,
                make: "Corral".into(),
                model: "GUI domain output".into(),
            },
        );
        let global = output.create_global::<AgentState>(dh);
        let mut outputs_entry = MirroredOutput { output, global };
        Self::update(
            &mut outputs_entry,
            size,
            position,
            scale_120ths,
            refresh_mhz,
        );
        self.mirrored.push(outputs_entry);
    }

    fn update(
        entry: &mut MirroredOutput,
        size: Size<i32, smithay::utils::Physical>,
        position: Point<i32, Logical>,
        scale_120ths: u32,
        refresh_mhz: u32,
    ) {
        let mode = Mode {
            size,
            refresh: i32::try_from(refresh_mhz).unwrap_or(60_000),
        };
        entry.output.add_mode(mode);
        entry.output.set_preferred(mode);
        entry.output.change_current_state(
            Some(mode),
            Some(Transform::Normal),
            Some(Scale::Fractional(f64::from(scale_120ths) / 120.0)),
            Some(position),
        );
    }

    /// Replaces the outputs with the GUI domain's list. An empty list keeps what there is.
    pub fn apply(&mut self, dh: &DisplayHandle, infos: &[OutputInfo]) {
        if infos.is_empty() {
            return;
        }
        while self.mirrored.len() > infos.len() {
            if let Some(gone) = self.mirrored.pop() {
                dh.remove_global::<AgentState>(gone.global);
            }
        }
        for (index, info) in infos.iter().enumerate() {
            let size = (info.size.width() as i32, info.size.height() as i32).into();
            let position = (info.position.x(), info.position.y()).into();
            match self.mirrored.get_mut(index) {
                Some(entry) => Self::update(
                    entry,
                    size,
                    position,
                    info.scale_120ths.get(),
                    info.refresh_mhz,
                ),
                None => self.add(
                    dh,
                    &format!("corral-{index}"),
                    size,
                    position,
                    info.scale_120ths.get(),
                    info.refresh_mhz,
                ),
            }
        }
    }

    /// The output windows are shown on, as far as apps in the qube are concerned.
    pub fn primary(&self) -> &Output {
        // `new` creates one and `apply` never removes the last.
        &self.mirrored[0].output
    }

    /// The factor between logical coordinates and the buffer pixels the GUI domain sees.
    pub fn scale(&self) -> f64 {
        self.primary().current_scale().fractional_scale()
    }

    /// The primary output's size in logical coordinates: what popups are constrained to.
    pub fn logical_size(&self) -> Size<i32, Logical> {
        let mode_size = self
            .primary()
            .current_mode()
            .map(|m| m.size)
            .unwrap_or_else(|| FALLBACK_SIZE.into());
        mode_size.to_f64().to_logical(self.scale()).to_i32_round()
    }
}
