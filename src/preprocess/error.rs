//! Why preprocessing failed while running (problems found beforehand are `Problem`s).

use std::path::PathBuf;

use crate::media;

/// Why a task could not produce its output.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Media(#[from] media::Error),
    #[error("{task}: loading the annotator weights {}: {source}; reinstall the file", path.display())]
    Weights {
        task: &'static str,
        path: PathBuf,
        source: Box<candle_core::Error>,
    },
    #[error("{task}: running the annotator: {source}")]
    Annotator {
        task: &'static str,
        source: Box<candle_core::Error>,
    },
    #[error("{task}: {message}")]
    Task { task: &'static str, message: String },
}
