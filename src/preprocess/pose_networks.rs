//! DWPose's two networks run from the reference's ONNX files.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::dwpose::PoseNetworks;
use super::onnx::OnnxModel;

/// The input side YOLOX was exported for; the reference letterboxes every frame to it.
const DETECTOR_SIDE_PX: usize = 640;

/// `pose/yolox_l.onnx` and `pose/dw-ll_ucoco_384.onnx`, loaded and checked.
pub struct OnnxPoseNetworks {
    detector: OnnxModel,
    estimator: OnnxModel,
    /// RTMPose's input `(width, height)`, read from its graph (288×384 for DWPose-L).
    input_size: (usize, usize),
}

impl OnnxPoseNetworks {
    /// Loads `pose/yolox_l.onnx` onto `device` and checks it takes the letterboxed frame.
    pub fn load_detector(path: &Path, device: &Device) -> candle_core::Result<OnnxModel> {
        let model = OnnxModel::load(path, device)?;
        let inputs = model.inputs();
        match inputs.as_slice() {
            [(_, dims)] if fits(dims, &[1, 3, DETECTOR_SIDE_PX, DETECTOR_SIDE_PX]) => Ok(model),
            _ => candle_core::bail!(
                "expected one input of 1×3×{DETECTOR_SIDE_PX}×{DETECTOR_SIDE_PX} (DWPose's \
                 yolox_l.onnx), found {}; install the file from the VACE-Annotators download",
                describe(&inputs)
            ),
        }
    }

    /// Loads `pose/dw-ll_ucoco_384.onnx` onto `device`; its input size is read from it.
    pub fn load_estimator(
        path: &Path,
        device: &Device,
    ) -> candle_core::Result<(OnnxModel, (usize, usize))> {
        let model = OnnxModel::load(path, device)?;
        let inputs = model.inputs();
        let size = match inputs.as_slice() {
            [(_, dims)] => match dims.as_slice() {
                [_, Some(3), Some(h), Some(w)] => Some((*w, *h)),
                _ => None,
            },
            _ => None,
        };
        match size {
            Some(size) => Ok((model, size)),
            None => candle_core::bail!(
                "expected one input of N×3×H×W with fixed H and W (DWPose's \
                 dw-ll_ucoco_384.onnx), found {}; install the file from the VACE-Annotators \
                 download",
                describe(&inputs)
            ),
        }
    }

    /// The pair, from [`Self::load_detector`] and [`Self::load_estimator`].
    pub fn new(detector: OnnxModel, (estimator, input_size): (OnnxModel, (usize, usize))) -> Self {
        Self {
            detector,
            estimator,
            input_size,
        }
    }
}

/// Whether graph dimensions (`None` = dynamic) accept `want`.
fn fits(dims: &[Option<usize>], want: &[usize]) -> bool {
    dims.len() == want.len()
        && dims
            .iter()
            .zip(want)
            .all(|(d, w)| d.is_none_or(|d| d == *w))
}

fn describe(inputs: &[(String, Vec<Option<usize>>)]) -> String {
    let list: Vec<String> = inputs
        .iter()
        .map(|(name, dims)| {
            let dims: Vec<String> = dims
                .iter()
                .map(|d| d.map_or("?".to_owned(), |d| d.to_string()))
                .collect();
            format!("`{name}` {}", dims.join("×"))
        })
        .collect();
    if list.is_empty() {
        "no inputs".to_owned()
    } else {
        list.join(", ")
    }
}

impl PoseNetworks for OnnxPoseNetworks {
    fn detect(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        let mut outputs = self.detector.run(std::slice::from_ref(input))?.into_iter();
        outputs
            .next()
            .ok_or_else(|| candle_core::Error::Msg("the pose detector gave no output".to_owned()))
    }

    fn pose_input_size(&self) -> (usize, usize) {
        self.input_size
    }

    fn estimate(&self, input: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let mut outputs = self.estimator.run(std::slice::from_ref(input))?.into_iter();
        match (outputs.next(), outputs.next()) {
            (Some(x), Some(y)) => Ok((x, y)),
            _ => candle_core::bail!(
                "the pose network gave fewer than two outputs (simcc_x, simcc_y); is \
                 pose/dw-ll_ucoco_384.onnx DWPose's RTMPose export?"
            ),
        }
    }
}
