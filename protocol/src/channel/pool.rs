//! Pixel memory shared by an agent and read by the GUI domain.
//!
//! Decision 3 of ARCHITECTURE.md: shared memory carries pixels only, the GUI domain maps it
//! read-only, and a memfd must be sealed against shrinking and growing before it is mapped, so a
//! qube can never make the compositor fault (SIGBUS) by truncating the file under it.

use std::fmt;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::ptr::NonNull;

use rustix::fs::SealFlags;
use thiserror::Error;

use crate::types::{BufferLayout, InlinePixels, PixelFormat, PoolBacking, PoolId, Rect};

/// Why a pool could not be set up or used.
#[derive(Debug, Error)]
pub enum PoolError {
    #[error("the pool's file descriptor is not a sealable memfd")]
    NotAMemfd,
    #[error("the pool's memfd is not sealed against shrinking and growing (seals {0:?})")]
    NotSealed(SealFlags),
    #[error("the pool's memfd holds {actual} bytes but the agent announced {declared}")]
    SizeMismatch { declared: u64, actual: u64 },
    #[error("a memfd pool arrived without its file descriptor")]
    MissingFd,
    #[error("pool backing {0} is not supported on this channel")]
    UnsupportedBacking(&'static str),
    #[error("{refs} grant refs for a pool of {pages} pages")]
    GrantCount { refs: usize, pages: u64 },
    #[error("mapping the pool failed: {0}")]
    Map(#[source] std::io::Error),
    #[error("pool {0} is not writable inline")]
    NotInline(PoolId),
}

impl PoolError {
    /// Whether the qube broke a rule. A failure to map (the GUI domain's own limits: address
    /// space, gntdev) still ends the connection but is not blamed on the qube.
    pub fn is_violation(&self) -> bool {
        !matches!(self, PoolError::Map(_))
    }
}

/// Pixel memory of one pool as the GUI domain sees it: read-only, of a fixed length.
///
/// Reads copy out of the memory rather than hand out `&[u8]`: the agent may write to shared
/// memory at any time, and a Rust reference to memory that changes under it would be a lie.
pub trait PoolMemory: fmt::Debug + Send {
    /// Length in bytes; never changes.
    fn len(&self) -> u64;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `dst.len()` bytes starting at `offset`. The caller has checked that the range is
    /// inside the pool; implementations check again and copy nothing if it is not.
    fn read(&self, offset: u64, dst: &mut [u8]);

    /// The start of the memory, for renderers that read it in place (Pixman). Valid for
    /// `len()` bytes while `self` lives; may change concurrently.
    fn as_ptr(&self) -> Option<NonNull<u8>>;

    /// Writes inline pixels; only pools whose backing is [`PoolBacking::Inline`] accept it.
    fn write_inline(&mut self, pixels: &InlinePixels) -> Result<(), PoolError>;
}

/// Copies a rectangle of a buffer out of a pool into `dst` (tightly packed, 4 bytes a pixel).
/// The layout was checked against the pool by the session, so every row is inside it.
pub fn copy_rect(pool: &dyn PoolMemory, layout: BufferLayout, rect: Rect, dst: &mut Vec<u8>) {
    let Some(rect) = rect.clamp_to(layout.size().width(), layout.size().height()) else {
        dst.clear();
        return;
    };
    let row_bytes = rect.width() as usize * PixelFormat::BYTES_PER_PIXEL as usize;
    dst.clear();
    dst.resize(row_bytes * rect.height() as usize, 0);
    for (i, row) in dst.chunks_exact_mut(row_bytes).enumerate() {
        let y = u64::from(rect.y()) + i as u64;
        let offset = layout.offset()
            + y * u64::from(layout.stride())
            + u64::from(rect.x()) * u64::from(PixelFormat::BYTES_PER_PIXEL);
        pool.read(offset, row);
    }
}

fn range_ok(len: u64, offset: u64, count: usize) -> bool {
    offset
        .checked_add(count as u64)
        .is_some_and(|end| end <= len)
}

/// A sealed memfd mapped read-only and shared.
pub struct MemfdPool {
    map: memmap2::Mmap,
    _file: File,
}

impl fmt::Debug for MemfdPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemfdPool")
            .field("len", &self.map.len())
            .finish()
    }
}

impl MemfdPool {
    /// Checks the seals and the size of an agent's memfd, then maps it read-only.
    pub fn map(untrusted_fd: OwnedFd, declared_size: u64) -> Result<Self, PoolError> {
        let seals = rustix::fs::fcntl_get_seals(&untrusted_fd).map_err(|_| PoolError::NotAMemfd)?;
        if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
            return Err(PoolError::NotSealed(seals));
        }
        let stat = rustix::fs::fstat(&untrusted_fd).map_err(|e| PoolError::Map(e.into()))?;
        let actual = u64::try_from(stat.st_size).unwrap_or(0);
        if actual != declared_size {
            return Err(PoolError::SizeMismatch {
                declared: declared_size,
                actual,
            });
        }
        let len = usize::try_from(declared_size).map_err(|_| PoolError::SizeMismatch {
            declared: declared_size,
            actual,
        })?;
        let file = File::from(untrusted_fd);
        // SAFETY: memmap2 requires that the file is not truncated while mapped, or accesses
        // fault. The seals checked above (F_SEAL_SHRINK, F_SEAL_GROW) make the kernel refuse any
        // size change for the life of the file, and seals can never be removed. The mapping is
        // read-only (PROT_READ); concurrent writes by the agent only change pixel values, and we
        // never form references into the mapping (see `read` and `as_ptr`).
        let map =
            unsafe { memmap2::MmapOptions::new().len(len).map(&file) }.map_err(PoolError::Map)?;
        Ok(MemfdPool { map, _file: file })
    }
}

impl PoolMemory for MemfdPool {
    fn len(&self) -> u64 {
        self.map.len() as u64
    }

    fn read(&self, offset: u64, dst: &mut [u8]) {
        if !range_ok(self.len(), offset, dst.len()) {
            return;
        }
        // SAFETY: the range was checked to lie inside the mapping, which stays mapped and
        // unshrinkable while `self` lives. The source may be written concurrently by the agent
        // (another process); a byte copy of such memory yields some mix of old and new pixel
        // values, which is all we rely on. `dst` is a distinct, exclusively borrowed buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map.as_ptr().add(offset as usize),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
    }

    fn as_ptr(&self) -> Option<NonNull<u8>> {
        NonNull::new(self.map.as_ptr().cast_mut())
    }

    fn write_inline(&mut self, _pixels: &InlinePixels) -> Result<(), PoolError> {
        Err(PoolError::UnsupportedBacking(
            "inline writes into a memfd pool",
        ))
    }
}

/// A pool in the GUI domain's own memory, filled by inline writes.
#[derive(Debug)]
pub struct InlinePool {
    bytes: Vec<u8>,
}

impl InlinePool {
    /// The size was checked against the qube's pool budget before this allocation.
    pub fn new(size: u64) -> Self {
        InlinePool {
            bytes: vec![0; usize::try_from(size).unwrap_or(0)],
        }
    }
}

impl PoolMemory for InlinePool {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read(&self, offset: u64, dst: &mut [u8]) {
        if range_ok(self.len(), offset, dst.len()) {
            dst.copy_from_slice(&self.bytes[offset as usize..offset as usize + dst.len()]);
        }
    }

    fn as_ptr(&self) -> Option<NonNull<u8>> {
        NonNull::new(self.bytes.as_ptr().cast_mut())
    }

    fn write_inline(&mut self, pixels: &InlinePixels) -> Result<(), PoolError> {
        if pixels.end() > self.len() {
            return Err(PoolError::SizeMismatch {
                declared: pixels.end(),
                actual: self.len(),
            });
        }
        let row_bytes = pixels.row_bytes() as usize;
        for (i, row) in pixels.data().chunks_exact(row_bytes).enumerate() {
            let start = pixels.offset() as usize + i * pixels.stride() as usize;
            self.bytes[start..start + row_bytes].copy_from_slice(row);
        }
        Ok(())
    }
}

/// Turns a `pool_create` into memory the GUI domain can read. Channels that map memory their
/// own way (Xen grants) provide their own mapper.
pub trait PoolMapper: fmt::Debug + Send {
    fn map_pool(
        &mut self,
        pool: PoolId,
        size: u64,
        backing: &PoolBacking,
        fd: Option<OwnedFd>,
    ) -> Result<Box<dyn PoolMemory>, PoolError>;
}

/// Maps memfd and inline pools; refuses Xen grants.
#[derive(Debug, Default, Clone, Copy)]
pub struct StandardPoolMapper;

impl PoolMapper for StandardPoolMapper {
    fn map_pool(
        &mut self,
        _pool: PoolId,
        size: u64,
        backing: &PoolBacking,
        fd: Option<OwnedFd>,
    ) -> Result<Box<dyn PoolMemory>, PoolError> {
        match backing {
            PoolBacking::MemFd => Ok(Box::new(MemfdPool::map(
                fd.ok_or(PoolError::MissingFd)?,
                size,
            )?)),
            PoolBacking::Inline => Ok(Box::new(InlinePool::new(size))),
            PoolBacking::XenGrants(_) => Err(PoolError::UnsupportedBacking("xen-grants")),
        }
    }
}

/// The agent's side of a memfd pool: created sealed, mapped read-write.
pub struct SharedMemfd {
    map: memmap2::MmapMut,
    file: File,
}

impl fmt::Debug for SharedMemfd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedMemfd")
            .field("len", &self.map.len())
            .finish()
    }
}

impl SharedMemfd {
    /// Creates a memfd of `size` bytes, seals its size, and maps it read-write.
    pub fn create(size: u64) -> std::io::Result<Self> {
        use rustix::fs::{MemfdFlags, fcntl_add_seals, ftruncate, memfd_create};
        let fd = memfd_create(
            "corral-pool",
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?;
        ftruncate(&fd, size)?;
        fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
        let file = File::from(fd);
        let len = usize::try_from(size).map_err(|_| std::io::Error::other("pool too large"))?;
        // SAFETY: the file is a memfd this process just created and sealed against any size
        // change, so the mapping can never be truncated under us. Only this process writes it;
        // the GUI domain maps it read-only.
        let map = unsafe { memmap2::MmapOptions::new().len(len).map_mut(&file) }?;
        Ok(SharedMemfd { map, file })
    }

    /// The memory to draw into.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// A duplicate of the memfd to send with `pool_create`.
    pub fn fd(&self) -> std::io::Result<OwnedFd> {
        Ok(self.file.try_clone()?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsealed_memfd_is_refused() {
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        assert!(matches!(
            MemfdPool::map(fd, 4096),
            Err(PoolError::NotSealed(_))
        ));
    }

    #[test]
    fn memfd_sealed_only_against_shrink_is_refused() {
        let fd = rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK).unwrap();
        assert!(matches!(
            MemfdPool::map(fd, 4096),
            Err(PoolError::NotSealed(_))
        ));
    }

    #[test]
    fn plain_file_is_not_a_memfd() {
        let file = File::open("/proc/self/exe").unwrap();
        assert!(matches!(
            MemfdPool::map(file.into(), 4096),
            Err(PoolError::NotAMemfd)
        ));
    }

    #[test]
    fn size_must_match_declaration() {
        let shared = SharedMemfd::create(8192).unwrap();
        assert!(matches!(
            MemfdPool::map(shared.fd().unwrap(), 4096 * 4),
            Err(PoolError::SizeMismatch { .. })
        ));
    }

    #[test]
    fn sealed_pool_cannot_be_shrunk_by_the_agent_and_reads_stay_valid() {
        let mut shared = SharedMemfd::create(4096).unwrap();
        shared.bytes_mut()[100] = 42;
        let pool = MemfdPool::map(shared.fd().unwrap(), 4096).unwrap();
        // A hostile agent tries to truncate the file under the compositor's mapping.
        let agent_fd = shared.fd().unwrap();
        assert!(rustix::fs::ftruncate(&agent_fd, 0).is_err());
        let mut out = [0u8; 1];
        pool.read(100, &mut out);
        assert_eq!(out[0], 42);
        // Reads outside the pool copy nothing rather than fault.
        let mut far = [7u8; 16];
        pool.read(4090, &mut far);
        assert_eq!(far, [7u8; 16]);
    }
}
