//! `Mask`: one byte per pixel, 255 = generate, 0 = keep (the reference's convention).

use crate::media::Frame;

/// A grey mask frame, row-major, `width · height` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: usize,
    pub height: usize,
    pub values: Vec<u8>,
}

impl Mask {
    /// A mask of one value.
    pub fn filled(width: usize, height: usize, value: u8) -> Self {
        Self {
            width,
            height,
            values: vec![value; width * height],
        }
    }

    /// The value at column `x`, row `y`.
    ///
    /// Panics if the position lies outside the mask, like slice indexing.
    pub fn at(&self, x: usize, y: usize) -> u8 {
        assert!(x < self.width && y < self.height, "pixel outside the mask");
        self.values[y * self.width + x]
    }

    /// From a frame's red channel, as the reference reads mask videos (spec §6.2).
    pub fn from_frame(frame: &Frame) -> Self {
        Self {
            width: frame.width,
            height: frame.height,
            values: frame.rgb.chunks_exact(3).map(|px| px[0]).collect(),
        }
    }

    /// As a grey RGB frame, for writing a mask video.
    pub fn to_frame(&self) -> Frame {
        Frame {
            width: self.width,
            height: self.height,
            rgb: self.values.iter().flat_map(|&v| [v, v, v]).collect(),
        }
    }

    /// Sets `[x0, x1) × [y0, y1)` (clipped to the mask) to `value`.
    pub fn fill_rect(&mut self, (x0, y0, x1, y1): (usize, usize, usize, usize), value: u8) {
        let (x1, y1) = (x1.min(self.width), y1.min(self.height));
        for y in y0.min(y1)..y1 {
            self.values[y * self.width + x0.min(x1)..y * self.width + x1].fill(value);
        }
    }
}

/// Sets `[x0, x1) × [y0, y1)` (clipped to the frame) of `frame` to `rgb`.
pub fn fill_rect(frame: &mut Frame, (x0, y0, x1, y1): (usize, usize, usize, usize), rgb: [u8; 3]) {
    let (x1, y1) = (x1.min(frame.width), y1.min(frame.height));
    for y in y0.min(y1)..y1 {
        for x in x0.min(x1)..x1 {
            let at = (y * frame.width + x) * 3;
            frame.rgb[at..at + 3].copy_from_slice(&rgb);
        }
    }
}

/// Copies `src` onto `dst` with its top-left corner at `(left, top)`, clipped to `dst`.
pub fn paste(dst: &mut Frame, src: &Frame, left: usize, top: usize) {
    let width = src.width.min(dst.width.saturating_sub(left));
    for y in 0..src.height.min(dst.height.saturating_sub(top)) {
        let from = y * src.width * 3;
        let to = ((top + y) * dst.width + left) * 3;
        dst.rgb[to..to + width * 3].copy_from_slice(&src.rgb[from..from + width * 3]);
    }
}

/// The `[x0, x1) × [y0, y1)` part of `frame` (clipped to it).
pub fn crop(frame: &Frame, (x0, y0, x1, y1): (usize, usize, usize, usize)) -> Frame {
    let (x1, y1) = (x1.min(frame.width), y1.min(frame.height));
    let (x0, y0) = (x0.min(x1), y0.min(y1));
    let mut rgb = Vec::with_capacity((x1 - x0) * (y1 - y0) * 3);
    for y in y0..y1 {
        rgb.extend_from_slice(&frame.rgb[(y * frame.width + x0) * 3..(y * frame.width + x1) * 3]);
    }
    Frame {
        width: x1 - x0,
        height: y1 - y0,
        rgb,
    }
}
