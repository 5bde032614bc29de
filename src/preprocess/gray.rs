//! `gray`: the reference's `cv2.cvtColor(frame, COLOR_BGR2GRAY)` applied to RGB frames.
//!
//! The reference hands OpenCV RGB frames as if they were BGR, so red gets blue's weight and
//! blue red's: `Y = 0.114·R + 0.587·G + 0.299·B`. OpenCV's 8-bit path is fixed point with 14
//! fraction bits and rounding; the same integers here give the same bytes.

use crate::media::Frame;

/// OpenCV's `yuv_shift` and its coefficients for B, G, R (×2¹⁴): 0.114, 0.587, 0.299.
const SHIFT: u32 = 14;
const WEIGHT_FIRST: u32 = 1868;
const WEIGHT_SECOND: u32 = 9617;
const WEIGHT_THIRD: u32 = 4899;

/// The grey of one RGB pixel, as the reference computes it.
pub fn grey(px: [u8; 3]) -> u8 {
    let [r, g, b] = px.map(u32::from);
    // The frame's first channel (R) takes OpenCV's blue weight: the reference's channel swap.
    ((r * WEIGHT_FIRST + g * WEIGHT_SECOND + b * WEIGHT_THIRD + (1 << (SHIFT - 1))) >> SHIFT) as u8
}

/// The grey control frame: the grey value in all three channels.
pub fn gray_frame(frame: &Frame) -> Frame {
    Frame {
        width: frame.width,
        height: frame.height,
        rgb: frame
            .rgb
            .chunks_exact(3)
            .flat_map(|px| {
                let y = grey([px[0], px[1], px[2]]);
                [y, y, y]
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_follow_the_reference_channel_swap() {
        // Values from OpenCV 5.0 (opencv-python-headless) `cv2.cvtColor(np.array([[[r, g, b]]], np.uint8), cv2.COLOR_BGR2GRAY)`.
        assert_eq!(grey([255, 0, 0]), 29);
        assert_eq!(grey([0, 255, 0]), 150);
        assert_eq!(grey([0, 0, 255]), 76);
        assert_eq!(grey([255, 255, 255]), 255);
        assert_eq!(grey([10, 200, 30]), 128);
        assert_eq!(grey([37, 91, 250]), 132);
    }
}
