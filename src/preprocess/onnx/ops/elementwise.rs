//! Element-wise operators: activations, arithmetic with numpy broadcasting, comparisons,
//! Clip, Cast, Where.

use candle_core::{DType, Tensor};

use super::util::{input, like, msg, same_device, scalar, scalar_f64};
use super::{Compiled, NodeCtx, Op, SILU};
use crate::preprocess::onnx::tensor::dtype_of;

#[derive(Clone, Copy)]
enum UnaryKind {
    Relu,
    Sigmoid,
    Silu,
    Tanh,
    Exp,
    Log,
    Sqrt,
    Neg,
    Abs,
    Erf,
    Recip,
    Floor,
    Ceil,
    Sin,
    Cos,
    Sign,
    Softplus,
    Softsign,
    HardSigmoid { alpha: f64, beta: f64 },
    HardSwish,
    LeakyRelu(f64),
    Elu(f64),
    Selu { alpha: f64, gamma: f64 },
    Gelu { tanh: bool },
    Not,
    Identity,
}

struct Unary {
    kind: UnaryKind,
    /// 0 and 1 of the kind's dtype on the op's device, for clamping without uploads.
    zero: Tensor,
    one: Tensor,
}

/// One-input element-wise operators (and Identity, Dropout at inference).
pub(crate) fn unary(ctx: &NodeCtx) -> Compiled {
    use UnaryKind as K;
    ctx.need_inputs(1)?;
    let kind = match ctx.op_type {
        "Relu" => K::Relu,
        "Sigmoid" => K::Sigmoid,
        SILU => K::Silu,
        "Tanh" => K::Tanh,
        "Exp" => K::Exp,
        "Log" => K::Log,
        "Sqrt" => K::Sqrt,
        "Neg" => K::Neg,
        "Abs" => K::Abs,
        "Erf" => K::Erf,
        "Reciprocal" => K::Recip,
        "Floor" => K::Floor,
        "Ceil" => K::Ceil,
        "Sin" => K::Sin,
        "Cos" => K::Cos,
        "Sign" => K::Sign,
        "Softplus" => K::Softplus,
        "Softsign" => K::Softsign,
        "HardSigmoid" => K::HardSigmoid {
            alpha: f64::from(ctx.float_or("alpha", 0.2)?),
            beta: f64::from(ctx.float_or("beta", 0.5)?),
        },
        "HardSwish" => K::HardSwish,
        "LeakyRelu" => K::LeakyRelu(f64::from(ctx.float_or("alpha", 0.01)?)),
        "Elu" => K::Elu(f64::from(ctx.float_or("alpha", 1.0)?)),
        "Selu" => K::Selu {
            alpha: f64::from(ctx.float_or("alpha", 1.673_263_2)?),
            gamma: f64::from(ctx.float_or("gamma", 1.050_701)?),
        },
        "Gelu" => match ctx.string_or("approximate", "none")?.as_str() {
            "none" => K::Gelu { tanh: false },
            "tanh" => K::Gelu { tanh: true },
            other => return Err(format!("Gelu approximate={other} is not implemented")),
        },
        "Not" => K::Not,
        "Identity" => K::Identity,
        "Dropout" => {
            // Inference: the data passes through; only the mask output would differ.
            ctx.attr_float("ratio")?;
            ctx.attr_int("seed")?;
            if ctx.has_output(1) {
                return Err("Dropout's mask output is not implemented".into());
            }
            ctx.take_const(1);
            if ctx.has_input(2) {
                match ctx.const_ints(2)? {
                    Some(v) if v.iter().all(|&x| x == 0) => {}
                    _ => return Err("Dropout in training mode is not implemented".into()),
                }
            }
            K::Identity
        }
        other => return Err(format!("operator {other} is not implemented")),
    };
    let dtype = if matches!(kind, K::Not) {
        DType::U8
    } else {
        DType::F32
    };
    let zero = scalar(0.0, dtype, ctx.device).map_err(|e| e.to_string())?;
    let one = scalar(1.0, dtype, ctx.device).map_err(|e| e.to_string())?;
    Ok(Box::new(Unary { kind, zero, one }))
}

impl Op for Unary {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        use UnaryKind as K;
        let x = input(inputs, 0)?;
        let zero = || like(&self.zero, x);
        let one = || like(&self.one, x);
        let y = match self.kind {
            K::Relu => x.relu()?,
            K::Sigmoid => candle_nn::ops::sigmoid(x)?,
            K::Silu => x.silu()?,
            K::Tanh => x.tanh()?,
            K::Exp => x.exp()?,
            K::Log => x.log()?,
            K::Sqrt => x.sqrt()?,
            K::Neg => x.neg()?,
            K::Abs => x.abs()?,
            K::Erf => x.erf()?,
            K::Recip => x.recip()?,
            K::Floor => x.floor()?,
            K::Ceil => x.ceil()?,
            K::Sin => x.sin()?,
            K::Cos => x.cos()?,
            K::Sign => x.sign()?,
            K::Softplus => {
                // log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), which never overflows.
                let tail = x.abs()?.neg()?.exp()?.affine(1.0, 1.0)?.log()?;
                (x.relu()? + tail)?
            }
            K::Softsign => (x / x.abs()?.affine(1.0, 1.0)?)?,
            K::HardSigmoid { alpha, beta } => x
                .affine(alpha, beta)?
                .broadcast_maximum(&zero()?)?
                .broadcast_minimum(&one()?)?,
            K::HardSwish => {
                (x * x
                    .affine(1.0 / 6.0, 0.5)?
                    .broadcast_maximum(&zero()?)?
                    .broadcast_minimum(&one()?)?)?
            }
            K::LeakyRelu(alpha) => {
                let z = zero()?;
                (x.broadcast_maximum(&z)? + x.broadcast_minimum(&z)?.affine(alpha, 0.0)?)?
            }
            K::Elu(alpha) => x.elu(alpha)?,
            K::Selu { alpha, gamma } => x.elu(alpha)?.affine(gamma, 0.0)?,
            K::Gelu { tanh: false } => x.gelu_erf()?,
            K::Gelu { tanh: true } => x.gelu()?,
            K::Not => x.broadcast_eq(&zero()?)?,
            K::Identity => x.clone(),
        };
        Ok(vec![y])
    }
}

/// Clip: bounds from attributes (opset < 11) or optional inputs (opset >= 11).
struct Clip {
    /// Constant bounds, on the op's device; `None` where absent or given at run time.
    min: Option<Tensor>,
    max: Option<Tensor>,
}

pub(crate) fn clip(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let dev = ctx.device;
    let up = |v: f64| scalar(v, DType::F32, dev).map_err(|e| e.to_string());
    if ctx.opset < 11 {
        let min = ctx
            .attr_float("min")?
            .map(|v| up(f64::from(v)))
            .transpose()?;
        let max = ctx
            .attr_float("max")?
            .map(|v| up(f64::from(v)))
            .transpose()?;
        return Ok(Box::new(Clip { min, max }));
    }
    let bound = |i: usize| -> Result<Option<Tensor>, String> {
        match ctx.take_const(i) {
            None => Ok(None),
            Some(t) => t
                .reshape(())
                .and_then(|t| t.to_device(dev))
                .map(Some)
                .map_err(|e| format!("Clip bound {i}: {e}")),
        }
    };
    Ok(Box::new(Clip {
        min: bound(1)?,
        max: bound(2)?,
    }))
}

impl Op for Clip {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let mut y = input(inputs, 0)?.clone();
        let bound = |fixed: &Option<Tensor>, i: usize| -> candle_core::Result<Option<Tensor>> {
            match (fixed, inputs.get(i).and_then(|t| t.as_ref())) {
                (Some(t), _) => Ok(Some(t.clone())),
                (None, Some(t)) => Ok(Some(t.reshape(())?)),
                (None, None) => Ok(None),
            }
        };
        if let Some(lo) = bound(&self.min, 1)? {
            let v = same_device(&[&y, &like(&lo, &y)?])?;
            y = v[0].broadcast_maximum(&v[1])?;
        }
        if let Some(hi) = bound(&self.max, 2)? {
            let v = same_device(&[&y, &like(&hi, &y)?])?;
            y = v[0].broadcast_minimum(&v[1])?;
        }
        Ok(vec![y])
    }
}

/// Cast and CastLike.
struct Cast {
    /// The target dtype, `None` for CastLike with a run-time target.
    to: Option<DType>,
    to_bool: bool,
}

pub(crate) fn cast(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    // `saturate` only concerns float8 targets, which are refused below anyway.
    ctx.attr_int("saturate")?;
    if ctx.op_type == "CastLike" {
        ctx.need_inputs(2)?;
        let to = ctx.take_const(1).map(|t| t.dtype());
        return Ok(Box::new(Cast { to, to_bool: false }));
    }
    let to = ctx
        .attr_int("to")?
        .ok_or_else(|| "Cast has no 'to' attribute".to_string())?;
    let to32 = i32::try_from(to).map_err(|_| format!("Cast to={to} is invalid"))?;
    let dtype = dtype_of(to32).ok_or_else(|| {
        format!(
            "Cast to {} is not implemented",
            crate::preprocess::onnx::tensor::type_name(to32)
        )
    })?;
    Ok(Box::new(Cast {
        to: Some(dtype),
        to_bool: to32 == crate::preprocess::onnx::proto::data_type::BOOL,
    }))
}

impl Op for Cast {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let to = match self.to {
            Some(d) => d,
            None => input(inputs, 1)?.dtype(),
        };
        if self.to_bool {
            // Any non-zero value is true, so 0.5 must not truncate to false.
            let zero = Tensor::zeros((), x.dtype(), x.device())?;
            return Ok(vec![x.broadcast_ne(&zero)?]);
        }
        Ok(vec![if x.dtype() == to {
            x.clone()
        } else {
            x.to_dtype(to)?
        }])
    }
}

#[derive(Clone, Copy)]
enum BinaryKind {
    Add,
    Sub,
    Mul,
    Div,
    Equal,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    And,
    Or,
    Xor,
    PRelu,
}

struct Binary {
    kind: BinaryKind,
}

/// Two-input operators with numpy broadcasting.
pub(crate) fn binary(ctx: &NodeCtx) -> Compiled {
    use BinaryKind as K;
    ctx.need_inputs(2)?;
    let kind = match ctx.op_type {
        "Add" => K::Add,
        "Sub" => K::Sub,
        "Mul" => K::Mul,
        "Div" => K::Div,
        "Equal" => K::Equal,
        "Greater" => K::Greater,
        "Less" => K::Less,
        "GreaterOrEqual" => K::GreaterOrEqual,
        "LessOrEqual" => K::LessOrEqual,
        "And" => K::And,
        "Or" => K::Or,
        "Xor" => K::Xor,
        "PRelu" => K::PRelu,
        other => return Err(format!("operator {other} is not implemented")),
    };
    Ok(Box::new(Binary { kind }))
}

impl Op for Binary {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        use BinaryKind as K;
        let v = same_device(&[input(inputs, 0)?, input(inputs, 1)?])?;
        let (a, b) = (&v[0], &v[1]);
        let y = match self.kind {
            K::Add => a.broadcast_add(b)?,
            K::Sub => a.broadcast_sub(b)?,
            K::Mul => a.broadcast_mul(b)?,
            K::Div => {
                // Integer division by zero would abort the process; integer divisors are
                // shape arithmetic, small and on the CPU.
                if b.dtype() == DType::I64 && super::util::ints(b)?.contains(&0) {
                    return Err(msg("integer division by zero"));
                }
                a.broadcast_div(b)?
            }
            K::Equal => a.broadcast_eq(b)?,
            K::Greater => a.broadcast_gt(b)?,
            K::Less => a.broadcast_lt(b)?,
            K::GreaterOrEqual => a.broadcast_ge(b)?,
            K::LessOrEqual => a.broadcast_le(b)?,
            K::And => a.broadcast_minimum(b)?,
            K::Or => a.broadcast_maximum(b)?,
            K::Xor => a.broadcast_ne(b)?,
            K::PRelu => {
                let zero = Tensor::zeros((), a.dtype(), a.device())?;
                let neg = a.broadcast_minimum(&zero)?.broadcast_mul(&like(b, a)?)?;
                a.broadcast_maximum(&zero)?.broadcast_add(&neg)?
            }
        };
        Ok(vec![y])
    }
}

/// Pow: a constant scalar exponent becomes one kernel (exact for negative bases with
/// integral exponents); a tensor exponent uses exp(y·ln x), defined for positive bases.
struct Pow {
    exponent: Option<f64>,
}

pub(crate) fn pow(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(2)?;
    let exponent = match ctx.peek_const(1) {
        Some(t) if t.elem_count() == 1 && t.rank() <= 1 => {
            ctx.take_const(1);
            Some(scalar_f64(t).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    Ok(Box::new(Pow { exponent }))
}

impl Op for Pow {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let y = match self.exponent {
            Some(1.0) => x.clone(),
            Some(2.0) => x.sqr()?,
            Some(0.5) => x.sqrt()?,
            Some(e) => x.powf(e)?,
            None => {
                let v = same_device(&[x, input(inputs, 1)?])?;
                v[0].broadcast_pow(&like(&v[1], x)?)?
            }
        };
        Ok(vec![y])
    }
}

#[derive(Clone, Copy)]
enum VariadicKind {
    Max,
    Min,
    Sum,
    Mean,
}

struct Variadic {
    kind: VariadicKind,
}

/// Max, Min, Sum, Mean over any number of broadcast inputs.
pub(crate) fn variadic(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let kind = match ctx.op_type {
        "Max" => VariadicKind::Max,
        "Min" => VariadicKind::Min,
        "Sum" => VariadicKind::Sum,
        _ => VariadicKind::Mean,
    };
    Ok(Box::new(Variadic { kind }))
}

impl Op for Variadic {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let present: Vec<&Tensor> = inputs.iter().flatten().collect();
        let v = same_device(&present)?;
        let mut it = v.iter();
        let mut acc = it.next().ok_or_else(|| msg("no inputs"))?.clone();
        for t in it {
            acc = match self.kind {
                VariadicKind::Max => acc.broadcast_maximum(t)?,
                VariadicKind::Min => acc.broadcast_minimum(t)?,
                VariadicKind::Sum | VariadicKind::Mean => acc.broadcast_add(t)?,
            };
        }
        if let VariadicKind::Mean = self.kind {
            acc = acc.affine(1.0 / v.len() as f64, 0.0)?;
        }
        Ok(vec![acc])
    }
}

struct Where;

/// Where(condition, x, y) with broadcasting.
pub(crate) fn where_(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(3)?;
    Ok(Box::new(Where))
}

impl Op for Where {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let v = same_device(&[input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?])?;
        let shape = super::util::broadcast_shape(v[0].dims(), v[1].dims())?;
        let shape = super::util::broadcast_shape(&shape, v[2].dims())?;
        let c = v[0].broadcast_as(shape.as_slice())?;
        let x = v[1].broadcast_as(shape.as_slice())?;
        let y = v[2].broadcast_as(shape.as_slice())?;
        Ok(vec![c.where_cond(&x, &y)?])
    }
}
