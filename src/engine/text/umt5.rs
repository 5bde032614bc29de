//! The UMT5 encoder (`T5Encoder` in `wan/modules/t5.py`, `umt5_xxl` uses `shared_pos=False`):
//! RMS norms, attention without 1/√d scaling plus a bucketed relative-position bias that each
//! block owns, and a gated tanh-GELU feed-forward.
//!
//! Attention scores are formed in the weights' dtype, the softmax in f32; norms take their
//! statistics in f32. Padded keys (mask 0) get no attention.

use candle_core::{D, DType, Device, IndexOp, Result, Tensor};
use candle_nn::{Embedding, Module, VarBuilder};

use crate::engine::config::T5Config;
use crate::engine::linear::Linear;
use crate::engine::norm::RmsNorm;

/// Bidirectional relative-position bucket of `rel = key − query` (`_relative_position_bucket`).
/// The logarithmic part is computed in f32 like the reference, so bucket edges agree exactly.
pub fn relative_position_bucket(rel: i64, num_buckets: usize, max_dist: usize) -> usize {
    let half = num_buckets / 2;
    let base = if rel > 0 { half } else { 0 };
    let n = rel.unsigned_abs() as usize;
    let max_exact = half / 2;
    if n < max_exact {
        return base + n;
    }
    let ratio = (n as f32 / max_exact as f32).ln() / (max_dist as f32 / max_exact as f32).ln();
    let large = max_exact + (ratio * (half - max_exact) as f32) as usize;
    base + large.min(half - 1)
}

/// `T5RelativeEmbedding`: a `[num_buckets, heads]` table turned into a bias `[heads, L, L]`.
#[derive(Debug, Clone)]
struct RelativeEmbedding {
    embedding: Embedding,
    num_buckets: usize,
    max_dist: usize,
}

impl RelativeEmbedding {
    fn new(cfg: &T5Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            embedding: candle_nn::embedding(cfg.num_buckets, cfg.num_heads, vb.pp("embedding"))?,
            num_buckets: cfg.num_buckets,
            max_dist: cfg.max_dist,
        })
    }

    fn bias(&self, len: usize, device: &Device) -> Result<Tensor> {
        let buckets: Vec<u32> = (0..len)
            .flat_map(|i| (0..len).map(move |j| (i, j)))
            .map(|(i, j)| {
                relative_position_bucket(j as i64 - i as i64, self.num_buckets, self.max_dist)
                    as u32
            })
            .collect();
        let buckets = Tensor::from_vec(buckets, (len, len), device)?;
        // [L, L, heads] → [heads, L, L]
        self.embedding
            .forward(&buckets)?
            .permute((2, 0, 1))?
            .contiguous()
    }
}

#[derive(Debug, Clone)]
struct SelfAttention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    heads: usize,
}

impl SelfAttention {
    fn new(cfg: &T5Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            q: Linear::new_no_bias(cfg.dim, cfg.dim_attn, vb.pp("q"))?,
            k: Linear::new_no_bias(cfg.dim, cfg.dim_attn, vb.pp("k"))?,
            v: Linear::new_no_bias(cfg.dim, cfg.dim_attn, vb.pp("v"))?,
            o: Linear::new_no_bias(cfg.dim_attn, cfg.dim, vb.pp("o"))?,
            heads: cfg.num_heads,
        })
    }

    /// `x: [B, L, dim]`, `bias: [B or 1, heads, L, L]` with masked keys already at −∞-like.
    fn forward(&self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        let split = |t: Tensor| -> Result<Tensor> {
            let width = t.dim(D::Minus1)? / self.heads;
            t.reshape((b, l, self.heads, width))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.q.forward(x)?)?;
        let k = split(self.k.forward(x)?)?;
        let v = split(self.v.forward(x)?)?;
        // No 1/√d scaling: T5 folds it into the initialisation.
        let scores = q
            .matmul(&k.t()?)?
            .broadcast_add(&bias.to_dtype(q.dtype())?)?;
        let probs =
            candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(v.dtype())?;
        let out = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, ()))?;
        self.o.forward(&out)
    }
}

#[derive(Debug, Clone)]
struct FeedForward {
    gate_0: Linear,
    fc1: Linear,
    fc2: Linear,
}

impl FeedForward {
    fn new(cfg: &T5Config, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            gate_0: Linear::new_no_bias(cfg.dim, cfg.dim_ffn, vb.pp("gate.0"))?,
            fc1: Linear::new_no_bias(cfg.dim, cfg.dim_ffn, vb.pp("fc1"))?,
            fc2: Linear::new_no_bias(cfg.dim_ffn, cfg.dim, vb.pp("fc2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2
            .forward(&(self.fc1.forward(x)? * self.gate_0.forward(x)?.gelu()?)?)
    }
}

#[derive(Debug, Clone)]
struct Block {
    norm1: RmsNorm,
    attn: SelfAttention,
    norm2: RmsNorm,
    ffn: FeedForward,
    pos_embedding: Option<RelativeEmbedding>,
}

/// The UMT5 encoder stack.
#[derive(Debug, Clone)]
pub struct Umt5Encoder {
    token_embedding: Embedding,
    /// Present when every block shares one table (`shared_pos`).
    pos_embedding: Option<RelativeEmbedding>,
    blocks: Vec<Block>,
    norm: RmsNorm,
    cfg: T5Config,
}

impl Umt5Encoder {
    /// Builds the encoder from weights named as in `models_t5_umt5-xxl-enc-bf16.pth`.
    pub fn new(cfg: &T5Config, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::Msg)?;
        let blocks = (0..cfg.num_layers)
            .map(|i| {
                let vb = vb.pp("blocks").pp(i);
                Ok(Block {
                    norm1: RmsNorm::new(cfg.dim, cfg.eps, vb.pp("norm1"))?,
                    attn: SelfAttention::new(cfg, vb.pp("attn"))?,
                    norm2: RmsNorm::new(cfg.dim, cfg.eps, vb.pp("norm2"))?,
                    ffn: FeedForward::new(cfg, vb.pp("ffn"))?,
                    pos_embedding: (!cfg.shared_pos)
                        .then(|| RelativeEmbedding::new(cfg, vb.pp("pos_embedding")))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            token_embedding: candle_nn::embedding(cfg.vocab, cfg.dim, vb.pp("token_embedding"))?,
            pos_embedding: cfg
                .shared_pos
                .then(|| RelativeEmbedding::new(cfg, vb.pp("pos_embedding")))
                .transpose()?,
            blocks,
            norm: RmsNorm::new(cfg.dim, cfg.eps, vb.pp("norm"))?,
            cfg: cfg.clone(),
        })
    }

    pub fn config(&self) -> &T5Config {
        &self.cfg
    }

    /// Encodes `ids: [B, L]` (u32) with `mask: [B, L]` (1 real, 0 padding) → `[B, L, dim]`.
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (b, l) = ids.dims2()?;
        let device = ids.device();
        let mut x = self.token_embedding.forward(ids)?;
        // Additive key mask [B, 1, 1, L]: 0 for real keys, the dtype's minimum for padding.
        let min = match x.dtype() {
            DType::BF16 => f32::from(half::bf16::MIN) as f64,
            DType::F16 => f32::from(half::f16::MIN) as f64,
            _ => f32::MIN as f64,
        };
        let key_mask = mask
            .to_dtype(DType::F32)?
            .eq(0.0)?
            .where_cond(
                &Tensor::full(min as f32, (b, l), device)?,
                &Tensor::zeros((b, l), DType::F32, device)?,
            )?
            .reshape((b, 1, 1, l))?;
        let shared_bias = match &self.pos_embedding {
            Some(pos) => Some(pos.bias(l, device)?),
            None => None,
        };
        for block in &self.blocks {
            let pos_bias = match (&block.pos_embedding, &shared_bias) {
                (Some(pos), _) => pos.bias(l, device)?,
                (None, Some(shared)) => shared.clone(),
                (None, None) => candle_core::bail!("no relative position table for a T5 block"),
            };
            let bias = pos_bias
                .to_dtype(DType::F32)?
                .unsqueeze(0)?
                .broadcast_add(&key_mask)?;
            x = (&x + block.attn.forward(&block.norm1.forward(&x)?, &bias)?)?;
            x = (&x + block.ffn.forward(&block.norm2.forward(&x)?)?)?;
        }
        self.norm.forward(&x)
    }

    /// Encodes one prompt's ids (no padding) → `[L, dim]` states, the rows the DiT receives.
    pub fn encode(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        let len = ids.len();
        let ids = Tensor::from_slice(ids, (1, len), device)?;
        let mask = Tensor::ones((1, len), DType::F32, device)?;
        self.forward(&ids, &mask)?.i(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_the_spec_table() {
        // Spec §2.3: offset for n = |j − i| and +16 when the key is after the query.
        let table = [
            (0, 0),
            (7, 7),
            (8, 8),
            (11, 8),
            (12, 9),
            (15, 9),
            (16, 10),
            (22, 10),
            (23, 11),
            (31, 11),
            (32, 12),
            (45, 12),
            (46, 13),
            (63, 13),
            (64, 14),
            (90, 14),
            (91, 15),
            (511, 15),
        ];
        for (n, offset) in table {
            assert_eq!(
                relative_position_bucket(-(n as i64), 32, 128),
                offset,
                "n = {n}, key before"
            );
            let after = if n == 0 { 0 } else { 16 + offset };
            assert_eq!(
                relative_position_bucket(n as i64, 32, 128),
                after,
                "n = {n}, key after"
            );
        }
    }
}
