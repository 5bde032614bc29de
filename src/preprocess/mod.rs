//! Preprocessing: VACE's annotator tasks (spec §6.9). A job's `preprocess` list turns its
//! media into what the model conditions on, the way the reference's `vace_preproccess.py`
//! does: a source video (control frames, or frames with grey where to generate), a mask
//! video (255 = generate, 0 = keep) and reference images.
//!
//! Tasks run on the media at its own size, as the reference does; the render module then
//! fits the result onto the model's grid (spec §6.2). Video-making tasks compose pairwise by
//! class (`compose`), reference tasks add images. `check` finds every problem of a task list
//! before any decoding or GPU work; `run` executes it; `write` saves the result as files.

pub mod annotators;
mod check;
mod compose;
pub mod cv;
pub mod depth_anything;
pub mod dwpose;
mod edges;
mod error;
mod extend;
mod gray;
mod instance_norm;
mod layout;
mod mask;
pub mod onnx;
mod outpaint;
pub mod pose_networks;
pub mod raft;
mod reference;
mod region;
mod run;
pub mod scribble_net;
#[cfg(feature = "ffmpeg")]
pub mod write;

pub use annotators::{AnnotatorDir, Weights};
pub use check::{InputFacts, MediaFacts, check, uses_source_video};
pub use error::Error;
pub use mask::Mask;
pub use outpaint::canvas as outpaint_canvas;
pub use run::{ClipRange, Clips, Context, run};

use crate::media::Frame;

/// Grey of the repaint tasks (`MASK_COLOR` 128 of inpainting, PIL "gray" of outpainting).
pub const REPAINT_GREY: u8 = 128;
/// Grey of the extension tasks: the reference fills with 127.5, saved as 127.
pub const EXTENSION_GREY: u8 = 127;

/// A video made by preprocessing: frames and their masks, one each, all one size.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedVideo {
    pub frames: Vec<Frame>,
    pub masks: Vec<Mask>,
}

impl PreparedVideo {
    /// An empty video with room for `frames` frames.
    pub fn with_capacity(frames: usize) -> Self {
        Self {
            frames: Vec::with_capacity(frames),
            masks: Vec::with_capacity(frames),
        }
    }

    /// Appends a frame and its mask.
    pub fn push(&mut self, frame: Frame, mask: Mask) {
        self.frames.push(frame);
        self.masks.push(mask);
    }

    /// Frames with the all-white mask of a control video (everything is "reactive").
    pub fn control(frames: Vec<Frame>) -> Self {
        let masks = frames
            .iter()
            .map(|f| Mask::filled(f.width, f.height, 255))
            .collect();
        Self { frames, masks }
    }
}

/// Everything preprocessing produced for a job.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prepared {
    /// The source video and mask, when a task makes one; otherwise the job's inputs are
    /// used as they are.
    pub video: Option<PreparedVideo>,
    /// Prepared reference images, at their own sizes (the loader letterboxes them).
    pub references: Vec<Frame>,
}

/// How a video-making task combines with another (the reference's `composition` classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskClass {
    /// A control video: depth, gray, scribble, pose, flow, layout.
    Control,
    /// Frames with a region to generate: inpainting, outpainting.
    Repaint,
    /// Kept frames and generated ones: extension.
    Extension,
}
