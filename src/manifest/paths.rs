//! Paths inside a job folder. A manifest may only name files in its own folder: absolute
//! paths, `..` and symbolic links that lead outside are refused, so a job cannot read (or
//! leak into its report) anything else on the machine or share.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A relative path as written in the manifest, checked to stay inside the folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobPath(String);

/// Why a manifest path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{0}` is absolute; name the file relative to the job folder")]
    Absolute(String),
    #[error("`{0}` leaves the job folder (`..`); put the file inside the job folder")]
    Escapes(String),
    #[error("`{0}` is empty")]
    Empty(String),
    #[error("`{0}` does not exist in the job folder")]
    Missing(String),
    #[error("`{0}` is a link to outside the job folder; copy the file into the folder instead")]
    LinkEscapes(String),
}

impl JobPath {
    /// Checks the written form: relative, no `..`, not empty.
    pub fn new(text: &str) -> Result<Self, PathError> {
        let path = Self(text.to_owned());
        path.check()?;
        Ok(path)
    }

    /// Why the written form is refused, if it is.
    pub fn check(&self) -> Result<(), PathError> {
        let text = self.0.as_str();
        let path = Path::new(text);
        if text.trim().is_empty() {
            return Err(PathError::Empty(text.to_owned()));
        }
        if path.is_absolute() || path.has_root() || text.starts_with('\\') || text.contains(":\\") {
            return Err(PathError::Absolute(text.to_owned()));
        }
        if path.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err(PathError::Escapes(text.to_owned()));
        }
        Ok(())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file inside `job_dir`, after following links: it must exist and stay inside.
    pub fn resolve(&self, job_dir: &Path) -> Result<PathBuf, PathError> {
        self.check()?;
        let joined = job_dir.join(&self.0);
        let real = joined
            .canonicalize()
            .map_err(|_| PathError::Missing(self.0.clone()))?;
        let root = job_dir
            .canonicalize()
            .map_err(|_| PathError::Missing(self.0.clone()))?;
        if real.starts_with(&root) {
            Ok(real)
        } else {
            Err(PathError::LinkEscapes(self.0.clone()))
        }
    }
}

impl std::fmt::Display for JobPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for JobPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JobPath {
    /// Takes any string; [`JobPath::check`] judges it, so that a bad path is reported
    /// together with the manifest's other problems.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_paths_must_stay_relative_and_inside() {
        assert!(JobPath::new("media/source.mp4").is_ok());
        assert!(JobPath::new("./mask.png").is_ok());
        assert!(matches!(
            JobPath::new("/etc/passwd"),
            Err(PathError::Absolute(_))
        ));
        assert!(matches!(
            JobPath::new("../other-job/source.mp4"),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(
            JobPath::new("media/../../x.png"),
            Err(PathError::Escapes(_))
        ));
        assert!(matches!(JobPath::new(" "), Err(PathError::Empty(_))));
    }

    #[test]
    fn links_out_of_the_folder_are_refused() {
        let outside = tempfile::TempDir::new().unwrap();
        let job = tempfile::TempDir::new().unwrap();
        std::fs::write(outside.path().join("secret.png"), b"x").unwrap();
        std::fs::write(job.path().join("ok.png"), b"x").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.png"),
            job.path().join("link.png"),
        )
        .unwrap();
        std::os::unix::fs::symlink(job.path().join("ok.png"), job.path().join("inner.png"))
            .unwrap();
        let resolve = |p: &str| JobPath::new(p).unwrap().resolve(job.path());
        assert!(resolve("ok.png").is_ok());
        assert!(resolve("inner.png").is_ok());
        assert!(matches!(
            resolve("link.png"),
            Err(PathError::LinkEscapes(_))
        ));
        assert!(matches!(resolve("none.png"), Err(PathError::Missing(_))));
    }
}
