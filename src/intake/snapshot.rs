//! What a job folder looks like at one scan: every entry below it by relative path, with
//! size and modification time for files. Two equal snapshots a poll apart mean nothing moved.

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::Path;
use std::time::SystemTime;

use super::names::{is_junk_name, is_temporary_name};

/// One entry below a job folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stamp {
    /// A file (or a link, not followed): size and modification time.
    File {
        size_bytes: u64,
        modified: Option<SystemTime>,
    },
    /// A folder; its own times are left out, as desktops touch them when browsing.
    Folder,
    /// A folder that could not be listed; the render will report why.
    Unreadable(ErrorKind),
}

/// The entries below a job folder at one scan.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Snapshot {
    /// Relative path (with `/`) → stamp; junk files are left out.
    pub entries: BTreeMap<String, Stamp>,
    /// Some entry has a temporary name: a copy is still running.
    pub has_temporary: bool,
    /// An entry vanished while it was being looked at: the folder is changing right now.
    pub torn: bool,
}

impl Snapshot {
    /// Takes the snapshot of `dir`; `None` when `dir` itself is gone.
    pub fn take(dir: &Path) -> Option<Snapshot> {
        let mut snapshot = Snapshot::default();
        match std::fs::read_dir(dir) {
            Err(e) if e.kind() == ErrorKind::NotFound => return None,
            Err(e) => {
                snapshot
                    .entries
                    .insert(String::new(), Stamp::Unreadable(e.kind()));
            }
            Ok(entries) => snapshot.add_folder(dir, "", entries),
        }
        Some(snapshot)
    }

    /// The stamp of a file directly in the job folder.
    pub fn top_file(&self, name: &str) -> Option<&Stamp> {
        self.entries
            .get(name)
            .filter(|stamp| matches!(stamp, Stamp::File { .. }))
    }

    fn add_folder(&mut self, dir: &Path, prefix: &str, entries: std::fs::ReadDir) {
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    self.note_error(prefix, e.kind());
                    continue;
                }
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_junk_name(&name) {
                continue;
            }
            if is_temporary_name(&name) {
                self.has_temporary = true;
            }
            let relative = format!("{prefix}{name}");
            // Links are stamped, not followed: no loops, and nothing outside the folder.
            let metadata = match entry.metadata() {
                Ok(metadata) => metadata,
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    self.torn = true;
                    continue;
                }
                Err(e) => {
                    self.entries.insert(relative, Stamp::Unreadable(e.kind()));
                    continue;
                }
            };
            if metadata.is_dir() {
                self.entries.insert(relative.clone(), Stamp::Folder);
                match std::fs::read_dir(dir.join(&name)) {
                    Ok(inner) => self.add_folder(&dir.join(&name), &format!("{relative}/"), inner),
                    Err(e) => self.note_error(&relative, e.kind()),
                }
            } else {
                self.entries.insert(
                    relative,
                    Stamp::File {
                        size_bytes: metadata.len(),
                        modified: metadata.modified().ok(),
                    },
                );
            }
        }
    }

    fn note_error(&mut self, relative: &str, kind: ErrorKind) {
        if kind == ErrorKind::NotFound {
            self.torn = true;
        } else {
            self.entries.insert(
                relative.trim_end_matches('/').to_owned(),
                Stamp::Unreadable(kind),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_files_below_and_skips_junk() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("frames")).unwrap();
        std::fs::write(dir.path().join("frames/0001.png"), b"png").unwrap();
        std::fs::write(dir.path().join("job.json"), b"{}").unwrap();
        std::fs::write(dir.path().join(".DS_Store"), b"junk").unwrap();
        let snapshot = Snapshot::take(dir.path()).unwrap();
        let names: Vec<&str> = snapshot.entries.keys().map(String::as_str).collect();
        assert_eq!(names, ["frames", "frames/0001.png", "job.json"]);
        assert!(matches!(
            snapshot.entries["frames/0001.png"],
            Stamp::File { size_bytes: 3, .. }
        ));
        assert!(!snapshot.has_temporary);
    }

    #[test]
    fn temporary_files_in_subfolders_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("frames")).unwrap();
        std::fs::write(dir.path().join("frames/0002.png.part"), b"p").unwrap();
        assert!(Snapshot::take(dir.path()).unwrap().has_temporary);
    }

    #[test]
    fn a_missing_folder_has_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Snapshot::take(&dir.path().join("gone")).is_none());
    }
}
