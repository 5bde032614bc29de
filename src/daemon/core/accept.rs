//! Taking claimed folders in: each is moved into the state folder, checked and queued, or
//! failed with its reasons (duplicates and unknown models included).

use super::*;

impl Core {
    /// Takes a claimed folder into the state folder, checks it, and queues or fails it.
    pub(super) fn accept(&mut self, inbox: usize, claimed: &Path) {
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
    pub(super) fn check_and_queue(&mut self, id: JobId) {
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

    pub(super) fn model_source(&self, model: &str) -> Option<String> {
        let name: ModelName =
            serde_json::from_value(serde_json::Value::String(model.to_owned())).ok()?;
        self.config.models.get(&name).map(|m| m.source.clone())
    }
}
