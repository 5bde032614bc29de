//! The daemon's core: the one thread that owns job state. It accepts claimed folders,
//! checks them and queues them, hands queued jobs to free workers (model affinity first),
//! follows their progress, publishes results and failures, answers operators, and recovers
//! whatever a crash left behind. Everything arrives as a [`CoreMsg`]; blocking file work is
//! fine here because this thread is not the async runtime.

mod accept;
mod outcomes;
mod recovery;
mod requests;
mod workers;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;

use super::control::{JobLine, Pending, Request, Response, StatusReport, WorkerLine};
use super::job_log;
use super::status::{self, Progress};
use crate::config::Config;
use crate::intake;
use crate::mail::{Mailer, Notification, Outcome};
use crate::manifest::{self, MANIFEST_FILE, ModelName};
use crate::outbox;
use crate::preprocess::AnnotatorDir;
use crate::queue::{Failure, JobId, JobRecord, JobState, Queue, now_secs};
use crate::render::{self, Stage};
use crate::worker::{FailureClass, FromWorker, Placement, RunJob, ToWorker, WorkerEvent};

/// How often the status file of a denoising job is rewritten, at most.
const STATUS_INTERVAL: Duration = Duration::from_millis(500);

/// Everything the core reacts to.
#[derive(Debug)]
pub enum CoreMsg {
    /// Intake claimed a folder from inbox `inbox` (index into the config's inboxes).
    Claimed {
        inbox: usize,
        path: PathBuf,
    },
    Worker {
        index: usize,
        event: WorkerEvent,
    },
    Control(Pending),
    /// Once a second.
    Tick,
    /// Stop: requeue running jobs at their next step, then end.
    Shutdown {
        deadline: Instant,
    },
}

/// Why a running job is being cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CancelReason {
    Operator,
    Shutdown,
}

#[derive(Debug, Clone, PartialEq)]
enum WorkerState {
    Starting,
    Idle,
    Busy {
        job: JobId,
        cancel: Option<CancelReason>,
    },
}

/// A worker as the core tracks it.
struct Worker {
    /// Unique among the workers (`cuda:3`, `cpu`, `cpu#2`); names it in job records and logs.
    name: String,
    /// The device it renders on, as reported (`cuda:3`, `cpu`).
    device: String,
    commands: mpsc::Sender<ToWorker>,
    state: WorkerState,
    /// The model source the worker has loaded.
    loaded: Option<String>,
    /// What the worker last wrote to stderr while it had no job: why it exited, if it did.
    last_words: Option<String>,
}

/// The core's state.
pub struct Core {
    config: Config,
    queue: Queue,
    mailer: Arc<Mailer>,
    runtime: tokio::runtime::Handle,
    workers: Vec<Worker>,
    progress: HashMap<JobId, Progress>,
    last_status_write: HashMap<JobId, Instant>,
    /// Results that could not be moved to the outbox yet (retried every tick).
    unpublished: HashSet<JobId>,
    shutdown_deadline: Option<Instant>,
    /// Unix seconds of the last message handled, for the watchdog.
    heartbeat: Arc<AtomicU64>,
}

/// The `error.json` of a failed or cancelled job.
#[derive(Debug, Serialize)]
struct ErrorReport<'a> {
    job_id: String,
    job: &'a str,
    state: &'a str,
    what: &'a str,
    why: &'a str,
    how_to_fix: &'a str,
    attempts: u32,
    failed_at: String,
    history: &'a [crate::queue::Transition],
    log_tail: Vec<String>,
}

fn failure(what: &str, why: impl Into<String>, how_to_fix: &str) -> Failure {
    Failure {
        what: what.into(),
        why: why.into(),
        how_to_fix: how_to_fix.into(),
    }
}

impl Core {
    pub fn new(
        config: Config,
        queue: Queue,
        mailer: Arc<Mailer>,
        runtime: tokio::runtime::Handle,
        workers: Vec<(Placement, mpsc::Sender<ToWorker>)>,
        heartbeat: Arc<AtomicU64>,
    ) -> Self {
        let workers = workers
            .into_iter()
            .map(|(placement, commands)| Worker {
                name: placement.name,
                device: placement.device_label,
                commands,
                state: WorkerState::Starting,
                loaded: None,
                last_words: None,
            })
            .collect();
        Self {
            config,
            queue,
            mailer,
            runtime,
            workers,
            progress: HashMap::new(),
            last_status_write: HashMap::new(),
            unpublished: HashSet::new(),
            shutdown_deadline: None,
            heartbeat,
        }
    }

    /// Recovers from the last run, then handles messages until shut down.
    pub fn run(
        mut self,
        mut messages: mpsc::Receiver<CoreMsg>,
        recovered: tokio::sync::oneshot::Sender<()>,
    ) {
        self.recover();
        let _ = recovered.send(());
        while let Some(message) = messages.blocking_recv() {
            self.heartbeat.store(now_secs() as u64, Ordering::Relaxed);
            self.handle(message);
            if let Some(deadline) = self.shutdown_deadline
                && (self.busy_workers() == 0 || Instant::now() >= deadline)
            {
                self.requeue_running("the daemon stopped before the job finished");
                break;
            }
        }
        tracing::info!("core stopped");
    }

    fn busy_workers(&self) -> usize {
        self.workers
            .iter()
            .filter(|w| matches!(w.state, WorkerState::Busy { .. }))
            .count()
    }

    fn handle(&mut self, message: CoreMsg) {
        match message {
            CoreMsg::Claimed { inbox, path } => {
                self.accept(inbox, &path);
                self.schedule();
            }
            CoreMsg::Worker { index, event } => self.on_worker(index, event),
            CoreMsg::Control(pending) => {
                let response = self.on_control(pending.request);
                let _ = pending.reply.send(response);
            }
            CoreMsg::Tick => {
                let pending: Vec<JobId> = self.unpublished.iter().copied().collect();
                for id in pending {
                    self.publish(id);
                }
            }
            CoreMsg::Shutdown { deadline } => {
                tracing::info!(
                    running = self.busy_workers(),
                    "stopping: running jobs stop at their next step"
                );
                self.shutdown_deadline = Some(deadline);
                for worker in &mut self.workers {
                    if let WorkerState::Busy { cancel, .. } = &mut worker.state {
                        *cancel = Some(CancelReason::Shutdown);
                        let _ = worker.commands.blocking_send(ToWorker::Cancel);
                    }
                }
            }
        }
    }

    fn log(&self, id: JobId, line: &str) {
        tracing::info!(job = %id, "{line}");
        job_log::append(&self.queue, id, "daemon", line);
    }

    // ---- intake ------------------------------------------------------------------------
}

/// Removes a job's partial or stale result.
fn clear_result(job_dir: &Path) {
    let _ = std::fs::remove_dir_all(job_dir.join("result"));
    if let Ok(entries) = std::fs::read_dir(job_dir) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(".result.partial")
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}
