//! Messages between the daemon and a worker process, one JSON object per line: the daemon
//! writes to the worker's stdin, the worker answers on its stdout (its logs go to stderr).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::manifest::ModelName;
use crate::queue::{Failure, JobId};
use crate::render::Stage;

/// One job for a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunJob {
    pub job_id: JobId,
    /// The job folder (job.json and media).
    pub job_dir: PathBuf,
    /// Folder to create for the result.
    pub out_dir: PathBuf,
    /// `tiny`, a preset, or a checkpoint folder.
    pub model_source: String,
    pub model_name: ModelName,
    /// The seed fixed when the job was accepted.
    pub seed: u64,
    /// The annotator weights folder, for preprocessing tasks.
    #[serde(default)]
    pub annotators: Option<PathBuf>,
}

/// Daemon → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    Run(RunJob),
    /// Stop the running job at the next step boundary.
    Cancel,
}

/// Whether a failure is the job's own or the machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Bad input: failing again would give the same result; do not retry.
    Job,
    /// The machine, the model files or the GPU: worth another attempt.
    Infrastructure,
}

/// Worker → daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    /// The worker is up and waiting for a job.
    Ready {
        device: String,
        pid: u32,
    },
    /// A model is being loaded.
    Loading {
        job_id: JobId,
        model: String,
    },
    Stage {
        job_id: JobId,
        stage: Stage,
    },
    Step {
        job_id: JobId,
        step: usize,
        total: usize,
        elapsed_secs: f64,
    },
    /// The result folder is complete and its video checked.
    Done {
        job_id: JobId,
    },
    Failed {
        job_id: JobId,
        class: FailureClass,
        failure: Failure,
    },
    /// The job stopped at a step boundary as asked.
    Cancelled {
        job_id: JobId,
    },
}

/// One message as a line of JSON.
pub fn encode<T: Serialize>(message: &T) -> String {
    let mut line = serde_json::to_string(message)
        .unwrap_or_else(|e| format!("{{\"type\":\"invalid\",\"error\":\"{e}\"}}"));
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_json_lines() {
        let run = ToWorker::Run(RunJob {
            job_id: JobId(7),
            job_dir: "/s/jobs/job-000007/input".into(),
            out_dir: "/s/jobs/job-000007/result".into(),
            model_source: "tiny".into(),
            model_name: ModelName::Tiny,
            seed: 3,
            annotators: Some("/models/VACE-Annotators".into()),
        });
        let line = encode(&run);
        assert!(line.ends_with('\n') && line.contains("\"type\":\"run\""));
        assert_eq!(serde_json::from_str::<ToWorker>(&line).unwrap(), run);
        let step = FromWorker::Step {
            job_id: JobId(7),
            step: 3,
            total: 50,
            elapsed_secs: 1.5,
        };
        assert_eq!(
            serde_json::from_str::<FromWorker>(&encode(&step)).unwrap(),
            step
        );
    }
}
