//! The one error type of the `media` module.
//!
//! Every message a user can see names the file, says what went wrong with it and what to
//! do about it, because these errors end up in job logs read by people, not programs.

use std::path::PathBuf;

/// Why a media file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file does not exist.
    #[error("{}: no such file; check the path", path.display())]
    NotFound { path: PathBuf },

    /// The file exists but the operating system would not let us read it.
    #[error("{}: cannot read the file ({source}); check that it is readable", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    /// FFmpeg only takes UTF-8 paths.
    #[error("{}: the path is not valid UTF-8, which FFmpeg cannot open; rename the file", path.display())]
    PathEncoding { path: PathBuf },

    /// No demuxer recognised the file, or it is not a file at all.
    #[error(
        "{}: not a video ({reason}); check that it is a video file, or re-export it as H.264 MP4",
        path.display()
    )]
    NotVideo { path: PathBuf, reason: String },

    /// The file is an MP4/MOV whose index never got written (interrupted recording or copy).
    #[error(
        "{}: the MP4/MOV file is incomplete: its index (moov atom) is missing, usually because \
         recording or copying it was interrupted; copy or export it again",
        path.display()
    )]
    MissingIndex { path: PathBuf },

    /// The container holds no video track (audio-only files, for instance).
    #[error("{}: the file has no video stream; use a file with a video track", path.display())]
    NoVideoStream { path: PathBuf },

    /// The container's index lists more frames than the file holds.
    #[error(
        "{}: the file is cut short: only {read} of the {expected} frames its index lists are \
         present; copy or export it again",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        read: usize,
        expected: usize,
    },

    /// The video stream could not be decoded.
    #[error("{}: cannot decode the video ({reason}); re-export it as H.264 MP4", path.display())]
    Decode { path: PathBuf, reason: String },

    /// The frame rate asked of `FramePick::AtFps` is not a positive number.
    #[error("{}: cannot take frames at {fps} fps; the rate must be a positive number", path.display())]
    InvalidFps { path: PathBuf, fps: f64 },

    /// The clip is too short to give the requested frames at the requested rate.
    #[error(
        "{}: the clip is {duration_secs:.3} s long and gives {available} frames at {fps} fps, \
         but {requested} are needed; use a longer clip or ask for fewer frames",
        path.display()
    )]
    TooShort {
        path: PathBuf,
        fps: f64,
        requested: usize,
        available: usize,
        duration_secs: f64,
    },

    /// The clip (or image sequence) has fewer frames than requested.
    #[error(
        "{}: the clip has {available} frames but {requested} are needed; use a longer clip or \
         ask for fewer frames",
        path.display()
    )]
    TooFewFrames {
        path: PathBuf,
        requested: usize,
        available: usize,
    },

    /// An image sequence was given without any images.
    #[error("the image sequence is empty; give at least one image")]
    EmptySequence,

    /// An image of a sequence differs in size from the first one.
    #[error(
        "{}: the image is {width_px}x{height_px} but the sequence's first image is \
         {expected_width_px}x{expected_height_px}; give all images the same size",
        path.display()
    )]
    SequenceSize {
        path: PathBuf,
        width_px: usize,
        height_px: usize,
        expected_width_px: usize,
        expected_height_px: usize,
    },

    /// The `image` crate could not read a still image.
    #[error("{}: cannot read the image ({source}); save it as PNG or JPEG", path.display())]
    Image {
        path: PathBuf,
        source: image::ImageError,
    },

    /// There were no frames to encode.
    #[error("{}: no frames to write; the clip is empty", path.display())]
    NoFrames { path: PathBuf },

    /// Frames to encode do not share one even size (yuv420p needs even sizes).
    #[error(
        "{}: frame {index} is {width_px}x{height_px}, but every frame needs the first frame's \
         size ({first_width_px}x{first_height_px}) and an even width and height; resize the \
         frames",
        path.display()
    )]
    FrameSize {
        path: PathBuf,
        index: usize,
        width_px: usize,
        height_px: usize,
        first_width_px: usize,
        first_height_px: usize,
    },

    /// The encoder refused its settings.
    #[error(
        "{}: cannot start the {codec} encoder ({reason}) with {settings}; check these settings",
        path.display()
    )]
    EncoderSettings {
        path: PathBuf,
        codec: String,
        settings: String,
        reason: String,
    },

    /// Encoding or writing the video failed.
    #[error(
        "{}: cannot write the video ({reason}); check that the folder exists, is writable and \
         has free space",
        path.display()
    )]
    Encode { path: PathBuf, reason: String },

    /// An image could not be written.
    #[error(
        "{}: cannot write the image ({source}); check that the folder exists and is writable",
        path.display()
    )]
    Write {
        path: PathBuf,
        source: image::ImageError,
    },

    /// Converting a tensor to or from frames failed.
    #[error("video tensor: {0}")]
    Tensor(#[from] candle_core::Error),
}
