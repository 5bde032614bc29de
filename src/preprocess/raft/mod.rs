//! RAFT optical flow, the network of the `flow` annotator (spec §6.9; `FlowAnnotator` and
//! `FlowVisAnnotator` in `vace/annotators/flow.py` of ali-vilab/VACE 48eb44f, over the
//! princeton-vl/RAFT code (2888e15, `core/`) that VACE installs as the `raft-1.0.0` wheel;
//! weights `flow/raft-things.pth`).
//!
//! The large model, as the annotator builds it (`small=False`, `mixed_precision=False`,
//! `alternate_corr=False`): a feature `encoder` (instance norm) for both frames and a
//! context encoder (batch norm) for the first, at 1/8 of the padded frame; the all-pairs
//! `corr` volume with a 4-level pyramid looked up with radius 4; 20 iterations of the
//! `update` block (motion encoder, separable ConvGRU, flow head); convex 8× upsampling of
//! the final flow; and the colour-wheel picture of `viz`. Everything runs in f32 (instance
//! norm gathers its statistics in f64, as PyTorch does).
//!
//! Two behaviours of the reference are kept on purpose and worth knowing:
//! - frames are padded (edge replication, split evenly as `InputPadder`'s "sintel" mode) to
//!   multiples of 8 and the flow is never unpadded, so flow and pictures have the padded size
//!   ([`padded_size`]);
//! - N frames give N pictures only for N ≥ 2 (the first pair's picture is used twice); a
//!   single frame gives none.

mod conv;
mod corr;
mod encoder;
mod update;
mod viz;
mod weights;

use std::path::Path;

use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

use self::corr::CorrBlock;
use self::encoder::{BasicEncoder, NormKind};
use self::update::{HIDDEN, UpdateBlock, upsample_flow};
pub use self::viz::flow_to_image;
use crate::media::Frame;

/// `iters=20` of `FlowAnnotator.forward` (RAFT's own default is 12).
const ITERATIONS: usize = 20;
/// Width of the feature maps (`BasicEncoder(output_dim=256)` for `fnet`).
const FEATURE_DIM: usize = 256;
/// The network works at 1/8 of the frame; `InputPadder` pads to multiples of this.
const STRIDE: usize = 8;
/// Smallest padded side: below it the coarsest pyramid level is one cell wide and the
/// reference's `bilinear_sampler` divides by zero (NaN flow), or below 64 `avg_pool2d` fails.
const MIN_PADDED_SIDE: usize = 16 * STRIDE;
/// Smallest frame side `flow` accepts: the smallest that pads to [`MIN_PADDED_SIDE`].
pub const MIN_SIDE_PX: usize = MIN_PADDED_SIDE - STRIDE + 1;

/// The size `(width, height)` of the flow and pictures for frames of `width × height`: each
/// side rounded up to a multiple of 8, as the reference leaves them.
pub fn padded_size(width: usize, height: usize) -> (usize, usize) {
    (
        width.div_ceil(STRIDE) * STRIDE,
        height.div_ceil(STRIDE) * STRIDE,
    )
}

/// RAFT (princeton-vl), large configuration, in eval mode.
#[derive(Debug, Clone)]
pub struct Raft {
    /// Feature encoder (`fnet.*`, instance norm, 256 channels).
    fnet: BasicEncoder,
    /// Context encoder (`cnet.*`, batch norm, 128 hidden + 128 context channels).
    cnet: BasicEncoder,
    update_block: UpdateBlock,
    device: Device,
}

impl Raft {
    /// Loads `raft-things.pth` as the reference ships it (every key prefixed `module.`, which
    /// is stripped as the reference does) or a `.safetensors` conversion with or without the
    /// prefix; weights are f32 on `device`. Fails with a message naming the file when it is
    /// missing, unreadable or lacks a tensor.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        weights::load(path, device, Self::new)
    }

    /// Builds the network from `vb`, whose names are the reference's state-dict keys after
    /// the `module.` prefix is stripped (`fnet.conv1.weight`,
    /// `update_block.gru.convz1.weight`, ...).
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            fnet: BasicEncoder::new(FEATURE_DIM, NormKind::Instance, vb.pp("fnet"))?,
            cnet: BasicEncoder::new(2 * HIDDEN, NormKind::Batch, vb.pp("cnet"))?,
            update_block: UpdateBlock::new(vb.pp("update_block"))?,
            device: vb.device().clone(),
        })
    }

    /// Flow from `a` to `b`: the reference's `flow_up` for the pair, `(u, v)` in pixels per
    /// pixel, row-major, at the padded size of [`padded_size`] (the reference pads with
    /// `InputPadder` and never unpads; pixels of the padding border get flow too).
    ///
    /// Fails when the frames differ in size or a side is under 121 pixels (the reference
    /// returns NaN flow or fails there).
    pub fn flow(&self, a: &Frame, b: &Frame) -> Result<Vec<f32>> {
        check_pair(a, b)?;
        let image1 = padded_input(a, &self.device)?;
        let image2 = padded_input(b, &self.device)?;
        self.forward(&image1, &image2)?
            .squeeze(0)?
            .permute((1, 2, 0))? // (h, w, 2)
            .flatten_all()?
            .to_vec1()
    }

    /// `FlowVisAnnotator.forward`: the colour-wheel picture of each consecutive pair's flow,
    /// at the padded size, with the first picture twice so that N frames give N pictures.
    /// Fewer than two frames give none, as in the reference.
    pub fn flow_frames(&self, frames: &[Frame]) -> Result<Vec<Frame>> {
        let mut pictures = Vec::with_capacity(frames.len());
        for pair in frames.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let flow = self.flow(a, b)?;
            let (width, height) = padded_size(a.width, a.height);
            pictures.push(flow_to_image(&flow, width, height));
        }
        if let Some(first) = pictures.first().cloned() {
            pictures.insert(0, first);
        }
        Ok(pictures)
    }

    /// `RAFT.forward(image1, image2, iters=20, test_mode=True)[1]`: `(1, 3, h, w)` RGB
    /// images scaled to [-1, 1], sides multiples of 8 → `flow_up`, `(1, 2, h, w)`.
    fn forward(&self, image1: &Tensor, image2: &Tensor) -> Result<Tensor> {
        let fmaps = self.fnet.forward(&Tensor::cat(&[image1, image2], 0)?)?;
        let corr = CorrBlock::new(&fmaps.narrow(0, 0, 1)?, &fmaps.narrow(0, 1, 1)?)?;
        let context = self.cnet.forward(image1)?;
        let mut net = context.narrow(1, 0, HIDDEN)?.tanh()?;
        let inp = context.narrow(1, HIDDEN, HIDDEN)?.relu()?;

        let (_, _, h, w) = fmaps.dims4()?;
        let coords0 = coords_grid(h, w, &self.device)?;
        let mut coords1 = coords0.clone();
        for _ in 0..ITERATIONS {
            let correlation = corr.lookup(&coords1)?;
            let flow = (&coords1 - &coords0)?;
            let (next, delta) = self.update_block.forward(&net, &inp, &correlation, &flow)?;
            net = next;
            coords1 = (coords1 + delta)?;
        }
        let mask = self.update_block.mask(&net)?;
        upsample_flow(&(coords1 - coords0)?, &mask)
    }
}

/// `coords_grid(1, h, w)`: `(1, 2, h, w)`, channel 0 the column (x), 1 the row (y).
fn coords_grid(h: usize, w: usize, device: &Device) -> Result<Tensor> {
    let xs: Vec<f32> = (0..h * w).map(|i| (i % w) as f32).collect();
    let ys: Vec<f32> = (0..h * w).map(|i| (i / w) as f32).collect();
    Tensor::cat(
        &[
            Tensor::from_vec(xs, (1, 1, h, w), device)?,
            Tensor::from_vec(ys, (1, 1, h, w), device)?,
        ],
        1,
    )
}

/// The frames must have the same, large enough, size and hold RGB bytes.
fn check_pair(a: &Frame, b: &Frame) -> Result<()> {
    for frame in [a, b] {
        if frame.rgb.len() != frame.width * frame.height * 3 {
            candle_core::bail!(
                "flow input must be an RGB frame (got {}x{} with {} bytes)",
                frame.width,
                frame.height,
                frame.rgb.len()
            );
        }
    }
    if (a.width, a.height) != (b.width, b.height) {
        candle_core::bail!(
            "flow frames must have one size (got {}x{} then {}x{})",
            a.width,
            a.height,
            b.width,
            b.height
        );
    }
    let (w, h) = padded_size(a.width, a.height);
    if w < MIN_PADDED_SIDE || h < MIN_PADDED_SIDE {
        let min = MIN_PADDED_SIDE - STRIDE + 1;
        candle_core::bail!(
            "RAFT needs frames of at least {min}x{min} pixels (got {}x{}): smaller ones make \
             its coarsest correlation level degenerate",
            a.width,
            a.height
        );
    }
    Ok(())
}

/// The frame as the network's input: `InputPadder(mode='sintel').pad` (edge replication,
/// the extra pixel of an odd padding at the bottom or right) then `2 * (x / 255) - 1`,
/// `(1, 3, h, w)` planar.
fn padded_input(frame: &Frame, device: &Device) -> Result<Tensor> {
    let (w, h) = (frame.width, frame.height);
    let (pw, ph) = padded_size(w, h);
    let (left, top) = ((pw - w) / 2, (ph - h) / 2);
    let source = |x: usize, y: usize, c: usize| {
        let sx = x.saturating_sub(left).min(w - 1);
        let sy = y.saturating_sub(top).min(h - 1);
        frame.rgb[3 * (sy * w + sx) + c]
    };
    let mut planar = Vec::with_capacity(3 * pw * ph);
    for c in 0..3 {
        for y in 0..ph {
            for x in 0..pw {
                planar.push(2.0 * (f32::from(source(x, y, c)) / 255.0) - 1.0);
            }
        }
    }
    Tensor::from_vec(planar, (1, 3, ph, pw), device)
}
