//! `vaced render JOB --out DIR`: one job, no daemon, with progress on the terminal.

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{device, job_plan, progress::RenderProgress};
use crate::preprocess::AnnotatorDir;
use crate::render::{self, Renderer};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The job folder (holding job.json).
    job: PathBuf,
    /// Folder to create for the result.
    #[arg(long)]
    out: PathBuf,
    /// `tiny`, a preset, or a downloaded Wan2.1-VACE folder; default: the job's model.
    #[arg(long)]
    model: Option<String>,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Annotator weights folder for preprocessing tasks (the VACE-Annotators download).
    #[arg(long, env = "VACED_ANNOTATORS")]
    annotators: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if args.out.exists() {
        bail!(
            "--out {}: already exists; choose a new folder",
            args.out.display()
        );
    }
    let annotators = AnnotatorDir::new(args.annotators.clone());
    let (plan, model) = job_plan::load(&args.job, args.model.as_deref(), &annotators)?;
    let dev = device::open(&args.device)?;
    tracing::info!(model = %model.source.describe(), device = %args.device, "loading the model");
    let pipeline = model
        .source
        .load(&dev, device::compute_dtype(&dev))
        .context("loading the model")?;
    tracing::info!(job = %args.job.display(), "rendering\n{}", plan.describe());
    let renderer = Renderer {
        pipeline: &pipeline,
        model_source: model.source.describe(),
        device_name: args.device.clone(),
    };
    let mut progress = RenderProgress::new();
    let report = render::render(&plan, &renderer, &args.out, &mut |event| {
        progress.on_event(event)
    })
    .with_context(|| format!("rendering {}", args.job.display()))?;
    println!(
        "{}: {} frames {} at {} fps, seed {}, {:.1} s",
        args.out.join(render::RESULT_VIDEO).display(),
        report.output.frames,
        report.output.size,
        report.output.fps,
        report.plan.seed,
        report.total_secs
    );
    Ok(())
}
