//! The operators: each node is compiled once at load into an [`Op`] that holds its
//! attributes and constant inputs already parsed (and uploaded), so running it only
//! computes.

mod conv;
#[cfg(feature = "cuda")]
mod cuda;
mod depthwise;
mod elementwise;
mod linalg;
mod norm;
mod pool;
mod reduce;
mod resize;
mod shape;
mod slice;
mod util;

use std::cell::RefCell;

use candle_core::{Device, Tensor};

use super::proto::{AttributeProto, attribute_type as at};
use super::tensor::read_tensor;

/// A compiled node.
pub(crate) trait Op: Send + Sync {
    /// Evaluates the node. `inputs[i]` is `None` for an omitted optional input and for a
    /// constant input that the op took when it was compiled. Returns the outputs in order;
    /// trailing optional outputs may be left off.
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>>;
}

/// A compile result: the op, or what is wrong (not implemented, invalid).
pub(crate) type Compiled = Result<Box<dyn Op>, String>;

/// The op type of the SiLU node the loader makes of `x * Sigmoid(x)`.
pub(crate) const SILU: &str = "vaced.Silu";

/// The op type of a Conv followed by SiLU, fused by the loader.
pub(crate) const CONV_SILU: &str = "vaced.ConvSilu";

/// Compiles the node described by `ctx`.
pub(crate) fn compile(ctx: &NodeCtx) -> Compiled {
    use elementwise as e;
    match ctx.op_type {
        "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Log" | "Sqrt" | "Neg" | "Abs" | "Erf"
        | "Reciprocal" | "Floor" | "Ceil" | "Sin" | "Cos" | "Sign" | "Softplus" | "Softsign"
        | "HardSigmoid" | "HardSwish" | "LeakyRelu" | "Elu" | "Selu" | "Gelu" | "Not"
        | "Identity" | "Dropout" | SILU => e::unary(ctx),
        "Clip" => e::clip(ctx),
        "Cast" | "CastLike" => e::cast(ctx),
        "Add" | "Sub" | "Mul" | "Div" | "Equal" | "Greater" | "Less" | "GreaterOrEqual"
        | "LessOrEqual" | "And" | "Or" | "Xor" | "PRelu" => e::binary(ctx),
        "Pow" => e::pow(ctx),
        "Max" | "Min" | "Sum" | "Mean" => e::variadic(ctx),
        "Where" => e::where_(ctx),
        "Conv" | CONV_SILU => conv::conv(ctx),
        "BatchNormalization" => norm::batch_norm(ctx),
        "LayerNormalization" => norm::layer_norm(ctx),
        "InstanceNormalization" => norm::instance_norm(ctx),
        "MaxPool" | "AveragePool" => pool::pool(ctx),
        "GlobalAveragePool" | "GlobalMaxPool" => pool::global_pool(ctx),
        "MatMul" => linalg::matmul(ctx),
        "Gemm" => linalg::gemm(ctx),
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceL1" | "ReduceL2"
        | "ReduceSumSquare" | "ReduceLogSumExp" => reduce::reduce(ctx),
        "Softmax" | "LogSoftmax" => reduce::softmax(ctx),
        "ArgMax" | "ArgMin" => reduce::arg(ctx),
        "Shape" => shape::shape(ctx),
        "Size" => shape::size(ctx),
        "Reshape" => shape::reshape(ctx),
        "Flatten" => shape::flatten(ctx),
        "Squeeze" => shape::squeeze(ctx),
        "Unsqueeze" => shape::unsqueeze(ctx),
        "Transpose" => shape::transpose(ctx),
        "Expand" => shape::expand(ctx),
        "Tile" => shape::tile(ctx),
        "Constant" => shape::constant(ctx),
        "ConstantOfShape" => shape::constant_of_shape(ctx),
        "Range" => shape::range(ctx),
        "Concat" => slice::concat(ctx),
        "Split" => slice::split(ctx),
        "Slice" => slice::slice(ctx),
        "Gather" => slice::gather(ctx),
        "Pad" => slice::pad(ctx),
        "Resize" | "Upsample" => resize::resize(ctx),
        other => Err(format!("operator {other} is not implemented")),
    }
}

/// What [`compile`] sees of a node: its attributes, which inputs are present, the values
/// of the constant ones, and the device the op will run on.
pub(crate) struct NodeCtx<'a> {
    /// The operator.
    pub op_type: &'a str,
    /// The model's default-domain opset version.
    pub opset: i64,
    /// Where the op runs: the model's device, or the CPU for shape arithmetic and for
    /// nodes folded at load.
    pub device: &'a Device,
    attrs: &'a [AttributeProto],
    used_attrs: RefCell<Vec<bool>>,
    /// Per input slot: `None` if omitted, `Some(None)` if computed at run time,
    /// `Some(Some(t))` if constant.
    inputs: Vec<Option<Option<&'a Tensor>>>,
    taken: RefCell<Vec<bool>>,
    outputs: Vec<bool>,
}

impl<'a> NodeCtx<'a> {
    /// A context for a node with these attributes, input slots and present outputs.
    pub fn new(
        op_type: &'a str,
        opset: i64,
        device: &'a Device,
        attrs: &'a [AttributeProto],
        inputs: Vec<Option<Option<&'a Tensor>>>,
        outputs: Vec<bool>,
    ) -> Self {
        let n = inputs.len();
        Self {
            op_type,
            opset,
            device,
            attrs,
            used_attrs: RefCell::new(vec![false; attrs.len()]),
            inputs,
            taken: RefCell::new(vec![false; n]),
            outputs,
        }
    }

    /// Names of the attributes the op never read: attributes it does not implement.
    pub fn unread_attributes(&self) -> Vec<String> {
        let used = self.used_attrs.borrow();
        self.attrs
            .iter()
            .zip(used.iter())
            .filter(|(_, u)| !**u)
            .map(|(a, _)| a.name.clone())
            .collect()
    }

    /// Whether the op took input `i` as a constant at compile time.
    pub fn taken(&self, i: usize) -> bool {
        self.taken.borrow().get(i).copied().unwrap_or(false)
    }

    /// Whether input `i` is given.
    pub fn has_input(&self, i: usize) -> bool {
        matches!(self.inputs.get(i), Some(Some(_)))
    }

    /// Number of output slots.
    pub fn n_outputs(&self) -> usize {
        self.outputs.len()
    }

    /// Whether output `i` is used (named).
    pub fn has_output(&self, i: usize) -> bool {
        self.outputs.get(i).copied().unwrap_or(false)
    }

    /// The value of input `i` when it is a constant, without taking it.
    pub fn peek_const(&self, i: usize) -> Option<&'a Tensor> {
        match self.inputs.get(i) {
            Some(Some(Some(t))) => Some(t),
            _ => None,
        }
    }

    /// The value of input `i` when it is a constant; the op keeps it from now on, so it
    /// is not passed at run time.
    pub fn take_const(&self, i: usize) -> Option<&'a Tensor> {
        let t = self.peek_const(i)?;
        if let Some(flag) = self.taken.borrow_mut().get_mut(i) {
            *flag = true;
        }
        Some(t)
    }

    /// Constant input `i` as integers (taken), `None` if absent or computed at run time.
    pub fn const_ints(&self, i: usize) -> Result<Option<Vec<i64>>, String> {
        match self.take_const(i) {
            None => Ok(None),
            Some(t) => util::ints(t).map(Some).map_err(|e| e.to_string()),
        }
    }

    /// Constant input `i` as floats (taken), `None` if absent or computed at run time.
    pub fn const_floats(&self, i: usize) -> Result<Option<Vec<f64>>, String> {
        match self.take_const(i) {
            None => Ok(None),
            Some(t) => util::floats(t).map(Some).map_err(|e| e.to_string()),
        }
    }

    fn attr(&self, name: &str, want: i32) -> Result<Option<&'a AttributeProto>, String> {
        let Some(pos) = self.attrs.iter().position(|a| a.name == name) else {
            return Ok(None);
        };
        self.used_attrs.borrow_mut()[pos] = true;
        let a = &self.attrs[pos];
        if !a.ref_attr_name.is_empty() {
            return Err(format!(
                "attribute {name} refers to a function attribute, which is not implemented"
            ));
        }
        // Writers before IR version 3 leave `type` unset; trust the field then.
        if a.r#type != 0 && a.r#type != want {
            return Err(format!(
                "attribute {name} has type {}, expected {want}",
                a.r#type
            ));
        }
        Ok(Some(a))
    }

    /// Integer attribute `name`.
    pub fn attr_int(&self, name: &str) -> Result<Option<i64>, String> {
        Ok(self.attr(name, at::INT)?.map(|a| a.i))
    }

    /// Integer attribute `name`, or `default`.
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, String> {
        Ok(self.attr_int(name)?.unwrap_or(default))
    }

    /// Float attribute `name`, or `default`.
    pub fn float_or(&self, name: &str, default: f32) -> Result<f32, String> {
        Ok(self.attr(name, at::FLOAT)?.map(|a| a.f).unwrap_or(default))
    }

    /// Float attribute `name`.
    pub fn attr_float(&self, name: &str) -> Result<Option<f32>, String> {
        Ok(self.attr(name, at::FLOAT)?.map(|a| a.f))
    }

    /// String attribute `name`, or `default`.
    pub fn string_or(&self, name: &str, default: &str) -> Result<String, String> {
        Ok(self
            .attr(name, at::STRING)?
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
            .unwrap_or_else(|| default.to_string()))
    }

    /// Integer-list attribute `name`.
    pub fn attr_ints(&self, name: &str) -> Result<Option<Vec<i64>>, String> {
        Ok(self.attr(name, at::INTS)?.map(|a| a.ints.clone()))
    }

    /// Float-list attribute `name`.
    pub fn attr_floats(&self, name: &str) -> Result<Option<Vec<f32>>, String> {
        Ok(self.attr(name, at::FLOATS)?.map(|a| a.floats.clone()))
    }

    /// Tensor attribute `name`, read onto the CPU.
    pub fn attr_tensor(&self, name: &str) -> Result<Option<Tensor>, String> {
        match self.attr(name, at::TENSOR)? {
            None => Ok(None),
            Some(a) => match &a.t {
                None => Err(format!("attribute {name} has no tensor")),
                Some(t) => read_tensor(t)
                    .map(Some)
                    .map_err(|e| format!("attribute {name}: {e}")),
            },
        }
    }

    /// Fails unless at least `n` inputs are present in the first `n` slots.
    pub fn need_inputs(&self, n: usize) -> Result<(), String> {
        for i in 0..n {
            if !self.has_input(i) {
                return Err(format!(
                    "{} needs input {i}, which is missing",
                    self.op_type
                ));
            }
        }
        Ok(())
    }
}
