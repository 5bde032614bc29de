//! Concat, Split, Slice (steps, negative indices, attribute and input forms), Gather, Pad.

use candle_core::{DType, Tensor};

use super::util::{axis, i64_tensor, input, ints, msg, pad_value, same_device, strided};
use super::{Compiled, NodeCtx, Op};

struct Concat {
    axis: i64,
}

/// Concat.
pub(crate) fn concat(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let axis = ctx
        .attr_int("axis")?
        .ok_or_else(|| "Concat has no axis".to_string())?;
    Ok(Box::new(Concat { axis }))
}

impl Op for Concat {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let present: Vec<&Tensor> = inputs.iter().flatten().collect();
        let first = present.first().ok_or_else(|| msg("Concat of nothing"))?;
        let a = axis(self.axis, first.rank())?;
        let v = same_device(&present)?;
        // Empty pieces (allowed by ONNX) add nothing.
        let parts: Vec<Tensor> = v
            .into_iter()
            .filter(|t| t.dim(a).unwrap_or(0) > 0)
            .collect();
        if parts.is_empty() {
            return Ok(vec![(*first).clone()]);
        }
        Ok(vec![Tensor::cat(&parts, a)?])
    }
}

struct Split {
    axis: i64,
    /// Sizes fixed at load; `None`: from input 1 at run time, or equal parts.
    sizes: Option<Vec<i64>>,
    sizes_input: bool,
    /// Opset 18's num_outputs: parts of ceil(size / n), the last one smaller.
    num_outputs: Option<usize>,
    outputs: usize,
}

/// Split (sizes as an attribute before opset 13, as an input from 13; num_outputs from 18).
pub(crate) fn split(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let axis = ctx.int_or("axis", 0)?;
    let (sizes, sizes_input) = if ctx.opset < 13 {
        (ctx.attr_ints("split")?, false)
    } else {
        match ctx.const_ints(1)? {
            Some(s) => (Some(s), false),
            None => (None, ctx.has_input(1)),
        }
    };
    let num_outputs = if ctx.opset >= 18 {
        ctx.attr_int("num_outputs")?
            .map(|n| usize::try_from(n).map_err(|_| format!("Split num_outputs={n}")))
            .transpose()?
    } else {
        None
    };
    if let Some(s) = &sizes
        && s.len() != ctx.n_outputs()
    {
        return Err(format!(
            "Split has {} sizes for {} outputs",
            s.len(),
            ctx.n_outputs()
        ));
    }
    Ok(Box::new(Split {
        axis,
        sizes,
        sizes_input,
        num_outputs,
        outputs: ctx.n_outputs(),
    }))
}

impl Op for Split {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let a = axis(self.axis, x.rank())?;
        let total = x.dim(a)?;
        let sizes: Vec<usize> = match (&self.sizes, self.sizes_input) {
            (Some(s), _) => s.iter().map(|&v| v.max(0) as usize).collect(),
            (None, true) => ints(input(inputs, 1)?)?
                .iter()
                .map(|&v| v.max(0) as usize)
                .collect(),
            (None, false) => {
                let n = self.num_outputs.unwrap_or(self.outputs).max(1);
                if self.num_outputs.is_some() {
                    let chunk = total.div_ceil(n);
                    (0..n)
                        .map(|i| chunk.min(total.saturating_sub(i * chunk)))
                        .collect()
                } else {
                    if total % n != 0 {
                        return Err(msg(format!(
                            "Split: {total} does not split into {n} equal parts"
                        )));
                    }
                    vec![total / n; n]
                }
            }
        };
        if sizes.iter().sum::<usize>() != total {
            return Err(msg(format!(
                "Split: sizes {sizes:?} do not add up to {total}"
            )));
        }
        let mut start = 0;
        let mut out = Vec::with_capacity(sizes.len());
        for s in sizes {
            out.push(x.narrow(a, start, s)?);
            start += s;
        }
        Ok(out)
    }
}

/// Slice parameters, each fixed at load or read from an input at run time.
enum Param {
    Fixed(Option<Vec<i64>>),
    Input(usize),
}

impl Param {
    fn get(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Option<Vec<i64>>> {
        match self {
            Self::Fixed(v) => Ok(v.clone()),
            Self::Input(i) => Ok(Some(ints(input(inputs, *i)?)?)),
        }
    }
}

struct Slice {
    starts: Param,
    ends: Param,
    axes: Param,
    steps: Param,
}

/// Slice: attributes before opset 10, inputs from 10.
pub(crate) fn slice(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    if ctx.opset < 10 {
        let starts = ctx.attr_ints("starts")?;
        let ends = ctx.attr_ints("ends")?;
        if starts.is_none() || ends.is_none() {
            return Err("Slice needs starts and ends".into());
        }
        return Ok(Box::new(Slice {
            starts: Param::Fixed(starts),
            ends: Param::Fixed(ends),
            axes: Param::Fixed(ctx.attr_ints("axes")?),
            steps: Param::Fixed(None),
        }));
    }
    ctx.need_inputs(3)?;
    let param = |i: usize| -> Result<Param, String> {
        Ok(match ctx.const_ints(i)? {
            Some(v) => Param::Fixed(Some(v)),
            None if ctx.has_input(i) => Param::Input(i),
            None => Param::Fixed(None),
        })
    };
    Ok(Box::new(Slice {
        starts: param(1)?,
        ends: param(2)?,
        axes: param(3)?,
        steps: param(4)?,
    }))
}

/// First index and count of a slice of `dim` elements, per the ONNX clamping rules.
fn slice_range(start: i64, end: i64, step: i64, dim: usize) -> (i64, usize) {
    let d = dim as i64;
    let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = (fix(start), fix(end));
    if step > 0 {
        let s = s.clamp(0, d);
        let e = e.clamp(0, d);
        (
            s,
            if e > s {
                ((e - s) + step - 1) / step
            } else {
                0
            } as usize,
        )
    } else {
        let s = s.clamp(0, (d - 1).max(0));
        let e = e.clamp(-1, d - 1);
        let st = -step;
        (s, if s > e { ((s - e) + st - 1) / st } else { 0 } as usize)
    }
}

impl Op for Slice {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let starts = self.starts.get(inputs)?.unwrap_or_default();
        let ends = self.ends.get(inputs)?.unwrap_or_default();
        if starts.len() != ends.len() {
            return Err(msg("Slice: starts and ends differ in length"));
        }
        let axes: Vec<usize> = match self.axes.get(inputs)? {
            Some(a) => a
                .iter()
                .map(|&v| axis(v, x.rank()))
                .collect::<candle_core::Result<_>>()?,
            None => (0..starts.len()).collect(),
        };
        let steps = self
            .steps
            .get(inputs)?
            .unwrap_or_else(|| vec![1; starts.len()]);
        if axes.len() != starts.len() || steps.len() != starts.len() {
            return Err(msg("Slice: starts, ends, axes and steps differ in length"));
        }
        let mut y = x.clone();
        for i in 0..starts.len() {
            let (a, step) = (axes[i], steps[i]);
            if step == 0 {
                return Err(msg("Slice: step 0"));
            }
            let dim = y.dim(a)?;
            let (s, n) = slice_range(starts[i], ends[i], step, dim);
            if step > 0 {
                if s as usize == 0 && n == dim && step == 1 {
                    continue;
                }
                y = strided(&y, a, s as usize, n, step as usize)?;
            } else {
                // Backwards: an index list (rare; not on the models' paths).
                let idx: Vec<i64> = (0..n as i64).map(|k| s + k * step).collect();
                let idx = i64_tensor(idx)?.to_device(y.device())?;
                y = y.contiguous()?.index_select(&idx, a)?;
            }
        }
        Ok(vec![y])
    }
}

struct Gather {
    axis: i64,
    /// Constant indices: values and shape.
    indices: Option<(Vec<i64>, Vec<usize>)>,
    /// The same indices on the op's device when none is negative.
    device_indices: Option<Tensor>,
}

/// Gather along an axis (negative indices count from the end).
pub(crate) fn gather(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(2)?;
    let axis = ctx.int_or("axis", 0)?;
    let err = |e: candle_core::Error| e.to_string();
    let (indices, device_indices) = match ctx.take_const(1) {
        None => (None, None),
        Some(t) => {
            let v = ints(t).map_err(err)?;
            let dev = if v.iter().all(|&i| i >= 0) {
                Some(
                    i64_tensor(v.clone())
                        .and_then(|t| t.to_device(ctx.device))
                        .map_err(err)?,
                )
            } else {
                None
            };
            (Some((v, t.dims().to_vec())), dev)
        }
    };
    Ok(Box::new(Gather {
        axis,
        indices,
        device_indices,
    }))
}

impl Op for Gather {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let a = axis(self.axis, x.rank())?;
        let dim = x.dim(a)? as i64;
        let (flat, idx_dims) = match (&self.indices, &self.device_indices) {
            (Some((_, dims)), Some(t)) => (t.to_device(x.device())?, dims.clone()),
            (Some((v, dims)), None) => {
                let v: Vec<i64> = v.iter().map(|&i| if i < 0 { i + dim } else { i }).collect();
                (i64_tensor(v)?.to_device(x.device())?, dims.clone())
            }
            (None, _) => {
                let t = input(inputs, 1)?;
                let dims = t.dims().to_vec();
                let flat = if t.device().is_cpu() {
                    let v: Vec<i64> = ints(t)?
                        .iter()
                        .map(|&i| if i < 0 { i + dim } else { i })
                        .collect();
                    i64_tensor(v)?.to_device(x.device())?
                } else {
                    // Indices computed on the device: wrap negatives there.
                    let t = t.flatten_all()?.to_dtype(DType::I64)?;
                    let zero = Tensor::zeros((), DType::I64, t.device())?;
                    let neg = t.broadcast_lt(&zero)?.to_dtype(DType::I64)?;
                    (t + neg.affine(dim as f64, 0.0)?)?.to_device(x.device())?
                };
                (flat, dims)
            }
        };
        let mut out_dims = x.dims()[..a].to_vec();
        out_dims.extend(&idx_dims);
        out_dims.extend(&x.dims()[a + 1..]);
        // candle gathers from contiguous sources only.
        let y = x.contiguous()?.index_select(&flat, a)?;
        Ok(vec![y.reshape(out_dims)?])
    }
}

#[derive(Clone, Copy, PartialEq)]
enum PadMode {
    Constant,
    Edge,
    Reflect,
}

struct Pad {
    mode: PadMode,
    pads: Option<Vec<i64>>,
    /// Constant value (attribute or constant input), on the op's device.
    value: Option<Tensor>,
    axes: Option<Vec<i64>>,
}

/// Pad: constant, edge and reflect modes; attributes before opset 11, inputs from 11.
pub(crate) fn pad(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let mode = match ctx.string_or("mode", "constant")?.as_str() {
        "constant" => PadMode::Constant,
        "edge" => PadMode::Edge,
        "reflect" => PadMode::Reflect,
        other => return Err(format!("Pad mode={other} is not implemented")),
    };
    let err = |e: candle_core::Error| e.to_string();
    let dev = ctx.device;
    if ctx.opset < 11 {
        let pads = ctx.attr_ints("pads")?.ok_or("Pad has no pads")?;
        let v = f64::from(ctx.float_or("value", 0.0)?);
        let value = super::util::scalar(v, DType::F32, dev).map_err(err)?;
        return Ok(Box::new(Pad {
            mode,
            pads: Some(pads),
            value: Some(value),
            axes: None,
        }));
    }
    ctx.need_inputs(2)?;
    let pads = ctx.const_ints(1)?;
    let value = match ctx.take_const(2) {
        Some(t) => Some(t.reshape(()).and_then(|t| t.to_device(dev)).map_err(err)?),
        None if !ctx.has_input(2) => Some(Tensor::zeros((), DType::F32, dev).map_err(err)?),
        None => None,
    };
    let axes = ctx.const_ints(3)?;
    if ctx.has_input(3) && axes.is_none() {
        return Err("Pad with axes computed at run time is not implemented".into());
    }
    Ok(Box::new(Pad {
        mode,
        pads,
        value,
        axes,
    }))
}

impl Op for Pad {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let r = x.rank();
        let pads = match &self.pads {
            Some(p) => p.clone(),
            None => ints(input(inputs, 1)?)?,
        };
        let axes: Vec<usize> = match &self.axes {
            Some(a) => a
                .iter()
                .map(|&v| axis(v, r))
                .collect::<candle_core::Result<_>>()?,
            None => (0..r).collect(),
        };
        if pads.len() != 2 * axes.len() {
            return Err(msg(format!(
                "Pad: {} pads for {} axes",
                pads.len(),
                axes.len()
            )));
        }
        let value = match &self.value {
            Some(v) => v.clone(),
            None => input(inputs, 2)?.reshape(())?,
        };
        let value = same_device(&[&value, x])?.remove(0);
        let n = axes.len();
        let mut y = x.clone();
        for (i, &a) in axes.iter().enumerate() {
            let (mut lo, mut hi) = (pads[i], pads[i + n]);
            // Negative pads crop.
            if lo < 0 {
                let d = y.dim(a)?;
                y = y.narrow(a, (-lo) as usize, d.saturating_sub((-lo) as usize))?;
                lo = 0;
            }
            if hi < 0 {
                let d = y.dim(a)?;
                y = y.narrow(a, 0, d.saturating_sub((-hi) as usize))?;
                hi = 0;
            }
            let (lo, hi) = (lo as usize, hi as usize);
            if lo == 0 && hi == 0 {
                continue;
            }
            y = match self.mode {
                PadMode::Constant => pad_value(&y, a, lo, hi, &value)?,
                PadMode::Edge => y.pad_with_same(a, lo, hi)?,
                PadMode::Reflect => {
                    let d = y.dim(a)?;
                    if lo >= d || hi >= d {
                        return Err(msg(format!(
                            "Pad reflect: pads {lo}, {hi} need more than {d} elements"
                        )));
                    }
                    let mut parts = Vec::with_capacity(3);
                    if lo > 0 {
                        parts.push(y.narrow(a, 1, lo)?.contiguous()?.flip(&[a])?);
                    }
                    parts.push(y.clone());
                    if hi > 0 {
                        parts.push(y.narrow(a, d - 1 - hi, hi)?.contiguous()?.flip(&[a])?);
                    }
                    Tensor::cat(&parts, a)?
                }
            };
        }
        Ok(vec![y])
    }
}

#[cfg(test)]
mod tests {
    use super::slice_range;

    #[test]
    fn slice_ranges_clamp_like_onnx() {
        // x[1::2] of 7, with the exporters' INT64_MAX end.
        assert_eq!(slice_range(1, i64::MAX, 2, 7), (1, 3));
        // x[-3:-1]
        assert_eq!(slice_range(-3, -1, 1, 5), (2, 2));
        // x[::-1] as exported: start -1, end INT64_MIN + 1.
        assert_eq!(slice_range(-1, -i64::MAX, -1, 4), (3, 4));
        // x[4:0:-2]
        assert_eq!(slice_range(4, 0, -2, 5), (4, 2));
        // Empty.
        assert_eq!(slice_range(3, 1, 1, 5), (3, 0));
    }
}
