//! The `xen` channel: a libxenvchan ring for the message stream, grant references for pools.
//!
//! - [`VchanTransport`] is a [`Transport`] over a vchan. As in Qubes, the agent is the vchan
//!   *server* ([`VchanTransport::agent_listen`]): it allocates the ring pages, grants them to the
//!   GUI domain and publishes them under its own xenstore tree. The GUI domain is the *client*
//!   ([`VchanTransport::gui_connect`]) of the one domain id the domain manager started the qube
//!   with. The trusted side is the client on purpose: libxenvchan's server-side error paths
//!   (Xen 4.17) free and unmap uninitialised pointers, and that code must not run in the GUI
//!   domain; the client's error paths are clean (docs/xen.md).
//! - [`GrantPoolMapper`] maps an agent's `pool_create` with [`PoolBacking::XenGrants`] read-only,
//!   through gntdev, from the channel's domain id only (decisions 2 and 3 of ARCHITECTURE.md).
//! - [`SharedGrants`] is the agent's side: pages allocated and granted read-only to the GUI
//!   domain through gntalloc.
//!
//! See `docs/xen.md` for ring sizes, the xenstore path convention and the failure modes. This
//! module has been compiled and its error paths unit-tested on machines without Xen; it has not
//! been run against a real hypervisor.
//!
//! The C interfaces are bound by hand below (no bindgen), each declaration citing the header it
//! was copied from (Debian bookworm, libxen-dev 4.17). `build.rs` links the libraries.

use std::ffi::{CString, c_int, c_uint};
use std::fmt;
use std::io::{self, IoSlice};
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::Transport;
use super::connection::{GuiConnection, StreamLimits};
use super::pool::{InlinePool, PoolError, PoolMapper, PoolMemory};
use crate::limits::{MAX_GRANT_REFS, MAX_POOL_BYTES};
use crate::message::AgentMessage;
use crate::session::SessionLimits;
use crate::types::{Capabilities, InlinePixels, PoolBacking, PoolId};

#[cfg(target_endian = "big")]
compile_error!(
    "the xen channel clears libxenvchan's `blocking` bit-field assuming little-endian bit-field \
     allocation; check the layout of struct libxenvchan before enabling it here"
);

/// Size of a Xen page, and so of the memory behind one grant reference.
pub const XEN_PAGE_BYTES: u64 = 4096;

/// The largest vchan ring libxenvchan accepts (`MAX_RING_SIZE` in libxenvchan's init.c: beyond
/// it the grant refs of the ring no longer fit in the shared control page).
pub const MAX_RING_BYTES: usize = 1 << 20;

/// The GUI domain's receive ring (agent → GUI; libxenvchan's "left" ring). Large enough for a
/// `pool_create` of a 4K window (8,100 refs, 32 KiB) in one piece plus a frame's damage.
pub const AGENT_TO_GUI_RING_BYTES: usize = 64 * 1024;

/// The GUI domain's send ring (GUI → agent; the "right" ring): input, configure and clipboard
/// pushes are small or stream through in pieces.
pub const GUI_TO_AGENT_RING_BYTES: usize = 16 * 1024;

/// The vchan "port" in the xenstore path, the same number the vsock channel listens on.
pub const GUI_VCHAN_PORT: u16 = 6000;

/// libxenvchan formats `"<xs_path>/event-channel"` (the longest of its two keys) into a
/// 64-byte buffer with `snprintf`, silently truncating a longer path. Longer paths are refused.
const LIBXENVCHAN_PATH_BUFFER: usize = 64;
const LONGEST_VCHAN_KEY: &str = "/event-channel";
/// Longest `xs_path` libxenvchan handles without truncation.
pub const MAX_XS_PATH_BYTES: usize = LIBXENVCHAN_PATH_BUFFER - 1 - LONGEST_VCHAN_KEY.len();

/// At most this many pending event-channel notifications are consumed per `recv`. One port is
/// bound per vchan and the kernel masks it until `libxenvchan_wait` unmasks it, so more than
/// one is rare; any left over keep the fd readable and the event loop comes back.
const MAX_EVENTS_PER_RECV: usize = 4;

/// Default cap on grant refs mapped for one pool: the default `limit` of Linux's gntdev driver
/// ("maximum number of grants that may be mapped by one mapping request", 65,536 pages =
/// 256 MiB). Our protocol allows [`MAX_GRANT_REFS`] (262,144 refs, one 16384×16384 buffer);
/// Qubes caps a window at 98,304 refs (16384×6144). Raise this together with gntdev's limit.
pub const DEFAULT_MAX_REFS_PER_POOL: usize = 65_536;

/// Hand-written declarations of the Xen libraries, each copied from the header named beside it.
mod ffi {
    use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
    use std::marker::{PhantomData, PhantomPinned};

    /// `struct xentoollog_logger` (xentoollog.h). Always passed as NULL: the libraries then
    /// create their own logger on stderr.
    #[repr(C)]
    pub struct XentoollogLogger {
        _opaque: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    /// `typedef struct xengntdev_handle xengnttab_handle;` and
    /// `typedef struct xengntdev_handle xengntshr_handle;` (xengnttab.h): opaque.
    #[repr(C)]
    pub struct XengntdevHandle {
        _opaque: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    /// `struct xs_handle` (xenstore.h): opaque.
    #[repr(C)]
    pub struct XsHandle {
        _opaque: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    /// The leading fields of `struct libxenvchan` (libxenvchan.h), which the header defines in
    /// full because callers are expected to set `blocking` themselves (Qubes' libvchan sets it
    /// to 1 after init). Only `flags` is ever touched from Rust; the rest of the structure
    /// (`read`, `write`, `xs_path`) is never accessed and so not declared.
    ///
    /// ```c
    /// struct libxenvchan {
    ///     union { xengntshr_handle *gntshr; xengnttab_handle *gnttab; };
    ///     struct vchan_interface *ring;
    ///     xenevtchn_handle *event;
    ///     uint32_t event_port;
    ///     int is_server:1;
    ///     int server_persist:1;
    ///     int blocking:1;
    ///     struct libxenvchan_ring read, write;
    ///     char *xs_path;
    /// };
    /// ```
    #[repr(C)]
    pub struct Libxenvchan {
        pub gnt: *mut c_void,
        pub ring: *mut c_void,
        pub event: *mut c_void,
        pub event_port: u32,
        /// The byte holding the three bit-fields. On the little-endian System V ABIs (x86-64,
        /// aarch64) GCC allocates bit-fields from the least significant bit of their `int`
        /// unit: `is_server` is bit 0, `server_persist` bit 1, `blocking` bit 2. Checked by
        /// compiling a C program against the bookworm header (setting `c.blocking = 1` on a
        /// zeroed struct sets byte 28 to 0x04) and by disassembling libxenvchan.so.4.17.0
        /// (`libxenvchan_server_init` stores `is_server` with `and $~3; or $1` into byte 0x1c).
        pub flags: u8,
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    /// Bit of [`Libxenvchan::flags`] that is `int blocking:1`.
    pub const BLOCKING_BIT: u8 = 1 << 2;

    // The layout the comment above describes: three pointers, a u32, then the bit-field byte.
    const _: () = assert!(
        std::mem::offset_of!(Libxenvchan, flags) == 3 * std::mem::size_of::<*mut c_void>() + 4
    );
    #[cfg(target_pointer_width = "64")]
    const _: () = assert!(std::mem::offset_of!(Libxenvchan, flags) == 28);

    /// `PROT_READ` (sys/mman.h), the `prot` argument of the gnttab map calls ("same flag as in
    /// mmap()").
    pub const PROT_READ: c_int = libc::PROT_READ;

    /// `#define XBT_NULL 0` (xenstore.h): no transaction.
    pub const XBT_NULL: u32 = 0;

    unsafe extern "C" {
        // ---- libxenvchan.h (library libxenvchan) ----

        /// `struct libxenvchan *libxenvchan_server_init(struct xentoollog_logger *logger,
        ///     int domain, const char* xs_path, size_t read_min, size_t write_min);`
        /// (`read_min` is the server's receive ring, "left"; `write_min` its send ring,
        /// "right"; both at most 1 MiB.)
        pub fn libxenvchan_server_init(
            logger: *mut XentoollogLogger,
            domain: c_int,
            xs_path: *const c_char,
            read_min: usize,
            write_min: usize,
        ) -> *mut Libxenvchan;

        /// `struct libxenvchan *libxenvchan_client_init(struct xentoollog_logger *logger,
        ///     int domain, const char* xs_path);`
        pub fn libxenvchan_client_init(
            logger: *mut XentoollogLogger,
            domain: c_int,
            xs_path: *const c_char,
        ) -> *mut Libxenvchan;

        /// `void libxenvchan_close(struct libxenvchan *ctrl);`
        pub fn libxenvchan_close(ctrl: *mut Libxenvchan);

        /// `int libxenvchan_read(struct libxenvchan *ctrl, void *data, size_t size);`
        pub fn libxenvchan_read(ctrl: *mut Libxenvchan, data: *mut c_void, size: usize) -> c_int;

        /// `int libxenvchan_write(struct libxenvchan *ctrl, const void *data, size_t size);`
        pub fn libxenvchan_write(ctrl: *mut Libxenvchan, data: *const c_void, size: usize)
        -> c_int;

        /// `int libxenvchan_wait(struct libxenvchan *ctrl);`
        pub fn libxenvchan_wait(ctrl: *mut Libxenvchan) -> c_int;

        /// `int libxenvchan_fd_for_select(struct libxenvchan *ctrl);`
        pub fn libxenvchan_fd_for_select(ctrl: *mut Libxenvchan) -> c_int;

        /// `int libxenvchan_is_open(struct libxenvchan* ctrl);`
        pub fn libxenvchan_is_open(ctrl: *mut Libxenvchan) -> c_int;

        /// `int libxenvchan_data_ready(struct libxenvchan *ctrl);`
        pub fn libxenvchan_data_ready(ctrl: *mut Libxenvchan) -> c_int;

        /// `int libxenvchan_buffer_space(struct libxenvchan *ctrl);`
        pub fn libxenvchan_buffer_space(ctrl: *mut Libxenvchan) -> c_int;

        // ---- xengnttab.h (library libxengnttab; it holds both xengnttab_* and xengntshr_*) ----

        /// `xengnttab_handle *xengnttab_open(struct xentoollog_logger *logger,
        ///     unsigned open_flags);`
        pub fn xengnttab_open(
            logger: *mut XentoollogLogger,
            open_flags: c_uint,
        ) -> *mut XengntdevHandle;

        /// `int xengnttab_close(xengnttab_handle *xgt);`
        pub fn xengnttab_close(xgt: *mut XengntdevHandle) -> c_int;

        /// `void *xengnttab_map_domain_grant_refs(xengnttab_handle *xgt, uint32_t count,
        ///     uint32_t domid, uint32_t *refs, int prot);`
        pub fn xengnttab_map_domain_grant_refs(
            xgt: *mut XengntdevHandle,
            count: u32,
            domid: u32,
            refs: *mut u32,
            prot: c_int,
        ) -> *mut c_void;

        /// `int xengnttab_unmap(xengnttab_handle *xgt, void *start_address, uint32_t count);`
        pub fn xengnttab_unmap(
            xgt: *mut XengntdevHandle,
            start_address: *mut c_void,
            count: u32,
        ) -> c_int;

        /// `xengntshr_handle *xengntshr_open(struct xentoollog_logger *logger,
        ///     unsigned open_flags);`
        pub fn xengntshr_open(
            logger: *mut XentoollogLogger,
            open_flags: c_uint,
        ) -> *mut XengntdevHandle;

        /// `int xengntshr_close(xengntshr_handle *xgs);`
        pub fn xengntshr_close(xgs: *mut XengntdevHandle) -> c_int;

        /// `void *xengntshr_share_pages(xengntshr_handle *xgs, uint32_t domid, int count,
        ///     uint32_t *refs, int writable);`
        pub fn xengntshr_share_pages(
            xgs: *mut XengntdevHandle,
            domid: u32,
            count: c_int,
            refs: *mut u32,
            writable: c_int,
        ) -> *mut c_void;

        /// `int xengntshr_unshare(xengntshr_handle *xgs, void *start_address, uint32_t count);`
        pub fn xengntshr_unshare(
            xgs: *mut XengntdevHandle,
            start_address: *mut c_void,
            count: u32,
        ) -> c_int;

        // ---- xenstore.h (library libxenstore) ----

        /// `struct xs_handle *xs_open(unsigned long flags);`
        pub fn xs_open(flags: c_ulong) -> *mut XsHandle;

        /// `void xs_close(struct xs_handle *xsh /* NULL ok */);`
        pub fn xs_close(xsh: *mut XsHandle);

        /// `void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path,
        ///     unsigned int *len);` (`typedef uint32_t xs_transaction_t;` — the result is
        /// malloc()ed and NUL-terminated; free() it.)
        pub fn xs_read(
            h: *mut XsHandle,
            t: u32,
            path: *const c_char,
            len: *mut c_uint,
        ) -> *mut c_void;
    }
}

/// Builds an error from `errno` right after a failed Xen library call. The libraries set errno
/// on most failures but not all (a refused argument, a failure inside libxenstore); a zero or
/// missing errno becomes a plain "failed".
fn xen_error(what: &str) -> io::Error {
    let os = io::Error::last_os_error();
    match os.raw_os_error() {
        Some(0) | None => io::Error::other(format!("{what} failed")),
        Some(_) => io::Error::new(os.kind(), format!("{what} failed: {os}")),
    }
}

// -------------------------------------------------------------------------------------------
// Domain ids and xenstore paths
// -------------------------------------------------------------------------------------------

/// A Xen domain id of a real domain: below `DOMID_FIRST_RESERVED` (0x7FF0), so never one of the
/// special ids (`DOMID_SELF`, `DOMID_IO`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomId(u16);

impl DomId {
    /// `DOMID_FIRST_RESERVED` (xen/xen.h).
    pub const FIRST_RESERVED: u32 = 0x7FF0;

    /// Dom0.
    pub const DOM0: DomId = DomId(0);

    /// `None` for a reserved or out-of-range id.
    pub fn new(raw: u32) -> Option<Self> {
        if raw < Self::FIRST_RESERVED {
            u16::try_from(raw).ok().map(DomId)
        } else {
            None
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for DomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The server's (agent's) xenstore path for its vchan to `client`, relative to the server's
/// own home (`/local/domain/<agent-domid>/`): `data/vchan/<client-domid>/<port>`, the layout
/// libxenvchan.h documents and Qubes' libvchan uses. xenstored resolves a relative path against
/// the caller's home, so the server cannot write anywhere else, and `data/` is where a domain
/// may write in its own tree.
pub fn server_xs_path(client: DomId, port: u16) -> String {
    format!("data/vchan/{client}/{port}")
}

/// The same path as the client (the GUI domain) reads it: absolute, under the server's tree.
/// The GUI domain reads from the tree of the domain id it started, so a qube can only offer a
/// ring in its own name.
pub fn client_xs_path(server: DomId, own: DomId, port: u16) -> String {
    format!("/local/domain/{server}/data/vchan/{own}/{port}")
}

fn xs_path_cstring(path: &str) -> io::Result<CString> {
    if path.is_empty() || path.len() > MAX_XS_PATH_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "xenstore path of {} bytes; libxenvchan handles 1..={MAX_XS_PATH_BYTES}",
                path.len()
            ),
        ));
    }
    CString::new(path).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "xenstore path contains a NUL byte",
        )
    })
}

/// Reads this domain's id from xenstore (the relative key `domid`, which xenstored resolves in
/// the caller's home). The GUI domain uses it to build [`client_xs_path`].
pub fn own_domid() -> io::Result<DomId> {
    // SAFETY: xs_open takes a flags word (0 = the default socket-then-xenbus connection) and
    // returns an owned handle or NULL; it has no other preconditions.
    let xs = unsafe { ffi::xs_open(0) };
    let Some(xs) = NonNull::new(xs) else {
        return Err(xen_error("xs_open (is this a Xen domain with xenbus?)"));
    };
    let mut len: c_uint = 0;
    // SAFETY: `xs` is the live handle opened above; the path is a NUL-terminated literal;
    // `len` is a valid out-pointer for the duration of the call.
    let value = unsafe { ffi::xs_read(xs.as_ptr(), ffi::XBT_NULL, c"domid".as_ptr(), &mut len) };
    let result = match NonNull::new(value.cast::<u8>()) {
        None => Err(xen_error("xs_read(domid)")),
        Some(value) => {
            // SAFETY: xs_read returned a malloc()ed buffer of `len` bytes plus a terminating
            // NUL (xenstore.h); `len` does not include the NUL, so `len` bytes are readable.
            // The slice is copied into an owned String before the buffer is freed.
            let text = unsafe { std::slice::from_raw_parts(value.as_ptr(), len as usize) };
            let parsed = parse_domid(text);
            // SAFETY: the buffer came from malloc() inside libxenstore ("call free() on it after
            // use", xenstore.h) and is freed exactly once, after its last use above.
            unsafe { libc::free(value.as_ptr().cast()) };
            parsed
        }
    };
    // SAFETY: `xs` is the handle opened above, closed exactly once, after its last use.
    unsafe { ffi::xs_close(xs.as_ptr()) };
    result
}

fn parse_domid(untrusted_text: &[u8]) -> io::Result<DomId> {
    std::str::from_utf8(untrusted_text)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .and_then(DomId::new)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "xenstore `domid` is not a domain id",
            )
        })
}

// -------------------------------------------------------------------------------------------
// The vchan transport
// -------------------------------------------------------------------------------------------

/// The operations of a vchan that the non-blocking stream logic needs. A trait only so that
/// [`ring_recv`] and [`ring_send`] can be tested without Xen.
trait Ring {
    /// Consumes the event-channel notifications that are pending now, without blocking.
    fn clear_events(&mut self) -> io::Result<()>;
    /// Whether the peer is (still) there. A server whose client has not connected yet is open.
    fn is_open(&mut self) -> bool;
    /// Bytes readable now; also asks the peer to notify us when it writes more.
    fn data_ready(&mut self) -> usize;
    /// Bytes writable now; also asks the peer to notify us when it frees space.
    fn buffer_space(&mut self) -> usize;
    /// Reads at most `buf.len()` bytes, which the caller saw were ready.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes at most `data.len()` bytes, which the caller saw would fit.
    fn write(&mut self, data: &[u8]) -> io::Result<usize>;
}

/// `recv` on a vchan.
///
/// Ordering is what keeps wake-ups from being lost. The event channel is level-less: one
/// notification makes the fd readable once, and `libxenvchan_wait` consumes it. So we first
/// consume what is pending, *then* look at the ring. Data that arrived before we looked is
/// read now; data written after we looked comes with a fresh notification (data_ready() set
/// the "notify me on write" bit before it read the indexes), which makes the fd readable again.
/// The reverse order (look, then consume) could eat the notification of data we did not see.
fn ring_recv<R: Ring>(ring: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    ring.clear_events()?;
    let mut ready = ring.data_ready();
    if ready == 0 {
        if ring.is_open() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        // The peer closed. Bytes it wrote before closing are still in the ring and still
        // ours to read; look once more, since they may have landed after the first look.
        ready = ring.data_ready();
        if ready == 0 {
            return Ok(0);
        }
    }
    let want = buf.len().min(ready);
    let n = ring.read(&mut buf[..want])?;
    if n == 0 {
        // Only a peer that moved the shared indexes backwards can make data that was ready
        // disappear; libxenvchan then reports nothing. Treat it as nothing to read: the ring
        // is wedged for that one connection, never for the GUI domain.
        return Err(io::ErrorKind::WouldBlock.into());
    }
    if n > want {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "libxenvchan_read returned more than was asked",
        ));
    }
    Ok(n)
}

/// `send` on a vchan: writes the prefix of `bufs` that fits in the ring now.
///
/// It does not touch the event channel: consuming a notification here could swallow one that
/// announced incoming data, and a caller that only flushes (from a timer or an input handler)
/// would then not call `recv` until some later, unrelated notification. When the ring is full,
/// buffer_space() has asked the peer to notify us when it reads; that notification makes the
/// fd readable, and the event loop's `recv` + `flush` pick it up (see `docs/xen.md`).
fn ring_send<R: Ring>(
    ring: &mut R,
    scratch: &mut Vec<u8>,
    bufs: &[IoSlice<'_>],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    if !fds.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a vchan cannot pass file descriptors",
        ));
    }
    let total = bufs
        .iter()
        .fold(0usize, |sum, b| sum.saturating_add(b.len()));
    if total == 0 {
        return Ok(0);
    }
    if !ring.is_open() {
        return Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "the peer closed the vchan",
        ));
    }
    let space = ring.buffer_space();
    if space == 0 {
        return Err(io::ErrorKind::WouldBlock.into());
    }
    // libxenvchan returns an int; rings are at most 1 MiB, so this bound never bites.
    let want = total.min(space).min(c_int::MAX as usize);
    // One libxenvchan_write per call, so the peer gets at most one notification for it: gather
    // the slices into `scratch` unless the first one alone covers what fits.
    let first = bufs
        .iter()
        .find(|b| !b.is_empty())
        .map_or(&[][..], |b| &b[..]);
    let data: &[u8] = if first.len() >= want {
        &first[..want]
    } else {
        scratch.clear();
        for b in bufs {
            let take = (want - scratch.len()).min(b.len());
            scratch.extend_from_slice(&b[..take]);
            if scratch.len() == want {
                break;
            }
        }
        scratch
    };
    let n = ring.write(data)?;
    if n == 0 {
        // A peer that moved its read index backwards can make free space vanish.
        return Err(io::ErrorKind::WouldBlock.into());
    }
    if n > data.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "libxenvchan_write reported more than was given",
        ));
    }
    Ok(n)
}

/// An open libxenvchan handle. Closed on drop.
struct XenVchan {
    ctrl: NonNull<ffi::Libxenvchan>,
    /// The event-channel fd (`libxenvchan_fd_for_select`), owned by the handle; -1 until known.
    event_fd: RawFd,
}

impl XenVchan {
    /// Takes ownership of a handle just returned by `libxenvchan_*_init` and makes it
    /// non-blocking.
    fn adopt(ctrl: NonNull<ffi::Libxenvchan>) -> io::Result<Self> {
        // From here on, every error path drops `vchan`, which closes the handle.
        let mut vchan = XenVchan { ctrl, event_fd: -1 };
        // libxenvchan_server_init and libxenvchan_client_init malloc() the structure and never
        // initialise `blocking` (read in libxenvchan 4.17's init.c, and visible in the bookworm
        // binary), so it holds garbage. Blocking mode would make read/write wait on the event
        // channel whenever a peer moved the shared indexes so that "ready" shrank under us: a
        // qube could freeze the compositor. Clear it before anything else runs.
        // SAFETY: `ctrl` points at a live `struct libxenvchan` that the init call allocated and
        // that only this thread knows about yet. `flags` is the byte at offset 28 that holds
        // its bit-fields (layout checked in `ffi::Libxenvchan`). It is accessed through a raw
        // pointer (no reference to C memory is formed), read, and written back with only the
        // `blocking` bit cleared, exactly as the C compiler's own code for `ctrl->blocking = 0`.
        unsafe {
            let flags = &raw mut (*vchan.ctrl.as_ptr()).flags;
            flags.write(flags.read() & !ffi::BLOCKING_BIT);
        }
        // SAFETY: `ctrl` is the live handle adopted above.
        let fd = unsafe { ffi::libxenvchan_fd_for_select(vchan.ctrl.as_ptr()) };
        if fd < 0 {
            return Err(io::Error::other(
                "libxenvchan_fd_for_select returned no descriptor",
            ));
        }
        vchan.event_fd = fd;
        // Defence in depth: with O_NONBLOCK, libxenvchan_wait (a read(2) of the evtchn device)
        // fails with EAGAIN instead of blocking if it is ever called with nothing pending.
        // SAFETY: F_GETFL on an fd the handle owns; no pointers involved.
        let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if fl < 0 {
            return Err(xen_error("fcntl(F_GETFL) on the event channel"));
        }
        // SAFETY: F_SETFL with the flags just read plus O_NONBLOCK, on the same owned fd.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } < 0 {
            return Err(xen_error("fcntl(F_SETFL) on the event channel"));
        }
        Ok(vchan)
    }

    fn ctrl(&mut self) -> *mut ffi::Libxenvchan {
        self.ctrl.as_ptr()
    }
}

impl Drop for XenVchan {
    fn drop(&mut self) {
        // SAFETY: `ctrl` came from a successful init, is closed exactly once (here), and no
        // borrow of it (nor of its event fd, see `poll_fd`) outlives `self`. libxenvchan_close
        // marks our side dead in the shared page, notifies the peer, unmaps or unshares the
        // ring, closes the event channel and, for a server, removes the xenstore entries.
        unsafe { ffi::libxenvchan_close(self.ctrl.as_ptr()) };
    }
}

// The SAFETY argument shared by the calls below: `self.ctrl` is the live handle (closed only
// in Drop), and `&mut self` on a type that is not Sync means no other call on this handle runs
// concurrently; libxenvchan has no locking of its own and no thread affinity.
impl Ring for XenVchan {
    fn clear_events(&mut self) -> io::Result<()> {
        for _ in 0..MAX_EVENTS_PER_RECV {
            let mut pfd = libc::pollfd {
                fd: self.event_fd,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid, exclusively borrowed pollfd; timeout 0, so it never blocks.
            let r = unsafe { libc::poll(&mut pfd, 1, 0) };
            if r < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if pfd.revents & (libc::POLLERR | libc::POLLNVAL) != 0 {
                return Err(io::Error::other("the vchan's event channel failed"));
            }
            if r == 0 || pfd.revents & libc::POLLIN == 0 {
                return Ok(());
            }
            // The fd is readable, so the pending-port read inside libxenvchan_wait returns at
            // once (and the fd is O_NONBLOCK besides); it then unmasks the port so the next
            // notification can arrive.
            // SAFETY: see the comment on this impl.
            if unsafe { ffi::libxenvchan_wait(self.ctrl()) } < 0 {
                let err = io::Error::last_os_error();
                match err.kind() {
                    io::ErrorKind::WouldBlock => return Ok(()),
                    io::ErrorKind::Interrupted => continue,
                    _ => return Err(err),
                }
            }
        }
        Ok(())
    }

    fn is_open(&mut self) -> bool {
        // 0: closed (or the peer crashed); 1: both open; 2: a server whose client has not come
        // yet. The value comes from the shared page, so a hostile peer can write anything:
        // only 0 means closed.
        // SAFETY: see the comment on this impl.
        unsafe { ffi::libxenvchan_is_open(self.ctrl()) != 0 }
    }

    fn data_ready(&mut self) -> usize {
        // SAFETY: see the comment on this impl.
        let n = unsafe { ffi::libxenvchan_data_ready(self.ctrl()) };
        usize::try_from(n).unwrap_or(0)
    }

    fn buffer_space(&mut self) -> usize {
        // SAFETY: see the comment on this impl.
        let n = unsafe { ffi::libxenvchan_buffer_space(self.ctrl()) };
        usize::try_from(n).unwrap_or(0)
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: see the comment on this impl. `buf` is a valid, exclusively borrowed buffer
        // of `buf.len()` bytes; libxenvchan_read copies at most `size` bytes into it and keeps
        // no pointer to it. With `blocking` cleared it never waits.
        let n = unsafe { ffi::libxenvchan_read(self.ctrl(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if !self.is_open() {
                return Ok(0);
            }
            return Err(xen_error("libxenvchan_read"));
        }
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // SAFETY: see the comment on this impl. `data` is valid for `data.len()` bytes and only
        // read; libxenvchan_write keeps no pointer to it. With `blocking` cleared it writes at
        // most what fits and never waits.
        let n = unsafe { ffi::libxenvchan_write(self.ctrl(), data.as_ptr().cast(), data.len()) };
        if n < 0 {
            let err = xen_error("libxenvchan_write");
            if !self.is_open() {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the peer closed the vchan",
                ));
            }
            return Err(err);
        }
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// Which end of the vchan this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VchanRole {
    /// Allocated the ring and published it in xenstore (the GUI domain).
    Server,
    /// Mapped the server's ring (the agent).
    Client,
}

/// A [`Transport`] over a libxenvchan ring. Non-blocking; cannot pass file descriptors.
///
/// `Send` (the handle can move to the event-loop thread) but not `Sync`: libxenvchan does no
/// locking, so two threads must never call into one handle at once, and every method that
/// calls into it takes `&mut self`.
pub struct VchanTransport {
    ring: XenVchan,
    scratch: Vec<u8>,
    peer: DomId,
    role: VchanRole,
}

// SAFETY: the handle is heap memory plus file descriptors and grant mappings owned by this
// process, with no thread-local state in libxenvchan, so it may be used from another thread
// after a move. `NonNull` keeps the type !Sync, so it is never used from two threads at once.
unsafe impl Send for VchanTransport {}

impl fmt::Debug for VchanTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VchanTransport")
            .field("peer", &self.peer)
            .field("role", &self.role)
            .field("event_fd", &self.ring.event_fd)
            .finish()
    }
}

fn check_ring_size(what: &str, bytes: usize) -> io::Result<()> {
    if bytes == 0 || bytes > MAX_RING_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} ring of {bytes} bytes; libxenvchan allows 1..={MAX_RING_BYTES}"),
        ));
    }
    Ok(())
}

impl VchanTransport {
    /// Agent side: creates the vchan for the GUI domain `gui` at
    /// [`server_xs_path`]`(gui, GUI_VCHAN_PORT)` in this domain's xenstore tree, with the ring
    /// sizes of this module, and grants its pages to `gui` only.
    pub fn agent_listen(gui: DomId) -> io::Result<Self> {
        Self::listen(
            gui,
            &server_xs_path(gui, GUI_VCHAN_PORT),
            GUI_TO_AGENT_RING_BYTES,
            AGENT_TO_GUI_RING_BYTES,
        )
    }

    /// GUI side: connects to the vchan that the agent in domain `agent` offers to this domain
    /// (`own`, see [`own_domid`]; 0 in dom0). `agent` is the domain id the domain manager
    /// started the qube with (decision 2): the ring is read from that domain's xenstore tree
    /// and its event channel is bound to that domain, so no other qube can stand in for it.
    /// Fails until the agent has created its server; retry (or watch the path).
    pub fn gui_connect(agent: DomId, own: DomId) -> io::Result<Self> {
        Self::connect(agent, &client_xs_path(agent, own, GUI_VCHAN_PORT))
    }

    /// Creates a vchan server for `peer` at `xs_path`, with a receive ring of at least
    /// `recv_min` bytes and a send ring of at least `send_min` bytes (each at most 1 MiB;
    /// libxenvchan rounds up to a power of two). Does not wait for the client: until it
    /// connects, `recv` would block and sends fill the ring.
    pub fn listen(
        peer: DomId,
        xs_path: &str,
        recv_min: usize,
        send_min: usize,
    ) -> io::Result<Self> {
        check_ring_size("receive", recv_min)?;
        check_ring_size("send", send_min)?;
        let path = xs_path_cstring(xs_path)?;
        // SAFETY: a NULL logger is allowed (the library logs to stderr); `path` is a
        // NUL-terminated string that lives across the call (the library strdup()s it); the ring
        // sizes were checked against libxenvchan's limit.
        let ctrl = unsafe {
            ffi::libxenvchan_server_init(
                ptr::null_mut(),
                c_int::from(peer.get()),
                path.as_ptr(),
                recv_min,
                send_min,
            )
        };
        let Some(ctrl) = NonNull::new(ctrl) else {
            return Err(xen_error("libxenvchan_server_init"));
        };
        Ok(VchanTransport {
            ring: XenVchan::adopt(ctrl)?,
            scratch: Vec::new(),
            peer,
            role: VchanRole::Server,
        })
    }

    /// Connects as a vchan client to the server in domain `peer` that published its ring at
    /// the absolute `xs_path`. Fails if the server is not there yet; retry later (or watch
    /// the path).
    pub fn connect(peer: DomId, xs_path: &str) -> io::Result<Self> {
        let path = xs_path_cstring(xs_path)?;
        // SAFETY: a NULL logger is allowed; `path` is NUL-terminated and outlives the call,
        // which does not keep it.
        let ctrl = unsafe {
            ffi::libxenvchan_client_init(ptr::null_mut(), c_int::from(peer.get()), path.as_ptr())
        };
        let Some(ctrl) = NonNull::new(ctrl) else {
            return Err(xen_error("libxenvchan_client_init"));
        };
        Ok(VchanTransport {
            ring: XenVchan::adopt(ctrl)?,
            scratch: Vec::new(),
            peer,
            role: VchanRole::Client,
        })
    }

    /// The domain at the other end, as given when the channel was created: never learnt from
    /// the peer.
    pub fn peer_domid(&self) -> DomId {
        self.peer
    }

    pub fn role(&self) -> VchanRole {
        self.role
    }
}

impl Transport for VchanTransport {
    fn send(&mut self, bufs: &[IoSlice<'_>], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        ring_send(&mut self.ring, &mut self.scratch, bufs, fds)
    }

    fn recv(&mut self, buf: &mut [u8], _fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        ring_recv(&mut self.ring, buf)
    }

    fn can_pass_fds(&self) -> bool {
        false
    }

    /// The event-channel fd. Wait for *readable* only: the evtchn device always polls
    /// writable, and one notification stands for "something changed" in either direction. On
    /// every wake call `recv` (through `receive`) until it would block, then `flush` if output
    /// is queued: `recv` consumes the notification, which may have announced free space.
    fn poll_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `event_fd` was checked non-negative in `adopt` and belongs to the vchan's
        // evtchn handle, which stays open until libxenvchan_close in Drop; the returned borrow
        // is tied to `&self`, so it cannot outlive the handle.
        unsafe { BorrowedFd::borrow_raw(self.ring.event_fd) }
    }

    fn capabilities(&self) -> Capabilities {
        vchan_capabilities()
    }
}

/// The GUI domain's connection to an agent over a vchan, with grant pools mapped from the
/// channel's domain id only.
pub fn gui_connection(
    transport: VchanTransport,
    limits: SessionLimits,
    stream_limits: StreamLimits,
) -> GuiConnection<VchanTransport> {
    let capabilities = transport.capabilities();
    let mapper = GrantPoolMapper::for_channel(&transport);
    GuiConnection::with_mapper(
        transport,
        limits,
        stream_limits,
        capabilities,
        Box::new(mapper),
    )
}

/// What both ends offer on a vchan: no fd passing, so no memfd pools; grants instead, and
/// inline pixels for whatever cannot be granted.
pub fn vchan_capabilities() -> Capabilities {
    Capabilities::XEN_GRANTS
        | Capabilities::INLINE_PIXELS
        | Capabilities::LZ4
        | Capabilities::CLIPBOARD_PNG
        | Capabilities::NOTIFICATIONS
}

// -------------------------------------------------------------------------------------------
// Grant arithmetic
// -------------------------------------------------------------------------------------------

/// Pages (so grant refs) that hold `size` bytes.
pub fn pages_for(size: u64) -> u64 {
    size.div_ceil(XEN_PAGE_BYTES)
}

fn grant_error(message: String) -> PoolError {
    PoolError::Map(io::Error::new(io::ErrorKind::InvalidData, message))
}

/// Checks an agent's grant pool before anything touches Xen: a size inside the protocol's
/// bounds, exactly one ref per 4 KiB page (the decoder checked it; this is the second check),
/// and no more refs than this GUI domain maps for one pool. Returns the page count.
fn check_grant_pool(size: u64, ref_count: usize, max_refs: usize) -> Result<u32, PoolError> {
    if size == 0 || size > MAX_POOL_BYTES {
        return Err(grant_error(format!(
            "pool of {size} bytes; the protocol allows 1..={MAX_POOL_BYTES}"
        )));
    }
    let pages = pages_for(size);
    if ref_count as u64 != pages {
        return Err(PoolError::GrantCount {
            refs: ref_count,
            pages,
        });
    }
    if ref_count > max_refs.min(MAX_GRANT_REFS) {
        return Err(grant_error(format!(
            "{ref_count} grant refs in one pool; this GUI domain maps at most {}",
            max_refs.min(MAX_GRANT_REFS)
        )));
    }
    u32::try_from(ref_count).map_err(|_| grant_error(format!("{ref_count} grant refs")))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while the lock was held cannot have left a raw handle half-updated (the guarded
    // value is a pointer that never changes), so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A raw gntdev/gntalloc handle pointer, made movable between threads.
struct RawHandle(NonNull<ffi::XengntdevHandle>);

// SAFETY: a xengnttab/xengntshr handle is heap memory holding a file descriptor, with no thread
// affinity (xengnttab.h only restricts use after fork). It is only ever used under the Mutex
// of `GrantTable` / `GrantSharer`, so calls on one handle never run concurrently.
unsafe impl Send for RawHandle {}

// -------------------------------------------------------------------------------------------
// GUI side: mapping grants read-only
// -------------------------------------------------------------------------------------------

/// An open gntdev handle (`xengnttab_open`), shared by a mapper and the pools it mapped (each
/// pool must be unmapped through the handle that mapped it). Closed when the last user drops.
struct GrantTable {
    raw: Mutex<RawHandle>,
}

impl fmt::Debug for GrantTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GrantTable")
    }
}

impl GrantTable {
    fn open() -> io::Result<Arc<Self>> {
        // SAFETY: a NULL logger is allowed (the library logs to stderr); flags must be 0.
        let raw = unsafe { ffi::xengnttab_open(ptr::null_mut(), 0) };
        let raw = NonNull::new(raw)
            .ok_or_else(|| xen_error("xengnttab_open (is /dev/xen/gntdev there?)"))?;
        Ok(Arc::new(GrantTable {
            raw: Mutex::new(RawHandle(raw)),
        }))
    }

    /// Maps `refs` (granted by `domid`) read-only into one contiguous range of
    /// `refs.len()` pages.
    fn map_read_only(&self, domid: DomId, refs: &mut [u32]) -> io::Result<NonNull<u8>> {
        let count = u32::try_from(refs.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many grant refs"))?;
        let handle = lock(&self.raw);
        // SAFETY: the handle is live (closed only in Drop, after every pool holding this Arc
        // is gone) and used under its lock. `refs` is valid for `count` u32s; the header
        // declares it non-const, so an exclusively borrowed copy is passed, not the message's
        // own refs. PROT_READ makes gntdev map with GNTMAP_readonly: the hypervisor itself
        // refuses writes through this mapping, whatever the agent granted. On failure
        // (including partial failure) nothing stays mapped and NULL comes back (xengnttab.h).
        let addr = unsafe {
            ffi::xengnttab_map_domain_grant_refs(
                handle.0.as_ptr(),
                count,
                u32::from(domid.get()),
                refs.as_mut_ptr(),
                ffi::PROT_READ,
            )
        };
        NonNull::new(addr.cast::<u8>()).ok_or_else(|| xen_error("xengnttab_map_domain_grant_refs"))
    }
}

impl Drop for GrantTable {
    fn drop(&mut self) {
        let handle = self.raw.get_mut().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: the handle came from xengnttab_open and is closed exactly once; every mapping
        // made through it belonged to a GrantPool holding an Arc to this table, so all of
        // them were unmapped before the last Arc dropped.
        unsafe { ffi::xengnttab_close(handle.0.as_ptr()) };
    }
}

/// Maps pools for one agent connection over a vchan: grant refs read-only from the channel's
/// domain, inline pools in local memory, memfds refused.
#[derive(Debug)]
pub struct GrantPoolMapper {
    /// The domain the channel was created for. Never taken from a message (decision 2).
    domid: DomId,
    max_refs: usize,
    /// Opened on the first grant pool, so refusals never touch Xen.
    table: Option<Arc<GrantTable>>,
}

impl GrantPoolMapper {
    /// A mapper for the domain the domain manager created this connection's channel for.
    pub fn new(peer: DomId) -> Self {
        GrantPoolMapper {
            domid: peer,
            max_refs: DEFAULT_MAX_REFS_PER_POOL,
            table: None,
        }
    }

    /// A mapper for the domain at the other end of `transport`.
    pub fn for_channel(transport: &VchanTransport) -> Self {
        Self::new(transport.peer_domid())
    }

    /// Changes the cap on refs in one pool (at most [`MAX_GRANT_REFS`]). Raise it only together
    /// with the gntdev driver's `limit` module parameter.
    pub fn with_max_refs(mut self, max_refs: usize) -> Self {
        self.max_refs = max_refs.min(MAX_GRANT_REFS);
        self
    }

    pub fn domid(&self) -> DomId {
        self.domid
    }

    fn table(&mut self) -> Result<Arc<GrantTable>, PoolError> {
        if let Some(table) = &self.table {
            return Ok(Arc::clone(table));
        }
        let table = GrantTable::open().map_err(PoolError::Map)?;
        self.table = Some(Arc::clone(&table));
        Ok(table)
    }
}

impl PoolMapper for GrantPoolMapper {
    fn map_pool(
        &mut self,
        _pool: PoolId,
        size: u64,
        backing: &PoolBacking,
        fd: Option<OwnedFd>,
    ) -> Result<Box<dyn PoolMemory>, PoolError> {
        // No descriptor can arrive on a vchan; drop (close) one if a caller passed it anyway.
        drop(fd);
        match backing {
            PoolBacking::Inline => Ok(Box::new(InlinePool::new(size))),
            PoolBacking::MemFd => Err(PoolError::UnsupportedBacking(
                "memfd (a vchan cannot carry file descriptors)",
            )),
            PoolBacking::XenGrants(untrusted_refs) => {
                let pages = check_grant_pool(size, untrusted_refs.len(), self.max_refs)?;
                let table = self.table()?;
                Ok(Box::new(GrantPool::map(
                    table,
                    self.domid,
                    size,
                    pages,
                    untrusted_refs,
                )?))
            }
        }
    }
}

/// An agent's pool: its grant refs mapped read-only in the GUI domain. Unmapped on drop.
pub struct GrantPool {
    table: Arc<GrantTable>,
    addr: NonNull<u8>,
    pages: u32,
    len: u64,
}

// SAFETY: the mapping is plain process memory that any thread may read, and unmapping goes
// through the shared table under its lock; nothing in a GrantPool is tied to a thread.
unsafe impl Send for GrantPool {}

impl fmt::Debug for GrantPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantPool")
            .field("len", &self.len)
            .field("pages", &self.pages)
            .finish()
    }
}

impl GrantPool {
    fn map(
        table: Arc<GrantTable>,
        domid: DomId,
        size: u64,
        pages: u32,
        untrusted_refs: &[u32],
    ) -> Result<Self, PoolError> {
        if u64::from(pages) * XEN_PAGE_BYTES < size || untrusted_refs.len() != pages as usize {
            return Err(PoolError::GrantCount {
                refs: untrusted_refs.len(),
                pages: pages_for(size),
            });
        }
        // The values are only grant numbers for the hypervisor to look up in `domid`'s table:
        // a wrong or foreign-looking ref simply fails to map.
        let mut refs = untrusted_refs.to_vec();
        let addr = table
            .map_read_only(domid, &mut refs)
            .map_err(PoolError::Map)?;
        Ok(GrantPool {
            table,
            addr,
            pages,
            len: size,
        })
    }
}

impl PoolMemory for GrantPool {
    fn len(&self) -> u64 {
        self.len
    }

    fn read(&self, offset: u64, dst: &mut [u8]) {
        let in_range = offset
            .checked_add(dst.len() as u64)
            .is_some_and(|end| end <= self.len);
        if !in_range {
            return;
        }
        // SAFETY: the range lies inside the first `len` bytes of a mapping of `pages` pages
        // (pages × 4096 ≥ len, checked in `map`), which stays mapped while `self` lives. A
        // mapped grant cannot be revoked by the granting domain: Xen keeps the page until we
        // unmap it, even if that domain dies, so the read cannot fault. The agent may write
        // the pages at any time; a byte copy of such memory yields some mix of old and new
        // pixel values, which is all we rely on (as for memfd pools). `dst` is distinct and
        // exclusively borrowed.
        unsafe {
            ptr::copy_nonoverlapping(
                self.addr.as_ptr().add(offset as usize),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
    }

    fn as_ptr(&self) -> Option<NonNull<u8>> {
        Some(self.addr)
    }

    fn write_inline(&mut self, _pixels: &InlinePixels) -> Result<(), PoolError> {
        Err(PoolError::UnsupportedBacking(
            "inline writes into a grant pool",
        ))
    }
}

impl Drop for GrantPool {
    fn drop(&mut self) {
        let handle = lock(&self.table.raw);
        // SAFETY: `addr` and `pages` are exactly what xengnttab_map_domain_grant_refs returned
        // and was asked for, on this same handle, which is still open (we hold an Arc to it).
        // Nothing borrows the mapping past `self` (reads copy out; `as_ptr` users must not
        // outlive the pool). Unmapped exactly once.
        let rc = unsafe {
            ffi::xengnttab_unmap(handle.0.as_ptr(), self.addr.as_ptr().cast(), self.pages)
        };
        if rc != 0 {
            tracing::warn!(
                pages = self.pages,
                error = %io::Error::last_os_error(),
                "xengnttab_unmap failed; the grant mapping leaks until the handle closes"
            );
        }
    }
}

// -------------------------------------------------------------------------------------------
// Agent side: sharing pages
// -------------------------------------------------------------------------------------------

/// An open gntalloc handle (`xengntshr_open`). Clones share it; one can back many
/// [`SharedGrants`] (one fd for all of an agent's pools). It closes when the last clone, and
/// the last pool shared through it, is gone.
#[derive(Clone)]
pub struct GrantSharer {
    inner: Arc<SharerHandle>,
}

impl fmt::Debug for GrantSharer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GrantSharer")
    }
}

struct SharerHandle {
    raw: Mutex<RawHandle>,
}

impl GrantSharer {
    pub fn open() -> io::Result<Self> {
        // SAFETY: a NULL logger is allowed (the library logs to stderr); flags must be 0.
        let raw = unsafe { ffi::xengntshr_open(ptr::null_mut(), 0) };
        let raw = NonNull::new(raw)
            .ok_or_else(|| xen_error("xengntshr_open (is /dev/xen/gntalloc there?)"))?;
        Ok(GrantSharer {
            inner: Arc::new(SharerHandle {
                raw: Mutex::new(RawHandle(raw)),
            }),
        })
    }
}

impl Drop for SharerHandle {
    fn drop(&mut self) {
        let handle = self.raw.get_mut().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: the handle came from xengntshr_open and is closed exactly once, when the last
        // Arc goes; every SharedGrants holds a clone, so all pages shared through this handle
        // were unshared before.
        unsafe { ffi::xengntshr_close(handle.0.as_ptr()) };
    }
}

/// The agent's side of a grant pool: `size` bytes of pages shared read-only with the GUI
/// domain, mapped read-write here. Unshared on drop.
pub struct SharedGrants {
    sharer: GrantSharer,
    addr: NonNull<u8>,
    pages: u32,
    size: u64,
    refs: Vec<u32>,
    peer: DomId,
}

// SAFETY: the mapping is process memory owned by this value; unsharing goes through the
// sharer's lock. Nothing is tied to a thread.
unsafe impl Send for SharedGrants {}

impl fmt::Debug for SharedGrants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedGrants")
            .field("size", &self.size)
            .field("pages", &self.pages)
            .field("peer", &self.peer)
            .finish()
    }
}

/// Checks an agent-side pool size and returns its page count.
fn shared_pool_pages(size: u64) -> io::Result<u32> {
    if size == 0 || size > MAX_POOL_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("pool of {size} bytes; the protocol allows 1..={MAX_POOL_BYTES}"),
        ));
    }
    // At most MAX_GRANT_REFS (262,144): fits u32 and c_int.
    u32::try_from(pages_for(size))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pool too large"))
}

impl SharedGrants {
    /// Allocates `size` bytes (rounded up to pages) and grants them read-only to `peer_domid`
    /// (the GUI domain), through a gntalloc handle of its own.
    pub fn create(size: u64, peer_domid: DomId) -> io::Result<Self> {
        let pages = shared_pool_pages(size)?;
        Self::create_with(&GrantSharer::open()?, pages, size, peer_domid)
    }

    /// As [`SharedGrants::create`], through a shared gntalloc handle (one fd for all pools).
    pub fn create_in(sharer: &GrantSharer, size: u64, peer_domid: DomId) -> io::Result<Self> {
        let pages = shared_pool_pages(size)?;
        Self::create_with(sharer, pages, size, peer_domid)
    }

    fn create_with(sharer: &GrantSharer, pages: u32, size: u64, peer: DomId) -> io::Result<Self> {
        let count = c_int::try_from(pages)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pool too large"))?;
        let mut refs = vec![0u32; pages as usize];
        let addr = {
            let handle = lock(&sharer.inner.raw);
            // SAFETY: the handle is live (the sharer's Arc keeps it open) and used under its
            // lock. `refs` has room for exactly `count` refs, which the call fills in. The
            // last argument, writable = 0, grants the pages read-only: the GUI domain can map
            // them only for reading, so this process is the only writer, which is what makes
            // `bytes_mut` sound. On failure NULL comes back and nothing is allocated.
            unsafe {
                ffi::xengntshr_share_pages(
                    handle.0.as_ptr(),
                    u32::from(peer.get()),
                    count,
                    refs.as_mut_ptr(),
                    0,
                )
            }
        };
        let addr = NonNull::new(addr.cast::<u8>()).ok_or_else(|| {
            xen_error("xengntshr_share_pages (is xen_gntalloc's limit high enough?)")
        })?;
        Ok(SharedGrants {
            sharer: sharer.clone(),
            addr,
            pages,
            size,
            refs,
            peer,
        })
    }

    /// The pool's bytes, to draw into.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: `addr` maps `pages` × 4096 ≥ `size` bytes read-write, live until drop. This
        // process is the only writer (the GUI domain's grant is read-only) and `&mut self`
        // makes this the only reference here.
        unsafe { std::slice::from_raw_parts_mut(self.addr.as_ptr(), self.size as usize) }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: as in `bytes_mut`; `&self` excludes any `&mut` to the same memory, and no one
        // else writes it.
        unsafe { std::slice::from_raw_parts(self.addr.as_ptr(), self.size as usize) }
    }

    /// One grant ref per page, in order: the `XenGrants` backing of `pool_create`.
    pub fn refs(&self) -> &[u32] {
        &self.refs
    }

    pub fn len(&self) -> u64 {
        self.size
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    pub fn peer_domid(&self) -> DomId {
        self.peer
    }

    /// The `pool_create` that announces this pool (send it with `AgentConnection::send`).
    pub fn pool_create_message(&self, pool: PoolId) -> AgentMessage {
        AgentMessage::PoolCreate {
            pool,
            size: self.size,
            backing: PoolBacking::XenGrants(self.refs.clone()),
        }
    }
}

impl Drop for SharedGrants {
    fn drop(&mut self) {
        let handle = lock(&self.sharer.inner.raw);
        // SAFETY: `addr`/`pages` are exactly what xengntshr_share_pages returned and was asked
        // for, on this handle, which our sharer clone keeps open. No slice from `bytes*`
        // outlives `self`. If the GUI domain still maps the pages, gntalloc keeps them alive
        // until it unmaps; our mapping goes away now. Unshared exactly once.
        let rc = unsafe {
            ffi::xengntshr_unshare(handle.0.as_ptr(), self.addr.as_ptr().cast(), self.pages)
        };
        if rc != 0 {
            tracing::warn!(
                pages = self.pages,
                error = %io::Error::last_os_error(),
                "xengntshr_unshare failed"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::os::fd::AsFd;
    use std::path::Path;

    use super::*;

    fn dom(raw: u32) -> DomId {
        DomId::new(raw).unwrap()
    }

    fn pool(raw: u32) -> PoolId {
        PoolId::new(raw).unwrap()
    }

    fn xen_device_present(name: &str) -> bool {
        Path::new("/dev/xen").join(name).exists()
    }

    // ---- compile-time properties ----

    trait AmbiguousIfSync<A> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfSync<()> for T {}
    impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
    // Compiles only while VchanTransport is *not* Sync: for a Sync type both impls apply and
    // the call is ambiguous.
    const _: fn() = || <VchanTransport as AmbiguousIfSync<_>>::check();

    fn assert_send<T: Send>() {}

    #[test]
    fn handles_are_send() {
        assert_send::<VchanTransport>();
        assert_send::<GrantPool>();
        assert_send::<SharedGrants>();
        assert_send::<GrantPoolMapper>();
    }

    // ---- domain ids and paths ----

    #[test]
    fn reserved_domain_ids_are_refused() {
        assert_eq!(DomId::new(0), Some(DomId::DOM0));
        assert_eq!(DomId::new(0x7FEF).map(DomId::get), Some(0x7FEF));
        assert_eq!(DomId::new(0x7FF0), None); // DOMID_FIRST_RESERVED
        assert_eq!(DomId::new(0x7FF0 + 2), None); // DOMID_SELF
        assert_eq!(DomId::new(u32::MAX), None);
    }

    #[test]
    fn xenstore_paths_follow_the_convention_and_fit_libxenvchan() {
        assert_eq!(server_xs_path(dom(12), 6000), "data/vchan/12/6000");
        assert_eq!(
            client_xs_path(dom(0), dom(12), 6000),
            "/local/domain/0/data/vchan/12/6000"
        );
        let longest = client_xs_path(dom(0x7FEF), dom(0x7FEF), u16::MAX);
        assert!(longest.len() <= MAX_XS_PATH_BYTES, "{longest}");
        assert!(longest.len() + LONGEST_VCHAN_KEY.len() < LIBXENVCHAN_PATH_BUFFER);
        assert!(xs_path_cstring(&longest).is_ok());
    }

    #[test]
    fn bad_xenstore_paths_are_refused_before_calling_xen() {
        let too_long = format!("/local/domain/0/data/{}", "x".repeat(MAX_XS_PATH_BYTES));
        for path in ["", "data/vchan/1\0/6000", too_long.as_str()] {
            let err = VchanTransport::connect(dom(0), path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path:?}");
            let err = VchanTransport::listen(dom(1), path, 4096, 4096).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{path:?}");
        }
    }

    #[test]
    fn ring_sizes_are_checked_before_calling_xen() {
        let path = server_xs_path(dom(3), GUI_VCHAN_PORT);
        for (recv, send) in [
            (0, 4096),
            (4096, 0),
            (MAX_RING_BYTES + 1, 4096),
            (4096, usize::MAX),
        ] {
            let err = VchanTransport::listen(dom(3), &path, recv, send).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        // The chosen sizes are legal, and their pages fit the default gntalloc limit (1024
        // pages) many times over: ring pages plus the shared control page.
        for size in [AGENT_TO_GUI_RING_BYTES, GUI_TO_AGENT_RING_BYTES] {
            assert!(check_ring_size("test", size).is_ok());
        }
        let pages = (AGENT_TO_GUI_RING_BYTES + GUI_TO_AGENT_RING_BYTES) / 4096 + 1;
        assert_eq!(pages, 21);
    }

    #[test]
    fn domid_from_xenstore_is_parsed_strictly() {
        assert_eq!(parse_domid(b"0").unwrap(), DomId::DOM0);
        assert_eq!(parse_domid(b"17").unwrap(), dom(17));
        for bad in [
            &b""[..],
            b"-1",
            b"+3",
            b" 3",
            b"3\n",
            b"32752",
            b"99999999999",
            b"\xff",
        ] {
            assert_eq!(
                parse_domid(bad).unwrap_err().kind(),
                io::ErrorKind::InvalidData
            );
        }
    }

    // ---- without Xen, every entry point fails cleanly ----

    #[test]
    fn vchan_server_without_xen_fails_cleanly() {
        if xen_device_present("gntalloc") {
            return; // a Xen domain: this test is about machines without Xen
        }
        let err = VchanTransport::agent_listen(DomId::DOM0).unwrap_err();
        assert!(err.to_string().contains("libxenvchan_server_init"), "{err}");
    }

    #[test]
    fn vchan_client_without_xen_fails_cleanly() {
        if xen_device_present("xenbus") || Path::new("/run/xenstored/socket").exists() {
            return;
        }
        let err = VchanTransport::gui_connect(dom(5), DomId::DOM0).unwrap_err();
        assert!(err.to_string().contains("libxenvchan_client_init"), "{err}");
    }

    #[test]
    fn own_domid_without_xen_fails_cleanly() {
        if xen_device_present("xenbus") || Path::new("/run/xenstored/socket").exists() {
            return;
        }
        assert!(own_domid().is_err());
    }

    #[test]
    fn mapping_grants_without_xen_fails_cleanly() {
        if xen_device_present("gntdev") {
            return;
        }
        let mut mapper = GrantPoolMapper::new(dom(7));
        let backing = PoolBacking::XenGrants(vec![8, 9]);
        let err = mapper.map_pool(pool(1), 8192, &backing, None).unwrap_err();
        assert!(matches!(err, PoolError::Map(_)), "{err}");
        assert!(err.to_string().contains("xengnttab_open"), "{err}");
        // The failed open is not cached: a later attempt tries again.
        assert!(mapper.table.is_none());
    }

    #[test]
    fn sharing_grants_without_xen_fails_cleanly() {
        if xen_device_present("gntalloc") {
            return;
        }
        let err = SharedGrants::create(4096, DomId::DOM0).unwrap_err();
        assert!(err.to_string().contains("xengntshr_open"), "{err}");
        assert!(GrantSharer::open().is_err());
    }

    // ---- the mapper refuses bad pools before touching Xen ----

    #[test]
    fn mapper_refuses_memfd() {
        let mut mapper = GrantPoolMapper::new(dom(7));
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        for fd in [Some(fd), None] {
            let err = mapper
                .map_pool(pool(1), 4096, &PoolBacking::MemFd, fd)
                .unwrap_err();
            assert!(matches!(err, PoolError::UnsupportedBacking(_)), "{err}");
        }
        assert!(mapper.table.is_none(), "a refusal must not open gntdev");
    }

    #[test]
    fn mapper_refuses_mismatched_ref_counts_and_sizes() {
        let mut mapper = GrantPoolMapper::new(dom(7));
        let cases: [(u64, usize); 6] = [
            (4096, 0),
            (4096, 2),
            (4097, 1),
            (8192, 3),
            (0, 0),
            (MAX_POOL_BYTES + 1, MAX_GRANT_REFS + 1),
        ];
        for (size, refs) in cases {
            let backing = PoolBacking::XenGrants(vec![1; refs]);
            let err = mapper.map_pool(pool(1), size, &backing, None).unwrap_err();
            assert!(
                matches!(err, PoolError::GrantCount { .. })
                    || matches!(err, PoolError::Map(ref e) if e.kind() == io::ErrorKind::InvalidData),
                "{err}"
            );
            assert!(
                err.is_violation() || size == 0 || size > MAX_POOL_BYTES,
                "{err}"
            );
        }
        assert!(mapper.table.is_none(), "a refusal must not open gntdev");
    }

    #[test]
    fn mapper_caps_refs_per_pool() {
        let mut mapper = GrantPoolMapper::new(dom(7));
        // 65,537 pages: one more than gntdev maps in one request by default.
        let size = (DEFAULT_MAX_REFS_PER_POOL as u64 + 1) * XEN_PAGE_BYTES;
        let backing = PoolBacking::XenGrants(vec![1; DEFAULT_MAX_REFS_PER_POOL + 1]);
        let err = mapper.map_pool(pool(1), size, &backing, None).unwrap_err();
        assert!(err.to_string().contains("at most 65536"), "{err}");
        assert!(mapper.table.is_none());
        // The cap can be raised only up to the protocol's own limit.
        let mapper = GrantPoolMapper::new(dom(7)).with_max_refs(usize::MAX);
        assert_eq!(mapper.max_refs, MAX_GRANT_REFS);
    }

    #[test]
    fn mapper_takes_its_domain_from_the_channel_side() {
        // The mapper has no way to learn a domid from a message: `map_pool` takes none.
        assert_eq!(GrantPoolMapper::new(dom(42)).domid(), dom(42));
    }

    #[test]
    fn mapper_delegates_inline_pools() {
        let mut mapper = GrantPoolMapper::new(dom(7));
        let mut memory = mapper
            .map_pool(pool(1), 64, &PoolBacking::Inline, None)
            .unwrap();
        assert_eq!(memory.len(), 64);
        let pixels = InlinePixels::new(16, 8, 8, 1, vec![5; 8]).unwrap();
        memory.write_inline(&pixels).unwrap();
        let mut out = [0u8; 8];
        memory.read(16, &mut out);
        assert_eq!(out, [5; 8]);
        assert!(mapper.table.is_none());
    }

    // ---- arithmetic ----

    #[test]
    fn ref_count_arithmetic() {
        assert_eq!(pages_for(1), 1);
        assert_eq!(pages_for(4096), 1);
        assert_eq!(pages_for(4097), 2);
        assert_eq!(pages_for(1920 * 1080 * 4), 2025);
        assert_eq!(pages_for(3840 * 2160 * 4), 8100);
        assert_eq!(pages_for(MAX_POOL_BYTES), MAX_GRANT_REFS as u64);
        assert_eq!(MAX_GRANT_REFS, 262_144);
        // Qubes' per-window cap (16384 × 6144 × 4 / 4096) is below ours.
        const { assert!(98_304 < MAX_GRANT_REFS) };
        assert_eq!(
            check_grant_pool(4097, 2, DEFAULT_MAX_REFS_PER_POOL).unwrap(),
            2
        );
        assert_eq!(
            check_grant_pool(MAX_POOL_BYTES, MAX_GRANT_REFS, MAX_GRANT_REFS).unwrap() as usize,
            MAX_GRANT_REFS
        );
        assert_eq!(shared_pool_pages(4097).unwrap(), 2);
        assert_eq!(
            shared_pool_pages(0).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(shared_pool_pages(MAX_POOL_BYTES + 1).is_err());
        // A pool of the largest size still fits a share call's `int count`.
        assert!(c_int::try_from(shared_pool_pages(MAX_POOL_BYTES).unwrap()).is_ok());
    }

    #[test]
    fn vchan_offers_grants_and_no_memfds() {
        let capabilities = vchan_capabilities();
        assert!(capabilities.contains(Capabilities::XEN_GRANTS));
        assert!(!capabilities.contains(Capabilities::MEMFD_POOLS));
    }

    // ---- the non-blocking stream logic, over a fake ring ----

    /// A vchan in memory: `incoming` is what the peer wrote, `outgoing` what we wrote.
    #[derive(Default)]
    struct FakeRing {
        incoming: VecDeque<u8>,
        outgoing: Vec<u8>,
        capacity: usize,
        open: bool,
        /// Data the peer writes the moment we consume an event (tests ordering).
        on_clear: Vec<u8>,
        calls: Vec<&'static str>,
        writes: usize,
        /// Bytes that "arrive" between the two data_ready calls of a closing peer.
        late_bytes: Vec<u8>,
        shrink_on_read: bool,
    }

    impl FakeRing {
        fn new(capacity: usize) -> Self {
            FakeRing {
                capacity,
                open: true,
                ..Default::default()
            }
        }
    }

    impl Ring for FakeRing {
        fn clear_events(&mut self) -> io::Result<()> {
            self.calls.push("clear");
            let pending = std::mem::take(&mut self.on_clear);
            self.incoming.extend(pending);
            Ok(())
        }
        fn is_open(&mut self) -> bool {
            self.calls.push("is_open");
            if !self.open {
                let late = std::mem::take(&mut self.late_bytes);
                self.incoming.extend(late);
            }
            self.open
        }
        fn data_ready(&mut self) -> usize {
            self.calls.push("data_ready");
            self.incoming.len()
        }
        fn buffer_space(&mut self) -> usize {
            self.calls.push("buffer_space");
            self.capacity - self.outgoing.len()
        }
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls.push("read");
            if self.shrink_on_read {
                return Ok(0);
            }
            let n = buf.len().min(self.incoming.len());
            for b in buf.iter_mut().take(n) {
                *b = self.incoming.pop_front().unwrap_or(0);
            }
            Ok(n)
        }
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.calls.push("write");
            self.writes += 1;
            let n = data.len().min(self.capacity - self.outgoing.len());
            self.outgoing.extend_from_slice(&data[..n]);
            Ok(n)
        }
    }

    #[test]
    fn recv_consumes_events_before_looking_at_the_ring() {
        let mut ring = FakeRing::new(64);
        // The notification being consumed announced these bytes: they must be read now, or
        // they would sit in the ring with no notification left to wake us.
        ring.on_clear = b"hello".to_vec();
        let mut buf = [0u8; 16];
        assert_eq!(ring_recv(&mut ring, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(ring.calls[0], "clear");
    }

    #[test]
    fn recv_would_block_when_empty_and_open() {
        let mut ring = FakeRing::new(64);
        let err = ring_recv(&mut ring, &mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn recv_reads_what_is_ready_up_to_the_buffer() {
        let mut ring = FakeRing::new(64);
        ring.incoming.extend(b"abcdefgh");
        let mut buf = [0u8; 3];
        assert_eq!(ring_recv(&mut ring, &mut buf).unwrap(), 3);
        assert_eq!(&buf, b"abc");
        let mut buf = [0u8; 16];
        assert_eq!(ring_recv(&mut ring, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"defgh");
    }

    #[test]
    fn recv_drains_data_written_before_close_then_reports_eof() {
        let mut ring = FakeRing::new(64);
        ring.open = false;
        ring.incoming.extend(b"bye");
        let mut buf = [0u8; 16];
        assert_eq!(ring_recv(&mut ring, &mut buf).unwrap(), 3);
        assert_eq!(ring_recv(&mut ring, &mut buf).unwrap(), 0);
        assert_eq!(ring_recv(&mut ring, &mut buf).unwrap(), 0);
    }

    #[test]
    fn recv_rechecks_after_seeing_the_close() {
        // The peer wrote its last bytes and closed between our two looks.
        let mut ring = FakeRing::new(64);
        ring.open = false;
        ring.late_bytes = b"last".to_vec();
        let mut buf = [0u8; 16];
        assert_eq!(ring_recv(&mut ring, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"last");
    }

    #[test]
    fn recv_treats_vanished_data_as_nothing_to_read() {
        let mut ring = FakeRing::new(64);
        ring.incoming.extend(b"xx");
        ring.shrink_on_read = true;
        let err = ring_recv(&mut ring, &mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn send_refuses_file_descriptors() {
        let mut ring = FakeRing::new(64);
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
        let err = ring_send(
            &mut ring,
            &mut Vec::new(),
            &[IoSlice::new(b"x")],
            &[fd.as_fd()],
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(ring.outgoing.is_empty());
    }

    #[test]
    fn send_writes_what_fits_and_would_block_when_full() {
        let mut ring = FakeRing::new(8);
        let mut scratch = Vec::new();
        let bufs = [
            IoSlice::new(b"abcde"),
            IoSlice::new(b""),
            IoSlice::new(b"fghij"),
        ];
        assert_eq!(ring_send(&mut ring, &mut scratch, &bufs, &[]).unwrap(), 8);
        assert_eq!(ring.outgoing, b"abcdefgh");
        assert_eq!(ring.writes, 1, "slices are gathered into one write");
        let err = ring_send(&mut ring, &mut scratch, &[IoSlice::new(b"ij")], &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(
            !ring.calls.contains(&"clear"),
            "send must not consume notifications"
        );
        assert!(scratch.capacity() <= 64);
    }

    #[test]
    fn send_of_one_slice_needs_no_copy() {
        let mut ring = FakeRing::new(1024);
        let mut scratch = Vec::new();
        assert_eq!(
            ring_send(&mut ring, &mut scratch, &[IoSlice::new(b"hello")], &[]).unwrap(),
            5
        );
        assert_eq!(scratch.capacity(), 0);
    }

    #[test]
    fn send_to_a_closed_peer_is_a_broken_pipe() {
        let mut ring = FakeRing::new(64);
        ring.open = false;
        let err = ring_send(&mut ring, &mut Vec::new(), &[IoSlice::new(b"x")], &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        assert_eq!(ring_send(&mut ring, &mut Vec::new(), &[], &[]).unwrap(), 0);
    }
}
