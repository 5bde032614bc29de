//! `BasicEncoder` of RAFT's `core/extractor.py`: the feature network (`fnet`, instance norm)
//! and the context network (`cnet`, batch norm in eval mode) share this ResNet: a 7×7
//! stride-2 stem, three stages of two residual blocks (64, 96, 128 wide; the last two
//! halve the size), and a 1×1 output conv. Maps come out at 1/8 of the input size.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::conv::Conv;
use crate::preprocess::instance_norm::instance_norm;

/// `eps` of `nn.InstanceNorm2d` and `nn.BatchNorm2d`.
const NORM_EPS: f64 = 1e-5;
/// Widths of the stem and the three stages.
const STEM_WIDTH: usize = 64;
const STAGE_WIDTHS: [usize; 3] = [64, 96, 128];

/// The encoder's `norm_fn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NormKind {
    /// `'instance'`: no parameters, statistics of each map.
    Instance,
    /// `'batch'`: running statistics and an affine transform (the model is in eval mode).
    Batch,
}

/// One normalisation layer.
#[derive(Debug, Clone)]
enum Norm {
    Instance,
    /// Eval-mode batch norm folded, as PyTorch's CPU kernel does, into `x * alpha + beta`
    /// with `alpha = weight / sqrt(var + eps)` and `beta = bias - mean * alpha`; both
    /// `(1, c, 1, 1)`.
    Batch {
        alpha: Tensor,
        beta: Tensor,
    },
}

impl Norm {
    fn new(kind: NormKind, channels: usize, vb: VarBuilder) -> Result<Self> {
        match kind {
            NormKind::Instance => Ok(Self::Instance),
            NormKind::Batch => {
                // The checkpoint's order, so a partial file names its first missing tensor.
                let weight = vb.get(channels, "weight")?;
                let bias = vb.get(channels, "bias")?;
                let mean = vb.get(channels, "running_mean")?;
                let var = vb.get(channels, "running_var")?;
                let invstd = (var + NORM_EPS)?.sqrt()?.recip()?;
                let alpha = (invstd * weight)?;
                let beta = (bias - (mean * &alpha)?)?;
                Ok(Self::Batch {
                    alpha: alpha.reshape((1, channels, 1, 1))?,
                    beta: beta.reshape((1, channels, 1, 1))?,
                })
            }
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Instance => instance_norm(x),
            Self::Batch { alpha, beta } => x.broadcast_mul(alpha)?.broadcast_add(beta),
        }
    }
}

/// `ResidualBlock`: `relu(x' + relu(n2(conv2(relu(n1(conv1(x)))))))`, where `x'` is `x`, or
/// `downsample(x)` (1×1 conv and norm) when the block has stride 2.
#[derive(Debug, Clone)]
struct ResidualBlock {
    conv1: Conv,
    conv2: Conv,
    norm1: Norm,
    norm2: Norm,
    downsample: Option<(Conv, Norm)>,
}

impl ResidualBlock {
    fn new(cin: usize, cout: usize, kind: NormKind, stride: usize, vb: VarBuilder) -> Result<Self> {
        // Built in the checkpoint's order, so a partial file names its first missing tensor.
        let conv1 = Conv::square(cin, cout, 3, stride, 1, vb.pp("conv1"))?;
        let conv2 = Conv::square(cout, cout, 3, 1, 1, vb.pp("conv2"))?;
        let norm1 = Norm::new(kind, cout, vb.pp("norm1"))?;
        let norm2 = Norm::new(kind, cout, vb.pp("norm2"))?;
        let downsample = if stride == 1 {
            None
        } else {
            // The reference registers this norm twice, as `norm3` and `downsample.1`; its
            // `load_state_dict` visits `downsample.1` last, so those values are the ones
            // used (a real checkpoint holds the same values under both names).
            let ds = vb.pp("downsample");
            Some((
                Conv::square(cin, cout, 1, stride, 0, ds.pp(0))?,
                Norm::new(kind, cout, ds.pp(1))?,
            ))
        };
        Ok(Self {
            conv1,
            conv2,
            norm1,
            norm2,
            downsample,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.norm1.forward(&self.conv1.forward(x)?)?.relu()?;
        let y = self.norm2.forward(&self.conv2.forward(&y)?)?.relu()?;
        let x = match &self.downsample {
            Some((conv, norm)) => norm.forward(&conv.forward(x)?)?,
            None => x.clone(),
        };
        (x + y)?.relu()
    }
}

/// `BasicEncoder(output_dim, norm_fn)`.
#[derive(Debug, Clone)]
pub(super) struct BasicEncoder {
    conv1: Conv,
    norm1: Norm,
    /// `layer{1,2,3}.{0,1}`, in order.
    blocks: Vec<ResidualBlock>,
    conv2: Conv,
}

impl BasicEncoder {
    pub(super) fn new(output_dim: usize, kind: NormKind, vb: VarBuilder) -> Result<Self> {
        let conv1 = Conv::square(3, STEM_WIDTH, 7, 2, 3, vb.pp("conv1"))?;
        let norm1 = Norm::new(kind, STEM_WIDTH, vb.pp("norm1"))?;
        let mut blocks = Vec::with_capacity(2 * STAGE_WIDTHS.len());
        let mut cin = STEM_WIDTH;
        for (i, &width) in STAGE_WIDTHS.iter().enumerate() {
            let layer = vb.pp(format!("layer{}", i + 1));
            let stride = if i == 0 { 1 } else { 2 };
            blocks.push(ResidualBlock::new(cin, width, kind, stride, layer.pp(0))?);
            blocks.push(ResidualBlock::new(width, width, kind, 1, layer.pp(1))?);
            cin = width;
        }
        let conv2 = Conv::square(cin, output_dim, 1, 1, 0, vb.pp("conv2"))?;
        Ok(Self {
            conv1,
            norm1,
            blocks,
            conv2,
        })
    }

    /// `(batch, 3, h, w)` images in [-1, 1] → `(batch, output_dim, h / 8, w / 8)`.
    pub(super) fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.norm1.forward(&self.conv1.forward(x)?)?.relu()?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        self.conv2.forward(&x)
    }
}
