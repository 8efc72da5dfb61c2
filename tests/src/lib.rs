//! Cross-crate end-to-end suites of Corral: the hostile-agent suite (`hostile.rs`) and the fault
//! tests (`faults.rs`). See `tests/README.md` and `docs/security-tests.md`.
//!
//! Every case runs a real `corral` process on the headless backend with two kinds of qubes:
//!
//! - a **well-behaved bystander** (`good`): this test binary started again by the compositor as
//!   a protocol agent ([`good`]), drawing known pixels into a sealed memfd and logging every
//!   message it receives, so a case can check that it still renders and still gets its keys;
//! - a **hostile qube** (any other name): the compositor starts this binary again as a tiny
//!   relay ([`relay`]) that hands the channel's descriptor back to the test process over a Unix
//!   socket. The test then speaks the protocol itself, byte by byte ([`hostile::Hostile`]), and
//!   misbehaves on purpose: it is the qube.
//!
//! - a **real agent** (`real…`): the real `corral-agent` running `weston-simple-shm`, for the
//!   fault tests.
//!
//! The identity of all of them still comes from the channel the compositor created (`--dev-qube`).

pub mod fixture;
pub mod good;
pub mod hostile;
pub mod image;
pub mod relay;
pub mod wire;

/// Runs the agent side if this process was started by the compositor as an agent (the
/// `e2e_agent_entry` test of each test binary calls it); otherwise returns at once.
pub fn agent_main_if_agent() {
    let (Ok(fd), Ok(qube)) = (
        std::env::var("CORRAL_E2E_FD"),
        std::env::var("CORRAL_E2E_QUBE"),
    ) else {
        return;
    };
    let Ok(fd) = fd.parse::<i32>() else {
        std::process::exit(2);
    };
    let dir = std::env::var("CORRAL_E2E_DIR").unwrap_or_else(|_| "/tmp".into());
    if qube.starts_with("real") {
        real_agent(fd);
    }
    let result = if qube.starts_with("good") {
        good::run(fd, &qube, std::path::Path::new(&dir))
    } else {
        relay::run(fd, &qube, std::path::Path::new(&dir))
    };
    // Ends the process here, whatever the test harness would do next.
    std::process::exit(match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("agent {qube}: {e}");
            1
        }
    });
}

/// Qubes named `real…` run the real `corral-agent` (next to `corral`) with
/// `weston-simple-shm` inside, on the inherited channel: this process becomes that agent.
fn real_agent(fd: i32) -> ! {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe().unwrap();
    let agent = exe
        .parent()
        .and_then(std::path::Path::parent)
        .unwrap()
        .join("corral-agent");
    let error = std::process::Command::new(agent)
        .args(["--gui-fd", &fd.to_string(), "--exec", "weston-simple-shm"])
        .exec();
    eprintln!("starting corral-agent: {error}");
    std::process::exit(1);
}
