//! `security.input_jitter_ms`: a random delay, up to that many milliseconds, on every key and
//! button event sent to a qube, so a qube cannot time keystrokes precisely (Qubes offers the
//! same, 0 to 5000 ms).
//!
//! Order is kept: while anything is delayed for a qube, every later input message to that
//! qube (focus enter and leave, modifiers, pointer motion, the releases sent on focus change)
//! waits behind it, so a press can never arrive after its release or after `keyboard_leave`.
//! Deadlines only grow, and one timer drains the queue in order.

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use corral_protocol::GuiMessage;
use smithay::reexports::calloop::timer::{TimeoutAction, Timer};

use crate::qubes::ConnId;
use crate::state::State;

/// Input messages waiting for their time.
#[derive(Debug, Default)]
pub struct Delayed {
    queue: VecDeque<(Instant, ConnId, GuiMessage)>,
    /// The latest deadline given out (deadlines never go back, so order holds).
    last: Option<Instant>,
    timer_armed: bool,
    counter: u64,
    keys: std::collections::hash_map::RandomState,
}

/// Most input messages held back at once; when it is full, everything held is sent at once
/// (in order) and the new message goes without delay, so an input storm cannot grow the queue
/// without end (decision 7).
const MAX_DELAYED: usize = 4096;

impl Delayed {
    /// A delay in `0..=max`, from SipHash keyed at random per process over a counter: not
    /// something a qube can predict.
    fn random_delay(&mut self, max: Duration) -> Duration {
        self.counter += 1;
        let mut h = self.keys.build_hasher();
        h.write_u64(self.counter);
        let ms = max.as_millis() as u64;
        Duration::from_millis(h.finish() % (ms + 1))
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Forgets what was waiting for a qube that went away.
    pub fn forget(&mut self, conn: ConnId) {
        self.queue.retain(|(_, c, _)| *c != conn);
    }
}

impl State {
    /// Sends an input message to a qube: at once, or behind delayed ones, with jitter on keys
    /// and buttons when `security.input_jitter_ms` is set.
    pub fn send_input(&mut self, conn: ConnId, msg: GuiMessage) {
        let max = Duration::from_millis(
            self.settings.loaded.config.security.input_jitter_ms.get() as u64
        );
        let jittered = matches!(
            msg,
            GuiMessage::Key { .. } | GuiMessage::PointerButton { .. }
        ) && !max.is_zero();
        let delayed = &mut self.settings.delayed;
        let behind = delayed.queue.iter().any(|(_, c, _)| *c == conn);
        if !jittered && !behind {
            self.send_to(conn, &msg);
            return;
        }
        if delayed.queue.len() >= MAX_DELAYED {
            let held: Vec<_> = delayed.queue.drain(..).collect();
            delayed.last = None;
            for (_, held_conn, held_msg) in held {
                self.send_to(held_conn, &held_msg);
            }
            self.send_to(conn, &msg);
            return;
        }
        let now = Instant::now();
        let extra = if jittered {
            delayed.random_delay(max)
        } else {
            Duration::ZERO
        };
        let deadline = (now + extra).max(delayed.last.unwrap_or(now));
        delayed.last = Some(deadline);
        delayed.queue.push_back((deadline, conn, msg));
        self.arm_delayed_timer();
    }

    fn arm_delayed_timer(&mut self) {
        let delayed = &mut self.settings.delayed;
        if delayed.timer_armed {
            return;
        }
        let Some((deadline, _, _)) = delayed.queue.front() else {
            return;
        };
        let timer = Timer::from_deadline(*deadline);
        delayed.timer_armed = true;
        let inserted = self.handle.insert_source(timer, |_, _, state: &mut State| {
            state.settings.delayed.timer_armed = false;
            state.send_due_input();
            state.arm_delayed_timer();
            TimeoutAction::Drop
        });
        if inserted.is_err() {
            // Without a timer nothing would ever leave the queue: send it all now.
            self.settings.delayed.timer_armed = false;
            let all: Vec<_> = self.settings.delayed.queue.drain(..).collect();
            for (_, conn, msg) in all {
                self.send_to(conn, &msg);
            }
        }
    }

    fn send_due_input(&mut self) {
        let now = Instant::now();
        while let Some((deadline, _, _)) = self.settings.delayed.queue.front() {
            if *deadline > now {
                break;
            }
            let Some((_, conn, msg)) = self.settings.delayed.queue.pop_front() else {
                break;
            };
            self.send_to(conn, &msg);
        }
    }
}
