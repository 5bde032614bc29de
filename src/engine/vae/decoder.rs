//! `Decoder3d`: one latent frame `[1, z_dim, h, w]` → pixel frames `[1 or 4, 3, 8h, 8w]`.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::blocks::{Resample, ResampleMode, ResidualBlock};
use super::causal_conv::{CausalConv3d, FeatureCache, SlotCounter};
use super::encoder::{Head, Middle, StageLayer};
use crate::engine::config::VaeConfig;

#[derive(Debug, Clone)]
pub struct Decoder3d {
    conv1: CausalConv3d,
    middle: Middle,
    upsamples: Vec<StageLayer>,
    head: Head,
    slot_count: usize,
}

impl Decoder3d {
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        let mut slots = SlotCounter::default();
        let mults = cfg.dim_mult.iter().rev();
        let dims: Vec<usize> = std::iter::once(cfg.dim_mult[cfg.dim_mult.len() - 1])
            .chain(mults.copied())
            .map(|m| cfg.dim * m)
            .collect();
        let temporal_upsample: Vec<bool> = cfg.temperal_downsample.iter().rev().copied().collect();
        let conv1 = CausalConv3d::new(
            cfg.z_dim,
            dims[0],
            [3, 3, 3],
            [1, 1, 1],
            1,
            Some(&mut slots),
            vb.pp("conv1"),
        )?;
        let middle = Middle::new(dims[0], &mut slots, vb.pp("middle"))?;
        let mut upsamples = Vec::new();
        let layer_vb = |i: usize| vb.pp("upsamples").pp(i);
        for (stage, pair) in dims.windows(2).enumerate() {
            let (mut in_dim, out_dim) = (pair[0], pair[1]);
            // The reference halves the input width of stages 1–3: the upsampler before them
            // halved the channels.
            if (1..=3).contains(&stage) {
                in_dim /= 2;
            }
            for _ in 0..cfg.num_res_blocks + 1 {
                let vb = layer_vb(upsamples.len());
                upsamples.push(StageLayer::Residual(ResidualBlock::new(
                    in_dim, out_dim, &mut slots, vb,
                )?));
                in_dim = out_dim;
            }
            if stage + 1 != cfg.dim_mult.len() {
                let mode = if temporal_upsample[stage] {
                    ResampleMode::Upsample3d
                } else {
                    ResampleMode::Upsample2d
                };
                let vb = layer_vb(upsamples.len());
                upsamples.push(StageLayer::Resample(Resample::new(
                    out_dim, mode, &mut slots, vb,
                )?));
            }
        }
        let last = dims[dims.len() - 1];
        let head = Head::new(last, 3, &mut slots, vb.pp("head"))?;
        Ok(Self {
            conv1,
            middle,
            upsamples,
            head,
            slot_count: slots.count(),
        })
    }

    pub fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// One latent frame through the decoder, continuing from the cache of the previous ones.
    pub fn forward(&self, x: &Tensor, cache: &mut FeatureCache) -> Result<Tensor> {
        let x = self.conv1.forward_cached(x, cache)?;
        let mut x = self.middle.forward(&x, cache)?;
        for layer in &self.upsamples {
            x = layer.forward(&x, cache)?;
        }
        self.head.forward(&x, cache)
    }
}
