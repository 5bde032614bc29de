//! The Wan2.1 causal 3-D video VAE (`WanVAE` in `wan/modules/vae.py`).
//!
//! Videos are `[3, T, H, W]` in [−1, 1]; latents are `[z_dim, t, H/8, W/8]` normalised with
//! the per-channel mean and std, `t = 1 + (T − 1)/4`. Encoding runs in chunks of 1, 4, 4, …
//! frames and decoding one latent frame at a time, with per-layer frame caches, exactly as the
//! reference does; memory is bounded by one chunk at full resolution.

mod blocks;
mod causal_conv;
mod channel_norm;
mod decoder;
mod encoder;
mod gemm_conv;

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

pub use causal_conv::CACHE_T;
use causal_conv::{CausalConv3d, FeatureCache};
use decoder::Decoder3d;
use encoder::Encoder3d;
pub use gemm_conv::{CONV_TILE_ENV, ConvPrecision};

use crate::engine::config::VaeConfig;

/// Pixel frames per encoder chunk after the first (single) frame.
const FRAMES_PER_CHUNK: usize = 4;

/// The VAE with its latent normalisation; computes in f32.
#[derive(Debug, Clone)]
pub struct WanVae {
    cfg: VaeConfig,
    encoder: Encoder3d,
    /// 1×1×1 conv on the encoder output (mean ‖ log-variance).
    conv1: CausalConv3d,
    /// 1×1×1 conv on the latent before decoding.
    conv2: CausalConv3d,
    decoder: Decoder3d,
    /// `[z, 1, 1, 1]` after moving channels first, see [`WanVae::normalize`].
    mean: Tensor,
    /// `1/std` in f32, as the reference stores it.
    inv_std: Tensor,
    /// How the GPU kernels form the convolutions.
    precision: ConvPrecision,
}

impl WanVae {
    /// Builds the VAE from weights named as in `Wan2.1_VAE.pth`.
    pub fn new(cfg: &VaeConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::Msg)?;
        let vb = vb.to_dtype(DType::F32);
        let z = cfg.z_dim;
        let device = vb.device();
        let inv_std: Vec<f32> = cfg.std.iter().map(|s| 1.0 / s).collect();
        Ok(Self {
            encoder: Encoder3d::new(cfg, vb.pp("encoder"))?,
            conv1: CausalConv3d::new(2 * z, 2 * z, [1, 1, 1], [0, 0, 0], 1, None, vb.pp("conv1"))?,
            conv2: CausalConv3d::new(z, z, [1, 1, 1], [0, 0, 0], 1, None, vb.pp("conv2"))?,
            decoder: Decoder3d::new(cfg, vb.pp("decoder"))?,
            mean: Tensor::from_slice(&cfg.mean, (1, z, 1, 1), device)?,
            inv_std: Tensor::from_slice(&inv_std, (1, z, 1, 1), device)?,
            precision: ConvPrecision::default(),
            cfg: cfg.clone(),
        })
    }

    /// The same VAE with its GPU convolutions formed in `precision` (exact f32 by default).
    pub fn with_conv_precision(mut self, precision: ConvPrecision) -> Self {
        self.precision = precision;
        self
    }

    /// How this VAE's convolutions are computed: as set, or as [`gemm_conv::VAE_PRECISION_ENV`]
    /// forces; always exact where the GPU kernels do not run them (the CPU).
    pub fn conv_precision(&self) -> ConvPrecision {
        if gemm_conv::available(self.mean.device(), [3, 3, 3]) {
            self.precision.effective()
        } else {
            ConvPrecision::Exact
        }
    }

    pub fn config(&self) -> &VaeConfig {
        &self.cfg
    }

    /// Latent frames for `frames` pixel frames (`1 + (T − 1)/4`; trailing frames that do not
    /// fill a chunk are ignored, as in the reference).
    pub fn latent_frames(&self, frames: usize) -> usize {
        1 + frames.saturating_sub(1) / FRAMES_PER_CHUNK
    }

    /// Encodes a video `[3, T, H, W]` in [−1, 1] (H, W multiples of 8) to the normalised mean
    /// latent `[z_dim, t, H/8, W/8]`.
    pub fn encode(&self, video: &Tensor) -> Result<Tensor> {
        let (c, frames, _, _) = video.dims4()?;
        if c != 3 || frames == 0 {
            candle_core::bail!("VAE encode expects [3, T>0, H, W], got {:?}", video.dims());
        }
        let _precision = gemm_conv::precision_scope(self.precision);
        let x = video.to_dtype(DType::F32)?.transpose(0, 1)?.contiguous()?; // [T, 3, H, W]
        let mut cache = FeatureCache::new(self.encoder.slot_count());
        let chunks = self.latent_frames(frames);
        let mut outputs = Vec::with_capacity(chunks);
        for i in 0..chunks {
            let chunk = if i == 0 {
                x.narrow(0, 0, 1)?
            } else {
                x.narrow(0, 1 + FRAMES_PER_CHUNK * (i - 1), FRAMES_PER_CHUNK)?
            };
            outputs.push(self.encoder.forward(&chunk, &mut cache)?);
        }
        let moments = self.conv1.forward(&Tensor::cat(&outputs, 0)?, None)?;
        let mu = moments.narrow(1, 0, self.cfg.z_dim)?;
        let z = mu.broadcast_sub(&self.mean)?.broadcast_mul(&self.inv_std)?;
        z.transpose(0, 1)?.contiguous() // [z, t, h, w]
    }

    /// Decodes a normalised latent `[z_dim, t, h, w]` to `[3, 1 + 4(t − 1), 8h, 8w]` without
    /// clamping.
    pub fn decode_unclamped(&self, latent: &Tensor) -> Result<Tensor> {
        let (c, t, _, _) = latent.dims4()?;
        if c != self.cfg.z_dim || t == 0 {
            candle_core::bail!(
                "VAE decode expects [{}, t>0, h, w], got {:?}",
                self.cfg.z_dim,
                latent.dims()
            );
        }
        let _precision = gemm_conv::precision_scope(self.precision);
        let z = latent.to_dtype(DType::F32)?.transpose(0, 1)?.contiguous()?; // [t, z, h, w]
        // The reference divides by the stored reciprocal rather than multiplying by std.
        let mu = z.broadcast_div(&self.inv_std)?.broadcast_add(&self.mean)?;
        let x = self.conv2.forward(&mu, None)?;
        let mut cache = FeatureCache::new(self.decoder.slot_count());
        let mut frames = Vec::with_capacity(1 + 4 * (t - 1));
        for i in 0..t {
            frames.push(self.decoder.forward(&x.narrow(0, i, 1)?, &mut cache)?);
        }
        Tensor::cat(&frames, 0)?.transpose(0, 1)?.contiguous()
    }

    /// Decodes a normalised latent to a video in [−1, 1].
    pub fn decode(&self, latent: &Tensor) -> Result<Tensor> {
        self.decode_unclamped(latent)?.clamp(-1f32, 1f32)
    }
}
