//! Reductions (ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceL1, ReduceL2,
//! ReduceSumSquare, ReduceLogSumExp), Softmax, LogSoftmax, ArgMax, ArgMin.

use candle_core::{DType, Tensor};

use super::util::{axis, input, ints};
use super::{Compiled, NodeCtx, Op};

#[derive(Clone, Copy)]
enum ReduceKind {
    Mean,
    Sum,
    Max,
    Min,
    L1,
    L2,
    SumSquare,
    LogSumExp,
}

struct Reduce {
    kind: ReduceKind,
    /// Axes fixed at load (attribute or constant input); `None`: from input 1 at run time,
    /// or all axes when that is absent too.
    axes: Option<Vec<i64>>,
    axes_input: bool,
    keepdims: bool,
    noop_with_empty_axes: bool,
}

/// The Reduce* family, with axes as an attribute (before opset 13 for ReduceSum, 18 for
/// the others) or as an input.
pub(crate) fn reduce(ctx: &NodeCtx) -> Compiled {
    use ReduceKind as K;
    ctx.need_inputs(1)?;
    let kind = match ctx.op_type {
        "ReduceMean" => K::Mean,
        "ReduceSum" => K::Sum,
        "ReduceMax" => K::Max,
        "ReduceMin" => K::Min,
        "ReduceL1" => K::L1,
        "ReduceL2" => K::L2,
        "ReduceSumSquare" => K::SumSquare,
        _ => K::LogSumExp,
    };
    let axes_as_input = ctx.opset >= if matches!(kind, K::Sum) { 13 } else { 18 };
    let keepdims = ctx.int_or("keepdims", 1)? != 0;
    let (axes, axes_input, noop) = if axes_as_input {
        let noop = ctx.int_or("noop_with_empty_axes", 0)? != 0;
        match ctx.const_ints(1)? {
            Some(a) => (Some(a), false, noop),
            None => (None, ctx.has_input(1), noop),
        }
    } else {
        (ctx.attr_ints("axes")?, false, false)
    };
    Ok(Box::new(Reduce {
        kind,
        axes,
        axes_input,
        keepdims,
        noop_with_empty_axes: noop,
    }))
}

impl Op for Reduce {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        use ReduceKind as K;
        let x = input(inputs, 0)?;
        let given = match (&self.axes, self.axes_input) {
            (Some(a), _) => a.clone(),
            (None, true) => ints(input(inputs, 1)?)?,
            (None, false) => Vec::new(),
        };
        if given.is_empty() && self.noop_with_empty_axes {
            return Ok(vec![x.clone()]);
        }
        let mut axes: Vec<usize> = if given.is_empty() {
            (0..x.rank()).collect()
        } else {
            given
                .iter()
                .map(|&a| axis(a, x.rank()))
                .collect::<candle_core::Result<_>>()?
        };
        axes.sort_unstable();
        axes.dedup();
        let sum = |t: &Tensor| t.sum_keepdim(axes.clone());
        let mut y = match self.kind {
            K::Mean => x.mean_keepdim(axes.clone())?,
            K::Sum => sum(x)?,
            K::L1 => sum(&x.abs()?)?,
            K::L2 => sum(&x.sqr()?)?.sqrt()?,
            K::SumSquare => sum(&x.sqr()?)?,
            K::Max | K::Min | K::LogSumExp => {
                let mut m = x.clone();
                for &a in &axes {
                    m = if matches!(self.kind, K::Min) {
                        m.min_keepdim(a)?
                    } else {
                        m.max_keepdim(a)?
                    };
                }
                if matches!(self.kind, K::LogSumExp) {
                    // max + log Σ exp(x - max): no overflow.
                    (sum(&x.broadcast_sub(&m)?.exp()?)?.log()? + &m)?
                } else {
                    m
                }
            }
        };
        if !self.keepdims {
            for &a in axes.iter().rev() {
                y = y.squeeze(a)?;
            }
        }
        Ok(vec![y])
    }
}

struct Softmax {
    axis: i64,
    /// Before opset 13 the input is seen as 2-D, `[..axis]` by `[axis..]`.
    coerce_2d: bool,
    log: bool,
}

/// Softmax and LogSoftmax.
pub(crate) fn softmax(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let coerce_2d = ctx.opset < 13;
    let axis = ctx.int_or("axis", if coerce_2d { 1 } else { -1 })?;
    Ok(Box::new(Softmax {
        axis,
        coerce_2d,
        log: ctx.op_type == "LogSoftmax",
    }))
}

impl Op for Softmax {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let a = axis(self.axis, x.rank())?;
        let apply = |t: &Tensor, d: usize| -> candle_core::Result<Tensor> {
            if self.log {
                candle_nn::ops::log_softmax(t, d)
            } else if d + 1 == t.rank() {
                candle_nn::ops::softmax_last_dim(&t.contiguous()?)
            } else {
                candle_nn::ops::softmax(t, d)
            }
        };
        let y = if self.coerce_2d {
            let outer: usize = x.dims()[..a].iter().product();
            apply(&x.reshape((outer, ()))?, 1)?.reshape(x.dims())?
        } else {
            apply(x, a)?
        };
        Ok(vec![y])
    }
}

struct Arg {
    max: bool,
    axis: i64,
    keepdims: bool,
}

/// ArgMax and ArgMin (first index on ties).
pub(crate) fn arg(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    if ctx.int_or("select_last_index", 0)? != 0 {
        return Err(format!(
            "{} select_last_index=1 is not implemented",
            ctx.op_type
        ));
    }
    Ok(Box::new(Arg {
        max: ctx.op_type == "ArgMax",
        axis: ctx.int_or("axis", 0)?,
        keepdims: ctx.int_or("keepdims", 1)? != 0,
    }))
}

impl Op for Arg {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let a = axis(self.axis, x.rank())?;
        let y = if self.max {
            x.argmax_keepdim(a)?
        } else {
            x.argmin_keepdim(a)?
        };
        let y = y.to_dtype(DType::I64)?;
        Ok(vec![if self.keepdims { y } else { y.squeeze(a)? }])
    }
}
