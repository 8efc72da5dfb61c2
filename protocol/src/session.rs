//! The stateful rules of one agent connection, checked in the GUI domain.
//!
//! Decoding proves a message is well-formed; [`AgentSession`] proves it makes sense *now*: the
//! handshake came first, ids are known (or new when created), buffers lie inside their pool,
//! pools use a backing the channel negotiated, and the qube stays inside its budgets (windows,
//! pools, pool bytes, message rate). Any failure is a [`SessionViolation`]; the compositor cuts
//! the qube off and tells the user. Ids live per connection, so one qube can never name another
//! qube's window (a popup's parent is always a window of the same qube).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::message::AgentMessage;
use crate::types::{
    BufferLayout, Capabilities, ClipboardPayload, Compression, PoolBacking, PoolId, Version,
    VersionMismatch, WindowId, negotiate_version,
};

/// Per-qube budgets. The defaults suit a desktop; the compositor's config may lower or raise
/// them within the protocol's hard limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub max_windows: usize,
    pub max_pools: usize,
    pub max_pool_bytes: u64,
    /// Sustained messages per second.
    pub max_messages_per_second: u32,
    /// Messages allowed in a burst above the sustained rate.
    pub message_burst: u32,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_windows: 256,
            max_pools: 512,
            max_pool_bytes: 1024 * 1024 * 1024,
            max_messages_per_second: 20_000,
            message_burst: 40_000,
        }
    }
}

/// A broken session rule. The `Display` text names the rule for the notification.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SessionViolation {
    #[error("sent {0} before hello")]
    BeforeHello(&'static str),
    #[error("sent hello twice")]
    HelloTwice,
    #[error(transparent)]
    Version(#[from] VersionMismatch),
    #[error("window {0} does not exist")]
    UnknownWindow(WindowId),
    #[error("window {0} already exists")]
    WindowExists(WindowId),
    #[error("window {0} is not a popup")]
    NotAPopup(WindowId),
    #[error("window {0} is a popup; {1} applies to toplevels only")]
    NotAToplevel(WindowId, &'static str),
    #[error("pool {0} does not exist")]
    UnknownPool(PoolId),
    #[error("pool {0} already exists")]
    PoolExists(PoolId),
    #[error("pool {0} is still attached to window {1}")]
    PoolInUse(PoolId, WindowId),
    #[error("pool backing {0} was not negotiated on this channel")]
    BackingNotNegotiated(&'static str),
    #[error("capability {0} was not negotiated on this channel")]
    CapabilityNotNegotiated(&'static str),
    #[error("pool {0} is not an inline pool")]
    NotInlinePool(PoolId),
    #[error("{what} ends at byte {end}, past the end of pool {pool} ({size} bytes)")]
    OutsidePool {
        what: &'static str,
        pool: PoolId,
        end: u64,
        size: u64,
    },
    #[error("more than {0} windows")]
    TooManyWindows(usize),
    #[error("more than {0} pools")]
    TooManyPools(usize),
    #[error("pools would total {requested} bytes; the limit is {limit}")]
    TooMuchPoolMemory { requested: u64, limit: u64 },
    #[error("more than {0} messages a second")]
    MessageFlood(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    Toplevel,
    Popup { parent: WindowId },
}

#[derive(Debug, Clone)]
struct WindowRecord {
    kind: WindowKind,
    mapped: bool,
    /// The buffer of the last attach (committed or not).
    attached: Option<(PoolId, BufferLayout)>,
}

#[derive(Debug, Clone, Copy)]
struct PoolRecord {
    size: u64,
    inline: bool,
}

/// What accepting a message changed, beyond the obvious.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Accepted,
    /// The handshake completed at this version with these shared capabilities.
    Established {
        version: Version,
        capabilities: Capabilities,
    },
    /// These windows are gone: the destroyed one and every popup below it, children first.
    WindowsDestroyed(Vec<WindowId>),
}

/// Token bucket for the message rate.
#[derive(Debug, Clone)]
struct RateLimiter {
    tokens: f64,
    last: Option<Instant>,
}

/// The state of one agent connection as the GUI domain sees it.
#[derive(Debug, Clone)]
pub struct AgentSession {
    limits: SessionLimits,
    our_version: Version,
    our_capabilities: Capabilities,
    established: Option<(Version, Capabilities)>,
    windows: HashMap<WindowId, WindowRecord>,
    pools: HashMap<PoolId, PoolRecord>,
    pool_bytes: u64,
    rate: RateLimiter,
}

impl AgentSession {
    pub fn new(limits: SessionLimits, our_capabilities: Capabilities) -> Self {
        AgentSession {
            limits,
            our_version: Version::CURRENT,
            our_capabilities,
            established: None,
            windows: HashMap::new(),
            pools: HashMap::new(),
            pool_bytes: 0,
            rate: RateLimiter {
                tokens: f64::from(limits.message_burst.max(1)),
                last: None,
            },
        }
    }

    /// Pretends to speak another version (for tests of negotiation).
    pub fn with_version(mut self, version: Version) -> Self {
        self.our_version = version;
        self
    }

    /// The negotiated version and capabilities, once the handshake is done.
    pub fn established(&self) -> Option<(Version, Capabilities)> {
        self.established
    }

    pub fn window_kind(&self, window: WindowId) -> Option<WindowKind> {
        self.windows.get(&window).map(|w| w.kind)
    }

    pub fn is_mapped(&self, window: WindowId) -> bool {
        self.windows.get(&window).is_some_and(|w| w.mapped)
    }

    /// The window's last attached buffer, checked against its pool.
    pub fn attachment(&self, window: WindowId) -> Option<(PoolId, BufferLayout)> {
        self.windows.get(&window).and_then(|w| w.attached)
    }

    pub fn window_count(&self) -> usize {
        self.windows.len()
    }

    pub fn pool_count(&self) -> usize {
        self.pools.len()
    }

    pub fn pool_bytes(&self) -> u64 {
        self.pool_bytes
    }

    /// Checks `msg` against the rules and, if it passes, records its effect.
    pub fn apply(&mut self, msg: &AgentMessage, now: Instant) -> Result<Applied, SessionViolation> {
        self.charge_rate(now)?;
        use AgentMessage as M;
        // A goodbye is fine at any time: an agent may give up before the handshake.
        if self.established.is_none() && !matches!(msg, M::Hello { .. } | M::Goodbye { .. }) {
            return Err(SessionViolation::BeforeHello(msg.name()));
        }
        match msg {
            M::Hello {
                version,
                capabilities,
            } => {
                if self.established.is_some() {
                    return Err(SessionViolation::HelloTwice);
                }
                let version = negotiate_version(self.our_version, *version)?;
                let capabilities = self.our_capabilities & *capabilities;
                self.established = Some((version, capabilities));
                return Ok(Applied::Established {
                    version,
                    capabilities,
                });
            }
            M::CreateToplevel { window } => self.create_window(*window, WindowKind::Toplevel)?,
            M::CreatePopup { window, parent, .. } => {
                self.window(*parent)?;
                self.create_window(*window, WindowKind::Popup { parent: *parent })?;
            }
            M::RepositionPopup { window, .. } => {
                if !matches!(self.window(*window)?.kind, WindowKind::Popup { .. }) {
                    return Err(SessionViolation::NotAPopup(*window));
                }
            }
            M::DestroyWindow { window } => {
                self.window(*window)?;
                return Ok(Applied::WindowsDestroyed(self.destroy_tree(*window)));
            }
            M::Map { window } => self.window_mut(*window)?.mapped = true,
            M::Unmap { window } => self.window_mut(*window)?.mapped = false,
            M::SizeHints { window, .. } => self.toplevel(*window, "size hints")?,
            M::RequestState { window, .. } => self.toplevel(*window, "a state request")?,
            M::SetTitle { window, .. }
            | M::SetAppId { window, .. }
            | M::Damage { window, .. }
            | M::Commit { window, .. }
            | M::AckConfigure { window, .. }
            | M::SetCursor { window, .. }
            | M::RequestAttention { window } => {
                self.window(*window)?;
            }
            M::PoolCreate {
                pool,
                size,
                backing,
            } => self.create_pool(*pool, *size, backing)?,
            M::PoolDestroy { pool } => {
                let record = self
                    .pools
                    .get(pool)
                    .ok_or(SessionViolation::UnknownPool(*pool))?;
                let size = record.size;
                if let Some((id, _)) = self
                    .windows
                    .iter()
                    .find(|(_, w)| w.attached.is_some_and(|(p, _)| p == *pool))
                {
                    return Err(SessionViolation::PoolInUse(*pool, *id));
                }
                self.pools.remove(pool);
                self.pool_bytes -= size;
            }
            M::PoolWrite {
                pool,
                pixels,
                compression,
            } => {
                if *compression == Compression::Lz4 {
                    self.require(Capabilities::LZ4, "lz4")?;
                }
                let record = self
                    .pools
                    .get(pool)
                    .ok_or(SessionViolation::UnknownPool(*pool))?;
                if !record.inline {
                    return Err(SessionViolation::NotInlinePool(*pool));
                }
                if pixels.end() > record.size {
                    return Err(SessionViolation::OutsidePool {
                        what: "inline write",
                        pool: *pool,
                        end: pixels.end(),
                        size: record.size,
                    });
                }
            }
            M::Attach {
                window,
                pool,
                layout,
            } => {
                let record = self
                    .pools
                    .get(pool)
                    .ok_or(SessionViolation::UnknownPool(*pool))?;
                if layout.end() > record.size {
                    return Err(SessionViolation::OutsidePool {
                        what: "buffer",
                        pool: *pool,
                        end: layout.end(),
                        size: record.size,
                    });
                }
                self.window_mut(*window)?.attached = Some((*pool, *layout));
            }
            M::ClipboardData {
                payload: ClipboardPayload::Png(_),
                ..
            } => self.require(Capabilities::CLIPBOARD_PNG, "clipboard-png")?,
            M::Goodbye { .. }
            | M::ClipboardData { .. }
            | M::ClipboardEmpty { .. }
            | M::AppList { .. }
            | M::Pong { .. } => {}
            // What a qube may say in a notification is the GUI domain's policy (rate, count);
            // the session only checks that both sides agreed to notifications at all.
            M::Notify { .. } | M::CloseNotification { .. } => {
                self.require(Capabilities::NOTIFICATIONS, "notifications")?
            }
        }
        Ok(Applied::Accepted)
    }

    fn require(
        &self,
        capability: Capabilities,
        name: &'static str,
    ) -> Result<(), SessionViolation> {
        let negotiated = self
            .established
            .map(|(_, c)| c)
            .unwrap_or(Capabilities::empty());
        if negotiated.contains(capability) {
            Ok(())
        } else {
            Err(SessionViolation::CapabilityNotNegotiated(name))
        }
    }

    fn charge_rate(&mut self, now: Instant) -> Result<(), SessionViolation> {
        let rate = f64::from(self.limits.max_messages_per_second);
        let burst = f64::from(self.limits.message_burst.max(1));
        if let Some(last) = self.rate.last {
            let elapsed = now
                .saturating_duration_since(last)
                .min(Duration::from_secs(60));
            self.rate.tokens = (self.rate.tokens + elapsed.as_secs_f64() * rate).min(burst);
        }
        self.rate.last = Some(now);
        if self.rate.tokens < 1.0 {
            return Err(SessionViolation::MessageFlood(
                self.limits.max_messages_per_second,
            ));
        }
        self.rate.tokens -= 1.0;
        Ok(())
    }

    fn window(&self, window: WindowId) -> Result<&WindowRecord, SessionViolation> {
        self.windows
            .get(&window)
            .ok_or(SessionViolation::UnknownWindow(window))
    }

    fn window_mut(&mut self, window: WindowId) -> Result<&mut WindowRecord, SessionViolation> {
        self.windows
            .get_mut(&window)
            .ok_or(SessionViolation::UnknownWindow(window))
    }

    fn toplevel(&self, window: WindowId, what: &'static str) -> Result<(), SessionViolation> {
        match self.window(window)?.kind {
            WindowKind::Toplevel => Ok(()),
            WindowKind::Popup { .. } => Err(SessionViolation::NotAToplevel(window, what)),
        }
    }

    fn create_window(
        &mut self,
        window: WindowId,
        kind: WindowKind,
    ) -> Result<(), SessionViolation> {
        if self.windows.contains_key(&window) {
            return Err(SessionViolation::WindowExists(window));
        }
        if self.windows.len() >= self.limits.max_windows {
            return Err(SessionViolation::TooManyWindows(self.limits.max_windows));
        }
        self.windows.insert(
            window,
            WindowRecord {
                kind,
                mapped: false,
                attached: None,
            },
        );
        Ok(())
    }

    /// Removes `root` and all popups below it; returns them children first.
    fn destroy_tree(&mut self, root: WindowId) -> Vec<WindowId> {
        let mut order = Vec::new();
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            order.push(id);
            stack.extend(
                self.windows
                    .iter()
                    .filter(|(_, w)| w.kind == WindowKind::Popup { parent: id })
                    .map(|(child, _)| *child),
            );
        }
        order.reverse();
        for id in &order {
            self.windows.remove(id);
        }
        order
    }

    fn create_pool(
        &mut self,
        pool: PoolId,
        size: u64,
        backing: &PoolBacking,
    ) -> Result<(), SessionViolation> {
        let (needed, name) = match backing {
            PoolBacking::MemFd => (Capabilities::MEMFD_POOLS, "memfd"),
            PoolBacking::Inline => (Capabilities::INLINE_PIXELS, "inline"),
            PoolBacking::XenGrants(_) => (Capabilities::XEN_GRANTS, "xen-grants"),
        };
        let negotiated = self
            .established
            .map(|(_, c)| c)
            .unwrap_or(Capabilities::empty());
        if !negotiated.contains(needed) {
            return Err(SessionViolation::BackingNotNegotiated(name));
        }
        if self.pools.contains_key(&pool) {
            return Err(SessionViolation::PoolExists(pool));
        }
        if self.pools.len() >= self.limits.max_pools {
            return Err(SessionViolation::TooManyPools(self.limits.max_pools));
        }
        // Checked: a sum that wraps would let the budget be bypassed (and later underflow).
        let requested = match self.pool_bytes.checked_add(size) {
            Some(requested) if requested <= self.limits.max_pool_bytes => requested,
            _ => {
                return Err(SessionViolation::TooMuchPoolMemory {
                    requested: self.pool_bytes.saturating_add(size),
                    limit: self.limits.max_pool_bytes,
                });
            }
        };
        self.pools.insert(
            pool,
            PoolRecord {
                size,
                inline: matches!(backing, PoolBacking::Inline),
            },
        );
        self.pool_bytes = requested;
        Ok(())
    }
}
