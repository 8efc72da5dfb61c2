//! Randomized window-management sequences with invariant checks (the niri way), plus a few
//! plain cases.

use proptest::prelude::*;

use super::*;

fn outputs(sizes: &[(i32, i32)]) -> Vec<OutputArea> {
    let mut x = 0;
    sizes
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| {
            let o = OutputArea {
                name: format!("headless-{}", i + 1),
                rect: Rect::new(x, 0, w, h),
            };
            x += w;
            o
        })
        .collect()
}

#[derive(Debug, Clone)]
pub(crate) enum Op {
    AddToplevel,
    AddPopup {
        parent: usize,
        offset: (i32, i32),
        size: (i32, i32),
    },
    Map {
        win: usize,
        mapped: bool,
    },
    Commit {
        win: usize,
        size: (i32, i32),
    },
    Remove {
        win: usize,
    },
    Focus {
        win: usize,
    },
    Click {
        x: f64,
        y: f64,
    },
    Move {
        win: usize,
        x: i32,
        y: i32,
    },
    MoveBy {
        win: usize,
        dx: i32,
        dy: i32,
    },
    Resize {
        win: usize,
        size: (i32, i32),
    },
    ToggleMaximize {
        win: usize,
    },
    Minimize {
        win: usize,
    },
    SwitchWorkspace {
        n: u32,
    },
    MoveToWorkspace {
        win: usize,
        n: u32,
    },
    Cycle,
    Attention {
        win: usize,
    },
    Reposition {
        win: usize,
        offset: (i32, i32),
        size: (i32, i32),
    },
    SetOutputs {
        sizes: Vec<(i32, i32)>,
    },
}

fn coord() -> impl Strategy<Value = i32> {
    prop_oneof![-40000..40000i32, -200..3000i32]
}

fn size() -> impl Strategy<Value = (i32, i32)> {
    (1..20000i32, 1..20000i32)
}

pub(crate) fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::AddToplevel),
        2 => (0..16usize, (coord(), coord()), size())
            .prop_map(|(parent, offset, size)| Op::AddPopup { parent, offset, size }),
        3 => (0..16usize, any::<bool>()).prop_map(|(win, mapped)| Op::Map { win, mapped }),
        3 => (0..16usize, size()).prop_map(|(win, size)| Op::Commit { win, size }),
        1 => (0..16usize).prop_map(|win| Op::Remove { win }),
        2 => (0..16usize).prop_map(|win| Op::Focus { win }),
        2 => (-100.0..3500.0f64, -100.0..1200.0f64).prop_map(|(x, y)| Op::Click { x, y }),
        2 => (0..16usize, coord(), coord()).prop_map(|(win, x, y)| Op::Move { win, x, y }),
        1 => (0..16usize, coord(), coord()).prop_map(|(win, dx, dy)| Op::MoveBy { win, dx, dy }),
        2 => (0..16usize, size()).prop_map(|(win, size)| Op::Resize { win, size }),
        1 => (0..16usize).prop_map(|win| Op::ToggleMaximize { win }),
        1 => (0..16usize).prop_map(|win| Op::Minimize { win }),
        1 => (0..11u32).prop_map(|n| Op::SwitchWorkspace { n }),
        1 => (0..16usize, 0..11u32).prop_map(|(win, n)| Op::MoveToWorkspace { win, n }),
        1 => Just(Op::Cycle),
        1 => (0..16usize).prop_map(|win| Op::Attention { win }),
        1 => (0..16usize, (coord(), coord()), size())
            .prop_map(|(win, offset, size)| Op::Reposition { win, offset, size }),
        1 => prop::collection::vec((200..4000i32, 200..3000i32), 1..4)
            .prop_map(|sizes| Op::SetOutputs { sizes }),
    ]
}

/// Applies one operation; returns an error if an operation-specific rule broke.
pub(crate) fn apply(
    layout: &mut Layout,
    ids: &mut Vec<WinId>,
    next: &mut WinId,
    op: &Op,
) -> Result<(), String> {
    let pick = |ids: &Vec<WinId>, i: usize| (!ids.is_empty()).then(|| ids[i % ids.len()]);
    let pointer = (100.0, 100.0);
    match op {
        Op::AddToplevel => {
            *next += 1;
            layout.add_toplevel(*next);
            ids.push(*next);
        }
        Op::AddPopup {
            parent,
            offset,
            size,
        } => {
            if let Some(parent) = pick(ids, *parent) {
                *next += 1;
                if layout.add_popup(*next, parent, *offset, *size) {
                    ids.push(*next);
                }
            }
        }
        Op::Map { win, mapped } => {
            if let Some(w) = pick(ids, *win) {
                layout.set_mapped(w, *mapped, pointer);
            }
        }
        Op::Commit { win, size } => {
            if let Some(w) = pick(ids, *win) {
                layout.content_committed(w, *size, pointer);
            }
        }
        Op::Remove { win } => {
            if let Some(w) = pick(ids, *win) {
                layout.remove(w);
                ids.retain(|i| layout.is_toplevel(*i) || layout.popup(*i).is_some());
            }
        }
        Op::Focus { win } => {
            if let Some(w) = pick(ids, *win) {
                layout.focus_window(w);
            }
        }
        Op::Click { x, y } => match layout.hit(*x, *y) {
            Some((w, _)) => {
                if !layout.focus_window(w) {
                    return Err(format!("a click on visible window {w} did not focus it"));
                }
            }
            None => layout.clear_focus(),
        },
        Op::Move { win, x, y } => {
            if let Some(w) = pick(ids, *win) {
                layout.move_to(w, *x, *y);
            }
        }
        Op::MoveBy { win, dx, dy } => {
            if let Some(w) = pick(ids, *win) {
                layout.move_by(w, *dx, *dy);
            }
        }
        Op::Resize { win, size } => {
            if let Some(w) = pick(ids, *win) {
                layout.resize(w, size.0, size.1);
            }
        }
        Op::ToggleMaximize { win } => {
            if let Some(w) = pick(ids, *win) {
                layout.toggle_maximize(w);
            }
        }
        Op::Minimize { win } => {
            if let Some(w) = pick(ids, *win) {
                layout.minimize(w);
            }
        }
        Op::SwitchWorkspace { n } => layout.switch_workspace(*n),
        Op::MoveToWorkspace { win, n } => {
            if let Some(w) = pick(ids, *win) {
                layout.move_to_workspace(w, *n);
            }
        }
        Op::Cycle => {
            layout.cycle_focus();
        }
        Op::Attention { win } => {
            if let Some(w) = pick(ids, *win) {
                let before = layout.focus();
                let stack = layout.stack().to_vec();
                layout.set_attention(w, true);
                if layout.focus() != before || layout.stack() != stack.as_slice() {
                    return Err("an attention request moved focus or stacking".into());
                }
            }
        }
        Op::Reposition { win, offset, size } => {
            if let Some(w) = pick(ids, *win) {
                layout.reposition_popup(w, *offset, *size);
            }
        }
        Op::SetOutputs { sizes } => layout.set_outputs(outputs(sizes)),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_invariant(
        ops in prop::collection::vec(op(), 1..80),
        panel in prop::sample::select(vec![0, 28]),
    ) {
        let config = LayoutConfig { reserved_top: panel, ..LayoutConfig::default() };
        let mut layout = Layout::new(config, outputs(&[(1600, 900), (1280, 1024)]));
        let mut ids = Vec::new();
        let mut next = 0;
        for (i, op) in ops.iter().enumerate() {
            apply(&mut layout, &mut ids, &mut next, op).map_err(|e| {
                TestCaseError::fail(format!("step {i} {op:?}: {e}"))
            })?;
            layout.check_invariants().map_err(|e| {
                TestCaseError::fail(format!("after step {i} {op:?}: {e}"))
            })?;
        }
    }
}

#[test]
fn two_windows_are_placed_side_by_side() {
    let mut layout = Layout::new(LayoutConfig::default(), outputs(&[(1600, 900)]));
    for id in [1, 2] {
        layout.add_toplevel(id);
        layout.set_mapped(id, true, (10.0, 10.0));
        layout.content_committed(id, (400, 300), (10.0, 10.0));
    }
    let a = layout.frame_rect(1).unwrap();
    let b = layout.frame_rect(2).unwrap();
    assert!(!a.intersects(b), "{a:?} {b:?}");
    assert_eq!(a.y, b.y);
    layout.check_invariants().unwrap();
}

#[test]
fn popups_are_kept_on_their_output_and_clamped() {
    let mut layout = Layout::new(LayoutConfig::default(), outputs(&[(1000, 800)]));
    layout.add_toplevel(1);
    layout.set_mapped(1, true, (10.0, 10.0));
    layout.add_popup(2, 1, (5000, -5000), (5000, 5000));
    layout.set_mapped(2, true, (0.0, 0.0));
    let r = layout.popup_content_rect(2).unwrap();
    assert!(r.w <= 900 && r.h <= 720, "{r:?}");
    assert!(Rect::new(0, 0, 1000, 800).contains_rect(r.expand(2)));
    layout.check_invariants().unwrap();
}

#[test]
fn minimising_or_removing_the_focused_window_leaves_no_focus() {
    let mut layout = Layout::new(LayoutConfig::default(), outputs(&[(1600, 900)]));
    for id in [1, 2] {
        layout.add_toplevel(id);
        layout.set_mapped(id, true, (10.0, 10.0));
    }
    assert!(layout.focus_window(1));
    layout.minimize(1);
    assert_eq!(layout.focus(), None);
    assert!(layout.focus_window(2));
    layout.remove(2);
    assert_eq!(layout.focus(), None);
}

#[test]
fn windows_stay_below_the_panel() {
    let config = LayoutConfig {
        reserved_top: 28,
        ..LayoutConfig::default()
    };
    let mut layout = Layout::new(config, outputs(&[(1600, 900)]));
    layout.add_toplevel(1);
    layout.set_mapped(1, true, (10.0, 10.0));
    assert!(
        layout.frame_rect(1).unwrap().y >= 28,
        "placed below the panel"
    );
    layout.set_maximized(1, true);
    let frame = layout.frame_rect(1).unwrap();
    assert_eq!(
        (frame.y, frame.bottom()),
        (28, 900),
        "maximised into the work area"
    );
    layout.set_maximized(1, false);
    // A window asked to go above the screen's top edge stops at the panel.
    layout.move_by(1, 0, -5000);
    assert_eq!(layout.frame_rect(1).unwrap().y, 28);
    layout.check_invariants().unwrap();
}
