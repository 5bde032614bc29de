//! Where jobs end: results published to the outbox with their mail, failures and
//! cancellations reported in `error.json`, retries and requeues, and the status files.

use super::*;

impl Core {
    /// Moves a finished result into the outbox, records the job done and mails.
    pub(super) fn publish(&mut self, id: JobId) {
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

    pub(super) fn mail_done(&self, record: &JobRecord, dest: &Path) {
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

    pub(super) fn enqueue_mail(
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
    pub(super) fn retry_or_fail(&mut self, id: JobId, failure: Failure) {
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
    pub(super) fn interrupted(&mut self, id: JobId, why: &str) {
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
    pub(super) fn requeue(&mut self, id: JobId, note: &str, counts: bool) {
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

    pub(super) fn cancel_now(&mut self, id: JobId, why: &str) {
        self.finish_unsuccessfully(
            id,
            JobState::Cancelled,
            failure("cancelled", why, "`vaced retry` puts it back in the queue"),
            true,
        );
    }

    pub(super) fn fail(&mut self, id: JobId, failure: Failure, release_fingerprint: bool) {
        self.finish_unsuccessfully(id, JobState::Failed, failure, release_fingerprint);
    }

    /// Moves the job folder (manifest and media) to the failed folder with `error.json` and
    /// `log.txt`, records the outcome and mails.
    pub(super) fn finish_unsuccessfully(
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

    pub(super) fn write_status(&mut self, id: JobId) {
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
    pub(super) fn write_queue_statuses(&mut self) {
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
}
