//! Conv (1-D and 2-D; groups, depthwise, asymmetric pads, auto_pad).

use candle_core::{Device, Tensor};

use super::util::{input, msg, strided};
use super::{Compiled, NodeCtx, Op};

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
    /// Per kernel tap, `(1, c_out, 1, 1)`: the depthwise fast path on a GPU.
    depthwise_taps: Option<Vec<Tensor>>,
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
    // Depthwise (one input channel per group) on a GPU: candle would run one conv per
    // channel; a sum of shifted, scaled copies is a few dozen kernels instead.
    let depthwise_taps = match (&weight, dev) {
        (Some(w), Device::Cuda(_)) if group > 1 && w.rank() == 4 && w.dim(1).map_err(err)? == 1 => {
            let (c_out, _, kh, kw) = w.dims4().map_err(err)?;
            let mut taps = Vec::with_capacity(kh * kw);
            for i in 0..kh {
                for j in 0..kw {
                    let t = w
                        .narrow(2, i, 1)
                        .and_then(|t| t.narrow(3, j, 1))
                        .and_then(|t| t.reshape((1, c_out, 1, 1)))
                        .and_then(|t| t.contiguous())
                        .map_err(err)?;
                    taps.push(t);
                }
            }
            Some(taps)
        }
        _ => None,
    };
    Ok(Box::new(Conv {
        weight,
        bias,
        kernel,
        strides,
        dilations,
        pads,
        auto_pad,
        group,
        depthwise_taps,
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
        let y = if let Some(taps) = &self.depthwise_taps {
            depthwise(x, taps, &kernel, &strides, &dilations, &pads, self.group)?
        } else {
            plain(x, &w, &kernel, &strides, &dilations, &pads, self.group)?
        };
        let bias = match (&self.bias, inputs.get(2).and_then(|b| b.as_ref())) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(b)) => {
                let mut shape = vec![1, b.elem_count()];
                shape.extend(std::iter::repeat_n(1, spatial));
                Some(b.reshape(shape)?)
            }
            (None, None) => None,
        };
        Ok(vec![match bias {
            Some(b) => y.broadcast_add(&b)?,
            None => y,
        }])
    }
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

/// A depthwise convolution (`group` groups of one input channel each) as a sum over the
/// kernel taps of shifted input windows times the tap's per-channel weight.
fn depthwise(
    x: &Tensor,
    taps: &[Tensor],
    kernel: &[usize],
    strides: &[usize],
    dilations: &[usize],
    pads: &[(usize, usize)],
    group: usize,
) -> candle_core::Result<Tensor> {
    let (n, c, _, _) = x.dims4()?;
    if c != group {
        return Err(msg(format!(
            "Conv: input has {c} channels, the weight expects {group} groups of one"
        )));
    }
    let mut x = x.clone();
    for (i, &(a, b)) in pads.iter().enumerate() {
        x = x.pad_with_zeros(2 + i, a, b)?;
    }
    let c_out = taps[0].dim(1)?;
    if c_out != c {
        // Channel multiplier m: output channel o reads input channel o / m.
        let m = c_out / c;
        let (_, _, h, w) = x.dims4()?;
        x = x
            .unsqueeze(2)?
            .broadcast_as((n, c, m, h, w))?
            .reshape((n, c_out, h, w))?;
    }
    let (_, _, hp, wp) = x.dims4()?;
    let span = |i: usize| (kernel[i] - 1) * dilations[i] + 1;
    let (sh, sw) = (span(0), span(1));
    if hp < sh || wp < sw {
        return Err(msg(format!(
            "Conv: padded input {hp}×{wp} is smaller than the kernel span {sh}×{sw}"
        )));
    }
    let ho = (hp - sh) / strides[0] + 1;
    let wo = (wp - sw) / strides[1] + 1;
    let mut acc: Option<Tensor> = None;
    for i in 0..kernel[0] {
        let rows = strided(&x, 2, i * dilations[0], ho, strides[0])?;
        for j in 0..kernel[1] {
            let win = strided(&rows, 3, j * dilations[1], wo, strides[1])?;
            let term = win.broadcast_mul(&taps[i * kernel[1] + j])?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
    }
    acc.ok_or_else(|| msg("Conv: empty kernel"))
}
