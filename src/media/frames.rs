//! Video tensors `[3, T, H, W]` in [−1, 1] to 8-bit RGB frames, the way the reference saves
//! them (`⌊(x + 1)/2 · 255⌋`, truncating), and PNG sequences of them.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};

/// Why frames could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("video tensor: {0}")]
    Tensor(#[from] candle_core::Error),
    #[error("{}: cannot write the frame: {source}", path.display())]
    Write {
        path: PathBuf,
        source: image::ImageError,
    },
}

/// One RGB frame, 8 bits per channel, row-major.
#[derive(Debug, Clone)]
pub struct Frame {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// Converts a video `[3, T, H, W]` in [−1, 1] to RGB8 frames.
pub fn to_rgb8(video: &Tensor) -> Result<Vec<Frame>, Error> {
    let (_, _, h, w) = video.dims4()?;
    // [T, H, W, 3], mapped to [0, 255] and truncated like torchvision's save path.
    let pixels = ((video.to_dtype(DType::F32)?.clamp(-1f32, 1f32)? + 1.0)? * 127.5)?
        .permute((1, 2, 3, 0))?
        .floor()?
        .to_dtype(DType::U8)?
        .flatten_all()?
        .to_vec1::<u8>()?;
    Ok(pixels
        .chunks(h * w * 3)
        .map(|rgb| Frame {
            width: w,
            height: h,
            rgb: rgb.to_vec(),
        })
        .collect())
}

/// Writes `frame-0001.png`, `frame-0002.png`, … into `dir` and returns their paths.
pub fn write_png_sequence(frames: &[Frame], dir: &Path) -> Result<Vec<PathBuf>, Error> {
    frames
        .iter()
        .enumerate()
        .map(|(i, frame)| {
            let path = dir.join(format!("frame-{:04}.png", i + 1));
            image::save_buffer(
                &path,
                &frame.rgb,
                frame.width as u32,
                frame.height as u32,
                image::ColorType::Rgb8,
            )
            .map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn pixel_mapping_truncates_like_the_reference() {
        // -1 → 0, 1 → 255, 0 → 127 (127.5 truncated), and out-of-range values clamp.
        let video = Tensor::new(&[-1f32, 0.0, 1.0, 3.0], &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 1, 4))
            .unwrap();
        let video = video
            .broadcast_as((3, 1, 1, 4))
            .unwrap()
            .contiguous()
            .unwrap();
        let frames = to_rgb8(&video).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(
            frames[0].rgb,
            [0, 0, 0, 127, 127, 127, 255, 255, 255, 255, 255, 255]
        );
    }
}
