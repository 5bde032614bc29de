//! `Frame`, the one in-memory picture type of the `media` module: 8-bit RGB, row-major.
//!
//! Decoders produce it, resizing and encoders consume it, and `frames` converts it to and
//! from the engine's tensors, so it is deliberately a plain buffer with no colour metadata.

/// One RGB frame, 8 bits per channel, row-major, `width · height · 3` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Pixels as `R, G, B` bytes, row after row.
    pub rgb: Vec<u8>,
}

impl Frame {
    /// An empty 0×0 frame, what `poster` gives for an empty clip.
    pub const EMPTY: Frame = Frame {
        width: 0,
        height: 0,
        rgb: Vec::new(),
    };

    /// A frame of one colour.
    pub fn filled(width: usize, height: usize, rgb: [u8; 3]) -> Frame {
        Frame {
            width,
            height,
            rgb: rgb.repeat(width * height),
        }
    }

    /// The pixel at column `x`, row `y`.
    ///
    /// Panics if the position lies outside the frame, like slice indexing.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        assert!(x < self.width && y < self.height, "pixel outside the frame");
        let at = (y * self.width + x) * 3;
        [self.rgb[at], self.rgb[at + 1], self.rgb[at + 2]]
    }

    /// As an `image` buffer; a buffer of the wrong length is padded or cut to fit the size.
    pub(crate) fn to_image(&self) -> image::RgbImage {
        let mut rgb = self.rgb.clone();
        rgb.resize(self.width * self.height * 3, 0);
        image::RgbImage::from_raw(self.width as u32, self.height as u32, rgb)
            .unwrap_or_else(|| image::RgbImage::new(self.width as u32, self.height as u32))
    }

    /// From an `image` buffer.
    pub(crate) fn from_image(image: image::RgbImage) -> Frame {
        Frame {
            width: image.width() as usize,
            height: image.height() as usize,
            rgb: image.into_raw(),
        }
    }
}
