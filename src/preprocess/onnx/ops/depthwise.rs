//! Depthwise convolution (one input channel per group; RTMPose's 5×5 convolutions).
//! candle runs a grouped convolution as one convolution per group. On a GPU this is the
//! runner's own kernel (`cuda.rs`, bias and SiLU included), or where NVRTC is missing a
//! sum over the kernel taps of shifted windows times per-channel weights (a few dozen
//! candle kernels); on the CPU a direct loop over channel planes.

use candle_core::{DType, Device, Tensor};

use super::conv::{Geometry, finish};
use super::util::{msg, strided};

/// A constant depthwise weight `(c_out, 1, kh, kw)`, prepared for its device.
pub(crate) enum Depthwise {
    /// The runner's CUDA kernel (bias and SiLU included).
    #[cfg(feature = "cuda")]
    Kernel {
        kernels: std::sync::Arc<super::cuda::Kernels>,
        w: Tensor,
    },
    /// Per tap, `(1, c_out, 1, 1)` on the GPU.
    Taps { taps: Vec<Tensor>, c_out: usize },
    /// The weight as f32 values on the CPU.
    Cpu {
        w: Vec<f32>,
        c_out: usize,
        kh: usize,
        kw: usize,
    },
}

impl Depthwise {
    /// Prepares `w` for `device`.
    pub(crate) fn new(w: &Tensor, device: &Device) -> candle_core::Result<Self> {
        let (c_out, _, kh, kw) = w.dims4()?;
        if device.is_cpu() {
            let w = w.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            return Ok(Self::Cpu { w, c_out, kh, kw });
        }
        let w = w.to_device(device)?;
        #[cfg(feature = "cuda")]
        if let Ok(kernels) = super::cuda::kernels(device) {
            return Ok(Self::Kernel {
                kernels,
                w: w.to_dtype(DType::F32)?.contiguous()?,
            });
        }
        let mut taps = Vec::with_capacity(kh * kw);
        for i in 0..kh {
            for j in 0..kw {
                taps.push(
                    w.narrow(2, i, 1)?
                        .narrow(3, j, 1)?
                        .reshape((1, c_out, 1, 1))?
                        .contiguous()?,
                );
            }
        }
        Ok(Self::Taps { taps, c_out })
    }

    /// `silu?(conv(x) + bias)` for `x` `(n, c, h, w)`; `bias` is `(1, c_out, 1, 1)`.
    pub(crate) fn run(
        &self,
        x: &Tensor,
        geo: &Geometry,
        bias: Option<&Tensor>,
        silu: bool,
    ) -> candle_core::Result<Tensor> {
        let y = self.conv(x, geo, bias, silu)?;
        match self {
            #[cfg(feature = "cuda")]
            Self::Kernel { .. } => Ok(y),
            _ => finish(y, bias, silu),
        }
    }

    /// The convolution alone (with bias and SiLU for the CUDA kernel).
    fn conv(
        &self,
        x: &Tensor,
        geo: &Geometry,
        bias: Option<&Tensor>,
        silu: bool,
    ) -> candle_core::Result<Tensor> {
        let Geometry {
            kernel,
            strides,
            dilations,
            pads,
        } = *geo;
        let (n, c, h, w) = x.dims4()?;
        let c_out = match self {
            #[cfg(feature = "cuda")]
            Self::Kernel { w, .. } => w.dim(0)?,
            Self::Taps { c_out, .. } | Self::Cpu { c_out, .. } => *c_out,
        };
        if c_out % c != 0 {
            return Err(msg(format!(
                "Conv: input has {c} channels, the depthwise weight {c_out} outputs"
            )));
        }
        let span = |i: usize| (kernel[i] - 1) * dilations[i] + 1;
        let (hp, wp) = (h + pads[0].0 + pads[0].1, w + pads[1].0 + pads[1].1);
        if hp < span(0) || wp < span(1) {
            return Err(msg(format!(
                "Conv: padded input {hp}×{wp} is smaller than the kernel span {}×{}",
                span(0),
                span(1)
            )));
        }
        let ho = (hp - span(0)) / strides[0] + 1;
        let wo = (wp - span(1)) / strides[1] + 1;
        let _ = (bias, silu);
        match self {
            #[cfg(feature = "cuda")]
            Self::Kernel { kernels, w } => {
                let shape = super::cuda::DepthwiseShape {
                    kernel: (kernel[0], kernel[1]),
                    stride: (strides[0], strides[1]),
                    dilation: (dilations[0], dilations[1]),
                    pad: (pads[0].0, pads[1].0),
                    out: (ho, wo),
                };
                let b = bias.map(|b| b.flatten_all()).transpose()?;
                kernels.depthwise(x, w, b.as_ref(), silu, &shape)
            }
            Self::Taps { taps, .. } => {
                let mut x = x.clone();
                for (i, &(a, b)) in pads.iter().enumerate() {
                    x = x.pad_with_zeros(2 + i, a, b)?;
                }
                if c_out != c {
                    // Channel multiplier m: output channel o reads input channel o / m.
                    let m = c_out / c;
                    let (_, _, hh, ww) = x.dims4()?;
                    x = x
                        .unsqueeze(2)?
                        .broadcast_as((n, c, m, hh, ww))?
                        .reshape((n, c_out, hh, ww))?;
                }
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
            Self::Cpu { w: wv, kh, kw, .. } => {
                let xs = x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                let geo = Plane {
                    h,
                    w,
                    ho,
                    wo,
                    kh: *kh,
                    kw: *kw,
                    stride: (strides[0], strides[1]),
                    dilation: (dilations[0], dilations[1]),
                    pad: (pads[0].0, pads[1].0),
                };
                let mut out = vec![0f32; n * c_out * ho * wo];
                let planes = n * c_out;
                // candle's thread count, but no thread for less than ~1M multiply-adds:
                // spawning costs more than small planes take.
                let macs = planes * ho * wo * geo.kh * geo.kw;
                let threads = candle_core::utils::get_num_threads()
                    .min(planes)
                    .min(macs / (1 << 20) + 1)
                    .max(1);
                let per = planes.div_ceil(threads);
                let m = c_out / c;
                std::thread::scope(|s| {
                    for (ti, chunk) in out.chunks_mut(per * ho * wo).enumerate() {
                        let (xs, wv, geo) = (&xs, wv.as_slice(), &geo);
                        s.spawn(move || {
                            for (k, plane) in chunk.chunks_mut(ho * wo).enumerate() {
                                let p = ti * per + k;
                                let (ni, o) = (p / c_out, p % c_out);
                                let src = &xs[(ni * c + o / m) * h * w..][..h * w];
                                let taps = &wv[o * geo.kh * geo.kw..][..geo.kh * geo.kw];
                                geo.plane(src, taps, plane);
                            }
                        });
                    }
                });
                Tensor::from_vec(out, (n, c_out, ho, wo), x.device())?.to_dtype(x.dtype())
            }
        }
    }
}

/// Sizes and steps of one depthwise plane.
struct Plane {
    h: usize,
    w: usize,
    ho: usize,
    wo: usize,
    kh: usize,
    kw: usize,
    stride: (usize, usize),
    dilation: (usize, usize),
    /// Padding before the first row and column.
    pad: (usize, usize),
}

impl Plane {
    /// `out` (ho × wo) = the correlation of `src` (h × w, zero outside) with `taps`.
    fn plane(&self, src: &[f32], taps: &[f32], out: &mut [f32]) {
        let (sh, sw) = self.stride;
        let (dh, dw) = self.dilation;
        let (ph, pw) = self.pad;
        for oy in 0..self.ho {
            let row = &mut out[oy * self.wo..][..self.wo];
            for ky in 0..self.kh {
                // Input row of this output row and tap; skip it when it is padding.
                let iy = oy * sh + ky * dh;
                if iy < ph || iy - ph >= self.h {
                    continue;
                }
                let line = &src[(iy - ph) * self.w..][..self.w];
                for kx in 0..self.kw {
                    let t = taps[ky * self.kw + kx];
                    let off = kx * dw;
                    // Output columns whose input column `ox·sw + off − pw` is inside.
                    let lo = pw.saturating_sub(off).div_ceil(sw);
                    let hi = (self.w + pw).saturating_sub(off).div_ceil(sw).min(self.wo);
                    if sw == 1 {
                        let start = lo + off - pw;
                        for (o, v) in row[lo..hi.max(lo)]
                            .iter_mut()
                            .zip(&line[start..start + hi.saturating_sub(lo)])
                        {
                            *o += t * v;
                        }
                    } else {
                        for (ox, o) in row.iter_mut().enumerate().take(hi).skip(lo) {
                            *o += t * line[ox * sw + off - pw];
                        }
                    }
                }
            }
        }
    }
}
