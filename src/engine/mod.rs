//! Wan2.1-VACE in candle: the UMT5 text encoder, the causal 3-D video VAE, the diffusion
//! transformer with VACE blocks, the flow-matching solvers, the VACE conditioning and the
//! sampling pipeline, plus loading of the official checkpoint folders.
//!
//! Everything matches the reference implementation (Wan-Video/Wan2.1 `9737cba9`) number for
//! number in f32 on the CPU; `tests/parity_*.rs` check it against tensors exported from it.

pub mod attention;
pub mod checkpoint;
pub mod conditioning;
pub mod config;
#[cfg(feature = "cuda")]
pub mod cuda_kernels;
pub mod dit;
#[cfg(feature = "cuda")]
mod epilogue_gemm;
#[cfg(feature = "cuda")]
pub mod fp8_gemm;
pub mod fused_ops;
pub mod linear;
pub mod memory_pool;
pub mod noise;
pub mod norm;
pub mod pipeline;
pub mod preset;
pub mod random_weights;
pub mod regions;
pub mod scheduler;
pub mod text;
pub mod vae;
