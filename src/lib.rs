//! `vaced`: a render daemon for Wan2.1-VACE. Job folders come in, finished videos go out.
//!
//! Modules follow the data flow: `media` turns files into tensors and back, `engine` runs
//! the model, `cli` is the command line.

pub mod cli;
pub mod engine;
pub mod manifest;
pub mod media;
pub mod outbox;
pub mod render;
