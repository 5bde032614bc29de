//! Loading a Wan2.1-VACE checkpoint folder as published on Hugging Face
//! (`Wan-AI/Wan2.1-VACE-1.3B`, `Wan-AI/Wan2.1-VACE-14B`):
//!
//! ```text
//! config.json                                       DiT configuration
//! diffusion_pytorch_model.safetensors               DiT weights (1.3B), or
//! diffusion_pytorch_model-0000N-of-0000M.safetensors + .index.json (14B, sharded)
//! models_t5_umt5-xxl-enc-bf16.pth                   UMT5-XXL encoder (bf16)
//! Wan2.1_VAE.pth                                    video VAE (f32)
//! google/umt5-xxl/tokenizer.json                    tokenizer
//! ```
//!
//! Weights are memory-mapped and converted per tensor to the dtype the layer computes in.
//! The VAE and text-encoder widths are read from the tensors themselves.

mod error;
mod tensor_files;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};

pub use error::LoadError;
pub use tensor_files::{Access, TensorFiles};

use crate::engine::config::{DitConfig, T5Config, VaeConfig};
use crate::engine::dit::WanModel;
use crate::engine::pipeline::Pipeline;
use crate::engine::text::{
    HostEncoder, PromptTokenizer, TextEncoder, Umt5Encoder, weights_stay_on_host,
};
use crate::engine::vae::{ConvPrecision, WanVae};

/// DiT configuration file.
pub const DIT_CONFIG: &str = "config.json";
/// DiT weights in one file.
pub const DIT_WEIGHTS: &str = "diffusion_pytorch_model.safetensors";
/// Index of sharded DiT weights.
pub const DIT_INDEX: &str = "diffusion_pytorch_model.safetensors.index.json";
/// Text encoder weights.
pub const T5_WEIGHTS: &str = "models_t5_umt5-xxl-enc-bf16.pth";
/// VAE weights.
pub const VAE_WEIGHTS: &str = "Wan2.1_VAE.pth";
/// The same text encoder weights converted to safetensors, accepted instead of the `.pth`.
pub const T5_WEIGHTS_SAFETENSORS: &str = "models_t5_umt5-xxl-enc-bf16.safetensors";
/// The same VAE weights converted to safetensors, accepted instead of the `.pth`.
pub const VAE_WEIGHTS_SAFETENSORS: &str = "Wan2.1_VAE.safetensors";
/// Tokenizer, inside the folder's copy of `google/umt5-xxl`.
pub const TOKENIZER: &str = "google/umt5-xxl/tokenizer.json";

const DIT_MODEL: &str = "Wan2.1-VACE DiT";
const VAE_MODEL: &str = "Wan2.1 VAE";
const T5_MODEL: &str = "UMT5 text encoder";

/// How to get the missing files of the official release.
const DOWNLOAD_HINT: &str = "download the complete folder, e.g. `huggingface-cli download \
     Wan-AI/Wan2.1-VACE-1.3B --local-dir DIR`, and point --model at DIR";

/// A checked checkpoint folder: every file present, `config.json` parsed.
#[derive(Debug, Clone)]
pub struct ModelDir {
    root: PathBuf,
    config: DitConfig,
    dit_files: Vec<PathBuf>,
    t5_file: PathBuf,
    vae_file: PathBuf,
}

fn require_file(
    root: &Path,
    name: &str,
    what: &'static str,
    hint: impl Into<String>,
) -> Result<PathBuf, LoadError> {
    let path = root.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(LoadError::MissingFile {
            path,
            what,
            hint: hint.into(),
        })
    }
}

/// The `.pth` of the release, or its safetensors conversion when only that is present.
fn weight_file(
    root: &Path,
    pth: &str,
    converted: &str,
    what: &'static str,
) -> Result<PathBuf, LoadError> {
    let converted = root.join(converted);
    match require_file(root, pth, what, DOWNLOAD_HINT) {
        Err(_) if converted.is_file() => Ok(converted),
        found => found,
    }
}

/// Indexes a weight file by its format.
fn tensor_files(path: &Path, model: &'static str) -> Result<TensorFiles, LoadError> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        TensorFiles::safetensors(&[path.to_owned()], model)
    } else {
        TensorFiles::pth(path, model)
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| LoadError::InvalidConfig {
        file: path.to_owned(),
        reason: format!("not valid JSON: {e}"),
    })
}

impl ModelDir {
    /// Checks that `root` is a Wan2.1-VACE folder in the official layout with every file
    /// present, and reads its DiT configuration.
    pub fn open(root: &Path) -> Result<Self, LoadError> {
        if !root.is_dir() {
            return Err(LoadError::MissingFile {
                path: root.to_owned(),
                what: "the model folder",
                hint: DOWNLOAD_HINT.into(),
            });
        }
        if root.join("model_index.json").is_file() || root.join("transformer").is_dir() {
            return Err(LoadError::UnknownLayout {
                path: root.to_owned(),
                reason:
                    "this is the diffusers layout (model_index.json, transformer/); vaced reads \
                         the original release: download Wan-AI/Wan2.1-VACE-1.3B or -14B, not the \
                         -diffusers repositories"
                        .into(),
            });
        }
        let config_path = require_file(root, DIT_CONFIG, "the DiT configuration", DOWNLOAD_HINT)?;
        let json = read_json(&config_path)?;
        if let Some(kind) = json.get("model_type").and_then(|v| v.as_str())
            && kind != "vace"
        {
            return Err(LoadError::UnknownLayout {
                path: config_path,
                reason: format!(
                    "model_type is \"{kind}\": this is a Wan2.1 {kind} checkpoint, not VACE; download \
                     Wan-AI/Wan2.1-VACE-1.3B or -14B"
                ),
            });
        }
        let config: DitConfig =
            serde_json::from_value(json).map_err(|e| LoadError::InvalidConfig {
                file: config_path.clone(),
                reason: e.to_string(),
            })?;
        config
            .validate()
            .map_err(|reason| LoadError::InvalidConfig {
                file: config_path.clone(),
                reason,
            })?;
        let dit_files = Self::dit_files(root)?;
        let t5_file = weight_file(
            root,
            T5_WEIGHTS,
            T5_WEIGHTS_SAFETENSORS,
            "the UMT5 text encoder",
        )?;
        let vae_file = weight_file(root, VAE_WEIGHTS, VAE_WEIGHTS_SAFETENSORS, "the video VAE")?;
        require_file(
            root,
            TOKENIZER,
            "the UMT5 tokenizer",
            "it ships in the release's google/umt5-xxl/ folder (download the complete folder); if \
             that folder only has spiece.model, write \
             tokenizer.json once with `python -c \"from transformers import AutoTokenizer as T; \
             T.from_pretrained('DIR/google/umt5-xxl').save_pretrained('DIR/google/umt5-xxl')\"`",
        )?;
        Ok(Self {
            root: root.to_owned(),
            config,
            dit_files,
            t5_file,
            vae_file,
        })
    }

    /// The single DiT file, or every shard the index names.
    fn dit_files(root: &Path) -> Result<Vec<PathBuf>, LoadError> {
        let index = root.join(DIT_INDEX);
        if !index.is_file() {
            return Ok(vec![require_file(
                root,
                DIT_WEIGHTS,
                "the DiT weights",
                DOWNLOAD_HINT,
            )?]);
        }
        let json = read_json(&index)?;
        let shards: BTreeSet<&str> = json
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| LoadError::InvalidConfig {
                file: index.clone(),
                reason: "no `weight_map` object".into(),
            })?
            .values()
            .filter_map(|v| v.as_str())
            .collect();
        if shards.is_empty() {
            return Err(LoadError::InvalidConfig {
                file: index,
                reason: "`weight_map` names no shard".into(),
            });
        }
        shards
            .into_iter()
            .map(|shard| {
                if shard.contains('/') || shard.contains("..") {
                    return Err(LoadError::InvalidConfig {
                        file: index.clone(),
                        reason: format!("shard name `{shard}` must be a file in the folder"),
                    });
                }
                require_file(
                    root,
                    shard,
                    "a DiT weight shard named by the index",
                    DOWNLOAD_HINT,
                )
            })
            .collect()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The DiT configuration from `config.json` (with `text_dim` as the weights have it).
    pub fn dit_config(&self) -> &DitConfig {
        &self.config
    }

    /// The published preset this folder matches, if any (`vace-1.3b`, `vace-14b`).
    pub fn preset_name(&self) -> Option<&'static str> {
        [
            ("vace-1.3b", DitConfig::vace_1_3b()),
            ("vace-14b", DitConfig::vace_14b()),
        ]
        .into_iter()
        .find(|(_, preset)| preset == &self.config)
        .map(|(name, _)| name)
    }

    fn dit_tensors(&self) -> Result<(Arc<TensorFiles>, DitConfig), LoadError> {
        let files = TensorFiles::safetensors(&self.dit_files, DIT_MODEL)?;
        let mut config = self.config.clone();
        // `text_dim` is not serialized in config.json; the text MLP's weight says it.
        if let Some(&[_, text_dim]) = files.shape("text_embedding.0.weight") {
            config.text_dim = text_dim;
        }
        Ok((Arc::new(files), config))
    }

    fn vae_tensors(&self) -> Result<(Arc<TensorFiles>, VaeConfig), LoadError> {
        let files = tensor_files(&self.vae_file, VAE_MODEL)?;
        let config = vae_config_from(&files)?;
        Ok((Arc::new(files), config))
    }

    fn t5_tensors(&self) -> Result<(Arc<TensorFiles>, T5Config), LoadError> {
        let files = tensor_files(&self.t5_file, T5_MODEL)?;
        let config = t5_config_from(&files)?;
        Ok((Arc::new(files), config))
    }

    /// Loads the DiT; linear layers in `dtype`, the layers the reference keeps in f32 in f32.
    pub fn load_dit(&self, device: &Device, dtype: DType) -> Result<WanModel, LoadError> {
        let (files, config) = self.dit_tensors()?;
        build(
            &files,
            DIT_MODEL,
            |vb| WanModel::new(&config, vb),
            Access::Load,
            dtype,
            device,
        )
    }

    /// Loads the VAE (always f32, as the reference runs it).
    pub fn load_vae(&self, device: &Device) -> Result<WanVae, LoadError> {
        let (files, config) = self.vae_tensors()?;
        build(
            &files,
            VAE_MODEL,
            |vb| WanVae::new(&config, vb),
            Access::Load,
            DType::F32,
            device,
        )
    }

    /// Loads the tokenizer and the UMT5 encoder in `dtype`.
    pub fn load_text_encoder(
        &self,
        device: &Device,
        dtype: DType,
    ) -> Result<TextEncoder, LoadError> {
        let tokenizer_path = self.root.join(TOKENIZER);
        let tokenizer = PromptTokenizer::from_file(&tokenizer_path).map_err(|reason| {
            LoadError::InvalidConfig {
                file: tokenizer_path,
                reason,
            }
        })?;
        let (files, config) = self.t5_tensors()?;
        let text_len = self.config.text_len;
        if !weights_stay_on_host(device) {
            let encoder = build(
                &files,
                T5_MODEL,
                |vb| Umt5Encoder::new(&config, vb),
                Access::Load,
                dtype,
                device,
            )?;
            return Ok(TextEncoder::new(
                tokenizer,
                encoder,
                text_len,
                device.clone(),
            ));
        }
        // Read straight into host memory; uploaded per new prompt.
        let host = build(
            &files,
            T5_MODEL,
            |vb| HostEncoder::capture(&config, vb),
            Access::Load,
            dtype,
            &Device::Cpu,
        )?;
        Ok(TextEncoder::host_resident(
            tokenizer,
            host,
            text_len,
            device.clone(),
        ))
    }

    /// Loads all three models and checks that they fit together.
    pub fn load_pipeline(&self, device: &Device, dtype: DType) -> Result<Pipeline, LoadError> {
        let text = self.load_text_encoder(device, dtype)?;
        let dit = self.load_dit(device, dtype)?;
        check_text_width(&self.t5_file, text.config(), dit.config())?;
        let vae = self
            .load_vae(device)?
            .with_conv_precision(ConvPrecision::for_compute_dtype(dtype));
        Ok(Pipeline { dit, vae, text })
    }

    /// Checks every tensor of the folder against the model structure without reading the
    /// weights: names, shapes and dtypes, in seconds even for the 14B model.
    pub fn verify(&self) -> Result<(), LoadError> {
        let cpu = Device::Cpu;
        let (files, config) = self.dit_tensors()?;
        build(
            &files,
            DIT_MODEL,
            |vb| WanModel::new(&config, vb),
            Access::Verify,
            DType::F32,
            &cpu,
        )?;
        let (files, vae_config) = self.vae_tensors()?;
        build(
            &files,
            VAE_MODEL,
            |vb| WanVae::new(&vae_config, vb),
            Access::Verify,
            DType::F32,
            &cpu,
        )?;
        let (files, t5_config) = self.t5_tensors()?;
        build(
            &files,
            T5_MODEL,
            |vb| Umt5Encoder::new(&t5_config, vb),
            Access::Verify,
            DType::F32,
            &cpu,
        )?;
        check_text_width(&self.t5_file, &t5_config, &config)?;
        let tokenizer_path = self.root.join(TOKENIZER);
        PromptTokenizer::from_file(&tokenizer_path).map_err(|reason| LoadError::InvalidConfig {
            file: tokenizer_path,
            reason,
        })?;
        Ok(())
    }
}

/// Builds a model over `files`, reporting the first bad tensor rather than candle's error.
fn build<T>(
    files: &Arc<TensorFiles>,
    model: &'static str,
    make: impl FnOnce(candle_nn::VarBuilder<'static>) -> candle_core::Result<T>,
    access: Access,
    dtype: DType,
    device: &Device,
) -> Result<T, LoadError> {
    make(files.var_builder(access, dtype, device)).map_err(|source| {
        files.take_error().unwrap_or_else(|| LoadError::Build {
            file: files.file_of("").to_owned(),
            model,
            source,
        })
    })
}

fn check_text_width(t5_file: &Path, t5: &T5Config, dit: &DitConfig) -> Result<(), LoadError> {
    if t5.dim == dit.text_dim {
        return Ok(());
    }
    Err(LoadError::InvalidConfig {
        file: t5_file.to_owned(),
        reason: format!(
            "the text encoder is {} wide but the DiT reads {}-wide text; the two files come from \
             different models",
            t5.dim, dit.text_dim
        ),
    })
}

/// The VAE's structure is fixed by the reference; its base width and latent channels are
/// read from the weights (`encoder.conv1`, `conv2`).
pub fn vae_config_from(files: &TensorFiles) -> Result<VaeConfig, LoadError> {
    let dim = files.require_shape("encoder.conv1.weight")?[0];
    let z_dim = files.require_shape("conv2.weight")?[0];
    let base = VaeConfig::wan2_1();
    if z_dim != base.z_dim {
        return Err(LoadError::UnknownLayout {
            path: files.file_of("conv2.weight").to_owned(),
            reason: format!(
                "the VAE has {z_dim} latent channels; Wan2.1 uses {}",
                base.z_dim
            ),
        });
    }
    Ok(VaeConfig { dim, ..base })
}

/// The UMT5 encoder's widths, depth and head count, read from its weights.
pub fn t5_config_from(files: &TensorFiles) -> Result<T5Config, LoadError> {
    let embedding = files.require_shape("token_embedding.weight")?;
    let (vocab, dim) = (embedding[0], embedding[1]);
    let dim_attn = files.require_shape("blocks.0.attn.q.weight")?[0];
    let dim_ffn = files.require_shape("blocks.0.ffn.fc1.weight")?[0];
    let shared_pos = files.contains("pos_embedding.embedding.weight");
    let table = if shared_pos {
        "pos_embedding.embedding.weight"
    } else {
        "blocks.0.pos_embedding.embedding.weight"
    };
    let table = files.require_shape(table)?;
    let num_layers = (0..)
        .take_while(|i| files.contains(&format!("blocks.{i}.norm1.weight")))
        .count();
    Ok(T5Config {
        vocab,
        dim,
        dim_attn,
        dim_ffn,
        num_heads: table[1],
        num_layers,
        num_buckets: table[0],
        shared_pos,
        ..T5Config::umt5_xxl()
    })
}
