//! Media in and out of the engine's tensors.
//!
//! Videos, image sequences and stills are decoded to RGB `Frame`s (`video`, `still`),
//! fitted onto the model grid (`resize`), turned into tensors and back (`frames`), and
//! results are written as H.264 MP4, PNG and contact sheets (`encode`, `contact_sheet`).

pub mod contact_sheet;
mod convert;
pub mod encode;
pub mod error;
pub mod frame;
pub mod frames;
mod libav;
pub mod resize;
pub mod still;
#[doc(hidden)]
pub mod test_clip;
mod timeline;
pub mod video;

#[cfg(test)]
mod codec_tests;

pub use contact_sheet::{contact_sheet, poster};
pub use encode::{Mp4Settings, write_mp4, write_png};
pub use error::Error;
pub use frame::Frame;
pub use libav::ffmpeg_version;
pub use resize::{letterbox_on_white, resize_crop};
pub use still::load_still;
pub use video::{FramePick, VideoInfo, decode, decode_sequence, probe};
