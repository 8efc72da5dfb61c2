//! A hostile agent on the other end of a real socketpair. The GUI side must refuse, never panic,
//! never block, and never buffer more than the protocol allows. Every socket is non-blocking
//! and every loop is bounded, so a regression fails instead of hanging.

use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use corral_protocol::channel::pool::{PoolError, SharedMemfd};
use corral_protocol::channel::unix::UnixTransport;
use corral_protocol::channel::{ConnectionError, GuiConnection, SendError, StreamLimits};
use corral_protocol::codec::{self, BodyLimit, Direction};
use corral_protocol::fuzzing;
use corral_protocol::limits::*;
use corral_protocol::session::SessionLimits;
use corral_protocol::*;
use proptest::prelude::*;
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};

type Gui = GuiConnection<UnixTransport>;

fn connect(stream_limits: StreamLimits) -> (Gui, UnixStream) {
    let (transport, peer) = UnixTransport::pair().unwrap();
    peer.set_nonblocking(true).unwrap();
    (
        GuiConnection::new(transport, SessionLimits::default(), stream_limits),
        peer,
    )
}

fn encode(msgs: &[AgentMessage]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in msgs {
        codec::encode_agent(m, &mut out);
    }
    out
}

fn hello() -> AgentMessage {
    AgentMessage::Hello {
        version: Version::CURRENT,
        capabilities: Capabilities::all(),
    }
}

fn header(msg_type: u32, len: usize) -> Vec<u8> {
    let mut h = msg_type.to_le_bytes().to_vec();
    h.extend_from_slice(&(len as u32).to_le_bytes());
    h
}

/// Writes everything; the tests only write less than a socket buffer holds.
fn write(peer: &mut UnixStream, bytes: &[u8]) {
    peer.write_all(bytes)
        .expect("the socket buffer holds the test's bytes");
}

/// Sends `bytes` with `fds` attached by SCM_RIGHTS.
fn send_fds(peer: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len())) + 16];
    let mut control = SendAncillaryBuffer::new(&mut space);
    assert!(control.push(SendAncillaryMessage::ScmRights(fds)));
    Ok(sendmsg(
        peer,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::DONTWAIT | SendFlags::NOSIGNAL,
    )?)
}

/// Receives until the connection yields nothing more or fails; at most `max_calls` calls.
/// Returns the messages and the error, if any.
fn drain(conn: &mut Gui, max_calls: usize) -> (Vec<AgentMessage>, Option<ConnectionError>) {
    let mut now = Instant::now();
    let mut messages = Vec::new();
    for _ in 0..max_calls {
        now += Duration::from_millis(1);
        match conn.receive(now) {
            Ok(Some(received)) => messages.push(received.message),
            Ok(None) => return (messages, None),
            Err(e) => return (messages, Some(e)),
        }
    }
    panic!("the connection kept producing messages after {max_calls} calls");
}

fn expect_error(conn: &mut Gui) -> ConnectionError {
    match drain(conn, 1_000) {
        (_, Some(e)) => e,
        (msgs, None) => panic!("no error; received {msgs:?}"),
    }
}

fn unsealed_memfd(size: u64) -> OwnedFd {
    let fd = rustix::fs::memfd_create("hostile", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
        .unwrap();
    rustix::fs::ftruncate(&fd, size).unwrap();
    fd
}

fn memfd_pool_create(size: u64) -> AgentMessage {
    AgentMessage::PoolCreate {
        pool: PoolId::new(1).unwrap(),
        size,
        backing: PoolBacking::MemFd,
    }
}

// ---------------------------------------------------------------------------------------------
// Bounded buffering

#[test]
fn huge_announced_clipboard_buffers_only_what_arrived() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    let max = match codec::body_limit(Direction::AgentToGui, codec::CLIPBOARD_DATA) {
        Some(BodyLimit::AtMost(n)) => n,
        other => panic!("{other:?}"),
    };
    assert!(max > MAX_CLIPBOARD_BYTES);
    // A legal header for a 16 MiB clipboard, then a few bytes of it.
    write(&mut peer, &header(codec::CLIPBOARD_DATA, max));
    write(&mut peer, &[0; 5]);
    let (msgs, err) = drain(&mut conn, 10);
    assert!(msgs.is_empty() && err.is_none(), "{msgs:?} {err:?}");
    assert_eq!(conn.stream().buffered_bytes(), HEADER_BYTES + 5);
    // More bytes: the buffer grows with what arrived, not with what was announced.
    let chunk = vec![0u8; 100_000];
    write(&mut peer, &chunk);
    let (_, err) = drain(&mut conn, 10);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        conn.stream().buffered_bytes(),
        HEADER_BYTES + 5 + chunk.len()
    );
    // Storage is what arrived plus at most one read's room, not the 16 MiB announced.
    assert!(conn.stream().storage_bytes() <= conn.stream().buffered_bytes() + 1024 * 1024);
    // The agent gives up: the connection ends, it does not wait for the rest.
    drop(peer);
    assert!(matches!(expect_error(&mut conn), ConnectionError::Closed));
}

#[test]
fn trickled_bytes_do_not_regrow_receive_storage() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(&mut peer, &header(codec::CLIPBOARD_DATA, 1_000_000));
    let (_, err) = drain(&mut conn, 4);
    assert!(err.is_none(), "{err:?}");
    let storage = conn.stream().storage_bytes();
    // A thousand wake-ups of one byte each: the storage stays as it was (no zeroing per read).
    for _ in 0..1000 {
        write(&mut peer, &[0]);
        let (_, err) = drain(&mut conn, 2);
        assert!(err.is_none(), "{err:?}");
    }
    assert_eq!(conn.stream().buffered_bytes(), HEADER_BYTES + 1000);
    assert_eq!(conn.stream().storage_bytes(), storage);
}

#[test]
fn sender_refuses_a_message_the_receiver_would_reject() {
    let (transport, _peer) = UnixTransport::pair().unwrap();
    let mut agent =
        corral_protocol::channel::AgentConnection::new(transport, StreamLimits::default());
    let too_long = SanitizedText::sanitize(&"x".repeat(1000), 1000);
    let window = WindowId::new(1).unwrap();
    let err = agent
        .send(&AgentMessage::SetTitle {
            window,
            title: too_long,
        })
        .unwrap_err();
    assert!(matches!(err, SendError::Invalid(_)), "{err}");
    assert_eq!(agent.stream().queued_bytes(), 0);
}

#[test]
fn header_over_the_limit_is_refused_before_its_body() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(
        &mut peer,
        &header(codec::CLIPBOARD_DATA, 12 + MAX_CLIPBOARD_BYTES + 1),
    );
    let err = expect_error(&mut conn);
    assert!(
        matches!(
            err,
            ConnectionError::Decode(DecodeError::BodyTooLarge { .. })
        ),
        "{err:?}"
    );
    assert!(err.is_violation());
    assert!(conn.stream().buffered_bytes() <= HEADER_BYTES);
}

#[test]
fn wrong_length_for_a_fixed_message_is_refused_from_the_header() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(&mut peer, &header(codec::HELLO, u32::MAX as usize));
    let err = expect_error(&mut conn);
    assert!(
        matches!(
            err,
            ConnectionError::Decode(DecodeError::InvalidValue { .. })
        ),
        "{err:?}"
    );
}

#[test]
fn message_sent_one_byte_at_a_time_arrives_once() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    let title = AgentMessage::SetTitle {
        window: WindowId::new(1).unwrap(),
        title: SanitizedText::sanitize("slow", 64),
    };
    let bytes = encode(&[
        hello(),
        AgentMessage::CreateToplevel {
            window: WindowId::new(1).unwrap(),
        },
        title.clone(),
    ]);
    let mut received = Vec::new();
    for b in &bytes {
        write(&mut peer, &[*b]);
        let (msgs, err) = drain(&mut conn, 4);
        assert!(err.is_none(), "{err:?}");
        received.extend(msgs);
        assert!(conn.stream().buffered_bytes() <= bytes.len());
    }
    assert_eq!(received.len(), 3);
    assert_eq!(received[2], title);
    assert_eq!(conn.stream().buffered_bytes(), 0);
}

// ---------------------------------------------------------------------------------------------
// File descriptors

#[test]
fn peer_sending_nine_fds_at_once_is_cut_off() {
    let (mut conn, peer) = connect(StreamLimits::default());
    let memfds: Vec<OwnedFd> = (0..9).map(|_| unsealed_memfd(4096)).collect();
    let fds: Vec<BorrowedFd<'_>> = memfds.iter().map(|f| f.as_fd()).collect();
    send_fds(&peer, &[1], &fds).unwrap();
    let err = expect_error(&mut conn);
    let ok = match &err {
        ConnectionError::TooManyFds => true,
        ConnectionError::Io(e) => e.kind() == io::ErrorKind::InvalidData,
        _ => false,
    };
    assert!(ok, "{err:?}");
    assert!(err.is_violation());
}

#[test]
fn peer_hoarding_fds_over_several_sends_is_cut_off() {
    let (mut conn, peer) = connect(StreamLimits::default());
    let memfds: Vec<OwnedFd> = (0..4).map(|_| unsealed_memfd(4096)).collect();
    let fds: Vec<BorrowedFd<'_>> = memfds.iter().map(|f| f.as_fd()).collect();
    // Three sends of four descriptors each, one byte of a header each: no message claims them.
    for b in &header(codec::HELLO, 8)[..3] {
        send_fds(&peer, &[*b], &fds).unwrap();
    }
    let err = expect_error(&mut conn);
    assert!(matches!(err, ConnectionError::TooManyFds), "{err:?}");
}

#[test]
fn memfd_pool_without_seals_is_refused() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(&mut peer, &encode(&[hello()]));
    let fd = unsealed_memfd(4096);
    send_fds(&peer, &encode(&[memfd_pool_create(4096)]), &[fd.as_fd()]).unwrap();
    let (msgs, err) = drain(&mut conn, 10);
    assert_eq!(msgs.len(), 1, "only the hello passes");
    let err = err.expect("the unsealed pool is refused");
    assert!(
        matches!(err, ConnectionError::Pool(PoolError::NotSealed(_))),
        "{err:?}"
    );
    assert!(err.is_violation());
}

#[test]
fn memfd_sealed_only_against_shrinking_is_refused() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(&mut peer, &encode(&[hello()]));
    let fd = unsealed_memfd(4096);
    rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
    send_fds(&peer, &encode(&[memfd_pool_create(4096)]), &[fd.as_fd()]).unwrap();
    let err = expect_error(&mut conn);
    assert!(
        matches!(err, ConnectionError::Pool(PoolError::NotSealed(_))),
        "{err:?}"
    );
}

#[test]
fn sealed_memfd_of_another_size_is_refused() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(&mut peer, &encode(&[hello()]));
    let memfd = SharedMemfd::create(8192).unwrap();
    send_fds(
        &peer,
        &encode(&[memfd_pool_create(4096)]),
        &[memfd.fd().unwrap().as_fd()],
    )
    .unwrap();
    let err = expect_error(&mut conn);
    assert!(
        matches!(
            err,
            ConnectionError::Pool(PoolError::SizeMismatch {
                declared: 4096,
                actual: 8192
            })
        ),
        "{err:?}"
    );
}

#[test]
fn memfd_pool_without_its_fd_is_refused() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(&mut peer, &encode(&[hello(), memfd_pool_create(4096)]));
    let err = expect_error(&mut conn);
    assert!(
        matches!(err, ConnectionError::Pool(PoolError::MissingFd)),
        "{err:?}"
    );
}

#[test]
fn pool_fd_that_is_not_a_memfd_is_refused() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(&mut peer, &encode(&[hello()]));
    let (other, _keep) = UnixStream::pair().unwrap();
    send_fds(&peer, &encode(&[memfd_pool_create(4096)]), &[other.as_fd()]).unwrap();
    let err = expect_error(&mut conn);
    assert!(
        matches!(err, ConnectionError::Pool(PoolError::NotAMemfd)),
        "{err:?}"
    );
}

#[test]
fn sealed_memfd_of_the_announced_size_is_mapped() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(&mut peer, &encode(&[hello()]));
    let mut memfd = SharedMemfd::create(4096).unwrap();
    memfd.bytes_mut()[10] = 0xAB;
    send_fds(
        &peer,
        &encode(&[memfd_pool_create(4096)]),
        &[memfd.fd().unwrap().as_fd()],
    )
    .unwrap();
    let (msgs, err) = drain(&mut conn, 10);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(msgs.len(), 2);
    let pool = conn.pool(PoolId::new(1).unwrap()).expect("pool mapped");
    assert_eq!(pool.len(), 4096);
    let mut byte = [0u8];
    pool.read(10, &mut byte);
    assert_eq!(byte[0], 0xAB);
}

// ---------------------------------------------------------------------------------------------
// Garbage and handshakes

/// xorshift64*: deterministic bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_garbage_ends_in_an_error_or_a_wait() {
    let (mut errors, mut waits) = (0, 0);
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let (mut conn, mut peer) = connect(StreamLimits::default());
        // Half the runs start with a valid hello so garbage reaches the session rules too.
        let mut bytes = if seed % 2 == 0 {
            encode(&[hello()])
        } else {
            Vec::new()
        };
        let len = (rng.next() % 4096) as usize;
        let mut garbage = rng.bytes(len);
        // Plausible headers make the garbage go deeper than the type check.
        if let Some(first) = garbage.get_mut(..8) {
            let types = codec::message_types(Direction::AgentToGui);
            let (t, _, limit) = types[(seed as usize) % types.len()];
            first[..4].copy_from_slice(&t.to_le_bytes());
            let n = match limit {
                BodyLimit::Exact(n) => n,
                BodyLimit::AtMost(n) => rng.next() as usize % (n.min(len) + 1),
            };
            first[4..].copy_from_slice(&(n as u32).to_le_bytes());
        }
        bytes.extend_from_slice(&garbage);
        write(&mut peer, &bytes);
        match drain(&mut conn, bytes.len() / HEADER_BYTES + 4) {
            (_, Some(_)) => errors += 1,
            (_, None) => {
                waits += 1;
                // Whatever is left waiting is bounded by what was sent.
                assert!(conn.stream().buffered_bytes() <= bytes.len());
                drop(peer);
                let err = expect_error(&mut conn);
                assert!(matches!(err, ConnectionError::Closed), "{err:?}");
            }
        }
    }
    assert_eq!(errors + waits, 300);
    assert!(
        errors > 100,
        "garbage was accepted too often: {errors} errors, {waits} waits"
    );
}

#[test]
fn version_mismatch_says_goodbye_with_both_versions() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    let theirs = Version { major: 7, minor: 1 };
    write(
        &mut peer,
        &encode(&[AgentMessage::Hello {
            version: theirs,
            capabilities: Capabilities::all(),
        }]),
    );
    let err = expect_error(&mut conn);
    assert!(
        matches!(err, ConnectionError::VersionMismatch(_)),
        "{err:?}"
    );
    let mut buf = vec![0u8; 4096];
    let n = peer.read(&mut buf).expect("the goodbye was flushed");
    let (msg, _) = codec::decode_gui_frame(&buf[..n]).unwrap().unwrap();
    let GuiMessage::Goodbye { reason } = msg else {
        panic!("{msg:?}")
    };
    assert!(reason.as_str().contains("7.1"), "{reason}");
    assert!(
        reason.as_str().contains(&Version::CURRENT.to_string()),
        "{reason}"
    );
}

#[test]
fn messages_before_hello_are_cut_off() {
    let (mut conn, mut peer) = connect(StreamLimits::default());
    write(
        &mut peer,
        &encode(&[AgentMessage::CreateToplevel {
            window: WindowId::new(1).unwrap(),
        }]),
    );
    let err = expect_error(&mut conn);
    assert!(err.is_violation(), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Outgoing queue

#[test]
fn queue_to_an_agent_that_never_reads_fills_and_stops() {
    let limit = 64 * 1024;
    let (mut conn, _peer) = connect(StreamLimits {
        max_queued_bytes: limit,
    });
    let keymap = GuiMessage::Keymap {
        keymap: "k".repeat(4096),
    };
    let mut sent = 0usize;
    for _ in 0..10_000 {
        match conn.send(&keymap) {
            Ok(()) => sent += 1,
            Err(SendError::QueueFull { queued, limit: l }) => {
                assert_eq!(l, limit);
                assert!(queued <= limit);
                assert!(conn.stream().queued_bytes() <= limit);
                // The socket took what it could; the rest waits within the limit.
                assert!(
                    sent * 4104 >= limit,
                    "{sent} messages before the queue was full"
                );
                assert!(
                    !conn.flush().unwrap(),
                    "the agent never reads, so the socket stays full"
                );
                return;
            }
            Err(e) => panic!("{e}"),
        }
        conn.flush().unwrap();
        assert!(conn.stream().queued_bytes() <= limit);
    }
    panic!("10000 messages of 4 KiB queued to an agent that never reads");
}

// ---------------------------------------------------------------------------------------------
// The fuzz entry points, without libFuzzer

/// Mutations of valid encodings reach far deeper than random bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, bit: u8 },
    Set { at: usize, value: u8 },
    SetU32 { at: usize, value: u32 },
    Insert { at: usize, value: u8 },
    Remove { at: usize },
    Truncate { at: usize },
    Duplicate { from: usize, len: usize },
}

fn interesting_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        proptest::sample::select(vec![
            0,
            1,
            2,
            3,
            4,
            0x7F,
            0x80,
            0xFF,
            0x100,
            0xFFFF,
            16_384,
            16_385,
            0x7FFF_FFFF,
            0x8000_0000,
            u32::MAX - 1,
            u32::MAX
        ]),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::Flip { at, bit }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        (any::<usize>(), interesting_u32()).prop_map(|(at, value)| Mutation::SetU32 { at, value }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, value)| Mutation::Insert { at, value }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), 1usize..64).prop_map(|(from, len)| Mutation::Duplicate { from, len }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match *m {
        Mutation::Flip { at, bit } => bytes[at % n] ^= 1 << bit,
        Mutation::Set { at, value } => bytes[at % n] = value,
        Mutation::SetU32 { at, value } => {
            let at = at % n;
            for (i, b) in value.to_le_bytes().iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + i) {
                    *slot = *b;
                }
            }
        }
        Mutation::Insert { at, value } => bytes.insert(at % (n + 1), value),
        Mutation::Remove { at } => {
            bytes.remove(at % n);
        }
        Mutation::Truncate { at } => bytes.truncate(at % n),
        Mutation::Duplicate { from, len } => {
            let from = from % n;
            let piece = bytes[from..(from + len).min(n)].to_vec();
            bytes.extend_from_slice(&piece);
        }
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    fuzzing::seed_corpus(target)
        .into_iter()
        .map(|(_, bytes)| bytes)
        .collect()
}

/// Runs the fuzz targets' entry functions on ~20,000 inputs: random bytes and mutations of the
/// seed corpus (valid messages and sessions), in both directions and through a real socket.
#[test]
fn fuzz_smoke() {
    use proptest::test_runner::{Config, TestRunner};
    let config = |cases| Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let random = proptest::collection::vec(any::<u8>(), 0..600);
    let mutations = || proptest::collection::vec(mutation(), 1..6);

    // Random bytes: 6,000 per decoder.
    let mut runner = TestRunner::new(config(6_000));
    runner
        .run(&random, |bytes| {
            fuzzing::decode_agent(&bytes);
            fuzzing::decode_gui(&bytes);
            Ok(())
        })
        .unwrap();

    // Mutated valid messages: 4,000 per decoder.
    for target in ["decode_agent", "decode_gui"] {
        let corpus = seeds(target);
        let mut runner = TestRunner::new(config(4_000));
        runner
            .run(&(0..corpus.len(), mutations()), |(i, ms)| {
                let mut bytes = corpus[i].clone();
                for m in &ms {
                    mutate(&mut bytes, m);
                }
                if target == "decode_agent" {
                    fuzzing::decode_agent(&bytes);
                } else {
                    fuzzing::decode_gui(&bytes);
                }
                Ok(())
            })
            .unwrap();
    }

    // Through a socketpair and a GuiConnection: 2,000 mutated streams.
    let corpus = seeds("stream_agent");
    let mut runner = TestRunner::new(config(2_000));
    runner
        .run(
            &(0..corpus.len(), mutations(), any::<u8>()),
            |(i, ms, chunk)| {
                let mut bytes = corpus[i].clone();
                for m in &ms {
                    mutate(&mut bytes, m);
                }
                if bytes.len() > 1 {
                    bytes[1] = chunk;
                }
                fuzzing::stream_agent(&bytes);
                Ok(())
            },
        )
        .unwrap();

    // The unmutated seeds are valid: every message of a seed passes the decoder.
    for seed in seeds("decode_gui") {
        let mut rest = &seed[..];
        while !rest.is_empty() {
            let (_, used) = codec::decode_gui_frame(rest).unwrap().unwrap();
            rest = &rest[used..];
        }
    }
}
