//! The VACE context (spec §6.3–6.5, `vace_encode_frames` / `vace_encode_masks` in
//! `wan/vace.py`): 16 latent channels of the kept ("inactive") pixels, 16 of the pixels to
//! regenerate ("reactive"), and 64 channels holding the mask's 8×8 pixel blocks; reference
//! images go first in time, with zero reactive and mask channels.

use candle_core::{DType, Device, Result, Tensor};

use crate::engine::vae::WanVae;

/// Pixel-space inputs of one generation, as the reference's `prepare_source` leaves them.
#[derive(Debug, Clone)]
pub struct VaceInputs {
    /// `[3, T, H, W]` in [−1, 1]; T = 4k+1, H and W multiples of 16.
    pub frames: Tensor,
    /// `[1 or 3, T, H, W]` in [0, 1], 1 where pixels are generated. Binarised at 0.5 for the
    /// frame split; the mask channels keep fractional values.
    pub mask: Tensor,
    /// Reference images `[3, 1, H, W]` in [−1, 1], already letterboxed onto the canvas.
    pub refs: Vec<Tensor>,
}

impl VaceInputs {
    /// Text-to-video: an all-zero (mid-grey) video and a mask that regenerates everything.
    pub fn blank(frames: usize, height: usize, width: usize, device: &Device) -> Result<Self> {
        Ok(Self {
            frames: Tensor::zeros((3, frames, height, width), DType::F32, device)?,
            mask: Tensor::ones((3, frames, height, width), DType::F32, device)?,
            refs: Vec::new(),
        })
    }

    /// `(T, H, W)` of the video.
    pub fn video_shape(&self) -> Result<(usize, usize, usize)> {
        let (_, t, h, w) = self.frames.dims4()?;
        Ok((t, h, w))
    }

    fn validate(&self, spatial_stride: usize) -> Result<()> {
        let (c, t, h, w) = self.frames.dims4()?;
        let (mc, mt, mh, mw) = self.mask.dims4()?;
        let grid = 2 * spatial_stride;
        if c != 3 || t == 0 || (t - 1) % 4 != 0 || h % grid != 0 || w % grid != 0 {
            candle_core::bail!(
                "source video must be [3, 4k+1, H, W] with H, W multiples of {grid}, got {:?}",
                self.frames.dims()
            );
        }
        if !(mc == 1 || mc == 3) || (mt, mh, mw) != (t, h, w) {
            candle_core::bail!(
                "mask {:?} does not fit the video {:?}",
                self.mask.dims(),
                self.frames.dims()
            );
        }
        if let Some(bad) = self.refs.iter().find(|r| r.dims() != [3, 1, h, w]) {
            candle_core::bail!(
                "reference image {:?} is not on the [3, 1, {h}, {w}] canvas",
                bad.dims()
            );
        }
        Ok(())
    }
}

/// `[2·z, n_ref + t, h, w]`: the VAE latents of `frames·(1 − m)` and `frames·m` (m the
/// binarised mask), each reference image's latent (with 16 zero channels) in front.
pub fn encode_frames(vae: &WanVae, inputs: &VaceInputs) -> Result<Tensor> {
    let frames = inputs.frames.to_dtype(DType::F32)?;
    let m = inputs
        .mask
        .to_dtype(DType::F32)?
        .gt(0.5)?
        .to_dtype(DType::F32)?;
    let inactive = frames.broadcast_mul(&(1.0 - &m)?)?;
    let reactive = frames.broadcast_mul(&m)?;
    let video = Tensor::cat(&[vae.encode(&inactive)?, vae.encode(&reactive)?], 0)?;
    let mut parts = Vec::with_capacity(inputs.refs.len() + 1);
    for reference in &inputs.refs {
        let latent = vae.encode(reference)?;
        parts.push(Tensor::cat(&[&latent, &latent.zeros_like()?], 0)?);
    }
    parts.push(video);
    Tensor::cat(&parts, 1)
}

/// Latent frame `k` of `latent_frames` takes pixel frame `⌊(k + 0.5)·T/t⌋` (PyTorch's
/// `nearest-exact`, in f32): 1, 5, 9, … for 81 → 21, not 0, 4, 8.
pub fn nearest_exact_frames(pixel_frames: usize, latent_frames: usize) -> Vec<usize> {
    let scale = pixel_frames as f32 / latent_frames as f32;
    (0..latent_frames)
        .map(|k| (((k as f32 + 0.5) * scale).floor() as usize).min(pixel_frames - 1))
        .collect()
}

/// `[s², n_ref + t, H/s, W/s]`: channel `s·py + px` holds pixel (py, px) of each s×s block of
/// mask channel 0, temporally resampled to the latent frames; zero frames for the references.
pub fn encode_masks(mask: &Tensor, n_ref: usize, spatial_stride: usize) -> Result<Tensor> {
    let (_, t, h, w) = mask.dims4()?;
    let s = spatial_stride;
    let (lh, lw) = (2 * (h / (2 * s)), 2 * (w / (2 * s)));
    let latent_frames = t.div_ceil(4);
    let folded = mask
        .to_dtype(DType::F32)?
        .narrow(0, 0, 1)?
        .squeeze(0)?
        .reshape((t, lh, s, lw, s))?
        // (py, px, T, h, w)
        .permute((2, 4, 0, 1, 3))?
        .reshape((s * s, t, lh, lw))?;
    let ids: Vec<u32> = nearest_exact_frames(t, latent_frames)
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let resampled = folded.index_select(&Tensor::new(ids.as_slice(), mask.device())?, 1)?;
    resampled.pad_with_zeros(1, n_ref, 0)
}

/// The full VACE context `[2·z + s², n_ref + t, h, w]` the DiT's VACE branch reads.
pub fn vace_context(vae: &WanVae, inputs: &VaceInputs) -> Result<Tensor> {
    let (_, spatial) = vae.config().stride();
    inputs.validate(spatial)?;
    let frames = encode_frames(vae, inputs)?;
    let masks = encode_masks(&inputs.mask, inputs.refs.len(), spatial)?;
    Tensor::cat(&[frames, masks], 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_mask_sampling_matches_the_spec() {
        // Spec §6.4.
        assert_eq!(
            nearest_exact_frames(81, 21),
            [
                1, 5, 9, 13, 17, 21, 25, 28, 32, 36, 40, 44, 48, 52, 55, 59, 63, 67, 71, 75, 79
            ]
        );
        assert_eq!(
            nearest_exact_frames(41, 11),
            [1, 5, 9, 13, 16, 20, 24, 27, 31, 35, 39]
        );
        assert_eq!(nearest_exact_frames(1, 1), [0]);
    }

    #[test]
    fn mask_blocks_fold_into_channels_row_major() {
        let dev = Device::Cpu;
        // One frame, 16×16: mark pixel (row 3, col 5) of the top-left 8×8 block.
        let mut values = vec![0f32; 16 * 16];
        values[3 * 16 + 5] = 1.0;
        let mask = Tensor::from_vec(values, (1, 1, 16, 16), &dev).unwrap();
        let folded = encode_masks(&mask, 1, 8).unwrap();
        assert_eq!(folded.dims(), [64, 2, 2, 2]);
        let flat: Vec<f32> = folded.flatten_all().unwrap().to_vec1().unwrap();
        // Reference frame first (all zero), then the video frame with channel 8·3 + 5 set at
        // latent pixel (0, 0): index ((channel·2 + frame)·2 + y)·2 + x.
        let set: Vec<usize> = (0..flat.len()).filter(|&i| flat[i] != 0.0).collect();
        assert_eq!(set, [(((3 * 8 + 5) * 2 + 1) * 2) * 2]);
        assert_eq!(flat[set[0]], 1.0);
    }
}
