//! Rendering one job folder end to end: plan it, decode and prepare its media, run the
//! engine, encode the video, and publish the result folder (`result.mp4`, `poster.png`,
//! `contact-sheet.png`, `report.json`, the manifest) only once it is complete and checked.
//! `vaced render` and the daemon's workers run this.

mod inputs;
pub mod plan;
pub mod report;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::engine::noise::NOISE_GENERATOR;
use crate::engine::pipeline::{self, Event, GenerationRequest, Phase, Pipeline};
use crate::engine::text::DEFAULT_NEGATIVE_PROMPT;
use crate::manifest::MANIFEST_FILE;
use crate::media;
use crate::outbox::{self, ExpectedVideo, PartialFolder};
use crate::preprocess::Prepared;

pub use inputs::{InputError, preprocess as preprocess_media};
pub use plan::{JobPlan, plan};
pub use report::Report;

/// The result video's file name.
pub const RESULT_VIDEO: &str = "result.mp4";
/// Frames shown on the contact sheet, at most.
const CONTACT_SHEET_FRAMES: usize = 12;
const CONTACT_SHEET_COLUMNS: usize = 4;
const CONTACT_SHEET_THUMB_WIDTH_PX: usize = 320;

/// The stages of a render, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// The job's `preprocess` tasks (only when it has some).
    Preprocess,
    DecodeInputs,
    EncodeText,
    EncodeVideo,
    Denoise,
    DecodeVideo,
    EncodeOutput,
}

impl Stage {
    /// A short label for progress displays.
    pub fn label(self) -> &'static str {
        match self {
            Self::Preprocess => "preprocess",
            Self::DecodeInputs => "decode",
            Self::EncodeText => "text",
            Self::EncodeVideo => "vae encode",
            Self::Denoise => "denoise",
            Self::DecodeVideo => "vae decode",
            Self::EncodeOutput => "encode",
        }
    }
}

impl From<Phase> for Stage {
    fn from(phase: Phase) -> Self {
        match phase {
            Phase::EncodeText => Self::EncodeText,
            Phase::EncodeVideo => Self::EncodeVideo,
            Phase::Denoise => Self::Denoise,
            Phase::DecodeVideo => Self::DecodeVideo,
        }
    }
}

/// Progress of a render; the observer answers `Break` to cancel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RenderEvent {
    StageStarted(Stage),
    Step {
        step: usize,
        total: usize,
        elapsed: Duration,
    },
    StageFinished(Stage, Duration),
}

/// Why a render produced no result (and left nothing behind).
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("preparing the inputs: {0}")]
    Inputs(#[from] InputError),
    #[error("generating: {0}")]
    Engine(#[from] pipeline::Error),
    #[error("writing the result: {0}")]
    Output(#[from] outbox::Error),
    #[error("writing the result: {0}")]
    Media(#[from] media::Error),
    #[error("render cancelled")]
    Cancelled,
}

/// Which model runs the render, for the report.
#[derive(Debug, Clone)]
pub struct Renderer<'a> {
    pub pipeline: &'a Pipeline,
    /// `tiny (built-in random weights)` or the checkpoint folder.
    pub model_source: String,
    pub device_name: String,
}

type Observer<'a> = &'a mut dyn FnMut(RenderEvent) -> ControlFlow<()>;

/// Runs `work` as `stage`, reporting its start and duration.
fn stage<T>(
    stage: Stage,
    observer: Observer,
    times: &mut Vec<report::StageTime>,
    work: impl FnOnce() -> Result<T, RenderError>,
) -> Result<T, RenderError> {
    if observer(RenderEvent::StageStarted(stage)).is_break() {
        return Err(RenderError::Cancelled);
    }
    let start = Instant::now();
    let out = work()?;
    let took = start.elapsed();
    times.push(report::StageTime {
        stage,
        secs: took.as_secs_f64(),
    });
    if observer(RenderEvent::StageFinished(stage, took)).is_break() {
        return Err(RenderError::Cancelled);
    }
    Ok(out)
}

/// Renders `plan` into the folder `out` (which must not exist yet).
pub fn render(
    plan: &JobPlan,
    renderer: &Renderer,
    out: &Path,
    observer: Observer,
) -> Result<Report, RenderError> {
    let started = Instant::now();
    let started_at = report::now_rfc3339();
    let device = renderer.pipeline.dit.device().clone();
    let folder = PartialFolder::begin(out)?;
    let mut times = Vec::new();

    let prepared = if plan.preprocess.is_empty() {
        Prepared::default()
    } else {
        stage(Stage::Preprocess, observer, &mut times, || {
            Ok(inputs::preprocess(plan, &device, Some(plan.size)).map_err(InputError::from)?)
        })?
    };
    let inputs = stage(Stage::DecodeInputs, observer, &mut times, || {
        Ok(inputs::prepare(plan, prepared, &device)?)
    })?;
    let request = GenerationRequest {
        prompt: plan.manifest.prompt.clone(),
        negative_prompt: plan.manifest.negative_prompt.clone(),
        inputs,
        params: plan.sampling.clone(),
        seed: plan.seed,
    };
    let generation = renderer
        .pipeline
        .generate(&request, &mut |event| match event {
            Event::PhaseStarted(phase) => observer(RenderEvent::StageStarted(phase.into())),
            Event::Step {
                step,
                total,
                elapsed,
            } => observer(RenderEvent::Step {
                step,
                total,
                elapsed,
            }),
            Event::PhaseFinished(phase, took) => {
                times.push(report::StageTime {
                    stage: phase.into(),
                    secs: took.as_secs_f64(),
                });
                observer(RenderEvent::StageFinished(phase.into(), took))
            }
        })
        .map_err(|e| match e {
            pipeline::Error::Cancelled => RenderError::Cancelled,
            other => RenderError::Engine(other),
        })?;

    let output = &plan.manifest.output;
    let latent_sha256 = report::tensor_sha256(&generation.latent).map_err(pipeline::Error::from)?;
    stage(Stage::EncodeOutput, observer, &mut times, || {
        let frames = media::frames::to_rgb8(&generation.video)?;
        let settings = media::encode::Mp4Settings {
            fps: plan.fps,
            crf: output.crf,
            preset: output.preset.as_str().to_owned(),
        };
        media::encode::write_mp4(&folder.path(RESULT_VIDEO), &frames, &settings)?;
        folder.check_video(
            RESULT_VIDEO,
            ExpectedVideo {
                frames: plan.frames,
                width_px: plan.size.width_px,
                height_px: plan.size.height_px,
                fps: plan.fps,
            },
        )?;
        media::write_png(
            &folder.path("poster.png"),
            media::contact_sheet::poster(&frames),
        )?;
        let sheet = media::contact_sheet::contact_sheet(
            &frames,
            CONTACT_SHEET_FRAMES,
            CONTACT_SHEET_COLUMNS,
            CONTACT_SHEET_THUMB_WIDTH_PX.min(plan.size.width_px),
        );
        media::write_png(&folder.path("contact-sheet.png"), &sheet)?;
        if output.png_frames {
            let dir = folder.path("frames");
            std::fs::create_dir(&dir).map_err(|source| outbox::Error::Io {
                path: dir.clone(),
                source,
            })?;
            media::frames::write_png_sequence(&frames, &dir)?;
        }
        if output.latent {
            generation
                .latent
                .save_safetensors("latent", folder.path("latent.safetensors"))
                .map_err(|e| outbox::Error::Write(format!("latent.safetensors: {e}")))?;
        }
        Ok(())
    })?;

    let manifest_copy = plan.job_dir.join(MANIFEST_FILE);
    let manifest_bytes = std::fs::read(&manifest_copy).map_err(|source| outbox::Error::Io {
        path: manifest_copy.clone(),
        source,
    })?;
    folder.write(MANIFEST_FILE, &manifest_bytes)?;
    let report = Report {
        job: job_name(&plan.job_dir),
        started_at,
        finished_at: report::now_rfc3339(),
        plan: plan.clone(),
        prompt: plan.manifest.prompt.clone(),
        negative_prompt: plan
            .manifest
            .negative_prompt
            .clone()
            .unwrap_or_else(|| DEFAULT_NEGATIVE_PROMPT.to_owned()),
        noise_generator: NOISE_GENERATOR,
        model: {
            let numerics = crate::engine::dit::Numerics::of(
                renderer.pipeline.dit.device(),
                renderer.pipeline.dit_dtype(),
            );
            report::ModelRun {
                source: renderer.model_source.clone(),
                device: renderer.device_name.clone(),
                dtype: format!("{:?}", renderer.pipeline.dit_dtype()).to_lowercase(),
                vae_convolutions: renderer.pipeline.vae.conv_precision(),
                attention: numerics.attention,
                linear_products: numerics.linear_products,
            }
        },
        inputs: report::input_fingerprints(plan).map_err(|source| outbox::Error::Io {
            path: plan.job_dir.clone(),
            source,
        })?,
        output: report::OutputSummary {
            file: RESULT_VIDEO,
            size: plan.size.to_string(),
            frames: plan.frames,
            fps: plan.fps,
            crf: output.crf,
            preset: output.preset.as_str(),
            latent_sha256,
        },
        stages: times,
        total_secs: started.elapsed().as_secs_f64(),
        versions: report::Versions::current(),
        reproduce: report::resolved_manifest(plan),
    };
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| outbox::Error::Write(format!("report.json: {e}")))?;
    folder.write("report.json", &json)?;
    folder.publish()?;
    Ok(report)
}

/// The job's name: its folder's name.
pub fn job_name(job_dir: &Path) -> String {
    job_dir
        .canonicalize()
        .unwrap_or_else(|_| PathBuf::from(job_dir))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".to_owned())
}
