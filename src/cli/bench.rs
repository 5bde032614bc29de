//! `vaced bench`: times the engine at real shapes with random weights and prints JSON.

use anyhow::bail;

use crate::bench::{self, BenchOptions};
use crate::engine::preset::Preset;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// `vace-1.3b`, `vace-14b` or `tiny` (random weights at that model's sizes).
    #[arg(long, default_value = "vace-1.3b")]
    model: String,
    /// Frame size WIDTHxHEIGHT.
    #[arg(long, default_value = "832x480")]
    size: String,
    /// Frames, 4n+1.
    #[arg(long, default_value_t = 81)]
    frames: usize,
    /// `cpu` or `cuda:N`.
    #[arg(long, default_value = "cuda:0")]
    device: String,
    /// Timed repetitions of each measurement, after one warm-up.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Steps of the whole-job run (0 skips it).
    #[arg(long, default_value_t = 50)]
    job_steps: usize,
    /// Measure only these: any of step, vae, text, attention, gemm, job, annotators
    /// (default: all but annotators).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Annotator weights folder: `annotators` also times `pose` with the ONNX files found
    /// there (`pose/yolox_l.onnx`, `pose/dw-ll_ucoco_384.onnx`); the other annotators use
    /// random weights.
    #[arg(long, env = "VACED_ANNOTATORS")]
    annotators: Option<std::path::PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let preset: Preset = args.model.parse().map_err(anyhow::Error::msg)?;
    let size: crate::manifest::FrameSize = args.size.parse().map_err(anyhow::Error::msg)?;
    if size.width_px % 16 != 0
        || size.height_px % 16 != 0
        || args.frames == 0
        || (args.frames - 1) % 4 != 0
    {
        bail!(
            "--size must be multiples of 16 and --frames 4n+1 (got {size}, {})",
            args.frames
        );
    }
    for part in &args.only {
        if ![
            "step",
            "vae",
            "text",
            "attention",
            "gemm",
            "job",
            "annotators",
        ]
        .contains(&part.as_str())
        {
            bail!("--only {part}: use step, vae, text, attention, gemm, job or annotators");
        }
    }
    let all = args.only.is_empty();
    let wants = |part: &str| all || args.only.iter().any(|p| p == part);
    let device = super::device::open(&args.device)?;
    let dtype = super::device::compute_dtype(&device);
    let options = BenchOptions {
        preset,
        width_px: size.width_px,
        height_px: size.height_px,
        frames: args.frames,
        repeat: args.repeat,
        job_steps: if wants("job") { args.job_steps } else { 0 },
        step: wants("step"),
        vae: wants("vae"),
        text: wants("text"),
        attention: wants("attention"),
        gemm: wants("gemm"),
        annotators: args.only.iter().any(|p| p == "annotators"),
        annotator_dir: crate::preprocess::AnnotatorDir::new(args.annotators),
    };
    let report = bench::run(&options, &device, &args.device, dtype)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
