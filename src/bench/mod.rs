//! `vaced bench`: the engine timed at the real shapes with random weights: one DiT sampling
//! step with guidance, VAE encode and decode, the text encoder, and a whole job; with the
//! FLOPs of a step and the peak GPU memory. Prints JSON (docs/benchmarks.md records runs).

mod annotators;
mod attention;
mod gemm;
mod gpu_memory;

use std::ops::ControlFlow;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use crate::engine::conditioning::VaceInputs;
use crate::engine::config::DitConfig;
use crate::engine::pipeline::{
    Event, GenerationRequest, Pipeline, SamplingParams, guided_velocity,
};
use crate::engine::preset::Preset;
use crate::engine::regions;
use crate::engine::scheduler;

pub use annotators::AnnotatorTiming;
pub use attention::AttentionTiming;
pub use gemm::GemmTiming;
pub use gpu_memory::peak_during;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub preset: Preset,
    pub width_px: usize,
    pub height_px: usize,
    pub frames: usize,
    /// Timed repetitions after one warm-up.
    pub repeat: usize,
    /// Steps of the whole-job run; 0 skips it.
    pub job_steps: usize,
    pub step: bool,
    pub vae: bool,
    pub text: bool,
    /// One layer's self- and cross-attention through each implementation.
    pub attention: bool,
    /// The block's matrix products through each path.
    pub gemm: bool,
    /// The network annotators (preprocessing), per frame at the frame size.
    pub annotators: bool,
    /// Where `pose`'s ONNX files are, if anywhere (they cannot be made up at random).
    pub annotator_dir: crate::preprocess::AnnotatorDir,
}

/// Times of one measurement.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    pub median_secs: f64,
    pub min_secs: f64,
    pub runs_secs: Vec<f64>,
}

/// The whole-job run.
#[derive(Debug, Clone, Serialize)]
pub struct JobTiming {
    pub steps: usize,
    pub total_secs: f64,
    pub phases: Vec<(String, f64)>,
    pub peak_gpu_memory_gib: Option<f64>,
}

/// What `vaced bench` prints.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub device: String,
    pub model: String,
    pub dtype: String,
    /// How attention and the linear layers computed (the 8-bit switches).
    pub numerics: crate::engine::dit::Numerics,
    pub size: String,
    pub frames: usize,
    pub latent_frames: usize,
    pub tokens: usize,
    /// Seconds to build the random-weight pipeline (0 when only the DiT was measured).
    pub load_secs: f64,
    pub dit_step: Option<Timing>,
    /// TFLOP of one step (two forwards), counted from the shapes.
    pub dit_step_tflop: f64,
    pub dit_step_tflops_per_sec: Option<f64>,
    /// With `VACED_PROFILE_REGIONS=1`: seconds per step in each region of the DiT, each
    /// synchronised on its own (so they add up to more than `dit_step`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dit_step_regions: Option<Vec<regions::RegionTime>>,
    /// Device memory in use at the step's peak, with only the DiT loaded.
    pub dit_peak_gpu_memory_gib: Option<f64>,
    pub vae_encode: Option<Timing>,
    pub vae_decode: Option<Timing>,
    pub vae_peak_gpu_memory_gib: Option<f64>,
    /// The encoder alone, its weights already on the device.
    pub text_encode_512_tokens: Option<Timing>,
    /// Copying the host-resident encoder to the device, encoding, and freeing it again.
    pub text_upload_and_encode_512_tokens: Option<Timing>,
    /// One layer's self- and cross-attention (B=1) through each implementation.
    pub attention: Option<Vec<AttentionTiming>>,
    /// The block's matrix products at the step's token count, through each path.
    pub gemm: Option<Vec<GemmTiming>>,
    /// Preprocessing annotators, seconds per frame.
    pub annotators: Option<AnnotatorTiming>,
    pub job: Option<JobTiming>,
}

/// Prints a finished measurement to stderr at once: a long run cut short still shows what
/// it measured.
fn progress(part: &str, value: &impl Serialize) {
    eprintln!(
        "bench: {part}: {}",
        serde_json::to_string(value).unwrap_or_default()
    );
}

fn gib(bytes: Option<u64>) -> Option<f64> {
    bytes.map(|b| b as f64 / (1u64 << 30) as f64)
}

/// Runs `work` once to warm up, then `repeat` times, synchronizing the device around each.
fn time(
    device: &Device,
    repeat: usize,
    mut work: impl FnMut() -> candle_core::Result<()>,
) -> candle_core::Result<Timing> {
    work()?;
    device.synchronize()?;
    let mut runs = Vec::with_capacity(repeat);
    for _ in 0..repeat.max(1) {
        let start = Instant::now();
        work()?;
        device.synchronize()?;
        runs.push(start.elapsed().as_secs_f64());
    }
    let mut sorted = runs.clone();
    sorted.sort_by(f64::total_cmp);
    Ok(Timing {
        median_secs: sorted[sorted.len() / 2],
        min_secs: sorted[0],
        runs_secs: runs,
    })
}

/// FLOPs of one DiT forward over `tokens` tokens (matrix products only): per block the
/// self-attention scores and values (4·L²·d), the q/k/v/o and cross q/o projections
/// (12·L·d²), the cross-attention to 512 text rows (4·L·512·d) and the FFN (4·L·d·f).
pub fn forward_flop(cfg: &DitConfig, tokens: usize) -> f64 {
    let (l, d, f) = (tokens as f64, cfg.dim as f64, cfg.ffn_dim as f64);
    let text = cfg.text_len as f64;
    let per_block = 4.0 * l * l * d + 12.0 * l * d * d + 4.0 * l * text * d + 4.0 * l * d * f;
    per_block * (cfg.num_layers + cfg.vace_layers().len()) as f64
}

/// Runs the benchmark on `device`.
pub fn run(
    options: &BenchOptions,
    device: &Device,
    device_name: &str,
    dtype: DType,
) -> anyhow::Result<BenchReport> {
    let cfg = options.preset.dit_config();
    let (temporal, spatial) = options.preset.vae_config().stride();
    let (h, w) = (options.height_px / spatial, options.width_px / spatial);
    let t = 1 + options.frames.saturating_sub(1) / temporal;
    let tokens = t * h * w / (cfg.patch_size[1] * cfg.patch_size[2]);
    let step_flop = 2.0 * forward_flop(&cfg, tokens);
    let mut report = BenchReport {
        device: device_name.to_owned(),
        model: options.preset.name().to_owned(),
        dtype: format!("{dtype:?}").to_lowercase(),
        numerics: crate::engine::dit::Numerics::of(device, dtype),
        size: format!("{}x{}", options.width_px, options.height_px),
        frames: options.frames,
        latent_frames: t,
        tokens,
        load_secs: 0.0,
        dit_step: None,
        dit_step_tflop: step_flop / 1e12,
        dit_step_tflops_per_sec: None,
        dit_step_regions: None,
        dit_peak_gpu_memory_gib: None,
        vae_encode: None,
        vae_decode: None,
        vae_peak_gpu_memory_gib: None,
        text_encode_512_tokens: None,
        text_upload_and_encode_512_tokens: None,
        attention: None,
        gemm: None,
        annotators: None,
        job: None,
    };
    if options.annotators {
        let timing = annotators::run(
            options.width_px,
            options.height_px,
            &options.annotator_dir,
            device,
            options.repeat,
        )?;
        progress("annotators", &timing);
        report.annotators = Some(timing);
    }
    if options.attention {
        let rows = attention::run(&cfg, tokens, dtype, device, options.repeat)?;
        progress("attention", &rows);
        report.attention = Some(rows);
    }

    if options.gemm {
        let rows = gemm::run(&cfg, tokens, dtype, device, options.repeat)?;
        progress("gemm", &rows);
        report.gemm = Some(rows);
    }

    if options.step {
        // The DiT alone, so the peak is the DiT's: the text encoder and VAE are not loaded.
        let dit = options.preset.random_dit(device, dtype)?;
        let latent = Tensor::randn(0f32, 1.0, (cfg.in_dim, t, h, w), device)?;
        let z = Tensor::randn(0f32, 1.0, (cfg.vace_in_dim(), t, h, w), device)?;
        // A short prompt and the default negative prompt's length (the text MLP pads both).
        let context = Tensor::randn(0f32, 1.0, (24.min(cfg.text_len), cfg.text_dim), device)?
            .to_dtype(dtype)?;
        let context_null = Tensor::randn(0f32, 1.0, (120.min(cfg.text_len), cfg.text_dim), device)?
            .to_dtype(dtype)?;
        let vace = dit.vace_condition(&z)?;
        let cond = dit.text_condition(&context)?;
        let uncond = dit.text_condition(&context_null)?;
        let step = || {
            // A fresh solver per step: each timed step is the first order-2-capable step.
            let mut solver = scheduler::build(Default::default(), 50, 16.0);
            let t = solver.schedule().timesteps[1];
            let time = dit.time_condition(t as f64)?;
            let v = guided_velocity(&dit, &latent, &time, [&cond, &uncond], &vace, 1.0, 5.0)?;
            solver.step(&v, &latent)?;
            Ok(())
        };
        if regions::enabled() {
            // The regions of warm steps only: the first pays for loading kernels.
            step()?;
            regions::take();
        }
        let (timing, peak) = peak_during(device, || time(device, options.repeat, step));
        let timing = timing?;
        if regions::enabled() {
            // Per step: `time` ran the work once before the timed repeats.
            let steps = (options.repeat.max(1) + 1) as f64;
            let per_step: Vec<_> = regions::take()
                .into_iter()
                .map(|mut r| {
                    r.secs /= steps;
                    r.calls = (r.calls as f64 / steps).round() as u64;
                    r
                })
                .collect();
            progress("dit_step_regions", &per_step);
            report.dit_step_regions = Some(per_step);
        }
        report.dit_step_tflops_per_sec = Some(step_flop / 1e12 / timing.median_secs);
        progress("dit_step", &(&timing, gib(peak)));
        report.dit_step = Some(timing);
        report.dit_peak_gpu_memory_gib = gib(peak);
    }
    if !(options.vae || options.text || options.job_steps > 0) {
        return Ok(report);
    }

    let load = Instant::now();
    let pipeline = options.preset.random_pipeline(device, dtype)?;
    device.synchronize()?;
    report.load_secs = load.elapsed().as_secs_f64();

    if options.vae {
        let video = (Tensor::rand(
            0f32,
            2.0,
            (3, options.frames, options.height_px, options.width_px),
            device,
        )? - 1.0)?;
        let latent = Tensor::randn(0f32, 1.0, (pipeline.vae.config().z_dim, t, h, w), device)?;
        let ((encode, decode), peak) = peak_during(device, || {
            let encode = time(device, options.repeat, || {
                pipeline.vae.encode(&video).map(drop)
            });
            let decode = time(device, options.repeat, || {
                pipeline.vae.decode(&latent).map(drop)
            });
            (encode, decode)
        });
        let (encode, decode) = (encode?, decode?);
        progress("vae_encode_decode", &(&encode, &decode, gib(peak)));
        report.vae_encode = Some(encode);
        report.vae_decode = Some(decode);
        report.vae_peak_gpu_memory_gib = gib(peak);
    }

    if options.text {
        let len = 512.min(cfg.text_len) as u32;
        let ids: Vec<u32> = (0..len).map(|i| 3 + i % 250).collect();
        let text = &pipeline.text;
        if text.is_host_resident() {
            // What a prompt missing from the cache costs on top of the encoder itself.
            let timing = time(device, options.repeat, || text.encode_ids(&ids).map(drop))?;
            progress("text_upload_and_encode_512_tokens", &timing);
            report.text_upload_and_encode_512_tokens = Some(timing);
        }
        let encoder = text.device_encoder()?;
        let timing = time(device, options.repeat, || {
            encoder.encode(&ids, device).map(drop)
        })?;
        progress("text_encode_512_tokens", &timing);
        report.text_encode_512_tokens = Some(timing);
    }

    if options.job_steps > 0 {
        report.job = Some(job(&pipeline, options, device)?);
    }
    Ok(report)
}

/// A whole text-to-video job: prompts, VAE encode of the blank source, sampling, decode.
fn job(pipeline: &Pipeline, options: &BenchOptions, device: &Device) -> anyhow::Result<JobTiming> {
    let request = GenerationRequest {
        prompt: "a red fox running through fresh snow at dawn".into(),
        negative_prompt: None,
        inputs: VaceInputs::blank(options.frames, options.height_px, options.width_px, device)?,
        params: SamplingParams {
            steps: options.job_steps,
            ..SamplingParams::default()
        },
        seed: 1,
    };
    let start = Instant::now();
    let (generation, peak) = peak_during(device, || {
        pipeline.generate(&request, &mut |event| {
            match event {
                Event::PhaseFinished(phase, took) => {
                    progress(&format!("job {phase:?}"), &took.as_secs_f64())
                }
                Event::Step { step, elapsed, .. } if step % 10 == 0 => {
                    progress(&format!("job step {step}"), &elapsed.as_secs_f64())
                }
                _ => {}
            }
            ControlFlow::Continue(())
        })
    });
    let generation = generation?;
    #[cfg_attr(not(feature = "ffmpeg"), allow(unused_mut))]
    let mut phases: Vec<(String, f64)> = generation
        .timings
        .iter()
        .map(|(p, d)| (format!("{p:?}"), d.as_secs_f64()))
        .collect();
    #[cfg(feature = "ffmpeg")]
    {
        let encode = Instant::now();
        let frames = crate::media::frames::to_rgb8(&generation.video)?;
        let dir = tempfile_dir()?;
        let settings = crate::media::Mp4Settings {
            fps: 16,
            crf: 18,
            preset: "medium".into(),
        };
        crate::media::write_mp4(&dir.join("bench.mp4"), &frames, &settings)?;
        let _ = std::fs::remove_dir_all(&dir);
        phases.push(("EncodeMp4".into(), encode.elapsed().as_secs_f64()));
    }
    Ok(JobTiming {
        steps: options.job_steps,
        total_secs: start.elapsed().as_secs_f64(),
        phases,
        peak_gpu_memory_gib: gib(peak),
    })
}

#[cfg(feature = "ffmpeg")]
fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("vaced-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flop_count_matches_the_published_estimate() {
        // gpu.md: one VACE-1.3B forward at 832x480x81 is about 427 TFLOP; 14B at 1280x720x81
        // about 7,864.
        let small = forward_flop(&DitConfig::vace_1_3b(), 32760) / 1e12;
        assert!((small - 427.0).abs() < 5.0, "{small}");
        let big = forward_flop(&DitConfig::vace_14b(), 75600) / 1e12;
        assert!((big - 7864.0).abs() / 7864.0 < 0.01, "{big}");
    }

    #[test]
    fn the_tiny_model_benchmarks_on_the_cpu() {
        let options = BenchOptions {
            preset: Preset::Tiny,
            width_px: 64,
            height_px: 48,
            frames: 5,
            repeat: 1,
            job_steps: 2,
            step: true,
            vae: true,
            text: true,
            attention: true,
            gemm: true,
            annotators: false,
            annotator_dir: Default::default(),
        };
        let report = run(&options, &Device::Cpu, "cpu", DType::F32).unwrap();
        assert_eq!(report.tokens, 2 * 3 * 4);
        // The CPU has only the portable implementation, which is the reference itself: one
        // row for the self-attention, one for the cross-attention to the text.
        let attention = report.attention.unwrap();
        assert_eq!(
            attention
                .iter()
                .map(|a| (a.attention, a.keys))
                .collect::<Vec<_>>(),
            [("self", 24), ("cross", 64)]
        );
        assert!(
            attention
                .iter()
                .all(|a| a.default && a.relative_error_vs_portable == 0.0)
        );
        // Three product shapes; the CPU has candle's matmul only.
        let gemm = report.gemm.unwrap();
        assert_eq!(gemm.len(), 3);
        assert!(
            gemm.iter()
                .all(|g| g.path == "matmul" && g.tflops_per_sec > 0.0)
        );
        assert!(report.dit_step.unwrap().median_secs > 0.0);
        assert!(report.vae_decode.is_some() && report.text_encode_512_tokens.is_some());
        assert_eq!(report.job.unwrap().steps, 2);
        assert!(report.dit_peak_gpu_memory_gib.is_none());
    }
}
