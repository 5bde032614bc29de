//! Media in and out of the engine's tensors.
//!
//! Videos, image sequences and stills are decoded to RGB `Frame`s (`video`, `still`),
//! fitted onto the model grid (`resize`), turned into tensors and back (`frames`), and
//! results are written as H.264 MP4, PNG and contact sheets (`encode`, `png`,
//! `contact_sheet`). Video decoding and encoding need the `ffmpeg` feature (on by default).

pub mod contact_sheet;
#[cfg(feature = "ffmpeg")]
mod convert;
#[cfg(feature = "ffmpeg")]
pub mod encode;
pub mod error;
pub mod frame;
pub mod frames;
#[cfg(feature = "ffmpeg")]
mod libav;
pub mod png;
pub mod resize;
pub mod still;
#[doc(hidden)]
pub mod test_clip;
#[cfg(feature = "ffmpeg")]
mod timeline;
#[cfg(feature = "ffmpeg")]
pub mod video;

#[cfg(all(test, feature = "ffmpeg"))]
mod codec_tests;

pub use contact_sheet::{contact_sheet, poster};
#[cfg(feature = "ffmpeg")]
pub use encode::{Mp4Settings, write_mp4};
pub use error::Error;
pub use frame::Frame;
#[cfg(feature = "ffmpeg")]
pub use libav::ffmpeg_version;
pub use png::write_png;
pub use resize::{letterbox_on_white, resize_crop};
pub use still::load_still;
#[cfg(feature = "ffmpeg")]
pub use video::{FramePick, VideoInfo, decode, decode_sequence, probe};
