//! A small ONNX runner on candle: reads a `.onnx` file, keeps its weights on the device,
//! and evaluates the graph's nodes in order. It implements the operators of the
//! reference's annotator networks (DWPose's YOLOX and RTMPose exports); a graph using
//! anything else is refused when it is loaded.

use std::path::Path;

use candle_core::{Device, Tensor};

/// A loaded ONNX graph.
pub struct OnnxModel {}

impl OnnxModel {
    /// Reads `path` and uploads its weights to `device`.
    pub fn load(path: &Path, device: &Device) -> candle_core::Result<Self> {
        let _ = (path, device);
        todo!("onnx::OnnxModel::load")
    }

    /// The graph's inputs (weights excluded): name and dimensions, `None` where dynamic.
    pub fn inputs(&self) -> Vec<(String, Vec<Option<usize>>)> {
        todo!("onnx::OnnxModel::inputs")
    }

    /// Runs the graph on `inputs`, in the order of [`Self::inputs`]; returns the graph's
    /// outputs in their order.
    pub fn run(&self, inputs: &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
        let _ = inputs;
        todo!("onnx::OnnxModel::run")
    }
}
