//! Peak GPU memory in use while a closure runs, sampled every millisecond by a helper
//! thread (the driver has no peak counter for the whole device). `None` on the CPU.

use candle_core::Device;

/// Runs `work` and returns its result with the most device memory seen in use, in bytes.
pub fn peak_during<T>(device: &Device, work: impl FnOnce() -> T) -> (T, Option<u64>) {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(cuda) = device {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        // Memory the pool kept from earlier work would count as this work's.
        let _ = crate::engine::memory_pool::release_freed_memory(device);
        let context = cuda.cuda_stream().context().clone();
        let done = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let sampler = {
            let (done, peak) = (done.clone(), peak.clone());
            std::thread::spawn(move || {
                if context.bind_to_thread().is_err() {
                    return;
                }
                while !done.load(Ordering::Relaxed) {
                    if let Ok((free, total)) =
                        candle_core::cuda_backend::cudarc::driver::result::mem_get_info()
                    {
                        peak.fetch_max((total - free) as u64, Ordering::Relaxed);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            })
        };
        let out = work();
        let _ = device.synchronize();
        done.store(true, Ordering::Relaxed);
        let _ = sampler.join();
        return (out, Some(peak.load(Ordering::Relaxed)));
    }
    let _ = device;
    (work(), None)
}
