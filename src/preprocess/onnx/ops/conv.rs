//! Conv (1-D and 2-D; groups, depthwise, asymmetric pads, auto_pad).

use candle_core::Tensor;

use super::depthwise::Depthwise;
use super::util::{input, msg, strided};
use super::{CONV_SILU, Compiled, NodeCtx, Op};

/// How `pads` are chosen.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum AutoPad {
    /// The `pads` attribute.
    NotSet,
    /// Output size ceil(in / stride), extra padding at the end.
    SameUpper,
    /// Output size ceil(in / stride), extra padding at the start.
    SameLower,
    /// No padding.
    Valid,
}

impl AutoPad {
    /// Parses the `auto_pad` attribute.
    pub(crate) fn parse(ctx: &NodeCtx) -> Result<Self, String> {
        Ok(match ctx.string_or("auto_pad", "NOTSET")?.as_str() {
            "NOTSET" => Self::NotSet,
            "SAME_UPPER" => Self::SameUpper,
            "SAME_LOWER" => Self::SameLower,
            "VALID" => Self::Valid,
            other => return Err(format!("auto_pad={other} is not implemented")),
        })
    }

    /// Begin and end padding of each spatial axis, for input sizes `input`.
    pub(crate) fn pads(
        self,
        explicit: &[usize],
        input: &[usize],
        kernel: &[usize],
        strides: &[usize],
        dilations: &[usize],
    ) -> Vec<(usize, usize)> {
        let n = input.len();
        (0..n)
            .map(|i| match self {
                Self::NotSet => (
                    explicit.get(i).copied().unwrap_or(0),
                    explicit.get(i + n).copied().unwrap_or(0),
                ),
                Self::Valid => (0, 0),
                Self::SameUpper | Self::SameLower => {
                    let out = input[i].div_ceil(strides[i]);
                    let span = (kernel[i] - 1) * dilations[i] + 1;
                    let total = ((out - 1) * strides[i] + span).saturating_sub(input[i]);
                    let small = total / 2;
                    if self == Self::SameUpper {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    }
                }
            })
            .collect()
    }
}

/// Reads a non-negative integer list attribute, or `default` of length `n`.
pub(crate) fn usizes(
    ctx: &NodeCtx,
    name: &str,
    n: usize,
    default: usize,
) -> Result<Vec<usize>, String> {
    match ctx.attr_ints(name)? {
        None => Ok(vec![default; n]),
        Some(v) => v
            .iter()
            .map(|&x| usize::try_from(x).map_err(|_| format!("{name} has a negative value {x}")))
            .collect(),
    }
}

struct Conv {
    /// `(c_out, c_in / group, k…)`, on the op's device, when constant.
    weight: Option<Tensor>,
    /// `(1, c_out, 1[, 1])` when constant.
    bias: Option<Tensor>,
    /// Spatial rank (1 or 2) when known at load.
    kernel: Option<Vec<usize>>,
    strides: Option<Vec<usize>>,
    dilations: Option<Vec<usize>>,
    pads: Option<Vec<usize>>,
    auto_pad: AutoPad,
    group: usize,
    /// The depthwise fast path (one input channel per group, constant weight).
    depthwise: Option<Depthwise>,
    /// SiLU after the bias (a Conv whose only reader was a SiLU, fused at load).
    silu: bool,
    /// The runner's CUDA kernels, when the op runs on a GPU that has them.
    #[cfg(feature = "cuda")]
    kernels: Option<std::sync::Arc<super::cuda::Kernels>>,
}

/// Conv: X, W, optional B.
pub(crate) fn conv(ctx: &NodeCtx) -> Compiled {
    ctx.need_inputs(2)?;
    let auto_pad = AutoPad::parse(ctx)?;
    let group = usize::try_from(ctx.int_or("group", 1)?)
        .ok()
        .filter(|&g| g >= 1)
        .ok_or("Conv group must be at least 1")?;
    let kernel_attr = ctx.attr_ints("kernel_shape")?;
    let strides = ctx.attr_ints("strides")?;
    let dilations = ctx.attr_ints("dilations")?;
    let pads = ctx.attr_ints("pads")?;
    let to_us = |v: Option<Vec<i64>>, what: &str| -> Result<Option<Vec<usize>>, String> {
        v.map(|v| {
            v.iter()
                .map(|&x| usize::try_from(x).map_err(|_| format!("Conv {what} has {x}")))
                .collect()
        })
        .transpose()
    };
    let strides = to_us(strides, "strides")?;
    let dilations = to_us(dilations, "dilations")?;
    let pads = to_us(pads, "pads")?;
    let mut kernel = to_us(kernel_attr, "kernel_shape")?;
    let w = ctx.take_const(1);
    if let Some(w) = w {
        let k: Vec<usize> = w.dims()[2.min(w.rank())..].to_vec();
        if let Some(ka) = &kernel
            && ka != &k
        {
            return Err(format!(
                "Conv kernel_shape {ka:?} disagrees with the weight's shape {:?}",
                w.dims()
            ));
        }
        kernel = Some(k);
    }
    if let Some(k) = &kernel {
        if k.is_empty() || k.len() > 2 {
            return Err(format!(
                "Conv with {} spatial dimensions is not implemented (1 or 2)",
                k.len()
            ));
        }
        if let Some(d) = &dilations
            && d.len() == 2
            && d[0] != d[1]
        {
            return Err(format!(
                "Conv with unequal dilations {d:?} is not implemented"
            ));
        }
    }
    let dev = ctx.device;
    let err = |e: candle_core::Error| e.to_string();
    let weight = w.map(|w| w.to_device(dev)).transpose().map_err(err)?;
    let bias = match ctx.take_const(2) {
        None => None,
        Some(b) => {
            let spatial = kernel.as_ref().map(|k| k.len()).unwrap_or(2);
            let mut shape = vec![1, b.elem_count()];
            shape.extend(std::iter::repeat_n(1, spatial));
            Some(
                b.reshape(shape)
                    .and_then(|b| b.to_device(dev))
                    .map_err(err)?,
            )
        }
    };
    // Depthwise (one input channel per group): candle would run one convolution per
    // channel.
    let depthwise = match &weight {
        Some(w) if group > 1 && w.rank() == 4 && w.dim(1).map_err(err)? == 1 => {
            Some(Depthwise::new(w, dev).map_err(err)?)
        }
        _ => None,
    };
    #[cfg(feature = "cuda")]
    let kernels = super::cuda::kernels(dev).ok();
    Ok(Box::new(Conv {
        silu: ctx.op_type == CONV_SILU,
        #[cfg(feature = "cuda")]
        kernels,
        weight,
        bias,
        kernel,
        strides,
        dilations,
        pads,
        auto_pad,
        group,
        depthwise,
    }))
}

impl Op for Conv {
    fn run(&self, inputs: &[Option<Tensor>]) -> candle_core::Result<Vec<Tensor>> {
        let x = input(inputs, 0)?;
        let w = match &self.weight {
            Some(w) => w.clone(),
            None => input(inputs, 1)?.clone(),
        };
        let spatial = w.rank().saturating_sub(2);
        if !(1..=2).contains(&spatial) || x.rank() != spatial + 2 {
            return Err(msg(format!(
                "Conv of input {:?} with weight {:?} is not implemented (1-D or 2-D only)",
                x.dims(),
                w.dims()
            )));
        }
        let kernel = match &self.kernel {
            Some(k) => k.clone(),
            None => w.dims()[2..].to_vec(),
        };
        let strides = self.strides.clone().unwrap_or_else(|| vec![1; spatial]);
        let dilations = self.dilations.clone().unwrap_or_else(|| vec![1; spatial]);
        let explicit = self.pads.clone().unwrap_or_else(|| vec![0; 2 * spatial]);
        let pads = self
            .auto_pad
            .pads(&explicit, &x.dims()[2..], &kernel, &strides, &dilations);
        let bias = match (&self.bias, inputs.get(2).and_then(|b| b.as_ref())) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(b)) => {
                let mut shape = vec![1, b.elem_count()];
                shape.extend(std::iter::repeat_n(1, spatial));
                Some(b.reshape(shape)?)
            }
            (None, None) => None,
        };
        if let Some(dw) = &self.depthwise {
            let geo = Geometry {
                kernel: &kernel,
                strides: &strides,
                dilations: &dilations,
                pads: &pads,
            };
            return Ok(vec![dw.run(x, &geo, bias.as_ref(), self.silu)?]);
        }
        let y = plain(x, &w, &kernel, &strides, &dilations, &pads, self.group)?;
        Ok(vec![self.finish(y, bias.as_ref())?])
    }
}

/// A 2-D convolution's kernel size, strides, dilations and (begin, end) pads per axis.
pub(crate) struct Geometry<'a> {
    pub kernel: &'a [usize],
    pub strides: &'a [usize],
    pub dilations: &'a [usize],
    pub pads: &'a [(usize, usize)],
}

impl Conv {
    /// `y + bias`, then SiLU if fused: one kernel on a GPU with the runner's kernels.
    fn finish(&self, y: Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
        if bias.is_none() && !self.silu {
            return Ok(y);
        }
        #[cfg(feature = "cuda")]
        if let Some(k) = &self.kernels
            && y.dtype() == candle_core::DType::F32
            && y.device().is_cuda()
        {
            let flat = bias.map(|b| b.flatten_all()).transpose()?;
            return k.bias_act(&y, flat.as_ref(), self.silu);
        }
        finish(y, bias, self.silu)
    }
}

/// `y + bias` (a `(1, c, 1…)` tensor), then SiLU if asked, with candle's ops.
pub(crate) fn finish(y: Tensor, bias: Option<&Tensor>, silu: bool) -> candle_core::Result<Tensor> {
    let y = match bias {
        Some(b) => y.broadcast_add(b)?,
        None => y,
    };
    if silu { y.silu() } else { Ok(y) }
}

/// A convolution through candle: symmetric padding and equal strides go to its kernels;
/// the rest is padded or subsampled around them.
fn plain(
    x: &Tensor,
    w: &Tensor,
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    pads: &[(usize, usize)],
    group: usize,
) -> candle_core::Result<Tensor> {
    let spatial = kernel.len();
    let symmetric = pads.iter().all(|&(a, b)| a == b && a == pads[0].0);
    let (x, pad) = if symmetric {
        (x.clone(), pads[0].0)
    } else {
        let mut x = x.clone();
        for (i, &(a, b)) in pads.iter().enumerate() {
            x = x.pad_with_zeros(2 + i, a, b)?;
        }
        (x, 0)
    };
    let same_stride = strides.iter().all(|&s| s == strides[0]);
    let stride = if same_stride { strides[0] } else { 1 };
    let dilation = dilations[0];
    // A 1×1 convolution is a matrix product; skip candle's copy into columns.
    let y = if group == 1 && kernel.iter().all(|&k| k == 1) && pad == 0 && stride == 1 {
        let n = x.dim(0)?;
        let c_in = x.dim(1)?;
        let c_out = w.dim(0)?;
        let rest: Vec<usize> = x.dims()[2..].to_vec();
        let hw: usize = rest.iter().product();
        let w2 = w.reshape((c_out, c_in))?;
        let x3 = x.contiguous()?.reshape((n, c_in, hw))?;
        let y = if n == 1 {
            w2.matmul(&x3.squeeze(0)?)?.unsqueeze(0)?
        } else {
            w2.broadcast_left(n)?.matmul(&x3)?
        };
        let mut shape = vec![n, c_out];
        shape.extend(rest);
        y.reshape(shape)?
    } else if spatial == 1 {
        x.conv1d(w, pad, stride, dilation, group)?
    } else {
        x.conv2d(w, pad, stride, dilation, group)?
    };
    if same_stride {
        return Ok(y);
    }
    let mut y = y;
    for (i, &s) in strides.iter().enumerate() {
        let size = y.dim(2 + i)?;
        y = strided(&y, 2 + i, 0, size.div_ceil(s), s)?;
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::AutoPad;

    #[test]
    fn same_padding_puts_the_odd_cell_where_asked() {
        let p = |a: AutoPad| a.pads(&[], &[7, 8], &[3, 3], &[2, 2], &[1, 1]);
        assert_eq!(p(AutoPad::SameUpper), vec![(1, 1), (0, 1)]);
        assert_eq!(p(AutoPad::SameLower), vec![(1, 1), (1, 0)]);
        assert_eq!(p(AutoPad::Valid), vec![(0, 0), (0, 0)]);
        let explicit = AutoPad::NotSet.pads(&[1, 0, 2, 1], &[9, 8], &[3, 3], &[1, 1], &[1, 1]);
        assert_eq!(explicit, vec![(1, 2), (0, 1)]);
    }
}
