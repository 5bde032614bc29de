//! Fitting frames onto the model's grid, the two ways the reference does it.
//!
//! Videos and masks are scaled to cover the grid and centre-cropped (`resize_crop`);
//! reference images are scaled to fit inside it and centred on white (`letterbox_on_white`),
//! with PyTorch's bilinear arithmetic reproduced so the canvas matches the reference's.

use image::imageops::{self, FilterType};

use super::frame::Frame;

/// Scales `frame` to cover `width_px`×`height_px` and crops the centre, as the reference's
/// video loader does; a frame already of that size is returned unchanged.
///
/// Scale `max(w_out/w_in, h_out/h_in)`, size `round(scale·w_in)`×`round(scale·h_in)` (Python's
/// round, ties to even), bicubic (antialiased when shrinking), crop offsets `⌊Δ/2⌋`.
pub fn resize_crop(frame: &Frame, width_px: usize, height_px: usize) -> Frame {
    if (frame.width, frame.height) == (width_px, height_px) {
        return frame.clone();
    }
    if frame.width == 0 || frame.height == 0 {
        return Frame::filled(width_px, height_px, [0, 0, 0]);
    }
    let (scaled_w, scaled_h) = cover_size((frame.width, frame.height), (width_px, height_px));
    let scaled = imageops::resize(
        &frame.to_image(),
        scaled_w as u32,
        scaled_h as u32,
        FilterType::CatmullRom,
    );
    let left = (scaled_w - width_px) / 2;
    let top = (scaled_h - height_px) / 2;
    let cropped = imageops::crop_imm(
        &scaled,
        left as u32,
        top as u32,
        width_px as u32,
        height_px as u32,
    )
    .to_image();
    Frame::from_image(cropped)
}

/// The size `resize_crop` scales to before cropping: Python's `round`, ties to even.
fn cover_size((w_in, h_in): (usize, usize), (w_out, h_out): (usize, usize)) -> (usize, usize) {
    let (w_in, h_in) = (w_in as f64, h_in as f64);
    let scale = f64::max(w_out as f64 / w_in, h_out as f64 / h_in);
    // Never below the target, whatever the float rounding did.
    let w = ((scale * w_in).round_ties_even() as usize).max(w_out);
    let h = ((scale * h_in).round_ties_even() as usize).max(h_out);
    (w, h)
}

/// The reference's canvas for a reference image: pixels in [−1, 1], scaled to fit inside
/// `width_px`×`height_px` and centred on white (+1.0). Returns CHW f32, `3·H·W` values.
///
/// Scale `min(H/h, W/w)`, size `⌊h·scale⌋`×`⌊w·scale⌋`, bilinear with `align_corners=False` and
/// no antialiasing (PyTorch's `F.interpolate`), offsets `⌊Δ/2⌋`. Same size: only normalised.
pub fn letterbox_on_white(frame: &Frame, width_px: usize, height_px: usize) -> Vec<f32> {
    let (w, h) = (frame.width, frame.height);
    let normalised = normalise_chw(frame);
    if (w, h) == (width_px, height_px) {
        return normalised;
    }
    let mut canvas = vec![1.0f32; 3 * height_px * width_px];
    if w == 0 || h == 0 {
        return canvas;
    }
    // Python floats are f64 and `int()` truncates: same arithmetic, same sizes.
    let scale = f64::min(height_px as f64 / h as f64, width_px as f64 / w as f64);
    let new_h = ((h as f64 * scale) as usize).min(height_px);
    let new_w = ((w as f64 * scale) as usize).min(width_px);
    let resized = bilinear(&normalised, 3, (h, w), (new_h, new_w));
    let top = (height_px - new_h) / 2;
    let left = (width_px - new_w) / 2;
    for c in 0..3 {
        for y in 0..new_h {
            let src = (c * new_h + y) * new_w;
            let dst = (c * height_px + top + y) * width_px + left;
            canvas[dst..dst + new_w].copy_from_slice(&resized[src..src + new_w]);
        }
    }
    canvas
}

/// RGB8 to CHW f32 in [−1, 1] the reference's way: `to_tensor` (`x/255`), then `(x − 0.5)/0.5`.
fn normalise_chw(frame: &Frame) -> Vec<f32> {
    let plane = frame.width * frame.height;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in frame.rgb.chunks_exact(3).take(plane).enumerate() {
        for (c, &value) in px.iter().enumerate() {
            out[c * plane + i] = (value as f32 / 255.0 - 0.5) / 0.5;
        }
    }
    out
}

/// One axis of PyTorch's bilinear: for each output position, the two source indices and
/// their weights, in f32 like PyTorch's CPU kernel.
fn linear_taps(in_size: usize, out_size: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = in_size as f32 / out_size as f32;
    (0..out_size)
        .map(|dst| {
            let src = (scale * (dst as f32 + 0.5) - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(in_size - 1);
            let i1 = if i0 < in_size - 1 { i0 + 1 } else { i0 };
            let lambda1 = (src - i0 as f32).clamp(0.0, 1.0);
            (i0, i1, 1.0 - lambda1, lambda1)
        })
        .collect()
}

/// PyTorch `F.interpolate(mode='bilinear', align_corners=False)` without antialiasing, on
/// `channels` planes of `in_h`×`in_w` f32 values.
fn bilinear(
    planes: &[f32],
    channels: usize,
    (in_h, in_w): (usize, usize),
    (out_h, out_w): (usize, usize),
) -> Vec<f32> {
    let rows = linear_taps(in_h, out_h);
    let cols = linear_taps(in_w, out_w);
    let mut out = Vec::with_capacity(channels * out_h * out_w);
    for c in 0..channels {
        let plane = &planes[c * in_h * in_w..(c + 1) * in_h * in_w];
        for &(y0, y1, wy0, wy1) in &rows {
            for &(x0, x1, wx0, wx1) in &cols {
                // Width first, then height, in PyTorch's order of operations.
                let top = plane[y0 * in_w + x0] * wx0 + plane[y0 * in_w + x1] * wx1;
                let bottom = plane[y1 * in_w + x0] * wx0 + plane[y1 * in_w + x1] * wx1;
                out.push(top * wy0 + bottom * wy1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_upscale_matches_pytorch() {
        // torch.nn.functional.interpolate(torch.tensor([[[[0., 4.], [8., 12.]]]]),
        //     size=(4, 4), mode='bilinear', align_corners=False)
        let out = bilinear(&[0.0, 4.0, 8.0, 12.0], 1, (2, 2), (4, 4));
        assert_eq!(
            out,
            [
                0.0, 1.0, 3.0, 4.0, //
                2.0, 3.0, 5.0, 6.0, //
                6.0, 7.0, 9.0, 10.0, //
                8.0, 9.0, 11.0, 12.0,
            ]
        );
    }

    #[test]
    fn bilinear_downscale_by_two_averages_blocks() {
        // Source coordinate (dst + 0.5)·2 − 0.5 = 0.5, 2.5: the mean of each 2×2 block.
        let input: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let out = bilinear(&input, 1, (4, 4), (2, 2));
        assert_eq!(out, [2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn bilinear_non_integer_ratio_matches_pytorch() {
        // interpolate(torch.arange(3.).view(1, 1, 1, 3), size=(1, 2)): scale 1.5, source
        // coordinates 0.25 and 1.75 → 0.25 and 1.75.
        let out = bilinear(&[0.0, 1.0, 2.0], 1, (1, 3), (1, 2));
        assert_eq!(out, [0.25, 1.75]);
    }

    #[test]
    fn letterbox_centres_on_white_and_normalises() {
        // A 2×2 image onto an 8-wide, 4-high canvas: scale min(4/2, 8/2) = 2, a 4×4 image
        // at left 2, top 0, the rest white.
        let frame = Frame {
            width: 2,
            height: 2,
            rgb: [[0u8, 0, 0], [255, 255, 255], [255, 255, 255], [0, 0, 0]].concat(),
        };
        let canvas = letterbox_on_white(&frame, 8, 4);
        assert_eq!(canvas.len(), 3 * 8 * 4);
        for c in 0..3 {
            let plane = &canvas[c * 32..(c + 1) * 32];
            let row0 = &plane[0..8];
            // Black→white along the top row: −1, −0.5, 0.5, 1 (weights .75/.25 of −1 and 1).
            assert_eq!(row0, [1.0, 1.0, -1.0, -0.5, 0.5, 1.0, 1.0, 1.0]);
            for y in 0..4 {
                assert_eq!(plane[y * 8], 1.0);
                assert_eq!(plane[y * 8 + 7], 1.0);
            }
        }
        // Same size: only normalised, 0 → −1 and 255 → 1.
        let same = letterbox_on_white(&frame, 2, 2);
        assert_eq!(same[..4], [-1.0, 1.0, 1.0, -1.0]);
    }

    #[test]
    fn letterbox_pads_top_and_bottom_for_wide_images() {
        // 4×2 onto 4×4: scale 1, no resampling, rows 1 and 2 hold the image.
        let frame = Frame::filled(4, 2, [0, 0, 0]);
        let canvas = letterbox_on_white(&frame, 4, 4);
        let plane = &canvas[..16];
        assert_eq!(plane[..4], [1.0; 4]);
        assert_eq!(plane[4..12], [-1.0; 8]);
        assert_eq!(plane[12..], [1.0; 4]);
    }

    #[test]
    fn cover_size_rounds_ties_to_even_like_python() {
        // 5×4 onto 2×2: scale max(0.4, 0.5) = 0.5, width 2.5 → 2 (Python), not 3.
        assert_eq!(cover_size((5, 4), (2, 2)), (2, 2));
        // 7×4 onto 2×2: width 3.5 → 4.
        assert_eq!(cover_size((7, 4), (2, 2)), (4, 2));
        // 100×50 onto 64×48: scale 0.96, 96×48.
        assert_eq!(cover_size((100, 50), (64, 48)), (96, 48));
    }

    #[test]
    fn resize_crop_of_a_flat_frame_stays_flat() {
        let out = resize_crop(&Frame::filled(3, 2, [9, 9, 9]), 2, 1);
        assert_eq!((out.width, out.height), (2, 1));
        assert_eq!(out.rgb, [9; 6]);
    }
}
