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
        let Some(ops) = FusedOps::for_activations(&y, DType::BF16, dim) else {
            assert!(
                !(dev.is_cuda() && test_dtype() == DType::BF16),
                "this CUDA build has no fused row kernels for rows of {dim}"
            );
            eprintln!(
                "{dev:?} {:?}: no fused row kernels to compare",
                test_dtype()
            );
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
