//! A job's record in the queue: its identity, where its files are, its state with the
//! history of every transition, its attempts, and the times spent waiting and running.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A job's identity: sled's generated id, shown as `job-000042`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "job-{:06}", self.0)
    }
}

impl std::str::FromStr for JobId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let digits = s.strip_prefix("job-").unwrap_or(s);
        digits
            .parse()
            .map(JobId)
            .map_err(|_| format!("`{s}` is not a job id; write job-000042 or 42"))
    }
}

impl JobId {
    /// Big-endian bytes, so sled iterates jobs in id order.
    pub fn key(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Claimed from an inbox, being checked.
    Received,
    /// Waiting for a worker.
    Queued,
    /// A worker is decoding and preparing its media.
    Preprocessing,
    /// The model is running.
    Generating,
    /// The result is being encoded and checked.
    Encoding,
    Done,
    Failed,
    Cancelled,
    /// Its worker or the daemon stopped under it; it goes back to the queue or fails.
    Interrupted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Queued => "queued",
            Self::Preprocessing => "preprocessing",
            Self::Generating => "generating",
            Self::Encoding => "encoding",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }

    /// A worker holds the job.
    pub fn is_running(self) -> bool {
        matches!(
            self,
            Self::Preprocessing | Self::Generating | Self::Encoding
        )
    }

    /// Nothing more happens unless an operator retries it.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }

    /// Whether the queue may move a job from `self` to `to`.
    pub fn can_become(self, to: JobState) -> bool {
        use JobState::*;
        match (self, to) {
            (Received, Queued | Failed | Cancelled) => true,
            (Queued, Preprocessing | Cancelled | Failed) => true,
            (Preprocessing, Generating | Encoding) => true,
            (Generating, Encoding) => true,
            (
                Preprocessing | Generating | Encoding,
                Done | Failed | Cancelled | Interrupted | Queued,
            ) => true,
            (Interrupted, Queued | Failed | Done) => true,
            // An operator's retry checks the job again from the start.
            (Failed | Cancelled, Queued | Received) => true,
            _ => false,
        }
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One state change, kept forever in the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// Unix time, seconds.
    pub at_secs: f64,
    pub from: Option<JobState>,
    pub to: JobState,
    pub note: String,
}

/// Why a job failed, as the user sees it in `error.json` and the e-mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub what: String,
    pub why: String,
    pub how_to_fix: String,
}

/// Everything the queue knows about a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: JobId,
    /// The job folder's name as dropped.
    pub name: String,
    /// The name its result (or failure) gets in the outbox (or failed folder): `name`, or
    /// `name-job-000042` when that was taken.
    pub output_name: String,
    /// The inbox it came from.
    pub inbox: PathBuf,
    /// Content fingerprint of the folder, for spotting re-drops.
    pub fingerprint: String,
    pub state: JobState,
    pub priority: i32,
    /// The model name the job runs with (`vace-1.3b`, `tiny`, …).
    pub model: String,
    /// Seed fixed when the job was accepted, so every attempt renders the same video.
    pub seed: u64,
    /// Attempts that ended interrupted or failed; the next run is attempt `attempts + 1`.
    pub attempts: u32,
    /// Recipients: the manifest's and the inbox's.
    pub notify: Vec<String>,
    /// Seconds spent queued and running, over all attempts.
    pub queued_secs: f64,
    pub running_secs: f64,
    /// When the current state began (Unix seconds).
    pub state_since_secs: f64,
    pub received_at_secs: f64,
    /// Where the result was published (outbox) or the job was moved (failed).
    pub output: Option<PathBuf>,
    pub failure: Option<Failure>,
    /// The worker that has it, while running (`cuda:3`, `cpu`, or `cpu#2` among several).
    pub worker: Option<String>,
    pub history: Vec<Transition>,
}

/// Now, in Unix seconds.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl JobRecord {
    /// Moves the record to `to`, accounting the time spent in the old state; refuses
    /// transitions the state machine does not allow.
    pub fn transition(
        &mut self,
        to: JobState,
        note: impl Into<String>,
    ) -> Result<(), InvalidTransition> {
        if !self.state.can_become(to) {
            return Err(InvalidTransition {
                id: self.id,
                from: self.state,
                to,
            });
        }
        let now = now_secs();
        let spent = (now - self.state_since_secs).max(0.0);
        if self.state == JobState::Queued {
            self.queued_secs += spent;
        } else if self.state.is_running() {
            self.running_secs += spent;
        }
        self.history.push(Transition {
            at_secs: now,
            from: Some(self.state),
            to,
            note: note.into(),
        });
        self.state = to;
        self.state_since_secs = now;
        if !to.is_running() {
            self.worker = None;
        }
        Ok(())
    }
}

/// A state change the state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{id} cannot go from {from} to {to}")]
pub struct InvalidTransition {
    pub id: JobId,
    pub from: JobState,
    pub to: JobState,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse() {
        assert_eq!(JobId(42).to_string(), "job-000042");
        assert_eq!("job-000042".parse::<JobId>(), Ok(JobId(42)));
        assert_eq!("42".parse::<JobId>(), Ok(JobId(42)));
        assert!("job-x".parse::<JobId>().is_err());
    }

    #[test]
    fn the_state_machine_refuses_impossible_moves() {
        use JobState::*;
        let table = [
            (Received, Queued, true),
            (Queued, Generating, false),
            (Queued, Preprocessing, true),
            (Generating, Done, true),
            (Done, Queued, false),
            (Failed, Queued, true),
            (Interrupted, Queued, true),
            (Cancelled, Generating, false),
        ];
        for (from, to, ok) in table {
            assert_eq!(from.can_become(to), ok, "{from} -> {to}");
        }
    }
}
