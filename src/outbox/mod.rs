//! Result folders that appear whole or not at all: everything is written under a hidden
//! partial name beside the destination, the video is decoded back and checked, and only
//! then is the folder renamed into place (one `rename`, atomic on one filesystem).

use std::path::{Path, PathBuf};

use crate::media;

/// What the written video must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpectedVideo {
    pub frames: usize,
    pub width_px: usize,
    pub height_px: usize,
    pub fps: u32,
}

/// Why a result could not be published.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: already exists; choose another output folder or remove it", .0.display())]
    Exists(PathBuf),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Media(#[from] media::Error),
    #[error("{}: the written video has {found}, expected {expected}; the encoder failed, nothing was published", path.display())]
    BadVideo {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{0}")]
    Write(String),
}

/// A result folder being written.
#[derive(Debug)]
pub struct PartialFolder {
    partial: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl PartialFolder {
    /// Starts `dest`: it must not exist yet; its parent is created.
    pub fn begin(dest: &Path) -> Result<Self, Error> {
        let parent = free_destination(dest)?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "result".into());
        let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if partial.exists() {
            std::fs::remove_dir_all(&partial).map_err(|source| Error::Io {
                path: partial.clone(),
                source,
            })?;
        }
        std::fs::create_dir(&partial).map_err(|source| Error::Io {
            path: partial.clone(),
            source,
        })?;
        Ok(Self {
            partial,
            dest: dest.to_owned(),
            done: false,
        })
    }

    /// Where to write a file of the result.
    pub fn path(&self, name: &str) -> PathBuf {
        self.partial.join(name)
    }

    /// Writes bytes into the result.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.path(name);
        std::fs::write(&path, bytes).map_err(|source| Error::Io { path, source })
    }

    /// Decodes `name` and checks its frame count, size and frame rate.
    #[cfg(feature = "ffmpeg")]
    pub fn check_video(&self, name: &str, expected: ExpectedVideo) -> Result<(), Error> {
        let path = self.path(name);
        let info = media::video::probe(&path)?;
        let found = ExpectedVideo {
            frames: info.frames,
            width_px: info.width_px,
            height_px: info.height_px,
            fps: info.fps.round() as u32,
        };
        let describe = |v: &ExpectedVideo| {
            format!(
                "{} frames {}x{} at {} fps",
                v.frames, v.width_px, v.height_px, v.fps
            )
        };
        if found != expected || (info.fps - expected.fps as f64).abs() > 1e-3 {
            return Err(Error::BadVideo {
                path,
                expected: describe(&expected),
                found: describe(&found),
            });
        }
        Ok(())
    }

    /// Moves the finished folder into place.
    pub fn publish(mut self) -> Result<PathBuf, Error> {
        if self.dest.exists() {
            return Err(Error::Exists(self.dest.clone()));
        }
        std::fs::rename(&self.partial, &self.dest).map_err(|source| Error::Io {
            path: self.dest.clone(),
            source,
        })?;
        self.done = true;
        Ok(self.dest.clone())
    }
}

impl Drop for PartialFolder {
    /// An abandoned result (error, cancellation, panic) leaves nothing behind.
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.partial);
        }
    }
}

/// Checks that `dest` does not exist yet and creates its parent, which it returns.
fn free_destination(dest: &Path) -> Result<&Path, Error> {
    if dest.exists() {
        return Err(Error::Exists(dest.to_owned()));
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|source| Error::Io {
        path: parent.to_owned(),
        source,
    })?;
    Ok(parent)
}

/// Moves a finished folder to `dest` so that it appears whole: a `rename` on one file
/// system; across file systems a copy into a hidden sibling of `dest`, a rename, then the
/// source is removed.
pub fn publish_dir(src: &Path, dest: &Path) -> Result<(), Error> {
    let parent = free_destination(dest)?;
    match std::fs::rename(src, dest) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
        Err(source) => {
            return Err(Error::Io {
                path: dest.to_owned(),
                source,
            });
        }
    }
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    copy_tree(src, &partial).map_err(|source| Error::Io {
        path: partial.clone(),
        source,
    })?;
    std::fs::rename(&partial, dest).map_err(|source| Error::Io {
        path: dest.to_owned(),
        source,
    })?;
    std::fs::remove_dir_all(src).map_err(|source| Error::Io {
        path: src.to_owned(),
        source,
    })
}

fn copy_tree(src: &Path, dest: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let to = dest.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else {
            std::fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// A free name for a job's result: `name` when neither the outbox nor the failed folder
/// has it (nor a status file), else `name-<suffix>`. Never overwrites.
pub fn free_name(name: &str, suffix: &str, folders: &[&Path]) -> String {
    let taken = |candidate: &str| {
        folders.iter().any(|f| {
            f.join(candidate).exists() || f.join(format!("{candidate}.status.json")).exists()
        })
    };
    if !taken(name) {
        return name.to_owned();
    }
    let mut candidate = format!("{name}-{suffix}");
    let mut n = 2;
    while taken(&candidate) {
        candidate = format!("{name}-{suffix}-{n}");
        n += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_appears_only_when_published_and_vanishes_when_abandoned() {
        let tmp = tempfile::TempDir::new().unwrap();
        let dest = tmp.path().join("job-1");
        let folder = PartialFolder::begin(&dest).unwrap();
        folder.write("report.json", b"{}").unwrap();
        assert!(!dest.exists());
        assert_eq!(folder.publish().unwrap(), dest);
        assert!(dest.join("report.json").is_file());
        assert!(matches!(PartialFolder::begin(&dest), Err(Error::Exists(_))));

        let other = tmp.path().join("job-2");
        let folder = PartialFolder::begin(&other).unwrap();
        folder.write("result.mp4", b"half").unwrap();
        drop(folder);
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["job-1"]);
    }
}
