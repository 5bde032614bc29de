//! Scaled dot-product attention: the one function every attention layer calls, so that a
//! fused GPU kernel replaces it in one place.
//!
//! On CUDA in bf16 a fused FlashAttention-style kernel ([`flash_cuda`], compiled from
//! `kernels/flash_attention.py`) computes `softmax(q·kᵀ·scale)·v` without materialising the
//! scores; everywhere else, and for shapes it has no kernel for, [`portable`] does.

#[cfg(feature = "cuda")]
mod flash_cuda;
mod portable;
// Used by the CUDA kernels only; kept in CPU builds so its tests run everywhere.
#[cfg(feature = "cuda")]
mod quantized_cuda;
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
mod row_view;
#[cfg(feature = "cuda")]
mod tma;

use candle_core::{Result, Tensor};

pub use portable::{GPU_SCORE_BUDGET_BYTES, SCORE_BUDGET_BYTES};

/// Which implementation [`attention`] uses for some inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// The fused CUDA kernel of that name (e.g. `hd128_m128_n64_w8_s3`).
    Fused(&'static str),
    /// The 8-bit CUDA kernel of that name: INT8 q·kᵀ, with bf16 p·v (the warp-specialised
    /// `qattn_ws_*`, the default for head width 128) or FP8 p·v (the Triton `qattn_hd*`).
    Quantized(&'static str),
    Portable,
}

/// Environment switch: `VACED_ATTENTION_PRECISION=8bit` computes attention with 8-bit
/// products where a kernel exists (default `bf16`).
pub const PRECISION_ENV: &str = "VACED_ATTENTION_PRECISION";

#[cfg(feature = "cuda")]
fn eight_bit() -> bool {
    static EIGHT_BIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *EIGHT_BIT.get_or_init(|| std::env::var(PRECISION_ENV).is_ok_and(|v| v == "8bit"))
}

/// Whether [`PRECISION_ENV`] switches 8-bit attention on (it applies on CUDA in bf16).
pub fn eight_bit_requested() -> bool {
    #[cfg(feature = "cuda")]
    return eight_bit();
    #[cfg(not(feature = "cuda"))]
    false
}

/// `softmax(q·kᵀ·scale)·v` for `q: [B, H, Lq, D]`, `k, v: [B, H, Lk, D]`; returns
/// `[B, H, Lq, D]` in the dtype of `q`. Scores and softmax are computed in f32. Inputs may be
/// strided views (e.g. heads split off a `[B, L, H·D]` projection without a copy).
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    if let Some(kernel) = quantized_for(q, k, v)? {
        return quantized_cuda::attention(kernel, q, k, v, scale);
    }
    #[cfg(feature = "cuda")]
    if let Some(kernel) = flash_cuda::kernel_for(q, k, v)? {
        return flash_cuda::attention(kernel, q, k, v, scale);
    }
    portable::attention(q, k, v, scale)
}

/// The 8-bit kernel for these inputs, when 8-bit attention is switched on and one applies.
#[cfg(feature = "cuda")]
fn quantized_for(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<Option<&'static crate::engine::cuda_kernels::AttentionKernel>> {
    if !eight_bit() || !quantized_cuda::applies(q) {
        return Ok(None);
    }
    let Some(kernel) = quantized_cuda::default_kernel(q.dim(3)?) else {
        return Ok(None);
    };
    Ok(quantized_cuda::unsupported(kernel, q, k, v)?
        .is_none()
        .then_some(kernel))
}

/// The implementation [`attention`] picks for these inputs.
pub fn implementation_for(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Implementation> {
    #[cfg(feature = "cuda")]
    if let Some(kernel) = quantized_for(q, k, v)? {
        return Ok(Implementation::Quantized(kernel.image.name));
    }
    #[cfg(feature = "cuda")]
    if let Some(kernel) = flash_cuda::kernel_for(q, k, v)? {
        return Ok(Implementation::Fused(kernel.image.name));
    }
    let _ = (q, k, v);
    Ok(Implementation::Portable)
}

/// The fused kernels this build carries, bf16 then 8-bit, with the head width each serves.
pub fn fused_kernels() -> Vec<(Implementation, usize)> {
    #[cfg(feature = "cuda")]
    return flash_cuda::kernels()
        .map(|k| (Implementation::Fused(k.image.name), k.head_dim))
        .chain(
            quantized_cuda::kernels()
                .map(|k| (Implementation::Quantized(k.image.name), k.head_dim)),
        )
        .collect();
    #[cfg(not(feature = "cuda"))]
    Vec::new()
}

/// Attention forced through one implementation, for benchmarks and parity tests.
pub fn attention_with(
    implementation: Implementation,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
) -> Result<Tensor> {
    match implementation {
        Implementation::Portable => portable::attention(q, k, v, scale),
        #[cfg(feature = "cuda")]
        Implementation::Fused(name) => {
            let kernel = flash_cuda::kernel_named(name)?;
            if flash_cuda::unsupported(kernel, q, k, v)?.is_some() {
                candle_core::bail!("attention kernel {name} cannot run these inputs");
            }
            flash_cuda::attention(kernel, q, k, v, scale)
        }
        #[cfg(feature = "cuda")]
        Implementation::Quantized(name) => {
            let Some(kernel) = quantized_cuda::kernel_named(name) else {
                candle_core::bail!("no 8-bit attention kernel named {name:?}")
            };
            if let Some(why) = quantized_cuda::unsupported(kernel, q, k, v)? {
                candle_core::bail!("attention kernel {name} cannot run these inputs: {why}");
            }
            quantized_cuda::attention(kernel, q, k, v, scale)
        }
        #[cfg(not(feature = "cuda"))]
        Implementation::Fused(name) | Implementation::Quantized(name) => {
            candle_core::bail!("attention kernel {name}: this build has no CUDA support")
        }
    }
}
