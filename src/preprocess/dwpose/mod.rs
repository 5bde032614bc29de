//! DWPose, as the reference's `pose` and `pose_body` annotators run it: a YOLOX-L person
//! detector, an RTMPose whole-body estimator on each person, and the OpenPose-style
//! skeleton drawn on black.
//!
//! A port of `vace/annotators/pose.py` and `vace/annotators/dwpose/` except the networks,
//! number for number: the reference works on the frame as BGR scaled to a short side of
//! 1024 (`working`), letterboxes it for the detector and decodes its boxes (`detect`),
//! crops each person for the estimator and decodes its SimCC output (`estimate`), adds the
//! neck in OpenPose order (`keypoints`), draws and scales back (`draw`). NumPy's `float32`
//! and `float64` steps are kept as they are, including its own `exp` (`numpy_exp`).

mod detect;
mod draw;
mod estimate;
mod keypoints;
mod numpy_exp;
mod working;

use candle_core::{Device, Tensor};

use crate::media::Frame;
use estimate::CropBox;
pub use keypoints::{KEYPOINTS, Person, Poses};

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
    Ok(draw_poses(&estimate_poses(nets, frame, device)?, parts))
}

/// Person crops per estimator batch: a crowd must not need gigabytes of crops at once
/// (each is 3×384×288 f32, 1.3 MB, plus the network's activations).
const MAX_CROPS_PER_BATCH: usize = 16;

/// The people in `frame` (RGB): `Wholebody.__call__` on the working picture. Crops go to
/// the estimator in batches; the reference runs them one at a time.
pub fn estimate_poses(
    nets: &dyn PoseNetworks,
    frame: &Frame,
    device: &Device,
) -> candle_core::Result<Poses> {
    if frame.width == 0 || frame.height == 0 || frame.rgb.len() != frame.width * frame.height * 3 {
        return Err(candle_core::Error::Msg(format!(
            "dwpose: a {}×{} frame of {} bytes is not an RGB picture",
            frame.width,
            frame.height,
            frame.rgb.len()
        )));
    }
    let work = working::working_picture(frame)?;
    let (input, ratio) = detect::letterbox(&work, device)?;
    let boxes = detect::person_boxes(&nets.detect(&input)?, ratio)?;

    let size = nets.pose_input_size();
    if size.0 == 0 || size.1 == 0 {
        return Err(candle_core::Error::Msg(format!(
            "dwpose: pose input size {size:?} is empty"
        )));
    }
    // No person: the reference takes the whole picture as one.
    let whole = [[0.0, 0.0, work.width as f64, work.height as f64]];
    let crop_boxes: Vec<CropBox> = if boxes.is_empty() {
        &whole[..]
    } else {
        &boxes[..]
    }
    .iter()
    .map(|b| CropBox::new(*b, size))
    .collect();
    let mut decoded = Vec::with_capacity(crop_boxes.len());
    for chunk in crop_boxes.chunks(MAX_CROPS_PER_BATCH) {
        let crops = estimate::crops(&work, chunk, size, device)?;
        let (simcc_x, simcc_y) = nets.estimate(&crops)?;
        decoded.extend(estimate::decode_all(
            &simcc_x,
            &simcc_y,
            chunk.len(),
            keypoints::WHOLEBODY,
        )?);
    }
    let people = decoded
        .iter()
        .zip(&crop_boxes)
        .map(|(points, crop)| {
            let (xy, scores): (Vec<_>, Vec<_>) = points
                .iter()
                .map(|&(loc, score)| (crop.in_picture(loc, size), score))
                .unzip();
            Person::from_wholebody(&xy, &scores)
        })
        .collect();
    Ok(Poses {
        frame_size: (frame.width, frame.height),
        size: (work.width, work.height),
        boxes,
        people,
    })
}

/// The pose control frame of `poses`: `draw_pose` on the working picture, scaled back to
/// the frame's size (`INTER_LANCZOS4` when enlarging, else `INTER_AREA`), RGB.
pub fn draw_poses(poses: &Poses, parts: Parts) -> Frame {
    draw::render(poses, parts)
}
