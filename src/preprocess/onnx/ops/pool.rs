//! MaxPool, AveragePool (1-D and 2-D, pads, ceil_mode), GlobalAveragePool,
//! GlobalMaxPool.

use candle_core::{DType, Tensor};

use super::conv::{AutoPad, usizes};
use super::util::{input, msg, pad_value, scalar};
use super::{Compiled, NodeCtx, Op};

struct Pool {
    max: bool,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    pads: Vec<usize>,
    auto_pad: AutoPad,
    ceil_mode: bool,
    count_include_pad: bool,
    /// -inf on the op's device, the padding of MaxPool.
    neg_inf: Tensor,
}

/// MaxPool and AveragePool.
pub(crate) fn pool(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let max = ctx.op_type == "MaxPool";
    let kernel = usizes(ctx, "kernel_shape", 0, 1)?;
    if kernel.is_empty() || kernel.len() > 2 {
        return Err(format!(
            "{} with kernel_shape {kernel:?} is not implemented (1-D or 2-D)",
            ctx.op_type
        ));
    }
    let n = kernel.len();
    let strides = usizes(ctx, "strides", n, 1)?;
    let pads = usizes(ctx, "pads", 2 * n, 0)?;
    let dilations = usizes(ctx, "dilations", n, 1)?;
    if dilations.iter().any(|&d| d != 1) {
        return Err(format!(
            "{} with dilations {dilations:?} is not implemented",
            ctx.op_type
        ));
    }
    let auto_pad = AutoPad::parse(ctx)?;
    let ceil_mode = ctx.int_or("ceil_mode", 0)? != 0;
    let count_include_pad = ctx.int_or("count_include_pad", 0)? != 0;
    // Only affects the Indices output, which is refused below.
    ctx.attr_int("storage_order")?;
    if ctx.has_output(1) {
        return Err("MaxPool's Indices output is not implemented".into());
    }
    if strides.len() != n || pads.len() != 2 * n {
        return Err(format!(
            "{}: strides {strides:?} or pads {pads:?} do not match kernel_shape {kernel:?}",
            ctx.op_type
        ));
    }
    let neg_inf = scalar(f64::NEG_INFINITY, DType::F32, ctx.device).map_err(|e| e.to_string())?;
    Ok(Box::new(Pool {
        max,
        kernel,
        strides,
        pads,
        auto_pad,
        ceil_mode,
        count_include_pad,
        neg_inf,
    }))
}

impl Op for Pool {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let n = self.kernel.len();
        if x.rank() != n + 2 {
            return Err(msg(format!(
                "pooling with a {n}-D kernel got input {:?}",
                x.dims()
            )));
        }
        // 1-D pools run as 2-D pools over a height of one.
        let (x, kernel, strides, pads, one_d) = if n == 1 {
            (
                x.unsqueeze(2)?,
                vec![1, self.kernel[0]],
                vec![1, self.strides[0]],
                vec![0, self.pads[0], 0, self.pads[1]],
                true,
            )
        } else {
            (
                x.clone(),
                self.kernel.clone(),
                self.strides.clone(),
                self.pads.clone(),
                false,
            )
        };
        let size = [x.dim(2)?, x.dim(3)?];
        let pads = self.auto_pad.pads(&pads, &size, &kernel, &strides, &[1, 1]);
        // Output size per axis, and the padding past `pads` that ceil_mode adds.
        let mut extra = [0usize; 2];
        for i in 0..2 {
            let padded = size[i] + pads[i].0 + pads[i].1;
            if padded < kernel[i] {
                return Err(msg(format!(
                    "pooling window {} is larger than the padded input {padded}",
                    kernel[i]
                )));
            }
            let span = padded - kernel[i];
            let mut out = span / strides[i] + 1;
            if self.ceil_mode {
                out = span.div_ceil(strides[i]) + 1;
                // A window must start inside the input or its left padding.
                if (out - 1) * strides[i] >= size[i] + pads[i].0 {
                    out -= 1;
                }
            }
            extra[i] = ((out - 1) * strides[i] + kernel[i]).saturating_sub(padded);
        }
        let k = (kernel[0], kernel[1]);
        let s = (strides[0], strides[1]);
        let y = if self.max {
            let mut xp = x.clone();
            for i in 0..2 {
                xp = pad_value(&xp, 2 + i, pads[i].0, pads[i].1 + extra[i], &self.neg_inf)?;
            }
            xp.max_pool2d_with_stride(k, s)?
        } else {
            let no_pad = pads.iter().all(|&(a, b)| a == 0 && b == 0) && extra == [0, 0];
            if no_pad {
                x.avg_pool2d_with_stride(k, s)?
            } else {
                // Window sums over the zero-padded input, divided by how many of each
                // window's cells count: the input alone, or the input and `pads`.
                let mut xp = x.clone();
                for i in 0..2 {
                    xp = xp.pad_with_zeros(2 + i, pads[i].0, pads[i].1 + extra[i])?;
                }
                let (dt, dev) = (x.dtype(), x.device());
                let mask = if self.count_include_pad {
                    let h = size[0] + pads[0].0 + pads[0].1;
                    let w = size[1] + pads[1].0 + pads[1].1;
                    Tensor::ones((1, 1, h, w), dt, dev)?
                        .pad_with_zeros(2, 0, extra[0])?
                        .pad_with_zeros(3, 0, extra[1])?
                } else {
                    Tensor::ones((1, 1, size[0], size[1]), dt, dev)?
                        .pad_with_zeros(2, pads[0].0, pads[0].1 + extra[0])?
                        .pad_with_zeros(3, pads[1].0, pads[1].1 + extra[1])?
                };
                let sums = xp.avg_pool2d_with_stride(k, s)?;
                let counts = mask.avg_pool2d_with_stride(k, s)?;
                sums.broadcast_div(&counts)?
            }
        };
        Ok(vec![if one_d { y.squeeze(2)? } else { y }])
    }
}

struct GlobalPool {
    max: bool,
}

/// GlobalAveragePool and GlobalMaxPool: over every dimension after the channels.
pub(crate) fn global_pool(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    Ok(Box::new(GlobalPool {
        max: ctx.op_type == "GlobalMaxPool",
    }))
}

impl Op for GlobalPool {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        if x.rank() < 3 {
            return Err(msg(format!("global pooling of {:?}", x.dims())));
        }
        let (n, c) = (x.dim(0)?, x.dim(1)?);
        let mut keep = vec![n, c];
        keep.extend(std::iter::repeat_n(1, x.rank() - 2));
        let flat = x.reshape((n, c, ()))?;
        let y = if self.max {
            flat.max_keepdim(2)?
        } else {
            flat.mean_keepdim(2)?
        };
        Ok(vec![y.reshape(keep)?])
    }
}
