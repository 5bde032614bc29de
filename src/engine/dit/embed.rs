//! Inputs and outputs of the DiT: patch embedding and unpatchify, the sinusoidal time
//! embedding with its MLPs, and the text-embedding MLP (`wan/modules/model.py`).

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use super::rope::TokenGrid;
use crate::engine::linear::Linear;

/// Conv3d with kernel = stride = `patch`, computed as a matmul over non-overlapping patches.
/// Tokens come out frame-major, then row, then column.
#[derive(Debug, Clone)]
pub struct PatchEmbedding {
    /// `[dim, in_channels · pt · ph · pw]`, feature order (c, kt, kh, kw) as in the conv weight.
    weight: Tensor,
    bias: Tensor,
    patch: [usize; 3],
    in_channels: usize,
}

impl PatchEmbedding {
    pub fn new(in_channels: usize, dim: usize, patch: [usize; 3], vb: VarBuilder) -> Result<Self> {
        let [pt, ph, pw] = patch;
        let weight = vb.get((dim, in_channels, pt, ph, pw), "weight")?;
        let weight = weight.reshape((dim, in_channels * pt * ph * pw))?;
        Ok(Self {
            weight,
            bias: vb.get(dim, "bias")?,
            patch,
            in_channels,
        })
    }

    pub fn dtype(&self) -> DType {
        self.weight.dtype()
    }

    /// The token grid a latent of shape `[C, F, H, W]` produces.
    pub fn grid(&self, latent: &Tensor) -> Result<TokenGrid> {
        let (c, f, h, w) = latent.dims4()?;
        let [pt, ph, pw] = self.patch;
        if c != self.in_channels || f % pt != 0 || h % ph != 0 || w % pw != 0 {
            candle_core::bail!(
                "patch embedding expects [{}, F, H, W] divisible by the patch {:?}, got {:?}",
                self.in_channels,
                self.patch,
                latent.dims()
            );
        }
        Ok(TokenGrid {
            frames: f / pt,
            rows: h / ph,
            cols: w / pw,
        })
    }

    /// `[C, F, H, W]` → tokens `[L, dim]` in the weight's dtype.
    pub fn forward(&self, latent: &Tensor) -> Result<Tensor> {
        let grid = self.grid(latent)?;
        let [pt, ph, pw] = self.patch;
        let c = self.in_channels;
        let patches = latent
            .to_dtype(self.weight.dtype())?
            .reshape(&[c, grid.frames, pt, grid.rows, ph, grid.cols, pw][..])?
            // (F', H', W', C, pt, ph, pw)
            .permute([1, 3, 5, 0, 2, 4, 6])?
            .reshape((grid.len(), c * pt * ph * pw))?;
        patches.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

/// Tokens `[L, c·pt·ph·pw]` (feature order pt, ph, pw, c) → latent `[c, F, H, W]`.
pub fn unpatchify(
    tokens: &Tensor,
    grid: TokenGrid,
    patch: [usize; 3],
    channels: usize,
) -> Result<Tensor> {
    let [pt, ph, pw] = patch;
    tokens
        .narrow(0, 0, grid.len())?
        .reshape(&[grid.frames, grid.rows, grid.cols, pt, ph, pw, channels][..])?
        // (c, F', pt, H', ph, W', pw)
        .permute([6, 0, 3, 1, 4, 2, 5])?
        .reshape((channels, grid.frames * pt, grid.rows * ph, grid.cols * pw))
}

/// `[cos(t·ω_0) … cos(t·ω_{n−1}), sin(t·ω_0) … sin(t·ω_{n−1})]` with `ω_k = 10000^(−k/n)`,
/// `n = dim/2`, computed in f64 (`sinusoidal_embedding_1d`), returned as f32 `[dim]`.
pub fn sinusoidal_embedding(dim: usize, t: f64, device: &candle_core::Device) -> Result<Tensor> {
    let half = dim / 2;
    let angles: Vec<f64> = (0..half)
        .map(|k| t * 10000f64.powf(-(k as f64) / half as f64))
        .collect();
    let features: Vec<f32> = angles
        .iter()
        .map(|a| a.cos() as f32)
        .chain(angles.iter().map(|a| a.sin() as f32))
        .collect();
    Tensor::from_vec(features, dim, device)
}

/// The two time vectors of one denoising step: `e` feeds the head, `e0` the blocks.
#[derive(Debug, Clone)]
pub struct TimeCondition {
    /// `[1, dim]`, f32.
    pub e: Tensor,
    /// `[1, 6, dim]`, f32: shift, scale, gate (self-attn) then shift, scale, gate (FFN).
    pub e0: Tensor,
}

/// `time_embedding` (Linear, SiLU, Linear) and `time_projection` (SiLU, Linear), kept in f32.
#[derive(Debug, Clone)]
pub struct TimeEmbedding {
    embedding_0: Linear,
    embedding_2: Linear,
    projection_1: Linear,
    freq_dim: usize,
    dim: usize,
}

impl TimeEmbedding {
    pub fn new(freq_dim: usize, dim: usize, vb: VarBuilder) -> Result<Self> {
        let vb = vb.to_dtype(DType::F32);
        Ok(Self {
            embedding_0: Linear::new(freq_dim, dim, vb.pp("time_embedding.0"))?,
            embedding_2: Linear::new(dim, dim, vb.pp("time_embedding.2"))?,
            projection_1: Linear::new(dim, 6 * dim, vb.pp("time_projection.1"))?,
            freq_dim,
            dim,
        })
    }

    /// Embeds the scheduler timestep `t` (e.g. 999, not σ).
    pub fn forward(&self, t: f64, device: &candle_core::Device) -> Result<TimeCondition> {
        let features = sinusoidal_embedding(self.freq_dim, t, device)?.unsqueeze(0)?;
        let e = self
            .embedding_2
            .forward(&self.embedding_0.forward(&features)?.silu()?)?;
        let e0 = self
            .projection_1
            .forward(&e.silu()?)?
            .reshape((1, 6, self.dim))?;
        Ok(TimeCondition { e, e0 })
    }
}

/// `text_embedding`: Linear, GELU (tanh), Linear over the context zero-padded to `text_len`.
#[derive(Debug, Clone)]
pub struct TextEmbedding {
    linear_0: Linear,
    linear_2: Linear,
    text_len: usize,
    text_dim: usize,
}

impl TextEmbedding {
    pub fn new(text_dim: usize, dim: usize, text_len: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear_0: Linear::new(text_dim, dim, vb.pp("0"))?,
            linear_2: Linear::new(dim, dim, vb.pp("2"))?,
            text_len,
            text_dim,
        })
    }

    /// `context: [Lc, text_dim]` with `Lc ≤ text_len` → `[text_len, dim]`. Padded rows enter
    /// the MLP as zeros (the reference's rule; they are attended to afterwards).
    pub fn forward(&self, context: &Tensor) -> Result<Tensor> {
        let (rows, width) = context.dims2()?;
        if width != self.text_dim || rows > self.text_len {
            candle_core::bail!(
                "text context must be [≤{}, {}], got {:?}",
                self.text_len,
                self.text_dim,
                context.dims()
            );
        }
        let padded = context.pad_with_zeros(0, 0, self.text_len - rows)?;
        self.linear_2
            .forward(&self.linear_0.forward(&padded)?.gelu()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn sinusoidal_embedding_matches_the_spec_values_at_999() {
        // Spec §3.3: cos(φ_0..2) and sin(φ_0..2) for t = 999.
        let e: Vec<f32> = sinusoidal_embedding(256, 999.0, &Device::Cpu)
            .unwrap()
            .to_vec1()
            .unwrap();
        let cos = [0.99964985f64, 0.96378248, -0.39899176];
        let sin = [-0.02646075f64, -0.26668958, -0.91695451];
        for k in 0..3 {
            assert!((e[k] as f64 - cos[k]).abs() < 1e-6, "cos {k}: {}", e[k]);
            assert!(
                (e[128 + k] as f64 - sin[k]).abs() < 1e-6,
                "sin {k}: {}",
                e[128 + k]
            );
        }
    }

    #[test]
    fn unpatchify_inverts_the_patch_order() {
        let dev = Device::Cpu;
        let latent = Tensor::arange(0f32, 2.0 * 2.0 * 4.0 * 6.0, &dev)
            .unwrap()
            .reshape((2, 2, 4, 6))
            .unwrap();
        let patch = [1, 2, 2];
        let grid = TokenGrid {
            frames: 2,
            rows: 2,
            cols: 3,
        };
        // Patchify by hand as (F', H', W', pt, ph, pw, c), the head's output order.
        let tokens = latent
            .reshape(&[2, 2, 1, 2, 2, 3, 2][..])
            .unwrap()
            .permute([1, 3, 5, 2, 4, 6, 0])
            .unwrap()
            .reshape((12, 8))
            .unwrap();
        let back = unpatchify(&tokens, grid, patch, 2).unwrap();
        let diff = (back - &latent).unwrap().abs().unwrap().sum_all().unwrap();
        assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
    }
}
