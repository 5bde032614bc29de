//! A small ONNX runner on candle: reads a `.onnx` file, keeps its weights on the device,
//! and evaluates the graph's nodes in order. It implements the operators of the
//! reference's annotator networks (DWPose's YOLOX and RTMPose exports) and the other
//! common ones of opsets 7 to 22 (see [`SUPPORTED_OPS`]); a graph using anything else is
//! refused when it is loaded, with every problem listed.
//!
//! At load, nodes that depend only on constants are evaluated once, each node's
//! attributes and constant inputs are parsed (weights uploaded once), `x * sigmoid(x)` is
//! fused into SiLU and a SiLU into the Conv before it, and each intermediate value gets a
//! last reader after which it is freed. On a GPU, depthwise convolutions and a Conv's
//! bias + SiLU run in the runner's own kernels (compiled with NVRTC at the first load;
//! candle's ops where that fails). Shape arithmetic (Shape and what is computed from
//! it) stays on the CPU as i64; everything else runs in f32 on the model's device.

mod exec;
mod fuse;
mod graph;
mod ops;
pub(crate) mod proto;
mod tensor;

use std::path::Path;

use candle_core::{Device, Tensor};

/// The default-domain operators [`OnnxModel::load`] accepts (their forms in opsets 7 to
/// 22; a few attribute values are refused individually, e.g. Resize's cubic mode).
pub const SUPPORTED_OPS: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "CastLike",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "Cos",
    "Div",
    "Dropout",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Greater",
    "GreaterOrEqual",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "InstanceNormalization",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "LessOrEqual",
    "Log",
    "LogSoftmax",
    "MatMul",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pad",
    "Pow",
    "PRelu",
    "Range",
    "Reciprocal",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceSum",
    "ReduceSumSquare",
    "Relu",
    "Reshape",
    "Resize",
    "Selu",
    "Shape",
    "Sigmoid",
    "Sign",
    "Sin",
    "Size",
    "Slice",
    "Softmax",
    "Softplus",
    "Softsign",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Tile",
    "Transpose",
    "Unsqueeze",
    "Upsample",
    "Where",
    "Xor",
];

/// Where a profiled run spent its time: `(kind, seconds, nodes)` per op type (Conv split
/// by kernel size, depthwise and fused SiLU), slowest first.
pub type Profile = Vec<(String, f64, usize)>;

/// A loaded ONNX graph.
pub struct OnnxModel {
    plan: graph::Plan,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("file", &self.plan.file)
            .field("device", &self.plan.device)
            .field("inputs", &self.inputs())
            .field("outputs", &self.output_names())
            .field("nodes", &self.plan.steps.len())
            .finish()
    }
}

impl OnnxModel {
    /// Reads `path` and uploads its weights to `device`. Fails, listing every problem,
    /// when the graph uses an operator, attribute value or data type the runner does not
    /// implement, or keeps its weights in external data files.
    pub fn load(path: &Path, device: &Device) -> candle_core::Result<Self> {
        Ok(Self {
            plan: graph::load(path, device)?,
        })
    }

    /// The graph's inputs (weights excluded): name and dimensions, `None` where dynamic.
    pub fn inputs(&self) -> Vec<(String, Vec<Option<usize>>)> {
        self.plan
            .inputs
            .iter()
            .map(|i| (i.name.clone(), i.dims.clone()))
            .collect()
    }

    /// The names of the graph's outputs, in the order [`Self::run`] returns them.
    pub fn output_names(&self) -> Vec<String> {
        self.plan.outputs.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The device the model's weights live on.
    pub fn device(&self) -> &Device {
        &self.plan.device
    }

    /// Runs the graph on `inputs`, in the order of [`Self::inputs`]; returns the graph's
    /// outputs in their order.
    pub fn run(&self, inputs: &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
        exec::run(&self.plan, inputs)
    }

    /// Like [`Self::run`], but waits for the device after every node and also returns
    /// where the time went. For diagnosis; slower than `run`.
    pub fn profile(&self, inputs: &[Tensor]) -> candle_core::Result<(Vec<Tensor>, Profile)> {
        exec::run_profiled(&self.plan, inputs)
    }
}
