//! The device's stream-ordered memory pool, which every candle tensor on a GPU comes from
//! (cudarc allocates with `cuMemAllocAsync`). By default the pool hands freed memory back
//! to the driver at every synchronisation, so the next allocation of that size maps pages
//! again: a 600 MB activation then costs more than the matrix product that fills it.
//! Keeping freed memory in the pool, as PyTorch's caching allocator does, removes that.

use candle_core::{Device, Result};

/// Makes the pool of `device` keep the memory it gets back (a worker owns its GPU, so
/// nothing else needs it). Nothing to do on the CPU.
pub fn retain_freed_memory(device: &Device) -> Result<()> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = device {
        use candle_core::cuda::cudarc::driver::sys;
        let pool = default_pool(cuda)?;
        let mut threshold = u64::MAX;
        // SAFETY: `pool` is the device's default pool; the attribute takes a u64.
        let status = unsafe {
            sys::cuMemPoolSetAttribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                (&mut threshold as *mut u64).cast(),
            )
        };
        check(status, "cuMemPoolSetAttribute(RELEASE_THRESHOLD)")?;
    }
    let _ = device;
    Ok(())
}

/// Hands the memory the pool of `device` holds unused back to the driver, after waiting for
/// the device: for measuring one piece of work's own peak.
pub fn release_freed_memory(device: &Device) -> Result<()> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = device {
        device.synchronize()?;
        let pool = default_pool(cuda)?;
        // SAFETY: `pool` is the device's default pool; trimming frees only unused memory.
        check(
            unsafe { candle_core::cuda::cudarc::driver::sys::cuMemPoolTrimTo(pool, 0) },
            "cuMemPoolTrimTo",
        )?;
    }
    let _ = device;
    Ok(())
}

#[cfg(feature = "cuda")]
fn default_pool(
    cuda: &candle_core::CudaDevice,
) -> Result<candle_core::cuda::cudarc::driver::sys::CUmemoryPool> {
    use candle_core::cuda::cudarc::driver::sys;
    let context = cuda.cuda_stream().context().clone();
    context.bind_to_thread().map_err(candle_core::Error::wrap)?;
    let mut pool: sys::CUmemoryPool = std::ptr::null_mut();
    // SAFETY: `pool` is written by the call; the device handle comes from a live context.
    let status = unsafe { sys::cuDeviceGetDefaultMemPool(&mut pool, context.cu_device()) };
    check(status, "cuDeviceGetDefaultMemPool")?;
    Ok(pool)
}

#[cfg(feature = "cuda")]
fn check(status: candle_core::cuda::cudarc::driver::sys::CUresult, call: &str) -> Result<()> {
    use candle_core::cuda::cudarc::driver::sys::CUresult;
    if status == CUresult::CUDA_SUCCESS {
        Ok(())
    } else {
        candle_core::bail!("{call} failed: {status:?}")
    }
}
