//! The hostile-agent suite: one test per attack. Each case starts a real headless `corral`
//! with a well-behaved bystander qube (`good`, blue, a real agent process) and a hostile qube
//! (`evil`, red) played byte by byte by this test, checks the expected outcome (cut off with a
//! notification, clamped, or ignored), and ends with [`Desk::bystander_ok`]: the bystander still
//! renders (frames presented, exact frame and content pixels) and still receives its keys.
//! The case table with outcomes is docs/security-tests.md.

use std::time::Duration;

use corral_e2e::fixture::*;
use corral_e2e::hostile::Hostile;
use corral_e2e::wire::{self, Body, ty};

const T: Duration = Duration::from_secs(10);

/// The entry point of the agent processes (does nothing when run as a test).
#[test]
fn e2e_agent_entry() {
    corral_e2e::agent_main_if_agent();
}

/// Starts the default desk; `evil` says hello and shows a 200×150 window.
fn evil_with_window(tag: &str) -> (Desk, Hostile) {
    let mut desk = Desk::start(tag);
    let mut evil = desk.hostile("evil");
    evil.hello();
    let mem = evil.window(1, 200, 150, 0xee1111);
    desk.wait_window("evil");
    // The pool memory stays valid in the compositor's mapping whatever we do with ours.
    drop(mem);
    (desk, evil)
}

/// The shape of most "cut off" cases: a connected `evil` with a window sends `bytes`; it must be
/// cut off with a notification whose detail contains `why`, its channel closed, and the
/// bystander unaffected.
fn cut_off_for(tag: &str, bytes: &[u8], why: &str) {
    let (mut desk, mut evil) = evil_with_window(tag);
    let _ = evil.raw(bytes);
    desk.wait_cut_off("evil", why);
    assert!(evil.wait_closed(T), "the channel was not closed");
    desk.bystander_ok();
    desk.assert_alive();
}

// ---------------------------------------------------------------------------------------------
// Malformed messages: decoder rules (D). Outcome: cut off with a notification.

#[test]
fn unknown_message_type() {
    cut_off_for(
        "unknown-type",
        &wire::frame_with_len(0x0042, 0, &[]),
        "unknown message type",
    );
}

#[test]
fn truncated_field_inside_a_message() {
    // set_title says 100 bytes of title, the body holds 10.
    let body = Body::new()
        .u32(1)
        .u32(100)
        .bytes(b"0123456789")
        .frame(ty::SET_TITLE);
    cut_off_for("truncated-field", &body, "ended early");
}

#[test]
fn oversized_header_is_refused_before_the_body_is_read() {
    // A set_title claiming 4 GiB: refused from the header alone; nothing is allocated for it.
    let (mut desk, mut evil) = evil_with_window("oversized-header");
    let rss = desk.rss_kib();
    let _ = evil.raw(&wire::frame_with_len(ty::SET_TITLE, u32::MAX, &[]));
    desk.wait_cut_off("evil", "larger than the 264 bytes allowed for set_title");
    assert!(evil.wait_closed(T));
    assert!(desk.rss_kib() < rss + 64 * 1024, "the compositor grew");
    desk.bystander_ok();
    desk.assert_alive();
}

#[test]
fn clipboard_frame_past_the_hard_limit() {
    // 16 MiB + 1 of clipboard data: above MAX_CLIPBOARD_BYTES, refused from the header.
    cut_off_for(
        "oversized-clipboard",
        &wire::frame_with_len(ty::CLIPBOARD_DATA, 16_777_229, &[0; 64]),
        "larger than",
    );
}

#[test]
fn gui_direction_type_sent_by_an_agent() {
    // welcome (0x8001) is a GUI → agent type: from an agent it is simply unknown.
    cut_off_for(
        "wrong-direction",
        &Body::new().u32(0x0001_0000).u32(0x17).u32(0).frame(0x8001),
        "unknown message type 0x8001",
    );
}

#[test]
fn wrong_length_for_a_fixed_layout() {
    let bytes = wire::attach(1, 1, 0, 200, 150, 800, wire::XRGB8888);
    // The same attach announced (and sent) one byte short.
    let short = wire::frame_with_len(ty::ATTACH, 31, &bytes[8..39]);
    cut_off_for("wrong-length", &short, "fixed body of 32 bytes, got 31");
}

#[test]
fn trailing_bytes_after_the_last_field() {
    let body = Body::new()
        .u32(1)
        .string(b"title")
        .bytes(b"xyz")
        .frame(ty::SET_TITLE);
    cut_off_for("trailing", &body, "3 bytes left over");
}

#[test]
fn absurd_damage_count() {
    let body = Body::new().u32(1).u32(u32::MAX).frame(ty::DAMAGE);
    cut_off_for("damage-count", &body, "at most 256 are allowed");
}

#[test]
fn absurd_app_list_count_without_the_entries() {
    // 1024 entries announced (the maximum), none sent: refused before anything is allocated.
    let body = Body::new().u32(1024).frame(ty::APP_LIST);
    cut_off_for("app-count", &body, "ended early");
}

#[test]
fn absurd_grant_ref_count() {
    let body = Body::new()
        .u32(9)
        .u64(4096)
        .u8(2)
        .u32(0x7fff_ffff)
        .frame(ty::POOL_CREATE);
    cut_off_for("grant-count", &body, "at most 262144 are allowed");
}

#[test]
fn width_height_stride_overflow() {
    // 16384 × 16384 with the largest stride, near the top of the largest pool: the end of
    // the buffer (offset + stride × (height − 1) + width × 4) is past 1 GiB, which a 32-bit
    // product would have wrapped below it.
    let bytes = wire::attach(1, 1, 0x3fff_0000, 16384, 16384, 65536, wire::XRGB8888);
    cut_off_for("overflow", &bytes, "past the largest pool");
}

#[test]
fn stride_smaller_than_a_row() {
    let bytes = wire::attach(1, 1, 0, 200, 150, 4, wire::XRGB8888);
    cut_off_for("stride", &bytes, "smaller than a row");
}

#[test]
fn buffer_offset_past_the_pool() {
    // Pool 1 is 200 × 150 × 4 = 120000 bytes; a 1×1 buffer at offset 120000 is past it.
    let bytes = wire::attach(1, 1, 120_000, 1, 1, 4, wire::XRGB8888);
    cut_off_for("offset", &bytes, "past the end of pool 1");
}

#[test]
fn buffer_larger_than_its_pool() {
    let bytes = wire::attach(1, 1, 0, 200, 151, 800, wire::XRGB8888);
    cut_off_for("larger-than-pool", &bytes, "past the end of pool 1");
}

#[test]
fn unknown_cursor_shape() {
    let bytes = Body::new().u32(1).u32(35).frame(ty::SET_CURSOR);
    cut_off_for("cursor", &bytes, "unknown shape 35");
}

#[test]
fn hello_twice() {
    cut_off_for(
        "hello-twice",
        &wire::hello(hostile_v1(), 0x17),
        "hello twice",
    );
}

fn hostile_v1() -> u32 {
    corral_e2e::hostile::V1_0
}

#[test]
fn messages_before_hello() {
    let mut desk = Desk::start("before-hello");
    let mut evil = desk.hostile("evil");
    let _ = evil.raw(&wire::create_toplevel(1));
    desk.wait_cut_off("evil", "sent create_toplevel before hello");
    assert!(evil.wait_closed(T));
    desk.bystander_ok();
}

#[test]
fn another_major_version_is_refused_cleanly() {
    let mut desk = Desk::start("version");
    let mut evil = desk.hostile("evil");
    evil.raw(&wire::hello(0x0002_0000, 0x17)).unwrap();
    // A goodbye a person can act on, then the channel closes.
    assert!(evil.wait_closed(T));
    let reason = evil
        .received
        .iter()
        .find_map(|m| match m {
            corral_protocol::GuiMessage::Goodbye { reason } => Some(reason.as_str().to_owned()),
            _ => None,
        })
        .expect("no goodbye");
    assert!(reason.contains("major versions must match"), "{reason}");
    let note = desk.wait_for("the version notification", || {
        desk.notifications().into_iter().find(|n| {
            n.headline
                .contains("[evil] speaks another protocol version")
        })
    });
    assert_eq!(note.colour, "#cc0000");
    desk.bystander_ok();
}

// ---------------------------------------------------------------------------------------------
// Pools and shared memory (C).

/// `evil` with a window announces a memfd pool 2 of `declared` bytes with `fd` attached.
fn pool_with_fd(tag: &str, fd: std::os::fd::OwnedFd, declared: u64, why: &str) {
    use std::os::fd::AsFd;
    let (mut desk, mut evil) = evil_with_window(tag);
    let _ = evil.raw_with_fds(
        &wire::pool_create(2, declared, wire::BACKING_MEMFD),
        &[fd.as_fd()],
    );
    desk.wait_cut_off("evil", why);
    assert!(evil.wait_closed(T));
    desk.bystander_ok();
    desk.assert_alive();
}

#[test]
fn pool_memfd_without_seals() {
    use rustix::fs::SealFlags;
    let fd = corral_e2e::hostile::memfd(65536, SealFlags::empty());
    pool_with_fd("unsealed", fd, 65536, "not sealed against shrinking");
}

#[test]
fn pool_memfd_sealed_against_shrinking_only() {
    use rustix::fs::SealFlags;
    let fd = corral_e2e::hostile::memfd(65536, SealFlags::SHRINK);
    pool_with_fd("shrink-only", fd, 65536, "not sealed against shrinking");
}

#[test]
fn pool_descriptor_that_is_not_a_memfd() {
    let (read, _write) = rustix::pipe::pipe().unwrap();
    pool_with_fd("pipe", read, 65536, "not a sealable memfd");
}

#[test]
fn pool_memfd_smaller_than_announced() {
    use rustix::fs::SealFlags;
    let fd = corral_e2e::hostile::memfd(4096, SealFlags::SHRINK | SealFlags::GROW);
    pool_with_fd(
        "size-mismatch",
        fd,
        1 << 20,
        "holds 4096 bytes but the agent announced",
    );
}

#[test]
fn memfd_pool_without_its_descriptor() {
    cut_off_for(
        "missing-fd",
        &wire::pool_create(2, 4096, wire::BACKING_MEMFD),
        "without its file descriptor",
    );
}

#[test]
fn more_descriptors_than_any_message_claims() {
    use std::os::fd::AsFd;
    let (desk, mut evil) = evil_with_window("many-fds");
    let fds: Vec<_> = (0..9).map(|_| rustix::pipe::pipe().unwrap().0).collect();
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    let _ = evil.raw_with_fds(&wire::pong(1), &borrowed);
    desk.wait_cut_off("evil", "file descriptors sent that no message claimed");
    assert!(evil.wait_closed(T));
    desk.bystander_ok();
}

#[test]
fn shrinking_the_memfd_after_mapping_cannot_fault_the_compositor() {
    let mut desk = Desk::start("shrink");
    let mut evil = desk.hostile("evil");
    evil.hello();
    let memfd = evil.window(1, 200, 150, 0xee1111);
    let w = desk.wait_window("evil");
    let fd = memfd.fd().unwrap();
    // The seals hold: the qube cannot shrink the file under the compositor's mapping...
    let err = rustix::fs::ftruncate(&fd, 0).unwrap_err();
    assert_eq!(err, rustix::io::Errno::PERM);
    // ...but it can punch holes (the size stays): the pages read as zeros, never SIGBUS.
    rustix::fs::fallocate(
        &fd,
        rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
        0,
        200 * 150 * 4,
    )
    .unwrap();
    evil.raw(&wire::damage(1, &[(0, 0, 200, 150)])).unwrap();
    evil.raw(&wire::commit(1, 2)).unwrap();
    desk.wait_for("the hole to show as black", || {
        let image = desk.screenshot("hole");
        (image.count((w.x, w.y, 200, 150), 0x000000) == 200 * 150).then_some(())
    });
    desk.assert_alive();
    desk.assert_connected("evil");
    desk.bystander_ok();
}

#[test]
fn inline_write_past_the_pool() {
    let bytes = {
        let mut b = wire::pool_create(2, 4096, wire::BACKING_INLINE);
        b.extend(wire::pool_write(2, 4096 - 8, 16, 16, &[0xab; 16]));
        b
    };
    cut_off_for("inline-past", &bytes, "past the end of pool 2");
}

#[test]
fn lz4_bomb_announcing_more_than_its_data_can_hold() {
    // 4 MiB announced from 16 bytes of "LZ4".
    let mut bytes = wire::pool_create(2, 4 << 20, wire::BACKING_INLINE);
    bytes.extend(
        Body::new()
            .u32(2)
            .u64(0)
            .u32(4096)
            .u32(4096)
            .u32(1024)
            .u8(1)
            .string(&[0xff; 16])
            .frame(ty::POOL_WRITE),
    );
    cut_off_for("lz4-bomb", &bytes, "bytes of LZ4 cannot hold");
}

#[test]
fn destroying_a_pool_still_attached() {
    cut_off_for(
        "pool-in-use",
        &wire::pool_destroy(1),
        "still attached to window 1",
    );
}

// ---------------------------------------------------------------------------------------------
// Session rules (S): ids of other qubes, popups without a parent.

#[test]
fn commit_to_a_window_of_another_qube() {
    // Window ids are per connection: evil's own window is 7; the bystander's window is its
    // window 1 (and the compositor's id of it is 1 too). Naming it from evil names nothing.
    let mut desk = Desk::start("foreign-window");
    let mut evil = desk.hostile("evil");
    evil.hello();
    let _mem = evil.window(7, 200, 150, 0xee1111);
    desk.wait_window("evil");
    let good = desk.wait_window("good");
    for bytes in [
        wire::set_title(good.id as u32, b"owned"),
        wire::commit(1, 1),
    ] {
        let _ = evil.raw(&bytes);
    }
    desk.wait_cut_off("evil", "does not exist");
    assert!(evil.wait_closed(T));
    assert_eq!(desk.wait_window("good").title, corral_e2e::good::TITLE);
    desk.bystander_ok();
}

#[test]
fn popup_without_a_parent() {
    cut_off_for(
        "orphan-popup",
        &wire::create_popup(5, 77, 0, 0, 100, 100),
        "window 77 does not exist",
    );
}

#[test]
fn popup_with_a_parent_from_another_qube() {
    let mut desk = Desk::start("foreign-parent");
    let mut evil = desk.hostile("evil");
    evil.hello();
    // Evil's own window is 7; the bystander's is its window 1, and the compositor's id of it
    // (as `corral msg windows` shows it to anyone) is also tried.
    let _mem = evil.window(7, 200, 150, 0xee1111);
    desk.wait_window("evil");
    let good = desk.wait_window("good");
    let parent = good.id as u32;
    assert_ne!(parent, 7);
    let _ = evil.raw(&wire::create_popup(5, parent, 0, 0, 100, 100));
    desk.wait_cut_off("evil", &format!("window {parent} does not exist"));
    assert!(evil.wait_closed(T));
    assert!(
        !desk.windows().iter().any(|w| w.kind == "popup"),
        "a popup appeared"
    );
    desk.bystander_ok();
}

#[test]
fn popup_that_is_its_own_parent() {
    cut_off_for(
        "self-parent",
        &wire::create_popup(1, 1, 0, 0, 10, 10),
        "cannot be its own parent",
    );
}

// ---------------------------------------------------------------------------------------------
// Geometry and chrome (P): clamped, never covering the trusted layer or shedding the frame.

/// Pastes nothing; copies from the bystander so that a toast is on the trusted layer.
fn toast_from_a_copy(desk: &Desk) {
    let good = desk.wait_window("good");
    desk.focus(good.id);
    desk.key("ctrl+shift+c");
    desk.wait_for("the copy toast", || {
        desk.notifications()
            .into_iter()
            .find(|n| n.headline.starts_with("Copied") && n.headline.ends_with("from good"))
    });
}

/// The trusted layer is on top: the toast rectangle (top-right of the output) and the panel
/// show none of `colour` (the qube's content) and are drawn (a background of their own
/// colour covers most of them).
fn assert_toast_on_top(image: &corral_e2e::image::Image, colour: u32) {
    for (what, rect) in [("toast", TOAST), ("panel", PANEL)] {
        assert_eq!(image.count(rect, colour), 0, "qube pixels over the {what}");
        let (background, share) = image.dominant(rect);
        assert!(
            share > 0.4 && background != colour && background != EVIL_COLOUR,
            "the {what} is not drawn: #{background:06x} covers {share}"
        );
    }
}

#[test]
fn window_larger_than_the_screen_keeps_its_frame_under_the_trusted_layer() {
    let mut desk = Desk::start("huge-window");
    let mut evil = desk.hostile("evil");
    evil.hello();
    let _mem = evil.window(1, 2000, 1500, 0xee1111);
    let w = desk.wait_window("evil");
    toast_from_a_copy(&desk);
    desk.focus(w.id);
    let w = desk.wait_window("evil");
    // Its title bar stays on the output, reachable.
    assert!(
        w.frame.y >= 0 && w.frame.y + TITLE + BORDER <= SCREEN.1,
        "{w:?}"
    );
    assert!(
        w.frame.x < SCREEN.0 - 48 && w.frame.x + w.frame.width > 48,
        "{w:?}"
    );
    let image = desk.screenshot("huge");
    // Its frame is exactly red wherever the trusted layer is not above it.
    assert_frame_except(&image, &w, BORDER, EVIL_COLOUR, &[TOAST, PANEL]);
    // It was sized to the usable area (it may overhang the edge once cascaded).
    assert!(w.width <= SCREEN.0 && w.height <= SCREEN.1, "{w:?}");
    // Content only inside its interior: nothing of evil's colour above its content.
    assert_eq!(image.count((0, 0, SCREEN.0, w.y.max(0)), 0xee1111), 0);
    assert_toast_on_top(&image, 0xee1111);
    desk.bystander_ok();
}

#[test]
fn fullscreen_request_becomes_maximise_with_the_frame_kept() {
    let (desk, mut evil) = evil_with_window("fullscreen");
    evil.raw(&wire::request_state(1, 2)).unwrap();
    let w = desk.wait_for("maximised", || {
        desk.windows_of("evil").into_iter().find(|w| w.maximized)
    });
    // The whole output below the panel, never over it.
    assert_eq!(
        (w.frame.x, w.frame.y, w.frame.width, w.frame.height),
        (0, PANEL.3, SCREEN.0, SCREEN.1 - PANEL.3)
    );
    toast_from_a_copy(&desk);
    desk.focus(w.id);
    let image = desk.screenshot("fullscreen");
    assert_frame_except(&image, &w, BORDER, EVIL_COLOUR, &[TOAST, PANEL]);
    assert_toast_on_top(&image, 0xee1111);
    // Asking never took focus.
    evil.pump(Duration::from_millis(100));
    desk.assert_connected("evil");
    desk.bystander_ok();
}

#[test]
fn popup_covering_the_screen_is_clamped() {
    let (desk, mut evil) = evil_with_window("huge-popup");
    let mut mem = corral_protocol::channel::pool::SharedMemfd::create(16384 * 4 * 16).unwrap();
    mem.bytes_mut()
        .copy_from_slice(&wire::solid(16384, 16, 0xee1111));
    evil.pool_memfd(2, &mem);
    evil.raw(&wire::create_popup(2, 1, -32768, -32768, 16384, 16384))
        .unwrap();
    // A buffer as wide as allowed; the popup itself is what gets clamped.
    evil.raw(&wire::attach(2, 2, 0, 16384, 16, 16384 * 4, wire::XRGB8888))
        .unwrap();
    evil.raw(&wire::commit(2, 1)).unwrap();
    evil.raw(&wire::window_only(ty::MAP, 2)).unwrap();
    let p = desk.wait_for("the popup", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.kind == "popup" && w.visible)
    });
    assert!(p.frame.x >= 0 && p.frame.y >= 0, "{p:?}");
    assert!(
        p.frame.x + p.frame.width <= SCREEN.0 && p.frame.y + p.frame.height <= SCREEN.1,
        "{p:?}"
    );
    assert!(
        p.width * 10 <= SCREEN.0 * 9 && p.height * 10 <= SCREEN.1 * 9,
        "{p:?}"
    );
    toast_from_a_copy(&desk);
    let evil_top = desk
        .windows_of("evil")
        .into_iter()
        .find(|w| w.kind == "toplevel")
        .unwrap();
    desk.focus(evil_top.id);
    let image = desk.screenshot("huge-popup");
    assert_frame_except(&image, &p, 2, EVIL_COLOUR, &[TOAST, PANEL]);
    assert_toast_on_top(&image, 0xee1111);
    desk.bystander_ok();
}

#[test]
fn popup_moved_off_screen_is_kept_on_screen() {
    let (desk, mut evil) = evil_with_window("popup-off-screen");
    let mem = corral_protocol::channel::pool::SharedMemfd::create(100 * 80 * 4).unwrap();
    evil.pool_memfd(2, &mem);
    evil.raw(&wire::create_popup(2, 1, 10, 10, 100, 80))
        .unwrap();
    evil.raw(&wire::attach(2, 2, 0, 100, 80, 400, wire::XRGB8888))
        .unwrap();
    evil.raw(&wire::commit(2, 1)).unwrap();
    evil.raw(&wire::window_only(ty::MAP, 2)).unwrap();
    for (x, y) in [(32768, 32768), (-32768, -32768), (32768, -32768)] {
        evil.raw(&wire::reposition_popup(2, x, y, 100, 80)).unwrap();
        let p = desk.wait_for("the popup", || {
            desk.windows_of("evil")
                .into_iter()
                .find(|w| w.kind == "popup" && w.visible)
        });
        assert!(
            p.frame.x >= 0
                && p.frame.y >= 0
                && p.frame.x + p.frame.width <= SCREEN.0
                && p.frame.y + p.frame.height <= SCREEN.1,
            "popup off screen after ({x}, {y}): {p:?}"
        );
    }
    desk.bystander_ok();
}

#[test]
fn window_cannot_push_its_title_bar_off_screen() {
    let (desk, mut evil) = evil_with_window("min-size");
    // A second window asking for a minimum size of the largest surface, whose first buffer is
    // wider and taller than the screen.
    evil.raw(&wire::create_toplevel(2)).unwrap();
    evil.raw(&wire::set_title(2, b"big")).unwrap();
    evil.raw(&wire::size_hints(2, (16384, 16384), (0, 0)))
        .unwrap();
    let mem = corral_protocol::channel::pool::SharedMemfd::create(4000 * 4 * 1200).unwrap();
    evil.pool_memfd(2, &mem);
    evil.raw(&wire::attach(2, 2, 0, 4000, 1200, 16000, wire::XRGB8888))
        .unwrap();
    evil.raw(&wire::damage(2, &[(0, 0, 4000, 1200)])).unwrap();
    evil.raw(&wire::commit(2, 1)).unwrap();
    evil.raw(&wire::window_only(ty::MAP, 2)).unwrap();
    let w = desk.wait_for("the big window", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.title == "big" && w.has_content && w.visible)
    });
    assert!(
        w.frame.y >= 0 && w.frame.y + BORDER + TITLE <= SCREEN.1,
        "{w:?}"
    );
    let visible_x = SCREEN.0.min(w.frame.x + w.frame.width) - w.frame.x.max(0);
    assert!(visible_x >= 48, "{w:?}");
    let image = desk.screenshot("min-size");
    assert_frame_except(&image, &w, BORDER, EVIL_COLOUR, &[]);
    desk.bystander_ok();
}

#[test]
fn transparent_content_cannot_shed_the_border() {
    // QSB-34: a "custom-shaped" window, all transparent pixels, still gets its full frame and
    // shows the neutral fill, never what lies beneath it.
    let mut desk = Desk::start("transparent");
    let mut evil = desk.hostile("evil");
    evil.hello();
    let mem = corral_protocol::channel::pool::SharedMemfd::create(300 * 200 * 4).unwrap();
    evil.raw(&wire::create_toplevel(1)).unwrap();
    evil.pool_memfd(1, &mem);
    evil.raw(&wire::attach(1, 1, 0, 300, 200, 1200, wire::ARGB8888))
        .unwrap();
    evil.raw(&wire::damage(1, &[(0, 0, 300, 200)])).unwrap();
    evil.raw(&wire::commit(1, 1)).unwrap();
    evil.raw(&wire::window_only(ty::MAP, 1)).unwrap();
    let w = desk.wait_window("evil");
    let image = desk.screenshot("transparent");
    assert_frame(&image, &w, BORDER, EVIL_COLOUR);
    image.assert_all("the interior", (w.x, w.y, w.width, w.height), NEUTRAL_FILL);
    desk.bystander_ok();
}

#[test]
fn window_mapped_before_content_shows_its_frame() {
    // QSB-39: never a borderless or white area.
    let mut desk = Desk::start("no-content");
    let mut evil = desk.hostile("evil");
    evil.hello();
    evil.raw(&wire::create_toplevel(1)).unwrap();
    evil.raw(&wire::window_only(ty::MAP, 1)).unwrap();
    let w = desk.wait_for("the mapped window", || {
        desk.windows_of("evil").into_iter().find(|w| w.visible)
    });
    assert!(!w.has_content);
    let image = desk.screenshot("no-content");
    assert_frame(&image, &w, BORDER, EVIL_COLOUR);
    image.assert_all("the interior", (w.x, w.y, w.width, w.height), NEUTRAL_FILL);
    desk.bystander_ok();
}

#[test]
fn toggling_between_toplevel_and_popup_never_shows_a_borderless_window() {
    // QSB-26 and QSB-73: the same id destroyed and created again as a popup and as a
    // toplevel, quickly, with content each time: every shape that ends up on screen is framed.
    let (desk, mut evil) = evil_with_window("toggle");
    let mem = corral_protocol::channel::pool::SharedMemfd::create(150 * 100 * 4).unwrap();
    evil.pool_memfd(2, &mem);
    let mut bytes = Vec::new();
    for round in 0..50u32 {
        bytes.extend(
            wire::window_only(ty::DESTROY_WINDOW, 9)
                .into_iter()
                .skip(if round == 0 { usize::MAX } else { 0 }),
        );
        if round % 2 == 0 {
            bytes.extend(wire::create_popup(9, 1, -20, -20, 150, 100));
        } else {
            bytes.extend(wire::create_toplevel(9));
        }
        bytes.extend(wire::attach(9, 2, 0, 150, 100, 600, wire::XRGB8888));
        bytes.extend(wire::commit(9, round));
        bytes.extend(wire::window_only(ty::MAP, 9));
    }
    evil.raw(&bytes).unwrap();
    let w = desk.wait_for("the last shape", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.kind == "toplevel" && w.visible && w.width == 150)
    });
    let image = desk.screenshot("toggle");
    assert_frame(&image, &w, BORDER, EVIL_COLOUR);
    desk.assert_connected("evil");
    desk.bystander_ok();
}

#[test]
fn popup_cannot_paint_over_another_qubes_window() {
    // QSB-72: a popup as large as allowed, placed over the bystander; once the bystander is
    // raised its frame and content are exact (checked by bystander_ok).
    let (desk, mut evil) = evil_with_window("popup-over");
    let w = desk.wait_window("evil");
    let mem = corral_protocol::channel::pool::SharedMemfd::create(1100 * 700 * 4).unwrap();
    evil.pool_memfd(2, &mem);
    evil.raw(&wire::create_popup(2, 1, -w.x + 20, -w.y + 20, 1100, 700))
        .unwrap();
    evil.raw(&wire::attach(2, 2, 0, 1100, 700, 4400, wire::XRGB8888))
        .unwrap();
    evil.raw(&wire::commit(2, 1)).unwrap();
    evil.raw(&wire::window_only(ty::MAP, 2)).unwrap();
    let p = desk.wait_for("the popup", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.kind == "popup" && w.visible)
    });
    let good = desk.wait_window("good");
    let overlap = p.frame.x < good.frame.x + good.frame.width
        && good.frame.x < p.frame.x + p.frame.width
        && p.frame.y < good.frame.y + good.frame.height
        && good.frame.y < p.frame.y + p.frame.height;
    assert!(
        overlap,
        "the popup does not overlap the bystander: {p:?} {good:?}"
    );
    desk.bystander_ok();
}

// ---------------------------------------------------------------------------------------------
// Titles: sanitised, shown only after the trusted `[qube]` prefix.

/// Sets window 1's title to `title` and returns the window once the compositor has it.
fn titled(desk: &Desk, evil: &mut Hostile, title: &[u8], expect: &str) -> corral::ipc::WindowInfo {
    evil.raw(&wire::set_title(1, title)).unwrap();
    let w = desk.wait_for("the new title", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.title == expect)
    });
    assert_eq!(w.display_title, format!("[evil] {expect}"));
    w
}

#[test]
fn title_with_bidi_overrides_zero_width_and_escape_sequences() {
    let (desk, mut evil) = evil_with_window("title-bidi");
    let title = "\u{202E}gpj.exe\u{202C}\u{200B}\u{200D}\u{FEFF}\u{1b}[2J\u{1b}]0;x\u{7}\r\nbank\u{2066}\u{E0041}";
    let w = titled(&desk, &mut evil, title.as_bytes(), "gpj.exe[2J]0;x  bank");
    let image = desk.screenshot("title-bidi");
    assert_frame(&image, &w, BORDER, EVIL_COLOUR);
    desk.bystander_ok();
}

#[test]
fn title_claiming_dom0_and_another_qube_keeps_the_real_prefix() {
    let (desk, mut evil) = evil_with_window("title-dom0");
    let w = titled(
        &desk,
        &mut evil,
        b"[dom0] [good] Bystander",
        "[dom0] [good] Bystander",
    );
    let image = desk.screenshot("title-dom0");
    // Red frame and title bar, not dom0's black or good's blue.
    assert_frame(&image, &w, BORDER, EVIL_COLOUR);
    assert_eq!(
        image.count(
            (w.frame.x, w.frame.y, w.frame.width, TITLE + BORDER),
            GOOD_COLOUR
        ),
        0
    );
    assert!(
        image.count(
            (w.frame.x, w.frame.y, w.frame.width, TITLE + BORDER),
            EVIL_COLOUR
        ) > 1000
    );
    desk.bystander_ok();
}

#[test]
fn title_of_one_megabyte() {
    let (desk, mut evil) = evil_with_window("title-1mb");
    let title = vec![b'A'; 1 << 20];
    // The header alone is refused; the rest may not even be read.
    let _ = evil.raw(&wire::set_title(1, &title));
    desk.wait_cut_off("evil", "larger than the 264 bytes allowed for set_title");
    assert!(evil.wait_closed(T));
    desk.bystander_ok();
}

#[test]
fn title_of_invalid_utf8() {
    cut_off_for(
        "title-utf8",
        &wire::set_title(1, b"ok \xff\xfe \xc0\x80"),
        "not valid UTF-8",
    );
}

#[test]
fn title_at_the_limit_in_wide_characters_stays_inside_its_title_bar() {
    let (desk, mut evil) = evil_with_window("title-wide");
    // 64 × a 4-byte character: exactly 256 bytes.
    let title = "\u{12031}".repeat(64);
    let w = titled(&desk, &mut evil, title.as_bytes(), &title);
    let image = desk.screenshot("title-wide");
    assert_frame(&image, &w, BORDER, EVIL_COLOUR);
    desk.bystander_ok();
}

// ---------------------------------------------------------------------------------------------
// Clipboard (decision 6, QSB-11, QSB-13).

fn clipboard_source(desk: &Desk) -> Option<String> {
    let c = desk.clipboard();
    (c["empty"] == false).then(|| c["source"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn clipboard_replies_nobody_asked_for_are_ignored() {
    let (desk, mut evil) = evil_with_window("unasked");
    let mut bytes = Vec::new();
    for serial in 0..200 {
        bytes.extend(wire::clipboard_text(serial, b"injected"));
    }
    evil.raw(&bytes).unwrap();
    evil.raw(&Body::new().u32(3).frame(ty::CLIPBOARD_EMPTY))
        .unwrap();
    // Processed in order: once a later message had its effect, the replies were seen.
    evil.raw(&wire::set_title(1, b"after")).unwrap();
    desk.wait_for("the title after the replies", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.title == "after")
    });
    assert_eq!(clipboard_source(&desk), None);
    desk.assert_connected("evil");
    // A real copy still works, from the bystander.
    toast_from_a_copy(&desk);
    assert_eq!(clipboard_source(&desk).as_deref(), Some("good"));
    desk.bystander_ok();
}

#[test]
fn late_clipboard_reply_is_dropped() {
    let mut desk = Desk::start_with(
        "late",
        Setup {
            args: &["--clipboard-timeout-ms", "300"],
            ..Setup::default()
        },
    );
    let mut evil = desk.hostile("evil");
    evil.hello();
    let _mem = evil.window(1, 200, 150, 0xee1111);
    let w = desk.wait_window("evil");
    desk.focus(w.id);
    desk.key("ctrl+shift+c");
    assert!(evil.wait_for(T, |m| matches!(
        m,
        corral_protocol::GuiMessage::ClipboardRequest { .. }
    )));
    let serial = evil
        .received
        .iter()
        .find_map(|m| match m {
            corral_protocol::GuiMessage::ClipboardRequest { serial } => Some(serial.0),
            _ => None,
        })
        .unwrap();
    desk.wait_for("the timeout toast", || {
        desk.notifications()
            .into_iter()
            .find(|n| n.headline.contains("timed out"))
    });
    // Too late: dropped.
    evil.raw(&wire::clipboard_text(serial, b"late")).unwrap();
    evil.raw(&wire::set_title(1, b"after")).unwrap();
    desk.wait_for("the title after the reply", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.title == "after")
    });
    assert_eq!(clipboard_source(&desk), None);
    // Nor does it land in a later copy from another qube (QSB-13).
    toast_from_a_copy(&desk);
    evil.raw(&wire::clipboard_text(serial, b"late again"))
        .unwrap();
    evil.raw(&wire::clipboard_text(serial + 1, b"guessed"))
        .unwrap();
    evil.raw(&wire::set_title(1, b"after2")).unwrap();
    desk.wait_for("the title after the replies", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.title == "after2")
    });
    assert_eq!(clipboard_source(&desk).as_deref(), Some("good"));
    assert_eq!(
        desk.clipboard()["size"],
        corral_e2e::good::clipboard_text(serial + 1).len()
    );
    desk.assert_connected("evil");
    desk.bystander_ok();
}

#[test]
fn oversized_clipboard_reply_is_refused_whole_and_wipes_the_old_copy() {
    let (desk, mut evil) = evil_with_window("big-copy");
    toast_from_a_copy(&desk);
    assert_eq!(clipboard_source(&desk).as_deref(), Some("good"));
    let w = desk.wait_window("evil");
    desk.focus(w.id);
    desk.key("ctrl+shift+c");
    assert!(evil.wait_for(T, |m| matches!(
        m,
        corral_protocol::GuiMessage::ClipboardRequest { .. }
    )));
    let serial = evil
        .received
        .iter()
        .rev()
        .find_map(|m| match m {
            corral_protocol::GuiMessage::ClipboardRequest { serial } => Some(serial.0),
            _ => None,
        })
        .unwrap();
    evil.raw(&wire::clipboard_text(serial, &vec![b'x'; 64 * 1024 + 1]))
        .unwrap();
    desk.wait_for("the refusal", || {
        desk.notifications()
            .into_iter()
            .find(|n| n.headline.contains("evil") && !n.headline.starts_with("Copied"))
    });
    assert_eq!(clipboard_source(&desk), None, "{}", desk.clipboard());
    desk.assert_connected("evil");
    desk.bystander_ok();
}

// ---------------------------------------------------------------------------------------------
// Input and focus (decision 5, QSB-104).

#[test]
fn keystrokes_are_not_sniffed_while_not_focused() {
    let (desk, mut evil) = evil_with_window("sniff");
    let good = desk.wait_window("good");
    desk.focus(good.id);
    for key in ["s", "e", "c", "r", "e", "t", "shift+a", "ctrl+c", "Return"] {
        desk.key(key);
    }
    desk.pointer(good.x + 50, good.y + 50, true);
    desk.bystander_ok();
    evil.pump(Duration::from_millis(300));
    assert_eq!(evil.saw_input(), Vec::<String>::new());
    assert!(
        !evil.received.iter().any(|m| matches!(
            m,
            corral_protocol::GuiMessage::PointerMotion { .. }
                | corral_protocol::GuiMessage::PointerEnter { .. }
        )),
        "evil saw the pointer over another qube's window"
    );
}

#[test]
fn attention_flood_does_not_steal_focus() {
    let (desk, mut evil) = evil_with_window("attention");
    let good = desk.wait_window("good");
    desk.focus(good.id);
    let mut bytes = Vec::new();
    for i in 0..5000 {
        bytes.extend(wire::window_only(ty::REQUEST_ATTENTION, 1));
        if i % 100 == 0 {
            // Map again and ask to be maximised: still no focus.
            bytes.extend(wire::window_only(ty::MAP, 1));
            bytes.extend(wire::request_state(1, 0));
        }
    }
    evil.raw(&bytes).unwrap();
    let w = desk.wait_for("the attention mark", || {
        desk.windows_of("evil").into_iter().find(|w| w.attention)
    });
    assert!(!w.focused);
    assert!(desk.wait_window("good").focused);
    desk.key("k");
    evil.pump(Duration::from_millis(200));
    assert_eq!(evil.saw_input(), Vec::<String>::new());
    desk.assert_connected("evil");
    desk.bystander_ok();
}

#[test]
fn keys_held_when_focus_moves_away_are_released_before_the_leave() {
    use corral::ipc::KeyAction;
    use corral_protocol::GuiMessage;
    let (desk, mut evil) = evil_with_window("qsb104");
    let w = desk.wait_window("evil");
    desk.focus(w.id);
    desk.key_action("shift+a", KeyAction::Press);
    let good = desk.wait_window("good");
    desk.focus(good.id);
    desk.key_action("shift+a", KeyAction::Release);
    assert!(evil.wait_for(T, |m| matches!(m, GuiMessage::KeyboardLeave { .. })));
    evil.pump(Duration::from_millis(200));
    let leave = evil
        .received
        .iter()
        .position(|m| matches!(m, GuiMessage::KeyboardLeave { .. }))
        .unwrap();
    let released = |code: u32| {
        evil.received[..leave].iter().any(
            |m| matches!(m, GuiMessage::Key { keycode, pressed: false, .. } if *keycode == code),
        )
    };
    assert!(released(30) && released(42), "{:?}", evil.received);
    assert!(
        !evil.received[leave..]
            .iter()
            .any(|m| matches!(m, GuiMessage::Key { .. })),
        "keys after the leave"
    );
    desk.bystander_ok();
}

// ---------------------------------------------------------------------------------------------
// Floods and budgets (decision 7).

#[test]
fn window_flood_past_the_budget() {
    let (desk, mut evil) = evil_with_window("window-flood");
    let mut bytes = Vec::new();
    for id in 2..=300 {
        bytes.extend(wire::create_toplevel(id));
    }
    let _ = evil.raw(&bytes);
    desk.wait_cut_off("evil", "more than 256 windows");
    assert!(evil.wait_closed(T));
    desk.bystander_ok();
}

#[test]
fn pool_flood_past_the_budget() {
    let (desk, mut evil) = evil_with_window("pool-flood");
    let mut bytes = Vec::new();
    for id in 2..=600 {
        bytes.extend(wire::pool_create(id, 4096, wire::BACKING_INLINE));
    }
    let _ = evil.raw(&bytes);
    desk.wait_cut_off("evil", "more than 512 pools");
    assert!(evil.wait_closed(T));
    desk.bystander_ok();
}

#[test]
fn pool_bytes_past_the_budget() {
    let (desk, mut evil) = evil_with_window("pool-bytes");
    // Two pools of 600 MiB each: the second breaks the 1 GiB budget before anything is mapped.
    let mut bytes = wire::pool_create(2, 600 << 20, wire::BACKING_INLINE);
    bytes.extend(wire::pool_create(3, 600 << 20, wire::BACKING_INLINE));
    let _ = evil.raw(&bytes);
    desk.wait_cut_off("evil", "the limit is 1073741824");
    assert!(evil.wait_closed(T));
    desk.bystander_ok();
}

#[test]
fn damage_flood_stays_bounded() {
    let (desk, mut evil) = evil_with_window("damage-flood");
    let rss = desk.rss_kib();
    let rects: Vec<_> = (0..256).map(|i| (i % 200, i % 150, 1, 1)).collect();
    let one = wire::damage(1, &rects);
    let mut bytes = Vec::with_capacity(one.len() * 500);
    for _ in 0..500 {
        bytes.extend_from_slice(&one);
    }
    // 10 rounds of 500 messages of 256 rectangles (20 MB), never committed, then a commit.
    for _ in 0..10 {
        evil.raw(&bytes).unwrap();
        evil.pump(Duration::from_millis(1));
    }
    evil.raw(&wire::commit(1, 2)).unwrap();
    evil.raw(&wire::set_title(1, b"after")).unwrap();
    desk.wait_for("the title after the flood", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.title == "after")
    });
    let grown = desk.rss_kib().saturating_sub(rss);
    assert!(grown < 32 * 1024, "the compositor grew by {grown} KiB");
    desk.assert_connected("evil");
    desk.bystander_ok();
}

#[test]
fn message_flood_past_the_rate_limit() {
    let (desk, mut evil) = evil_with_window("message-flood");
    let mut bytes = Vec::with_capacity(12 * 60_000);
    for i in 0..60_000 {
        bytes.extend(wire::pong(i));
    }
    let _ = evil.raw(&bytes);
    desk.wait_cut_off("evil", "messages a second");
    assert!(evil.wait_closed(T));
    desk.bystander_ok();
}

#[test]
fn agent_that_stops_reading_is_cut_off_without_blocking_anyone() {
    let mut desk = Desk::start_with(
        "stops-reading",
        Setup {
            env: &[("CORRAL_MAX_QUEUED_BYTES", "65536")],
            ..Setup::default()
        },
    );
    let mut evil = desk.hostile("evil");
    // Never reads a byte: every create_toplevel makes the compositor queue a configure.
    evil.raw(&wire::hello(
        corral_e2e::hostile::V1_0,
        corral_e2e::hostile::CAPS,
    ))
    .unwrap();
    let mut pair = wire::create_toplevel(1);
    pair.extend(wire::window_only(ty::DESTROY_WINDOW, 1));
    let chunk: Vec<u8> = pair
        .iter()
        .copied()
        .cycle()
        .take(pair.len() * 2000)
        .collect();
    let started = std::time::Instant::now();
    let mut cut = false;
    while started.elapsed() < Duration::from_secs(15) && !cut {
        if evil.raw(&chunk).is_err() {
            break;
        }
        // Stay under the rate limit: 4000 messages per 250 ms.
        std::thread::sleep(Duration::from_millis(250));
        cut = desk
            .notifications()
            .iter()
            .any(|n| n.headline.contains("[evil] was cut off"));
    }
    let note = desk.wait_for("evil to be cut off", || {
        desk.notifications().into_iter().find(|n| {
            n.headline
                .contains("[evil] was cut off: it stopped reading")
        })
    });
    assert!(note.detail.contains("the peer is not reading"), "{note:?}");
    assert!(desk.windows_of("evil").is_empty());
    desk.bystander_ok();
}

#[test]
fn agent_that_dies_mid_frame() {
    let (mut desk, mut evil) = evil_with_window("dies");
    // Half of an attach, then the qube is gone.
    let attach = wire::attach(1, 1, 0, 200, 150, 800, wire::XRGB8888);
    evil.raw(&attach[..20]).unwrap();
    drop(evil);
    desk.wait_for("evil's windows to go", || {
        desk.windows_of("evil").is_empty().then_some(())
    });
    assert!(!desk.qubes().iter().any(|q| q.name == "evil"));
    desk.bystander_ok();
    desk.assert_alive();
}

#[test]
fn truncated_frame_is_waited_for_without_blocking_anyone() {
    let (desk, mut evil) = evil_with_window("partial");
    // The header and half of a set_title; the rest comes much later.
    let msg = wire::set_title(1, b"completed later");
    evil.raw(&msg[..12]).unwrap();
    desk.bystander_ok();
    evil.raw(&msg[12..]).unwrap();
    desk.wait_for("the completed title", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.title == "completed later")
    });
    desk.assert_connected("evil");
}

#[test]
fn app_list_at_the_limits_is_accepted_and_one_more_entry_is_not() {
    // QSB-1 was a heap overflow in the tray; the nearest thing a qube sends here is its
    // application list. The largest valid one is taken; one entry more is refused.
    let (desk, mut evil) = evil_with_window("app-list");
    let entry = |b: Body| {
        b.string(&[b'i'; 256])
            .string(&[b'n'; 256])
            .string(&[b'c'; 256])
    };
    let mut body = Body::new().u32(1024);
    for _ in 0..1024 {
        body = entry(body);
    }
    evil.raw(&body.frame(ty::APP_LIST)).unwrap();
    evil.raw(&wire::set_title(1, b"after")).unwrap();
    desk.wait_for("the title after the list", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.title == "after")
    });
    desk.assert_connected("evil");
    let mut body = Body::new().u32(1025);
    for _ in 0..1025 {
        body = entry(body);
    }
    let _ = evil.raw(&body.frame(ty::APP_LIST));
    desk.wait_cut_off("evil", "larger than");
    desk.bystander_ok();
}

#[test]
fn title_of_stacked_combining_marks_stays_inside_its_title_bar() {
    // "Zalgo" text: one letter carrying 127 combining marks (254 bytes) tries to draw above
    // and below the title bar, over the border and the content.
    let (desk, mut evil) = evil_with_window("title-zalgo");
    let title = format!("Z{}", "\u{0336}\u{030D}\u{0353}\u{0330}".repeat(31));
    let w = titled(&desk, &mut evil, title.as_bytes(), &title);
    desk.focus(w.id);
    let image = desk.screenshot("title-zalgo");
    assert_frame(&image, &w, BORDER, EVIL_COLOUR);
    image.assert_all("evil's content", (w.x, w.y, 200, 150), 0xee1111);
    desk.bystander_ok();
}

#[test]
fn destroying_the_pool_of_the_shown_buffer_after_attaching_another() {
    // The window shows pool 1; it attaches pool 2 (not committed), which makes pool 1 free to
    // destroy while its pixels are still the window's current content. The compositor must drop
    // every view into pool 1 before unmapping it, and show pool 2 after the commit.
    let (mut desk, mut evil) = evil_with_window("destroy-shown");
    let mut mem = corral_protocol::channel::pool::SharedMemfd::create(200 * 150 * 4).unwrap();
    mem.bytes_mut()
        .copy_from_slice(&wire::solid(200, 150, 0x11ee11));
    evil.pool_memfd(2, &mem);
    evil.raw(&wire::attach(1, 2, 0, 200, 150, 800, wire::XRGB8888))
        .unwrap();
    evil.raw(&wire::pool_destroy(1)).unwrap();
    assert!(evil.wait_for(T, |m| matches!(
        m,
        corral_protocol::GuiMessage::PoolReleased { .. }
    )));
    // Rendering now, between the destroy and the commit, must not touch pool 1.
    let _ = desk.screenshot("destroy-shown-between");
    evil.raw(&wire::damage(1, &[(0, 0, 200, 150)])).unwrap();
    evil.raw(&wire::commit(1, 2)).unwrap();
    let w = desk.wait_window("evil");
    desk.focus(w.id);
    desk.wait_for("pool 2's pixels", || {
        let image = desk.screenshot("destroy-shown");
        (image.count((w.x, w.y, 200, 150), 0x11ee11) == 200 * 150).then_some(())
    });
    desk.assert_alive();
    desk.assert_connected("evil");
    desk.bystander_ok();
}

#[test]
fn popup_of_an_unmapped_parent_is_not_shown() {
    let (desk, mut evil) = evil_with_window("popup-unmapped");
    let mem = corral_protocol::channel::pool::SharedMemfd::create(100 * 80 * 4).unwrap();
    evil.pool_memfd(2, &mem);
    evil.raw(&wire::create_popup(2, 1, 10, 10, 100, 80))
        .unwrap();
    evil.raw(&wire::attach(2, 2, 0, 100, 80, 400, wire::XRGB8888))
        .unwrap();
    evil.raw(&wire::commit(2, 1)).unwrap();
    evil.raw(&wire::window_only(ty::MAP, 2)).unwrap();
    desk.wait_for("the popup", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.kind == "popup" && w.visible)
    });
    evil.raw(&wire::window_only(ty::UNMAP, 1)).unwrap();
    desk.wait_for("the popup to hide with its parent", || {
        let ws = desk.windows_of("evil");
        (!ws.is_empty() && ws.iter().all(|w| !w.visible)).then_some(())
    });
    let image = desk.screenshot("popup-unmapped");
    // (The panel's chip for evil is red too: look below it.)
    let below_panel = (0, PANEL.3, SCREEN.0, SCREEN.1 - PANEL.3);
    assert_eq!(image.count(below_panel, EVIL_COLOUR), 0);
    desk.bystander_ok();
}

#[test]
fn damage_far_outside_the_buffer_is_clipped() {
    let (desk, mut evil) = evil_with_window("damage-outside");
    evil.raw(&wire::damage(
        1,
        &[(16000, 16000, 384, 384), (199, 149, 16000, 16000)],
    ))
    .unwrap();
    evil.raw(&wire::commit(1, 2)).unwrap();
    evil.raw(&wire::set_title(1, b"after")).unwrap();
    desk.wait_for("the title after the commit", || {
        desk.windows_of("evil")
            .into_iter()
            .find(|w| w.title == "after")
    });
    desk.assert_connected("evil");
    desk.bystander_ok();
}

#[test]
fn goodbye_with_a_hostile_reason_ends_quietly() {
    let (desk, mut evil) = evil_with_window("goodbye");
    let reason: String = "\u{1b}[2J\u{202E}[dom0] all good"
        .repeat(60)
        .chars()
        .scan(0, |len, c| {
            *len += c.len_utf8();
            (*len <= 1024).then_some(c)
        })
        .collect();
    evil.raw(&wire::goodbye(reason.as_bytes())).unwrap();
    assert!(evil.wait_closed(T));
    desk.wait_for("evil's windows to go", || {
        desk.windows_of("evil").is_empty().then_some(())
    });
    assert!(
        !desk
            .notifications()
            .iter()
            .any(|n| n.headline.contains("evil"))
    );
    desk.bystander_ok();
}

#[test]
fn popup_chain_as_deep_as_the_budget_allows() {
    // 255 popups, each the parent of the next: positions add up, destroys cascade 255 deep.
    let (desk, mut evil) = evil_with_window("deep-popups");
    let mem = corral_protocol::channel::pool::SharedMemfd::create(64 * 64 * 4).unwrap();
    evil.pool_memfd(2, &mem);
    let mut bytes = Vec::new();
    for id in 2..=256u32 {
        bytes.extend(wire::create_popup(id, id - 1, 3, 2, 64, 64));
        bytes.extend(wire::attach(id, 2, 0, 64, 64, 256, wire::XRGB8888));
        bytes.extend(wire::commit(id, 1));
        bytes.extend(wire::window_only(ty::MAP, id));
    }
    evil.raw(&bytes).unwrap();
    desk.wait_for("255 visible popups", || {
        let n = desk
            .windows_of("evil")
            .iter()
            .filter(|w| w.kind == "popup" && w.visible)
            .count();
        (n == 255).then_some(())
    });
    for p in desk.windows_of("evil") {
        assert!(
            p.frame.x >= 0
                && p.frame.y >= 0
                && p.frame.x + p.frame.width <= SCREEN.0
                && p.frame.y + p.frame.height <= SCREEN.1,
            "{p:?}"
        );
    }
    // Destroying the toplevel takes the whole chain.
    evil.raw(&wire::window_only(ty::DESTROY_WINDOW, 1)).unwrap();
    desk.wait_for("the chain to go", || {
        desk.windows_of("evil").is_empty().then_some(())
    });
    desk.assert_connected("evil");
    desk.bystander_ok();
}

#[test]
fn as_many_titled_windows_as_the_budget_allows() {
    // 256 mapped windows with content and 256-byte titles: the compositor keeps presenting the
    // bystander's frames and delivering its keys.
    let mut desk = Desk::start("many-windows");
    let mut evil = desk.hostile("evil");
    evil.hello();
    let mem = corral_protocol::channel::pool::SharedMemfd::create(120 * 90 * 4).unwrap();
    evil.pool_memfd(1, &mem);
    let title = "W".repeat(256);
    let mut bytes = Vec::new();
    for id in 1..=256u32 {
        bytes.extend(wire::create_toplevel(id));
        bytes.extend(wire::set_title(id, title.as_bytes()));
        bytes.extend(wire::attach(id, 1, 0, 120, 90, 480, wire::XRGB8888));
        bytes.extend(wire::commit(id, 1));
        bytes.extend(wire::window_only(ty::MAP, id));
    }
    evil.raw(&bytes).unwrap();
    desk.wait_for("256 windows", || {
        (desk
            .windows_of("evil")
            .iter()
            .filter(|w| w.has_content)
            .count()
            == 256)
            .then_some(())
    });
    desk.assert_connected("evil");
    desk.bystander_ok();
    desk.assert_alive();
}

#[test]
fn queue_overflowing_during_a_key_event_cuts_off_without_hanging() {
    // A qube that stopped reading holds the keyboard focus; the user keeps typing into it, so
    // its outgoing queue overflows inside the keyboard's key handler (the only traffic it gets
    // is input). Cutting it off there must not re-enter the seat (a hang) or panic, and must
    // not block anyone.
    let mut desk = Desk::start_with(
        "overflow-in-key",
        Setup {
            // Just above the keymap (sent whole, once, right after welcome).
            env: &[("CORRAL_MAX_QUEUED_BYTES", "131072")],
            ..Setup::default()
        },
    );
    let mut evil = desk.hostile("evil");
    evil.hello();
    evil.raw(&wire::create_toplevel(1)).unwrap();
    evil.raw(&wire::window_only(ty::MAP, 1)).unwrap();
    let w = desk.wait_for("evil's window", || {
        desk.windows_of("evil").into_iter().find(|w| w.visible)
    });
    // Keep the pointer away from evil's window, then focus it.
    let good = desk.wait_window("good");
    desk.pointer(good.x + 5, good.y + 5, false);
    desk.focus(w.id);
    assert!(evil.wait_for(T, |m| matches!(
        m,
        corral_protocol::GuiMessage::KeyboardEnter { .. }
    )));
    // From now on evil reads nothing.
    let started = std::time::Instant::now();
    let mut taps = 0;
    loop {
        // Each tap is four presses, four releases and the modifier changes between them.
        desk.key("ctrl+alt+shift+a");
        taps += 1;
        if taps % 20 == 0
            && desk
                .notifications()
                .iter()
                .any(|n| n.headline.contains("[evil] was cut off"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{taps} taps and evil is still connected"
        );
    }
    let note = desk.wait_for("evil's notification", || {
        desk.notifications().into_iter().find(|n| {
            n.headline
                .contains("[evil] was cut off: it stopped reading")
        })
    });
    assert!(note.detail.contains("the peer is not reading"), "{note:?}");
    desk.assert_alive();
    desk.bystander_ok();
}
