//! Resize (opsets 10–19 forms: scales or sizes, axes) and Upsample (7–9), nearest and
//! linear. Each resized axis is done on its own: nearest as an index gather (or, for
//! integer factors, a broadcast copy), linear as a blend of two gathers, which is the
//! same separable interpolation onnxruntime computes.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{Device, Tensor};

use super::util::{floats, i64_tensor, input, ints, msg};
use super::{Compiled, NodeCtx, Op};

#[derive(Clone, Copy, PartialEq)]
enum Coord {
    HalfPixel,
    PytorchHalfPixel,
    AlignCorners,
    Asymmetric,
    TfHalfPixelForNn,
}

#[derive(Clone, Copy, PartialEq)]
enum Nearest {
    RoundPreferFloor,
    RoundPreferCeil,
    Floor,
    Ceil,
    /// Upsample and Resize-10: floor when enlarging, ceil when shrinking.
    Simple,
}

/// Index tables of one resized axis, on the op's device.
#[derive(Clone)]
enum AxisPlan {
    /// Every input element repeated `k` times in order.
    Repeat(usize),
    /// Nearest: one source index per output element.
    Pick(Tensor),
    /// Linear: two source indices and the weight of the second.
    Blend(Tensor, Tensor, Tensor, Tensor),
}

struct Resize {
    linear: bool,
    coord: Coord,
    nearest: Nearest,
    /// Constant scales or sizes (over `axes`, or all axes when `axes` is empty).
    scales: Option<Vec<f32>>,
    sizes: Option<Vec<i64>>,
    /// Inputs to read at run time when not constant.
    scales_input: Option<usize>,
    sizes_input: Option<usize>,
    axes: Vec<i64>,
    device: Device,
    /// Plans per (axis, input size, output size): computed and uploaded once.
    plans: Mutex<HashMap<(usize, usize, usize), AxisPlan>>,
}

/// Resize and Upsample.
pub(crate) fn resize(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(1)?;
    let upsample = ctx.op_type == "Upsample";
    let mode = ctx.string_or("mode", "nearest")?;
    let linear = match mode.as_str() {
        "nearest" => false,
        "linear" | "bilinear" => true,
        other => return Err(format!("{} mode={other} is not implemented", ctx.op_type)),
    };
    let old_form = upsample || ctx.opset < 11;
    let coord = if old_form {
        Coord::Asymmetric
    } else {
        match ctx
            .string_or("coordinate_transformation_mode", "half_pixel")?
            .as_str()
        {
            "half_pixel" => Coord::HalfPixel,
            "pytorch_half_pixel" => Coord::PytorchHalfPixel,
            "align_corners" => Coord::AlignCorners,
            "asymmetric" => Coord::Asymmetric,
            "tf_half_pixel_for_nn" => Coord::TfHalfPixelForNn,
            other => {
                return Err(format!(
                    "Resize coordinate_transformation_mode={other} is not implemented"
                ));
            }
        }
    };
    let nearest = if old_form {
        Nearest::Simple
    } else {
        match ctx
            .string_or("nearest_mode", "round_prefer_floor")?
            .as_str()
        {
            "round_prefer_floor" => Nearest::RoundPreferFloor,
            "round_prefer_ceil" => Nearest::RoundPreferCeil,
            "floor" => Nearest::Floor,
            "ceil" => Nearest::Ceil,
            other => return Err(format!("Resize nearest_mode={other} is not implemented")),
        }
    };
    if !old_form {
        // Only bicubic reads these; accept the defaults and harmless values.
        ctx.attr_float("cubic_coeff_a")?;
        if ctx.int_or("exclude_outside", 0)? != 0 {
            return Err("Resize exclude_outside=1 is not implemented".into());
        }
        ctx.attr_float("extrapolation_value")?;
    }
    if ctx.int_or("antialias", 0)? != 0 {
        return Err("Resize antialias=1 is not implemented".into());
    }
    let policy = ctx.string_or("keep_aspect_ratio_policy", "stretch")?;
    if policy != "stretch" {
        return Err(format!(
            "Resize keep_aspect_ratio_policy={policy} is not implemented"
        ));
    }
    let axes = ctx.attr_ints("axes")?.unwrap_or_default();
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let (mut scales, mut sizes, mut scales_input, mut sizes_input) = (None, None, None, None);
    if upsample && ctx.opset < 9 {
        scales = Some(
            ctx.attr_floats("scales")?
                .ok_or("Upsample has no scales attribute")?,
        );
    } else {
        // Upsample-9 and Resize-10: X, scales. Resize-11 on: X, roi, scales, sizes.
        let (si, zi) = if old_form { (1, None) } else { (2, Some(3)) };
        if !old_form {
            // roi only matters for tf_crop_and_resize, which is refused above.
            ctx.take_const(1);
        }
        match ctx.peek_const(si) {
            Some(t) if t.elem_count() > 0 => {
                scales = Some(to_f32(ctx.const_floats(si)?.unwrap_or_default()));
            }
            Some(_) => {
                ctx.take_const(si);
            }
            None if ctx.has_input(si) => scales_input = Some(si),
            None => {}
        }
        if let Some(zi) = zi {
            match ctx.peek_const(zi) {
                Some(t) if t.elem_count() > 0 => sizes = ctx.const_ints(zi)?,
                Some(_) => {
                    ctx.take_const(zi);
                }
                None if ctx.has_input(zi) => sizes_input = Some(zi),
                None => {}
            }
        }
        if scales.is_none() && sizes.is_none() && scales_input.is_none() && sizes_input.is_none() {
            return Err(format!("{} has neither scales nor sizes", ctx.op_type));
        }
    }
    Ok(Box::new(Resize {
        linear,
        coord,
        nearest,
        scales,
        sizes,
        scales_input,
        sizes_input,
        axes,
        device: ctx.device.clone(),
        plans: Mutex::new(HashMap::new()),
    }))
}

impl Resize {
    /// Source coordinate of output index `x` (f32, as onnxruntime computes it).
    fn source(&self, x: usize, scale: f32, len_in: usize, len_out: usize) -> f32 {
        let x = x as f32;
        match self.coord {
            Coord::HalfPixel => (x + 0.5) / scale - 0.5,
            Coord::PytorchHalfPixel => {
                if len_out > 1 {
                    (x + 0.5) / scale - 0.5
                } else {
                    0.0
                }
            }
            Coord::AlignCorners => {
                if len_out == 1 {
                    0.0
                } else {
                    x * (len_in as f32 - 1.0) / (len_out as f32 - 1.0)
                }
            }
            Coord::Asymmetric => x / scale,
            Coord::TfHalfPixelForNn => (x + 0.5) / scale,
        }
    }

    fn plan(&self, len_in: usize, len_out: usize, scale: f32) -> candle_core::Result<AxisPlan> {
        let last = len_in as i64 - 1;
        if !self.linear {
            let idx: Vec<i64> = (0..len_out)
                .map(|o| {
                    let s = self.source(o, scale, len_in, len_out);
                    let i = match self.nearest {
                        Nearest::RoundPreferFloor => {
                            if s.fract() == 0.5 {
                                s.floor()
                            } else {
                                s.round()
                            }
                        }
                        Nearest::RoundPreferCeil => {
                            if s.fract() == 0.5 {
                                s.ceil()
                            } else {
                                s.round()
                            }
                        }
                        Nearest::Floor => s.floor(),
                        Nearest::Ceil => s.ceil(),
                        Nearest::Simple => {
                            if scale < 1.0 {
                                s.ceil()
                            } else {
                                s.floor()
                            }
                        }
                    };
                    (i as i64).clamp(0, last)
                })
                .collect();
            if len_out % len_in == 0 {
                let k = len_out / len_in;
                if idx.iter().enumerate().all(|(o, &i)| i == (o / k) as i64) {
                    return Ok(AxisPlan::Repeat(k));
                }
            }
            return Ok(AxisPlan::Pick(i64_tensor(idx)?.to_device(&self.device)?));
        }
        let mut i0 = Vec::with_capacity(len_out);
        let mut i1 = Vec::with_capacity(len_out);
        let mut w = Vec::with_capacity(len_out);
        for o in 0..len_out {
            let s = self
                .source(o, scale, len_in, len_out)
                .clamp(0.0, last as f32);
            let lo = s.floor() as i64;
            i0.push(lo);
            i1.push((lo + 1).min(last));
            w.push(s - lo as f32);
        }
        let dev = &self.device;
        let wt = Tensor::from_vec(w, len_out, &Device::Cpu)?;
        let one_minus = wt.affine(-1.0, 1.0)?;
        Ok(AxisPlan::Blend(
            i64_tensor(i0)?.to_device(dev)?,
            i64_tensor(i1)?.to_device(dev)?,
            one_minus.to_device(dev)?,
            wt.to_device(dev)?,
        ))
    }
}

impl Op for Resize {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let r = x.rank();
        let axes: Vec<usize> = if self.axes.is_empty() {
            (0..r).collect()
        } else {
            self.axes
                .iter()
                .map(|&a| super::util::axis(a, r))
                .collect::<candle_core::Result<_>>()?
        };
        let scales = match (&self.scales, self.scales_input) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(i)) => {
                let v = floats(input(inputs, i)?)?;
                (!v.is_empty()).then(|| v.into_iter().map(|x| x as f32).collect())
            }
            (None, None) => None,
        };
        let sizes = match (&self.sizes, self.sizes_input) {
            (Some(s), _) => Some(s.clone()),
            (None, Some(i)) => {
                let v = ints(input(inputs, i)?)?;
                (!v.is_empty()).then_some(v)
            }
            (None, None) => None,
        };
        // Per axis: output size and the scale the coordinates use.
        let mut target: Vec<(usize, f32)> = x.dims().iter().map(|&d| (d, 1.0)).collect();
        match (sizes, scales) {
            (Some(sz), _) => {
                if sz.len() != axes.len() {
                    return Err(msg(format!(
                        "Resize: {} sizes for {} axes",
                        sz.len(),
                        axes.len()
                    )));
                }
                for (&a, &s) in axes.iter().zip(&sz) {
                    let out = usize::try_from(s).map_err(|_| msg("Resize: negative size"))?;
                    target[a] = (out, out as f32 / x.dim(a)? as f32);
                }
            }
            (None, Some(sc)) => {
                if sc.len() != axes.len() {
                    return Err(msg(format!(
                        "Resize: {} scales for {} axes",
                        sc.len(),
                        axes.len()
                    )));
                }
                for (&a, &s) in axes.iter().zip(&sc) {
                    if s <= 0.0 {
                        return Err(msg(format!("Resize: scale {s}")));
                    }
                    let out = (x.dim(a)? as f32 * s).floor() as usize;
                    target[a] = (out, s);
                }
            }
            (None, None) => return Err(msg("Resize: neither scales nor sizes")),
        }
        let mut y = x.clone();
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        for (a, &(out, scale)) in target.iter().enumerate() {
            let len_in = x.dim(a)?;
            if out == len_in && scale == 1.0 {
                continue;
            }
            if len_in == 0 || out == 0 {
                return Err(msg(format!("Resize: axis {a} from {len_in} to {out}")));
            }
            let key = (a, len_in, out);
            let plan = {
                let mut plans = self
                    .plans
                    .lock()
                    .map_err(|_| msg("Resize: plan cache poisoned"))?;
                match plans.get(&key) {
                    Some(p) => p.clone(),
                    None => {
                        let p = self.plan(len_in, out, scale)?;
                        plans.insert(key, p.clone());
                        p
                    }
                }
            };
            match plan {
                AxisPlan::Repeat(1) => {}
                AxisPlan::Repeat(k) => repeats.push((a, k)),
                AxisPlan::Pick(idx) => y = y.contiguous()?.index_select(&idx, a)?,
                AxisPlan::Blend(i0, i1, w0, w1) => {
                    let mut shape = vec![1; r];
                    shape[a] = out;
                    let w0 = w0.reshape(shape.as_slice())?.to_dtype(y.dtype())?;
                    let w1 = w1.reshape(shape.as_slice())?.to_dtype(y.dtype())?;
                    let src = y.contiguous()?;
                    let lo = src.index_select(&i0, a)?.broadcast_mul(&w0)?;
                    let hi = src.index_select(&i1, a)?.broadcast_mul(&w1)?;
                    y = (lo + hi)?;
                }
            }
        }
        if !repeats.is_empty() {
            // Integer nearest factors all at once: a size-k axis after each repeated
            // axis, broadcast, merged back; one copy.
            let mut expanded = Vec::new();
            let mut full = Vec::new();
            let mut merged = Vec::new();
            for (a, &d) in y.dims().iter().enumerate() {
                expanded.push(d);
                full.push(d);
                match repeats.iter().find(|(ax, _)| *ax == a) {
                    Some(&(_, k)) => {
                        expanded.push(1);
                        full.push(k);
                        merged.push(d * k);
                    }
                    None => merged.push(d),
                }
            }
            y = y
                .reshape(expanded)?
                .broadcast_as(full)?
                .contiguous()?
                .reshape(merged)?;
        }
        Ok(vec![y])
    }
}
