//! The little the udev backend reads from a monitor's EDID: who made it and what it is called,
//! so `[[output]] match = "MAKE MODEL"` can name a monitor wherever it is plugged in. The EDID
//! comes from the monitor, a device the user may not trust: the block is length- and
//! checksum-checked and only printable ASCII survives.

/// A monitor's identity from its EDID base block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonitorId {
    /// The three-letter PNP manufacturer id (`DEL`, `SAM`, `GSM`, …).
    pub make: String,
    /// The monitor-name descriptor, else the product code as `0x1234`.
    pub model: String,
    /// The serial-number descriptor, else the numeric serial if non-zero, else empty.
    pub serial: String,
}

const HEADER: [u8; 8] = [0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];

/// Parses the base block; `None` for anything that is not a valid EDID.
pub fn parse(untrusted_edid: &[u8]) -> Option<MonitorId> {
    let block = untrusted_edid.get(..128)?;
    if block[..8] != HEADER {
        return None;
    }
    if block.iter().fold(0u8, |s, b| s.wrapping_add(*b)) != 0 {
        return None;
    }
    let id = u16::from_be_bytes([block[8], block[9]]);
    let letter = |shift: u16| {
        let v = ((id >> shift) & 0x1f) as u8;
        (1..=26).contains(&v).then(|| char::from(b'A' + v - 1))
    };
    let make: String = [letter(10), letter(5), letter(0)]
        .into_iter()
        .collect::<Option<String>>()
        .unwrap_or_default();
    let product = u16::from_le_bytes([block[10], block[11]]);
    let serial_number = u32::from_le_bytes([block[12], block[13], block[14], block[15]]);
    let mut name = None;
    let mut serial_text = None;
    for d in block[54..126].chunks_exact(18) {
        // A display descriptor starts with a zero pixel clock.
        if d[0] != 0 || d[1] != 0 {
            continue;
        }
        let text = descriptor_text(&d[5..18]);
        match d[3] {
            0xfc if name.is_none() && !text.is_empty() => name = Some(text),
            0xff if serial_text.is_none() && !text.is_empty() => serial_text = Some(text),
            _ => {}
        }
    }
    Some(MonitorId {
        make,
        model: name.unwrap_or_else(|| format!("0x{product:04X}")),
        serial: serial_text.unwrap_or_else(|| {
            if serial_number == 0 {
                String::new()
            } else {
                serial_number.to_string()
            }
        }),
    })
}

/// A descriptor's text: up to the line feed, printable ASCII only, trimmed.
fn descriptor_text(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take_while(|b| **b != 0x0a)
        .map(|b| {
            if (0x20..0x7f).contains(b) {
                char::from(*b)
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EDID base block as a monitor sends it: header, vendor, product, serial, descriptors
    /// (one detailed timing, then name and serial text), checksum.
    fn edid(vendor: &str, product: u16, name: &[u8], serial: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b[..8].copy_from_slice(&HEADER);
        let v: Vec<u16> = vendor.bytes().map(|c| u16::from(c - b'A' + 1)).collect();
        b[8..10].copy_from_slice(&((v[0] << 10) | (v[1] << 5) | v[2]).to_be_bytes());
        b[10..12].copy_from_slice(&product.to_le_bytes());
        b[12..16].copy_from_slice(&0x0102_0304u32.to_le_bytes());
        b[18] = 1;
        b[19] = 4;
        // A detailed timing descriptor (non-zero pixel clock): not text.
        b[54] = 0x02;
        b[55] = 0x3a;
        for (at, tag, text) in [(72usize, 0xfcu8, name), (90, 0xff, serial)] {
            b[at + 3] = tag;
            let mut field = [0x20u8; 13];
            field[..text.len()].copy_from_slice(text);
            if text.len() < 13 {
                field[text.len()] = 0x0a;
            }
            b[at + 5..at + 18].copy_from_slice(&field);
        }
        b[108 + 3] = 0x10; // a dummy descriptor
        let sum = b[..127].iter().fold(0u8, |s, x| s.wrapping_add(*x));
        b[127] = 0u8.wrapping_sub(sum);
        b
    }

    #[test]
    fn reads_make_model_and_serial() {
        let id = parse(&edid("DEL", 0xa0f3, b"DELL U2720Q", b"7XYZ123")).unwrap();
        assert_eq!(
            id,
            MonitorId {
                make: "DEL".into(),
                model: "DELL U2720Q".into(),
                serial: "7XYZ123".into(),
            }
        );
    }

    #[test]
    fn without_a_name_the_product_code_names_it() {
        let id = parse(&edid("GSM", 0x5b7f, b"", b"")).unwrap();
        assert_eq!(id.make, "GSM");
        assert_eq!(id.model, "0x5B7F");
        assert_eq!(id.serial, (0x0102_0304u32).to_string());
    }

    #[test]
    fn hostile_or_broken_edids_are_refused_or_sanitised() {
        let good = edid("SAM", 1, b"S\x1b[2Jx\xff", b"");
        assert_eq!(parse(&good).unwrap().model, "S_[2Jx_");
        let mut bad_sum = good.clone();
        bad_sum[100] ^= 1;
        assert_eq!(parse(&bad_sum), None);
        let mut bad_header = good.clone();
        bad_header[0] = 1;
        assert_eq!(parse(&bad_header), None);
        assert_eq!(parse(&good[..127]), None);
        assert_eq!(parse(&[]), None);
        // Extension blocks after the base block are ignored.
        let mut longer = good.clone();
        longer.extend_from_slice(&[0xab; 128]);
        assert_eq!(parse(&longer), parse(&good));
    }
}
