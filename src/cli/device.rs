//! The `--device` argument: `cpu` or `cuda:N`, and the dtype each device computes in.

use candle_core::{DType, Device};

/// Parses `cpu` or `cuda:N` and opens the device.
pub fn open(spec: &str) -> anyhow::Result<Device> {
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = spec
        .strip_prefix("cuda:")
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| anyhow::anyhow!("--device `{spec}`: use `cpu` or `cuda:N` (e.g. cuda:0)"))?;
    let device = Device::new_cuda(ordinal).map_err(|e| {
        anyhow::anyhow!(
            "--device {spec}: {e}; this binary needs the `cuda` feature and an NVIDIA driver"
        )
    })?;
    crate::engine::memory_pool::retain_freed_memory(&device)
        .map_err(|e| anyhow::anyhow!("--device {spec}: setting up its memory pool: {e}"))?;
    Ok(device)
}

/// f32 on the CPU (exact against the reference); bf16 on GPUs, as the reference autocasts.
pub fn compute_dtype(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    }
}
