//! Ports of the OpenCV image operations the reference annotators call, exact on 8-bit
//! 3-channel images (the reference's numbers depend on OpenCV's fixed-point rounding).
//! They work on [`Frame`] bytes whatever the channel order is.

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
pub fn resize(src: &Frame, width: usize, height: usize, interpolation: Interpolation) -> Frame {
    let _ = (src, width, height, interpolation);
    todo!("cv::resize")
}

/// `cv2.getAffineTransform(src, dst)`: the 2×3 matrix mapping three points onto three.
pub fn get_affine_transform(src: [[f32; 2]; 3], dst: [[f32; 2]; 3]) -> [[f64; 3]; 2] {
    let _ = (src, dst);
    todo!("cv::get_affine_transform")
}

/// `cv2.warpAffine(src, m, (width, height), flags=INTER_LINEAR)` with the default constant
/// border of zeros.
pub fn warp_affine_linear(src: &Frame, m: &[[f64; 3]; 2], width: usize, height: usize) -> Frame {
    let _ = (src, m, width, height);
    todo!("cv::warp_affine_linear")
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
    let _ = (
        center,
        axes,
        angle_deg,
        arc_start_deg,
        arc_end_deg,
        delta_deg,
    );
    todo!("cv::ellipse_to_poly")
}

/// `cv2.fillConvexPoly(img, pts, color)` (8-connected edges, no sub-pixel shift).
pub fn fill_convex_poly(img: &mut Frame, pts: &[(i32, i32)], color: [u8; 3]) {
    let _ = (img, pts, color);
    todo!("cv::fill_convex_poly")
}

/// `cv2.circle(img, center, radius, color, thickness=-1)`: a filled disc.
pub fn fill_circle(img: &mut Frame, center: (i32, i32), radius: i32, color: [u8; 3]) {
    let _ = (img, center, radius, color);
    todo!("cv::fill_circle")
}
