//! The picture both networks look at: `PoseAnnotator.forward`'s `HWC3(image[..., ::-1])`
//! (the RGB frame as BGR) and `resize_image(…, 1024)`.

use crate::media::Frame;
use crate::preprocess::cv::{self, Interpolation};

/// `PoseAnnotator`'s `RESIZE_SIZE` default (no VACE config sets it).
const RESIZE_SIZE: f64 = 1024.0;

/// The largest working picture made: 64 Mpixels, a 64:1 frame. The reference would go on
/// (a 1×10000 frame becomes 10 240 000×1024); here that is an error, not an exhausted host.
const MAX_PIXELS: usize = 1 << 26;

/// The frame in BGR, scaled so its short side is 1024 and both sides are multiples of 64
/// (`np.round`, halves to even), with `INTER_LANCZOS4` when enlarging, else `INTER_AREA`.
pub(crate) fn working_picture(frame: &Frame) -> candle_core::Result<Frame> {
    let (w, h) = working_size(frame.width, frame.height);
    if w.saturating_mul(h) > MAX_PIXELS {
        return Err(candle_core::Error::Msg(format!(
            "dwpose: a {}×{} frame would be worked on at {w}×{h}, over {MAX_PIXELS} pixels",
            frame.width, frame.height
        )));
    }
    let mut bgr = frame.clone();
    for px in bgr.rgb.chunks_exact_mut(3) {
        px.swap(0, 2);
    }
    let k = RESIZE_SIZE / (frame.height.min(frame.width) as f64);
    if (w, h) == (frame.width, frame.height) {
        // cv2.resize to the same size copies.
        return Ok(bgr);
    }
    let interpolation = if k > 1.0 {
        Interpolation::Lanczos4
    } else {
        Interpolation::Area
    };
    Ok(cv::resize(&bgr, w, h, interpolation))
}

/// `resize_image`'s target (width, height).
pub(crate) fn working_size(width: usize, height: usize) -> (usize, usize) {
    let (w, h) = (width as f64, height as f64);
    let k = RESIZE_SIZE / h.min(w);
    let side = |v: f64| ((v * k) / 64.0).round_ties_even() as usize * 64;
    (side(w), side(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_extreme_aspect_ratios() {
        let err = working_picture(&Frame::filled(1, 100, [0; 3]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1024×102400"), "{err}");
    }

    #[test]
    fn sizes_round_to_64_halves_to_even() {
        assert_eq!(working_size(208, 120), (1792, 1024));
        assert_eq!(working_size(96, 160), (1024, 1728));
        assert_eq!(working_size(1088, 1040), (1088, 1024));
        assert_eq!(working_size(1920, 1080), (1792, 1024));
        assert_eq!(working_size(832, 480), (1792, 1024));
        // 1632 = 25.5 · 64 and 1696 = 26.5 · 64 both round to 26 · 64.
        assert_eq!(working_size(1632, 1024), (1664, 1024));
        assert_eq!(working_size(1696, 1024), (1664, 1024));
    }
}
