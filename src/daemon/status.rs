//! `<outbox>/<job>.status.json`: where a job is, for people who only look at the share.
//! Written (atomically) when the job is queued, at each stage and at most twice a second
//! while it denoises; removed when its result or failure is published.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::queue::{JobRecord, write_atomic};

/// The status file's content.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub job_id: String,
    pub job: String,
    pub state: String,
    /// The render stage (`decode`, `text`, `vae encode`, `denoise`, `vae decode`, `encode`).
    pub phase: Option<String>,
    pub step: Option<usize>,
    pub total_steps: Option<usize>,
    /// 1 = next to run, while queued.
    pub queue_position: Option<usize>,
    pub attempt: u32,
    pub max_attempts: u32,
    pub queued_secs: f64,
    pub running_secs: f64,
    /// Estimated seconds to the end of the denoising, from this run's step times.
    pub eta_secs: Option<f64>,
    pub worker: Option<String>,
    pub updated_at: String,
}

/// Live progress of a running job (not persisted).
#[derive(Debug, Clone, Default)]
pub struct Progress {
    pub phase: Option<String>,
    pub step: Option<usize>,
    pub total_steps: Option<usize>,
    pub denoise_elapsed_secs: Option<f64>,
}

impl Progress {
    /// Seconds left in the denoising, from the mean step time so far.
    pub fn eta_secs(&self) -> Option<f64> {
        match (self.step, self.total_steps, self.denoise_elapsed_secs) {
            (Some(step), Some(total), Some(elapsed)) if step > 0 => {
                Some(elapsed / step as f64 * (total.saturating_sub(step)) as f64)
            }
            _ => None,
        }
    }
}

/// The status file of a job.
pub fn path(outbox: &Path, record: &JobRecord) -> PathBuf {
    outbox.join(format!("{}.status.json", record.output_name))
}

/// Writes the status of `record`.
pub fn write(
    outbox: &Path,
    record: &JobRecord,
    progress: Option<&Progress>,
    queue_position: Option<usize>,
    max_attempts: u32,
) -> std::io::Result<()> {
    let now = crate::queue::now_secs();
    let running_extra = if record.state.is_running() {
        (now - record.state_since_secs).max(0.0)
    } else {
        0.0
    };
    let status = Status {
        job_id: record.id.to_string(),
        job: record.name.clone(),
        state: record.state.to_string(),
        phase: progress.and_then(|p| p.phase.clone()),
        step: progress.and_then(|p| p.step),
        total_steps: progress.and_then(|p| p.total_steps),
        queue_position,
        attempt: record.attempts + 1,
        max_attempts,
        queued_secs: record.queued_secs,
        running_secs: record.running_secs + running_extra,
        eta_secs: progress.and_then(Progress::eta_secs),
        worker: record.worker.clone(),
        updated_at: crate::render::report::now_rfc3339(),
    };
    let json = serde_json::to_vec_pretty(&status).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(outbox)?;
    write_atomic(&path(outbox, record), &json)
}

/// Removes the status file of a job (absent is fine).
pub fn remove(outbox: &Path, record: &JobRecord) {
    let _ = std::fs::remove_file(path(outbox, record));
}
