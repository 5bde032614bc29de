//! `flow_viz.flow_to_image` of RAFT's `core/utils/flow_viz.py` (Tom Runia's port of the
//! Middlebury colour coding, Baker et al. 2007): hue from the flow's direction on a
//! 55-colour wheel, saturation from its length relative to the longest vector.
//!
//! The arithmetic follows the NumPy code's dtypes: the flow and everything derived from it
//! up to the wheel position are float32 (NumPy 2 keeps Python scalars at the array's
//! precision); the fractional position and the colours are float64 (float32 minus int32
//! promotes, and the wheel is float64).

use crate::media::Frame;

/// Segment lengths of the colour wheel: red-yellow, yellow-green, green-cyan, cyan-blue,
/// blue-magenta, magenta-red.
const SEGMENTS: [usize; 6] = [15, 6, 4, 11, 13, 6];
/// Colours on the wheel.
const NCOLS: usize = 15 + 6 + 4 + 11 + 13 + 6;
/// Added to the largest radius before normalising (`epsilon` in `flow_to_image`).
const EPSILON: f32 = 1e-5;
/// Factor applied to colours of vectors longer than the largest radius ("out of range").
const OUT_OF_RANGE: f64 = 0.75;

/// `make_colorwheel()`: `NCOLS` RGB colours, 0..255, as float64.
fn colour_wheel() -> [[f64; 3]; NCOLS] {
    let mut wheel = [[0.0; 3]; NCOLS];
    // `np.floor(255 * np.arange(0, n) / n)`.
    let ramp = |i: usize, n: usize| (255 * i) as f64 / n as f64;
    let mut col = 0;
    // (channel held at 255, channel that ramps, whether it ramps down).
    let plan = [
        (0, 1, false),
        (1, 0, true),
        (1, 2, false),
        (2, 1, true),
        (2, 0, false),
        (0, 2, true),
    ];
    for (&n, &(full, ramped, down)) in SEGMENTS.iter().zip(&plan) {
        for i in 0..n {
            let value = ramp(i, n).floor();
            wheel[col + i][full] = 255.0;
            wheel[col + i][ramped] = if down { 255.0 - value } else { value };
        }
        col += n;
    }
    wheel
}

/// `flow_viz.flow_to_image(flow)` (no clipping, RGB): `flow` holds `(u, v)` per pixel,
/// row-major, `width * height` pairs; missing pairs are drawn as zero flow and extra values
/// are ignored. Vectors are divided by the largest length (plus 1e-5), so the longest is
/// fully saturated and zero flow is white.
pub fn flow_to_image(flow: &[f32], width: usize, height: usize) -> Frame {
    let pixels = width * height;
    let vector = |i: usize| match flow.get(2 * i..2 * i + 2) {
        Some(&[u, v]) => (u, v),
        _ => (0.0, 0.0),
    };
    // `np.max` of the radii (NaN radii are skipped rather than propagated).
    let rad_max = (0..pixels)
        .map(|i| {
            let (u, v) = vector(i);
            (u * u + v * v).sqrt()
        })
        .fold(0.0f32, f32::max);
    let scale = rad_max + EPSILON;
    let wheel = colour_wheel();
    let mut rgb = Vec::with_capacity(3 * pixels);
    for i in 0..pixels {
        let (u, v) = vector(i);
        rgb.extend(colour(u / scale, v / scale, &wheel));
    }
    Frame { width, height, rgb }
}

/// `flow_uv_to_colors` for one normalised vector.
fn colour(u: f32, v: f32, wheel: &[[f64; 3]; NCOLS]) -> [u8; 3] {
    let rad = (u * u + v * v).sqrt();
    let a = (-v).atan2(-u) / std::f32::consts::PI;
    let fk = (a + 1.0) / 2.0 * (NCOLS - 1) as f32;
    // `astype(np.int32)`; a NaN position (NaN flow) reads the first colour.
    let k0 = (fk.floor() as usize).min(NCOLS - 1);
    let k1 = if k0 + 1 == NCOLS { 0 } else { k0 + 1 };
    let f = f64::from(fk) - k0 as f64;
    let rad = f64::from(rad);
    std::array::from_fn(|c| {
        let col0 = wheel[k0][c] / 255.0;
        let col1 = wheel[k1][c] / 255.0;
        let mut col = (1.0 - f) * col0 + f * col1;
        if rad <= 1.0 {
            col = 1.0 - rad * (1.0 - col);
        } else {
            col *= OUT_OF_RANGE;
        }
        (255.0 * col).floor() as u8
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wheel_matches_make_colorwheel() {
        let wheel = colour_wheel();
        assert_eq!(wheel[0], [255.0, 0.0, 0.0]);
        assert_eq!(wheel[1], [255.0, 17.0, 0.0]);
        assert_eq!(wheel[15], [255.0, 255.0, 0.0]);
        assert_eq!(wheel[16], [213.0, 255.0, 0.0]);
        assert_eq!(wheel[21], [0.0, 255.0, 0.0]);
        assert_eq!(wheel[25], [0.0, 255.0, 255.0]);
        assert_eq!(wheel[36], [0.0, 0.0, 255.0]);
        assert_eq!(wheel[49], [255.0, 0.0, 255.0]);
        assert_eq!(wheel[54], [255.0, 0.0, 43.0]);
    }

    #[test]
    fn zero_flow_is_white() {
        let frame = flow_to_image(&[0.0; 8], 2, 2);
        assert_eq!(frame.rgb, [255; 12]);
    }
}
