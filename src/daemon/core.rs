//! The daemon's core: the one thread that owns job state. It accepts claimed folders,
//! checks them and queues them, hands queued jobs to free workers (model affinity first),
//! follows their progress, publishes results and failures, answers operators, and recovers
//! whatever a crash left behind. Everything arrives as a [`CoreMsg`]; blocking file work is
//! fine here because this thread is not the async runtime.

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

    /// Takes a claimed folder into the state folder, checks it, and queues or fails it.
    fn accept(&mut self, inbox: usize, claimed: &Path) {
        let Some(inbox_config) = self.config.inboxes.get(inbox).cloned() else {
            return;
        };
        let id = match self.queue.next_id() {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(folder = %claimed.display(), error = %e, "cannot give the job an id; it stays claimed");
                return;
            }
        };
        let name = claimed
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| id.to_string());
        let job_dir = self.queue.job_dir(id);
        let input = job_dir.join("input");
        let moved = std::fs::create_dir_all(&job_dir)
            .map_err(|e| e.to_string())
            .and_then(|()| intake::move_dir(claimed, &input).map_err(|e| e.to_string()));
        if let Err(e) = moved {
            tracing::error!(job = %id, folder = %claimed.display(), error = %e, "cannot move the job into the state folder; it stays claimed and is retried at the next start");
            return;
        }
        let fingerprint = intake::fingerprint(&input).unwrap_or_else(|e| {
            tracing::warn!(job = %id, error = %e, "cannot fingerprint the job; duplicates of it will not be spotted");
            format!("unreadable-{id}")
        });
        let output_name = outbox::free_name(
            &name,
            &id.to_string(),
            &[&self.config.outbox, &self.config.failed],
        );
        let now = now_secs();
        let record = JobRecord {
            id,
            name: name.clone(),
            output_name,
            inbox: inbox_config.path.clone(),
            fingerprint: fingerprint.clone(),
            state: JobState::Received,
            priority: 0,
            model: self.config.default_model.as_str().to_owned(),
            seed: 0,
            attempts: 0,
            notify: inbox_config.notify.clone(),
            queued_secs: 0.0,
            running_secs: 0.0,
            state_since_secs: now,
            received_at_secs: now,
            output: None,
            failure: None,
            worker: None,
            history: vec![crate::queue::Transition {
                at_secs: now,
                from: None,
                to: JobState::Received,
                note: format!("claimed from {}", inbox_config.path.display()),
            }],
        };
        if let Err(e) = self.queue.insert(&record) {
            tracing::error!(job = %id, error = %e, "cannot record the job");
            return;
        }
        self.log(
            id,
            &format!("received `{name}` from {}", inbox_config.path.display()),
        );
        self.check_and_queue(id);
    }

    /// Validates a received job and queues it, or fails it with the reasons.
    fn check_and_queue(&mut self, id: JobId) {
        let Ok(Some(record)) = self.queue.get(id) else {
            return;
        };
        let input = self.queue.job_dir(id).join("input");
        if let Some(other) = self
            .queue
            .job_with_fingerprint(&record.fingerprint)
            .ok()
            .flatten()
            && other != id
            && let Ok(Some(original)) = self.queue.get(other)
            && !matches!(original.state, JobState::Failed | JobState::Cancelled)
        {
            let whereabouts = original
                .output
                .as_ref()
                .map(|p| format!(", its result is {}", p.display()))
                .unwrap_or_default();
            let why = format!(
                "this folder is identical to {other} (`{}`), which is {}{whereabouts}",
                original.name, original.state
            );
            self.fail(id, failure("duplicate job, not rendered again", why, "nothing to do; to render it again anyway, change something in job.json (e.g. the seed)"), false);
            return;
        }
        if !input.join(MANIFEST_FILE).is_file() {
            self.fail(
                id,
                failure(
                    "not a job: the folder has no job.json",
                    format!("`{}` holds no job.json", record.name),
                    "add a job.json (see docs/job.schema.json) and drop the folder again",
                ),
                true,
            );
            return;
        }
        let (manifest, mut problems) = match manifest::load_with_problems(&input) {
            Ok(loaded) => loaded,
            Err(e) => {
                self.fail(
                    id,
                    failure(
                        "job.json cannot be read",
                        e.to_string(),
                        "fix job.json and drop the folder again",
                    ),
                    true,
                );
                return;
            }
        };
        let model = manifest.model.unwrap_or(self.config.default_model);
        if !self.config.models.contains_key(&model) {
            problems.push(manifest::Problem::new(
                "model",
                format!("{} is not installed on this render node", model.as_str()),
            ));
        }
        let annotators = AnnotatorDir::new(self.config.annotators.clone());
        let plan = render::plan(&input, &manifest, model, &annotators);
        let plan = match plan {
            Ok(plan) if problems.is_empty() => plan,
            result => {
                for problem in result.err().unwrap_or_default() {
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                }
                let why = problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("\n");
                self.fail(id, failure("job.json has problems", why, "fix the listed fields (see docs/job.schema.json; `vaced validate FOLDER` checks a job) and drop the folder again"), true);
                return;
            }
        };
        let notify: Vec<String> = record
            .notify
            .iter()
            .chain(&manifest.notify)
            .cloned()
            .collect();
        let queued = self.queue.update(id, |r| {
            r.seed = plan.seed;
            r.priority = manifest.priority;
            r.model = model.as_str().to_owned();
            r.notify = notify.clone();
            r.transition(
                JobState::Queued,
                format!(
                    "checked: {} frames {} with {}",
                    plan.frames,
                    plan.size,
                    model.as_str()
                ),
            )
            .map_err(crate::queue::Error::from)
        });
        match queued {
            Ok(record) => {
                let _ = self.queue.claim_fingerprint(&record.fingerprint, id);
                self.log(
                    id,
                    &format!(
                        "queued: {} frames {} at {} fps, seed {}",
                        plan.frames, plan.size, plan.fps, plan.seed
                    ),
                );
                self.write_queue_statuses();
            }
            Err(e) => tracing::error!(job = %id, error = %e, "cannot queue the job"),
        }
    }

    // ---- scheduling --------------------------------------------------------------------

    fn model_source(&self, model: &str) -> Option<String> {
        let name: ModelName =
            serde_json::from_value(serde_json::Value::String(model.to_owned())).ok()?;
        self.config.models.get(&name).map(|m| m.source.clone())
    }

    /// Starts queued jobs on free workers: jobs in priority order; for each, a free worker
    /// that already has its model loaded, else any free worker.
    fn schedule(&mut self) {
        if self.shutdown_deadline.is_some() || self.queue.is_paused().unwrap_or(false) {
            return;
        }
        let Ok(queued) = self.queue.queued() else {
            return;
        };
        for job in queued {
            let free: Vec<usize> = (0..self.workers.len())
                .filter(|&i| self.workers[i].state == WorkerState::Idle)
                .collect();
            if free.is_empty() {
                break;
            }
            let Some(source) = self.model_source(&job.model) else {
                continue;
            };
            let pick = free
                .iter()
                .copied()
                .find(|&i| self.workers[i].loaded.as_deref() == Some(source.as_str()))
                .unwrap_or(free[0]);
            self.start(job, pick, source);
        }
        self.write_queue_statuses();
    }

    fn start(&mut self, job: JobRecord, index: usize, source: String) {
        let id = job.id;
        let worker = self.workers[index].name.clone();
        let attempt = job.attempts + 1;
        let started = self.queue.update(id, |r| {
            r.worker = Some(worker.clone());
            r.transition(
                JobState::Preprocessing,
                format!("attempt {attempt} on {worker}"),
            )
            .map_err(crate::queue::Error::from)
        });
        if let Err(e) = started {
            tracing::error!(job = %id, error = %e, "cannot start the job");
            return;
        }
        let job_dir = self.queue.job_dir(id);
        clear_result(&job_dir);
        let run = RunJob {
            job_id: id,
            job_dir: job_dir.join("input"),
            out_dir: job_dir.join("result"),
            model_source: source.clone(),
            model_name: serde_json::from_value(serde_json::Value::String(job.model.clone()))
                .unwrap_or(ModelName::Vace1_3b),
            seed: job.seed,
            annotators: self.config.annotators.clone(),
        };
        self.workers[index].state = WorkerState::Busy {
            job: id,
            cancel: None,
        };
        self.workers[index].loaded = Some(source);
        self.progress.insert(id, Progress::default());
        self.log(id, &format!("started, attempt {attempt}, on {worker}"));
        if self.workers[index]
            .commands
            .blocking_send(ToWorker::Run(run))
            .is_err()
        {
            tracing::error!(job = %id, worker = %worker, "worker channel closed");
        }
        self.write_status(id);
    }

    // ---- workers -----------------------------------------------------------------------

    fn busy_job(&self, index: usize) -> Option<(JobId, Option<CancelReason>)> {
        match self.workers.get(index)?.state {
            WorkerState::Busy { job, cancel } => Some((job, cancel)),
            _ => None,
        }
    }

    fn on_worker(&mut self, index: usize, event: WorkerEvent) {
        match event {
            WorkerEvent::Log(line) => {
                if let Some((job, _)) = self.busy_job(index) {
                    job_log::append(&self.queue, job, &self.workers[index].name, &line);
                } else {
                    tracing::debug!(worker = %self.workers[index].name, "{line}");
                    self.workers[index].last_words = Some(line);
                }
            }
            WorkerEvent::Exited(detail) => {
                let worker = self.workers[index].name.clone();
                self.workers[index].loaded = None;
                let last_words = self.workers[index].last_words.take();
                let busy = self.busy_job(index);
                self.workers[index].state = WorkerState::Starting;
                match busy {
                    Some((job, cancel)) => {
                        tracing::error!(job = %job, worker = %worker, "worker died: {detail}");
                        self.log(job, &format!("worker on {worker} died ({detail})"));
                        self.progress.remove(&job);
                        match cancel {
                            Some(CancelReason::Operator) => {
                                self.cancel_now(job, "cancelled by an operator")
                            }
                            Some(CancelReason::Shutdown) => {
                                self.requeue(job, "the daemon stopped", false)
                            }
                            None => self.interrupted(
                                job,
                                &format!("the worker on {worker} died ({detail})"),
                            ),
                        }
                    }
                    // A worker that cannot start (e.g. cannot open its GPU) says why on
                    // stderr just before it exits; the operator needs that line.
                    None => match last_words {
                        Some(words) => tracing::warn!(
                            worker = %worker,
                            "worker exited: {detail}; it said: {words}; restarting it"
                        ),
                        None => tracing::warn!(
                            worker = %worker,
                            "worker exited: {detail}; restarting it"
                        ),
                    },
                }
                self.schedule();
            }
            WorkerEvent::Message(message) => self.on_message(index, message),
        }
    }

    fn on_message(&mut self, index: usize, message: FromWorker) {
        match message {
            FromWorker::Ready { device, pid } => {
                tracing::info!(worker = %self.workers[index].name, device = %device, pid, "worker ready");
                self.workers[index].last_words = None;
                if self.workers[index].state == WorkerState::Starting {
                    self.workers[index].state = WorkerState::Idle;
                }
                self.schedule();
            }
            FromWorker::Loading { job_id, model } => {
                self.log(job_id, &format!("loading model {model}"));
                if let Some(p) = self.progress.get_mut(&job_id) {
                    p.phase = Some("loading model".into());
                }
                self.write_status(job_id);
            }
            FromWorker::Stage { job_id, stage } => self.on_stage(job_id, stage),
            FromWorker::Step {
                job_id,
                step,
                total,
                elapsed_secs,
            } => {
                if let Some(p) = self.progress.get_mut(&job_id) {
                    p.step = Some(step);
                    p.total_steps = Some(total);
                    p.denoise_elapsed_secs = Some(elapsed_secs);
                }
                let due = self
                    .last_status_write
                    .get(&job_id)
                    .is_none_or(|t| t.elapsed() >= STATUS_INTERVAL);
                if due || step == total {
                    self.write_status(job_id);
                }
            }
            FromWorker::Done { job_id } => {
                self.release(index);
                self.log(job_id, "rendered; publishing");
                self.publish(job_id);
                self.schedule();
            }
            FromWorker::Failed {
                job_id,
                class,
                failure,
            } => {
                let cancel = self.busy_job(index).and_then(|(_, c)| c);
                self.release(index);
                self.log(
                    job_id,
                    &format!("failed ({class:?}): {}: {}", failure.what, failure.why),
                );
                match (class, cancel) {
                    (_, Some(CancelReason::Shutdown)) => {
                        self.requeue(job_id, "the daemon stopped", false)
                    }
                    (FailureClass::Job, _) => self.fail(job_id, failure, true),
                    (FailureClass::Infrastructure, _) => self.retry_or_fail(job_id, failure),
                }
                self.schedule();
            }
            FromWorker::Cancelled { job_id } => {
                let cancel = self.busy_job(index).and_then(|(_, c)| c);
                self.release(index);
                match cancel {
                    Some(CancelReason::Shutdown) => {
                        self.requeue(job_id, "the daemon stopped", false)
                    }
                    _ => self.cancel_now(job_id, "cancelled by an operator"),
                }
                self.schedule();
            }
        }
    }

    fn release(&mut self, index: usize) {
        if let WorkerState::Busy { job, .. } = self.workers[index].state {
            self.progress.remove(&job);
            self.last_status_write.remove(&job);
        }
        if self.workers[index].state != WorkerState::Starting {
            self.workers[index].state = WorkerState::Idle;
        }
    }

    fn on_stage(&mut self, id: JobId, stage: Stage) {
        let state = match stage {
            Stage::Preprocess | Stage::DecodeInputs => JobState::Preprocessing,
            Stage::EncodeText | Stage::EncodeVideo | Stage::Denoise | Stage::DecodeVideo => {
                JobState::Generating
            }
            Stage::EncodeOutput => JobState::Encoding,
        };
        if let Ok(Some(record)) = self.queue.get(id)
            && record.state != state
            && record.state.can_become(state)
        {
            let _ = self.queue.transition(id, state, stage.label());
        }
        if let Some(p) = self.progress.get_mut(&id) {
            p.phase = Some(stage.label().to_owned());
        }
        self.write_status(id);
    }

    // ---- outcomes ----------------------------------------------------------------------

    /// Moves a finished result into the outbox, records the job done and mails.
    fn publish(&mut self, id: JobId) {
        let Ok(Some(record)) = self.queue.get(id) else {
            return;
        };
        let job_dir = self.queue.job_dir(id);
        let result = job_dir.join("result");
        let dest = self.config.outbox.join(&record.output_name);
        if !dest.exists() {
            if let Err(e) = outbox::publish_dir(&result, &dest) {
                if self.unpublished.insert(id) {
                    tracing::error!(job = %id, error = %e, "cannot publish to the outbox; retrying every second");
                }
                return;
            }
        }
        self.unpublished.remove(&id);
        status::remove(&self.config.outbox, &record);
        let done = self.queue.update(id, |r| {
            r.output = Some(dest.clone());
            if r.state == JobState::Done {
                return Ok(());
            }
            r.transition(JobState::Done, format!("published to {}", dest.display()))
                .map_err(crate::queue::Error::from)
        });
        match done {
            Ok(record) => {
                self.log(id, &format!("done: {}", dest.display()));
                self.mail_done(&record, &dest);
                let _ = std::fs::remove_dir_all(job_dir.join("input"));
            }
            Err(e) => tracing::error!(job = %id, error = %e, "cannot record the job as done"),
        }
    }

    fn mail_done(&self, record: &JobRecord, dest: &Path) {
        if record.notify.is_empty() {
            return;
        }
        let report: serde_json::Value = std::fs::read_to_string(dest.join("report.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let timings = report["stages"]
            .as_array()
            .map(|stages| {
                stages
                    .iter()
                    .filter_map(|s| Some((s["stage"].as_str()?.to_owned(), s["secs"].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        let outcome = Outcome::Done {
            output_dir: dest.display().to_string(),
            frames: report["output"]["frames"].as_u64().unwrap_or(0) as usize,
            size: report["output"]["size"].as_str().unwrap_or("").to_owned(),
            fps: report["output"]["fps"].as_u64().unwrap_or(0) as u32,
            seed: record.seed,
            timings,
        };
        self.enqueue_mail(record, "done", outcome, Some(dest.join("poster.png")));
    }

    fn enqueue_mail(
        &self,
        record: &JobRecord,
        event: &str,
        outcome: Outcome,
        poster: Option<PathBuf>,
    ) {
        if record.notify.is_empty() {
            return;
        }
        let notification = Notification {
            key: format!("{}/{event}/{}", record.id, record.history.len()),
            to: record.notify.clone(),
            job_id: record.id.to_string(),
            job_name: record.name.clone(),
            outcome,
            poster_png: poster,
        };
        if let Err(e) = self.runtime.block_on(self.mailer.enqueue(notification)) {
            tracing::error!(job = %record.id, error = %e, "cannot queue the mail");
        }
    }

    /// An infrastructure failure: another attempt while the budget lasts.
    fn retry_or_fail(&mut self, id: JobId, failure: Failure) {
        let Ok(Some(record)) = self.queue.get(id) else {
            return;
        };
        if record.attempts + 1 < self.config.max_attempts {
            let note = format!("attempt {} failed: {}", record.attempts + 1, failure.why);
            self.requeue(id, &note, true);
        } else {
            let why = format!("{} (after {} attempts)", failure.why, record.attempts + 1);
            self.fail(id, Failure { why, ..failure }, true);
        }
    }

    /// A run that stopped under the job (worker crash, daemon crash): requeued while
    /// attempts remain, then failed as a suspected poison pill.
    fn interrupted(&mut self, id: JobId, why: &str) {
        let Ok(Some(record)) = self.queue.get(id) else {
            return;
        };
        if record.state.can_become(JobState::Interrupted) {
            let _ = self.queue.transition(id, JobState::Interrupted, why);
        }
        if record.attempts + 1 < self.config.max_attempts {
            self.requeue(id, why, true);
        } else {
            let attempts = record.attempts + 1;
            self.fail(
                id,
                failure(
                    "the job was interrupted too often",
                    format!("{why}; attempt {attempts} of {} ended this way", self.config.max_attempts),
                    "it may crash its worker (e.g. out of GPU memory at this size/length): try fewer frames or a smaller size, then drop it again",
                ),
                true,
            );
        }
    }

    /// Puts a job back in the queue; `counts` when the attempt is used up.
    fn requeue(&mut self, id: JobId, note: &str, counts: bool) {
        clear_result(&self.queue.job_dir(id));
        let requeued = self.queue.update(id, |r| {
            if counts {
                r.attempts += 1;
            }
            r.transition(JobState::Queued, note)
                .map_err(crate::queue::Error::from)
        });
        match requeued {
            Ok(record) => self.log(
                id,
                &format!("requeued ({note}); next is attempt {}", record.attempts + 1),
            ),
            Err(e) => tracing::error!(job = %id, error = %e, "cannot requeue the job"),
        }
        self.write_queue_statuses();
    }

    fn cancel_now(&mut self, id: JobId, why: &str) {
        self.finish_unsuccessfully(
            id,
            JobState::Cancelled,
            failure("cancelled", why, "`vaced retry` puts it back in the queue"),
            true,
        );
    }

    fn fail(&mut self, id: JobId, failure: Failure, release_fingerprint: bool) {
        self.finish_unsuccessfully(id, JobState::Failed, failure, release_fingerprint);
    }

    /// Moves the job folder (manifest and media) to the failed folder with `error.json` and
    /// `log.txt`, records the outcome and mails.
    fn finish_unsuccessfully(
        &mut self,
        id: JobId,
        state: JobState,
        failure: Failure,
        release_fingerprint: bool,
    ) {
        let Ok(Some(record)) = self.queue.get(id) else {
            return;
        };
        tracing::error!(job = %id, what = %failure.what, "{}", failure.why);
        job_log::append(
            &self.queue,
            id,
            "daemon",
            &format!("{state}: {}: {}", failure.what, failure.why),
        );
        let job_dir = self.queue.job_dir(id);
        let input = job_dir.join("input");
        let _ = std::fs::create_dir_all(&input);
        let report = ErrorReport {
            job_id: id.to_string(),
            job: &record.name,
            state: state.as_str(),
            what: &failure.what,
            why: &failure.why,
            how_to_fix: &failure.how_to_fix,
            attempts: record.attempts
                + u32::from(state == JobState::Failed && record.state.is_running()),
            failed_at: crate::render::report::now_rfc3339(),
            history: &record.history,
            log_tail: job_log::tail(&self.queue, id, self.config.log_tail_lines),
        };
        if let Ok(json) = serde_json::to_vec_pretty(&report) {
            let _ = std::fs::write(input.join("error.json"), json);
        }
        job_log::copy_to(&self.queue, id, &input.join("log.txt"));
        let dest = self.config.failed.join(&record.output_name);
        let published = outbox::publish_dir(&input, &dest);
        if let Err(e) = &published {
            tracing::error!(job = %id, error = %e, "cannot move the job to the failed folder; it stays in the state folder");
        }
        status::remove(&self.config.outbox, &record);
        clear_result(&job_dir);
        let output = published
            .is_ok()
            .then(|| dest.clone())
            .or_else(|| Some(input.clone()));
        let recorded = self.queue.update(id, |r| {
            r.failure = Some(failure.clone());
            r.output = output.clone();
            r.transition(state, format!("{}: {}", failure.what, failure.why))
                .map_err(crate::queue::Error::from)
        });
        if release_fingerprint {
            let _ = self.queue.forget_fingerprint(&record.fingerprint);
        }
        if let Ok(record) = recorded {
            let outcome = Outcome::Failed {
                failed_dir: output.map(|p| p.display().to_string()).unwrap_or_default(),
                error: format!("{}: {}", failure.what, failure.why),
                how_to_fix: Some(failure.how_to_fix.clone()),
                attempts: record.attempts.max(1),
            };
            self.enqueue_mail(&record, state.as_str(), outcome, None);
        }
        self.write_queue_statuses();
    }

    // ---- status ------------------------------------------------------------------------

    fn write_status(&mut self, id: JobId) {
        let Ok(Some(record)) = self.queue.get(id) else {
            return;
        };
        if record.state.is_terminal() {
            return;
        }
        let position = (record.state == JobState::Queued)
            .then(|| {
                self.queue
                    .queued()
                    .ok()?
                    .iter()
                    .position(|r| r.id == id)
                    .map(|p| p + 1)
            })
            .flatten();
        if let Err(e) = status::write(
            &self.config.outbox,
            &record,
            self.progress.get(&id),
            position,
            self.config.max_attempts,
        ) {
            tracing::warn!(job = %id, error = %e, "cannot write the status file");
        }
        self.last_status_write.insert(id, Instant::now());
    }

    /// Rewrites every queued job's status (their positions change together).
    fn write_queue_statuses(&mut self) {
        let Ok(queued) = self.queue.queued() else {
            return;
        };
        for (position, record) in queued.iter().enumerate() {
            if let Err(e) = status::write(
                &self.config.outbox,
                record,
                None,
                Some(position + 1),
                self.config.max_attempts,
            ) {
                tracing::warn!(job = %record.id, error = %e, "cannot write the status file");
            }
        }
    }

    // ---- operators ---------------------------------------------------------------------

    fn on_control(&mut self, request: Request) -> Response {
        let ok = |message: String| Response::Ok { message };
        let error = |message: String| Response::Error { message };
        match request {
            Request::Status => Response::Status(self.status_report()),
            Request::Pause => match self.queue.set_paused(true) {
                Ok(()) => ok("paused: running jobs finish, no new job starts".into()),
                Err(e) => error(e.to_string()),
            },
            Request::Resume => match self.queue.set_paused(false) {
                Ok(()) => {
                    self.schedule();
                    ok("resumed".into())
                }
                Err(e) => error(e.to_string()),
            },
            Request::Cancel { job } => {
                let Ok(Some(record)) = self.queue.get(job) else {
                    return error(format!("{job} is not in the queue"));
                };
                if record.state.is_running() {
                    if let Some(worker) = self
                        .workers
                        .iter_mut()
                        .find(|w| matches!(w.state, WorkerState::Busy { job: j, .. } if j == job))
                    {
                        worker.state = WorkerState::Busy {
                            job,
                            cancel: Some(CancelReason::Operator),
                        };
                        let _ = worker.commands.blocking_send(ToWorker::Cancel);
                    }
                    ok(format!("{job} stops at its next step"))
                } else if matches!(
                    record.state,
                    JobState::Queued | JobState::Received | JobState::Interrupted
                ) {
                    self.cancel_now(job, "cancelled by an operator");
                    ok(format!("{job} cancelled"))
                } else {
                    error(format!(
                        "{job} is {}; only queued or running jobs can be cancelled",
                        record.state
                    ))
                }
            }
            Request::Retry { job } => self.retry(job),
        }
    }

    /// Puts a failed or cancelled job back in the queue with a fresh attempt budget.
    fn retry(&mut self, id: JobId) -> Response {
        let Ok(Some(record)) = self.queue.get(id) else {
            return Response::Error {
                message: format!("{id} is not in the queue"),
            };
        };
        if !matches!(record.state, JobState::Failed | JobState::Cancelled) {
            return Response::Error {
                message: format!(
                    "{id} is {}; only failed or cancelled jobs can be retried",
                    record.state
                ),
            };
        }
        let input = self.queue.job_dir(id).join("input");
        if let Some(moved) = record
            .output
            .as_ref()
            .filter(|p| **p != input && p.exists())
        {
            if let Err(e) = intake::move_dir(moved, &input) {
                return Response::Error {
                    message: format!("cannot bring {} back: {e}", moved.display()),
                };
            }
        }
        for leftover in ["error.json", "log.txt"] {
            let _ = std::fs::remove_file(input.join(leftover));
        }
        let retried = self.queue.update(id, |r| {
            r.attempts = 0;
            r.failure = None;
            r.output = None;
            r.transition(JobState::Received, "retried by an operator")
                .map_err(crate::queue::Error::from)
        });
        if let Err(e) = retried {
            return Response::Error {
                message: e.to_string(),
            };
        }
        self.check_and_queue(id);
        self.schedule();
        match self.queue.get(id).ok().flatten() {
            Some(r) if r.state == JobState::Failed => Response::Error {
                message: format!(
                    "{id} failed its checks again; see {}",
                    r.output
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                ),
            },
            _ => Response::Ok {
                message: format!("{id} is queued again"),
            },
        }
    }

    fn status_report(&self) -> StatusReport {
        let jobs = self
            .queue
            .all()
            .unwrap_or_default()
            .into_iter()
            .map(|r| {
                let progress = self.progress.get(&r.id);
                let running_extra = if r.state.is_running() {
                    (now_secs() - r.state_since_secs).max(0.0)
                } else {
                    0.0
                };
                JobLine {
                    id: r.id,
                    name: r.name.clone(),
                    state: r.state.to_string(),
                    priority: r.priority,
                    attempt: r.attempts + 1,
                    phase: progress.and_then(|p| p.phase.clone()),
                    step: progress.and_then(|p| p.step),
                    total_steps: progress.and_then(|p| p.total_steps),
                    queued_secs: r.queued_secs,
                    running_secs: r.running_secs + running_extra,
                    eta_secs: progress.and_then(Progress::eta_secs),
                    worker: r.worker.clone(),
                    output: r.output.clone(),
                }
            })
            .collect();
        let workers = self
            .workers
            .iter()
            .map(|w| WorkerLine {
                name: w.name.clone(),
                device: w.device.clone(),
                state: match &w.state {
                    WorkerState::Starting => "starting".into(),
                    WorkerState::Idle => "idle".into(),
                    WorkerState::Busy { job, .. } => format!("running {job}"),
                },
                model: w.loaded.clone(),
            })
            .collect();
        StatusReport {
            paused: self.queue.is_paused().unwrap_or(false),
            workers,
            jobs,
            pending_mail: self.mailer.pending().unwrap_or(0),
        }
    }

    // ---- recovery ----------------------------------------------------------------------

    /// Puts right what the last run left: jobs that were running are published (if their
    /// result was complete) or requeued with one more attempt (or failed past the budget);
    /// received jobs are checked again; queued jobs get their status files back; folders this
    /// daemon claimed but never took in are taken in now.
    fn recover(&mut self) {
        if self.config.start_paused {
            let _ = self.queue.set_paused(true);
            tracing::warn!("starting paused (start_paused): `vaced resume` starts the queue");
        }
        let records = self.queue.all().unwrap_or_default();
        for record in records {
            let id = record.id;
            match record.state {
                state if state.is_running() || state == JobState::Interrupted => {
                    if self
                        .queue
                        .job_dir(id)
                        .join("result")
                        .join("report.json")
                        .is_file()
                    {
                        self.log(id, "found its finished result after a restart; publishing");
                        let _ = self.queue.update(id, |r| {
                            if r.state != JobState::Encoding
                                && r.state.can_become(JobState::Encoding)
                            {
                                r.transition(JobState::Encoding, "finished before the restart")
                                    .map_err(crate::queue::Error::from)?;
                            }
                            Ok::<(), crate::queue::Error>(())
                        });
                        self.publish(id);
                    } else {
                        self.log(id, &format!("was {state} when the daemon stopped"));
                        self.interrupted(
                            id,
                            "the daemon stopped while it ran (crash or power loss)",
                        );
                    }
                }
                JobState::Received => self.check_and_queue(id),
                JobState::Done if record.output.as_ref().is_none_or(|o| !o.exists()) => {
                    self.publish(id)
                }
                _ => {}
            }
        }
        self.write_queue_statuses();
        let daemon_id = self.queue.daemon_id().unwrap_or_default();
        for (index, inbox) in self.config.inboxes.clone().iter().enumerate() {
            let claimed = super::intake_loop::claim_dir(&inbox.path, &daemon_id);
            let Ok(entries) = std::fs::read_dir(&claimed) else {
                continue;
            };
            for entry in entries.flatten() {
                tracing::info!(folder = %entry.path().display(), "taking in a folder claimed before the restart");
                self.accept(index, &entry.path());
            }
        }
        let running = self
            .queue
            .all()
            .unwrap_or_default()
            .iter()
            .filter(|r| r.state == JobState::Queued)
            .count();
        tracing::info!(queued = running, "queue recovered");
    }

    /// Jobs still running when the core stops go back to the queue without using an attempt.
    fn requeue_running(&mut self, note: &str) {
        for record in self.queue.all().unwrap_or_default() {
            if record.state.is_running() {
                self.requeue(record.id, note, false);
            }
        }
    }
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
