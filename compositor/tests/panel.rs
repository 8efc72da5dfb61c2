//! The panel, end to end on the headless backend: running qubes as chips in their label
//! colours on every output, windows kept below it (a qube asking for the whole screen gets the
//! work area), clicks on it never reaching a window, and a click on a qube's chip opening the
//! launcher on that qube's applications.

mod common;

use common::{Corral, agent, beside_corral, hex};
use corral::ipc::{LauncherAction, Request};
use corral::panel::PANEL_HEIGHT;

/// The entry point of the agent processes (does nothing when run as a test).
#[test]
fn test_agent_entry() {
    agent::main_if_agent();
}

/// The x ranges of `colour` along the panel's middle row of the output starting at `x0`.
fn runs_of(image: &common::Image, x0: i32, width: i32, colour: u32) -> Vec<(i32, i32)> {
    let y = PANEL_HEIGHT / 2 + 4;
    let mut runs = Vec::new();
    let mut start = None;
    for x in x0..x0 + width {
        match (image.rgb(x, y) == colour, start) {
            (true, None) => start = Some(x),
            (false, Some(s)) => {
                runs.push((s, x));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, x0 + width));
    }
    runs
}

#[test]
fn every_output_shows_the_running_qubes_and_no_window_covers_the_panel() {
    let corral = Corral::start(
        "panel",
        &["1280x800", "1024x768"],
        &["work:blue", "personal:yellow"],
    );
    let work = corral.wait_window("work");
    corral.wait_window("personal");
    let colours: Vec<(String, u32)> = corral
        .qubes()
        .into_iter()
        .map(|q| (q.name, hex(&q.colour)))
        .collect();
    // A qube maximises its window: it gets the output below the panel, not the panel.
    corral.focus(work.id);
    corral.key("super+Up");
    let max = corral
        .windows()
        .into_iter()
        .find(|w| w.id == work.id)
        .unwrap();
    assert_eq!(max.frame.y, PANEL_HEIGHT);
    std::thread::sleep(std::time::Duration::from_millis(150));
    let image = corral.screenshot("panel");
    for (x0, width) in [(0, 1280), (1280, 1024)] {
        for (name, colour) in &colours {
            let runs = runs_of(&image, x0, width, *colour);
            assert!(
                runs.iter().any(|(a, b)| b - a >= 30),
                "{name}'s chip on the output at x={x0}: {runs:?}"
            );
        }
    }
    // Under the panel's strip there is no window content: the strip is the panel's.
    assert!(
        corral.windows().iter().all(|w| w.frame.y >= PANEL_HEIGHT),
        "{:?}",
        corral.windows()
    );

    // A click on the panel reaches no window; a click on work's chip opens its menu, whose
    // first entry opens the launcher on work's applications (this corral has no domain manager,
    // so the list itself is an error).
    let before = corral.agent_log("work").len();
    let runs = runs_of(
        &image,
        0,
        1280,
        colours.iter().find(|c| c.0 == "work").unwrap().1,
    );
    let (a, b) = runs.into_iter().find(|(a, b)| b - a >= 30).unwrap();
    corral.pointer(f64::from(a + b) / 2.0, 10.0, true);
    // Its menu: without a domain manager, only "Applications…".
    corral.pointer(f64::from(a + 40), f64::from(PANEL_HEIGHT + 1 + 14), true);
    let state = corral
        .request(&Request::Launcher {
            action: LauncherAction::State,
        })
        .unwrap();
    assert_eq!(state["open"], true, "{state}");
    assert_eq!(state["query"], "work ", "{state}");
    assert!(
        !corral
            .agent_log("work")
            .iter()
            .skip(before)
            .any(|l| l.starts_with("PointerButton")),
        "the click reached work"
    );
}

fn state_of(corral: &Corral, qube: &str) -> String {
    let ls: serde_json::Value = serde_json::from_str(&corral.ctl(&["ls", "--json"])).unwrap();
    ls.as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == qube)
        .map(|q| q["state"].as_str().unwrap().to_owned())
        .unwrap()
}

#[test]
fn a_qubes_chip_menu_pauses_unpauses_and_shuts_it_down() {
    for bin in ["corralctl", "corral-agent"] {
        if !beside_corral(bin).is_file() {
            common::skip(&format!("{bin} is not built"));
            return;
        }
    }
    if std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .is_err()
    {
        common::skip("bwrap is not installed");
        return;
    }
    let data = common::TempDir::new("panel-menu-data");
    let data_arg = data.0.to_str().unwrap().to_owned();
    let corral = Corral::start_with(
        "panel-menu",
        &["1600x900"],
        &[],
        &common::test_agent_command(),
        &["--domains", "--domains-data", &data_arg],
    );
    corral.wait_admin_socket();
    corral.create_host_and("work", "blue");
    corral.ctl(&["start", "work"]);
    // The running qube's chip (it has no window: the panel asks the manager).
    let chip = corral.wait_for("work's chip", || {
        let image = corral.screenshot("panel-menu");
        runs_of(&image, 0, 1600, 0x3465a4)
            .into_iter()
            .find(|(a, b)| b - a >= 30)
    });
    let click_entry = |row: i32| {
        corral.pointer(f64::from(chip.0 + chip.1) / 2.0, 10.0, true);
        // Entries are 28 px rows under the panel, in this order: Applications…, Pause or
        // Unpause, Shut down, Kill.
        corral.pointer(
            f64::from(chip.0 + 40),
            f64::from(PANEL_HEIGHT + 1 + row * 28 + 14),
            true,
        );
    };
    click_entry(1);
    corral.wait_for("work to pause", || {
        (state_of(&corral, "work") == "Paused").then_some(())
    });
    click_entry(1);
    corral.wait_for("work to unpause", || {
        (state_of(&corral, "work") == "Running").then_some(())
    });
    click_entry(2);
    corral.wait_for("work to shut down", || {
        (state_of(&corral, "work") == "Halted").then_some(())
    });
    // Its chip goes with it.
    corral.wait_for("work's chip to go", || {
        let image = corral.screenshot("panel-menu-after");
        runs_of(&image, 0, 1600, 0x3465a4)
            .iter()
            .all(|(a, b)| b - a < 30)
            .then_some(())
    });
    // The "Qubes" button at the panel's left lists the halted qubes in name order (the
    // template `host`, then `work`), each row with its qube's colour down its side; a click on
    // work's row starts it.
    corral.pointer(20.0, 10.0, true);
    let row_y = |row: i32| PANEL_HEIGHT + 1 + row * 28 + 14;
    let menu = corral.wait_for("the Qubes menu", || {
        let image = corral.screenshot("panel-start-menu");
        (image.rgb(8, row_y(1)) == 0x3465a4 && image.rgb(8, row_y(0)) != 0x3465a4).then_some(image)
    });
    assert_eq!(menu.rgb(8, row_y(0)), 0x000000, "host's black row first");
    corral.pointer(60.0, f64::from(row_y(1)), true);
    corral.wait_for("work to start from the panel", || {
        (state_of(&corral, "work") == "Running").then_some(())
    });
}
