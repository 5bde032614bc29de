//! `BasicUpdateBlock` of RAFT's `core/update.py` (motion encoder, separable ConvGRU, flow
//! head, upsampling mask) and `RAFT.upsample_flow`, the convex 8× upsampling of
//! `core/raft.py`. All maps are `(1, channels, h, w)` at 1/8 of the padded frame.

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::conv::Conv;
use super::corr::CORR_PLANES;

/// Width of the GRU state (`hidden_dim`) and of the context features (`context_dim`).
pub(super) const HIDDEN: usize = 128;
/// Channels of the motion features (126 encoded plus the 2 of the flow itself).
const MOTION: usize = 128;
/// The upsampling factor of the convex combination.
const UP: usize = 8;
/// Neighbours combined per upsampled pixel (a 3×3 window).
const NEIGHBOURS: usize = 9;
/// `.25 * self.mask(net)`: "scale mask to balance gradients".
const MASK_SCALE: f64 = 0.25;

/// `BasicMotionEncoder`: correlation and flow features, concatenated with the flow.
#[derive(Debug, Clone)]
struct MotionEncoder {
    convc1: Conv,
    convc2: Conv,
    convf1: Conv,
    convf2: Conv,
    conv: Conv,
}

impl MotionEncoder {
    fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            convc1: Conv::square(CORR_PLANES, 256, 1, 1, 0, vb.pp("convc1"))?,
            convc2: Conv::square(256, 192, 3, 1, 1, vb.pp("convc2"))?,
            convf1: Conv::square(2, 128, 7, 1, 3, vb.pp("convf1"))?,
            convf2: Conv::square(128, 64, 3, 1, 1, vb.pp("convf2"))?,
            conv: Conv::square(64 + 192, MOTION - 2, 3, 1, 1, vb.pp("conv"))?,
        })
    }

    fn forward(&self, flow: &Tensor, corr: &Tensor) -> Result<Tensor> {
        let cor = self.convc1.forward(corr)?.relu()?;
        let cor = self.convc2.forward(&cor)?.relu()?;
        let flo = self.convf1.forward(flow)?.relu()?;
        let flo = self.convf2.forward(&flo)?.relu()?;
        let out = self.conv.forward(&Tensor::cat(&[cor, flo], 1)?)?.relu()?;
        Tensor::cat(&[&out, flow], 1)
    }
}

/// One direction of `SepConvGRU`: the z, r, q convolutions with a 1×5 or 5×1 kernel.
#[derive(Debug, Clone)]
struct GruStep {
    convz: Conv,
    convr: Conv,
    convq: Conv,
}

impl GruStep {
    /// `suffix` 1 is horizontal (1×5), 2 vertical (5×1).
    fn new(suffix: usize, vb: &VarBuilder) -> Result<Self> {
        let (kernel, padding) = if suffix == 1 {
            ((1, 5), (0, 2))
        } else {
            ((5, 1), (2, 0))
        };
        let cin = HIDDEN + HIDDEN + MOTION;
        let conv = |gate: &str| {
            Conv::new(
                cin,
                HIDDEN,
                kernel,
                1,
                padding,
                vb.pp(format!("conv{gate}{suffix}")),
            )
        };
        Ok(Self {
            convz: conv("z")?,
            convr: conv("r")?,
            convq: conv("q")?,
        })
    }

    /// `h = (1 - z) * h + z * q` for hidden state `h` and input `x`.
    fn forward(&self, h: &Tensor, x: &Tensor) -> Result<Tensor> {
        let hx = Tensor::cat(&[h, x], 1)?;
        let z = candle_nn::ops::sigmoid(&self.convz.forward(&hx)?)?;
        let r = candle_nn::ops::sigmoid(&self.convr.forward(&hx)?)?;
        let q = self
            .convq
            .forward(&Tensor::cat(&[&(r * h)?, x], 1)?)?
            .tanh()?;
        (z.affine(-1.0, 1.0)? * h)? + (z * q)?
    }
}

/// `BasicUpdateBlock` (keys `update_block.*`).
#[derive(Debug, Clone)]
pub(super) struct UpdateBlock {
    encoder: MotionEncoder,
    /// `gru.conv{z,r,q}1` then `gru.conv{z,r,q}2`.
    gru: [GruStep; 2],
    /// `flow_head.conv1`, `flow_head.conv2`.
    flow_head: [Conv; 2],
    /// `mask.0`, `mask.2`.
    mask: [Conv; 2],
}

impl UpdateBlock {
    pub(super) fn new(vb: VarBuilder) -> Result<Self> {
        let gru = vb.pp("gru");
        let head = vb.pp("flow_head");
        let mask = vb.pp("mask");
        Ok(Self {
            encoder: MotionEncoder::new(vb.pp("encoder"))?,
            gru: [GruStep::new(1, &gru)?, GruStep::new(2, &gru)?],
            flow_head: [
                Conv::square(HIDDEN, 256, 3, 1, 1, head.pp("conv1"))?,
                Conv::square(256, 2, 3, 1, 1, head.pp("conv2"))?,
            ],
            mask: [
                Conv::square(HIDDEN, 256, 3, 1, 1, mask.pp(0))?,
                Conv::square(256, UP * UP * NEIGHBOURS, 1, 1, 0, mask.pp(2))?,
            ],
        })
    }

    /// One refinement: the new GRU state and the flow update `delta_flow`. The mask the
    /// reference also computes every iteration is left to [`Self::mask`]: only the last
    /// one is used in test mode.
    pub(super) fn forward(
        &self,
        net: &Tensor,
        inp: &Tensor,
        corr: &Tensor,
        flow: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let motion = self.encoder.forward(flow, corr)?;
        let x = Tensor::cat(&[inp, &motion], 1)?;
        let mut net = net.clone();
        for step in &self.gru {
            net = step.forward(&net, &x)?;
        }
        let hidden = self.flow_head[0].forward(&net)?.relu()?;
        let delta = self.flow_head[1].forward(&hidden)?;
        Ok((net, delta))
    }

    /// The upsampling mask of GRU state `net`: `(1, 576, h, w)`.
    pub(super) fn mask(&self, net: &Tensor) -> Result<Tensor> {
        let hidden = self.mask[0].forward(net)?.relu()?;
        self.mask[1].forward(&hidden)?.affine(MASK_SCALE, 0.0)
    }
}

/// `RAFT.upsample_flow`: each of the 8×8 pixels a low-resolution pixel becomes is a convex
/// combination (softmax of the mask over 9) of the 3×3 neighbourhood of `8 * flow`.
/// `(1, 2, h, w)` flow and `(1, 576, h, w)` mask → `(1, 2, 8h, 8w)`.
pub(super) fn upsample_flow(flow: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = flow.dims4()?;
    // The mask's channels are (neighbour, row within the block, column within the block).
    let mask = mask.reshape((1, NEIGHBOURS, UP * UP, h * w))?;
    let mask = candle_nn::ops::softmax(&mask, 1)?;
    // `F.unfold(8 * flow, [3, 3], padding=1)`: neighbour k = 3 * dy + dx, zero outside.
    let scaled = flow.affine(UP as f64, 0.0)?.squeeze(0)?;
    let padded = scaled.pad_with_zeros(1, 1, 1)?.pad_with_zeros(2, 1, 1)?;
    let mut neighbours = Vec::with_capacity(NEIGHBOURS);
    for dy in 0..3 {
        for dx in 0..3 {
            neighbours.push(padded.narrow(1, dy, h)?.narrow(2, dx, w)?);
        }
    }
    let unfolded = Tensor::stack(&neighbours, 1)?.reshape((2, NEIGHBOURS, 1, h * w))?;
    let up = mask.broadcast_mul(&unfolded)?.sum(1)?; // (2, 64, h * w)
    up.reshape((2, UP, UP, h, w))?
        .permute((0, 3, 1, 4, 2))? // (2, h, 8, w, 8)
        .reshape((1, 2, UP * h, UP * w))
}
