//! Moving a job folder, also to another file system: a `rename` where possible, else a copy
//! that appears at the destination only when complete, then removal of the source.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tracing::{debug, warn};

use super::error::IntakeError;

/// Moves a folder: `rename`, or when that fails with EXDEV (another file system), a recursive
/// copy (file contents and times; permissions best-effort) then removal of the source.
pub fn move_dir(from: &Path, to: &Path) -> Result<(), IntakeError> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            debug!(
                "{} and {} are on different file systems: copying",
                from.display(),
                to.display()
            );
            copy_then_remove(from, to)
        }
        Err(e) => Err(IntakeError::io(from, "move the folder", e)),
    }
}

/// The EXDEV fallback: copy under a hidden partial name beside `to` (hidden names are never
/// jobs), flush, rename into place, then remove `from`. A failed copy leaves `from` intact.
pub(super) fn copy_then_remove(from: &Path, to: &Path) -> Result<(), IntakeError> {
    match std::fs::symlink_metadata(to) {
        Ok(_) => {
            return Err(IntakeError::io(
                to,
                "move a folder there",
                std::io::Error::new(ErrorKind::AlreadyExists, "the destination already exists"),
            ));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(IntakeError::io(to, "look at the destination", e)),
    }
    let partial = partial_path(to);
    // A leftover of an interrupted move: the name is ours, so it is safe to start over.
    if std::fs::symlink_metadata(&partial).is_ok() {
        remove_partial(&partial);
    }
    let copied = copy_tree(from, &partial).and_then(|()| {
        std::fs::rename(&partial, to)
            .map_err(|e| IntakeError::io(to, "rename the finished copy into place", e))
    });
    if let Err(e) = copied {
        remove_partial(&partial);
        return Err(e);
    }
    std::fs::remove_dir_all(from)
        .map_err(|e| IntakeError::io(from, "remove the source after copying it", e))
}

fn remove_partial(partial: &Path) {
    match std::fs::remove_dir_all(partial) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            warn!(
                "{}: cannot remove the partial copy ({e}); remove it by hand",
                partial.display()
            );
        }
        _ => {}
    }
}

/// `.<name>.vaced-partial` beside `to`.
fn partial_path(to: &Path) -> PathBuf {
    let name = to
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    to.with_file_name(format!(".{name}.vaced-partial"))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), IntakeError> {
    std::fs::create_dir(to).map_err(|e| IntakeError::io(to, "create the copy's folder", e))?;
    let entries = std::fs::read_dir(from)
        .map_err(|e| IntakeError::io(from, "list the folder to copy it", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| IntakeError::io(from, "list the folder to copy it", e))?;
        let source = entry.path();
        let dest = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| IntakeError::io(&source, "look at the file to copy it", e))?;
        if kind.is_dir() {
            copy_tree(&source, &dest)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&source)
                .map_err(|e| IntakeError::io(&source, "read the link to copy it", e))?;
            std::os::unix::fs::symlink(&target, &dest)
                .map_err(|e| IntakeError::io(&dest, "create the link", e))?;
        } else if kind.is_file() {
            copy_file(&source, &dest)?;
        } else {
            return Err(IntakeError::io(
                &source,
                "copy it",
                std::io::Error::new(
                    ErrorKind::Unsupported,
                    "not a file, folder or link; remove it from the job folder",
                ),
            ));
        }
    }
    copy_permissions(from, to);
    Ok(())
}

/// Copies contents, permissions and modification time, and flushes to disk: the source
/// is removed next, so the copy must survive a crash.
fn copy_file(source: &Path, dest: &Path) -> Result<(), IntakeError> {
    std::fs::copy(source, dest).map_err(|e| IntakeError::io(dest, "copy the file here", e))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dest)
        .map_err(|e| IntakeError::io(dest, "open the copied file", e))?;
    if let Ok(modified) = std::fs::metadata(source).and_then(|m| m.modified()) {
        // Best-effort: keeps "written last" comparisons meaningful after a move.
        let _ = file.set_modified(modified);
    }
    file.sync_all()
        .map_err(|e| IntakeError::io(dest, "flush the copied file to disk", e))
}

fn copy_permissions(from: &Path, to: &Path) {
    if let Ok(metadata) = std::fs::metadata(from) {
        if let Err(e) = std::fs::set_permissions(to, metadata.permissions()) {
            debug!(
                "{}: cannot copy the permissions ({e}); keeping the defaults",
                to.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_fallback_moves_contents_links_and_times() {
        let root = tempfile::tempdir().unwrap();
        let from = root.path().join("job");
        std::fs::create_dir_all(from.join("frames")).unwrap();
        std::fs::write(from.join("job.json"), b"{\"version\": 1}").unwrap();
        std::fs::write(from.join("frames/0001.png"), b"image").unwrap();
        std::os::unix::fs::symlink("job.json", from.join("manifest-link")).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
        std::fs::File::options()
            .write(true)
            .open(from.join("job.json"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let to = root.path().join("moved");

        copy_then_remove(&from, &to).unwrap();

        assert!(!from.exists());
        assert!(!partial_path(&to).exists());
        assert_eq!(
            std::fs::read(to.join("job.json")).unwrap(),
            b"{\"version\": 1}"
        );
        assert_eq!(std::fs::read(to.join("frames/0001.png")).unwrap(), b"image");
        assert_eq!(
            std::fs::read_link(to.join("manifest-link")).unwrap(),
            Path::new("job.json")
        );
        let modified = std::fs::metadata(to.join("job.json"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(modified, old);
    }

    #[test]
    fn the_copy_fallback_refuses_an_existing_destination_and_keeps_the_source() {
        let root = tempfile::tempdir().unwrap();
        let from = root.path().join("job");
        std::fs::create_dir(&from).unwrap();
        std::fs::write(from.join("job.json"), b"{}").unwrap();
        let to = root.path().join("taken");
        std::fs::create_dir(&to).unwrap();

        let err = copy_then_remove(&from, &to).unwrap_err();

        assert!(err.to_string().contains("taken"), "{err}");
        assert!(from.join("job.json").is_file());
    }
}
