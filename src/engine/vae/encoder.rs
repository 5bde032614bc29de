//! `Encoder3d`: video `[T, 3, H, W]` chunk → `[t, 2·z_dim, H/8, W/8]` (mean ‖ log-variance).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::blocks::{AttentionBlock, ChannelNorm, Resample, ResampleMode, ResidualBlock};
use super::causal_conv::{CausalConv3d, FeatureCache, SlotCounter};
use crate::engine::config::VaeConfig;

/// One entry of `encoder.downsamples` / `decoder.upsamples`, in order.
#[derive(Debug, Clone)]
pub enum StageLayer {
    Residual(ResidualBlock),
    Resample(Resample),
}

impl StageLayer {
    pub fn forward(&self, x: &Tensor, cache: &mut FeatureCache) -> Result<Tensor> {
        match self {
            Self::Residual(block) => block.forward(x, cache),
            Self::Resample(resample) => resample.forward(x, cache),
        }
    }
}

/// `middle`: residual, attention, residual at the narrowest resolution.
#[derive(Debug, Clone)]
pub struct Middle {
    res_0: ResidualBlock,
    attn_1: AttentionBlock,
    res_2: ResidualBlock,
}

impl Middle {
    pub fn new(dim: usize, slots: &mut SlotCounter, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            res_0: ResidualBlock::new(dim, dim, slots, vb.pp("0"))?,
            attn_1: AttentionBlock::new(dim, vb.pp("1"))?,
            res_2: ResidualBlock::new(dim, dim, slots, vb.pp("2"))?,
        })
    }

    pub fn forward(&self, x: &Tensor, cache: &mut FeatureCache) -> Result<Tensor> {
        let x = self.res_0.forward(x, cache)?;
        let x = self.attn_1.forward(&x)?;
        self.res_2.forward(&x, cache)
    }
}

/// `head`: norm, SiLU, causal conv.
#[derive(Debug, Clone)]
pub struct Head {
    norm_0: ChannelNorm,
    conv_2: CausalConv3d,
}

impl Head {
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        slots: &mut SlotCounter,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            norm_0: ChannelNorm::new(in_dim, true, vb.pp("0"))?,
            conv_2: CausalConv3d::new(
                in_dim,
                out_dim,
                [3, 3, 3],
                [1, 1, 1],
                1,
                Some(slots),
                vb.pp("2"),
            )?,
        })
    }

    pub fn forward(&self, x: &Tensor, cache: &mut FeatureCache) -> Result<Tensor> {
        self.conv_2
            .forward_cached(&self.norm_0.forward_silu(x)?, cache)
    }
}

#[derive(Debug, Clone)]
pub struct Encoder3d {
    conv1: CausalConv3d,
    downsamples: Vec<StageLayer>,
    middle: Middle,
    head: Head,
    slot_count: usize,
}

impl Encoder3d {
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        let mut slots = SlotCounter::default();
        let dims: Vec<usize> = std::iter::once(1)
            .chain(cfg.dim_mult.iter().copied())
            .map(|m| cfg.dim * m)
            .collect();
        let conv1 = CausalConv3d::new(
            3,
            dims[0],
            [3, 3, 3],
            [1, 1, 1],
            1,
            Some(&mut slots),
            vb.pp("conv1"),
        )?;
        let mut downsamples = Vec::new();
        let layer_vb = |i: usize| vb.pp("downsamples").pp(i);
        for (stage, pair) in dims.windows(2).enumerate() {
            let (mut in_dim, out_dim) = (pair[0], pair[1]);
            for _ in 0..cfg.num_res_blocks {
                let vb = layer_vb(downsamples.len());
                downsamples.push(StageLayer::Residual(ResidualBlock::new(
                    in_dim, out_dim, &mut slots, vb,
                )?));
                in_dim = out_dim;
            }
            if stage + 1 != cfg.dim_mult.len() {
                let mode = if cfg.temperal_downsample[stage] {
                    ResampleMode::Downsample3d
                } else {
                    ResampleMode::Downsample2d
                };
                let vb = layer_vb(downsamples.len());
                downsamples.push(StageLayer::Resample(Resample::new(
                    out_dim, mode, &mut slots, vb,
                )?));
            }
        }
        let top = dims[dims.len() - 1];
        let middle = Middle::new(top, &mut slots, vb.pp("middle"))?;
        let head = Head::new(top, 2 * cfg.z_dim, &mut slots, vb.pp("head"))?;
        Ok(Self {
            conv1,
            downsamples,
            middle,
            head,
            slot_count: slots.count(),
        })
    }

    pub fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// One chunk (1 frame first, then 4 at a time) → one latent frame.
    pub fn forward(&self, x: &Tensor, cache: &mut FeatureCache) -> Result<Tensor> {
        let mut x = self.conv1.forward_cached(x, cache)?;
        for layer in &self.downsamples {
            x = layer.forward(&x, cache)?;
        }
        let x = self.middle.forward(&x, cache)?;
        self.head.forward(&x, cache)
    }
}
