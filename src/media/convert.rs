//! Pixel-format conversion with swscale between FFmpeg frames and RGB8 `Frame`s.
//!
//! Decoding honours the video's colour matrix (BT.601/709/2020) and range, so HD videos
//! tagged BT.709 and full-range phone videos come out with the right colours; untagged
//! videos get the players' guess (BT.709 for HD, BT.601 below). Encoding writes limited
//! range in the matrix the caller tags the stream with.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::ffi;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling::{self, Flags};
use ffmpeg_next::util::color;
use ffmpeg_next::util::frame::video::Video;

use super::frame::Frame;

/// Decoded frames of any pixel format to RGB8 frames of the first frame's size.
pub(crate) struct ToRgb {
    scaler: Option<(SourceKey, scaling::Context)>,
    size: Option<(u32, u32)>,
}

/// What a scaler was built for; a change mid-stream needs a new one.
#[derive(PartialEq, Eq, Clone, Copy)]
struct SourceKey {
    format: Pixel,
    width: u32,
    height: u32,
    space: color::Space,
    range: color::Range,
}

impl ToRgb {
    pub(crate) fn new() -> ToRgb {
        ToRgb {
            scaler: None,
            size: None,
        }
    }

    /// Converts one decoded frame. A stream that changes size mid-way is scaled back to
    /// its first size so that all frames of a clip share one size.
    pub(crate) fn convert(&mut self, frame: &Video) -> Result<Frame, ffmpeg::Error> {
        let key = SourceKey {
            format: frame.format(),
            width: frame.width(),
            height: frame.height(),
            space: frame.color_space(),
            range: frame.color_range(),
        };
        let (out_w, out_h) = *self.size.get_or_insert((key.width, key.height));
        let scaler = match &mut self.scaler {
            Some((built_for, scaler)) if *built_for == key => scaler,
            slot => {
                let mut scaler = scaling::Context::get(
                    key.format,
                    key.width,
                    key.height,
                    Pixel::RGB24,
                    out_w,
                    out_h,
                    // Interpolated chroma rather than swscale's nearest-neighbour fast path.
                    Flags::BICUBIC | Flags::ACCURATE_RND,
                )?;
                let full_range = key.range == color::Range::JPEG || is_jpeg_format(key.format);
                let space = if is_yuv_tagged(key.space) {
                    key.space
                } else {
                    untagged_guess(key.width, key.height)
                };
                set_matrix(&mut scaler, space, full_range, Direction::FromYuv);
                &mut slot.insert((key, scaler)).1
            }
        };
        let mut rgb = Video::empty();
        scaler.run(frame, &mut rgb)?;
        Ok(packed_rgb(&rgb))
    }
}

/// RGB8 frames of one size to frames of an encoder's pixel format.
pub(crate) struct FromRgb {
    scaler: scaling::Context,
    width: u32,
    height: u32,
}

impl FromRgb {
    /// A converter for `width`×`height` frames to `format`, limited range with the YUV
    /// matrix of `space`.
    pub(crate) fn new(
        width: u32,
        height: u32,
        format: Pixel,
        space: color::Space,
    ) -> Result<FromRgb, ffmpeg::Error> {
        let mut scaler = scaling::Context::get(
            Pixel::RGB24,
            width,
            height,
            format,
            width,
            height,
            Flags::BICUBIC | Flags::ACCURATE_RND,
        )?;
        set_matrix(&mut scaler, space, false, Direction::ToYuv);
        Ok(FromRgb {
            scaler,
            width,
            height,
        })
    }

    /// Converts one frame, which must have the converter's size.
    pub(crate) fn convert(&mut self, frame: &Frame) -> Result<Video, ffmpeg::Error> {
        let mut rgb = Video::new(Pixel::RGB24, self.width, self.height);
        let row_bytes = self.width as usize * 3;
        let stride = rgb.stride(0);
        let data = rgb.data_mut(0);
        for (y, row) in frame
            .rgb
            .chunks_exact(row_bytes)
            .take(self.height as usize)
            .enumerate()
        {
            data[y * stride..y * stride + row_bytes].copy_from_slice(row);
        }
        let mut out = Video::empty();
        self.scaler.run(&rgb, &mut out)?;
        Ok(out)
    }
}

/// Copies an RGB24 FFmpeg frame, whose rows may be padded, into a packed `Frame`.
fn packed_rgb(rgb: &Video) -> Frame {
    let (width, height) = (rgb.width() as usize, rgb.height() as usize);
    let stride = rgb.stride(0);
    let data = rgb.data(0);
    let mut packed = Vec::with_capacity(width * height * 3);
    for y in 0..height {
        packed.extend_from_slice(&data[y * stride..y * stride + width * 3]);
    }
    Frame {
        width,
        height,
        rgb: packed,
    }
}

/// Whether the stream names a YUV matrix (as opposed to RGB or nothing).
fn is_yuv_tagged(space: color::Space) -> bool {
    !matches!(
        space,
        color::Space::RGB | color::Space::Unspecified | color::Space::Reserved
    )
}

/// The matrix of an untagged video, guessed by size as players do: BT.709 for HD,
/// BT.601 below.
fn untagged_guess(width: u32, height: u32) -> color::Space {
    if width >= 1280 || height > 576 {
        color::Space::BT709
    } else {
        color::Space::SMPTE170M
    }
}

/// The deprecated `yuvj*` formats are full range by definition.
fn is_jpeg_format(format: Pixel) -> bool {
    matches!(
        format,
        Pixel::YUVJ420P | Pixel::YUVJ422P | Pixel::YUVJ444P | Pixel::YUVJ440P | Pixel::YUVJ411P
    )
}

enum Direction {
    FromYuv,
    ToYuv,
}

/// Tells swscale which YUV matrix and range the YUV side uses, leaving the RGB side as
/// swscale set it up (changing that skews colours).
fn set_matrix(
    scaler: &mut scaling::Context,
    space: color::Space,
    full_range: bool,
    dir: Direction,
) {
    let sws_space = match space {
        color::Space::BT709 => ffi::SWS_CS_ITU709,
        color::Space::FCC => ffi::SWS_CS_FCC,
        color::Space::SMPTE240M => ffi::SWS_CS_SMPTE240M,
        color::Space::BT2020NCL | color::Space::BT2020CL => ffi::SWS_CS_BT2020,
        _ => ffi::SWS_CS_ITU601,
    };
    // SAFETY: the context is live for both calls; the tables are swscale's own (static
    // or owned by the context) and only read. A refusal (-1, for a conversion without a
    // YUV side) leaves swscale's defaults, which is all we could do anyway.
    unsafe {
        let ctx = scaler.as_mut_ptr();
        let (mut inv_table, mut table) = (std::ptr::null_mut(), std::ptr::null_mut());
        let (mut src_range, mut dst_range) = (0, 0);
        let (mut brightness, mut contrast, mut saturation) = (0, 0, 0);
        let got = ffi::sws_getColorspaceDetails(
            ctx,
            &mut inv_table,
            &mut src_range,
            &mut table,
            &mut dst_range,
            &mut brightness,
            &mut contrast,
            &mut saturation,
        );
        if got < 0 {
            return;
        }
        let coefficients = ffi::sws_getCoefficients(sws_space);
        let yuv_range = i32::from(full_range);
        match dir {
            Direction::FromYuv => ffi::sws_setColorspaceDetails(
                ctx,
                coefficients,
                yuv_range,
                table,
                dst_range,
                brightness,
                contrast,
                saturation,
            ),
            Direction::ToYuv => ffi::sws_setColorspaceDetails(
                ctx,
                inv_table,
                src_range,
                coefficients,
                yuv_range,
                brightness,
                contrast,
                saturation,
            ),
        };
    }
}
