//! `outpainting` and `outpainting_inner` (the reference's OutpaintingAnnotator and
//! OutpaintingInnerAnnotator with the video task's settings: grey 128, no mask blur, canvas
//! sides rounded up to multiples of 8).

use super::mask::{Mask, crop, paste};
use super::{PreparedVideo, REPAINT_GREY};
use crate::manifest::preprocess::{Direction, OutpaintingOptions};
use crate::media::Frame;

/// The reference's `KEEP_PADDING_RATIO`: canvas sides are multiples of it.
const CANVAS_MULTIPLE: usize = 8;

/// Border widths in pixels, `(left, right, up, down)`, for a `width`×`height` source.
fn borders(o: &OutpaintingOptions, width: usize, height: usize) -> [usize; 4] {
    let side = |d: Direction, length: usize| {
        if o.direction.contains(&d) {
            // Python's `int()` of a positive float.
            (o.expand_ratio * length as f64) as usize
        } else {
            0
        }
    };
    [
        side(Direction::Left, width),
        side(Direction::Right, width),
        side(Direction::Up, height),
        side(Direction::Down, height),
    ]
}

/// The enlarged canvas: `(width, height, left, up)`, the original pasted at `(left, up)`.
///
/// Each axis is rounded up to a multiple of 8 and the rounding shared between the two sides
/// in proportion, with the reference's integer arithmetic.
pub fn canvas(o: &OutpaintingOptions, width: usize, height: usize) -> (usize, usize, usize, usize) {
    let [left, right, up, down] = borders(o, width, height);
    let round_up = |n: usize| n.div_ceil(CANVAS_MULTIPLE) * CANVAS_MULTIPLE;
    let (canvas_w, canvas_h) = (round_up(width + left + right), round_up(height + up + down));
    let left = if left > 0 {
        left * (canvas_w - width) / (left + right)
    } else {
        0
    };
    let up = if up > 0 {
        up * (canvas_h - height) / (up + down)
    } else {
        0
    };
    (canvas_w, canvas_h, left, up)
}

/// Each frame pasted on a larger grey canvas; the mask is white except over the original.
///
/// The reference marks the canvas's rounding strip as kept when a side has no border (its
/// rectangle runs to the canvas edge); here only the original picture is kept, so the strip
/// is generated rather than kept grey.
pub fn outpaint(frames: &[Frame], o: &OutpaintingOptions) -> PreparedVideo {
    let mut out = PreparedVideo::with_capacity(frames.len());
    for frame in frames {
        let (canvas_w, canvas_h, left, up) = canvas(o, frame.width, frame.height);
        let mut image = Frame::filled(canvas_w, canvas_h, [REPAINT_GREY; 3]);
        paste(&mut image, frame, left, up);
        let mut mask = Mask::filled(canvas_w, canvas_h, 255);
        mask.fill_rect((left, up, left + frame.width, up + frame.height), 0);
        out.push(image, mask);
    }
    out
}

/// Each frame with a border of `expand_ratio` cut away inside its own size and filled grey.
///
/// The reference's mask rectangle uses PIL's inclusive corners and so also keeps one grey
/// column and row; here exactly the remaining picture is kept.
pub fn outpaint_inner(frames: &[Frame], o: &OutpaintingOptions) -> PreparedVideo {
    let mut out = PreparedVideo::with_capacity(frames.len());
    for frame in frames {
        let (w, h) = (frame.width, frame.height);
        let [left, right, up, down] = borders(o, w, h);
        let rect = (left, up, w.saturating_sub(right), h.saturating_sub(down));
        let mut image = Frame::filled(w, h, [REPAINT_GREY; 3]);
        paste(&mut image, &crop(frame, rect), left, up);
        let mut mask = Mask::filled(w, h, 255);
        mask.fill_rect(rect, 0);
        out.push(image, mask);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(direction: Vec<Direction>, expand_ratio: f64) -> OutpaintingOptions {
        OutpaintingOptions {
            direction,
            expand_ratio,
        }
    }

    #[test]
    fn canvas_follows_the_reference_arithmetic() {
        // 100x60, left+right 0.25: 25 + 25 → 150 → 152; left = 25·52//50 = 26.
        let o = options(vec![Direction::Left, Direction::Right], 0.25);
        assert_eq!(canvas(&o, 100, 60), (152, 64, 26, 0));
        // Portrait 480x832 to landscape: ratio 1 on both sides.
        let o = options(vec![Direction::Left, Direction::Right], 1.0);
        assert_eq!(canvas(&o, 480, 832), (1440, 832, 480, 0));
        // Only `up`: the whole height rounding goes above.
        let o = options(vec![Direction::Up], 0.1);
        assert_eq!(canvas(&o, 64, 50), (64, 56, 0, 6));
    }
}
