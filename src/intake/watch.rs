//! Change events as hints: a watcher on each inbox's top level and on the job folders one
//! level below sends the inbox's path whenever something there changes, so a scan can run
//! early. Scans still run on their interval; events never decide readiness.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::Sender;
use tracing::{debug, warn};

use super::error::IntakeError;
use super::names::{is_junk_name, is_temporary_name};

/// A `notify` watcher on the inboxes (top level and one level below, so media written into
/// job folders count) that sends the inbox path on `tx` (`try_send`, dropping when full)
/// whenever something changes; only a hint that a scan is due.
pub fn watch(inboxes: &[PathBuf], tx: Sender<PathBuf>) -> Result<RecommendedWatcher, IntakeError> {
    let inboxes: Arc<[PathBuf]> = inboxes.into();
    let watch_error = |path: &Path| {
        let path = path.to_owned();
        move |source| IntakeError::Watch { path, source }
    };
    let first = inboxes.first().cloned().unwrap_or_default();

    // A second watcher for the job folders, driven by the first one's events: the returned
    // watcher cannot be reached from its own event handler.
    let folder_hints = Hints::new(inboxes.clone(), tx.clone());
    let folders = notify::recommended_watcher(move |event| folder_hints.send(event))
        .map_err(watch_error(&first))?;
    let folders = Arc::new(Mutex::new(folders));

    let top_hints = Hints::new(inboxes.clone(), tx);
    let top_folders = folders.clone();
    let mut top = notify::recommended_watcher(move |event: notify::Result<Event>| {
        if let Ok(event) = &event {
            follow_job_folders(&top_hints.inboxes, event, &mut lock(&top_folders));
        }
        top_hints.send(event);
    })
    .map_err(watch_error(&first))?;
    for inbox in inboxes.iter() {
        top.watch(inbox, RecursiveMode::NonRecursive)
            .map_err(watch_error(inbox))?;
    }
    // After the top-level watch, so a folder created meanwhile is caught by one or the other.
    let mut folders = lock(&folders);
    for inbox in inboxes.iter() {
        let entries = std::fs::read_dir(inbox)
            .map_err(|e| IntakeError::io(inbox, "list the inbox to watch its job folders", e))?;
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) && is_job_folder_name(&entry.file_name())
            {
                add_folder_watch(&mut folders, &entry.path());
            }
        }
    }
    Ok(top)
}

/// Sends hints for events under the inboxes.
struct Hints {
    inboxes: Arc<[PathBuf]>,
    tx: Sender<PathBuf>,
}

impl Hints {
    fn new(inboxes: Arc<[PathBuf]>, tx: Sender<PathBuf>) -> Self {
        Self { inboxes, tx }
    }

    fn send(&self, event: notify::Result<Event>) {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                // Events may have been lost: every inbox is due a scan.
                warn!("file-system watcher: {e}; scanning all inboxes");
                self.send_all();
                return;
            }
        };
        if event.need_rescan() || event.paths.is_empty() {
            self.send_all();
            return;
        }
        if !changes_something(&event.kind) {
            return;
        }
        for path in &event.paths {
            if let Some(inbox) = inbox_of(&self.inboxes, path) {
                self.hint(inbox);
            }
        }
    }

    fn send_all(&self) {
        for inbox in self.inboxes.iter() {
            self.hint(inbox);
        }
    }

    fn hint(&self, inbox: &Path) {
        // A full queue already holds a hint, and one scan covers them all.
        if self.tx.try_send(inbox.to_owned()).is_err() {
            debug!(
                "scan hint for {} dropped: one is already queued",
                inbox.display()
            );
        }
    }
}

/// Opening and reading (the daemon's own scans do both) change nothing; skip them, or
/// every scan would trigger the next.
fn changes_something(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The inbox `path` is in, unless it is in a hidden top-level entry (the daemon's own
/// files and claims) or is junk.
fn inbox_of<'a>(inboxes: &'a [PathBuf], path: &Path) -> Option<&'a Path> {
    let inbox = inboxes
        .iter()
        .filter(|inbox| path.starts_with(inbox))
        .max_by_key(|inbox| inbox.components().count())?;
    let relative = path.strip_prefix(inbox).ok()?;
    let hidden = relative
        .components()
        .next()
        .is_some_and(|c| c.as_os_str().to_string_lossy().starts_with('.'));
    let junk = path
        .file_name()
        .is_some_and(|n| is_junk_name(&n.to_string_lossy()));
    (!hidden && !junk).then_some(inbox.as_path())
}

/// Adds or drops the watch on a job folder as it appears at or leaves an inbox's top level.
fn follow_job_folders(inboxes: &[PathBuf], event: &Event, folders: &mut RecommendedWatcher) {
    for path in &event.paths {
        let at_top = path
            .parent()
            .is_some_and(|p| inboxes.iter().any(|i| i == p));
        if !at_top || !path.file_name().is_some_and(is_job_folder_name) {
            continue;
        }
        match event.kind {
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Name(_)) if path.is_dir() => {
                add_folder_watch(folders, path);
            }
            // Renamed away (claimed) or deleted: stop, or the claimed folder's changes
            // would keep arriving under its old name.
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                let _ = folders.unwatch(path);
            }
            _ => {}
        }
    }
}

fn add_folder_watch(folders: &mut RecommendedWatcher, path: &Path) {
    // A folder may vanish before its watch is added; scans still see everything.
    if let Err(e) = folders.watch(path, RecursiveMode::NonRecursive) {
        debug!("cannot watch job folder {}: {e}", path.display());
    }
}

fn is_job_folder_name(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    !name.starts_with('.') && !is_temporary_name(&name) && !is_junk_name(&name)
}

/// The lock, even if a handler panicked while holding it: a watcher has no invariant to lose.
fn lock(watcher: &Mutex<RecommendedWatcher>) -> MutexGuard<'_, RecommendedWatcher> {
    watcher
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
