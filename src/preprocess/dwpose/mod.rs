//! DWPose, as the reference's `pose` and `pose_body` annotators run it: a YOLOX-L person
//! detector, an RTMPose whole-body estimator on each person, and the OpenPose-style
//! skeleton drawn on black.

use candle_core::{Device, Tensor};

use crate::media::Frame;

/// The two networks, however they are run.
pub trait PoseNetworks {
    /// YOLOX-L on a `(1, 3, 640, 640)` f32 batch of BGR values 0–255 (padded with 114):
    /// raw predictions `(1, anchors, 5 + classes)`, undecoded.
    fn detect(&self, input: &Tensor) -> candle_core::Result<Tensor>;
    /// RTMPose's input size, `(width, height)` in pixels.
    fn pose_input_size(&self) -> (usize, usize);
    /// RTMPose on `(n, 3, height, width)` normalised crops: `(simcc_x (n, K, Wx),
    /// simcc_y (n, K, Wy))`.
    fn estimate(&self, input: &Tensor) -> candle_core::Result<(Tensor, Tensor)>;
}

/// What a pose frame shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    /// `pose`: PoseBodyFaceAnnotator.
    BodyFace,
    /// `pose_body`: PoseBodyAnnotator.
    Body,
}

/// The pose control frame of `frame` (RGB), the size of `frame`.
pub fn pose_frame(
    nets: &dyn PoseNetworks,
    frame: &Frame,
    parts: Parts,
    device: &Device,
) -> candle_core::Result<Frame> {
    let _ = (nets, frame, parts, device);
    todo!("dwpose::pose_frame")
}
