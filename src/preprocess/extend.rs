//! `extension`: kept frames or clips in place, grey 127 with mask 255 in between (the
//! reference's FrameRefExpandAnnotator), to exactly the result's frame count.

use super::cv::{self, Interpolation};

use super::mask::{Mask, paste};
use super::{EXTENSION_GREY, PreparedVideo};
use crate::media::Frame;

/// Where the kept frames go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Kept frames, then generated ones.
    First,
    /// Generated frames, then kept ones.
    Last,
    /// `first` kept frames, generated ones, then `last` kept frames.
    Both,
}

/// `first` and `last` kept frames around generated ones, `total` frames in all, at the
/// size of the first kept frame. Frames of `last` of another size are letterboxed on white
/// into it, as the reference's `align_frames` does.
pub fn extend(
    placement: Placement,
    first: &[Frame],
    last: &[Frame],
    total: usize,
) -> PreparedVideo {
    let canvas = match placement {
        Placement::Last => last.first(),
        _ => first.first(),
    };
    let (w, h) = canvas.map_or((0, 0), |f| (f.width, f.height));
    let last: Vec<Frame> = last.iter().map(|f| letterbox(f, w, h)).collect();
    let (head, tail): (&[Frame], &[Frame]) = match placement {
        Placement::First => (first, &[]),
        Placement::Last => (&[], &last),
        Placement::Both => (first, &last),
    };
    let generated = total.saturating_sub(head.len() + tail.len());
    let grey = Frame::filled(w, h, [EXTENSION_GREY; 3]);
    let mut out = PreparedVideo::with_capacity(total);
    for frame in head {
        out.push(frame.clone(), Mask::filled(w, h, 0));
    }
    for _ in 0..generated {
        out.push(grey.clone(), Mask::filled(w, h, 255));
    }
    for frame in tail {
        out.push(frame.clone(), Mask::filled(w, h, 0));
    }
    out
}

/// `frame` scaled to fit inside `width`×`height` (sizes truncated, as `int(w·ratio)`) and
/// centred on white; unchanged when it already has that size. Resized with OpenCV's
/// INTER_AREA, as the reference does.
pub fn letterbox(frame: &Frame, width: usize, height: usize) -> Frame {
    if (frame.width, frame.height) == (width, height) || frame.width == 0 || frame.height == 0 {
        return frame.clone();
    }
    let ratio = f64::min(
        width as f64 / frame.width as f64,
        height as f64 / frame.height as f64,
    );
    let new_w = ((frame.width as f64 * ratio) as usize).clamp(1, width);
    let new_h = ((frame.height as f64 * ratio) as usize).clamp(1, height);
    let resized = cv::resize(frame, new_w, new_h, Interpolation::Area);
    let mut canvas = Frame::filled(width, height, [255; 3]);
    paste(
        &mut canvas,
        &resized,
        (width - new_w) / 2,
        (height - new_h) / 2,
    );
    canvas
}
