//! The rules that decide, for a folder that has stopped changing, whether its copy is
//! complete: a `READY` marker, a manifest written last that names only present files, or
//! quiet for the settle time. The rules are listed in the module documentation.

use std::path::Path;
use std::time::SystemTime;

use tracing::debug;

use super::snapshot::{Snapshot, Stamp};
use crate::manifest::{self, MANIFEST_FILE};

/// Names of the marker file that says "the copy is complete" (Windows hides the `.txt` a
/// user gets from "New Text Document"); matched ignoring case.
const READY_NAMES: [&str; 2] = ["READY", "READY.txt"];

/// Why a job folder was judged completely copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// The folder has a `READY` file at its top.
    ReadyFile,
    /// `job.json` was written last and every file it names is there.
    ManifestLast,
    /// Nothing changed for the inbox's settle time.
    Settled,
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Readiness::ReadyFile => "READY file present",
            Readiness::ManifestLast => "job.json written last and its files present",
            Readiness::Settled => "unchanged for the settle time",
        })
    }
}

/// True for the name of a `READY` marker.
pub(super) fn is_ready_marker(name: &str) -> bool {
    READY_NAMES.iter().any(|m| name.eq_ignore_ascii_case(m))
}

/// Judges a folder whose snapshot is stable (unchanged for at least one poll interval);
/// `settled` says whether it has been unchanged for the settle time.
pub(super) fn judge(dir: &Path, snapshot: &Snapshot, settled: bool) -> Option<Readiness> {
    if snapshot.has_temporary {
        return None;
    }
    let has_marker = snapshot
        .entries
        .iter()
        .any(|(name, stamp)| is_ready_marker(name) && matches!(stamp, Stamp::File { .. }));
    if has_marker {
        Some(Readiness::ReadyFile)
    } else if manifest_written_last(dir, snapshot) {
        Some(Readiness::ManifestLast)
    } else if settled {
        Some(Readiness::Settled)
    } else {
        None
    }
}

/// Rule 2: `job.json` is at least as new as every other file, parses, and every path it
/// names exists.
fn manifest_written_last(dir: &Path, snapshot: &Snapshot) -> bool {
    let Some(Stamp::File {
        modified: Some(manifest_time),
        ..
    }) = snapshot.top_file(MANIFEST_FILE)
    else {
        return false;
    };
    let newest_other = snapshot
        .entries
        .iter()
        .filter(|(name, _)| name.as_str() != MANIFEST_FILE)
        .filter_map(|(_, stamp)| match stamp {
            Stamp::File { modified, .. } => Some(*modified),
            Stamp::Folder => None,
            // Cannot tell what is inside: leave it to the settle time.
            Stamp::Unreadable(_) => Some(None),
        })
        .try_fold(SystemTime::UNIX_EPOCH, |newest, time| {
            time.map(|t| newest.max(t))
        });
    match newest_other {
        Some(newest) if newest <= *manifest_time => names_only_present_files(dir),
        _ => false,
    }
}

fn names_only_present_files(dir: &Path) -> bool {
    let path = dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            debug!("{}: cannot read it yet ({e})", path.display());
            return false;
        }
    };
    let manifest = match manifest::parse_with_problems(&text, &path) {
        Ok((manifest, _problems)) => manifest,
        Err(e) => {
            // Not this rule's business to report; the job will fail with the message.
            debug!(
                "{}: does not parse, waiting for the settle time ({e})",
                path.display()
            );
            return false;
        }
    };
    let inputs = &manifest.inputs;
    let mut named = inputs
        .video
        .iter()
        .chain(inputs.mask.iter())
        .chain(inputs.reference_images.iter());
    named.all(|job_path| {
        let present = job_path.resolve(dir).is_ok();
        if !present {
            debug!(
                "{}: names `{}`, which is not there yet",
                path.display(),
                job_path.as_str()
            );
        }
        present
    })
}
