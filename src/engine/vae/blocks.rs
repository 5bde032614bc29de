//! The VAE's building blocks (`RMS_norm`, `ResidualBlock`, `AttentionBlock`, `Resample` in
//! `wan/modules/vae.py`), on `[T, C, H, W]` activations.

use candle_core::{D, Result, Tensor};
use candle_nn::VarBuilder;

use super::causal_conv::{CacheSlot, CausalConv3d, FeatureCache, SlotCounter};
pub use super::channel_norm::ChannelNorm;
use super::gemm_conv::{self, ConvGeometry, Frames, GemmWeight};
use crate::engine::attention::attention;

/// A 2-D convolution applied to every frame.
#[derive(Debug, Clone)]
pub struct FrameConv {
    weight: Tensor,
    bias: Tensor,
    padding: usize,
    stride: usize,
    /// On CUDA: the weight as the implicit-GEMM kernel reads it.
    gemm_weight: Option<GemmWeight>,
}

impl FrameConv {
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        kernel: usize,
        padding: usize,
        stride: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        let weight = vb.get((out_dim, in_dim, kernel, kernel), "weight")?;
        let gemm_weight = gemm_conv::gemm_weight(&weight.unsqueeze(2)?)?;
        Ok(Self {
            weight,
            bias: vb.get(out_dim, "bias")?.reshape((1, out_dim, 1, 1))?,
            padding,
            stride,
            gemm_weight,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_padded(x, 0)
    }

    /// As `forward` on `x` with `extra` more zero rows at the bottom and zero columns at the
    /// right (the downsamplers' `ZeroPad2d((0, 1, 0, 1))`).
    pub fn forward_padded(&self, x: &Tensor, extra: usize) -> Result<Tensor> {
        if let Some(weight) = &self.gemm_weight {
            let k = self.weight.dim(2)?;
            // A conv2d of every frame is a causal conv with one temporal tap.
            let geometry = ConvGeometry {
                kernel: [1, k, k],
                stride_t: 1,
                stride_hw: self.stride,
                pad_begin: self.padding,
                pad_end: self.padding + extra,
            };
            return gemm_conv::conv(
                &[Frames::Of(x)],
                weight,
                &self.bias.flatten_all()?,
                geometry,
            );
        }
        let x = if extra > 0 {
            x.pad_with_zeros(3, 0, extra)?.pad_with_zeros(2, 0, extra)?
        } else {
            x.clone()
        };
        x.conv2d(&self.weight, self.padding, self.stride, 1, 1)?
            .broadcast_add(&self.bias)
    }
}

/// norm → SiLU → conv3 → norm → SiLU → conv3, plus a 1×1×1 shortcut when widths differ.
#[derive(Debug, Clone)]
pub struct ResidualBlock {
    norm_0: ChannelNorm,
    conv_2: CausalConv3d,
    norm_3: ChannelNorm,
    conv_6: CausalConv3d,
    shortcut: Option<CausalConv3d>,
}

impl ResidualBlock {
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        slots: &mut SlotCounter,
        vb: VarBuilder,
    ) -> Result<Self> {
        let conv3 = |i: usize, o: usize, slots: &mut SlotCounter, name: &str| {
            CausalConv3d::new(i, o, [3, 3, 3], [1, 1, 1], 1, Some(slots), vb.pp(name))
        };
        let shortcut = (in_dim != out_dim)
            .then(|| {
                CausalConv3d::new(
                    in_dim,
                    out_dim,
                    [1, 1, 1],
                    [0, 0, 0],
                    1,
                    None,
                    vb.pp("shortcut"),
                )
            })
            .transpose()?;
        Ok(Self {
            norm_0: ChannelNorm::new(in_dim, true, vb.pp("residual.0"))?,
            conv_2: conv3(in_dim, out_dim, slots, "residual.2")?,
            norm_3: ChannelNorm::new(out_dim, true, vb.pp("residual.3"))?,
            conv_6: conv3(out_dim, out_dim, slots, "residual.6")?,
            shortcut,
        })
    }

    pub fn forward(&self, x: &Tensor, cache: &mut FeatureCache) -> Result<Tensor> {
        let h = match &self.shortcut {
            Some(conv) => conv.forward(x, None)?,
            None => x.clone(),
        };
        let y = self
            .conv_2
            .forward_cached(&self.norm_0.forward_silu(x)?, cache)?;
        let y = self
            .conv_6
            .forward_cached(&self.norm_3.forward_silu(&y)?, cache)?;
        y + h
    }
}

/// Single-head self-attention within each frame (no temporal mixing), with a residual.
#[derive(Debug, Clone)]
pub struct AttentionBlock {
    norm: ChannelNorm,
    to_qkv: FrameConv,
    proj: FrameConv,
    dim: usize,
}

impl AttentionBlock {
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            norm: ChannelNorm::new(dim, false, vb.pp("norm"))?,
            to_qkv: FrameConv::new(dim, 3 * dim, 1, 0, 1, vb.pp("to_qkv"))?,
            proj: FrameConv::new(dim, dim, 1, 0, 1, vb.pp("proj"))?,
            dim,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (t, c, h, w) = x.dims4()?;
        let qkv = self.to_qkv.forward(&self.norm.forward(x)?)?;
        // [T, 3C, H, W] → [T, 1, HW, 3C]; q, k, v are consecutive channel blocks.
        let qkv = qkv
            .reshape((t, 3 * c, h * w))?
            .transpose(1, 2)?
            .unsqueeze(1)?;
        let part = |i: usize| qkv.narrow(D::Minus1, i * self.dim, self.dim)?.contiguous();
        let o = attention(&part(0)?, &part(1)?, &part(2)?, 1.0 / (c as f64).sqrt())?;
        let o = o.squeeze(1)?.transpose(1, 2)?.reshape((t, c, h, w))?;
        self.proj.forward(&o)? + x
    }
}

/// How a [`Resample`] changes the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResampleMode {
    /// ×2 in H and W; channels halve.
    Upsample2d,
    /// ×2 in time (after the first frame), then as `Upsample2d`.
    Upsample3d,
    /// ÷2 in H and W.
    Downsample2d,
    /// As `Downsample2d`, then ÷2 in time (after the first frame).
    Downsample3d,
}

/// Spatial (and optionally temporal) up- or downsampling.
#[derive(Debug, Clone)]
pub struct Resample {
    mode: ResampleMode,
    /// `resample.1`.
    conv: FrameConv,
    time_conv: Option<CausalConv3d>,
}

impl Resample {
    pub fn new(
        dim: usize,
        mode: ResampleMode,
        slots: &mut SlotCounter,
        vb: VarBuilder,
    ) -> Result<Self> {
        use ResampleMode::*;
        let conv = match mode {
            Upsample2d | Upsample3d => FrameConv::new(dim, dim / 2, 3, 1, 1, vb.pp("resample.1"))?,
            Downsample2d | Downsample3d => FrameConv::new(dim, dim, 3, 0, 2, vb.pp("resample.1"))?,
        };
        let time_conv = match mode {
            Upsample3d => Some(CausalConv3d::new(
                dim,
                2 * dim,
                [3, 1, 1],
                [1, 0, 0],
                1,
                Some(slots),
                vb.pp("time_conv"),
            )?),
            Downsample3d => Some(CausalConv3d::new(
                dim,
                dim,
                [3, 1, 1],
                [0, 0, 0],
                2,
                Some(slots),
                vb.pp("time_conv"),
            )?),
            Upsample2d | Downsample2d => None,
        };
        Ok(Self {
            mode,
            conv,
            time_conv,
        })
    }

    pub fn forward(&self, x: &Tensor, cache: &mut FeatureCache) -> Result<Tensor> {
        match (self.mode, &self.time_conv) {
            (ResampleMode::Upsample3d, Some(time_conv)) => {
                let doubled = self.upsample_time(x, time_conv, cache)?;
                self.spatial(&doubled)
            }
            (ResampleMode::Downsample3d, Some(time_conv)) => {
                let y = self.spatial(x)?;
                self.downsample_time(&y, time_conv, cache)
            }
            _ => self.spatial(x),
        }
    }

    fn spatial(&self, x: &Tensor) -> Result<Tensor> {
        match self.mode {
            ResampleMode::Upsample2d | ResampleMode::Upsample3d => {
                let (_, _, h, w) = x.dims4()?;
                // nearest-exact at an exact ×2 is pixel duplication.
                self.conv.forward(&x.upsample_nearest2d(2 * h, 2 * w)?)
            }
            ResampleMode::Downsample2d | ResampleMode::Downsample3d => {
                // ZeroPad2d((0, 1, 0, 1)): one column right, one row at the bottom.
                self.conv.forward_padded(x, 1)
            }
        }
    }

    /// First chunk: frames pass and are remembered; later chunks: a stride-2 valid conv over
    /// the last remembered frame and the chunk.
    fn downsample_time(
        &self,
        x: &Tensor,
        time_conv: &CausalConv3d,
        cache: &mut FeatureCache,
    ) -> Result<Tensor> {
        let Some(slot) = time_conv.slot else {
            return time_conv.forward(x, None);
        };
        let t = x.dim(0)?;
        match cache.slot(slot).clone() {
            CacheSlot::Frames(previous) => {
                let last = previous.narrow(0, previous.dim(0)? - 1, 1)?;
                let out = time_conv.forward(&Tensor::cat(&[&last, x], 0)?, None)?;
                cache.set(slot, CacheSlot::Frames(x.narrow(0, t - 1, 1)?));
                Ok(out)
            }
            _ => {
                cache.set(slot, CacheSlot::Frames(x.clone()));
                Ok(x.clone())
            }
        }
    }

    /// First chunk: one frame passes unchanged; later chunks: the causal time conv makes two
    /// frames of each input frame, its first `C` output channels being the earlier one.
    fn upsample_time(
        &self,
        x: &Tensor,
        time_conv: &CausalConv3d,
        cache: &mut FeatureCache,
    ) -> Result<Tensor> {
        let Some(slot) = time_conv.slot else {
            candle_core::bail!("time upsampler without a cache slot");
        };
        let (t, c, h, w) = x.dims4()?;
        let kept = x.narrow(0, t.saturating_sub(2), t.min(2))?;
        let (out, keep) = match cache.slot(slot).clone() {
            CacheSlot::Empty => {
                cache.set(slot, CacheSlot::FirstFrameSeen);
                return Ok(x.clone());
            }
            CacheSlot::FirstFrameSeen => {
                let keep = if kept.dim(0)? < 2 {
                    Tensor::cat(&[&kept.zeros_like()?, &kept], 0)?
                } else {
                    kept
                };
                (time_conv.forward(x, None)?, keep)
            }
            CacheSlot::Frames(previous) => {
                let keep = super::causal_conv::next_cache(x, Some(&previous))?;
                (time_conv.forward(x, Some(&previous))?, keep)
            }
        };
        cache.set(slot, CacheSlot::Frames(keep));
        // [τ, 2C, H, W] → [2τ, C, H, W], frames interleaved a₁, b₁, a₂, b₂, …
        out.reshape((2 * t, c, h, w))
    }
}
