//! Media in and out of the engine's tensors.

pub mod frames;
