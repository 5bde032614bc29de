//! The network annotators timed per frame at the bench's frame size, with random weights:
//! Depth-Anything-V2 ViT-L (the size VACE-Annotators ships), the scribble network and RAFT,
//! in f32 as the reference runs them.

use candle_core::{DType, Device};
use serde::Serialize;

use super::{Timing, time};
use crate::engine::random_weights::RandomWeights;
use crate::media::Frame;
use crate::preprocess::depth_anything::{DepthAnythingConfig, DepthAnythingV2};
use crate::preprocess::raft::Raft;
use crate::preprocess::scribble_net::ScribbleNet;

/// Seconds per frame of each annotator.
#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorTiming {
    /// Depth-Anything-V2 ViT-L: transform, network, resize back and normalisation.
    pub depth_frame: Timing,
    /// The scribble line-art network.
    pub scribble_frame: Timing,
    /// RAFT (20 iterations) on one pair of frames, with the colour-wheel picture.
    pub flow_pair: Timing,
}

/// A frame with some structure (gradients), so no branch sees a constant image.
fn test_frame(width: usize, height: usize) -> Frame {
    let rgb = (0..width * height)
        .flat_map(|i| {
            let (x, y) = (i % width, i / width);
            [
                (x * 255 / width) as u8,
                (y * 255 / height) as u8,
                ((x + y) % 256) as u8,
            ]
        })
        .collect();
    Frame { width, height, rgb }
}

pub fn run(
    width: usize,
    height: usize,
    device: &Device,
    repeat: usize,
) -> anyhow::Result<AnnotatorTiming> {
    let frame = test_frame(width, height);
    let depth = DepthAnythingV2::new(
        DepthAnythingConfig::vitl(),
        RandomWeights::on_device(11).var_builder(DType::F32, device),
    )?;
    let depth_frame = time(device, repeat, || depth.depth_frame(&frame).map(|_| ()))?;
    drop(depth);
    let scribble = ScribbleNet::new(RandomWeights::on_device(12).var_builder(DType::F32, device))?;
    let scribble_frame = time(device, repeat, || scribble.line_frame(&frame).map(|_| ()))?;
    drop(scribble);
    let raft = Raft::new(RandomWeights::on_device(13).var_builder(DType::F32, device))?;
    let pair = [frame.clone(), frame];
    let flow_pair = time(device, repeat, || raft.flow_frames(&pair).map(|_| ()))?;
    Ok(AnnotatorTiming {
        depth_frame,
        scribble_frame,
        flow_pair,
    })
}
