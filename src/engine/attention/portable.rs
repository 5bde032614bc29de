//! Attention from candle's matrix products and softmax: any device, any dtype.
//!
//! It never materialises more than [`SCORE_BUDGET_BYTES`] of attention scores: queries are
//! processed in chunks, each against all keys. At 832x480x81 the full score matrix of one
//! VACE-1.3B layer would be 32760² × 12 heads × 4 B = 51 GB.

use candle_core::{DType, Result, Tensor};

/// Upper bound on the f32 score matrix held at once by the portable implementation on the
/// CPU.
pub const SCORE_BUDGET_BYTES: usize = 256 << 20;
/// The same bound on a GPU, where fewer, larger chunks keep the device busy.
pub const GPU_SCORE_BUDGET_BYTES: usize = 4 << 30;

/// `softmax(q·kᵀ·scale)·v` for `q: [B, H, Lq, D]`, `k, v: [B, H, Lk, D]`; returns
/// `[B, H, Lq, D]` in the dtype of `q`. Scores and softmax are computed in f32.
pub fn attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Result<Tensor> {
    let (b, h, lq, _) = q.dims4()?;
    let lk = k.dim(2)?;
    let dtype = q.dtype();
    let k_t = k.to_dtype(DType::F32)?.transpose(2, 3)?.contiguous()?;
    let v = v.to_dtype(DType::F32)?.contiguous()?;
    let budget = if q.device().is_cpu() {
        SCORE_BUDGET_BYTES
    } else {
        GPU_SCORE_BUDGET_BYTES
    };
    let rows_per_chunk = (budget / (4 * b * h * lk).max(1)).clamp(1, lq.max(1));
    let mut outputs = Vec::with_capacity(lq.div_ceil(rows_per_chunk));
    let mut start = 0;
    while start < lq {
        let len = rows_per_chunk.min(lq - start);
        let q_chunk = q
            .narrow(2, start, len)?
            .to_dtype(DType::F32)?
            .contiguous()?;
        let scores = (q_chunk.matmul(&k_t)? * scale)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        outputs.push(probs.matmul(&v)?);
        start += len;
    }
    Tensor::cat(&outputs, 2)?.to_dtype(dtype)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64) -> Tensor {
        let scores = (q.matmul(&k.transpose(2, 3).unwrap()).unwrap() * scale).unwrap();
        candle_nn::ops::softmax_last_dim(&scores)
            .unwrap()
            .matmul(v)
            .unwrap()
    }

    #[test]
    fn chunked_attention_matches_the_plain_formula() {
        let dev = Device::Cpu;
        // Long enough that the budget forces several query chunks.
        let lk = 4096;
        let q = Tensor::randn(0f32, 1.0, (1, 2, 9000, 8), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (1, 2, lk, 8), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (1, 2, lk, 8), &dev).unwrap();
        assert!(9000 * lk * 2 * 4 > SCORE_BUDGET_BYTES);
        let got = attention(&q, &k, &v, 0.35).unwrap();
        let want = reference(&q, &k, &v, 0.35);
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
