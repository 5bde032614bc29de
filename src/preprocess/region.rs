//! `inpainting`: a region of each source frame set to grey 128 with the mask 255 there
//! (the reference's InpaintingAnnotator, modes `mask` and `bbox`, and a keyframed box).

use super::mask::{Mask, fill_rect};
use super::{PreparedVideo, REPAINT_GREY};
use crate::manifest::preprocess::{BoxKeyframe, PixelBox};
use crate::media::Frame;

/// Where to repaint.
pub enum Region<'a> {
    /// Mask frames (one per source frame): any non-zero red value is the region, as the
    /// reference's `mask > 0`.
    Masks(&'a [Frame]),
    /// One box for every frame.
    Fixed(PixelBox),
    /// A box moving between keyframes.
    Keyframes(&'a [BoxKeyframe]),
}

/// A box in pixels, clipped to `width`×`height` the reference's way: `int(max(0, x1))`,
/// `int(min(w, x2))` (`int` truncates).
pub fn clip_box(
    [x1, y1, x2, y2]: PixelBox,
    width: usize,
    height: usize,
) -> (usize, usize, usize, usize) {
    let lo = |v: f64| v.max(0.0) as usize;
    let hi = |v: f64, limit: usize| v.min(limit as f64).max(0.0) as usize;
    (lo(x1), lo(y1), hi(x2, width), hi(y2, height))
}

/// The box at output frame `t`: linear between keyframes, held outside them.
pub fn box_at(keys: &[BoxKeyframe], t: usize) -> PixelBox {
    let Some(first) = keys.first() else {
        return [0.0; 4];
    };
    if t <= first.frame {
        return first.pixel_box;
    }
    for pair in keys.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if t <= b.frame {
            let s = (t - a.frame) as f64 / (b.frame - a.frame) as f64;
            return std::array::from_fn(|k| a.pixel_box[k] + s * (b.pixel_box[k] - a.pixel_box[k]));
        }
    }
    keys[keys.len() - 1].pixel_box
}

/// Repaints `region` of each frame.
pub fn inpaint(frames: &[Frame], region: &Region) -> PreparedVideo {
    let grey = [REPAINT_GREY; 3];
    let mut out = PreparedVideo::with_capacity(frames.len());
    for (t, frame) in frames.iter().enumerate() {
        let (w, h) = (frame.width, frame.height);
        let mut image = frame.clone();
        let mut mask = Mask::filled(w, h, 0);
        match region {
            Region::Masks(masks) => {
                let source = &masks[t.min(masks.len().saturating_sub(1))];
                for (i, px) in source.rgb.chunks_exact(3).take(w * h).enumerate() {
                    if px[0] > 0 {
                        image.rgb[i * 3..i * 3 + 3].copy_from_slice(&grey);
                        mask.values[i] = 255;
                    }
                }
            }
            Region::Fixed(b) => {
                let rect = clip_box(*b, w, h);
                fill_rect(&mut image, rect, grey);
                mask.fill_rect(rect, 255);
            }
            Region::Keyframes(keys) => {
                let rect = clip_box(box_at(keys, t), w, h);
                fill_rect(&mut image, rect, grey);
                mask.fill_rect(rect, 255);
            }
        }
        out.push(image, mask);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyframed_boxes_move_linearly_and_hold_at_the_ends() {
        let keys = [
            BoxKeyframe {
                frame: 2,
                pixel_box: [0.0, 0.0, 10.0, 10.0],
            },
            BoxKeyframe {
                frame: 6,
                pixel_box: [8.0, 4.0, 18.0, 14.0],
            },
        ];
        assert_eq!(box_at(&keys, 0), [0.0, 0.0, 10.0, 10.0]);
        assert_eq!(box_at(&keys, 4), [4.0, 2.0, 14.0, 12.0]);
        assert_eq!(box_at(&keys, 9), [8.0, 4.0, 18.0, 14.0]);
    }

    #[test]
    fn boxes_clip_and_truncate_like_the_reference() {
        assert_eq!(clip_box([-3.0, 2.7, 50.9, 99.0], 40, 30), (0, 2, 40, 30));
    }
}
