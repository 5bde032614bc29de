//! `cv2.getAffineTransform` and `cv2.warpAffine` (bilinear, constant zero border).
//!
//! OpenCV 5.0 warps 8-bit images with float kernels, not the older 1/32-pixel fixed-point
//! remap: the inverted matrix is rounded to `f32`, source coordinates come from fused
//! multiply-adds, and the bilinear blend is three fused multiply-adds rounded half to even.
//! On x86-64 with AVX2 (what OpenCV dispatches to there, AVX-512 machines included) the
//! kernel takes each row in blocks of `WARP_BLOCK` pixels; a row's last
//! `width % WARP_BLOCK` pixels go through OpenCV's scalar code, whose coordinate sums are
//! fused differently by the compiler, and are reproduced as such.

use super::par::for_each_row;
use super::resize::pixels;
use crate::media::Frame;

/// Pixels per vector step of OpenCV's AVX2 warp kernel (two vectors of eight `f32`).
const WARP_BLOCK: usize = 16;

/// `cv2.getAffineTransform`: solves the 6×6 system with OpenCV's LU (partial pivoting, no
/// fused operations), so the matrix is the same to the last bit.
pub(super) fn get_affine_transform(src: [[f32; 2]; 3], dst: [[f32; 2]; 3]) -> [[f64; 3]; 2] {
    let mut a = [[0f64; 6]; 6];
    let mut b = [0f64; 6];
    for i in 0..3 {
        let (x, y) = (f64::from(src[i][0]), f64::from(src[i][1]));
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0];
        b[2 * i] = f64::from(dst[i][0]);
        b[2 * i + 1] = f64::from(dst[i][1]);
    }
    let x = lu_solve(a, b).unwrap_or([0.0; 6]);
    [[x[0], x[1], x[2]], [x[3], x[4], x[5]]]
}

/// OpenCV's `LUImpl` for one right-hand side; `None` when a pivot is (nearly) zero, where
/// `cv::solve` leaves a zero matrix.
fn lu_solve(mut a: [[f64; 6]; 6], mut b: [f64; 6]) -> Option<[f64; 6]> {
    const M: usize = 6;
    let eps = f64::EPSILON * 100.0;
    for i in 0..M {
        let mut k = i;
        for j in i + 1..M {
            if a[j][i].abs() > a[k][i].abs() {
                k = j;
            }
        }
        if a[k][i].abs() < eps {
            return None;
        }
        if k != i {
            a.swap(i, k);
            b.swap(i, k);
        }
        let d = -1.0 / a[i][i];
        let pivot = a[i];
        for j in i + 1..M {
            let alpha = a[j][i] * d;
            for (v, &p) in a[j].iter_mut().zip(&pivot).skip(i + 1) {
                *v += alpha * p;
            }
            b[j] += alpha * b[i];
        }
    }
    for i in (0..M).rev() {
        let mut s = b[i];
        for (&u, &x) in a[i].iter().zip(&b).skip(i + 1) {
            s -= u * x;
        }
        b[i] = s / a[i][i];
    }
    Some(b)
}

/// `cv::warpAffine`'s inversion of a forward matrix (double precision, unfused).
fn invert_affine(m: &[[f64; 3]; 2]) -> [f64; 6] {
    let [[m0, m1, m2], [m3, m4, m5]] = *m;
    let d = m0 * m4 - m1 * m3;
    let d = if d != 0.0 { 1.0 / d } else { 0.0 };
    let (a11, a22) = (m4 * d, m0 * d);
    let (i0, i1, i3, i4) = (a11, m1 * -d, m3 * -d, a22);
    let b1 = -i0 * m2 - i1 * m5;
    let b2 = -i3 * m2 - i4 * m5;
    [i0, i1, b1, i3, i4, b2]
}

/// `cv2.warpAffine(src, m, (width, height), flags=INTER_LINEAR)`, border constant 0.
pub(super) fn warp_affine_linear(
    src: &Frame,
    m: &[[f64; 3]; 2],
    width: usize,
    height: usize,
) -> Frame {
    let mut dst = vec![0u8; width * height * 3];
    if src.width == 0 || src.height == 0 || width == 0 {
        return Frame {
            width,
            height,
            rgb: dst,
        };
    }
    let data = pixels(src);
    let inv = invert_affine(m).map(|v| v as f32);
    let (sw, sh) = (src.width as i64, src.height as i64);
    let row = src.width * 3;
    let vec_end = width / WARP_BLOCK * WARP_BLOCK;

    // The four neighbours of (ix, iy), zero outside the source.
    let fetch = |ix: i64, iy: i64| -> [[f32; 3]; 4] {
        let mut p = [[0f32; 3]; 4];
        for (n, (dx, dy)) in [(0, 0), (1, 0), (0, 1), (1, 1)].into_iter().enumerate() {
            let (x, y) = (ix + dx, iy + dy);
            if (0..sw).contains(&x) && (0..sh).contains(&y) {
                let at = y as usize * row + x as usize * 3;
                for c in 0..3 {
                    p[n][c] = f32::from(data[at + c]);
                }
            }
        }
        p
    };

    for_each_row(&mut dst, width * 3, width * 12, |y, out| {
        let yf = y as f32;
        // Vector kernel: the row terms in float, then one fused multiply-add per pixel.
        let mx = yf * inv[1] + inv[2];
        let my = yf * inv[4] + inv[5];
        for x in 0..vec_end {
            let xf = x as f32;
            let sx = inv[0].mul_add(xf, mx);
            let sy = inv[3].mul_add(xf, my);
            let (ixf, iyf) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - ixf, sy - iyf);
            let p = fetch(ixf as i64, iyf as i64);
            for c in 0..3 {
                let top = fx.mul_add(p[1][c] - p[0][c], p[0][c]);
                let bottom = fx.mul_add(p[3][c] - p[2][c], p[2][c]);
                let v = fy.mul_add(bottom - top, top);
                out[x * 3 + c] = v.round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
        // Scalar tail: `x·m0 + y·m1 + m2` with the first product fused into the sum, the
        // blend fused as in the kernel, as GCC compiles OpenCV's scalar code.
        for x in vec_end..width {
            let xf = x as f32;
            let sx = xf.mul_add(inv[0], yf * inv[1]) + inv[2];
            let sy = xf.mul_add(inv[3], yf * inv[4]) + inv[5];
            let (ixf, iyf) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - ixf, sy - iyf);
            let p = fetch(ixf as i64, iyf as i64);
            for c in 0..3 {
                let v0 = fx.mul_add(p[1][c] - p[0][c], p[0][c]);
                let v1 = fx.mul_add(p[3][c] - p[2][c], p[2][c]);
                let v = fy.mul_add(v1 - v0, v0);
                out[x * 3 + c] = v.round_ties_even().clamp(0.0, 255.0) as u8;
            }
        }
    });
    Frame {
        width,
        height,
        rgb: dst,
    }
}
