//! Model configurations: the DiT (`config.json` of a Wan2.1-VACE folder), the video VAE and
//! the UMT5 text encoder, with the published presets and the built-in `tiny` one.
//!
//! Values follow Wan-Video/Wan2.1 at `9737cba9`: `wan/configs/wan_t2v_1_3B.py`,
//! `wan_t2v_14B.py`, `wan/modules/vae.py` (`_video_vae`), `wan/modules/t5.py` (`umt5_xxl`).

use serde::{Deserialize, Serialize};

/// Hyper-parameters of the VACE diffusion transformer (`VaceWanModel`).
///
/// Deserializes from a checkpoint's `config.json`; keys the reference leaves out of that file
/// (`patch_size`, `window_size`, `qk_norm`, `cross_attn_norm`, `text_dim`) take the
/// constructor defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DitConfig {
    #[serde(default = "default_patch_size")]
    pub patch_size: [usize; 3],
    #[serde(default = "default_text_len")]
    pub text_len: usize,
    #[serde(default = "default_latent_channels")]
    pub in_dim: usize,
    pub dim: usize,
    pub ffn_dim: usize,
    #[serde(default = "default_freq_dim")]
    pub freq_dim: usize,
    #[serde(default = "default_text_dim")]
    pub text_dim: usize,
    #[serde(default = "default_latent_channels")]
    pub out_dim: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    #[serde(default = "default_window_size")]
    pub window_size: [i64; 2],
    #[serde(default = "default_true")]
    pub qk_norm: bool,
    #[serde(default = "default_true")]
    pub cross_attn_norm: bool,
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// Main blocks after which a VACE hint is added; absent means every second layer.
    #[serde(default)]
    pub vace_layers: Option<Vec<usize>>,
    /// Channels of the VACE context (16 inactive + 16 reactive + 64 mask); absent means `in_dim`.
    #[serde(default)]
    pub vace_in_dim: Option<usize>,
}

fn default_patch_size() -> [usize; 3] {
    [1, 2, 2]
}
fn default_text_len() -> usize {
    512
}
fn default_latent_channels() -> usize {
    16
}
fn default_freq_dim() -> usize {
    256
}
fn default_text_dim() -> usize {
    4096
}
fn default_window_size() -> [i64; 2] {
    [-1, -1]
}
fn default_true() -> bool {
    true
}
fn default_eps() -> f64 {
    1e-6
}

impl DitConfig {
    /// VACE-1.3B (`Wan-AI/Wan2.1-VACE-1.3B`, from `wan_t2v_1_3B.py` plus the VACE keys).
    pub fn vace_1_3b() -> Self {
        Self {
            patch_size: default_patch_size(),
            text_len: default_text_len(),
            in_dim: 16,
            dim: 1536,
            ffn_dim: 8960,
            freq_dim: default_freq_dim(),
            text_dim: default_text_dim(),
            out_dim: 16,
            num_heads: 12,
            num_layers: 30,
            window_size: default_window_size(),
            qk_norm: true,
            cross_attn_norm: true,
            eps: default_eps(),
            vace_layers: Some((0..30).step_by(2).collect()),
            vace_in_dim: Some(96),
        }
    }

    /// VACE-14B (`Wan-AI/Wan2.1-VACE-14B`, from `wan_t2v_14B.py` plus the VACE keys).
    pub fn vace_14b() -> Self {
        Self {
            dim: 5120,
            ffn_dim: 13824,
            num_heads: 40,
            num_layers: 40,
            vace_layers: Some((0..40).step_by(5).collect()),
            ..Self::vace_1_3b()
        }
    }

    /// The built-in test model: the real architecture at small widths.
    pub fn tiny() -> Self {
        Self {
            text_len: 64,
            dim: 64,
            ffn_dim: 128,
            text_dim: T5Config::tiny().dim,
            num_heads: 2,
            num_layers: 4,
            vace_layers: Some(vec![0, 2]),
            ..Self::vace_1_3b()
        }
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.num_heads
    }

    /// The main blocks that receive a VACE hint, in order.
    pub fn vace_layers(&self) -> Vec<usize> {
        self.vace_layers
            .clone()
            .unwrap_or_else(|| (0..self.num_layers).step_by(2).collect())
    }

    /// Channels of the VACE context tensor.
    pub fn vace_in_dim(&self) -> usize {
        self.vace_in_dim.unwrap_or(self.in_dim)
    }

    /// Checks the invariants the model code relies on; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_heads == 0 || self.dim % self.num_heads != 0 {
            return Err(format!(
                "`dim` ({}) must be a multiple of `num_heads` ({})",
                self.dim, self.num_heads
            ));
        }
        let head_dim = self.head_dim();
        if head_dim % 2 != 0 || head_dim < 6 {
            return Err(format!(
                "head width dim/num_heads = {head_dim} must be even and at least 6"
            ));
        }
        if self.window_size != [-1, -1] {
            return Err(format!(
                "`window_size` {:?} is not supported; only global attention [-1, -1] is",
                self.window_size
            ));
        }
        if self.patch_size.contains(&0) {
            return Err(format!(
                "`patch_size` {:?} must be positive",
                self.patch_size
            ));
        }
        let layers = self.vace_layers();
        if !layers.contains(&0) {
            return Err(format!("`vace_layers` {layers:?} must contain layer 0"));
        }
        if layers.windows(2).any(|w| w[0] >= w[1]) {
            return Err(format!(
                "`vace_layers` {layers:?} must be strictly increasing"
            ));
        }
        if let Some(&last) = layers.last()
            && last >= self.num_layers
        {
            return Err(format!(
                "`vace_layers` {layers:?} names layer {last} but the model has {} layers",
                self.num_layers
            ));
        }
        Ok(())
    }
}

/// The 16 per-channel latent means of the Wan2.1 VAE (`WanVAE.mean` in `vae.py`).
pub const LATENT_MEAN: [f32; 16] = [
    -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508, 0.4134, -0.0715, 0.5517,
    -0.3632, -0.1922, -0.9497, 0.2503, -0.2921,
];

/// The 16 per-channel latent standard deviations of the Wan2.1 VAE (`WanVAE.std` in `vae.py`).
pub const LATENT_STD: [f32; 16] = [
    2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743, 3.2687, 2.1526, 2.8652, 1.5579,
    1.6382, 1.1253, 2.8251, 1.9160,
];

/// Hyper-parameters of the causal 3-D video VAE (`WanVAE_`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VaeConfig {
    pub dim: usize,
    pub z_dim: usize,
    pub dim_mult: Vec<usize>,
    pub num_res_blocks: usize,
    /// Spatial scales (1, 0.5, 0.25 ...) whose stages carry an attention block.
    #[serde(default)]
    pub attn_scales: Vec<f64>,
    pub temperal_downsample: Vec<bool>,
    /// Per-channel latent mean used to normalise latents.
    #[serde(default = "default_latent_mean")]
    pub mean: Vec<f32>,
    /// Per-channel latent standard deviation used to normalise latents.
    #[serde(default = "default_latent_std")]
    pub std: Vec<f32>,
}

fn default_latent_mean() -> Vec<f32> {
    LATENT_MEAN.to_vec()
}
fn default_latent_std() -> Vec<f32> {
    LATENT_STD.to_vec()
}

impl VaeConfig {
    /// `Wan2.1_VAE.pth` as published (`_video_vae(dim=96, z_dim=16)`).
    pub fn wan2_1() -> Self {
        Self {
            dim: 96,
            z_dim: 16,
            dim_mult: vec![1, 2, 4, 4],
            num_res_blocks: 2,
            attn_scales: vec![],
            temperal_downsample: vec![false, true, true],
            mean: default_latent_mean(),
            std: default_latent_std(),
        }
    }

    /// The built-in test model: the real layer structure at base width 8.
    pub fn tiny() -> Self {
        Self {
            dim: 8,
            ..Self::wan2_1()
        }
    }

    /// Checks the invariants the VAE code relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.dim_mult.len() < 2 {
            return Err(format!(
                "`dim_mult` {:?} needs at least two stages",
                self.dim_mult
            ));
        }
        if self.temperal_downsample.len() + 1 != self.dim_mult.len() {
            return Err(format!(
                "`temperal_downsample` {:?} needs one entry per downsampling stage ({})",
                self.temperal_downsample,
                self.dim_mult.len() - 1
            ));
        }
        if self.mean.len() != self.z_dim || self.std.len() != self.z_dim {
            return Err(format!(
                "latent mean/std have {}/{} entries but z_dim is {}",
                self.mean.len(),
                self.std.len(),
                self.z_dim
            ));
        }
        Ok(())
    }

    /// Pixel frames per latent frame, and pixels per latent pixel.
    pub fn stride(&self) -> (usize, usize) {
        let temporal = 1 << self.temperal_downsample.iter().filter(|&&t| t).count();
        let spatial = 1 << (self.dim_mult.len() - 1);
        (temporal, spatial)
    }
}

/// Hyper-parameters of the UMT5 encoder (`T5Encoder` in `wan/modules/t5.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct T5Config {
    pub vocab: usize,
    pub dim: usize,
    pub dim_attn: usize,
    pub dim_ffn: usize,
    pub num_heads: usize,
    pub num_layers: usize,
    pub num_buckets: usize,
    /// One relative-position table for all blocks (classic T5) or one per block (UMT5).
    #[serde(default)]
    pub shared_pos: bool,
    /// Distance at which the logarithmic position buckets saturate.
    #[serde(default = "default_max_dist")]
    pub max_dist: usize,
    #[serde(default = "default_eps")]
    pub eps: f64,
}

fn default_max_dist() -> usize {
    128
}

impl T5Config {
    /// `umt5_xxl` encoder, as stored in `models_t5_umt5-xxl-enc-bf16.pth`.
    pub fn umt5_xxl() -> Self {
        Self {
            vocab: 256_384,
            dim: 4096,
            dim_attn: 4096,
            dim_ffn: 10240,
            num_heads: 64,
            num_layers: 24,
            num_buckets: 32,
            shared_pos: false,
            max_dist: default_max_dist(),
            eps: default_eps(),
        }
    }

    /// The built-in test encoder; its vocabulary is the byte tokenizer's.
    pub fn tiny() -> Self {
        Self {
            vocab: crate::engine::text::ByteTokenizer::VOCAB_SIZE,
            dim: 32,
            dim_attn: 32,
            dim_ffn: 64,
            num_heads: 4,
            num_layers: 2,
            ..Self::umt5_xxl()
        }
    }

    /// Checks the invariants the encoder code relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_heads == 0 || self.dim_attn % self.num_heads != 0 {
            return Err(format!(
                "attention width {} must be a multiple of the head count {}",
                self.dim_attn, self.num_heads
            ));
        }
        if self.num_buckets < 4 || self.num_buckets % 2 != 0 {
            return Err(format!(
                "`num_buckets` {} must be even and at least 4",
                self.num_buckets
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_published_configs() {
        let small = DitConfig::vace_1_3b();
        assert_eq!(small.head_dim(), 128);
        assert_eq!(small.vace_layers().len(), 15);
        let big = DitConfig::vace_14b();
        assert_eq!(big.head_dim(), 128);
        assert_eq!(big.vace_layers(), vec![0, 5, 10, 15, 20, 25, 30, 35]);
        for cfg in [small, big, DitConfig::tiny()] {
            assert_eq!(cfg.validate(), Ok(()));
        }
        assert_eq!(VaeConfig::wan2_1().stride(), (4, 8));
    }

    #[test]
    fn published_config_json_parses_with_defaults() {
        // The keys of the published Wan2.1-VACE-14B config.json.
        let json = r#"{"_class_name": "VaceWanModel", "_diffusers_version": "0.30.0",
            "dim": 5120, "eps": 1e-06, "ffn_dim": 13824, "freq_dim": 256, "in_dim": 16,
            "model_type": "vace", "num_heads": 40, "num_layers": 40, "out_dim": 16,
            "text_len": 512, "vace_in_dim": 96, "vace_layers": [0,5,10,15,20,25,30,35]}"#;
        let cfg: DitConfig = serde_json::from_str(json).unwrap();
        assert_eq!(cfg, DitConfig::vace_14b());
    }

    #[test]
    fn invalid_vace_layers_are_rejected() {
        let cfg = DitConfig {
            vace_layers: Some(vec![1, 3]),
            ..DitConfig::tiny()
        };
        assert!(cfg.validate().unwrap_err().contains("layer 0"));
        let cfg = DitConfig {
            vace_layers: Some(vec![0, 9]),
            ..DitConfig::tiny()
        };
        assert!(cfg.validate().unwrap_err().contains("layer 9"));
    }
}
