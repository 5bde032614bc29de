//! The network annotators timed per frame at the bench's frame size, with random weights:
//! Depth-Anything-V2 ViT-L (the size VACE-Annotators ships), the scribble network and RAFT,
//! in f32 as the reference runs them; and DWPose when its ONNX files are in the annotator
//! folder (an ONNX graph cannot be made up from random weights).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::{Timing, time};
use crate::engine::random_weights::RandomWeights;
use crate::media::Frame;
use crate::preprocess::depth_anything::{DepthAnythingConfig, DepthAnythingV2};
use crate::preprocess::dwpose::{self, Parts, PoseNetworks};
use crate::preprocess::pose_networks::OnnxPoseNetworks;
use crate::preprocess::raft::Raft;
use crate::preprocess::scribble_net::ScribbleNet;
use crate::preprocess::{AnnotatorDir, Weights};

/// Seconds per frame of each annotator.
#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorTiming {
    /// Depth-Anything-V2 ViT-L: transform, network, resize back and normalisation.
    pub depth_frame: Timing,
    /// The scribble line-art network.
    pub scribble_frame: Timing,
    /// RAFT (20 iterations) on one pair of frames, with the colour-wheel picture.
    pub flow_pair: Timing,
    /// DWPose, when the annotator folder has its files.
    pub pose: Option<PoseTiming>,
}

/// DWPose's parts: the networks alone and a whole frame.
#[derive(Debug, Clone, Serialize)]
pub struct PoseTiming {
    /// YOLOX on one letterboxed 640×640 frame.
    pub detector: Timing,
    /// RTMPose on one person's crop.
    pub estimator_person: Timing,
    /// A whole `pose` frame: resize to 1024, detection, every person found, drawing, resize
    /// back.
    pub pose_frame: Timing,
    /// People the detector found in the bench frame (each costs an estimator crop).
    pub people: usize,
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
    annotators: &AnnotatorDir,
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
    drop(raft);
    let [frame, _] = pair;
    let pose = match (
        annotators.locate(Weights::PoseDetector, "pose"),
        annotators.locate(Weights::PoseEstimator, "pose"),
    ) {
        (Ok(detector), Ok(estimator)) => Some(pose(&detector, &estimator, &frame, device, repeat)?),
        _ => None,
    };
    Ok(AnnotatorTiming {
        depth_frame,
        scribble_frame,
        flow_pair,
        pose,
    })
}

fn pose(
    detector: &Path,
    estimator: &Path,
    frame: &Frame,
    device: &Device,
    repeat: usize,
) -> anyhow::Result<PoseTiming> {
    let nets = OnnxPoseNetworks::new(
        OnnxPoseNetworks::load_detector(detector, device)?,
        OnnxPoseNetworks::load_estimator(estimator, device)?,
    );
    let letterboxed = Tensor::zeros((1, 3, 640, 640), DType::F32, device)?;
    let detector = time(device, repeat, || nets.detect(&letterboxed).map(|_| ()))?;
    let (w, h) = nets.pose_input_size();
    let crop = Tensor::zeros((1, 3, h, w), DType::F32, device)?;
    let estimator_person = time(device, repeat, || nets.estimate(&crop).map(|_| ()))?;
    let pose_frame = time(device, repeat, || {
        dwpose::pose_frame(&nets, frame, Parts::BodyFace, device).map(|_| ())
    })?;
    let people = dwpose::estimate_poses(&nets, frame, device)?.people().len();
    Ok(PoseTiming {
        detector,
        estimator_person,
        pose_frame,
        people,
    })
}
