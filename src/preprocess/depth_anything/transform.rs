//! The reference's input transform (`DepthAnythingV2.image2tensor` with `util/transform.py`):
//! channel swap, scale to [0, 1], OpenCV bicubic resize so both sides are at least 518 and
//! multiples of 14 (aspect ratio kept), ImageNet normalisation. Computed in f64 as NumPy
//! does (the image is float64 after `/ 255.0`), cast to f32 at the end like `PrepareForNet`.

use candle_core::{Device, Result, Tensor};

use crate::media::Frame;

/// The lower bound the reference resizes to (`infer_image(input_size=518)`).
pub const INPUT_SIZE: usize = 518;
/// DINOv2's patch size; network sides are multiples of it.
pub const PATCH_SIZE: usize = 14;
/// ImageNet statistics (`NormalizeImage` in `dpt.py`).
const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const STD: [f64; 3] = [0.229, 0.224, 0.225];
/// OpenCV's bicubic parameter (`interpolateCubic` in `imgproc/src/resize.cpp`).
const CV_CUBIC_A: f32 = -0.75;

/// The network input size `(height, width)` for a `width`×`height` frame: `Resize` with
/// `keep_aspect_ratio`, `resize_method="lower_bound"`, `ensure_multiple_of=14`.
pub fn network_size(width: usize, height: usize) -> (usize, usize) {
    let scale_height = INPUT_SIZE as f64 / height as f64;
    let scale_width = INPUT_SIZE as f64 / width as f64;
    // Lower bound: the larger scale fits the shorter side to 518.
    let scale = if scale_width > scale_height {
        scale_width
    } else {
        scale_height
    };
    (
        multiple_of_patch(scale * height as f64),
        multiple_of_patch(scale * width as f64),
    )
}

/// `constrain_to_multiple_of(x, min_val=518)`; `np.round` rounds halves to even.
fn multiple_of_patch(x: f64) -> usize {
    let patch = PATCH_SIZE as f64;
    let y = (x / patch).round_ties_even() * patch;
    let y = if y < INPUT_SIZE as f64 {
        (x / patch).ceil() * patch
    } else {
        y
    };
    y as usize
}

/// The network input for `frame`: `(1, 3, h, w)` f32 at [`network_size`].
///
/// The reference hands RGB frames to `infer_image`, which converts them "BGR to RGB", so the
/// network sees blue in its red channel and red in its blue one (normalised with the red and
/// blue statistics respectively). That swap is reproduced deliberately: the released
/// annotator's output depends on it.
pub fn to_network_input(frame: &Frame, device: &Device) -> Result<Tensor> {
    let (src_w, src_h) = (frame.width, frame.height);
    if src_w == 0 || src_h == 0 || frame.rgb.len() != src_w * src_h * 3 {
        candle_core::bail!(
            "depth input must be a non-empty RGB frame (got {src_w}x{src_h} with {} bytes)",
            frame.rgb.len()
        );
    }
    let (dst_h, dst_w) = network_size(src_w, src_h);
    let mut planes = Vec::with_capacity(3 * dst_h * dst_w);
    for channel in 0..3 {
        // cv2.cvtColor(BGR2RGB) on an RGB frame: network channel c is frame channel 2 - c.
        let source = 2 - channel;
        let plane: Vec<f64> = frame
            .rgb
            .iter()
            .skip(source)
            .step_by(3)
            .map(|&v| v as f64 / 255.0)
            .collect();
        let resized = resize_cubic(&plane, src_w, src_h, dst_w, dst_h);
        planes.extend(
            resized
                .iter()
                .map(|&v| ((v - MEAN[channel]) / STD[channel]) as f32),
        );
    }
    Tensor::from_vec(planes, (1, 3, dst_h, dst_w), device)
}

/// One axis of OpenCV's `INTER_CUBIC`: for each output position, the source index of the
/// second tap and the four weights (computed in f32 as OpenCV does).
fn cv_cubic_taps(src: usize, dst: usize) -> Vec<(isize, [f32; 4])> {
    let scale = 1.0 / (dst as f64 / src as f64);
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let s = f.floor();
            (s as isize, cv_cubic_coeffs(f - s))
        })
        .collect()
}

/// `interpolateCubic` of OpenCV's `resize.cpp`.
fn cv_cubic_coeffs(x: f32) -> [f32; 4] {
    let a = CV_CUBIC_A;
    let c0 = ((a * (x + 1.0) - 5.0 * a) * (x + 1.0) + 8.0 * a) * (x + 1.0) - 4.0 * a;
    let c1 = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let c2 = ((a + 2.0) * (1.0 - x) - (a + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    [c0, c1, c2, 1.0 - c0 - c1 - c2]
}

/// Clamps a tap to the image: OpenCV's resize replicates the border.
fn clamp_tap(index: isize, size: usize) -> usize {
    index.clamp(0, size as isize - 1) as usize
}

/// `cv2.resize(plane, (dst_w, dst_h), interpolation=cv2.INTER_CUBIC)` on one float64 plane:
/// rows first, then columns, summing the four taps in order as OpenCV's `HResizeCubic` and
/// `VResizeCubic` do.
fn resize_cubic(plane: &[f64], src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Vec<f64> {
    let x_taps = cv_cubic_taps(src_w, dst_w);
    let y_taps = cv_cubic_taps(src_h, dst_h);
    let mut rows = Vec::with_capacity(src_h * dst_w); // (src_h, dst_w)
    for row in plane.chunks_exact(src_w) {
        for &(sx, alpha) in &x_taps {
            let mut v = 0.0;
            for (j, &a) in alpha.iter().enumerate() {
                v += row[clamp_tap(sx - 1 + j as isize, src_w)] * f64::from(a);
            }
            rows.push(v);
        }
    }
    let mut out = Vec::with_capacity(dst_h * dst_w);
    for &(sy, beta) in &y_taps {
        let [r0, r1, r2, r3]: [&[f64]; 4] = std::array::from_fn(|k| {
            let y = clamp_tap(sy - 1 + k as isize, src_h);
            &rows[y * dst_w..(y + 1) * dst_w]
        });
        let [b0, b1, b2, b3] = beta.map(f64::from);
        for (((&v0, &v1), &v2), &v3) in r0.iter().zip(r1).zip(r2).zip(r3) {
            out.push(v0 * b0 + v1 * b1 + v2 * b2 + v3 * b3);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_size_follows_the_reference_resize() {
        // (width, height) -> (height, width); 96x64 hits a .5 tie that np.round sends to even.
        for (w, h, expected) in [
            (96, 64, (518, 784)),
            (64, 80, (644, 518)),
            (518, 518, (518, 518)),
            (1280, 720, (518, 924)),
        ] {
            assert_eq!(network_size(w, h), expected, "{w}x{h}");
        }
    }

    #[test]
    fn cubic_weights_sum_to_one_and_identity_resize_is_exact() {
        for x in [0.0f32, 0.25, 0.5, 0.9] {
            let s: f32 = cv_cubic_coeffs(x).iter().sum();
            assert!((s - 1.0).abs() < 1e-6, "{x}: {s}");
        }
        let plane: Vec<f64> = (0..12).map(|v| v as f64 * 0.1).collect();
        assert_eq!(resize_cubic(&plane, 4, 3, 4, 3), plane);
    }
}
