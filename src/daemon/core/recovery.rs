//! Recovery at start: jobs a crash left running go back to the queue, and folders that were
//! claimed but never taken in are taken in now.

use super::*;

impl Core {
    /// Puts right what the last run left: jobs that were running are published (if their
    /// result was complete) or requeued with one more attempt (or failed past the budget);
    /// received jobs are checked again; queued jobs get their status files back; folders this
    /// daemon claimed but never took in are taken in now.
    pub(super) fn recover(&mut self) {
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
            let claimed = crate::daemon::intake_loop::claim_dir(&inbox.path, &daemon_id);
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
    pub(super) fn requeue_running(&mut self, note: &str) {
        for record in self.queue.all().unwrap_or_default() {
            if record.state.is_running() {
                self.requeue(record.id, note, false);
            }
        }
    }
}
