//! What can go wrong when loading a checkpoint folder, said so that the user knows which
//! file and tensor, and what to do about it.

use std::path::PathBuf;

/// A checkpoint that cannot be used, with the file (and tensor) at fault.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: {what} is missing; {hint}", path.display())]
    MissingFile {
        path: PathBuf,
        what: &'static str,
        hint: String,
    },

    #[error(
        "{}: tensor `{tensor}` is missing; the file is incomplete or is not a {model} checkpoint \
         (download it again from the official Wan2.1-VACE release)",
        file.display()
    )]
    MissingTensor {
        file: PathBuf,
        tensor: String,
        model: &'static str,
    },

    #[error(
        "{}: tensor `{tensor}` has shape {found:?} but the {model} needs {expected:?}; the files of \
         the folder come from different models (check config.json against the weights)",
        file.display()
    )]
    ShapeMismatch {
        file: PathBuf,
        tensor: String,
        model: &'static str,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error(
        "{}: tensor `{tensor}` is stored as {dtype}; only F32, BF16 and F16 weights can be loaded",
        file.display()
    )]
    UnsupportedDtype {
        file: PathBuf,
        tensor: String,
        dtype: String,
    },

    #[error("{}: cannot read the file ({reason}); it looks truncated or corrupt, download it again", file.display())]
    Corrupt { file: PathBuf, reason: String },

    #[error("{}: {reason}", file.display())]
    InvalidConfig { file: PathBuf, reason: String },

    #[error("{}: {reason}", path.display())]
    UnknownLayout { path: PathBuf, reason: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("{}: building the {model} failed: {source}", file.display())]
    Build {
        file: PathBuf,
        model: &'static str,
        source: candle_core::Error,
    },
}
