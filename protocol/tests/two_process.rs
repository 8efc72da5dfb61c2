//! Two processes over the `unix` channel: this test is the GUI domain, and
//! `corral-channel-demo agent` (a separate process holding the other socketpair end) is the
//! agent. They exchange a handshake, a pool, 100 frames of damage and a clean shutdown; the test
//! records everything it received and then checks it, pixel by pixel.

use std::os::unix::net::UnixStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use corral_protocol::channel::pool::copy_rect;
use corral_protocol::channel::stream::StreamTransport;
use corral_protocol::channel::unix::{UnixTransport, share_with_child};
use corral_protocol::channel::{ConnectionError, GuiConnection, StreamLimits, Transport};
use corral_protocol::session::{Applied, SessionLimits};
use corral_protocol::{AgentMessage, Capabilities, GuiMessage, PoolBacking, Rect, Version};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
const FRAMES: u32 = 100;

/// The demo agent's drawing: frame 0 fills the buffer with grey, frame n > 0 draws a 64×64
/// square of a colour derived from n. Mirrors `frame_square` in the demo binary.
fn expected_frame(n: u32) -> (Rect, u32) {
    if n == 0 {
        return (Rect::new(0, 0, WIDTH, HEIGHT).unwrap(), 0xFF20_2020);
    }
    let x = (n * 7) % (WIDTH - 64);
    let y = (n * 5) % (HEIGHT - 64);
    let colour =
        0xFF00_0000 | ((n * 37) & 0xFF) << 16 | ((n * 91) & 0xFF) << 8 | ((n * 151) & 0xFF);
    (Rect::new(x, y, 64, 64).unwrap(), colour)
}

/// Between clearing close-on-exec on one end and dropping it, no other test thread may spawn a
/// process, or that process would inherit the end too and keep the channel open after our
/// agent dies.
static SPAWN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn spawn_agent(extra: &[&str]) -> (UnixStream, Child) {
    let _guard = SPAWN.lock().unwrap_or_else(|e| e.into_inner());
    let (gui_end, agent_end) = UnixStream::pair().unwrap();
    let fd = share_with_child(&agent_end).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_corral-channel-demo"))
        .args(["agent", "--gui-fd", &fd.to_string()])
        .args(extra)
        .spawn()
        .unwrap();
    drop(agent_end);
    (gui_end, child)
}

/// What the GUI side saw during a session.
#[derive(Debug, Default)]
struct Record {
    established: Option<(Version, Capabilities)>,
    pools: Vec<(u64, PoolBacking)>,
    titles: Vec<String>,
    commits: Vec<u32>,
    /// Per commit: (damaged pixels, pixels that differed from the expected colour).
    checked: Vec<(usize, usize)>,
    goodbye: Option<String>,
    error: Option<String>,
}

fn run_gui<T: Transport>(mut conn: GuiConnection<T>) -> Record {
    let mut record = Record::default();
    let mut bytes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        conn.flush().unwrap();
        let received = match conn.receive(Instant::now()) {
            Ok(Some(r)) => r,
            Ok(None) => {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "agent timed out; so far: {record:?}");
                conn.stream().wait_ready(left).unwrap();
                continue;
            }
            Err(ConnectionError::Goodbye(reason)) => {
                record.goodbye = Some(reason.to_string());
                return record;
            }
            Err(e) => {
                record.error = Some(e.to_string());
                return record;
            }
        };
        if let Applied::Established {
            version,
            capabilities,
        } = received.applied
        {
            record.established = Some((version, capabilities));
            conn.send(&GuiMessage::Welcome {
                version,
                capabilities,
                outputs: vec![],
            })
            .unwrap();
        }
        match received.message {
            AgentMessage::PoolCreate { size, backing, .. } => record.pools.push((size, backing)),
            AgentMessage::SetTitle { title, .. } => record.titles.push(title.to_string()),
            AgentMessage::Commit { window, serial } => {
                record.commits.push(serial.0);
                let (pool, layout) = conn
                    .session()
                    .attachment(window)
                    .expect("commit has a buffer");
                let (rect, colour) = expected_frame(serial.0);
                copy_rect(
                    conn.pool(pool).expect("pool mapped"),
                    layout,
                    rect,
                    &mut bytes,
                );
                let wrong = bytes
                    .chunks_exact(4)
                    .filter(|px| u32::from_le_bytes([px[0], px[1], px[2], px[3]]) != colour)
                    .count();
                record.checked.push((bytes.len() / 4, wrong));
                conn.send(&GuiMessage::FrameDone {
                    window,
                    timestamp_ns: 0,
                })
                .unwrap();
            }
            _ => {}
        }
    }
}

fn assert_full_session(record: &Record, backing: PoolBacking, capability: Capabilities) {
    assert_eq!(record.error, None);
    let (version, caps) = record.established.expect("handshake");
    assert_eq!(version, Version::CURRENT);
    assert!(caps.contains(capability), "{caps:?}");
    assert_eq!(record.pools, vec![(u64::from(WIDTH * HEIGHT * 4), backing)]);
    assert_eq!(record.titles, vec!["Channel demo".to_string()]);
    assert_eq!(record.commits, (0..FRAMES).collect::<Vec<_>>());
    assert_eq!(
        record.checked[0],
        ((WIDTH * HEIGHT) as usize, 0),
        "first frame fills the window"
    );
    for (n, (pixels, wrong)) in record.checked.iter().enumerate().skip(1) {
        assert_eq!((*pixels, *wrong), (64 * 64, 0), "frame {n}");
    }
    assert_eq!(record.goodbye.as_deref(), Some("demo finished"));
}

#[test]
fn unix_channel_carries_handshake_memfd_pool_100_frames_and_clean_shutdown() {
    let (gui_end, mut child) = spawn_agent(&[]);
    let conn = GuiConnection::new(
        UnixTransport::new(gui_end).unwrap(),
        SessionLimits::default(),
        StreamLimits::default(),
    );
    let record = run_gui(conn);
    assert!(child.wait().unwrap().success());
    assert_full_session(&record, PoolBacking::MemFd, Capabilities::MEMFD_POOLS);
}

#[test]
fn stream_channel_without_fds_carries_inline_lz4_pixels() {
    let (gui_end, mut child) = spawn_agent(&["--inline"]);
    gui_end.set_nonblocking(true).unwrap();
    let conn = GuiConnection::new(
        StreamTransport::new(gui_end),
        SessionLimits::default(),
        StreamLimits::default(),
    );
    let record = run_gui(conn);
    assert!(child.wait().unwrap().success());
    assert_full_session(&record, PoolBacking::Inline, Capabilities::LZ4);
}

#[test]
fn agent_killed_mid_session_ends_the_connection_without_hanging() {
    let (gui_end, mut child) = spawn_agent(&["--frames", "1000000"]);
    let mut conn = GuiConnection::new(
        UnixTransport::new(gui_end).unwrap(),
        SessionLimits::default(),
        StreamLimits::default(),
    );
    let mut commits = 0;
    let outcome = loop {
        conn.flush().ok();
        match conn.receive(Instant::now()) {
            Ok(Some(r)) => {
                if let Applied::Established {
                    version,
                    capabilities,
                } = r.applied
                {
                    conn.send(&GuiMessage::Welcome {
                        version,
                        capabilities,
                        outputs: vec![],
                    })
                    .unwrap();
                }
                if let AgentMessage::Commit { window, .. } = r.message {
                    commits += 1;
                    if commits == 10 {
                        child.kill().unwrap();
                    }
                    conn.send(&GuiMessage::FrameDone {
                        window,
                        timestamp_ns: 0,
                    })
                    .unwrap();
                }
            }
            Ok(None) => {
                assert!(
                    conn.stream().wait_ready(Duration::from_secs(10)).unwrap(),
                    "hung"
                );
            }
            Err(e) => break e,
        }
    };
    child.wait().unwrap();
    assert!(commits >= 10);
    assert!(
        matches!(outcome, ConnectionError::Closed) || matches!(&outcome, ConnectionError::Io(_)),
        "{outcome}"
    );
    assert!(!outcome.is_violation());
}
