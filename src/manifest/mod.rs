//! The job manifest, `job.json` version 1: what to generate, from which media, with which
//! settings, and what to do with the result. Parsing is strict (unknown keys are errors, with
//! a suggestion for misspellings) and every value is range-checked before any work starts.
//! `docs/job.schema.json` is generated from these types (`vaced schema`).

mod load;
mod paths;
pub mod preprocess;
mod schema;
mod size;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::engine::scheduler::SolverKind;

pub use load::{
    ManifestError, Problem, frames_problem, load, load_with_problems, parse, parse_with_problems,
    size_problem, supported_sizes,
};
pub use paths::{JobPath, PathError};
pub use preprocess::Task;
pub use schema::schema_json;
pub use size::FrameSize;

/// File name of the manifest inside a job folder.
pub const MANIFEST_FILE: &str = "job.json";
/// The manifest format this build reads.
pub const MANIFEST_VERSION: u32 = 1;

/// One render job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "vaced job manifest",
    description = "job.json: one Wan2.1-VACE render job"
)]
pub struct JobManifest {
    /// Manifest format version; must be 1.
    pub version: u32,
    /// What to generate. Must not be empty.
    pub prompt: String,
    /// What to avoid. When absent, the reference's default negative prompt is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// Which model must render the job. When absent, whichever the renderer runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelName>,
    /// Output frame size `WIDTHxHEIGHT` in pixels. Default: the model's size in the source
    /// video's orientation (vace-1.3b and vace-14b: 832x480 or 480x832; tiny: 128x80 or 80x128).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>", regex(pattern = r"^[0-9]+x[0-9]+$"))]
    pub size: Option<FrameSize>,
    /// Output frames, 4n+1 (81 is five seconds at 16 fps). Default: 81 (tiny: 17), fewer when
    /// the source video is shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<usize>,
    /// Frame rate of the output video, and of source sampling with `frame_sampling: fps`.
    #[serde(default = "default_fps")]
    pub fps: u32,
    /// Denoising steps. Default: 50 (tiny: 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Classifier-free guidance scale.
    #[serde(default = "default_guidance")]
    pub guidance: f64,
    /// Noise-schedule shift (16 for VACE).
    #[serde(default = "default_shift")]
    pub shift: f64,
    /// Sampling solver.
    #[serde(default)]
    pub solver: SolverKind,
    /// Noise seed. When absent a random one is chosen and recorded in report.json.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Strength of the VACE conditioning (source video, mask, reference images).
    #[serde(default = "default_context_scale")]
    pub context_scale: f64,
    /// Source media, relative to the job folder.
    #[serde(default)]
    pub inputs: Inputs,
    /// Preprocessing tasks (VACE's annotators) that turn the inputs into the source video,
    /// mask and reference images the model conditions on. Empty: the inputs are used as
    /// they are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preprocess: Vec<Task>,
    /// How the result is written.
    #[serde(default)]
    pub output: OutputOptions,
    /// E-mail addresses told when the job finishes or fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
    /// Higher runs first among queued jobs.
    #[serde(default)]
    pub priority: i32,
}

/// Models a job can ask for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum ModelName {
    /// Wan2.1-VACE-1.3B (832x480 and 480x832).
    #[serde(rename = "vace-1.3b")]
    Vace1_3b,
    /// Wan2.1-VACE-14B (adds 1280x720 and 720x1280).
    #[serde(rename = "vace-14b")]
    Vace14b,
    /// The built-in test model: random weights, any size up to 512x512, runs on a CPU.
    #[serde(rename = "tiny")]
    Tiny,
}

impl ModelName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vace1_3b => "vace-1.3b",
            Self::Vace14b => "vace-14b",
            Self::Tiny => "tiny",
        }
    }

    /// The landscape frame size used when a job names none (the reference's 480p).
    pub fn default_size(self) -> FrameSize {
        match self {
            Self::Tiny => FrameSize::new(128, 80),
            Self::Vace1_3b | Self::Vace14b => FrameSize::new(832, 480),
        }
    }

    /// Frames when a job names none: 81 (5 s at 16 fps), 17 for `tiny`.
    pub fn default_frames(self) -> usize {
        match self {
            Self::Tiny => 17,
            Self::Vace1_3b | Self::Vace14b => 81,
        }
    }

    /// Denoising steps when a job names none: the reference's 50, 10 for `tiny`.
    pub fn default_steps(self) -> usize {
        match self {
            Self::Tiny => 10,
            Self::Vace1_3b | Self::Vace14b => 50,
        }
    }

    /// The model names a preset stands for.
    pub fn of_preset(preset: crate::engine::preset::Preset) -> Self {
        use crate::engine::preset::Preset;
        match preset {
            Preset::Tiny => Self::Tiny,
            Preset::Vace1_3b => Self::Vace1_3b,
            Preset::Vace14b => Self::Vace14b,
        }
    }
}

/// Media the job starts from. With no video the model generates from the prompt (and any
/// reference images) alone.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// Source video: a video file (MP4, MOV, MKV, WebM), or a folder of numbered images.
    /// Grey (127) marks content to make up where the mask is white.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub video: Option<JobPath>,
    /// Mask: white (255) = generate, black (0) = keep. A video or image folder matching the
    /// source video frame for frame, or one image applied to every frame. Needs `video`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub mask: Option<JobPath>,
    /// Reference images (PNG, JPEG, WebP), placed on a white canvas of the frame size.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub reference_images: Vec<JobPath>,
    /// How source frames are picked.
    #[serde(default)]
    pub frame_sampling: FrameSampling,
}

/// How frames are taken from the source video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FrameSampling {
    /// At the job's `fps` from the start of the clip: motion keeps its speed.
    #[default]
    Fps,
    /// Spread over the whole clip, as the reference's loader does: long clips speed up.
    FitClip,
}

/// How the result video is encoded and what is kept besides it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputOptions {
    /// x264 constant rate factor: 0 lossless … 51 worst; 18 is visually lossless.
    #[serde(default = "default_crf")]
    pub crf: u8,
    /// x264 speed/size trade-off.
    #[serde(default)]
    pub preset: X264Preset,
    /// Also write every frame as PNG into `frames/`.
    #[serde(default)]
    pub png_frames: bool,
    /// Also write the final latent as `latent.safetensors`.
    #[serde(default)]
    pub latent: bool,
}

impl Default for OutputOptions {
    fn default() -> Self {
        Self {
            crf: default_crf(),
            preset: X264Preset::default(),
            png_frames: false,
            latent: false,
        }
    }
}

/// The x264 presets, fastest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum X264Preset {
    Ultrafast,
    Superfast,
    Veryfast,
    Faster,
    Fast,
    #[default]
    Medium,
    Slow,
    Slower,
    Veryslow,
}

impl X264Preset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ultrafast => "ultrafast",
            Self::Superfast => "superfast",
            Self::Veryfast => "veryfast",
            Self::Faster => "faster",
            Self::Fast => "fast",
            Self::Medium => "medium",
            Self::Slow => "slow",
            Self::Slower => "slower",
            Self::Veryslow => "veryslow",
        }
    }
}

fn default_fps() -> u32 {
    16
}
fn default_guidance() -> f64 {
    5.0
}
fn default_shift() -> f64 {
    16.0
}
fn default_context_scale() -> f64 {
    1.0
}
fn default_crf() -> u8 {
    18
}
