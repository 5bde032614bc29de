//! Shared helpers of the `media_*` tests.

#![allow(unused_imports)]

pub use vaced::media::test_clip::{FRAMES, HEIGHT, WIDTH, clip, colour, frame, which};
