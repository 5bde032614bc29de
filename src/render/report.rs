//! `report.json`: everything that shaped a result (the plan with every default resolved,
//! the model, the device, fingerprints of the inputs and of the final latent, per-stage
//! times, software versions), and a `job.json` that renders the same video again.

use std::io::Read;
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Stage;
use super::plan::{JobPlan, Source, SourceKind};
use crate::manifest::{FrameSize, JobManifest};

/// Size and SHA-256 of one input.
#[derive(Debug, Clone, Serialize)]
pub struct Fingerprint {
    pub input: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Wall time of one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageTime {
    pub stage: Stage,
    pub secs: f64,
}

/// Which model and where it ran.
#[derive(Debug, Clone, Serialize)]
pub struct ModelRun {
    /// `tiny (built-in random weights)` or the checkpoint folder.
    pub source: String,
    pub device: String,
    pub dtype: String,
    /// How the VAE's convolutions were computed: `exact` (f32) or `tf32` (one TF32 product,
    /// as the reference on a GPU).
    pub vae_convolutions: crate::engine::vae::ConvPrecision,
    /// How the DiT's attention computed: its dtype, or `8bit` (INT8 q·kᵀ, FP8 p·v) when
    /// `VACED_ATTENTION_PRECISION=8bit` applied.
    pub attention: String,
    /// How the DiT blocks' linear layers computed: the dtype, or `fp8` when
    /// `VACED_LINEAR_PRECISION=fp8` applied.
    pub linear_products: String,
}

/// The encoded result.
#[derive(Debug, Clone, Serialize)]
pub struct OutputSummary {
    pub file: &'static str,
    pub size: String,
    pub frames: usize,
    pub fps: u32,
    pub crf: u8,
    pub preset: &'static str,
    /// SHA-256 of the final latent (f32, little-endian, reference frames included): equal
    /// for two runs exactly when they computed the same result.
    pub latent_sha256: String,
}

/// Software that made the result.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub vaced: &'static str,
    pub candle: &'static str,
    pub ffmpeg: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub job: String,
    pub started_at: String,
    pub finished_at: String,
    pub plan: JobPlan,
    pub prompt: String,
    pub negative_prompt: String,
    pub noise_generator: &'static str,
    pub model: ModelRun,
    pub inputs: Vec<Fingerprint>,
    pub output: OutputSummary,
    pub stages: Vec<StageTime>,
    pub total_secs: f64,
    pub versions: Versions,
    /// A job.json with every default filled in: dropping it in an inbox renders the same video.
    pub reproduce: JobManifest,
}

impl Versions {
    pub fn current() -> Self {
        Self {
            vaced: env!("CARGO_PKG_VERSION"),
            candle: env!("VACED_CANDLE_VERSION"),
            ffmpeg: crate::media::ffmpeg_version(),
        }
    }
}

fn hex(digest: impl AsRef<[u8]>) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 and size of a file, read in blocks.
pub fn file_fingerprint(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        total += n as u64;
    }
    Ok((total, hex(hasher.finalize())))
}

/// Fingerprints of every input of a plan, the files its preprocessing tasks name included;
/// a folder of frames hashes its images in order.
pub fn input_fingerprints(plan: &JobPlan) -> std::io::Result<Vec<Fingerprint>> {
    let task_files = plan
        .preprocess
        .iter()
        .flat_map(|task| task.files())
        .map(|name| super::plan::probe_source(&plan.job_dir, plan.fps, name))
        .collect::<Result<Vec<Source>, String>>()
        .map_err(std::io::Error::other)?;
    let sources = plan
        .video
        .iter()
        .chain(&plan.mask)
        .chain(&plan.reference_images)
        .chain(&task_files);
    sources
        .map(|source| {
            let (bytes, sha256) = match &source.kind {
                SourceKind::Sequence { images, .. } => {
                    let mut hasher = Sha256::new();
                    let mut total = 0;
                    for image in images {
                        let (bytes, digest) = file_fingerprint(image)?;
                        hasher.update(digest.as_bytes());
                        total += bytes;
                    }
                    (total, hex(hasher.finalize()))
                }
                _ => file_fingerprint(&source.path)?,
            };
            Ok(Fingerprint {
                input: source.name.to_string(),
                bytes,
                sha256,
            })
        })
        .collect()
}

/// SHA-256 of a tensor's f32 values.
pub fn tensor_sha256(tensor: &candle_core::Tensor) -> candle_core::Result<String> {
    let values: Vec<f32> = tensor
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    let mut hasher = Sha256::new();
    for v in values {
        hasher.update(v.to_le_bytes());
    }
    Ok(hex(hasher.finalize()))
}

/// The manifest with the plan's resolved values written in.
pub fn resolved_manifest(plan: &JobPlan) -> JobManifest {
    JobManifest {
        model: Some(plan.model),
        size: Some(FrameSize::new(plan.size.width_px, plan.size.height_px)),
        frames: Some(plan.frames),
        steps: Some(plan.sampling.steps),
        seed: Some(plan.seed),
        ..plan.manifest.clone()
    }
}

/// Now as RFC 3339 UTC, second precision.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
