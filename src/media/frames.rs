//! Video tensors `[3, T, H, W]` in [−1, 1] to 8-bit RGB frames and back, the way the
//! reference does it (`⌊(x + 1)/2 · 255⌋` out, `x/127.5 − 1` in), mask videos to `[1, T, H, W]`
//! in [0, 1], and PNG sequences of frames.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

pub use super::error::Error;
pub use super::frame::Frame;

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

/// Converts frames of one size to a video `[3, T, H, W]` f32 in [−1, 1] (`x/127.5 − 1`).
///
/// Fails if the frames differ in size or a frame's buffer does not match its size.
pub fn to_tensor(frames: &[Frame], device: &Device) -> candle_core::Result<Tensor> {
    let (w, h) = common_size(frames)?;
    let plane = h * w;
    let mut data = vec![0f32; 3 * frames.len() * plane];
    for (t, frame) in frames.iter().enumerate() {
        for (i, px) in frame.rgb.chunks_exact(3).enumerate() {
            for (c, &value) in px.iter().enumerate() {
                // Divide, then subtract, in f32: the reference's `.div_(127.5).sub_(1.)`.
                data[(c * frames.len() + t) * plane + i] = value as f32 / 127.5 - 1.0;
            }
        }
    }
    Tensor::from_vec(data, (3, frames.len(), h, w), device)
}

/// Converts mask frames to `[1, T, H, W]` f32 in [0, 1] from their red channel (≈ `r/255`).
///
/// The reference keeps channel 0 of the mask video, not binarised, after a detour through
/// [−1, 1]: `clamp(((r/127.5 − 1) + 1)/2, 0, 1)`. That is `r/255` to within one f32 ulp,
/// and the detour is kept so masks match the reference bit for bit.
pub fn mask_to_tensor(frames: &[Frame], device: &Device) -> candle_core::Result<Tensor> {
    let (w, h) = common_size(frames)?;
    let data: Vec<f32> = frames
        .iter()
        .flat_map(|frame| {
            frame
                .rgb
                .chunks_exact(3)
                .map(|px| (((px[0] as f32 / 127.5 - 1.0) + 1.0) / 2.0).clamp(0.0, 1.0))
        })
        .collect();
    Tensor::from_vec(data, (1, frames.len(), h, w), device)
}

/// The one size all frames share, checking each buffer's length.
fn common_size(frames: &[Frame]) -> candle_core::Result<(usize, usize)> {
    let (w, h) = frames.first().map_or((0, 0), |f| (f.width, f.height));
    for (i, frame) in frames.iter().enumerate() {
        if (frame.width, frame.height) != (w, h) || frame.rgb.len() != w * h * 3 {
            return Err(candle_core::Error::Msg(format!(
                "frame {i} is {}x{} with {} bytes, but frame 0 is {w}x{h}; frames of a video \
                 tensor must share one size",
                frame.width,
                frame.height,
                frame.rgb.len()
            )));
        }
    }
    Ok((w, h))
}

/// Writes `frame-0001.png`, `frame-0002.png`, … into `dir` and returns their paths.
pub fn write_png_sequence(frames: &[Frame], dir: &Path) -> Result<Vec<PathBuf>, Error> {
    frames
        .iter()
        .enumerate()
        .map(|(i, frame)| {
            let path = dir.join(format!("frame-{:04}.png", i + 1));
            super::png::write_png(&path, frame)?;
            Ok(path)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn two_frames() -> Vec<Frame> {
        // 2×1 frames; every byte distinct so a layout mix-up shows.
        vec![
            Frame {
                width: 2,
                height: 1,
                rgb: vec![0, 10, 20, 30, 40, 50],
            },
            Frame {
                width: 2,
                height: 1,
                rgb: vec![60, 70, 80, 90, 100, 255],
            },
        ]
    }

    #[test]
    fn to_tensor_is_channel_first_and_normalised_like_the_reference() {
        let frames = two_frames();
        let video = to_tensor(&frames, &Device::Cpu).unwrap();
        assert_eq!(video.dims(), [3, 2, 1, 2]);
        let values = video.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let expected: Vec<f32> = [0u8, 30, 60, 90, 10, 40, 70, 100, 20, 50, 80, 255]
            .iter()
            .map(|&x| x as f32 / 127.5 - 1.0)
            .collect();
        assert_eq!(values, expected);
        assert_eq!(values[0], -1.0);
        assert_eq!(values[11], 1.0);
    }

    #[test]
    fn mask_uses_the_red_channel_in_zero_one() {
        let mask = mask_to_tensor(&two_frames(), &Device::Cpu).unwrap();
        assert_eq!(mask.dims(), [1, 2, 1, 2]);
        let values = mask.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (value, red) in values.iter().zip([0u8, 30, 60, 90]) {
            assert!(
                (value - red as f32 / 255.0).abs() <= f32::EPSILON,
                "{value} vs {red}"
            );
        }
        assert_eq!(values[0], 0.0);
        let white = mask_to_tensor(&[Frame::filled(1, 1, [255, 0, 0])], &Device::Cpu).unwrap();
        assert_eq!(
            white.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [1.0]
        );
    }

    #[test]
    fn mask_keeps_the_references_rounding() {
        // 1/255 via the reference's detour is one ulp below the direct quotient.
        let frame = Frame::filled(1, 1, [1, 0, 0]);
        let value = mask_to_tensor(&[frame], &Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()[0];
        assert_eq!(value, 0.003_921_568_4);
        assert_ne!(value, 1.0 / 255.0);
    }

    #[test]
    fn mixed_sizes_are_refused() {
        let mut frames = two_frames();
        frames[1] = Frame::filled(1, 1, [0, 0, 0]);
        let err = to_tensor(&frames, &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("frame 1 is 1x1"), "{err}");
        assert!(mask_to_tensor(&frames, &Device::Cpu).is_err());
    }
}
