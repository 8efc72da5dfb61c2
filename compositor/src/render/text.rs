//! Trusted text: title bars and notifications, rasterised on the CPU with the bundled font
//! (DejaVu Sans, `themes/fonts/`), so what the user reads never depends on a qube or on fonts
//! installed in the GUI domain.

use std::path::Path;
use std::sync::{OnceLock, RwLock};

use ab_glyph::{Font, FontArc, PxScale, ScaleFont};

use crate::labels::Rgb;

static FONT_BYTES: &[u8] = include_bytes!("../../../themes/fonts/DejaVuSans.ttf");

/// A font from `decorations.font` in the config, instead of the bundled one.
static USER_FONT: RwLock<Option<FontArc>> = RwLock::new(None);

/// Largest font file accepted from the config.
const MAX_FONT_BYTES: u64 = 64 * 1024 * 1024;

fn font() -> FontArc {
    if let Some(f) = USER_FONT.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return f.clone();
    }
    static FONT: OnceLock<FontArc> = OnceLock::new();
    FONT.get_or_init(|| FontArc::try_from_slice(FONT_BYTES).expect("the bundled font parses"))
        .clone()
}

/// Reads a TrueType or OpenType file for [`set_font`].
pub fn load_font_file(path: &Path) -> Result<FontArc, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read font {}: {e}", path.display()))?
        .len();
    if size > MAX_FONT_BYTES {
        return Err(format!(
            "font {} is {size} bytes: expected at most {MAX_FONT_BYTES}",
            path.display()
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read font {}: {e}", path.display()))?;
    FontArc::try_from_vec(bytes).map_err(|_| {
        format!(
            "{} is not a font: expected a TrueType or OpenType file",
            path.display()
        )
    })
}

/// The font trusted text is drawn with: `None` for the bundled DejaVu Sans.
pub fn set_font(font: Option<FontArc>) {
    *USER_FONT.write().unwrap_or_else(|e| e.into_inner()) = font;
}

/// A block of pixels, 4 bytes each in memory order B, G, R, A (ARGB8888 little-endian),
/// premultiplied and opaque.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pixels {
    pub width: i32,
    pub height: i32,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn filled(width: i32, height: i32, colour: Rgb) -> Pixels {
        let (w, h) = (width.max(1), height.max(1));
        let px = [colour.b, colour.g, colour.r, 0xff];
        let mut data = Vec::with_capacity((w * h * 4) as usize);
        for _ in 0..w * h {
            data.extend_from_slice(&px);
        }
        Pixels {
            width: w,
            height: h,
            data,
        }
    }

    pub fn fill_rect(&mut self, x: i32, y: i32, w: i32, h: i32, colour: Rgb) {
        for yy in y.max(0)..(y + h).min(self.height) {
            for xx in x.max(0)..(x + w).min(self.width) {
                let i = ((yy * self.width + xx) * 4) as usize;
                self.data[i..i + 4].copy_from_slice(&[colour.b, colour.g, colour.r, 0xff]);
            }
        }
    }

    fn blend(&mut self, x: i32, y: i32, colour: Rgb, coverage: f32) {
        if x < 0 || y < 0 || x >= self.width || y >= self.height {
            return;
        }
        // Nearly full coverage is drawn solid: crisper stems, and exactly the text colour.
        let a = if coverage >= 0.94 {
            1.0
        } else {
            coverage.clamp(0.0, 1.0)
        };
        let i = ((y * self.width + x) * 4) as usize;
        let mix =
            |dst: u8, src: u8| (f32::from(dst) * (1.0 - a) + f32::from(src) * a).round() as u8;
        self.data[i] = mix(self.data[i], colour.b);
        self.data[i + 1] = mix(self.data[i + 1], colour.g);
        self.data[i + 2] = mix(self.data[i + 2], colour.r);
    }

    /// Draws one line of text with its top-left corner at (`x`, `y`), at most `max_width`
    /// pixels wide (cut with an ellipsis). Returns the width drawn.
    pub fn draw_text(
        &mut self,
        text: &str,
        x: i32,
        y: i32,
        px: f32,
        max_width: i32,
        colour: Rgb,
    ) -> i32 {
        let font = font();
        let scaled = font.as_scaled(PxScale::from(px));
        let fitted = fit(text, px, max_width);
        let baseline = y as f32 + scaled.ascent();
        let mut caret = x as f32;
        let mut previous = None;
        for ch in fitted.chars() {
            let id = font.glyph_id(ch);
            if let Some(prev) = previous {
                caret += scaled.kern(prev, id);
            }
            let glyph =
                id.with_scale_and_position(PxScale::from(px), ab_glyph::point(caret, baseline));
            caret += scaled.h_advance(id);
            previous = Some(id);
            if let Some(outlined) = font.outline_glyph(glyph) {
                let bounds = outlined.px_bounds();
                outlined.draw(|gx, gy, coverage| {
                    self.blend(
                        bounds.min.x as i32 + gx as i32,
                        bounds.min.y as i32 + gy as i32,
                        colour,
                        coverage,
                    );
                });
            }
        }
        (caret - x as f32).ceil() as i32
    }
}

/// Width of `text` in pixels at size `px`.
pub fn text_width(text: &str, px: f32) -> f32 {
    let font = font();
    let scaled = font.as_scaled(PxScale::from(px));
    let mut width = 0.0;
    let mut previous = None;
    for ch in text.chars() {
        let id = font.glyph_id(ch);
        if let Some(prev) = previous {
            width += scaled.kern(prev, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// `text`, cut and ended with an ellipsis if it is wider than `max_width`.
pub fn fit(text: &str, px: f32, max_width: i32) -> String {
    let max = max_width as f32;
    if text_width(text, px) <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    for ch in text.chars() {
        out.push(ch);
        let mut candidate = out.clone();
        candidate.push('…');
        if text_width(&candidate, px) > max {
            out.pop();
            break;
        }
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_draws_pixels_of_the_text_colour() {
        let mut p = Pixels::filled(200, 24, Rgb::new(0, 0, 0));
        let w = p.draw_text("[work] Hello", 4, 3, 15.0, 190, Rgb::new(255, 255, 255));
        assert!(w > 40);
        let white = p
            .data
            .chunks_exact(4)
            .filter(|c| c[0] == 255 && c[1] == 255)
            .count();
        assert!(white > 20, "{white} fully covered pixels");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        let long = "x".repeat(500);
        let f = fit(&long, 15.0, 100);
        assert!(f.ends_with('…'));
        assert!(text_width(&f, 15.0) <= 100.0);
    }
}
