//! `cv2.resize` on 8-bit 3-channel images, following OpenCV 5.0's CPU paths:
//!
//! - `INTER_LINEAR` and enlarging `INTER_AREA`: separable 11-bit fixed-point weights, a
//!   horizontal pass into `i32`, and a vertical pass that rounds every element the way
//!   OpenCV's vector code does (rows pre-shifted by 4 bits, 16-bit high products, 2 more
//!   bits of rounding), which differs from the exact 22-bit rounding.
//! - `INTER_LANCZOS4`: 8 taps, float coefficients quantised to 11 bits, integer sums.
//! - shrinking `INTER_AREA`: the integer-factor fast path (with its 2×2 rounding shortcut)
//!   or the generic path with `f32` cell weights, summed in OpenCV's order.
//!
//! The horizontal pass of each source row is computed once and shared by all output rows
//! (OpenCV recomputes some per thread; the values are the same).

use std::borrow::Cow;

use super::Interpolation;
use super::par::for_each_row;
use crate::media::Frame;

/// Channels per pixel.
const CN: usize = 3;
/// `INTER_RESIZE_COEF_SCALE`: 11-bit fixed-point weights.
const COEF_SCALE: f32 = 2048.0;

/// The frame's bytes, exactly `width · height · 3` of them (a short buffer reads as black).
pub(super) fn pixels(frame: &Frame) -> Cow<'_, [u8]> {
    let len = frame.width * frame.height * CN;
    if frame.rgb.len() == len {
        Cow::Borrowed(&frame.rgb)
    } else {
        let mut rgb = frame.rgb.clone();
        rgb.resize(len, 0);
        Cow::Owned(rgb)
    }
}

/// `cv2.resize(src, (width, height), interpolation)`.
pub(super) fn resize(
    src: &Frame,
    width: usize,
    height: usize,
    interpolation: Interpolation,
) -> Frame {
    let (sw, sh) = (src.width, src.height);
    if width == 0 || height == 0 || sw == 0 || sh == 0 {
        // OpenCV refuses these; an empty or black frame is the harmless answer.
        return Frame {
            width,
            height,
            rgb: vec![0; width * height * CN],
        };
    }
    let data = pixels(src);
    if (width, height) == (sw, sh) {
        return Frame {
            width,
            height,
            rgb: data.into_owned(),
        };
    }

    let inv_scale_x = width as f64 / sw as f64;
    let inv_scale_y = height as f64 / sh as f64;
    let scale_x = 1.0 / inv_scale_x;
    let scale_y = 1.0 / inv_scale_y;
    // `saturate_cast<int>(double)` rounds half to even.
    let iscale_x = scale_x.round_ties_even();
    let iscale_y = scale_y.round_ties_even();
    let area_fast =
        (scale_x - iscale_x).abs() < f64::EPSILON && (scale_y - iscale_y).abs() < f64::EPSILON;

    let mut interpolation = interpolation;
    // OpenCV treats an exact 2× linear shrink as area averaging.
    if interpolation == Interpolation::Linear && area_fast && iscale_x == 2.0 && iscale_y == 2.0 {
        interpolation = Interpolation::Area;
    }
    let mut dst = vec![0u8; width * height * CN];
    let geometry = Geometry {
        sw,
        sh,
        dw: width,
        dh: height,
    };
    match interpolation {
        Interpolation::Area if scale_x >= 1.0 && scale_y >= 1.0 => {
            if area_fast {
                area_fast_resize(
                    &data,
                    geometry,
                    iscale_x as usize,
                    iscale_y as usize,
                    &mut dst,
                );
            } else {
                area_resize(&data, geometry, scale_x, scale_y, &mut dst);
            }
        }
        Interpolation::Area => separable_resize(
            &data,
            geometry,
            Kernel::AreaLinear,
            (scale_x, scale_y),
            (inv_scale_x, inv_scale_y),
            &mut dst,
        ),
        Interpolation::Linear => separable_resize(
            &data,
            geometry,
            Kernel::Linear,
            (scale_x, scale_y),
            (inv_scale_x, inv_scale_y),
            &mut dst,
        ),
        Interpolation::Lanczos4 => separable_resize(
            &data,
            geometry,
            Kernel::Lanczos4,
            (scale_x, scale_y),
            (inv_scale_x, inv_scale_y),
            &mut dst,
        ),
    }
    Frame {
        width,
        height,
        rgb: dst,
    }
}

/// Source and destination sizes in pixels.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    sw: usize,
    sh: usize,
    dw: usize,
    dh: usize,
}

/// The interpolation kernels of OpenCV's separable resize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// `INTER_LINEAR`: pixel centres aligned.
    Linear,
    /// `INTER_AREA` when enlarging: bilinear with OpenCV's "area" phase.
    AreaLinear,
    /// `INTER_LANCZOS4`.
    Lanczos4,
}

impl Kernel {
    fn taps(self) -> usize {
        match self {
            Kernel::Lanczos4 => 8,
            Kernel::Linear | Kernel::AreaLinear => 2,
        }
    }
}

/// One axis's source positions and fixed-point weights.
struct AxisTable {
    /// First source pixel of each destination pixel's window (before the kernel's offset).
    ofs: Vec<i32>,
    /// `taps` weights per destination pixel.
    coef: Vec<i16>,
    /// Destination pixels below this may reach left of the source (x axis only).
    min: usize,
    /// Destination pixels from this on may reach right of the source (x axis only).
    max: usize,
}

/// `interpolateLanczos4`: float weights, normalised in float, from double sines.
fn lanczos4_weights(x: f32) -> [f32; 8] {
    const S45: f64 = std::f64::consts::FRAC_1_SQRT_2;
    const CS: [[f64; 2]; 8] = [
        [1.0, 0.0],
        [-S45, -S45],
        [0.0, 1.0],
        [S45, -S45],
        [-1.0, 0.0],
        [S45, S45],
        [0.0, -1.0],
        [-S45, S45],
    ];
    let mut coeffs = [0f32; 8];
    if x < f32::EPSILON {
        coeffs[3] = 1.0;
        return coeffs;
    }
    let pi = std::f64::consts::PI;
    // The float sums `x + 3` and `x + 3 - i` come first, as in OpenCV.
    let y0 = f64::from(-(x + 3.0)) * pi * 0.25;
    let (s0, c0) = (y0.sin(), y0.cos());
    let mut sum = 0f32;
    for (i, c) in coeffs.iter_mut().enumerate() {
        let y = f64::from(-(x + 3.0 - i as f32)) * pi * 0.25;
        *c = ((CS[i][0] * s0 + CS[i][1] * c0) / (y * y)) as f32;
        sum += *c;
    }
    let inv = 1.0 / sum;
    for c in &mut coeffs {
        *c *= inv;
    }
    coeffs
}

/// `saturate_cast<short>(w * INTER_RESIZE_COEF_SCALE)`.
fn fixed_weight(w: f32) -> i16 {
    (w * COEF_SCALE)
        .round_ties_even()
        .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// The weights and offsets OpenCV's `hal::resize` prepares for one axis.
///
/// Only the x axis clamps linear windows at the borders (`clamp`); OpenCV leaves the y
/// weights alone and clamps the rows instead, which gives different fixed-point weights.
fn axis_table(
    src_len: usize,
    dst_len: usize,
    kernel: Kernel,
    scale: f64,
    inv_scale: f64,
    clamp: bool,
) -> AxisTable {
    let taps = kernel.taps();
    let half = (taps / 2) as i64;
    let mut table = AxisTable {
        ofs: Vec::with_capacity(dst_len),
        coef: Vec::with_capacity(dst_len * taps),
        min: 0,
        max: dst_len,
    };
    for d in 0..dst_len {
        let (mut s, mut f) = if kernel == Kernel::AreaLinear {
            let s = (d as f64 * scale).floor() as i64;
            let f = ((d + 1) as f64 - (s + 1) as f64 * inv_scale) as f32;
            (s, if f <= 0.0 { 0.0 } else { f - f.floor() })
        } else {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let s = f.floor();
            (s as i64, f - s)
        };
        let linear = clamp && kernel != Kernel::Lanczos4;
        if s < half - 1 {
            table.min = d + 1;
            if s < 0 && linear {
                f = 0.0;
                s = 0;
            }
        }
        if s + half >= src_len as i64 {
            table.max = table.max.min(d);
            if s >= src_len as i64 - 1 && linear {
                f = 0.0;
                s = src_len as i64 - 1;
            }
        }
        table.ofs.push(s as i32);
        match kernel {
            Kernel::Lanczos4 => table.coef.extend(lanczos4_weights(f).map(fixed_weight)),
            Kernel::Linear | Kernel::AreaLinear => {
                table.coef.push(fixed_weight(1.0 - f));
                table.coef.push(fixed_weight(f));
            }
        }
    }
    table
}

/// `clip(x, 0, len)` of OpenCV's resize invoker: clamps a row index into the source.
fn clamp_index(i: i64, len: usize) -> usize {
    i.clamp(0, len as i64 - 1) as usize
}

/// `resizeGeneric_` for 8-bit data: linear, area-as-linear and Lanczos4.
fn separable_resize(
    src: &[u8],
    g: Geometry,
    kernel: Kernel,
    (scale_x, scale_y): (f64, f64),
    (inv_scale_x, inv_scale_y): (f64, f64),
    dst: &mut [u8],
) {
    let taps = kernel.taps();
    let xt = axis_table(g.sw, g.dw, kernel, scale_x, inv_scale_x, true);
    let yt = axis_table(g.sh, g.dh, kernel, scale_y, inv_scale_y, false);
    let row_len = g.dw * CN;

    // Which source rows the vertical pass reads (each once, whatever the caching order:
    // the horizontal pass is integer arithmetic, so reuse cannot change a value).
    let first_tap = 1 - (taps / 2) as i64;
    let mut needed = vec![false; g.sh];
    for &sy in &yt.ofs {
        for k in 0..taps as i64 {
            needed[clamp_index(i64::from(sy) + first_tap + k, g.sh)] = true;
        }
    }
    let rows: Vec<usize> = (0..g.sh).filter(|&r| needed[r]).collect();
    let mut slot = vec![usize::MAX; g.sh];
    for (i, &r) in rows.iter().enumerate() {
        slot[r] = i;
    }
    let mut hbuf = vec![0i32; rows.len() * row_len];
    for_each_row(&mut hbuf, row_len, row_len * taps, |i, out| {
        let s = &src[rows[i] * g.sw * CN..(rows[i] + 1) * g.sw * CN];
        match kernel {
            Kernel::Lanczos4 => hresize_lanczos4(s, g.sw, &xt, out),
            Kernel::Linear | Kernel::AreaLinear => hresize_linear(s, &xt, out),
        }
    });

    for_each_row(dst, row_len, row_len * taps, |dy, out| {
        let sy = i64::from(yt.ofs[dy]);
        let beta = &yt.coef[dy * taps..(dy + 1) * taps];
        let row = |k: usize| {
            let r = slot[clamp_index(sy + first_tap + k as i64, g.sh)];
            &hbuf[r * row_len..(r + 1) * row_len]
        };
        match kernel {
            Kernel::Lanczos4 => {
                let r: [&[i32]; 8] = std::array::from_fn(row);
                vresize_lanczos4(&r, beta, out);
            }
            Kernel::Linear | Kernel::AreaLinear => {
                vresize_linear(row(0), row(1), beta[0], beta[1], out)
            }
        }
    });
}

/// `HResizeLinear<uchar, int, short>`: two taps, or the edge pixel times one past `max`.
fn hresize_linear(s: &[u8], xt: &AxisTable, out: &mut [i32]) {
    for (dx, d) in out.chunks_exact_mut(CN).enumerate() {
        let sx = xt.ofs[dx] as usize * CN;
        if dx < xt.max {
            let (a0, a1) = (i32::from(xt.coef[dx * 2]), i32::from(xt.coef[dx * 2 + 1]));
            for c in 0..CN {
                d[c] = i32::from(s[sx + c]) * a0 + i32::from(s[sx + c + CN]) * a1;
            }
        } else {
            for c in 0..CN {
                d[c] = i32::from(s[sx + c]) * COEF_SCALE as i32;
            }
        }
    }
}

/// `HResizeLanczos4<uchar, int, short>`: eight taps, edge pixels repeated near the borders.
fn hresize_lanczos4(s: &[u8], sw: usize, xt: &AxisTable, out: &mut [i32]) {
    for (dx, d) in out.chunks_exact_mut(CN).enumerate() {
        let a = &xt.coef[dx * 8..dx * 8 + 8];
        let sx = i64::from(xt.ofs[dx]) - 3;
        if dx >= xt.min && dx < xt.max {
            let base = sx as usize * CN;
            for c in 0..CN {
                let mut v = 0i32;
                for (k, &w) in a.iter().enumerate() {
                    v = v.wrapping_add(i32::from(s[base + k * CN + c]) * i32::from(w));
                }
                d[c] = v;
            }
        } else {
            for c in 0..CN {
                let mut v = 0i32;
                for (k, &w) in a.iter().enumerate() {
                    let p = clamp_index(sx + k as i64, sw);
                    v = v.wrapping_add(i32::from(s[p * CN + c]) * i32::from(w));
                }
                d[c] = v;
            }
        }
    }
}

/// `FixedPtCast<int, uchar, 22>`: round the 22-bit fixed-point sum and saturate.
fn fixed_to_u8(v: i32) -> u8 {
    (v.wrapping_add(1 << 21) >> 22).clamp(0, 255) as u8
}

/// `VResizeLinear<uchar, int, short>` as OpenCV 5.0 runs it on x86: every element takes
/// the vector formula (rows pre-shifted by 4 bits and saturated to `i16`, products keeping
/// their high 16 bits, the sum rounded by 2 more bits), which rounds differently from the
/// exact 22-bit sum.
fn vresize_linear(s0: &[i32], s1: &[i32], b0: i16, b1: i16, out: &mut [u8]) {
    let mul_hi = |v: i32, b: i16| -> i16 {
        let v = (v >> 4).clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        ((v * i32::from(b)) >> 16) as i16
    };
    for ((o, &d0), &d1) in out.iter_mut().zip(s0).zip(s1) {
        let t = mul_hi(d0, b0).saturating_add(mul_hi(d1, b1));
        *o = (i32::from(t.saturating_add(2)) >> 2).clamp(0, 255) as u8;
    }
}

/// `VResizeLanczos4<uchar, int, short>` (scalar only in OpenCV).
fn vresize_lanczos4(rows: &[&[i32]; 8], beta: &[i16], out: &mut [u8]) {
    for (x, o) in out.iter_mut().enumerate() {
        let mut v = 0i32;
        for k in 0..8 {
            v = v.wrapping_add(rows[k][x].wrapping_mul(i32::from(beta[k])));
        }
        *o = fixed_to_u8(v);
    }
}

/// `resizeAreaFast_<uchar, int>`: whole `ix × iy` cells averaged.
fn area_fast_resize(src: &[u8], g: Geometry, ix: usize, iy: usize, dst: &mut [u8]) {
    let row_len = g.dw * CN;
    let src_row = g.sw * CN;
    let area = ix * iy;
    let scale = 1.0f32 / area as f32;
    // Columns whose cell lies wholly inside the source.
    let full = (g.sw / ix) * CN;
    let shortcut = ix == 2 && iy == 2;
    for_each_row(dst, row_len, row_len * area, |dy, out| {
        let sy0 = dy * iy;
        if sy0 >= g.sh {
            out.fill(0);
            return;
        }
        let w = if sy0 + iy <= g.sh {
            full.min(row_len)
        } else {
            0
        };
        let at = |sy: usize, sx: usize| i32::from(src[sy * src_row + sx]);
        for (dx, o) in out[..w].iter_mut().enumerate() {
            let (px, c) = (dx / CN, dx % CN);
            let sx0 = px * ix * CN + c;
            if shortcut {
                // OpenCV's 2×2 path rounds half up in integers.
                let sum =
                    at(sy0, sx0) + at(sy0, sx0 + CN) + at(sy0 + 1, sx0) + at(sy0 + 1, sx0 + CN);
                *o = ((sum + 2) >> 2) as u8;
            } else {
                let mut sum = 0i32;
                for sy in 0..iy {
                    for sx in 0..ix {
                        sum += at(sy0 + sy, sx0 + sx * CN);
                    }
                }
                *o = round_f32_to_u8(sum as f32 * scale);
            }
        }
        for (dx, o) in out.iter_mut().enumerate().skip(w) {
            let (px, c) = (dx / CN, dx % CN);
            let sx0 = px * ix * CN + c;
            let (mut sum, mut count) = (0i32, 0i32);
            for sy in 0..iy {
                if sy0 + sy >= g.sh {
                    break;
                }
                for sx in 0..ix {
                    if sx0 + sx * CN >= src_row {
                        break;
                    }
                    sum += at(sy0 + sy, sx0 + sx * CN);
                    count += 1;
                }
            }
            *o = if count == 0 {
                0
            } else {
                round_f32_to_u8(sum as f32 / count as f32)
            };
        }
    });
}

/// `saturate_cast<uchar>(float)`: round half to even, then saturate.
fn round_f32_to_u8(v: f32) -> u8 {
    v.round_ties_even().clamp(0.0, 255.0) as u8
}

/// One source sample's share of one destination sample (`DecimateAlpha`).
#[derive(Debug, Clone, Copy)]
struct Share {
    /// Destination index.
    di: usize,
    /// Source index.
    si: usize,
    /// Weight.
    alpha: f32,
}

/// `computeResizeAreaTab`: the cells of one axis, in OpenCV's order.
fn area_table(src_len: usize, dst_len: usize, scale: f64) -> Vec<Share> {
    let mut tab = Vec::with_capacity(src_len * 2);
    for dx in 0..dst_len {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        let cell = scale.min(src_len as f64 - fsx1);
        let mut sx1 = fsx1.ceil() as i64;
        let mut sx2 = fsx2.floor() as i64;
        sx2 = sx2.min(src_len as i64 - 1);
        sx1 = sx1.min(sx2);
        if sx1 as f64 - fsx1 > 1e-3 {
            tab.push(Share {
                di: dx,
                si: (sx1 - 1) as usize,
                alpha: ((sx1 as f64 - fsx1) / cell) as f32,
            });
        }
        for sx in sx1..sx2 {
            tab.push(Share {
                di: dx,
                si: sx as usize,
                alpha: (1.0 / cell) as f32,
            });
        }
        if fsx2 - sx2 as f64 > 1e-3 {
            tab.push(Share {
                di: dx,
                si: sx2 as usize,
                alpha: ((fsx2 - sx2 as f64).min(1.0).min(cell) / cell) as f32,
            });
        }
    }
    tab
}

/// `resizeArea_<uchar, float>`: generic shrink by cell coverage, in `f32`.
fn area_resize(src: &[u8], g: Geometry, scale_x: f64, scale_y: f64, dst: &mut [u8]) {
    let xtab = area_table(g.sw, g.dw, scale_x);
    let ytab = area_table(g.sh, g.dh, scale_y);
    let row_len = g.dw * CN;
    let src_row = g.sw * CN;

    // Each source row's horizontal sums; a row's sums do not depend on which destination
    // row uses them, so computing them once gives OpenCV's values.
    let mut needed = vec![false; g.sh];
    for share in &ytab {
        needed[share.si] = true;
    }
    let rows: Vec<usize> = (0..g.sh).filter(|&r| needed[r]).collect();
    let mut slot = vec![usize::MAX; g.sh];
    for (i, &r) in rows.iter().enumerate() {
        slot[r] = i;
    }
    let mut hbuf = vec![0f32; rows.len() * row_len];
    for_each_row(&mut hbuf, row_len, xtab.len() * CN, |i, buf| {
        let s = &src[rows[i] * src_row..(rows[i] + 1) * src_row];
        for share in &xtab {
            let (d, si) = (share.di * CN, share.si * CN);
            for c in 0..CN {
                buf[d + c] += f32::from(s[si + c]) * share.alpha;
            }
        }
    });

    // Where each destination row's entries start in `ytab` (they come grouped by row).
    let mut start = vec![ytab.len(); g.dh + 1];
    for (k, share) in ytab.iter().enumerate() {
        if k == 0 || share.di != ytab[k - 1].di {
            start[share.di] = k;
        }
    }
    for_each_row(dst, row_len, row_len * 4, |dy, out| {
        let mut sum = vec![0f32; row_len];
        let entries = &ytab[start[dy]..start[dy + 1]];
        for (k, share) in entries.iter().enumerate() {
            let r = slot[share.si];
            let buf = &hbuf[r * row_len..(r + 1) * row_len];
            if k == 0 {
                for (s, &b) in sum.iter_mut().zip(buf) {
                    *s = share.alpha * b;
                }
            } else {
                for (s, &b) in sum.iter_mut().zip(buf) {
                    *s += share.alpha * b;
                }
            }
        }
        for (o, &s) in out.iter_mut().zip(&sum) {
            *o = round_f32_to_u8(s);
        }
    });
}
