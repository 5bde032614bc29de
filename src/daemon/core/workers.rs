//! Workers and their jobs: queued jobs go to free workers (model affinity first), and what a
//! worker reports (progress, results, failures, exits) moves its job on.

use super::*;

impl Core {
    /// Starts queued jobs on free workers: jobs in priority order; for each, a free worker
    /// that already has its model loaded, else any free worker.
    pub(super) fn schedule(&mut self) {
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

    pub(super) fn start(&mut self, job: JobRecord, index: usize, source: String) {
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

    pub(super) fn busy_job(&self, index: usize) -> Option<(JobId, Option<CancelReason>)> {
        match self.workers.get(index)?.state {
            WorkerState::Busy { job, cancel } => Some((job, cancel)),
            _ => None,
        }
    }

    pub(super) fn on_worker(&mut self, index: usize, event: WorkerEvent) {
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

    pub(super) fn on_message(&mut self, index: usize, message: FromWorker) {
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

    pub(super) fn release(&mut self, index: usize) {
        if let WorkerState::Busy { job, .. } = self.workers[index].state {
            self.progress.remove(&job);
            self.last_status_write.remove(&job);
        }
        if self.workers[index].state != WorkerState::Starting {
            self.workers[index].state = WorkerState::Idle;
        }
    }

    pub(super) fn on_stage(&mut self, id: JobId, stage: Stage) {
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
}
