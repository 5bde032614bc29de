//! The worker process (`vaced worker --device D --device-label L`): one per GPU, started by
//! the daemon. It keeps its model loaded between jobs, renders one job at a time, and
//! reports progress on stdout; a CUDA fault or an out-of-memory kill ends this process, not
//! the daemon. A GPU worker sees only its own GPU (as `cuda:0`) and reports it as `L`.

use std::io::{BufRead, Write};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use anyhow::Context;

use super::protocol::{FailureClass, FromWorker, RunJob, ToWorker, encode};
use crate::engine::pipeline::Pipeline;
use crate::engine::preset::ModelSource;
use crate::manifest;
use crate::preprocess::AnnotatorDir;
use crate::queue::Failure;
use crate::render::{self, RenderError, RenderEvent, Renderer};

/// Sends one message to the daemon; a closed stdout means the daemon is gone.
fn send(message: &FromWorker) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(encode(message).as_bytes())?;
    out.flush()
}

/// The loaded model and where it came from.
struct Loaded {
    source: String,
    pipeline: Pipeline,
}

/// Makes the kernel kill this process when its parent (the daemon) dies, even by SIGKILL: a
/// worker left behind would keep rendering a job the restarted daemon gives to a new
/// worker. False when the parent is already gone.
fn die_with_parent() -> bool {
    let parent = std::os::unix::process::parent_id();
    // Safety: prctl with PR_SET_PDEATHSIG only sets a signal number for this process.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    // The parent may have died before the call above took effect.
    std::os::unix::process::parent_id() == parent && parent != 1
}

/// Runs the worker on `device_arg` (`cpu`, `cuda:0`) until the daemon closes stdin;
/// `device_name` is the device's name for people (`cuda:3` when `CUDA_VISIBLE_DEVICES=3`
/// shows that GPU as cuda:0 here).
pub fn run(device_arg: &str, device_name: &str) -> anyhow::Result<()> {
    if !die_with_parent() {
        anyhow::bail!("the daemon that started this worker is gone");
    }
    let device = crate::cli::device::open(device_arg).with_context(|| {
        match std::env::var("CUDA_VISIBLE_DEVICES") {
            Ok(gpus) if device_name != device_arg => format!(
                "the worker for {device_name} (started with CUDA_VISIBLE_DEVICES={gpus}, so it is {device_arg} here)"
            ),
            _ => format!("the worker for {device_name}"),
        }
    })?;
    let dtype = crate::cli::device::compute_dtype(&device);
    let cancel = Arc::new(AtomicBool::new(false));
    let (jobs_tx, jobs_rx) = mpsc::channel::<RunJob>();
    let reader_cancel = cancel.clone();
    // Reads commands while a job runs, so a cancel arrives between steps.
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str::<ToWorker>(&line) {
                Ok(ToWorker::Run(job)) => {
                    reader_cancel.store(false, Ordering::SeqCst);
                    if jobs_tx.send(job).is_err() {
                        break;
                    }
                }
                Ok(ToWorker::Cancel) => reader_cancel.store(true, Ordering::SeqCst),
                Err(e) => tracing::error!(%line, error = %e, "unreadable command from the daemon"),
            }
        }
        // The daemon is gone: stop the running job at its next step.
        reader_cancel.store(true, Ordering::SeqCst);
    });
    send(&FromWorker::Ready {
        device: device_name.to_owned(),
        pid: std::process::id(),
    })?;
    let mut loaded: Option<Loaded> = None;
    for job in jobs_rx {
        let span = tracing::info_span!("job", job = %job.job_id);
        let _enter = span.enter();
        let outcome = run_job(&job, device_name, &device, dtype, &mut loaded, &cancel);
        send(&outcome)?;
    }
    Ok(())
}

fn failure(what: &str, why: String, how_to_fix: &str) -> Failure {
    Failure {
        what: what.to_owned(),
        why,
        how_to_fix: how_to_fix.to_owned(),
    }
}

fn run_job(
    job: &RunJob,
    device_name: &str,
    device: &candle_core::Device,
    dtype: candle_core::DType,
    loaded: &mut Option<Loaded>,
    cancel: &AtomicBool,
) -> FromWorker {
    let job_id = job.job_id;
    let job_failed = |why: String, how: &str| FromWorker::Failed {
        job_id,
        class: FailureClass::Job,
        failure: failure("the job cannot be rendered", why, how),
    };
    let (manifest, problems) = match manifest::load_with_problems(&job.job_dir) {
        Ok(loaded) => loaded,
        Err(e) => return job_failed(e.to_string(), "fix job.json and drop the folder again"),
    };
    let mut plan = match (
        render::plan(
            &job.job_dir,
            &manifest,
            job.model_name,
            &AnnotatorDir::new(job.annotators.clone()),
        ),
        problems.is_empty(),
    ) {
        (Ok(plan), true) => plan,
        (result, _) => {
            let all: Vec<String> = problems
                .into_iter()
                .chain(result.err().unwrap_or_default())
                .map(|p| p.to_string())
                .collect();
            return job_failed(
                all.join("; "),
                "fix the listed fields and drop the folder again",
            );
        }
    };
    plan.seed = job.seed;

    if loaded.as_ref().is_none_or(|l| l.source != job.model_source) {
        // Free the old model before loading the next one: both may not fit.
        *loaded = None;
        let _ = send(&FromWorker::Loading {
            job_id,
            model: job.model_source.clone(),
        });
        tracing::info!(model = %job.model_source, "loading the model");
        match ModelSource::parse(&job.model_source).load(device, dtype) {
            Ok(pipeline) => {
                *loaded = Some(Loaded {
                    source: job.model_source.clone(),
                    pipeline,
                })
            }
            Err(e) => {
                return FromWorker::Failed {
                    job_id,
                    class: FailureClass::Infrastructure,
                    failure: failure(
                        "the model could not be loaded",
                        e.to_string(),
                        "check the model folder with `vaced check-model`",
                    ),
                };
            }
        }
    }
    let Some(model) = loaded.as_ref() else {
        return job_failed("no model".into(), "report this as a bug");
    };
    let renderer = Renderer {
        pipeline: &model.pipeline,
        model_source: ModelSource::parse(&job.model_source).describe(),
        device_name: device_name.to_owned(),
    };
    let mut observer = |event: RenderEvent| {
        let message = match event {
            RenderEvent::StageStarted(stage) => Some(FromWorker::Stage { job_id, stage }),
            RenderEvent::Step {
                step,
                total,
                elapsed,
            } => Some(FromWorker::Step {
                job_id,
                step,
                total,
                elapsed_secs: elapsed.as_secs_f64(),
            }),
            RenderEvent::StageFinished(..) => None,
        };
        if let Some(message) = message {
            let _ = send(&message);
        }
        if cancel.load(Ordering::SeqCst) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    };
    match render::render(&plan, &renderer, &job.out_dir, &mut observer) {
        Ok(_) => FromWorker::Done { job_id },
        Err(RenderError::Cancelled) => FromWorker::Cancelled { job_id },
        Err(RenderError::Inputs(e)) => job_failed(
            e.to_string(),
            "check the source media (re-export as H.264 MP4 or PNG)",
        ),
        Err(e) => FromWorker::Failed {
            job_id,
            class: FailureClass::Infrastructure,
            failure: failure(
                "rendering failed",
                format!("{e:#}"),
                "it will be retried; if it keeps failing, check the GPU, free disk space and the logs",
            ),
        },
    }
}
