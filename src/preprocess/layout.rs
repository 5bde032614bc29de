//! `layout_bbox`: a box outline moving linearly on white (the reference's
//! LayoutBboxAnnotator), on the result's frame size.

use super::PreparedVideo;
use crate::manifest::preprocess::LayoutOptions;
use crate::media::Frame;

/// `frames` white frames of `width`×`height` with the box drawn 2 px thick.
///
/// As in the reference, boxes are `[x, y, w, h]` in f32, advance by `(end − start)/frames`
/// per frame (so the end box is never quite reached) and are truncated to integers.
pub fn layout(o: &LayoutOptions, width: usize, height: usize, frames: usize) -> PreparedVideo {
    let as_xywh =
        |[x1, y1, x2, y2]: [f64; 4]| [x1 as f32, y1 as f32, (x2 - x1) as f32, (y2 - y1) as f32];
    let (start, end) = (as_xywh(o.boxes[0]), as_xywh(o.boxes[1]));
    let step: [f32; 4] = std::array::from_fn(|k| (end[k] - start[k]) / frames as f32);
    let out = (0..frames)
        .map(|t| {
            let [x, y, w, h] = std::array::from_fn(|k| (start[k] + step[k] * t as f32) as i64);
            let mut frame = Frame::filled(width, height, [255; 3]);
            outline(&mut frame, (x, y, x + w, y + h), o.color);
            frame
        })
        .collect();
    PreparedVideo::control(out)
}

/// OpenCV's `rectangle(.., thickness=2)` from `(x0, y0)` to `(x1, y1)` inclusive: a band
/// of three pixels centred on each edge, without its four outermost corner pixels.
fn outline(frame: &mut Frame, (x0, y0, x1, y1): (i64, i64, i64, i64), rgb: [u8; 3]) {
    let (w, h) = (frame.width as i64, frame.height as i64);
    for y in (y0 - 1).max(0)..=(y1 + 1).min(h - 1) {
        for x in (x0 - 1).max(0)..=(x1 + 1).min(w - 1) {
            let inside = x > x0 + 1 && x < x1 - 1 && y > y0 + 1 && y < y1 - 1;
            let outer_corner = (x == x0 - 1 || x == x1 + 1) && (y == y0 - 1 || y == y1 + 1);
            if !inside && !outer_corner {
                let at = ((y * w + x) * 3) as usize;
                frame.rgb[at..at + 3].copy_from_slice(&rgb);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pattern of `cv2.rectangle(f, (4, 3), (16, 11), 255, 2)` on a 24x16 image,
    /// printed by OpenCV 5.0.
    const OPENCV: [&str; 14] = [
        "........................",
        "........................",
        "....#############.......",
        "...###############......",
        "...###############......",
        "...###.........###......",
        "...###.........###......",
        "...###.........###......",
        "...###.........###......",
        "...###.........###......",
        "...###############......",
        "...###############......",
        "....#############.......",
        "........................",
    ];

    #[test]
    fn outline_matches_opencv() {
        let mut frame = Frame::filled(24, 16, [0; 3]);
        outline(&mut frame, (4, 3, 16, 11), [255; 3]);
        for (y, row) in OPENCV.iter().enumerate() {
            let drawn: String = (0..24)
                .map(|x| {
                    if frame.pixel(x, y)[0] == 255 {
                        '#'
                    } else {
                        '.'
                    }
                })
                .collect();
            assert_eq!(&drawn, row, "row {y}");
        }
    }
}
