//! `vaced`: a render daemon for Wan2.1-VACE. Job folders come in, finished videos go out.
//!
//! Modules follow the data flow: `media` turns files into tensors and back, `engine` runs
//! the model, `cli` is the command line.

pub mod bench;
pub mod cli;
pub mod config;
#[cfg(feature = "ffmpeg")]
pub mod daemon;
pub mod engine;
pub mod intake;
pub mod mail;
pub mod manifest;
pub mod media;
pub mod outbox;
pub mod preprocess;
pub mod queue;
#[cfg(feature = "ffmpeg")]
pub mod render;
#[cfg(feature = "ffmpeg")]
pub mod worker;
