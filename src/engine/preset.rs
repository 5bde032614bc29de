//! Which model to run: a downloaded checkpoint folder, or a preset built from seeded random
//! weights (`tiny` for tests and demos, `vace-1.3b` / `vace-14b` for benchmarks at the real
//! shapes).

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

use crate::engine::checkpoint::{LoadError, ModelDir};
use crate::engine::config::{DitConfig, T5Config, VaeConfig};
use crate::engine::dit::WanModel;
use crate::engine::pipeline::Pipeline;
use crate::engine::random_weights::RandomWeights;
use crate::engine::text::{
    ByteTokenizer, HostEncoder, PromptTokenizer, TextEncoder, Umt5Encoder, weights_stay_on_host,
};
use crate::engine::vae::{ConvPrecision, WanVae};

/// Seed of the built-in random weights; fixed so `tiny` is the same model everywhere.
pub const RANDOM_WEIGHTS_SEED: u64 = 0x5641_4345; // "VACE"

/// A model with built-in configuration and seeded random weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Tiny,
    Vace1_3b,
    Vace14b,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Tiny, Preset::Vace1_3b, Preset::Vace14b];

    pub fn name(self) -> &'static str {
        match self {
            Self::Tiny => "tiny",
            Self::Vace1_3b => "vace-1.3b",
            Self::Vace14b => "vace-14b",
        }
    }

    pub fn dit_config(self) -> DitConfig {
        match self {
            Self::Tiny => DitConfig::tiny(),
            Self::Vace1_3b => DitConfig::vace_1_3b(),
            Self::Vace14b => DitConfig::vace_14b(),
        }
    }

    pub fn vae_config(self) -> VaeConfig {
        match self {
            Self::Tiny => VaeConfig::tiny(),
            Self::Vace1_3b | Self::Vace14b => VaeConfig::wan2_1(),
        }
    }

    pub fn t5_config(self) -> T5Config {
        match self {
            Self::Tiny => T5Config::tiny(),
            Self::Vace1_3b | Self::Vace14b => T5Config {
                vocab: ByteTokenizer::VOCAB_SIZE,
                ..T5Config::umt5_xxl()
            },
        }
    }

    /// Builds the three models with seeded random weights; prompts use the byte tokenizer.
    /// The published sizes draw their weights on the device (seconds, not minutes); `tiny`
    /// draws on the host, so it is the same model on every machine.
    pub fn random_pipeline(self, device: &Device, dtype: DType) -> candle_core::Result<Pipeline> {
        let weights = self.random_weights(device)?;
        let dit_cfg = self.dit_config();
        let dit = WanModel::new(&dit_cfg, weights.var_builder(dtype, device))?;
        let vae = WanVae::new(
            &self.vae_config(),
            weights.var_builder(DType::F32, device).pp("vae"),
        )?
        .with_conv_precision(ConvPrecision::for_compute_dtype(dtype));
        let text_vb = weights.var_builder(dtype, device).pp("text");
        let tokenizer = PromptTokenizer::Bytes(ByteTokenizer);
        let text = if weights_stay_on_host(device) {
            let host = HostEncoder::capture(&self.t5_config(), text_vb)?;
            TextEncoder::host_resident(tokenizer, host, dit_cfg.text_len, device.clone())
        } else {
            let encoder = Umt5Encoder::new(&self.t5_config(), text_vb)?;
            TextEncoder::new(tokenizer, encoder, dit_cfg.text_len, device.clone())
        };
        Ok(Pipeline { dit, vae, text })
    }
}

impl Preset {
    /// The DiT alone, with the same random weights as in [`Self::random_pipeline`] (for
    /// measuring it without the other models in memory).
    pub fn random_dit(self, device: &Device, dtype: DType) -> candle_core::Result<WanModel> {
        let weights = self.random_weights(device)?;
        WanModel::new(&self.dit_config(), weights.var_builder(dtype, device))
    }

    fn random_weights(self, device: &Device) -> candle_core::Result<std::sync::Arc<RandomWeights>> {
        if self == Self::Tiny || device.is_cpu() {
            Ok(RandomWeights::new(RANDOM_WEIGHTS_SEED))
        } else {
            device.set_seed(RANDOM_WEIGHTS_SEED)?;
            Ok(RandomWeights::on_device(RANDOM_WEIGHTS_SEED))
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|p| p.name()).collect();
                format!(
                    "unknown model preset `{s}`; use one of {} or a checkpoint folder",
                    names.join(", ")
                )
            })
    }
}

/// The `--model` argument: a preset name or a checkpoint folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Preset(Preset),
    Dir(PathBuf),
}

impl ModelSource {
    /// A preset name when it is one, otherwise a folder path.
    pub fn parse(arg: &str) -> Self {
        match arg.parse::<Preset>() {
            Ok(preset) => Self::Preset(preset),
            Err(_) => Self::Dir(PathBuf::from(arg)),
        }
    }

    /// Loads the pipeline: random weights for a preset, the folder's weights otherwise.
    pub fn load(&self, device: &Device, dtype: DType) -> Result<Pipeline, LoadError> {
        match self {
            Self::Preset(preset) => {
                preset
                    .random_pipeline(device, dtype)
                    .map_err(|source| LoadError::Build {
                        file: Path::new(preset.name()).to_owned(),
                        model: "built-in model",
                        source,
                    })
            }
            Self::Dir(dir) => ModelDir::open(dir)?.load_pipeline(device, dtype),
        }
    }

    /// A short name for logs and reports.
    pub fn describe(&self) -> String {
        match self {
            Self::Preset(preset) => format!("{} (built-in random weights)", preset.name()),
            Self::Dir(dir) => dir.display().to_string(),
        }
    }
}
