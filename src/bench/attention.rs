//! `vaced bench --only attention`: one DiT layer's attention at the real shapes, its
//! self-attention (every token to every token) and its cross-attention (every token to the
//! text's rows), through every implementation this build has for the model's head width,
//! each checked against the portable one (f32 scores) on the same inputs.
//!
//! At the 14B's shape (40 heads × 75600 tokens) the portable attention takes minutes a
//! call, so the check covers the first [`REFERENCE_ROWS`] queries (against every key) at
//! every shape, and the portable one is timed only where it is affordable.

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::Timing;
use crate::engine::attention::{self, Implementation};
use crate::engine::config::DitConfig;

/// One implementation timed.
#[derive(Debug, Clone, Serialize)]
pub struct AttentionTiming {
    /// `self` (the tokens attend to themselves) or `cross` (to the text's rows).
    pub attention: &'static str,
    /// Keys each query attends to.
    pub keys: usize,
    /// `portable` or the fused kernel's name.
    pub implementation: String,
    pub timing: Timing,
    pub tflops_per_sec: f64,
    /// `‖out − portable‖ / ‖portable‖`, over the first [`REFERENCE_ROWS`] queries.
    pub relative_error_vs_portable: f64,
    /// Whether [`attention::attention`] picks this one at these shapes by default.
    pub default: bool,
}

/// Queries whose outputs are checked against the portable attention: the reference for all
/// of a 14B layer's 75600 would take minutes, for 4096 of them a few seconds.
pub const REFERENCE_ROWS: usize = 4096;

/// The portable attention is timed up to this many query-key pairs over all heads (a 1.3B
/// layer at 832x480x81 has 1.3e10, a 14B layer at 1280x720x81 2.3e11).
const PORTABLE_TIMED_PAIRS: usize = 20_000_000_000;

/// Times the self-attention over `tokens` tokens and the cross-attention from them to the
/// text's `text_len` rows, with the model's heads, in `dtype`.
pub fn run(
    cfg: &DitConfig,
    tokens: usize,
    dtype: DType,
    device: &Device,
    repeat: usize,
) -> anyhow::Result<Vec<AttentionTiming>> {
    let mut rows = run_shape(cfg, "self", tokens, tokens, dtype, device, repeat)?;
    rows.extend(run_shape(
        cfg,
        "cross",
        tokens,
        cfg.text_len,
        dtype,
        device,
        repeat,
    )?);
    Ok(rows)
}

fn run_shape(
    cfg: &DitConfig,
    attention: &'static str,
    tokens: usize,
    keys: usize,
    dtype: DType,
    device: &Device,
    repeat: usize,
) -> anyhow::Result<Vec<AttentionTiming>> {
    let (heads, head_dim) = (cfg.num_heads, cfg.dim / cfg.num_heads);
    // Heads split off `[B, L, H·D]` projections as the model does: strided views.
    let input = |len: usize| -> candle_core::Result<Tensor> {
        Tensor::randn(0f32, 1.0, (1, len, heads, head_dim), device)?
            .to_dtype(dtype)?
            .transpose(1, 2)
    };
    let (q, k, v) = (input(tokens)?, input(keys)?, input(keys)?);
    let scale = 1.0 / (head_dim as f64).sqrt();
    let flop = 4.0 * (heads * tokens * keys * head_dim) as f64;
    let chosen = attention::implementation_for(&q, &k, &v)?;

    let mut implementations = Vec::new();
    if heads * tokens * keys <= PORTABLE_TIMED_PAIRS {
        implementations.push(Implementation::Portable);
    }
    implementations.extend(
        attention::fused_kernels()
            .into_iter()
            .filter(|&(_, width)| width == head_dim)
            .map(|(implementation, _)| implementation),
    );
    let checked_rows = tokens.min(REFERENCE_ROWS);
    let reference = attention::attention_with(
        Implementation::Portable,
        &q.narrow(2, 0, checked_rows)?,
        &k,
        &v,
        scale,
    )?
    .to_dtype(DType::F32)?;
    let mut rows = Vec::new();
    for implementation in implementations {
        let out = attention::attention_with(implementation, &q, &k, &v, scale)?.narrow(
            2,
            0,
            checked_rows,
        )?;
        let timing = super::time(device, repeat, || {
            attention::attention_with(implementation, &q, &k, &v, scale).map(drop)
        })?;
        let diff = (out.to_dtype(DType::F32)? - &reference)?;
        let norm = |t: &Tensor| -> candle_core::Result<f64> {
            Ok(f64::from(t.sqr()?.sum_all()?.to_scalar::<f32>()?.sqrt()))
        };
        rows.push(AttentionTiming {
            attention,
            keys,
            implementation: match implementation {
                Implementation::Portable => "portable".to_owned(),
                Implementation::Fused(name) => name.to_owned(),
                Implementation::Quantized(name) => format!("{name} (8-bit)"),
            },
            tflops_per_sec: flop / 1e12 / timing.median_secs,
            timing,
            relative_error_vs_portable: norm(&diff)? / norm(&reference)?.max(f64::MIN_POSITIVE),
            default: implementation == chosen,
        });
    }
    Ok(rows)
}
