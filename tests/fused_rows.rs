//! The DiT's fused row kernels against the layers they replace, on the test device. They
//! exist only in CUDA builds for bf16 (`VACED_TEST_DEVICE=cuda:0 VACED_TEST_DTYPE=bf16`),
//! where the test insists on them; elsewhere there is nothing fused to compare.

mod common;

use candle_core::{D, DType, Tensor};
use common::*;
use vaced::engine::dit::{Rope, TokenGrid};
use vaced::engine::fused_ops::FusedOps;

/// q and k after their product: `bf16(y + bias)`, RMSNorm over the full width (its
/// normalised value rounded to bf16, then times the f32 weight), RoPE per head.
fn layers(y: &Tensor, bias: &Tensor, weight: &Tensor, rope: &Rope, heads: usize) -> Tensor {
    let (b, l, dim) = y.dims3().unwrap();
    let x = y.broadcast_add(bias).unwrap().to_dtype(DType::F32).unwrap();
    let inv_rms = (x.sqr().unwrap().mean_keepdim(D::Minus1).unwrap() + 1e-6)
        .unwrap()
        .sqrt()
        .unwrap()
        .recip()
        .unwrap();
    let normed = x
        .broadcast_mul(&inv_rms)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .broadcast_mul(weight)
        .unwrap();
    let split = normed
        .reshape((b, l, heads, dim / heads))
        .unwrap()
        .transpose(1, 2)
        .unwrap();
    rope.apply(&split)
        .unwrap()
        .transpose(1, 2)
        .unwrap()
        .reshape((b, l, dim))
        .unwrap()
}

/// The fused kernels for rows of `dim` like `x`: insisted on where they must exist (a CUDA
/// build testing bf16), else `None` with a note that there is nothing to compare.
fn fused_ops(x: &Tensor, dim: usize) -> Option<FusedOps> {
    let ops = FusedOps::for_activations(x, DType::BF16, dim);
    if ops.is_none() {
        let dev = x.device();
        assert!(
            !(dev.is_cuda() && test_dtype() == DType::BF16),
            "this CUDA build has no fused row kernels for rows of {dim}"
        );
        eprintln!(
            "{dev:?} {:?}: no fused row kernels to compare",
            test_dtype()
        );
    }
    ops
}

#[test]
fn fused_q_and_k_pass_matches_bias_rms_norm_and_rope() {
    let dev = test_device();
    let grid = TokenGrid {
        frames: 3,
        rows: 4,
        cols: 6,
    };
    // The 14B's and 1.3B's heads (width 128, their own kernel variant) and the test models'.
    for (heads, head_dim) in [(40, 128), (12, 128), (2, 48)] {
        let dim = heads * head_dim;
        let bf16 = |t: Tensor| t.to_dtype(DType::BF16).unwrap();
        let y = bf16(Tensor::randn(0f32, 2.0, (1, grid.len(), dim), &dev).unwrap());
        let bias = bf16(Tensor::randn(0f32, 0.5, dim, &dev).unwrap());
        let weight = Tensor::randn(0f32, 1.0, dim, &dev).unwrap();
        let rope = Rope::new(grid, head_dim, &dev).unwrap();
        let Some(ops) = fused_ops(&y, dim) else {
            return;
        };
        let got = ops
            .bias_rms_norm_rope(&y, &bias, &weight, 1e-6, Some(rope.tables()))
            .unwrap();
        let want = layers(&y, &bias, &weight, &rope, heads);
        // The fused output is rounded to bf16 (2^-9 relative at most, each element).
        assert_rel(
            &format!("{heads} heads of {head_dim}"),
            &got.to_dtype(DType::F32).unwrap(),
            &want,
            5e-3,
        );
    }
}

#[test]
fn fused_layer_norm_matches_the_modulated_layer_norm() {
    let dev = test_device();
    // The 14B's rows (5120 = 4096 + 1024) and the 1.3B's (1536 = 1024 + 512) take kernels
    // that load them as two whole parts; the test models' (96) are padded to 128.
    for dim in [5120, 1536, 96] {
        let (batch, tokens) = (2, 37);
        // A residual stream with a large mean per token, as the DiT's has.
        let offset = Tensor::randn(0f32, 20.0, (batch, tokens, 1), &dev).unwrap();
        let x = Tensor::randn(0f32, 3.0, (batch, tokens, dim), &dev)
            .unwrap()
            .broadcast_add(&offset)
            .unwrap();
        let scale = Tensor::randn(0f32, 0.5, (batch, 1, dim), &dev).unwrap();
        let shift = Tensor::randn(0f32, 0.5, (batch, 1, dim), &dev).unwrap();
        let Some(ops) = fused_ops(&x, dim) else {
            return;
        };
        let w = (&scale + 1.0).unwrap();
        let got = ops.layer_norm_affine(&x, &w, &shift, 1e-6).unwrap();
        assert_eq!(got.dtype(), DType::BF16);
        let want = vaced::engine::norm::layer_norm(&x, 1e-6)
            .unwrap()
            .broadcast_mul(&w)
            .unwrap()
            .broadcast_add(&shift)
            .unwrap();
        // The fused output is rounded to bf16 (2^-9 relative at most, each element).
        assert_rel(
            &format!("LayerNorm of rows of {dim}"),
            &got.to_dtype(DType::F32).unwrap(),
            &want,
            5e-3,
        );
    }
}
