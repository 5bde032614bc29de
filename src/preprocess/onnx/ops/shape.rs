//! Shape operators: Shape, Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand,
//! Tile, Constant, ConstantOfShape, Range. Shapes are i64 tensors on the CPU.

use candle_core::{DType, Device, Tensor};

use super::util::{axis, broadcast_shape, dims_i64, i64_tensor, input, ints, msg, scalar_f64};
use super::{Compiled, NodeCtx, Op};

struct ShapeOp {
    start: i64,
    end: Option<i64>,
}

/// Shape (with opset 15's start and end).
pub(crate) fn shape(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    Ok(Box::new(ShapeOp {
        start: ctx.int_or("start", 0)?,
        end: ctx.attr_int("end")?,
    }))
}

impl Op for ShapeOp {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let dims = dims_i64(input(inputs, 0)?);
        let r = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
        let s = clamp(self.start);
        let e = clamp(self.end.unwrap_or(r)).max(s);
        Ok(vec![i64_tensor(dims[s..e].to_vec())?])
    }
}

struct Size;

/// Size: the element count as an i64 scalar.
pub(crate) fn size(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    Ok(Box::new(Size))
}

impl Op for Size {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let n = input(inputs, 0)?.elem_count() as i64;
        Ok(vec![Tensor::new(n, &Device::Cpu)?])
    }
}

/// The dimensions `spec` asks of a tensor with dimensions `dims`: 0 copies (unless
/// `allow_zero`), -1 is inferred.
pub(crate) fn reshape_dims(
    dims: &[usize],
    spec: &[i64],
    allow_zero: bool,
) -> candle_core::Result<Vec<usize>> {
    let total: usize = dims.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (i, &s) in spec.iter().enumerate() {
        out.push(match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                1
            }
            0 if !allow_zero => *dims.get(i).ok_or_else(|| {
                msg(format!(
                    "Reshape: 0 at position {i} but the input has rank {}",
                    dims.len()
                ))
            })?,
            s if s >= 0 => s as usize,
            _ => return Err(msg(format!("Reshape: invalid shape {spec:?}"))),
        });
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        if known == 0 || total % known != 0 {
            return Err(msg(format!("Reshape: cannot reshape {dims:?} to {spec:?}")));
        }
        out[i] = total / known;
    }
    if out.iter().product::<usize>() != total {
        return Err(msg(format!("Reshape: cannot reshape {dims:?} to {spec:?}")));
    }
    Ok(out)
}

struct Reshape {
    shape: Option<Vec<i64>>,
    allow_zero: bool,
}

/// Reshape (shape as an input; opset 5 on).
pub(crate) fn reshape(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(2)?;
    Ok(Box::new(Reshape {
        shape: ctx.const_ints(1)?,
        allow_zero: ctx.int_or("allowzero", 0)? != 0,
    }))
}

impl Op for Reshape {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let spec = match &self.shape {
            Some(s) => s.clone(),
            None => ints(input(inputs, 1)?)?,
        };
        let dims = reshape_dims(x.dims(), &spec, self.allow_zero)?;
        Ok(vec![x.reshape(dims)?])
    }
}

struct Flatten {
    axis: i64,
}

/// Flatten to 2-D at `axis`.
pub(crate) fn flatten(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    Ok(Box::new(Flatten {
        axis: ctx.int_or("axis", 1)?,
    }))
}

impl Op for Flatten {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let r = x.rank() as i64;
        let a = if self.axis < 0 {
            self.axis + r
        } else {
            self.axis
        };
        if !(0..=r).contains(&a) {
            return Err(msg(format!("Flatten axis {} for rank {r}", self.axis)));
        }
        let outer: usize = x.dims()[..a as usize].iter().product();
        let inner: usize = x.dims()[a as usize..].iter().product();
        Ok(vec![x.reshape((outer, inner))?])
    }
}

/// Axes from the attribute (before opset 13) or from input 1 (constant or at run time).
enum Axes {
    Fixed(Option<Vec<i64>>),
    Input,
}

fn axes_param(ctx: &NodeCtx) -> Result<Axes, String> {
    if ctx.opset < 13 {
        return Ok(Axes::Fixed(ctx.attr_ints("axes")?));
    }
    Ok(match ctx.const_ints(1)? {
        Some(a) => Axes::Fixed(Some(a)),
        None if ctx.has_input(1) => Axes::Input,
        None => Axes::Fixed(None),
    })
}

fn axes_value(a: &Axes, inputs: &[Option<Tensor>]) -> candle_core::Result<Option<Vec<i64>>> {
    match a {
        Axes::Fixed(v) => Ok(v.clone()),
        Axes::Input => Ok(Some(ints(input(inputs, 1)?)?)),
    }
}

struct Squeeze {
    axes: Axes,
}

/// Squeeze (all size-one dimensions when no axes are given).
pub(crate) fn squeeze(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    Ok(Box::new(Squeeze {
        axes: axes_param(ctx)?,
    }))
}

impl Op for Squeeze {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let axes: Vec<usize> = match axes_value(&self.axes, inputs)? {
            None => (0..x.rank()).filter(|&i| x.dims()[i] == 1).collect(),
            Some(a) => a
                .iter()
                .map(|&v| axis(v, x.rank()))
                .collect::<candle_core::Result<_>>()?,
        };
        let dims: Vec<usize> = x
            .dims()
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect();
        if let Some(&a) = axes.iter().find(|&&a| x.dims()[a] != 1) {
            return Err(msg(format!(
                "Squeeze: dimension {a} of {:?} is not 1",
                x.dims()
            )));
        }
        Ok(vec![x.reshape(dims)?])
    }
}

struct Unsqueeze {
    axes: Axes,
}

/// Unsqueeze.
pub(crate) fn unsqueeze(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let axes = axes_param(ctx)?;
    if let Axes::Fixed(None) = axes {
        return Err("Unsqueeze has no axes".into());
    }
    Ok(Box::new(Unsqueeze { axes }))
}

impl Op for Unsqueeze {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let given = axes_value(&self.axes, inputs)?.unwrap_or_default();
        let out_rank = x.rank() + given.len();
        let mut axes: Vec<usize> = given
            .iter()
            .map(|&v| axis(v, out_rank))
            .collect::<candle_core::Result<_>>()?;
        axes.sort_unstable();
        let mut dims = x.dims().to_vec();
        for a in axes {
            dims.insert(a, 1);
        }
        Ok(vec![x.reshape(dims)?])
    }
}

struct Transpose {
    perm: Option<Vec<i64>>,
}

/// Transpose (reversed dimensions by default).
pub(crate) fn transpose(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    Ok(Box::new(Transpose {
        perm: ctx.attr_ints("perm")?,
    }))
}

impl Op for Transpose {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let perm: Vec<usize> = match &self.perm {
            None => (0..x.rank()).rev().collect(),
            Some(p) => p
                .iter()
                .map(|&v| axis(v, x.rank()))
                .collect::<candle_core::Result<_>>()?,
        };
        Ok(vec![x.permute(perm)?])
    }
}

struct Expand {
    shape: Option<Vec<i64>>,
}

/// Expand: numpy broadcast of the input and the given shape.
pub(crate) fn expand(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(2)?;
    Ok(Box::new(Expand {
        shape: ctx.const_ints(1)?,
    }))
}

fn to_dims(v: &[i64], what: &str) -> candle_core::Result<Vec<usize>> {
    v.iter()
        .map(|&d| usize::try_from(d).map_err(|_| msg(format!("{what}: negative size in {v:?}"))))
        .collect()
}

impl Op for Expand {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let spec = match &self.shape {
            Some(s) => s.clone(),
            None => ints(input(inputs, 1)?)?,
        };
        let target = broadcast_shape(x.dims(), &to_dims(&spec, "Expand")?)?;
        Ok(vec![x.broadcast_as(target)?])
    }
}

struct Tile {
    repeats: Option<Vec<i64>>,
}

/// Tile.
pub(crate) fn tile(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(2)?;
    Ok(Box::new(Tile {
        repeats: ctx.const_ints(1)?,
    }))
}

impl Op for Tile {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let reps = match &self.repeats {
            Some(r) => r.clone(),
            None => ints(input(inputs, 1)?)?,
        };
        if reps.len() != x.rank() {
            return Err(msg(format!(
                "Tile: {} repeats for rank {}",
                reps.len(),
                x.rank()
            )));
        }
        Ok(vec![x.repeat(to_dims(&reps, "Tile")?)?])
    }
}

struct Constant {
    value: Tensor,
}

/// Constant: a tensor or a float/int (list) attribute.
pub(crate) fn constant(ctx: &NodeCtx) -> Compiled {
    let err = |e: candle_core::Error| e.to_string();
    let cpu = &Device::Cpu;
    let value = if let Some(t) = ctx.attr_tensor("value")? {
        t
    } else if let Some(f) = ctx.attr_float("value_float")? {
        Tensor::new(f, cpu).map_err(err)?
    } else if let Some(v) = ctx.attr_floats("value_floats")? {
        let n = v.len();
        Tensor::from_vec(v, n, cpu).map_err(err)?
    } else if let Some(i) = ctx.attr_int("value_int")? {
        Tensor::new(i, cpu).map_err(err)?
    } else if let Some(v) = ctx.attr_ints("value_ints")? {
        i64_tensor(v).map_err(err)?
    } else {
        // value_string(s) and sparse_value stay unread and are reported as such.
        return Err("Constant without a tensor, float or int value is not implemented".into());
    };
    Ok(Box::new(Constant { value }))
}

impl Op for Constant {
    fn run(&self, _inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        Ok(vec![self.value.clone()])
    }
}

struct ConstantOfShape {
    /// The fill value, a scalar on the op's device.
    value: Tensor,
    shape: Option<Vec<i64>>,
}

/// ConstantOfShape (f32 zero unless `value` says otherwise).
pub(crate) fn constant_of_shape(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let err = |e: candle_core::Error| e.to_string();
    let value = match ctx.attr_tensor("value")? {
        Some(t) => t.flatten_all().and_then(|t| t.get(0)).map_err(err)?,
        None => Tensor::new(0f32, &Device::Cpu).map_err(err)?,
    };
    Ok(Box::new(ConstantOfShape {
        value: value.to_device(ctx.device).map_err(err)?,
        shape: ctx.const_ints(0)?,
    }))
}

impl Op for ConstantOfShape {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let spec = match &self.shape {
            Some(s) => s.clone(),
            None => ints(input(inputs, 0)?)?,
        };
        let dims = to_dims(&spec, "ConstantOfShape")?;
        // A broadcast view: no memory until something copies it.
        Ok(vec![self.value.broadcast_as(dims)?])
    }
}

struct Range;

/// Range(start, limit, delta).
pub(crate) fn range(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(3)?;
    Ok(Box::new(Range))
}

impl Op for Range {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let start_t = input(inputs, 0)?;
        let dtype = start_t.dtype();
        let start = scalar_f64(start_t)?;
        let limit = scalar_f64(input(inputs, 1)?)?;
        let delta = scalar_f64(input(inputs, 2)?)?;
        if delta == 0.0 {
            return Err(msg("Range: delta is 0"));
        }
        let n = ((limit - start) / delta).ceil().max(0.0) as usize;
        let y = if dtype == DType::I64 {
            let (s, d) = (start as i64, delta as i64);
            i64_tensor((0..n as i64).map(|i| s + i * d).collect())?
        } else {
            let v: Vec<f64> = (0..n).map(|i| start + i as f64 * delta).collect();
            Tensor::from_vec(v, n, &Device::Cpu)?.to_dtype(dtype)?
        };
        Ok(vec![y.to_device(start_t.device())?])
    }
}

#[cfg(test)]
mod tests {
    use super::reshape_dims;

    #[test]
    fn reshape_copies_zeros_and_infers_minus_one() {
        assert_eq!(
            reshape_dims(&[2, 3, 4], &[0, -1], false).unwrap(),
            vec![2, 12]
        );
        assert_eq!(
            reshape_dims(&[2, 3, 4], &[-1, 4], false).unwrap(),
            vec![6, 4]
        );
        assert_eq!(reshape_dims(&[0, 3], &[0, 3], true).unwrap(), vec![0, 3]);
        assert!(reshape_dims(&[2, 3, 4], &[5, -1], false).is_err());
        assert!(reshape_dims(&[2, 3], &[-1, -1], false).is_err());
    }
}
