//! `vaced`: a render daemon for Wan2.1-VACE.
pub mod engine;
