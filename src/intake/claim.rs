//! Claiming a ready job folder: one `rename` into this daemon's claim folder, which only one
//! of several daemons can win. A `.vaced-claim` file inside records who claimed it and when.

use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tracing::{info, warn};

use super::error::IntakeError;
use super::inbox::{Inbox, ReadyFolder};

/// Name of the file a claim writes into the claimed folder.
pub const CLAIM_FILE: &str = ".vaced-claim";

impl Inbox {
    /// Claims a ready folder by renaming it to `claim_dir/<name>` (created if missing; it
    /// must be on the inbox's file system, e.g. `<inbox>/.vaced/claimed/<daemon-id>`), or
    /// `<name>-2`, `<name>-3`, … when that is taken. Returns `Ok(None)` when the folder is
    /// gone (another daemon claimed it first), otherwise the new path, holding a
    /// `.vaced-claim` file that names `claimer` and the time.
    pub fn claim(
        &mut self,
        folder: &ReadyFolder,
        claim_dir: &Path,
        claimer: &str,
    ) -> Result<Option<PathBuf>, IntakeError> {
        let claimed = claim_with(folder, claim_dir, |from, to| std::fs::rename(from, to))?;
        // Claimed or gone: either way this inbox has nothing more to follow under the name.
        self.folders.remove(&folder.name);
        if let Some(dest) = &claimed {
            info!("claimed {} as {}", folder.path.display(), dest.display());
            write_claim_file(dest, &folder.path, claimer);
        }
        Ok(claimed)
    }
}

/// The claim, with the rename passed in so the NFS retransmission case can be tested.
pub(super) fn claim_with(
    folder: &ReadyFolder,
    claim_dir: &Path,
    rename: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<Option<PathBuf>, IntakeError> {
    std::fs::create_dir_all(claim_dir)
        .map_err(|e| IntakeError::io(claim_dir, "create the claim folder", e))?;
    let from = &folder.path;
    // The folder's identity, to recognise it at the destination if the rename's answer was lost.
    let identity = match std::fs::symlink_metadata(from) {
        Ok(metadata) => (metadata.dev(), metadata.ino()),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(IntakeError::io(from, "look at the job folder", e)),
    };
    let mut suffix = 1u64;
    loop {
        let dest = claim_dir.join(numbered(&folder.name, suffix));
        suffix += 1;
        match std::fs::symlink_metadata(&dest) {
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(IntakeError::io(&dest, "look at the claim destination", e)),
        }
        match rename(from, &dest) {
            Ok(()) => return Ok(Some(dest)),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                // On NFS a retransmitted rename answers ENOENT although the first one
                // succeeded: the folder is ours if it sits at the destination.
                let arrived =
                    std::fs::symlink_metadata(&dest).is_ok_and(|m| (m.dev(), m.ino()) == identity);
                return Ok(arrived.then_some(dest));
            }
            // Taken between the look and the rename (a non-empty folder is never replaced).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => continue,
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                return Err(IntakeError::ClaimAcrossFileSystems {
                    from: from.clone(),
                    claim_dir: claim_dir.to_owned(),
                });
            }
            Err(e) => {
                return Err(IntakeError::io(
                    from,
                    "rename the job folder to claim it",
                    e,
                ));
            }
        }
    }
}

/// `name`, then `name-2`, `name-3`, …
fn numbered(name: &str, suffix: u64) -> String {
    if suffix == 1 {
        name.to_owned()
    } else {
        format!("{name}-{suffix}")
    }
}

/// The claim is the rename; the file only tells people who holds the folder, so failing to
/// write it is logged, not fatal.
fn write_claim_file(dest: &Path, from: &Path, claimer: &str) {
    let now = SystemTime::now();
    let record = serde_json::json!({
        "claimer": claimer,
        "claimed_at": humantime::format_rfc3339_seconds(now).to_string(),
        "claimed_at_unix_secs": now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "from": from.to_string_lossy(),
    });
    let path = dest.join(CLAIM_FILE);
    let text = format!("{record:#}\n");
    if let Err(e) = std::fs::write(&path, text) {
        warn!(
            "{}: cannot write the claim record ({e}); the folder is claimed all the same",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::readiness::Readiness;
    use super::*;

    fn ready_folder(inbox: &Path, name: &str) -> ReadyFolder {
        let path = inbox.join(name);
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join("job.json"), b"{}").unwrap();
        ReadyFolder {
            name: name.to_owned(),
            path,
            readiness: Readiness::Settled,
        }
    }

    #[test]
    fn a_rename_answered_enoent_after_it_succeeded_is_a_claim() {
        let inbox = tempfile::tempdir().unwrap();
        let folder = ready_folder(inbox.path(), "job");
        let claim_dir = inbox.path().join(".vaced/claimed/a");
        let retransmitted = |from: &Path, to: &Path| {
            std::fs::rename(from, to)?;
            Err(std::io::Error::from(ErrorKind::NotFound))
        };
        let claimed = claim_with(&folder, &claim_dir, retransmitted).unwrap();
        assert_eq!(claimed, Some(claim_dir.join("job")));
        assert!(claim_dir.join("job/job.json").is_file());
    }

    #[test]
    fn enoent_with_someone_else_at_the_destination_is_no_claim() {
        let inbox = tempfile::tempdir().unwrap();
        let folder = ready_folder(inbox.path(), "job");
        let claim_dir = inbox.path().join(".vaced/claimed/a");
        // Another daemon took the folder; an unrelated folder appears at our destination.
        let lost_race = |from: &Path, to: &Path| {
            std::fs::rename(from, inbox.path().join(".elsewhere"))?;
            std::fs::create_dir(to)?;
            Err(std::io::Error::from(ErrorKind::NotFound))
        };
        assert_eq!(claim_with(&folder, &claim_dir, lost_race).unwrap(), None);
    }

    #[test]
    fn a_destination_taken_during_the_rename_moves_on_to_the_next_number() {
        let inbox = tempfile::tempdir().unwrap();
        let folder = ready_folder(inbox.path(), "job");
        let claim_dir = inbox.path().join("claimed");
        let taken_once = std::cell::Cell::new(false);
        let rename = |from: &Path, to: &Path| {
            if !taken_once.replace(true) {
                return Err(std::io::Error::from_raw_os_error(libc::ENOTEMPTY));
            }
            std::fs::rename(from, to)
        };
        let claimed = claim_with(&folder, &claim_dir, rename).unwrap();
        assert_eq!(claimed, Some(claim_dir.join("job-2")));
    }
}
