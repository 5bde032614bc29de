//! PNG files of frames (posters, contact sheets, frame sequences), through the `image` crate.

use std::path::Path;

use super::error::Error;
use super::frame::Frame;

/// Writes one frame as a PNG.
pub fn write_png(path: &Path, frame: &Frame) -> Result<(), Error> {
    let write_error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    if frame.rgb.len() != frame.width * frame.height * 3 {
        // The encoder would panic on a short buffer; say so instead.
        return Err(write_error(image::ImageError::Parameter(
            image::error::ParameterError::from_kind(
                image::error::ParameterErrorKind::DimensionMismatch,
            ),
        )));
    }
    image::save_buffer_with_format(
        path,
        &frame.rgb,
        frame.width as u32,
        frame.height as u32,
        image::ColorType::Rgb8,
        image::ImageFormat::Png,
    )
    .map_err(write_error)
}
