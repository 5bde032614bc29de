//! Page-locks the host copy of the text encoder's weights with the CUDA driver, so that each
//! upload runs at DMA speed instead of going through the driver's pageable staging buffers
//! (measured 1.1 to 7 s for UMT5-xxl's 10.6 GiB from pageable memory on the H200).
//!
//! Only tensors of at least [`MIN_BYTES`] are registered: allocations that large come from
//! their own page-aligned mappings, so no two registrations share a page (the driver refuses
//! overlapping ones), and they hold nearly all the bytes. A tensor the driver refuses stays
//! pageable: its upload is slower, not wrong.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::Arc;

use candle_core::cuda::cudarc::driver::{CudaContext, sys};
use candle_core::{CpuStorage, CudaDevice, Storage, Tensor};

/// The smallest tensor registered: glibc serves requests of 32 MiB or more (its largest
/// mmap threshold) from their own mappings.
pub const MIN_BYTES: usize = 32 << 20;

/// Host ranges registered with one CUDA context, unregistered on drop. It holds the tensors
/// that own the memory, so they cannot be freed while registered.
pub struct PageLocked {
    context: Arc<CudaContext>,
    starts: Vec<HostPtr>,
    bytes: usize,
    _owners: Arc<HashMap<String, Tensor>>,
}

impl std::fmt::Debug for PageLocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageLocked")
            .field("ranges", &self.starts.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

/// A registered range's start, only ever handed back to the driver.
struct HostPtr(*mut c_void);

// SAFETY: the pointer is never dereferenced here; it only names the range to the driver,
// which accepts it from any thread.
unsafe impl Send for HostPtr {}
// SAFETY: as above; no access goes through a shared reference.
unsafe impl Sync for HostPtr {}

impl PageLocked {
    /// Registers every CPU tensor of at least [`MIN_BYTES`] in `tensors` with `device`'s
    /// context.
    pub fn register(device: &CudaDevice, tensors: Arc<HashMap<String, Tensor>>) -> Self {
        let context = device.cuda_stream().context().clone();
        let mut locked = Self {
            context,
            starts: Vec::new(),
            bytes: 0,
            _owners: tensors.clone(),
        };
        if let Err(e) = locked.context.bind_to_thread() {
            tracing::warn!(error = %e, "cannot page-lock the text encoder's host copy; uploads stay pageable");
            return locked;
        }
        for (name, tensor) in tensors.iter() {
            let Some((start, bytes)) = host_range(tensor) else {
                continue;
            };
            if bytes < MIN_BYTES {
                continue;
            }
            // SAFETY: [start, start + bytes) is the live buffer of `tensor`'s CPU storage,
            // kept alive by `_owners` until this value is dropped and unregisters it.
            let status = unsafe {
                sys::cuMemHostRegister_v2(start, bytes, sys::CU_MEMHOSTREGISTER_PORTABLE)
            };
            if status == sys::CUresult::CUDA_SUCCESS {
                locked.starts.push(HostPtr(start));
                locked.bytes += bytes;
            } else {
                tracing::debug!(tensor = %name, ?status, "not page-locked; its upload stays pageable");
            }
        }
        locked
    }

    /// Bytes page-locked.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for PageLocked {
    fn drop(&mut self) {
        if self.starts.is_empty() {
            return;
        }
        if let Err(e) = self.context.bind_to_thread() {
            tracing::warn!(error = %e, "cannot unregister the text encoder's page-locked host copy");
            return;
        }
        for start in &self.starts {
            // SAFETY: `start` was registered by `register` and is still mapped: `_owners`
            // keeps the tensors owning it alive until after this.
            let status = unsafe { sys::cuMemHostUnregister(start.0) };
            if status != sys::CUresult::CUDA_SUCCESS {
                tracing::warn!(?status, "unregistering page-locked host memory failed");
            }
        }
    }
}

/// Start and length in bytes of a contiguous CPU tensor's storage.
fn host_range(tensor: &Tensor) -> Option<(*mut c_void, usize)> {
    let (storage, layout) = tensor.storage_and_layout();
    if !layout.is_contiguous() || layout.start_offset() != 0 {
        return None;
    }
    let Storage::Cpu(cpu) = &*storage else {
        return None;
    };
    let (start, bytes) = match cpu {
        CpuStorage::BF16(v) => (
            v.as_ptr().cast::<c_void>(),
            std::mem::size_of_val(v.as_slice()),
        ),
        CpuStorage::F16(v) => (
            v.as_ptr().cast::<c_void>(),
            std::mem::size_of_val(v.as_slice()),
        ),
        CpuStorage::F32(v) => (
            v.as_ptr().cast::<c_void>(),
            std::mem::size_of_val(v.as_slice()),
        ),
        _ => return None,
    };
    Some((start.cast_mut(), bytes))
}
