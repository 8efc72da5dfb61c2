//! Where each connected monitor goes: its mode, position and transform, from per-connector
//! settings (the config file's `[[output]]` tables). Pure: no DRM, no I/O, so it is tested here
//! without hardware, and the udev backend calls it again on every hotplug with the whole set of
//! connected monitors. The same set of monitors and settings always gives the same layout, so a
//! monitor that is unplugged and plugged back comes back where it was.

use crate::layout::Rect;

/// How an output is rotated or flipped (the config file's `transform`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputTransform {
    #[default]
    Normal,
    R90,
    R180,
    R270,
    Flipped,
    Flipped90,
    Flipped180,
    Flipped270,
}

impl OutputTransform {
    /// Whether width and height swap.
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            OutputTransform::R90
                | OutputTransform::R270
                | OutputTransform::Flipped90
                | OutputTransform::Flipped270
        )
    }

    pub fn to_smithay(self) -> smithay::utils::Transform {
        use smithay::utils::Transform as T;
        match self {
            OutputTransform::Normal => T::Normal,
            OutputTransform::R90 => T::_90,
            OutputTransform::R180 => T::_180,
            OutputTransform::R270 => T::_270,
            OutputTransform::Flipped => T::Flipped,
            OutputTransform::Flipped90 => T::Flipped90,
            OutputTransform::Flipped180 => T::Flipped180,
            OutputTransform::Flipped270 => T::Flipped270,
        }
    }
}

/// What the user asked for one output. Every field has the "nothing asked" default.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputSettings {
    pub enabled: bool,
    /// `(width, height, refresh Hz)`; `None`: the monitor's preferred mode.
    pub mode: Option<(i32, i32, Option<u32>)>,
    /// Top-left corner in the global space; `None`: to the right of the others.
    pub position: Option<(i32, i32)>,
    pub transform: OutputTransform,
    /// Advertised to GUI-domain apps; the compositor itself draws at scale 1 for now.
    pub scale: f64,
}

impl Default for OutputSettings {
    fn default() -> Self {
        OutputSettings {
            enabled: true,
            mode: None,
            position: None,
            transform: OutputTransform::Normal,
            scale: 1.0,
        }
    }
}

/// One rule: settings for the output whose connector name (`DP-1`) or `make model` is
/// `matches` (the config file's `[[output]] match = …`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputRule {
    pub matches: String,
    pub settings: OutputSettings,
}

/// Where the udev backend gets per-connector settings. The config file's `[[output]]` list is
/// one (see [`OutputRule`]); so is an empty list (every monitor at its preferred mode, left to
/// right).
pub trait OutputSettingsSource: std::fmt::Debug {
    /// The settings for a monitor on `connector` (like `DP-1`) reporting `make` and `model`
    /// in its EDID, if any rule names it.
    fn settings_for(&self, connector: &str, make: &str, model: &str) -> Option<OutputSettings>;
}

impl OutputSettingsSource for Vec<OutputRule> {
    /// The first rule naming the connector wins; then the first naming `make model`.
    fn settings_for(&self, connector: &str, make: &str, model: &str) -> Option<OutputSettings> {
        let by_connector = self.iter().find(|r| r.matches == connector);
        let make_model = format!("{make} {model}");
        by_connector
            .or_else(|| {
                self.iter()
                    .find(|r| !make.is_empty() && r.matches == make_model)
            })
            .map(|r| r.settings.clone())
    }
}

/// The config file's `[[output]]` tables as rules. A mode that does not parse (the config
/// loader already refuses those) counts as "not set".
pub fn rules_from_config(outputs: &[crate::config::schema::Output]) -> Vec<OutputRule> {
    use crate::config::schema::{Output, Transform as T};
    outputs
        .iter()
        .map(|o| OutputRule {
            matches: o.matches.clone(),
            settings: OutputSettings {
                enabled: o.enabled,
                mode: o.mode.as_deref().and_then(|m| Output::parse_mode(m).ok()),
                position: o.position.map(|[x, y]| (x.get() as i32, y.get() as i32)),
                transform: match o.transform {
                    T::Normal => OutputTransform::Normal,
                    T::R90 => OutputTransform::R90,
                    T::R180 => OutputTransform::R180,
                    T::R270 => OutputTransform::R270,
                    T::Flipped => OutputTransform::Flipped,
                    T::Flipped90 => OutputTransform::Flipped90,
                    T::Flipped180 => OutputTransform::Flipped180,
                    T::Flipped270 => OutputTransform::Flipped270,
                },
                scale: o.scale.get(),
            },
        })
        .collect()
}

/// A mode a connector offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeDesc {
    pub width: i32,
    pub height: i32,
    /// Refresh rate in millihertz.
    pub refresh_mhz: u32,
    pub preferred: bool,
}

/// A connected monitor, as the backend found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorDesc {
    /// `DP-1`, `HDMI-A-2`, `eDP-1`: unique across GPUs (the backend makes it so).
    pub name: String,
    pub make: String,
    pub model: String,
    pub modes: Vec<ModeDesc>,
}

/// Where one monitor goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub name: String,
    pub enabled: bool,
    /// Index into the connector's `modes`.
    pub mode: usize,
    /// The area in the global space (mode size, axes swapped for 90° and 270°).
    pub rect: Rect,
    pub transform: OutputTransform,
    pub scale: f64,
    /// The configured mode was not offered: the preferred one is used instead.
    pub mode_fallback: bool,
}

/// The mode to use: the configured size (the nearest refresh rate to the one asked, else the
/// fastest), else the preferred mode, else the first. `None` when the connector offers no mode.
pub fn choose_mode(
    modes: &[ModeDesc],
    wanted: Option<(i32, i32, Option<u32>)>,
) -> Option<(usize, bool)> {
    if modes.is_empty() {
        return None;
    }
    let fallback = modes.iter().position(|m| m.preferred).unwrap_or(0);
    let Some((w, h, hz)) = wanted else {
        return Some((fallback, false));
    };
    let best = modes
        .iter()
        .enumerate()
        .filter(|(_, m)| m.width == w && m.height == h)
        .min_by_key(|(i, m)| {
            let distance = match hz {
                Some(hz) => i64::from(m.refresh_mhz).abs_diff(i64::from(hz) * 1000),
                // No rate asked: the fastest.
                None => u64::from(u32::MAX - m.refresh_mhz),
            };
            // Ties: the preferred mode, then the first listed.
            (distance, !m.preferred, *i)
        })
        .map(|(i, _)| i);
    match best {
        Some(i) => Some((i, false)),
        None => Some((fallback, true)),
    }
}

/// Places every connected monitor. Monitors with a configured position go there; the others
/// go left to right (in connector-name order) to the right of everything placed, top-aligned at
/// y = 0. A monitor disabled by its rule stays dark, but if every monitor would be dark the
/// first one is lit anyway: the screen (and the lock screen) must be somewhere. Connectors that
/// offer no mode are left out.
pub fn place(connectors: &[ConnectorDesc], source: &dyn OutputSettingsSource) -> Vec<Placement> {
    let mut sorted: Vec<&ConnectorDesc> = connectors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out: Vec<Placement> = Vec::new();
    for c in sorted {
        let settings = source
            .settings_for(&c.name, &c.make, &c.model)
            .unwrap_or_default();
        let Some((mode, mode_fallback)) = choose_mode(&c.modes, settings.mode) else {
            continue;
        };
        let m = c.modes[mode];
        let (w, h) = if settings.transform.swaps_axes() {
            (m.height, m.width)
        } else {
            (m.width, m.height)
        };
        let (x, y) = settings.position.unwrap_or((0, 0));
        out.push(Placement {
            name: c.name.clone(),
            enabled: settings.enabled,
            mode,
            rect: Rect::new(x, y, w.max(1), h.max(1)),
            transform: settings.transform,
            scale: if settings.scale.is_finite() && settings.scale > 0.0 {
                settings.scale
            } else {
                1.0
            },
            mode_fallback,
        });
    }
    if !out.is_empty() && out.iter().all(|p| !p.enabled) {
        out[0].enabled = true;
    }
    // Auto-placed monitors start right of everything placed explicitly.
    let explicit = |p: &Placement| {
        connectors
            .iter()
            .find(|c| c.name == p.name)
            .and_then(|c| source.settings_for(&c.name, &c.make, &c.model))
            .and_then(|s| s.position)
            .is_some()
    };
    let mut next_x = out
        .iter()
        .filter(|p| p.enabled && explicit(p))
        .map(|p| p.rect.right())
        .max()
        .unwrap_or(0);
    for p in out.iter_mut() {
        if p.enabled && !explicit(p) {
            p.rect.x = next_x;
            p.rect.y = 0;
            next_x = p.rect.right();
        }
    }
    out
}

/// Pairs of enabled outputs that overlap (a configuration mistake worth a warning: both show
/// the same part of the desktop).
pub fn overlaps(placements: &[Placement]) -> Vec<(String, String)> {
    let lit: Vec<&Placement> = placements.iter().filter(|p| p.enabled).collect();
    let mut found = Vec::new();
    for (i, a) in lit.iter().enumerate() {
        for b in &lit[i + 1..] {
            let (ra, rb) = (a.rect, b.rect);
            if ra.x < rb.right() && rb.x < ra.right() && ra.y < rb.bottom() && rb.y < ra.bottom() {
                found.push((a.name.clone(), b.name.clone()));
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(w: i32, h: i32, hz: u32, preferred: bool) -> ModeDesc {
        ModeDesc {
            width: w,
            height: h,
            refresh_mhz: hz,
            preferred,
        }
    }

    fn monitor(name: &str, make: &str, model: &str) -> ConnectorDesc {
        ConnectorDesc {
            name: name.into(),
            make: make.into(),
            model: model.into(),
            modes: vec![
                mode(1920, 1080, 60_000, true),
                mode(1920, 1080, 143_981, false),
                mode(1920, 1080, 50_000, false),
                mode(1280, 720, 60_000, false),
                mode(1280, 720, 50_000, false),
            ],
        }
    }

    fn rule(matches: &str, settings: OutputSettings) -> OutputRule {
        OutputRule {
            matches: matches.into(),
            settings,
        }
    }

    #[test]
    fn unconfigured_monitors_go_left_to_right_in_name_order_at_their_preferred_mode() {
        let connectors = vec![monitor("HDMI-A-1", "", ""), monitor("DP-2", "", "")];
        let placed = place(&connectors, &Vec::<OutputRule>::new());
        let summary: Vec<(&str, Rect, usize)> = placed
            .iter()
            .map(|p| (p.name.as_str(), p.rect, p.mode))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("DP-2", Rect::new(0, 0, 1920, 1080), 0),
                ("HDMI-A-1", Rect::new(1920, 0, 1920, 1080), 0),
            ]
        );
        assert!(placed.iter().all(|p| p.enabled && !p.mode_fallback));
    }

    #[test]
    fn configured_mode_picks_the_nearest_refresh_or_the_fastest() {
        let modes = monitor("DP-1", "", "").modes;
        assert_eq!(
            choose_mode(&modes, Some((1920, 1080, Some(144)))),
            Some((1, false))
        );
        assert_eq!(
            choose_mode(&modes, Some((1920, 1080, Some(50)))),
            Some((2, false))
        );
        assert_eq!(
            choose_mode(&modes, Some((1920, 1080, None))),
            Some((1, false))
        );
        assert_eq!(
            choose_mode(&modes, Some((1280, 720, None))),
            Some((3, false))
        );
        // Not offered: the preferred mode, flagged.
        assert_eq!(
            choose_mode(&modes, Some((3840, 2160, None))),
            Some((0, true))
        );
        assert_eq!(choose_mode(&[], None), None);
    }

    #[test]
    fn rules_match_by_connector_first_then_make_and_model() {
        let rules = vec![
            rule(
                "Dell Inc. U2720Q",
                OutputSettings {
                    position: Some((0, 0)),
                    ..OutputSettings::default()
                },
            ),
            rule(
                "eDP-1",
                OutputSettings {
                    position: Some((500, 1080)),
                    mode: Some((1280, 720, None)),
                    ..OutputSettings::default()
                },
            ),
        ];
        let connectors = vec![
            monitor("eDP-1", "Dell Inc.", "U2720Q"),
            monitor("DP-3", "Dell Inc.", "U2720Q"),
            monitor("DP-4", "", ""),
        ];
        let placed = place(&connectors, &rules);
        let get = |n: &str| placed.iter().find(|p| p.name == n).unwrap().clone();
        // eDP-1 is named by its connector, so the make/model rule does not apply to it.
        assert_eq!(get("eDP-1").rect, Rect::new(500, 1080, 1280, 720));
        assert_eq!(get("DP-3").rect, Rect::new(0, 0, 1920, 1080));
        // Auto-placed: right of the rightmost explicit output (eDP-1 ends at 1780).
        assert_eq!(get("DP-4").rect, Rect::new(1920, 0, 1920, 1080));
        // An empty make never matches a rule " model".
        assert_eq!(rules.settings_for("X-1", "", "U2720Q"), None);
    }

    #[test]
    fn rotation_swaps_the_axes_and_disabled_monitors_stay_dark() {
        let rules = vec![
            rule(
                "DP-1",
                OutputSettings {
                    transform: OutputTransform::R90,
                    ..OutputSettings::default()
                },
            ),
            rule(
                "DP-2",
                OutputSettings {
                    enabled: false,
                    ..OutputSettings::default()
                },
            ),
        ];
        let connectors = vec![
            monitor("DP-1", "", ""),
            monitor("DP-2", "", ""),
            monitor("DP-3", "", ""),
        ];
        let placed = place(&connectors, &rules);
        assert_eq!(placed[0].rect, Rect::new(0, 0, 1080, 1920));
        assert_eq!(
            placed[0].transform.to_smithay(),
            smithay::utils::Transform::_90
        );
        assert!(!placed[1].enabled);
        // The dark monitor takes no room.
        assert_eq!(placed[2].rect, Rect::new(1080, 0, 1920, 1080));
    }

    #[test]
    fn at_least_one_monitor_stays_lit() {
        let off = OutputSettings {
            enabled: false,
            ..OutputSettings::default()
        };
        let rules = vec![rule("DP-1", off.clone()), rule("DP-2", off)];
        let placed = place(&[monitor("DP-2", "", ""), monitor("DP-1", "", "")], &rules);
        assert_eq!(
            placed
                .iter()
                .map(|p| (p.name.as_str(), p.enabled))
                .collect::<Vec<_>>(),
            vec![("DP-1", true), ("DP-2", false)]
        );
        assert_eq!(placed[0].rect, Rect::new(0, 0, 1920, 1080));
    }

    #[test]
    fn a_replugged_monitor_comes_back_where_it_was() {
        let rules = vec![rule(
            "HDMI-A-1",
            OutputSettings {
                position: Some((-1280, 200)),
                mode: Some((1280, 720, Some(60))),
                ..OutputSettings::default()
            },
        )];
        let all = vec![
            monitor("eDP-1", "", ""),
            monitor("HDMI-A-1", "", ""),
            monitor("DP-1", "", ""),
        ];
        let before = place(&all, &rules);
        let unplugged = place(&[all[0].clone(), all[2].clone()], &rules);
        assert_eq!(unplugged.len(), 2);
        let again = place(&all, &rules);
        assert_eq!(before, again);
        let hdmi = again.iter().find(|p| p.name == "HDMI-A-1").unwrap();
        assert_eq!(hdmi.rect, Rect::new(-1280, 200, 1280, 720));
    }

    #[test]
    fn overlapping_outputs_are_reported_and_bad_scales_become_one() {
        let rules = vec![
            rule(
                "DP-1",
                OutputSettings {
                    position: Some((0, 0)),
                    scale: f64::NAN,
                    ..OutputSettings::default()
                },
            ),
            rule(
                "DP-2",
                OutputSettings {
                    position: Some((1000, 500)),
                    ..OutputSettings::default()
                },
            ),
        ];
        let placed = place(&[monitor("DP-1", "", ""), monitor("DP-2", "", "")], &rules);
        assert_eq!(
            overlaps(&placed),
            vec![("DP-1".to_string(), "DP-2".to_string())]
        );
        assert_eq!(placed[0].scale, 1.0);
        let apart = place(
            &[monitor("DP-1", "", ""), monitor("DP-2", "", "")],
            &Vec::new(),
        );
        assert!(overlaps(&apart).is_empty());
    }

    #[test]
    fn the_config_files_output_tables_become_rules() {
        let loaded = crate::config::load_text(
            "test.toml",
            r#"
[[output]]
match = "HDMI-A-1"
mode = "1280x720@50"
position = [-1280, 0]
transform = "270"
scale = 1.5

[[output]]
match = "DEL DELL U2720Q"
enabled = false
"#,
        )
        .expect("a valid config");
        let rules = rules_from_config(&loaded.config.outputs);
        assert_eq!(
            rules,
            vec![
                rule(
                    "HDMI-A-1",
                    OutputSettings {
                        enabled: true,
                        mode: Some((1280, 720, Some(50))),
                        position: Some((-1280, 0)),
                        transform: OutputTransform::R270,
                        scale: 1.5,
                    }
                ),
                rule(
                    "DEL DELL U2720Q",
                    OutputSettings {
                        enabled: false,
                        ..OutputSettings::default()
                    }
                ),
            ]
        );
        let placed = place(
            &[
                monitor("HDMI-A-1", "", ""),
                monitor("DP-1", "DEL", "DELL U2720Q"),
                monitor("DP-2", "", ""),
            ],
            &rules,
        );
        let get = |n: &str| placed.iter().find(|p| p.name == n).unwrap().clone();
        assert_eq!(get("HDMI-A-1").rect, Rect::new(-1280, 0, 720, 1280));
        assert_eq!(get("HDMI-A-1").mode, 4);
        assert!(!get("DP-1").enabled);
        assert_eq!(get("DP-2").rect, Rect::new(-560, 0, 1920, 1080));
    }

    #[test]
    fn connectors_without_modes_are_left_out() {
        let mut empty = monitor("DP-9", "", "");
        empty.modes.clear();
        let placed = place(&[empty, monitor("DP-1", "", "")], &Vec::<OutputRule>::new());
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[0].name, "DP-1");
    }
}
