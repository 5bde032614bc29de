//! One inbox folder: scanning its top level for job folders and following each from scan
//! to scan until it is ready. A missing or remounted root pauses intake and keeps what was
//! seen, so an unmounted share never looks like deleted jobs.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use super::error::IntakeError;
use super::fs_kind::FsKind;
use super::names::{is_junk_name, is_temporary_name};
use super::readiness::{Readiness, judge};
use super::snapshot::Snapshot;

/// Where an inbox is and how it is watched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxSettings {
    /// The inbox folder.
    pub path: PathBuf,
    /// Time between scans; a folder must look the same for this long to count as stable.
    pub poll_interval: Duration,
    /// How long a folder must stay unchanged to be ready without a `READY` file or a
    /// manifest written last.
    pub settle: Duration,
}

/// A job folder that became ready at a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyFolder {
    /// The folder's name in the inbox.
    pub name: String,
    /// The folder's path.
    pub path: PathBuf,
    /// Which rule made it ready.
    pub readiness: Readiness,
}

/// What is known about one job folder between scans.
#[derive(Debug)]
pub(super) struct FolderState {
    snapshot: Snapshot,
    /// The scan that first saw the current snapshot.
    last_change: Instant,
    reported: bool,
}

/// An open inbox and what its scans have seen so far.
#[derive(Debug)]
pub struct Inbox {
    pub(super) settings: InboxSettings,
    pub(super) device_id: u64,
    fs_kind: FsKind,
    pub(super) folders: HashMap<String, FolderState>,
    /// Top-level entries already logged as ignored, so each is logged once.
    ignored_logged: HashSet<OsString>,
    available: bool,
}

impl Inbox {
    /// Opens an inbox: the folder must exist; records its device id (st_dev) and file-system
    /// kind, and logs (info) when it will be polled only.
    pub fn open(settings: InboxSettings) -> Result<Inbox, IntakeError> {
        let path = settings.path.clone();
        let metadata = std::fs::metadata(&path).map_err(|source| IntakeError::OpenInbox {
            path: path.clone(),
            source,
        })?;
        if !metadata.is_dir() {
            return Err(IntakeError::NotAFolder { path });
        }
        let fs_kind = FsKind::detect(&path).map_err(|source| IntakeError::OpenInbox {
            path: path.clone(),
            source,
        })?;
        if !fs_kind.events_are_reliable() {
            info!(
                "inbox {} is on {fs_kind}: change events miss other machines' writes, so it is polled every {:?}",
                path.display(),
                settings.poll_interval
            );
        }
        Ok(Inbox {
            settings,
            device_id: metadata.dev(),
            fs_kind,
            folders: HashMap::new(),
            ignored_logged: HashSet::new(),
            available: true,
        })
    }

    /// The inbox folder.
    pub fn path(&self) -> &Path {
        &self.settings.path
    }

    /// The kind of file system the inbox is on.
    pub fn fs_kind(&self) -> FsKind {
        self.fs_kind
    }

    /// One scan of the inbox's top level at time `now` (a parameter so tests need not
    /// sleep); returns the job folders that became ready. Errors with `Unavailable` when the
    /// inbox root is missing, unreadable, or on a different device than at `open` (unmounted
    /// or remounted); what was seen is kept until the root is back.
    pub fn scan(&mut self, now: Instant) -> Result<Vec<ReadyFolder>, IntakeError> {
        let result = self.scan_available(now);
        match (&result, self.available) {
            (Err(e), true) => {
                warn!("{e}");
                self.available = false;
            }
            (Ok(_), false) => {
                info!("inbox {} is available again", self.path().display());
                self.available = true;
            }
            _ => {}
        }
        result
    }

    fn scan_available(&mut self, now: Instant) -> Result<Vec<ReadyFolder>, IntakeError> {
        self.check_root()?;
        let candidates = self.list_candidates()?;
        let mut snapshots = Vec::with_capacity(candidates.len());
        for name in candidates {
            let path = self.path().join(&name);
            if let Some(snapshot) = Snapshot::take(&path) {
                snapshots.push((name, path, snapshot));
            }
        }
        // An unmount during the listing shows the empty mount point: check again before
        // concluding that anything is gone.
        self.check_root()?;

        let present: HashSet<&str> = snapshots.iter().map(|(name, ..)| name.as_str()).collect();
        self.folders.retain(|name, _| {
            let keep = present.contains(name.as_str());
            if !keep {
                debug!("job folder {name} is gone");
            }
            keep
        });

        let mut ready = Vec::new();
        for (name, path, snapshot) in snapshots {
            if let Some(readiness) = self.observe(&name, &path, snapshot, now) {
                info!("job folder {} is ready: {readiness}", path.display());
                ready.push(ReadyFolder {
                    name,
                    path,
                    readiness,
                });
            }
        }
        Ok(ready)
    }

    /// Records one observation of a folder; the readiness when it becomes ready now.
    fn observe(
        &mut self,
        name: &str,
        path: &Path,
        snapshot: Snapshot,
        now: Instant,
    ) -> Option<Readiness> {
        let settings = &self.settings;
        let state = match self.folders.get_mut(name) {
            Some(state) if state.snapshot == snapshot && !snapshot.torn => state,
            Some(state) => {
                debug!("job folder {} changed", path.display());
                *state = FolderState {
                    snapshot,
                    last_change: now,
                    reported: false,
                };
                return None;
            }
            None => {
                debug!("new job folder {}", path.display());
                self.folders.insert(
                    name.to_owned(),
                    FolderState {
                        snapshot,
                        last_change: now,
                        reported: false,
                    },
                );
                return None;
            }
        };
        let unchanged_for = now.saturating_duration_since(state.last_change);
        if state.reported || unchanged_for < settings.poll_interval {
            return None;
        }
        let readiness = judge(path, &state.snapshot, unchanged_for >= settings.settle)?;
        state.reported = true;
        Some(readiness)
    }

    /// Fails with `Unavailable` unless the root is a readable folder on the device it was
    /// on at `open`.
    fn check_root(&self) -> Result<(), IntakeError> {
        let unavailable = |reason: String| IntakeError::Unavailable {
            path: self.path().to_owned(),
            reason,
        };
        let metadata = std::fs::metadata(self.path()).map_err(|e| unavailable(e.to_string()))?;
        if !metadata.is_dir() {
            return Err(unavailable("it is no longer a folder".to_owned()));
        }
        if metadata.dev() != self.device_id {
            return Err(unavailable(format!(
                "it is on device {:#x} now, {:#x} when opened: unmounted or remounted (after a deliberate remount, restart the daemon)",
                metadata.dev(),
                self.device_id
            )));
        }
        Ok(())
    }

    /// Names of the job folders at the top level. Any listing error is `Unavailable`: a
    /// partial listing must not make folders look deleted.
    fn list_candidates(&mut self) -> Result<Vec<String>, IntakeError> {
        let unavailable = |e: std::io::Error| IntakeError::Unavailable {
            path: self.settings.path.clone(),
            reason: format!("cannot list it: {e}"),
        };
        let mut candidates = Vec::new();
        let mut ignored = HashSet::new();
        for entry in std::fs::read_dir(self.path()).map_err(unavailable)? {
            let entry = entry.map_err(unavailable)?;
            let os_name = entry.file_name();
            let Some(name) = os_name.to_str() else {
                ignored.insert(os_name);
                continue;
            };
            if name.starts_with('.') || is_temporary_name(name) || is_junk_name(name) {
                continue;
            }
            // `file_type` does not follow links: a link to a folder elsewhere is no job.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                candidates.push(name.to_owned());
            } else {
                ignored.insert(os_name);
            }
        }
        for name in &ignored {
            if !self.ignored_logged.contains(name) {
                debug!(
                    "inbox {}: ignoring {} (only folders with a UTF-8 name are jobs)",
                    self.path().display(),
                    name.to_string_lossy()
                );
            }
        }
        self.ignored_logged = ignored;
        Ok(candidates)
    }
}
