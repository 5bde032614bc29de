//! The one error type of intake. Every message names the path and says what to do; an
//! `Unavailable` inbox is a pause, never a sign that the jobs in it were deleted.

use std::path::PathBuf;

/// Why an intake operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// The inbox setting points at nothing usable when the daemon starts.
    #[error(
        "inbox {}: cannot open it ({source}); create the folder (or mount the share) or fix the inbox path in the configuration",
        path.display()
    )]
    OpenInbox {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The inbox setting points at a file.
    #[error("inbox {}: is not a folder; point the inbox setting at a folder", path.display())]
    NotAFolder { path: PathBuf },
    /// The inbox root is missing, unreadable or another file system than at start.
    #[error(
        "inbox {}: unavailable ({reason}); intake from it is paused and retried, no job in it is considered gone; check that the share is mounted and readable",
        path.display()
    )]
    Unavailable { path: PathBuf, reason: String },
    /// A claim folder outside the inbox's file system (rename cannot cross file systems).
    #[error(
        "cannot claim {} into {}: the claim folder is on another file system than the inbox; put it inside the inbox, e.g. <inbox>/.vaced/claimed/<daemon-id>",
        from.display(),
        claim_dir.display()
    )]
    ClaimAcrossFileSystems { from: PathBuf, claim_dir: PathBuf },
    /// A file operation failed; `action` says which.
    #[error(
        "{}: cannot {action} ({source}); check that it exists and that the daemon may read and write there",
        path.display()
    )]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// The file-system watcher could not be set up.
    #[error(
        "cannot watch {} for changes ({source}); changes are then only seen by polling; check the path and the inotify limit fs.inotify.max_user_watches",
        path.display()
    )]
    Watch {
        path: PathBuf,
        source: notify::Error,
    },
}

impl IntakeError {
    /// An [`IntakeError::Io`] for `path`.
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
