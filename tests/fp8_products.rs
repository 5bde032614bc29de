//! FP8 linear layers (`VACED_LINEAR_PRECISION=fp8`, CUDA builds only) against the plain
//! product in f64 on the same bf16 inputs, and the DiT forward through them against the
//! reference fixture. Run on a GPU with `VACED_TEST_DEVICE=cuda:0 VACED_TEST_DTYPE=bf16`.
#![cfg(feature = "cuda")]

mod common;

use candle_core::{DType, Device, IndexOp, Tensor};
use common::*;
use vaced::engine::fp8_gemm::{self, Epilogue};

/// e4m3 keeps 3 mantissa bits: each operand is rounded to within 2⁻⁴ relative, ~3.7% rms
/// for a product of two Gaussian operands (measured on the H200; PyTorch's rowwise
/// `_scaled_mm` measures the same). Bounds with room for the worst row.
const PRODUCT_REL_TOL: f64 = 6e-2;
const ROW_REL_TOL: f64 = 9e-2;

/// The test device when it is a GPU; FP8 products have no CPU path.
fn cuda_device() -> Option<Device> {
    let dev = test_device();
    if !dev.is_cuda() {
        eprintln!("skipped: FP8 products need VACED_TEST_DEVICE=cuda:N");
        return None;
    }
    Some(dev)
}

/// Gaussian values of standard deviation `std` rounded to bf16.
fn randn_bf16<S: Into<candle_core::Shape>>(dev: &Device, shape: S, std: f32) -> Tensor {
    Tensor::randn(0f32, std, shape, dev)
        .unwrap()
        .to_dtype(DType::BF16)
        .unwrap()
}

fn on_cpu_f64(t: &Tensor) -> Tensor {
    t.to_device(&Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
}

fn gelu_tanh(x: &Tensor) -> Tensor {
    x.gelu().unwrap()
}

/// `‖got − want‖ / ‖want‖` per row of `[rows, out]` matrices.
fn row_errors(got: &Tensor, want: &Tensor) -> Vec<f64> {
    let diff = (got - want).unwrap().sqr().unwrap().sum(1).unwrap();
    let norm = want.sqr().unwrap().sum(1).unwrap();
    let (diff, norm) = (
        diff.to_vec1::<f64>().unwrap(),
        norm.to_vec1::<f64>().unwrap(),
    );
    diff.iter()
        .zip(&norm)
        .map(|(d, n)| (d / n).sqrt())
        .collect()
}

#[test]
fn fp8_products_match_the_formula_within_e4m3_rounding_on_every_row() {
    let Some(dev) = cuda_device() else {
        return;
    };
    // (rows, in, out): ragged token counts, the tiny models' widths, the 1.3B block's, a
    // 14B row's (its quantiser loads 5120 = 4096 + 1024 as two parts).
    let shapes = [
        (77, 48, 96),
        (1000, 1536, 1536),
        (300, 1536, 8960),
        (200, 8960, 1536),
        (150, 5120, 256),
    ];
    for (rows, in_dim, out_dim) in shapes {
        // Activations whose rows differ in scale by 10⁵, as tokens do: one scale per row
        // must keep the quiet rows as exact as the loud ones.
        let scale = Tensor::from_iter(
            (0..rows).map(|r| match r % 7 {
                0 => 50f32,
                3 => 1e-3,
                _ => 1.0,
            }),
            &dev,
        )
        .unwrap()
        .reshape((rows, 1))
        .unwrap();
        let x = Tensor::randn(0.3f32, 1.0, (rows, in_dim), &dev)
            .unwrap()
            .broadcast_mul(&scale)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        // Output channels differ in scale too (one scale per weight row).
        let w_scale = Tensor::from_iter(
            (0..out_dim).map(|o| if o % 5 == 0 { 0.2f32 } else { 0.02 }),
            &dev,
        )
        .unwrap()
        .reshape((out_dim, 1))
        .unwrap();
        let w = Tensor::randn(0f32, 1.0, (out_dim, in_dim), &dev)
            .unwrap()
            .broadcast_mul(&w_scale)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        let bias = randn_bf16(&dev, out_dim, 0.5);
        let product = on_cpu_f64(&x).matmul(&on_cpu_f64(&w).t().unwrap()).unwrap();
        let with_bias = product.broadcast_add(&on_cpu_f64(&bias)).unwrap();
        let xq = fp8_gemm::quantize_rows(&x).unwrap();
        let wq = fp8_gemm::quantize_rows(&w).unwrap();
        for (epilogue, want) in [
            (None, product.clone()),
            (Some(Epilogue::Bias), with_bias.clone()),
            (Some(Epilogue::BiasGelu), gelu_tanh(&with_bias)),
        ] {
            let got = fp8_gemm::linear(&xq, &wq, Some(&bias), epilogue).unwrap();
            assert_eq!(got.dims(), [rows, out_dim]);
            assert_eq!(got.dtype(), DType::BF16);
            let got = on_cpu_f64(&got);
            let what = format!("{rows}x{in_dim} -> {out_dim}, {epilogue:?}");
            let (rel, _) = errors(&got, &want);
            let rows_err = row_errors(&got, &want);
            let (worst_row, worst) = rows_err
                .iter()
                .copied()
                .enumerate()
                .fold((0, 0f64), |a, b| if b.1 > a.1 { b } else { a });
            eprintln!("{what}: relative error {rel:.3e}, worst row {worst_row}: {worst:.3e}");
            assert!(rel <= PRODUCT_REL_TOL, "{what}: relative error {rel:.3e}");
            assert!(
                worst <= ROW_REL_TOL,
                "{what}: row {worst_row} relative error {worst:.3e}"
            );
        }
    }
}

#[test]
fn a_residual_update_in_the_epilogue_matches_the_formula() {
    let Some(dev) = cuda_device() else {
        return;
    };
    // (rows, in, out): the o projection's and the FFN's second layer's shapes, ragged.
    for (rows, in_dim, out_dim) in [(333, 1536, 1536), (200, 8960, 1536), (50, 48, 96)] {
        let x = randn_bf16(&dev, (1, rows, in_dim), 1.0);
        let w = randn_bf16(&dev, (out_dim, in_dim), 0.02);
        let bias = randn_bf16(&dev, out_dim, 0.5);
        // The residual stream is large next to one update, as in the model.
        let residual = Tensor::randn(0f32, 4.0, (1, rows, out_dim), &dev).unwrap();
        let gate = Tensor::randn(0f32, 1.0, (1, 1, out_dim), &dev).unwrap();
        let update = on_cpu_f64(&x.squeeze(0).unwrap())
            .matmul(&on_cpu_f64(&w).t().unwrap())
            .unwrap()
            .broadcast_add(&on_cpu_f64(&bias))
            .unwrap();
        let (xq, wq) = (
            fp8_gemm::quantize_rows(&x).unwrap(),
            fp8_gemm::quantize_rows(&w).unwrap(),
        );
        for gated in [true, false] {
            let got = fp8_gemm::linear_residual(&xq, &wq, &bias, gated.then_some(&gate), &residual)
                .unwrap();
            // cuBLASLt has no such algorithm for some shapes (the callers then add the
            // residual in a separate pass); it must have one for the model's main width.
            let Some(got) = got else {
                assert_ne!(
                    in_dim, 1536,
                    "no FP8 residual product for {rows}x{in_dim} -> {out_dim}"
                );
                eprintln!("{rows}x{in_dim} -> {out_dim}: no residual product (callers fall back)");
                continue;
            };
            assert_eq!(got.dims(), [1, rows, out_dim]);
            assert_eq!(got.dtype(), DType::F32);
            let scaled = if gated {
                update
                    .broadcast_mul(&on_cpu_f64(&gate.squeeze(0).unwrap()))
                    .unwrap()
            } else {
                update.clone()
            };
            let got_update = (on_cpu_f64(&got.squeeze(0).unwrap())
                - on_cpu_f64(&residual.squeeze(0).unwrap()))
            .unwrap();
            let (rel, _) = errors(&got_update, &scaled);
            let what = format!("{rows}x{in_dim} -> {out_dim}, gate {gated}");
            eprintln!("{what}: update's relative error {rel:.3e}");
            assert!(
                rel <= PRODUCT_REL_TOL,
                "{what}: update's relative error {rel:.3e}"
            );
        }
    }
}

#[test]
fn an_all_zero_row_gives_exactly_the_bias() {
    let Some(dev) = cuda_device() else {
        return;
    };
    let x = randn_bf16(&dev, (20, 64), 1.0);
    let x = Tensor::cat(
        &[
            &x.i(..10).unwrap(),
            &x.i(..1).unwrap().zeros_like().unwrap(),
            &x.i(11..).unwrap(),
        ],
        0,
    )
    .unwrap();
    let w = randn_bf16(&dev, (32, 64), 0.05);
    let bias = randn_bf16(&dev, 32, 1.0);
    let got = fp8_gemm::linear(
        &fp8_gemm::quantize_rows(&x).unwrap(),
        &fp8_gemm::quantize_rows(&w).unwrap(),
        Some(&bias),
        Some(Epilogue::Bias),
    )
    .unwrap();
    let row = got
        .i(10)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let bias = bias.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(
        row, bias,
        "a zero input row must give the bias alone, not NaN or noise"
    );
}

#[test]
fn rows_of_a_width_the_products_cannot_take_are_refused_with_the_reason() {
    let Some(dev) = cuda_device() else {
        return;
    };
    let x = Tensor::zeros((4, 40), DType::BF16, &dev).unwrap();
    let err = fp8_gemm::quantize_rows(&x).unwrap_err().to_string();
    assert!(err.contains("multiple of 16"), "{err}");
}

#[test]
fn f32_rows_are_quantised_as_they_are() {
    // The VACE stream is f32: its rows are quantised without a bf16 copy first.
    let Some(dev) = cuda_device() else {
        return;
    };
    let x = Tensor::randn(0f32, 3.0, (1, 100, 1536), &dev).unwrap();
    let w = randn_bf16(&dev, (256, 1536), 0.02);
    let got = fp8_gemm::linear(
        &fp8_gemm::quantize_rows(&x).unwrap(),
        &fp8_gemm::quantize_rows(&w).unwrap(),
        None,
        None,
    )
    .unwrap();
    assert_eq!(got.dims(), [1, 100, 256]);
    let want = on_cpu_f64(&x.squeeze(0).unwrap())
        .matmul(&on_cpu_f64(&w).t().unwrap())
        .unwrap();
    let (rel, _) = errors(&on_cpu_f64(&got.squeeze(0).unwrap()), &want);
    eprintln!("f32 rows: relative error {rel:.3e}");
    assert!(rel <= PRODUCT_REL_TOL, "f32 rows: relative error {rel:.3e}");
}

#[test]
fn layer_norm_rows_quantised_in_the_norm_pass_match_the_formula() {
    let Some(dev) = cuda_device() else {
        return;
    };
    for dim in [5120, 1536, 96] {
        let tokens = 45;
        // A residual stream with a large mean per token, modulated per channel.
        let offset = Tensor::randn(0f32, 20.0, (1, tokens, 1), &dev).unwrap();
        let x = Tensor::randn(0f32, 3.0, (1, tokens, dim), &dev)
            .unwrap()
            .broadcast_add(&offset)
            .unwrap();
        let w = (Tensor::randn(0f32, 0.5, (1, dim), &dev).unwrap() + 1.0).unwrap();
        let b = Tensor::randn(0f32, 0.5, (1, dim), &dev).unwrap();
        let rows = fp8_gemm::layer_norm_affine(&x, &w, &b, 1e-6).unwrap();
        // Times the identity (exact in e4m3), the product reads back what the pass stored.
        let identity = Tensor::eye(dim, DType::BF16, &dev).unwrap();
        let got = fp8_gemm::linear(
            &rows,
            &fp8_gemm::quantize_rows(&identity).unwrap(),
            None,
            None,
        )
        .unwrap();
        let got = on_cpu_f64(&got).reshape((tokens, dim)).unwrap();
        let want = vaced::engine::norm::layer_norm(&on_cpu_f64(&x), 1e-6)
            .unwrap()
            .broadcast_mul(&on_cpu_f64(&w))
            .unwrap()
            .broadcast_add(&on_cpu_f64(&b))
            .unwrap()
            .reshape((tokens, dim))
            .unwrap();
        let (rel, _) = errors(&got, &want);
        let worst = row_errors(&got, &want).into_iter().fold(0f64, f64::max);
        eprintln!(
            "LayerNorm rows of {dim} in e4m3: relative error {rel:.3e}, worst row {worst:.3e}"
        );
        assert!(
            rel <= PRODUCT_REL_TOL,
            "rows of {dim}: relative error {rel:.3e}"
        );
        assert!(worst <= ROW_REL_TOL, "rows of {dim}: worst row {worst:.3e}");
    }
}
