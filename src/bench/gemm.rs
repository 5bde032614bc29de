//! `vaced bench --only gemm`: the DiT's matrix products at the step's shapes, through each
//! path a block uses: candle's `matmul` (q, k, o and the FFN's second layer, whose bias is
//! fused into the kernel after them) and cuBLASLt with the bias in its epilogue (v, and with
//! GELU the FFN's first layer). Says what the products cost and which path to prefer.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Serialize;

use super::Timing;
use crate::engine::config::DitConfig;
use crate::engine::fused_ops::FusedOps;
use crate::engine::linear::Linear;

/// One product timed through one path.
#[derive(Debug, Clone, Serialize)]
pub struct GemmTiming {
    /// `rows x in -> out`.
    pub shape: String,
    /// `matmul` (candle, no bias) or `cublaslt_bias` (bias in the epilogue).
    pub path: &'static str,
    pub timing: Timing,
    pub tflops_per_sec: f64,
}

/// Times `[tokens, in] · [out, in]ᵀ` for the block's three product shapes.
pub fn run(
    cfg: &DitConfig,
    tokens: usize,
    dtype: DType,
    device: &Device,
    repeat: usize,
) -> anyhow::Result<Vec<GemmTiming>> {
    let (d, f) = (cfg.dim, cfg.ffn_dim);
    let mut rows = Vec::new();
    for (in_dim, out_dim) in [(d, d), (d, f), (f, d)] {
        let x = Tensor::randn(0f32, 1.0, (1, tokens, in_dim), device)?.to_dtype(dtype)?;
        let weights = HashMap::from([
            (
                "weight".to_owned(),
                (Tensor::randn(0f32, 1.0, (out_dim, in_dim), device)? * 0.02)?.to_dtype(dtype)?,
            ),
            (
                "bias".to_owned(),
                Tensor::randn(0f32, 1.0, out_dim, device)?.to_dtype(dtype)?,
            ),
        ]);
        let linear = Linear::new(
            in_dim,
            out_dim,
            VarBuilder::from_tensors(weights, dtype, device),
        )?;
        let flop = 2.0 * (tokens * in_dim * out_dim) as f64;
        let shape = format!("{tokens}x{in_dim} -> {out_dim}");
        let mut record = |path, timing: Timing| {
            rows.push(GemmTiming {
                shape: shape.clone(),
                path,
                tflops_per_sec: flop / 1e12 / timing.median_secs,
                timing,
            })
        };
        record(
            "matmul",
            super::time(device, repeat, || linear.product(&x).map(drop))?,
        );
        if let Some(ops) = FusedOps::for_activations(&x, dtype, d) {
            record(
                "cublaslt_bias",
                super::time(device, repeat, || ops.linear_bias(&linear, &x).map(drop))?,
            );
        }
    }
    Ok(rows)
}
