//! Attention as the layers call it, on the test device and dtype, against the plain formula
//! in f64 on the same (dtype-rounded) inputs. On CUDA in bf16 this is the fused kernel, and
//! the test insists on it: a build whose kernels are missing fails here.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use vaced::engine::attention::{
    Implementation, attention, attention_with, fused_kernels, implementation_for,
};

/// `softmax(q·kᵀ·scale)·v` in f64 on the CPU.
fn plain(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Tensor {
    let cpu = |t: &Tensor| {
        t.to_device(&Device::Cpu)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .contiguous()
            .unwrap()
    };
    let (q, k, v) = (cpu(q), cpu(k), cpu(v));
    let scores = (q.matmul(&k.t().unwrap()).unwrap() * scale).unwrap();
    let max = scores.max_keepdim(3).unwrap();
    let e = scores.broadcast_sub(&max).unwrap().exp().unwrap();
    let p = e.broadcast_div(&e.sum_keepdim(3).unwrap()).unwrap();
    p.matmul(&v).unwrap()
}

/// `[B, H, L, D]` as the model makes it: heads split off `[B, L, H·D]` as a strided view.
fn heads(dev: &Device, (b, h, l, d): (usize, usize, usize, usize), shift: f64) -> Tensor {
    (Tensor::randn(0f32, 1.5, (b, l, h, d), dev).unwrap() + shift)
        .unwrap()
        .to_dtype(test_dtype())
        .unwrap()
        .transpose(1, 2)
        .unwrap()
}

#[test]
fn attention_matches_the_formula_on_ragged_shapes() {
    // (B, H, Lq, Lk, D): block-ragged lengths, cross-attention to 512 text rows, the test
    // models' head widths and the real one.
    let shapes = [
        (2, 3, 200, 77, 128),
        (1, 12, 1000, 512, 128),
        (1, 2, 130, 513, 48),
        (1, 2, 64, 64, 32),
        (1, 4, 257, 300, 64),
    ];
    // One device for all inputs: each `Device::new_cuda` is a distinct candle device.
    let dev = test_device();
    let fused_expected = dev.is_cuda() && test_dtype() == DType::BF16;
    let tol = tolerance(1e-5, 1e-2);
    for (b, h, lq, lk, d) in shapes {
        let (q, k, v) = (
            heads(&dev, (b, h, lq, d), 0.0),
            heads(&dev, (b, h, lk, d), 0.3),
            heads(&dev, (b, h, lk, d), 0.0),
        );
        let scale = 1.0 / (d as f64).sqrt();
        let implementation = implementation_for(&q, &k, &v).unwrap();
        if fused_expected {
            assert!(
                matches!(implementation, Implementation::Fused(_)),
                "head width {d}: CUDA bf16 attention should use a fused kernel, got {implementation:?}"
            );
        }
        let got = attention(&q, &k, &v, scale).unwrap();
        assert_eq!(got.dims(), [b, h, lq, d]);
        assert_rel(
            &format!("attention {implementation:?} B{b} H{h} Lq{lq} Lk{lk} D{d}"),
            &got,
            &plain(&q, &k, &v, scale).to_dtype(got.dtype()).unwrap(),
            tol,
        );
    }
}

#[test]
fn peaked_scores_stay_finite() {
    // Large logits (std ~160): the online softmax must subtract the running maximum.
    let dev = test_device();
    let shape = (1, 2, 150, 64);
    let (q, k, v) = (
        (heads(&dev, shape, 0.0) * 3.0).unwrap(),
        (heads(&dev, shape, 0.0) * 3.0).unwrap(),
        heads(&dev, shape, 0.0),
    );
    let got = attention(&q, &k, &v, 1.0).unwrap();
    let want = plain(&q, &k, &v, 1.0).to_dtype(got.dtype()).unwrap();
    // Scores of order 100: f32 rounds them to ~1e-5, which the softmax amplifies.
    assert_rel("peaked attention", &got, &want, tolerance(1e-4, 2e-2));
}

#[test]
fn every_eight_bit_kernel_stays_close_to_the_formula() {
    // The 8-bit kernels exist for CUDA bf16 only; elsewhere there is nothing to check. Each
    // one of a width (the warp-specialised INT8 q·kᵀ / bf16 p·v kernels for 128, then the
    // Triton INT8 / FP8 ones) runs on heads split off a projection.
    let dev = test_device();
    if !(dev.is_cuda() && test_dtype() == DType::BF16) {
        return;
    }
    // (B, H, Lq, Lk, D, logit scale): as above, plus peaked scores and k with a large
    // shared offset (which the kernels subtract before quantizing), one query, and lengths
    // that end mid-block.
    let shapes = [
        (2, 3, 200, 77, 128, 1.0),
        (1, 12, 1000, 512, 128, 1.0),
        (2, 2, 1, 300, 128, 1.0),
        (1, 2, 4100, 4133, 128, 1.0),
        (1, 2, 130, 513, 48, 1.0),
        (1, 2, 64, 64, 32, 1.0),
        (1, 4, 257, 300, 64, 1.0),
        (1, 2, 300, 300, 128, 3.0),
    ];
    let kernels: Vec<_> = fused_kernels()
        .into_iter()
        .filter(|(i, _)| matches!(i, Implementation::Quantized(_)))
        .collect();
    for (b, h, lq, lk, d, peak) in shapes {
        let of_width: Vec<_> = kernels.iter().filter(|(_, w)| *w == d).collect();
        assert!(
            !of_width.is_empty(),
            "no 8-bit attention kernel for head width {d}"
        );
        let (q, k, v) = (
            (heads(&dev, (b, h, lq, d), 0.0) * peak).unwrap(),
            (heads(&dev, (b, h, lk, d), 2.0) * peak).unwrap(),
            heads(&dev, (b, h, lk, d), 0.5),
        );
        let scale = 1.0 / (d as f64).sqrt();
        let want = plain(&q, &k, &v, scale).to_dtype(DType::BF16).unwrap();
        for (kernel, _) in of_width {
            let got = attention_with(*kernel, &q, &k, &v, scale).unwrap();
            assert_eq!(got.dims(), [b, h, lq, d]);
            assert_rel(
                &format!("8-bit attention {kernel:?} B{b} H{h} Lq{lq} Lk{lk} D{d} x{peak}"),
                &got,
                &want,
                // e4m3 keeps 3 mantissa bits of p and v: with near-uniform attention over
                // random values the output is a small average and measures 2-5e-2 (bf16
                // 2e-3; INT8 scores with bf16 p·v ~1e-2); a wrong scale or a dropped block
                // shows as errors near 1.
                6e-2,
            );
        }
    }
}

#[test]
fn every_bf16_kernel_matches_the_formula() {
    // Each fused kernel of a width (the default and the alternatives `VACED_ATTENTION_KERNEL`
    // can pick, the warp-specialised TMA ones among them) on ragged lengths, on heads split
    // off a projection and on contiguous `[B, H, L, D]`, and with one query.
    let dev = test_device();
    if !(dev.is_cuda() && test_dtype() == DType::BF16) {
        return;
    }
    let shapes = [
        (2, 3, 200, 77, 128),
        (1, 12, 1000, 512, 128),
        (2, 2, 1, 300, 128),
        (1, 2, 4100, 4133, 128),
        (1, 2, 130, 513, 48),
        (1, 4, 257, 300, 64),
    ];
    for (name, width) in fused_kernels() {
        let Implementation::Fused(_) = name else {
            continue;
        };
        for &(b, h, lq, lk, d) in shapes.iter().filter(|s| s.4 == width) {
            for contiguous in [false, true] {
                let split = |l, shift| {
                    let t = heads(&dev, (b, h, l, d), shift);
                    if contiguous {
                        t.contiguous().unwrap()
                    } else {
                        t
                    }
                };
                let (q, k, v) = (split(lq, 0.0), split(lk, 0.3), split(lk, 0.0));
                let scale = 1.0 / (d as f64).sqrt();
                let got = attention_with(name, &q, &k, &v, scale).unwrap();
                assert_eq!(got.dims(), [b, h, lq, d]);
                assert_rel(
                    &format!("{name:?} B{b} H{h} Lq{lq} Lk{lk} D{d} contiguous {contiguous}"),
                    &got,
                    &plain(&q, &k, &v, scale).to_dtype(got.dtype()).unwrap(),
                    1e-2,
                );
            }
        }
    }
}
