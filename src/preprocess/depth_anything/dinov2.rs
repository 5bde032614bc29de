//! The DINOv2 ViT encoder of Depth-Anything-V2 (`depth_anything_v2/dinov2.py` and `layers/`
//! of ali-vilab/VACE 48eb44f) in inference mode: patch embedding, class token, resampled
//! positional embedding, pre-norm blocks with LayerScale, and the final norm applied to the
//! blocks the depth head taps. Tokens are `(batch, tokens, dim)`, class token first.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Linear, VarBuilder};

use super::Encoder;
use super::pos_embed;
use super::transform::PATCH_SIZE;
use crate::engine::norm::AffineLayerNorm;

/// `partial(nn.LayerNorm, eps=1e-6)` in `DinoVisionTransformer`.
const LAYER_NORM_EPS: f64 = 1e-6;
/// `mlp_ratio` of every DINOv2 size.
const MLP_RATIO: usize = 4;
/// Positions of the trained grid: `img_size=518` / 14 = 37 per side, plus the class token.
const POS_TOKENS: usize = 37 * 37 + 1;

/// `Attention` (the reference's `MemEffAttention` falls back to it without xFormers).
#[derive(Debug, Clone)]
struct Attention {
    qkv: Linear,
    proj: Linear,
    num_heads: usize,
}

impl Attention {
    fn new(dim: usize, num_heads: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            qkv: candle_nn::linear(dim, 3 * dim, vb.pp("qkv"))?,
            proj: candle_nn::linear(dim, dim, vb.pp("proj"))?,
            num_heads,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, n, c) = x.dims3()?;
        let head_dim = c / self.num_heads;
        let qkv = self
            .qkv
            .forward(x)?
            .reshape((b, n, 3, self.num_heads, head_dim))?
            .permute((2, 0, 3, 1, 4))?; // (3, b, heads, n, head_dim)
        let scale = (head_dim as f64).powf(-0.5);
        let q = (qkv.get(0)? * scale)?.contiguous()?;
        let k = qkv.get(1)?.contiguous()?;
        let v = qkv.get(2)?.contiguous()?;
        let attn = candle_nn::ops::softmax_last_dim(&q.matmul(&k.t()?)?)?; // (b, heads, n, n)
        let x = attn.matmul(&v)?.transpose(1, 2)?.reshape((b, n, c))?;
        self.proj.forward(&x)
    }
}

/// The feed-forward layer: `Mlp` (GELU, erf form) or, for ViT-g, `SwiGLUFFN`.
#[derive(Debug, Clone)]
enum Ffn {
    Mlp { fc1: Linear, fc2: Linear },
    SwiGlu { w12: Linear, w3: Linear },
}

impl Ffn {
    fn new(dim: usize, swiglu: bool, vb: VarBuilder) -> Result<Self> {
        let hidden = MLP_RATIO * dim;
        if swiglu {
            // SwiGLUFFNFused shrinks the width to 2/3, rounded up to a multiple of 8.
            let hidden = (hidden * 2 / 3).div_ceil(8) * 8;
            Ok(Self::SwiGlu {
                w12: candle_nn::linear(dim, 2 * hidden, vb.pp("w12"))?,
                w3: candle_nn::linear(hidden, dim, vb.pp("w3"))?,
            })
        } else {
            Ok(Self::Mlp {
                fc1: candle_nn::linear(dim, hidden, vb.pp("fc1"))?,
                fc2: candle_nn::linear(hidden, dim, vb.pp("fc2"))?,
            })
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Mlp { fc1, fc2 } => fc2.forward(&fc1.forward(x)?.gelu_erf()?),
            Self::SwiGlu { w12, w3 } => {
                let x12 = w12.forward(x)?;
                let half = x12.dim(D::Minus1)? / 2;
                let x1 = x12.narrow(D::Minus1, 0, half)?;
                let x2 = x12.narrow(D::Minus1, half, half)?;
                w3.forward(&(candle_nn::ops::silu(&x1)? * x2)?)
            }
        }
    }
}

/// One pre-norm transformer block (`NestedTensorBlock` on a plain tensor).
#[derive(Debug, Clone)]
struct Block {
    norm1: AffineLayerNorm,
    attn: Attention,
    ls1: Tensor,
    norm2: AffineLayerNorm,
    mlp: Ffn,
    ls2: Tensor,
}

impl Block {
    fn new(encoder: Encoder, vb: VarBuilder) -> Result<Self> {
        let dim = encoder.embed_dim();
        Ok(Self {
            norm1: AffineLayerNorm::new(dim, LAYER_NORM_EPS, vb.pp("norm1"))?,
            attn: Attention::new(dim, encoder.num_heads(), vb.pp("attn"))?,
            ls1: vb.get(dim, "ls1.gamma")?,
            norm2: AffineLayerNorm::new(dim, LAYER_NORM_EPS, vb.pp("norm2"))?,
            mlp: Ffn::new(dim, encoder.uses_swiglu(), vb.pp("mlp"))?,
            ls2: vb.get(dim, "ls2.gamma")?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let attn = self.attn.forward(&self.norm1.forward(x)?)?;
        let x = (x + attn.broadcast_mul(&self.ls1)?)?;
        let ffn = self.mlp.forward(&self.norm2.forward(&x)?)?;
        x + ffn.broadcast_mul(&self.ls2)?
    }
}

/// `DinoVisionTransformer` as `DINOv2(model_name)` builds it (patch 14, no registers).
#[derive(Debug, Clone)]
pub struct Dinov2 {
    patch_embed: Conv2d,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<Block>,
    norm: AffineLayerNorm,
}

impl Dinov2 {
    /// Loads the encoder from `vb` (the checkpoint's `pretrained.` prefix).
    pub fn new(encoder: Encoder, vb: VarBuilder) -> Result<Self> {
        let dim = encoder.embed_dim();
        let patch = Conv2dConfig {
            stride: PATCH_SIZE,
            ..Default::default()
        };
        let blocks = (0..encoder.depth())
            .map(|i| Block::new(encoder, vb.pp("blocks").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Self {
            patch_embed: candle_nn::conv2d(3, dim, PATCH_SIZE, patch, vb.pp("patch_embed.proj"))?,
            cls_token: vb.get((1, 1, dim), "cls_token")?,
            pos_embed: vb.get((1, POS_TOKENS, dim), "pos_embed")?,
            blocks,
            norm: AffineLayerNorm::new(dim, LAYER_NORM_EPS, vb.pp("norm"))?,
        })
    }

    /// `get_intermediate_layers(x, layers, return_class_token=True)` without the class
    /// tokens (the depth head does not use them): for each requested block, its output after
    /// the final norm, patch tokens only, `(batch, patch_h * patch_w, dim)`.
    pub fn intermediate_layers(&self, x: &Tensor, layers: &[usize]) -> Result<Vec<Tensor>> {
        let (b, _, h, w) = x.dims4()?;
        if h % PATCH_SIZE != 0 || w % PATCH_SIZE != 0 {
            candle_core::bail!("DINOv2 input {h}x{w} is not a multiple of {PATCH_SIZE}");
        }
        let tokens = self
            .patch_embed
            .forward(x)?
            .flatten_from(2)?
            .transpose(1, 2)?; // (b, n, dim)
        let dim = tokens.dim(2)?;
        let cls = self.cls_token.expand((b, 1, dim))?;
        let pos = pos_embed::interpolate(&self.pos_embed, h / PATCH_SIZE, w / PATCH_SIZE)?;
        let mut x = Tensor::cat(&[&cls, &tokens], 1)?.broadcast_add(&pos)?;
        let mut outputs = Vec::with_capacity(layers.len());
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(&x)?;
            if layers.contains(&i) {
                let normed = self.norm.forward(&x)?;
                let n = normed.dim(1)? - 1;
                outputs.push(normed.narrow(1, 1, n)?);
            }
            if outputs.len() == layers.len() {
                break;
            }
        }
        if outputs.len() != layers.len() {
            candle_core::bail!(
                "asked for blocks {layers:?} of a {}-block encoder",
                self.blocks.len()
            );
        }
        Ok(outputs)
    }
}
