//! The durable job queue in `sled`: one record per job (state, history, attempts, times),
//! an index of job fingerprints to spot re-dropped folders, and the daemon's own flags.
//! Every change is flushed before it is acted on, and each record is mirrored as
//! `<state>/jobs/<id>/record.json`, so `vaced db rebuild` can restore a damaged database
//! from the job folders alone.
//!
//! sled allows one process per database: the state folder must be local, never on a share.

mod job;

use std::path::{Path, PathBuf};

pub use job::{Failure, InvalidTransition, JobId, JobRecord, JobState, Transition, now_secs};

/// File inside each job's state folder mirroring its record.
pub const RECORD_FILE: &str = "record.json";
const PAUSED_KEY: &[u8] = b"paused";
const DAEMON_ID_KEY: &[u8] = b"daemon_id";

/// Why the queue could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{}: cannot open the queue database ({source}); is another vaced using this state folder? \
         If the database is damaged, run `vaced db rebuild --state {}`",
        path.display(),
        state.display()
    )]
    Open {
        path: PathBuf,
        state: PathBuf,
        source: sled::Error,
    },
    #[error("queue database: {0}")]
    Db(#[from] sled::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("queue record of {id} is unreadable: {source}")]
    Corrupt {
        id: String,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Transition(#[from] InvalidTransition),
    #[error("{0} is not in the queue")]
    Unknown(JobId),
}

/// The queue of one daemon.
#[derive(Debug, Clone)]
pub struct Queue {
    db: sled::Db,
    jobs: sled::Tree,
    fingerprints: sled::Tree,
    meta: sled::Tree,
    state_dir: PathBuf,
}

fn decode(bytes: &[u8]) -> Result<JobRecord, Error> {
    serde_json::from_slice(bytes).map_err(|source| Error::Corrupt {
        id: String::from_utf8_lossy(bytes).chars().take(40).collect(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl Queue {
    /// Opens (or creates) the queue in `state_dir/db`. A lock held for a moment by another
    /// process (an operator command) is waited out for a few seconds.
    pub fn open(state_dir: &Path) -> Result<Self, Error> {
        let path = state_dir.join("db");
        std::fs::create_dir_all(state_dir.join("jobs")).map_err(|source| Error::Io {
            path: state_dir.to_owned(),
            source,
        })?;
        let mut tries = 0;
        let db = loop {
            match sled::open(&path) {
                Ok(db) => break db,
                // sled reports a held lock as an `Other` I/O error with this text.
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && tries < 20 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(250));
                }
                Err(source) => {
                    return Err(Error::Open {
                        path,
                        state: state_dir.to_owned(),
                        source,
                    });
                }
            }
        };
        Ok(Self {
            jobs: db.open_tree("jobs")?,
            fingerprints: db.open_tree("fingerprints")?,
            meta: db.open_tree("meta")?,
            db,
            state_dir: state_dir.to_owned(),
        })
    }

    /// A tree for another module's durable state (the mail outbox).
    pub fn tree(&self, name: &str) -> Result<sled::Tree, Error> {
        Ok(self.db.open_tree(name)?)
    }

    /// Where a job's files live while the daemon owns it.
    pub fn job_dir(&self, id: JobId) -> PathBuf {
        self.state_dir.join("jobs").join(id.to_string())
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// A fresh job id.
    pub fn next_id(&self) -> Result<JobId, Error> {
        // Ids start at 1 so `job-000000` never appears.
        Ok(JobId(self.db.generate_id()? + 1))
    }

    /// This daemon's stable identity (used in claims): generated once, then kept.
    pub fn daemon_id(&self) -> Result<String, Error> {
        if let Some(id) = self.meta.get(DAEMON_ID_KEY)? {
            return Ok(String::from_utf8_lossy(&id).into_owned());
        }
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        let host = host.trim();
        let id = format!(
            "{}-{:08x}",
            if host.is_empty() { "vaced" } else { host },
            rand::random::<u32>()
        );
        self.meta.insert(DAEMON_ID_KEY, id.as_bytes())?;
        self.db.flush()?;
        Ok(id)
    }

    fn mirror(&self, record: &JobRecord) -> Result<(), Error> {
        let dir = self.job_dir(record.id);
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(RECORD_FILE);
        let json = serde_json::to_vec_pretty(record).map_err(|source| Error::Corrupt {
            id: record.id.to_string(),
            source,
        })?;
        write_atomic(&path, &json).map_err(|source| Error::Io { path, source })
    }

    /// Stores a new record, durably.
    pub fn insert(&self, record: &JobRecord) -> Result<(), Error> {
        let json = serde_json::to_vec(record).map_err(|source| Error::Corrupt {
            id: record.id.to_string(),
            source,
        })?;
        self.jobs.insert(record.id.key(), json)?;
        self.mirror(record)?;
        self.db.flush()?;
        Ok(())
    }

    /// Records that `id` holds `fingerprint`: a later identical folder is its duplicate.
    pub fn claim_fingerprint(&self, fingerprint: &str, id: JobId) -> Result<(), Error> {
        self.fingerprints
            .insert(fingerprint.as_bytes(), &id.key())?;
        self.db.flush()?;
        Ok(())
    }

    pub fn get(&self, id: JobId) -> Result<Option<JobRecord>, Error> {
        self.jobs.get(id.key())?.map(|v| decode(&v)).transpose()
    }

    /// Changes a record with `change` (compare-and-swap, so no update is lost), mirrors and
    /// flushes it, and returns the new record.
    pub fn update<E: From<Error>>(
        &self,
        id: JobId,
        mut change: impl FnMut(&mut JobRecord) -> Result<(), E>,
    ) -> Result<JobRecord, E> {
        loop {
            let old = self
                .jobs
                .get(id.key())
                .map_err(Error::from)?
                .ok_or(Error::Unknown(id))?;
            let mut record = decode(&old)?;
            change(&mut record)?;
            let new = serde_json::to_vec(&record).map_err(|source| Error::Corrupt {
                id: id.to_string(),
                source,
            })?;
            let swapped = self
                .jobs
                .compare_and_swap(id.key(), Some(&old), Some(new))
                .map_err(Error::from)?;
            if swapped.is_ok() {
                self.mirror(&record)?;
                self.db.flush().map_err(Error::from)?;
                return Ok(record);
            }
        }
    }

    /// Moves a job to `to`, recording `note` in its history.
    pub fn transition(&self, id: JobId, to: JobState, note: &str) -> Result<JobRecord, Error> {
        self.update(id, |r| r.transition(to, note).map_err(Error::from))
    }

    /// Every record, in id order.
    pub fn all(&self) -> Result<Vec<JobRecord>, Error> {
        self.jobs.iter().values().map(|v| decode(&v?)).collect()
    }

    /// Queued jobs in the order they should run: higher priority first, then longest waiting.
    pub fn queued(&self) -> Result<Vec<JobRecord>, Error> {
        let mut queued: Vec<JobRecord> = self
            .all()?
            .into_iter()
            .filter(|r| r.state == JobState::Queued)
            .collect();
        queued.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.state_since_secs.total_cmp(&b.state_since_secs))
                .then(a.id.cmp(&b.id))
        });
        Ok(queued)
    }

    /// The job already holding `fingerprint`, if any.
    pub fn job_with_fingerprint(&self, fingerprint: &str) -> Result<Option<JobId>, Error> {
        Ok(self
            .fingerprints
            .get(fingerprint.as_bytes())?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(|b| JobId(u64::from_be_bytes(b))))
    }

    /// Forgets a fingerprint, so the same folder may be dropped again (after a failure).
    pub fn forget_fingerprint(&self, fingerprint: &str) -> Result<(), Error> {
        self.fingerprints.remove(fingerprint.as_bytes())?;
        self.db.flush()?;
        Ok(())
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush()?;
        Ok(())
    }

    /// Whether starting new jobs is paused.
    pub fn is_paused(&self) -> Result<bool, Error> {
        Ok(self
            .meta
            .get(PAUSED_KEY)?
            .is_some_and(|v| v.as_ref() == b"1"))
    }

    pub fn set_paused(&self, paused: bool) -> Result<(), Error> {
        self.meta
            .insert(PAUSED_KEY, if paused { b"1" } else { b"0" })?;
        self.db.flush()?;
        Ok(())
    }

    /// Rebuilds a database from the `record.json` mirrors under `state_dir/jobs`, replacing
    /// what the database held. Returns how many jobs were restored.
    pub fn rebuild(state_dir: &Path) -> Result<usize, Error> {
        let db_path = state_dir.join("db");
        if db_path.exists() {
            let aside = state_dir.join(format!("db.damaged-{}", now_secs() as u64));
            std::fs::rename(&db_path, &aside).map_err(|source| Error::Io {
                path: db_path.clone(),
                source,
            })?;
        }
        let queue = Self::open(state_dir)?;
        let jobs = state_dir.join("jobs");
        let mut restored = 0;
        let mut highest = 0;
        let entries = std::fs::read_dir(&jobs).map_err(|source| Error::Io {
            path: jobs.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path().join(RECORD_FILE);
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let record = decode(&bytes)?;
            highest = highest.max(record.id.0);
            queue.insert(&record)?;
            if !matches!(record.state, JobState::Failed | JobState::Cancelled) {
                queue.claim_fingerprint(&record.fingerprint, record.id)?;
            }
            restored += 1;
        }
        // Keep new ids above every restored one.
        while queue.db.generate_id()? < highest {}
        queue.db.flush()?;
        Ok(restored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(queue: &Queue, name: &str, priority: i32) -> JobRecord {
        let now = now_secs();
        JobRecord {
            id: queue.next_id().unwrap(),
            name: name.into(),
            output_name: name.into(),
            inbox: "/inbox".into(),
            fingerprint: format!("fp-{name}"),
            state: JobState::Received,
            priority,
            model: "tiny".into(),
            seed: 1,
            attempts: 0,
            notify: vec![],
            queued_secs: 0.0,
            running_secs: 0.0,
            state_since_secs: now,
            received_at_secs: now,
            output: None,
            failure: None,
            worker: None,
            history: vec![],
        }
    }

    #[test]
    fn records_survive_reopening_and_queue_in_priority_order() {
        let dir = tempfile::TempDir::new().unwrap();
        let (a, b, c);
        {
            let queue = Queue::open(dir.path()).unwrap();
            for (name, priority) in [("a", 0), ("b", 5), ("c", 0)] {
                let r = record(&queue, name, priority);
                queue.insert(&r).unwrap();
                queue.claim_fingerprint(&r.fingerprint, r.id).unwrap();
                queue.transition(r.id, JobState::Queued, "checked").unwrap();
            }
            let order: Vec<String> = queue
                .queued()
                .unwrap()
                .into_iter()
                .map(|r| r.name)
                .collect();
            assert_eq!(order, ["b", "a", "c"]);
            let all = queue.all().unwrap();
            (a, b, c) = (all[0].id, all[1].id, all[2].id);
            queue.set_paused(true).unwrap();
        }
        let queue = Queue::open(dir.path()).unwrap();
        assert!(queue.is_paused().unwrap());
        assert_eq!(queue.get(b).unwrap().unwrap().history.len(), 1);
        assert_eq!(queue.job_with_fingerprint("fp-c").unwrap(), Some(c));
        let err = queue.transition(a, JobState::Done, "skip").unwrap_err();
        assert!(
            err.to_string().contains("cannot go from queued to done"),
            "{err}"
        );
    }

    #[test]
    fn rebuild_restores_the_queue_from_the_job_folders() {
        let dir = tempfile::TempDir::new().unwrap();
        let id = {
            let queue = Queue::open(dir.path()).unwrap();
            let r = record(&queue, "a", 0);
            queue.insert(&r).unwrap();
            queue.transition(r.id, JobState::Queued, "checked").unwrap();
            r.id
        };
        assert_eq!(Queue::rebuild(dir.path()).unwrap(), 1);
        let queue = Queue::open(dir.path()).unwrap();
        let restored = queue.get(id).unwrap().unwrap();
        assert_eq!(restored.state, JobState::Queued);
        assert!(queue.next_id().unwrap() > id);
    }
}
