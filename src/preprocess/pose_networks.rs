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
    /// RTMPose's batch size when its graph fixes one (exports with a static batch of 1
    /// exist); crops then go through it that many at a time.
    fixed_batch: Option<usize>,
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

    /// Loads `pose/dw-ll_ucoco_384.onnx` onto `device`; its input size (and batch, if
    /// fixed) is read from it.
    pub fn load_estimator(path: &Path, device: &Device) -> candle_core::Result<Estimator> {
        let model = OnnxModel::load(path, device)?;
        let inputs = model.inputs();
        let shape = match inputs.as_slice() {
            [(_, dims)] => match dims.as_slice() {
                [batch, Some(3), Some(h), Some(w)] => Some((*batch, (*w, *h))),
                _ => None,
            },
            _ => None,
        };
        match shape {
            Some((fixed_batch, input_size)) => Ok(Estimator {
                model,
                input_size,
                fixed_batch,
            }),
            None => candle_core::bail!(
                "expected one input of N×3×H×W with fixed H and W (DWPose's \
                 dw-ll_ucoco_384.onnx), found {}; install the file from the VACE-Annotators \
                 download",
                describe(&inputs)
            ),
        }
    }

    /// The pair, from [`Self::load_detector`] and [`Self::load_estimator`].
    pub fn new(detector: OnnxModel, estimator: Estimator) -> Self {
        Self {
            detector,
            estimator: estimator.model,
            input_size: estimator.input_size,
            fixed_batch: estimator.fixed_batch,
        }
    }
}

/// The loaded RTMPose graph with what the pipeline needs to know of its input.
pub struct Estimator {
    model: OnnxModel,
    input_size: (usize, usize),
    fixed_batch: Option<usize>,
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
        let n = input.dim(0)?;
        match self.fixed_batch {
            Some(batch) if batch > 0 && n != batch && n % batch == 0 => {
                let (mut xs, mut ys) = (Vec::new(), Vec::new());
                for start in (0..n).step_by(batch) {
                    let (x, y) = self.estimate_batch(&input.narrow(0, start, batch)?)?;
                    xs.push(x);
                    ys.push(y);
                }
                Ok((Tensor::cat(&xs, 0)?, Tensor::cat(&ys, 0)?))
            }
            _ => self.estimate_batch(input),
        }
    }
}

impl OnnxPoseNetworks {
    fn estimate_batch(&self, input: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use candle_core::{DType, Device, Tensor};
    use prost::Message;

    use super::*;
    use crate::preprocess::onnx::proto::{Dimension, ModelProto};

    fn stand_in(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/onnx")
            .join(name)
    }

    /// DWPose's RTMPose may be exported with a static batch of 1: the pipeline's batches
    /// of crops must then go through one by one, with the same results.
    #[test]
    fn a_fixed_batch_estimator_takes_crops_one_at_a_time() {
        let bytes = std::fs::read(stand_in("dw-ll_ucoco_384_tiny.onnx")).unwrap();
        let mut model = ModelProto::decode(bytes.as_slice()).unwrap();
        let graph = model.graph.as_mut().unwrap();
        for value in graph.input.iter_mut().chain(graph.output.iter_mut()) {
            let shape = value.r#type.as_mut().unwrap().tensor_type.as_mut().unwrap();
            shape.shape.as_mut().unwrap().dim[0] = Dimension {
                dim_value: Some(1),
                dim_param: None,
            };
        }
        let dir = tempfile::tempdir().unwrap();
        let fixed_path = dir.path().join("dw-ll_ucoco_384.onnx");
        std::fs::write(&fixed_path, model.encode_to_vec()).unwrap();

        let device = Device::Cpu;
        let detector =
            || OnnxPoseNetworks::load_detector(&stand_in("yolox_l_tiny.onnx"), &device).unwrap();
        let fixed = OnnxPoseNetworks::new(
            detector(),
            OnnxPoseNetworks::load_estimator(&fixed_path, &device).unwrap(),
        );
        let dynamic = OnnxPoseNetworks::new(
            detector(),
            OnnxPoseNetworks::load_estimator(&stand_in("dw-ll_ucoco_384_tiny.onnx"), &device)
                .unwrap(),
        );
        assert_eq!((fixed.fixed_batch, dynamic.fixed_batch), (Some(1), None));

        let crops = Tensor::randn(0f32, 1.0, (3, 3, 384, 288), &device).unwrap();
        let (fx, fy) = fixed.estimate(&crops).unwrap();
        let (dx, dy) = dynamic.estimate(&crops).unwrap();
        for (a, b) in [(fx, dx), (fy, dy)] {
            assert_eq!(a.dims(), b.dims());
            let worst = (a - &b)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            let top = b.abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            assert!(worst <= 1e-4 * top.to_scalar::<f32>().unwrap(), "{worst}");
        }
    }
}
