//! One DiT attention block (`WanAttentionBlock` in `wan/modules/model.py`): modulated
//! self-attention with q/k RMSNorm and 3-D RoPE, ungated cross-attention to the text, and a
//! modulated FFN. Used for the main blocks and, with projections around it, the VACE blocks.
//!
//! Tensors are `[B, L, dim]`; the residual stream, modulation and gates are f32.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use super::rope::Rope;
use crate::engine::attention::attention;
use crate::engine::config::DitConfig;
use crate::engine::fused_ops::{FusedOps, ProductInput};
use crate::engine::linear::Linear;
use crate::engine::norm::{AffineLayerNorm, RmsNorm, layer_norm};
use crate::engine::regions::region;

/// `[B, L, heads·hd]` → `[B, heads, L, hd]`.
fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, l, d) = x.dims3()?;
    // A strided view: attention reads it in place (the fused kernel) or copies what it needs.
    x.reshape((b, l, heads, d / heads))?.transpose(1, 2)
}

/// `[B, heads, L, hd]` → `[B, L, heads·hd]`.
fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (b, h, l, hd) = x.dims4()?;
    x.transpose(1, 2)?.reshape((b, l, h * hd))
}

/// q, k, v, o projections with the optional full-width q/k RMSNorm shared by both attentions.
#[derive(Debug, Clone)]
struct Projections {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    norm_q: Option<RmsNorm>,
    norm_k: Option<RmsNorm>,
    heads: usize,
    scale: f64,
}

impl Projections {
    fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.dim;
        let norm = |name: &str| -> Result<Option<RmsNorm>> {
            cfg.qk_norm
                .then(|| RmsNorm::new(d, cfg.eps, vb.pp(name).to_dtype(DType::F32)))
                .transpose()
        };
        Ok(Self {
            q: Linear::for_products(d, d, vb.pp("q"))?,
            k: Linear::for_products(d, d, vb.pp("k"))?,
            v: Linear::for_products(d, d, vb.pp("v"))?,
            o: Linear::for_products(d, d, vb.pp("o"))?,
            norm_q: norm("norm_q")?,
            norm_k: norm("norm_k")?,
            heads: cfg.num_heads,
            scale: 1.0 / (cfg.head_dim() as f64).sqrt(),
        })
    }

    fn normed(norm: &Option<RmsNorm>, x: Tensor) -> Result<Tensor> {
        match norm {
            Some(norm) => norm.forward(&x.to_dtype(DType::F32)?),
            None => Ok(x),
        }
    }

    fn query(&self, x: &Tensor) -> Result<Tensor> {
        split_heads(&Self::normed(&self.norm_q, self.q.forward(x)?)?, self.heads)
    }

    /// Keys and values `[B, heads, L, hd]` of `x`.
    fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let k = split_heads(&Self::normed(&self.norm_k, self.k.forward(x)?)?, self.heads)?;
        let v = split_heads(&self.v.forward(x)?, self.heads)?;
        Ok((k, v))
    }

    /// q (with `rope`) or k through the fused kernels: `[B, heads, L, hd]` bf16.
    fn fused_qk(
        &self,
        ops: &FusedOps,
        linear: &Linear,
        norm: &Option<RmsNorm>,
        x: &ProductInput,
        rope: Option<&Rope>,
    ) -> Result<Tensor> {
        let (Some(bias), Some(norm)) = (linear.bias(), norm) else {
            candle_core::bail!("fused q/k needs a bias and the q/k norm");
        };
        let (weight, eps) = norm.parts();
        let y = ops.product(linear, x)?;
        let out = ops.bias_rms_norm_rope(&y, bias, weight, eps, rope.map(Rope::tables))?;
        split_heads(&out, self.heads)
    }

    /// Attention in the projections' dtype, as the reference casts q and k (f32 after the
    /// norm and RoPE) to bf16 before its attention kernel.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Tensor> {
        let dtype = v.dtype();
        let out = attention(&q.to_dtype(dtype)?, &k.to_dtype(dtype)?, v, self.scale)?;
        self.o.forward(&merge_heads(&out)?)
    }
}

/// Keys and values of the text context for one block's cross-attention; they depend only on
/// the prompt, so a run computes them once per prompt.
#[derive(Debug, Clone)]
pub struct CrossKv {
    k: Tensor,
    v: Tensor,
}

/// The parameter tensors of one block, named as in the checkpoint.
#[derive(Debug, Clone)]
pub struct AttentionBlock {
    /// `[1, 6, dim]`, f32.
    modulation: Tensor,
    self_attn: Projections,
    /// Affine LayerNorm before cross-attention (`cross_attn_norm`).
    norm3: Option<AffineLayerNorm>,
    cross_attn: Projections,
    ffn_0: Linear,
    ffn_2: Linear,
    eps: f64,
}

impl AttentionBlock {
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let f32_vb = vb.to_dtype(DType::F32);
        Ok(Self {
            modulation: f32_vb.get((1, 6, cfg.dim), "modulation")?,
            self_attn: Projections::new(cfg, vb.pp("self_attn"))?,
            norm3: cfg
                .cross_attn_norm
                .then(|| AffineLayerNorm::new(cfg.dim, cfg.eps, f32_vb.pp("norm3")))
                .transpose()?,
            cross_attn: Projections::new(cfg, vb.pp("cross_attn"))?,
            ffn_0: Linear::for_products(cfg.dim, cfg.ffn_dim, vb.pp("ffn.0"))?,
            ffn_2: Linear::for_products(cfg.ffn_dim, cfg.dim, vb.pp("ffn.2"))?,
            eps: cfg.eps,
        })
    }

    /// Cross-attention keys/values of the embedded text `[B, text_len, dim]`.
    pub fn cross_kv(&self, text: &Tensor) -> Result<CrossKv> {
        let (k, v) = self.cross_attn.keys_values(text)?;
        // Cast once per prompt rather than in every step's attention.
        let k = k.to_dtype(v.dtype())?;
        Ok(CrossKv { k, v })
    }

    /// Whether [`Self::forward`] can take the fused GPU kernels for `x`.
    fn fused_ops(&self, x: &Tensor) -> Option<FusedOps> {
        let p = &self.self_attn;
        let complete = p.norm_q.is_some()
            && p.norm_k.is_some()
            && [
                &p.q,
                &p.k,
                &p.v,
                &p.o,
                &self.cross_attn.q,
                &self.cross_attn.o,
            ]
            .iter()
            .all(|l| l.bias().is_some())
            && self.ffn_0.bias().is_some()
            && self.ffn_2.bias().is_some();
        let dim = self.modulation.dim(2).ok()?;
        complete
            .then(|| FusedOps::for_activations(x, self.ffn_0.dtype(), dim))
            .flatten()
    }

    /// One block over the residual stream `x: [B, L, dim]` (f32) with the step's
    /// `e0: [B, 6, dim]`.
    pub fn forward(&self, x: &Tensor, e0: &Tensor, rope: &Rope, text: &CrossKv) -> Result<Tensor> {
        self.attend_text(&self.attend_self(x, e0, rope)?, text)
    }

    /// The block's first half, modulation and self-attention with its gated residual: all
    /// that comes before the text, so a guided step's prompts can share it where their
    /// residual streams are still the same (the first block of each branch).
    pub fn attend_self(&self, x: &Tensor, e0: &Tensor, rope: &Rope) -> Result<SelfAttended> {
        let ops = self.fused_ops(x);
        let dev = x.device();
        let m = region("modulation", dev, || {
            self.modulation.broadcast_add(e0)?.chunk(6, 1)
        })?;
        let (shift_sa, scale_sa, gate_sa) = (&m[0], &m[1], &m[2]);
        let sa = &self.self_attn;
        let x = match &ops {
            Some(ops) => self.self_attention_fused(ops, x, &m, rope)?,
            None => {
                // Self-attention on the modulated LayerNorm.
                let a = modulate(&layer_norm(x, self.eps)?, shift_sa, scale_sa)?;
                let q = rope.apply(&sa.query(&a)?)?;
                let (k, v) = sa.keys_values(&a)?;
                let k = rope.apply(&k)?;
                let y = sa.attend(&q, &k, &v)?;
                (x + y.to_dtype(DType::F32)?.broadcast_mul(gate_sa)?)?
            }
        };
        Ok(SelfAttended { x, m, ops })
    }

    /// The block's second half over [`Self::attend_self`]'s result: cross-attention to the
    /// prompt `text`, then the modulated FFN.
    pub fn attend_text(&self, s: &SelfAttended, text: &CrossKv) -> Result<Tensor> {
        if let Some(ops) = &s.ops {
            return self.text_and_ffn_fused(ops, &s.x, &s.m, text);
        }
        let (x, m) = (&s.x, &s.m);
        let (shift_ff, scale_ff, gate_ff) = (&m[3], &m[4], &m[5]);

        // Cross-attention to the text, neither modulated nor gated.
        let normed = match &self.norm3 {
            Some(norm) => norm.forward(x)?,
            None => x.clone(),
        };
        let q = self.cross_attn.query(&normed)?;
        let y = self.cross_attn.attend(&q, &text.k, &text.v)?;
        let x = (x + y.to_dtype(DType::F32)?)?;

        // Feed-forward on the modulated LayerNorm.
        let b = modulate(&layer_norm(&x, self.eps)?, shift_ff, scale_ff)?;
        let y = self.ffn_2.forward(&self.ffn_0.forward(&b)?.gelu()?)?;
        x + y.to_dtype(DType::F32)?.broadcast_mul(gate_ff)?
    }
}

/// A block's residual stream after its self-attention, with the step's modulation chunks
/// (shift, scale, gate for self-attention, then for the FFN) and the fused kernels' handle
/// where they apply.
#[derive(Debug, Clone)]
pub struct SelfAttended {
    x: Tensor,
    m: Vec<Tensor>,
    ops: Option<FusedOps>,
}

impl AttentionBlock {
    /// [`Self::attend_self`] through the fused GPU kernels: the same operations and
    /// roundings, a memory pass each instead of several. `m`: the modulation chunks.
    fn self_attention_fused(
        &self,
        ops: &FusedOps,
        x: &Tensor,
        m: &[Tensor],
        rope: &Rope,
    ) -> Result<Tensor> {
        let dev = x.device();
        let sa = &self.self_attn;
        let a = region("norm1", dev, || {
            ops.layer_norm_input(x, &(&m[1] + 1.0)?, &m[0], self.eps)
        })?;
        let q = region("q: product, norm, rope", dev, || {
            sa.fused_qk(ops, &sa.q, &sa.norm_q, &a, Some(rope))
        })?;
        let k = region("k: product, norm, rope", dev, || {
            sa.fused_qk(ops, &sa.k, &sa.norm_k, &a, Some(rope))
        })?;
        let v = region("v: product", dev, || {
            split_heads(&ops.linear_bias(&sa.v, &a)?, sa.heads)
        })?;
        let y = region("self-attention", dev, || {
            merge_heads(&attention(&q, &k, &v, sa.scale)?)
        })?;
        region("o: product, gated residual", dev, || {
            ops.product_residual(&sa.o, &ops.input(&y)?, x, Some(&m[2]))
        })
    }

    /// [`Self::attend_text`] through the fused GPU kernels.
    fn text_and_ffn_fused(
        &self,
        ops: &FusedOps,
        x: &Tensor,
        m: &[Tensor],
        text: &CrossKv,
    ) -> Result<Tensor> {
        let dev = x.device();
        let ca = &self.cross_attn;
        let normed = region("norm3", dev, || match &self.norm3 {
            Some(norm) => {
                let (w, b, eps) = norm.parts();
                ops.layer_norm_input(x, w, b, eps)
            }
            None => ops.input(&x.to_dtype(DType::BF16)?),
        })?;
        let q = region("cross q: product, norm", dev, || {
            ca.fused_qk(ops, &ca.q, &ca.norm_q, &normed, None)
        })?;
        let y = region("cross-attention", dev, || {
            merge_heads(&attention(&q, &text.k, &text.v, ca.scale)?)
        })?;
        let x = region("cross o: product, residual", dev, || {
            ops.product_residual(&ca.o, &ops.input(&y)?, x, None)
        })?;

        let b = region("norm2", dev, || {
            ops.layer_norm_input(&x, &(&m[4] + 1.0)?, &m[3], self.eps)
        })?;
        let h = region("ffn.0: product, bias, gelu", dev, || {
            ops.linear_bias_gelu(&self.ffn_0, &b)
        })?;
        region("ffn.2: product, gated residual", dev, || {
            ops.product_residual(&self.ffn_2, &ops.input(&h)?, &x, Some(&m[5]))
        })
    }
}

/// `x · (1 + scale) + shift`, in f32.
pub fn modulate(x: &Tensor, shift: &Tensor, scale: &Tensor) -> Result<Tensor> {
    x.to_dtype(DType::F32)?
        .broadcast_mul(&(scale + 1.0)?)?
        .broadcast_add(shift)
}
