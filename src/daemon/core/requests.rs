//! Operators' requests (`vaced status`, `pause`, `resume`, `cancel`, `retry`) and the status report.

use super::*;

impl Core {
    pub(super) fn on_control(&mut self, request: Request) -> Response {
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
    pub(super) fn retry(&mut self, id: JobId) -> Response {
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

    pub(super) fn status_report(&self) -> StatusReport {
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
}
