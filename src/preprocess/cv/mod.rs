//! Ports of the OpenCV image operations the reference annotators call, exact on 8-bit
//! 3-channel images (the reference's numbers depend on OpenCV's fixed-point rounding).
//! They work on [`Frame`] bytes whatever the channel order is.
//!
//! The version matched is opencv-python(-headless) 5.0.0 on x86-64; `tests/cv_ops.rs`
//! compares every operation with its outputs.

mod affine;
mod draw;
mod par;
mod resize;

use crate::media::Frame;

/// `cv2.resize` interpolation flags the annotators use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// `INTER_LINEAR`.
    Linear,
    /// `INTER_AREA`.
    Area,
    /// `INTER_LANCZOS4`.
    Lanczos4,
}

/// `cv2.resize(src, (width, height), interpolation=…)` on an 8-bit 3-channel image.
///
/// A zero-sized source or target gives a black frame of the target size (OpenCV raises).
pub fn resize(src: &Frame, width: usize, height: usize, interpolation: Interpolation) -> Frame {
    resize::resize(src, width, height, interpolation)
}

/// `cv2.getAffineTransform(src, dst)`: the 2×3 matrix mapping three points onto three.
///
/// Collinear points give the zero matrix (OpenCV's `solve` fails and leaves zeros).
pub fn get_affine_transform(src: [[f32; 2]; 3], dst: [[f32; 2]; 3]) -> [[f64; 3]; 2] {
    affine::get_affine_transform(src, dst)
}

/// `cv2.warpAffine(src, m, (width, height), flags=INTER_LINEAR)` with the default constant
/// border of zeros.
pub fn warp_affine_linear(src: &Frame, m: &[[f64; 3]; 2], width: usize, height: usize) -> Frame {
    affine::warp_affine_linear(src, m, width, height)
}

/// `cv2.ellipse2Poly(center, axes, angle, arc_start, arc_end, delta)`.
pub fn ellipse_to_poly(
    center: (i32, i32),
    axes: (i32, i32),
    angle_deg: i32,
    arc_start_deg: i32,
    arc_end_deg: i32,
    delta_deg: i32,
) -> Vec<(i32, i32)> {
    draw::ellipse_to_poly(
        center,
        axes,
        angle_deg,
        arc_start_deg,
        arc_end_deg,
        delta_deg,
    )
}

/// `cv2.fillConvexPoly(img, pts, color)` (8-connected edges, no sub-pixel shift).
pub fn fill_convex_poly(img: &mut Frame, pts: &[(i32, i32)], color: [u8; 3]) {
    draw::fill_convex_poly(img, pts, color)
}

/// `cv2.circle(img, center, radius, color, thickness=-1)`: a filled disc.
pub fn fill_circle(img: &mut Frame, center: (i32, i32), radius: i32, color: [u8; 3]) {
    draw::fill_circle(img, center, radius, color)
}
