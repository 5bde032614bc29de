//! The line-art network of the `scribble` annotator (spec §6.9; `ContourInference` and
//! `ScribbleAnnotator` in `vace/annotators/scribble.py` of ali-vilab/VACE 48eb44f, from
//! "informative-drawings", weights `scribble/anime_style/netG_A_latest.pth`).
//!
//! A ResNet generator: 7×7 stem, two stride-2 downsamplings, 3 residual blocks, two
//! transposed-conv upsamplings, 7×7 output with a sigmoid. Instance norm (no affine) after
//! every inner conv, reflection padding. Maps are `(batch, channels, h, w)`, f32.

use std::path::Path;

use candle_core::{Device, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig, VarBuilder};

use super::depth_anything::checkpoint::Checkpoint;
use super::instance_norm::instance_norm;
use crate::media::Frame;

/// Name used in load errors.
const MODEL_NAME: &str = "scribble line-art network";
/// Where the weights VACE uses come from (`vace/configs/video_preproccess.py`).
const DOWNLOAD_HINT: &str =
    "download scribble/anime_style/netG_A_latest.pth of ali-vilab/VACE-Annotators";
/// `N_RESIDUAL_BLOCKS` of `ScribbleAnnotator` (the class default of 9 is not used).
const N_RESIDUAL_BLOCKS: usize = 3;
/// Width after the stem; doubled by each downsampling.
const STEM_FEATURES: usize = 64;
/// Padding and kernel of the stem and output convs.
const OUTER_KERNEL: usize = 7;

/// `nn.ReflectionPad2d(pad)`: mirrors without repeating the edge pixel.
fn reflection_pad(x: &Tensor, pad: usize) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if pad >= h || pad >= w {
        candle_core::bail!("reflection padding {pad} needs a map larger than {h}x{w}");
    }
    let indices = |n: usize| -> Result<Tensor> {
        let last = n as i64 - 1;
        let ids: Vec<u32> = (0..n + 2 * pad)
            .map(|i| {
                let j = i as i64 - pad as i64;
                let j = if j < 0 {
                    -j
                } else if j > last {
                    2 * last - j
                } else {
                    j
                };
                j as u32
            })
            .collect();
        Tensor::from_vec(ids, n + 2 * pad, x.device())
    };
    x.index_select(&indices(w)?, 3)?
        .index_select(&indices(h)?, 2)
}

fn conv(
    cin: usize,
    cout: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    vb: VarBuilder,
) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding,
        stride,
        ..Default::default()
    };
    candle_nn::conv2d(cin, cout, kernel, cfg, vb)
}

/// `ResidualBlock`: `x + IN(conv(pad(relu(IN(conv(pad(x)))))))`, keys `conv_block.{1,5}`.
#[derive(Debug, Clone)]
struct ResidualBlock {
    conv1: Conv2d,
    conv2: Conv2d,
}

impl ResidualBlock {
    fn new(features: usize, vb: VarBuilder) -> Result<Self> {
        let vb = vb.pp("conv_block");
        Ok(Self {
            conv1: conv(features, features, 3, 1, 0, vb.pp(1))?,
            conv2: conv(features, features, 3, 1, 0, vb.pp(5))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let out = instance_norm(&self.conv1.forward(&reflection_pad(x, 1)?)?)?.relu()?;
        let out = instance_norm(&self.conv2.forward(&reflection_pad(&out, 1)?)?)?;
        x + out
    }
}

/// `ContourInference(3, 1, n_residual_blocks=3, sigmoid=True)`.
#[derive(Debug, Clone)]
pub struct ScribbleNet {
    /// `model0.1`: 7×7, 3 → 64.
    stem: Conv2d,
    /// `model1.0`, `model1.3`: stride 2, 64 → 128 → 256.
    down: [Conv2d; 2],
    /// `model2.{i}`.
    residual: Vec<ResidualBlock>,
    /// `model3.0`, `model3.3`: ×2, 256 → 128 → 64.
    up: [ConvTranspose2d; 2],
    /// `model4.1`: 7×7, 64 → 1.
    head: Conv2d,
    device: Device,
}

impl ScribbleNet {
    /// Loads `netG_A_latest.pth` (or a `.safetensors` conversion); weights are f32 on
    /// `device`. Fails with a message naming the file when it is missing, unreadable or lacks
    /// a tensor.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let checkpoint = Checkpoint::open(path, MODEL_NAME, DOWNLOAD_HINT)?;
        checkpoint.build(device, Self::new)
    }

    /// Builds the network from `vb`, whose names are the reference's state-dict keys
    /// (`model0.1.weight`, `model2.0.conv_block.1.weight`, ...).
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let f = STEM_FEATURES;
        let upsample = |cin: usize, cout: usize, vb: VarBuilder| {
            let cfg = ConvTranspose2dConfig {
                padding: 1,
                output_padding: 1,
                stride: 2,
                dilation: 1,
            };
            candle_nn::conv_transpose2d(cin, cout, 3, cfg, vb)
        };
        // Built in the checkpoint's order, so a partial file fails at its first missing layer.
        let stem = conv(3, f, OUTER_KERNEL, 1, 0, vb.pp("model0.1"))?;
        let down = [
            conv(f, 2 * f, 3, 2, 1, vb.pp("model1.0"))?,
            conv(2 * f, 4 * f, 3, 2, 1, vb.pp("model1.3"))?,
        ];
        let residual = (0..N_RESIDUAL_BLOCKS)
            .map(|i| ResidualBlock::new(4 * f, vb.pp("model2").pp(i)))
            .collect::<Result<_>>()?;
        let up = [
            upsample(4 * f, 2 * f, vb.pp("model3.0"))?,
            upsample(2 * f, f, vb.pp("model3.3"))?,
        ];
        Ok(Self {
            stem,
            down,
            residual,
            up,
            head: conv(f, 1, OUTER_KERNEL, 1, 0, vb.pp("model4.1"))?,
            device: vb.device().clone(),
        })
    }

    /// `ContourInference.forward`: `(batch, 3, h, w)` RGB in [0, 1] → `(batch, 1, h', w')`
    /// line map in (0, 1), where `h' = 4 * ceil(ceil(h / 2) / 2)` (likewise `w'`): sides that
    /// are not multiples of 4 come back rounded up, as in the reference.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let pad = OUTER_KERNEL / 2;
        let mut x = instance_norm(&self.stem.forward(&reflection_pad(x, pad)?)?)?.relu()?;
        for conv in &self.down {
            x = instance_norm(&conv.forward(&x)?)?.relu()?;
        }
        for block in &self.residual {
            x = block.forward(&x)?;
        }
        for conv in &self.up {
            x = instance_norm(&conv.forward(&x)?)?.relu()?;
        }
        candle_nn::ops::sigmoid(&self.head.forward(&reflection_pad(&x, pad)?)?)
    }

    /// The control frame of the reference's `ScribbleAnnotator.forward`: the line map ×255,
    /// clipped and truncated to u8, in three identical channels. The frame has the input's
    /// size when both sides are multiples of 4; otherwise the network's (see [`Self::forward`]),
    /// as the reference returns it.
    pub fn line_frame(&self, frame: &Frame) -> Result<Frame> {
        let (w, h) = (frame.width, frame.height);
        if w == 0 || h == 0 || frame.rgb.len() != w * h * 3 {
            candle_core::bail!(
                "scribble input must be a non-empty RGB frame (got {w}x{h} with {} bytes)",
                frame.rgb.len()
            );
        }
        let planar: Vec<f32> = (0..3)
            .flat_map(|c| {
                frame
                    .rgb
                    .iter()
                    .skip(c)
                    .step_by(3)
                    .map(|&v| v as f32 / 255.0)
            })
            .collect();
        let input = Tensor::from_vec(planar, (1, 3, h, w), &self.device)?;
        let lines = self.forward(&input)?; // (1, 1, h', w')
        let (_, _, out_h, out_w) = lines.dims4()?;
        let rgb = lines
            .flatten_all()?
            .to_vec1::<f32>()?
            .into_iter()
            .flat_map(|v| [(v * 255.0).clamp(0.0, 255.0) as u8; 3])
            .collect();
        Ok(Frame {
            width: out_w,
            height: out_h,
            rgb,
        })
    }
}
