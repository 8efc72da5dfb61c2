//! The states `corralctl ls` shows besides Running, Halted and Paused, in qvm-ls's words:
//! `Halting` while a qube asked to stop still runs (until its timeout kills it).

mod common;

use std::time::{Duration, Instant};

use common::Daemon;

fn state(d: &Daemon, qube: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&d.ok(&["ls", "--json"])).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == qube)
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_qube_that_ignores_the_shutdown_is_halting_until_it_is_killed() {
    let d = Daemon::start("states").with_work();
    d.ok(&["start", "work"]);
    assert_eq!(state(&d, "work"), "Running");
    // A process that ignores SIGTERM keeps the qube up until the timeout.
    d.ok(&["run", "work", "trap '' TERM; touch ~/ready; sleep 60"]);
    let qid = d.ok(&["prefs", "work", "qid"]);
    let ready = d
        .data()
        .join("volumes")
        .join(qid.trim())
        .join("private/ready");
    let t0 = Instant::now();
    while !ready.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the stubborn process never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    d.ok(&["shutdown", "work", "--timeout", "2"]);
    assert_eq!(state(&d, "work"), "Halting");
    let t0 = Instant::now();
    while state(&d, "work") != "Halted" {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "still {} after the timeout",
            state(&d, "work")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "halted after {:?}: the stubborn process was not given its timeout",
        t0.elapsed()
    );
    d.ok(&["start", "work"]);
    assert_eq!(state(&d, "work"), "Running", "a new start clears Halting");
}

#[test]
fn two_commands_starting_the_same_halted_qube_at_once_both_run() {
    let d = Daemon::start("states-race").with_work();
    for round in 0..3 {
        let outputs: Vec<_> = std::thread::scope(|s| {
            let runs: Vec<_> = (0..2)
                .map(|i| {
                    let d = &d;
                    s.spawn(move || d.ctl(&["run", "-p", "work", &format!("echo ran-{i}")]))
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        for (i, o) in outputs.iter().enumerate() {
            assert!(
                o.status.success()
                    && String::from_utf8_lossy(&o.stdout).contains(&format!("ran-{i}")),
                "round {round}, command {i}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        d.ok(&["shutdown", "work", "--wait"]);
    }
}
