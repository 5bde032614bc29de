//! `vaced generate`: one text-to-video generation from the command line, written as PNG
//! frames, the final latent and a JSON record of everything that shaped the result.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::engine::conditioning::VaceInputs;
use crate::engine::noise::NOISE_GENERATOR;
use crate::engine::pipeline::{Event, GenerationRequest, Phase, SamplingParams};
use crate::engine::preset::{ModelSource, Preset};
use crate::engine::scheduler::SolverKind;
use crate::engine::text::DEFAULT_NEGATIVE_PROMPT;
use crate::media::frames;
use crate::outbox::PartialFolder;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `tiny` (built-in, random weights, runs on a CPU in seconds), `vace-1.3b` / `vace-14b`
    /// (random weights at the real sizes) or a downloaded Wan2.1-VACE folder.
    #[arg(long)]
    model: String,
    /// What to generate.
    #[arg(long)]
    prompt: String,
    /// What to avoid; the reference's default negative prompt when absent.
    #[arg(long)]
    negative_prompt: Option<String>,
    /// Frame size WIDTHxHEIGHT, multiples of 16 [default: 832x480; tiny: 128x80].
    #[arg(long)]
    size: Option<String>,
    /// Frames, 4n+1 [default: 81; tiny: 17].
    #[arg(long)]
    frames: Option<usize>,
    /// Denoising steps [default: 50; tiny: 10].
    #[arg(long)]
    steps: Option<usize>,
    /// Noise-schedule shift.
    #[arg(long, default_value_t = 16.0)]
    shift: f64,
    /// Classifier-free guidance scale.
    #[arg(long, default_value_t = 5.0)]
    guide_scale: f64,
    /// Strength of the VACE conditioning.
    #[arg(long, default_value_t = 1.0)]
    context_scale: f64,
    /// `unipc` or `dpm++`.
    #[arg(long, default_value = "unipc")]
    solver: SolverKind,
    /// Noise seed; random (and recorded) when absent.
    #[arg(long)]
    seed: Option<u64>,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Folder to create for the result.
    #[arg(long)]
    out: PathBuf,
}

/// Wall time of one phase.
#[derive(Debug, Serialize)]
struct PhaseTime {
    phase: Phase,
    secs: f64,
}

/// What `generation.json` records.
#[derive(Debug, Serialize)]
struct Record<'a> {
    model: String,
    prompt: &'a str,
    negative_prompt: &'a str,
    width_px: usize,
    height_px: usize,
    frames: usize,
    seed: u64,
    noise_generator: &'static str,
    params: &'a SamplingParams,
    device: &'a str,
    phases: Vec<PhaseTime>,
    vaced_version: &'static str,
}

fn parse_size(size: &str) -> anyhow::Result<(usize, usize)> {
    let parse = || -> Option<(usize, usize)> {
        let (w, h) = size.split_once(['x', '*'])?;
        Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
    };
    let (w, h) =
        parse().with_context(|| format!("--size `{size}`: use WIDTHxHEIGHT, e.g. 832x480"))?;
    if w == 0 || h == 0 || w % 16 != 0 || h % 16 != 0 {
        bail!("--size {w}x{h}: width and height must be positive multiples of 16 (e.g. 832x480)");
    }
    Ok((w, h))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.prompt.trim().is_empty() {
        bail!("--prompt is empty; say what to generate");
    }
    if args.out.exists() {
        bail!(
            "--out {}: already exists; choose a new folder",
            args.out.display()
        );
    }
    let source = ModelSource::parse(&args.model);
    let tiny = source == ModelSource::Preset(Preset::Tiny);
    let (width, height) =
        parse_size(
            args.size
                .as_deref()
                .unwrap_or(if tiny { "128x80" } else { "832x480" }),
        )?;
    let frames = args.frames.unwrap_or(if tiny { 17 } else { 81 });
    if frames == 0 || (frames - 1) % 4 != 0 {
        bail!(
            "--frames {frames}: must be 4n+1 (e.g. {})",
            4 * (frames / 4) + 1
        );
    }
    let steps = args.steps.unwrap_or(if tiny { 10 } else { 50 });
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    let seed = args.seed.unwrap_or_else(rand::random);

    let device = super::device::open(&args.device)?;
    let dtype = super::device::compute_dtype(&device);
    tracing::info!(model = %source.describe(), device = %args.device, "loading the model");
    let pipeline = source.load(&device, dtype).context("loading the model")?;

    let params = SamplingParams {
        steps,
        shift: args.shift,
        guide_scale: args.guide_scale,
        context_scale: args.context_scale,
        solver: args.solver,
    };
    let request = GenerationRequest {
        prompt: args.prompt.clone(),
        negative_prompt: args.negative_prompt.clone(),
        inputs: VaceInputs::blank(frames, height, width, &device)?,
        params: params.clone(),
        seed,
    };
    tracing::info!(seed, width, height, frames, steps, "generating");
    let bar = ProgressBar::new(steps as u64).with_style(
        ProgressStyle::with_template("{msg:>9} [{bar:30}] {pos}/{len} steps, {per_sec}, eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("denoise");
    let generation = pipeline
        .generate(&request, &mut |event| {
            match event {
                Event::PhaseStarted(phase) => tracing::info!(?phase, "started"),
                Event::Step { step, .. } => bar.set_position(step as u64),
                Event::PhaseFinished(phase, took) => {
                    if phase == Phase::Denoise {
                        bar.finish_and_clear();
                    }
                    tracing::info!(?phase, secs = took.as_secs_f64(), "finished");
                }
            }
            ControlFlow::Continue(())
        })
        .context("generating")?;

    let record = Record {
        model: source.describe(),
        prompt: &args.prompt,
        negative_prompt: args
            .negative_prompt
            .as_deref()
            .unwrap_or(DEFAULT_NEGATIVE_PROMPT),
        width_px: width,
        height_px: height,
        frames,
        seed,
        noise_generator: NOISE_GENERATOR,
        params: &params,
        device: &args.device,
        phases: generation
            .timings
            .iter()
            .map(|(phase, d)| PhaseTime {
                phase: *phase,
                secs: d.as_secs_f64(),
            })
            .collect(),
        vaced_version: env!("CARGO_PKG_VERSION"),
    };
    write_result(&args.out, &generation.video, &generation.latent, &record)?;
    println!(
        "{}: {frames} frames {width}x{height}, seed {seed}",
        args.out.display()
    );
    Ok(())
}

/// Writes everything into a partial folder that is renamed into place when complete.
fn write_result(
    out: &Path,
    video: &candle_core::Tensor,
    latent: &candle_core::Tensor,
    record: &Record,
) -> anyhow::Result<()> {
    let folder = PartialFolder::begin(out)?;
    frames::write_png_sequence(&frames::to_rgb8(video)?, &folder.path(""))?;
    latent
        .save_safetensors("latent", folder.path("latent.safetensors"))
        .context("writing latent.safetensors")?;
    folder.write(
        "generation.json",
        serde_json::to_string_pretty(record)?.as_bytes(),
    )?;
    folder.publish()?;
    Ok(())
}
