//! Still images (PNG, JPEG, WebP) as RGB frames, for reference images and image sequences.
//!
//! Transparent pixels are composited on white, as the reference pastes RGBA and palette
//! images onto a white background; greyscale becomes RGB. EXIF orientation is not applied,
//! matching the reference, which loads images as stored.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use image::{DynamicImage, ImageReader};

use super::error::Error;
use super::frame::Frame;

/// Loads a PNG, JPEG or WebP image as an RGB frame, alpha composited on white.
pub fn load_still(path: &Path) -> Result<Frame, Error> {
    let image = reader(path)?
        .decode()
        .map_err(|source| image_error(path, source))?;
    Ok(on_white(image))
}

/// Width and height of an image, read from its header only.
#[cfg(feature = "ffmpeg")]
pub(crate) fn dimensions(path: &Path) -> Result<(usize, usize), Error> {
    let (w, h) = reader(path)?
        .into_dimensions()
        .map_err(|source| image_error(path, source))?;
    Ok((w as usize, h as usize))
}

/// A reader that goes by the file's content, falling back to its extension.
fn reader(path: &Path) -> Result<ImageReader<BufReader<File>>, Error> {
    let io_error = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound {
            path: path.to_path_buf(),
        },
        _ => Error::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    ImageReader::open(path)
        .map_err(io_error)?
        .with_guessed_format()
        .map_err(io_error)
}

fn image_error(path: &Path, source: image::ImageError) -> Error {
    match source {
        image::ImageError::IoError(source) if source.kind() == std::io::ErrorKind::NotFound => {
            Error::NotFound {
                path: path.to_path_buf(),
            }
        }
        source => Error::Image {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// RGB of the image; with alpha, `c·a + 255·(1 − a)` rounded, i.e. pasted on white.
fn on_white(image: DynamicImage) -> Frame {
    if !image.color().has_alpha() {
        return Frame::from_image(image.into_rgb8());
    }
    let rgba = image.into_rgba8();
    let (width, height) = (rgba.width() as usize, rgba.height() as usize);
    let mut rgb = Vec::with_capacity(width * height * 3);
    for px in rgba.pixels() {
        let alpha = u32::from(px[3]);
        for &c in &px.0[..3] {
            // Integer blend with rounding, as PIL's paste with a mask does.
            rgb.push(((u32::from(c) * alpha + 255 * (255 - alpha) + 127) / 255) as u8);
        }
    }
    Frame { width, height, rgb }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_blends_towards_white() {
        let mut rgba = image::RgbaImage::new(3, 1);
        rgba.put_pixel(0, 0, image::Rgba([10, 20, 30, 255]));
        rgba.put_pixel(1, 0, image::Rgba([10, 20, 30, 0]));
        rgba.put_pixel(2, 0, image::Rgba([0, 100, 255, 128]));
        let frame = on_white(DynamicImage::ImageRgba8(rgba));
        // Half-transparent black → (255·127 + 127)/255 = 127; 100 → (12800 + 32385 + 127)/255.
        assert_eq!(
            frame.rgb,
            [10, 20, 30, 255, 255, 255, 127, 177, 255],
            "opaque, transparent, half"
        );
    }

    #[test]
    fn greyscale_becomes_rgb() {
        let grey = image::GrayImage::from_raw(2, 1, vec![7, 200]).unwrap();
        let frame = on_white(DynamicImage::ImageLuma8(grey));
        assert_eq!(frame.rgb, [7, 7, 7, 200, 200, 200]);
        assert_eq!((frame.width, frame.height), (2, 1));
    }
}
