//! Screenshots decoded for pixel checks.

use std::path::Path;

/// An RGBA image.
#[derive(Debug)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
}

impl Image {
    pub fn load(path: &Path) -> Image {
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgba);
        buf.truncate(info.buffer_size());
        Image {
            width: info.width,
            height: info.height,
            rgba: buf,
        }
    }

    /// The pixel at (x, y) as 0xRRGGBB.
    pub fn rgb(&self, x: i32, y: i32) -> u32 {
        assert!(
            x >= 0 && y >= 0 && (x as u32) < self.width && (y as u32) < self.height,
            "({x}, {y}) is off the image"
        );
        let i = ((y as u32 * self.width + x as u32) * 4) as usize;
        (u32::from(self.rgba[i]) << 16)
            | (u32::from(self.rgba[i + 1]) << 8)
            | u32::from(self.rgba[i + 2])
    }

    /// How many pixels of the rectangle (clipped to the image) are exactly `colour`.
    pub fn count(&self, (x, y, w, h): (i32, i32, i32, i32), colour: u32) -> usize {
        let mut n = 0;
        for yy in y.max(0)..(y + h).min(self.height as i32) {
            for xx in x.max(0)..(x + w).min(self.width as i32) {
                n += usize::from(self.rgb(xx, yy) == colour);
            }
        }
        n
    }

    /// The most frequent colour of the rectangle and its share (0..=1).
    pub fn dominant(&self, (x, y, w, h): (i32, i32, i32, i32)) -> (u32, f64) {
        let mut counts = std::collections::HashMap::new();
        for yy in y..y + h {
            for xx in x..x + w {
                *counts.entry(self.rgb(xx, yy)).or_insert(0usize) += 1;
            }
        }
        let (colour, n) = counts.into_iter().max_by_key(|(_, n)| *n).unwrap_or((0, 0));
        (colour, n as f64 / f64::from((w * h).max(1)))
    }

    /// Asserts that every pixel of the rectangle is `colour`.
    pub fn assert_all(&self, what: &str, (x, y, w, h): (i32, i32, i32, i32), colour: u32) {
        for yy in y..y + h {
            for xx in x..x + w {
                let got = self.rgb(xx, yy);
                assert_eq!(
                    got, colour,
                    "{what}: pixel ({xx}, {yy}) is #{got:06x}, expected #{colour:06x}"
                );
            }
        }
    }
}
