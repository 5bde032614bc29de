//! Normalisations: BatchNormalization (inference), LayerNormalization,
//! InstanceNormalization.

use candle_core::{DType, Tensor};

use super::util::{axis, input, like, msg};
use super::{Compiled, NodeCtx, Op};

/// BatchNormalization with its statistics folded into `x * a + b`.
struct BatchNorm {
    eps: f64,
    /// `(a, b)` per channel, on the op's device, when all four parameters are constant.
    affine: Option<(Tensor, Tensor)>,
}

pub(crate) fn batch_norm(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(5)?;
    let eps = f64::from(ctx.float_or("epsilon", 1e-5)?);
    ctx.attr_float("momentum")?;
    if ctx.opset < 9 && ctx.int_or("spatial", 1)? != 1 {
        return Err("BatchNormalization spatial=0 is not implemented".into());
    }
    if ctx.opset < 7 {
        ctx.attr_int("is_test")?;
    }
    if ctx.int_or("training_mode", 0)? != 0 {
        return Err("BatchNormalization in training mode is not implemented".into());
    }
    if (1..ctx.n_outputs()).any(|i| ctx.has_output(i)) {
        return Err("BatchNormalization's running statistics outputs are not implemented".into());
    }
    let consts: Vec<_> = (1..5).map(|i| ctx.peek_const(i)).collect();
    let affine = match consts.as_slice() {
        [Some(s), Some(b), Some(m), Some(v)] => {
            for i in 1..5 {
                ctx.take_const(i);
            }
            let (a, b) = fold(s, b, m, v, eps).map_err(|e| e.to_string())?;
            let dev = ctx.device;
            Some((
                a.to_device(dev).map_err(|e| e.to_string())?,
                b.to_device(dev).map_err(|e| e.to_string())?,
            ))
        }
        _ => None,
    };
    Ok(Box::new(BatchNorm { eps, affine }))
}

/// `a = scale / sqrt(var + eps)`, `b = bias - mean * a`, computed in f64 and returned as
/// the scale's dtype.
fn fold(
    scale: &Tensor,
    bias: &Tensor,
    mean: &Tensor,
    var: &Tensor,
    eps: f64,
) -> candle_core::Result<(Tensor, Tensor)> {
    let f = |t: &Tensor| t.flatten_all()?.to_dtype(DType::F64);
    let a = (f(scale)? / f(var)?.affine(1.0, eps)?.sqrt()?)?;
    let b = (f(bias)? - (f(mean)? * &a)?)?;
    Ok((a.to_dtype(scale.dtype())?, b.to_dtype(scale.dtype())?))
}

impl Op for BatchNorm {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let (a, b) = match &self.affine {
            Some(ab) => ab.clone(),
            None => fold(
                input(inputs, 1)?,
                input(inputs, 2)?,
                input(inputs, 3)?,
                input(inputs, 4)?,
                self.eps,
            )?,
        };
        let c = a.elem_count();
        let mut shape = vec![c];
        shape.extend(std::iter::repeat_n(1, x.rank().saturating_sub(2)));
        let a = like(&a.reshape(shape.as_slice())?, x)?;
        let b = like(&b.reshape(shape.as_slice())?, x)?;
        Ok(vec![x.broadcast_mul(&a)?.broadcast_add(&b)?])
    }
}

/// `x` normalised to zero mean and unit variance over all dimensions from `from` on.
fn normalize(x: &Tensor, from: usize, eps: f64) -> candle_core::Result<Tensor> {
    let outer: usize = x.dims()[..from].iter().product();
    let inner: usize = x.dims()[from..].iter().product();
    let x2 = x.reshape((outer, inner))?;
    let mean = x2.mean_keepdim(1)?;
    let centred = x2.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(1)?;
    let y = centred.broadcast_div(&var.affine(1.0, eps)?.sqrt()?)?;
    y.reshape(x.dims())
}

struct LayerNorm {
    axis: i64,
    eps: f64,
}

/// LayerNormalization (opset 17): normalises over the dimensions from `axis` on.
pub(crate) fn layer_norm(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(2)?;
    let axis = ctx.int_or("axis", -1)?;
    let eps = f64::from(ctx.float_or("epsilon", 1e-5)?);
    // The statistics are computed in the input's float type; f32 throughout here.
    ctx.attr_int("stash_type")?;
    if ctx.has_output(1) || ctx.has_output(2) {
        return Err("LayerNormalization's Mean and InvStdDev outputs are not implemented".into());
    }
    Ok(Box::new(LayerNorm { axis, eps }))
}

impl Op for LayerNorm {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let from = axis(self.axis, x.rank())?;
        let mut y = normalize(x, from, self.eps)?;
        y = y.broadcast_mul(&like(input(inputs, 1)?, x)?)?;
        if let Some(b) = inputs.get(2).and_then(|b| b.as_ref()) {
            y = y.broadcast_add(&like(b, x)?)?;
        }
        Ok(vec![y])
    }
}

struct InstanceNorm {
    eps: f64,
}

/// InstanceNormalization: per sample and channel over the spatial dimensions.
pub(crate) fn instance_norm(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(3)?;
    Ok(Box::new(InstanceNorm {
        eps: f64::from(ctx.float_or("epsilon", 1e-5)?),
    }))
}

impl Op for InstanceNorm {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        if x.rank() < 3 {
            return Err(msg(format!(
                "InstanceNormalization needs rank 3 or more, got {:?}",
                x.dims()
            )));
        }
        let y = normalize(x, 2, self.eps)?;
        let mut shape = vec![x.dim(1)?];
        shape.extend(std::iter::repeat_n(1, x.rank() - 2));
        let s = like(&input(inputs, 1)?.reshape(shape.as_slice())?, x)?;
        let b = like(&input(inputs, 2)?.reshape(shape.as_slice())?, x)?;
        Ok(vec![y.broadcast_mul(&s)?.broadcast_add(&b)?])
    }
}
