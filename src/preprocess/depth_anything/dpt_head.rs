//! The DPT depth head of Depth-Anything-V2 (`DPTHead` in `dpt.py`, `util/blocks.py` of
//! ali-vilab/VACE 48eb44f) without batch norm or class-token readout, as the released models
//! use it: four token maps reassembled at strides 4, 8, 14 and 28 (in pixels), fused from
//! coarse to fine with bilinear (align_corners=True) upsampling, then a small conv head.
//! Maps are `(batch, channels, h, w)`.

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, VarBuilder};

use super::DepthAnythingConfig;
use super::transform::PATCH_SIZE;

/// `head_features_2` of `DPTHead`: the width before the final 1×1 conv.
const HEAD_FEATURES_2: usize = 32;

fn conv3x3(cin: usize, cout: usize, bias: bool, vb: VarBuilder) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: 1,
        ..Default::default()
    };
    if bias {
        candle_nn::conv2d(cin, cout, 3, cfg, vb)
    } else {
        candle_nn::conv2d_no_bias(cin, cout, 3, cfg, vb)
    }
}

fn conv1x1(cin: usize, cout: usize, vb: VarBuilder) -> Result<Conv2d> {
    candle_nn::conv2d(cin, cout, 1, Conv2dConfig::default(), vb)
}

/// `resize_layers[i]`: brings token map `i` to its pyramid level.
#[derive(Debug, Clone)]
enum Reassemble {
    /// `ConvTranspose2d` with kernel = stride (×4, ×2).
    Up(ConvTranspose2d),
    /// `nn.Identity()`.
    Keep,
    /// `Conv2d(3, stride=2, padding=1)` (÷2, rounding up).
    Down(Conv2d),
}

impl Reassemble {
    fn new(level: usize, channels: usize, vb: VarBuilder) -> Result<Self> {
        let up = |factor: usize| {
            let cfg = ConvTranspose2dConfig {
                stride: factor,
                ..Default::default()
            };
            candle_nn::conv_transpose2d(channels, channels, factor, cfg, vb.clone()).map(Self::Up)
        };
        match level {
            0 => up(4),
            1 => up(2),
            2 => Ok(Self::Keep),
            _ => {
                let cfg = Conv2dConfig {
                    padding: 1,
                    stride: 2,
                    ..Default::default()
                };
                candle_nn::conv2d(channels, channels, 3, cfg, vb).map(Self::Down)
            }
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Up(conv) => conv.forward(x),
            Self::Keep => Ok(x.clone()),
            Self::Down(conv) => conv.forward(x),
        }
    }
}

/// `ResidualConvUnit` with ReLU and no batch norm: `x + conv2(relu(conv1(relu(x))))`.
#[derive(Debug, Clone)]
struct ResidualConvUnit {
    conv1: Conv2d,
    conv2: Conv2d,
}

impl ResidualConvUnit {
    fn new(features: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            conv1: conv3x3(features, features, true, vb.pp("conv1"))?,
            conv2: conv3x3(features, features, true, vb.pp("conv2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = self.conv1.forward(&x.relu()?)?;
        let out = self.conv2.forward(&out.relu()?)?;
        out + x
    }
}

/// `FeatureFusionBlock` (no expand, align_corners=True).
#[derive(Debug, Clone)]
struct FeatureFusionBlock {
    /// Refines the skip input; stored by every block, used by all but `refinenet4`.
    res_conf_unit1: ResidualConvUnit,
    res_conf_unit2: ResidualConvUnit,
    out_conv: Conv2d,
}

impl FeatureFusionBlock {
    fn new(features: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            res_conf_unit1: ResidualConvUnit::new(features, vb.pp("resConfUnit1"))?,
            res_conf_unit2: ResidualConvUnit::new(features, vb.pp("resConfUnit2"))?,
            out_conv: conv1x1(features, features, vb.pp("out_conv"))?,
        })
    }

    /// Fuses `x` with the optional `skip` and resamples to `size` (`(h, w)`), or doubles the
    /// size when `size` is `None` (the reference's `scale_factor=2`, which with
    /// align_corners=True only sets the output size).
    fn forward(
        &self,
        x: &Tensor,
        skip: Option<&Tensor>,
        size: Option<(usize, usize)>,
    ) -> Result<Tensor> {
        let mut out = x.clone();
        if let Some(skip) = skip {
            out = (out + self.res_conf_unit1.forward(skip)?)?;
        }
        let out = self.res_conf_unit2.forward(&out)?;
        let (h, w) = match size {
            Some(size) => size,
            None => {
                let (_, _, h, w) = out.dims4()?;
                (2 * h, 2 * w)
            }
        };
        self.out_conv.forward(&out.upsample_bilinear2d(h, w, true)?)
    }
}

/// `DPTHead(use_bn=False, use_clstoken=False)`.
#[derive(Debug, Clone)]
pub struct DptHead {
    projects: Vec<Conv2d>,
    resize_layers: Vec<Reassemble>,
    /// `scratch.layer{1..4}_rn`.
    layer_rn: Vec<Conv2d>,
    /// `scratch.refinenet{1..4}`.
    refinenet: Vec<FeatureFusionBlock>,
    output_conv1: Conv2d,
    /// `scratch.output_conv2.0` and `.2` (ReLU after each).
    output_conv2: [Conv2d; 2],
}

impl DptHead {
    /// Loads the head from `vb` (the checkpoint's `depth_head.` prefix).
    pub fn new(config: &DepthAnythingConfig, vb: VarBuilder) -> Result<Self> {
        let dim = config.encoder.embed_dim();
        let features = config.features;
        let mut projects = Vec::with_capacity(4);
        let mut resize_layers = Vec::with_capacity(4);
        let mut layer_rn = Vec::with_capacity(4);
        let mut refinenet = Vec::with_capacity(4);
        let scratch = vb.pp("scratch");
        for (i, &channels) in config.out_channels.iter().enumerate() {
            projects.push(conv1x1(dim, channels, vb.pp("projects").pp(i))?);
            resize_layers.push(Reassemble::new(i, channels, vb.pp("resize_layers").pp(i))?);
            let name = format!("layer{}_rn", i + 1);
            layer_rn.push(conv3x3(channels, features, false, scratch.pp(name))?);
            let name = format!("refinenet{}", i + 1);
            refinenet.push(FeatureFusionBlock::new(features, scratch.pp(name))?);
        }
        let half = features / 2;
        let output_conv2 = scratch.pp("output_conv2");
        Ok(Self {
            projects,
            resize_layers,
            layer_rn,
            refinenet,
            output_conv1: conv3x3(features, half, true, scratch.pp("output_conv1"))?,
            output_conv2: [
                conv3x3(half, HEAD_FEATURES_2, true, output_conv2.pp(0))?,
                conv1x1(HEAD_FEATURES_2, 1, output_conv2.pp(2))?,
            ],
        })
    }

    /// Depth at the network input's size, `(batch, 1, 14 * patch_h, 14 * patch_w)`, from the
    /// encoder's four `(batch, patch_h * patch_w, dim)` maps. It ends in a ReLU, so the
    /// model's own `F.relu` after the head changes nothing.
    pub fn forward(&self, tokens: &[Tensor], patch_h: usize, patch_w: usize) -> Result<Tensor> {
        if tokens.len() != self.projects.len() {
            candle_core::bail!("the DPT head needs 4 token maps, got {}", tokens.len());
        }
        let mut levels = Vec::with_capacity(4);
        for (i, x) in tokens.iter().enumerate() {
            let (b, _, dim) = x.dims3()?;
            let x = x.transpose(1, 2)?.reshape((b, dim, patch_h, patch_w))?;
            let x = self.resize_layers[i].forward(&self.projects[i].forward(&x)?)?;
            levels.push(self.layer_rn[i].forward(&x)?);
        }
        let size = |t: &Tensor| -> Result<(usize, usize)> {
            let (_, _, h, w) = t.dims4()?;
            Ok((h, w))
        };
        let path = self.refinenet[3].forward(&levels[3], None, Some(size(&levels[2])?))?;
        let path = self.refinenet[2].forward(&path, Some(&levels[2]), Some(size(&levels[1])?))?;
        let path = self.refinenet[1].forward(&path, Some(&levels[1]), Some(size(&levels[0])?))?;
        let path = self.refinenet[0].forward(&path, Some(&levels[0]), None)?;

        let out = self.output_conv1.forward(&path)?;
        let out = out.upsample_bilinear2d(PATCH_SIZE * patch_h, PATCH_SIZE * patch_w, true)?;
        let out = self.output_conv2[0].forward(&out)?.relu()?;
        self.output_conv2[1].forward(&out)?.relu()
    }
}
