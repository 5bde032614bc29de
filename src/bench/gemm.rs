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
use crate::engine::fused_ops::{FusedOps, ProductInput};
use crate::engine::linear::Linear;

/// One product timed through one path.
#[derive(Debug, Clone, Serialize)]
pub struct GemmTiming {
    /// `rows x in -> out`.
    pub shape: String,
    /// `matmul` (candle, no bias), `cublaslt_bias` (bias in the epilogue), `fp8_bias` (FP8
    /// with per-row scales, input quantised beforehand) or `fp8_quantize_input` (that
    /// quantisation alone).
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
                super::time(device, repeat, || {
                    ops.linear_bias(&linear, &ProductInput::Bf16(x.clone()))
                        .map(drop)
                })?,
            );
        }
        #[cfg(feature = "cuda")]
        if device.is_cuda() && dtype == DType::BF16 {
            use crate::engine::fp8_gemm;
            let quantized = ProductInput::Fp8(fp8_gemm::quantize_rows(&x)?);
            if let Some(ops) = FusedOps::for_activations(&x, dtype, d) {
                record(
                    "fp8_bias",
                    super::time(device, repeat, || {
                        ops.linear_bias(&linear, &quantized).map(drop)
                    })?,
                );
            }
            // The per-token quantisation of the input, which the LayerNorms fuse and the
            // o projection and the FFN's second layer pay separately.
            let quantize = super::time(device, repeat, || fp8_gemm::quantize_rows(&x).map(drop))?;
            rows.push(GemmTiming {
                shape: format!("{tokens}x{in_dim}"),
                path: "fp8_quantize_input",
                tflops_per_sec: 0.0,
                timing: quantize,
            });
        }
    }
    Ok(rows)
}
