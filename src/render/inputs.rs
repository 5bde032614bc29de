//! Decoding a plan's media into the engine's pixel-space inputs: the source video and mask
//! picked frame by frame, scaled and centre-cropped to the frame size, and the reference
//! images letterboxed on white (spec §6.2).

use candle_core::{Device, Tensor};

use super::plan::{JobPlan, Source, SourceKind};
use crate::engine::conditioning::VaceInputs;
use crate::manifest::FrameSampling;
use crate::media::video::FramePick;
use crate::media::{self, Frame};

/// Why the inputs could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Media(#[from] media::Error),
    #[error("building input tensors: {0}")]
    Tensor(#[from] candle_core::Error),
}

fn pick(plan: &JobPlan) -> FramePick {
    match plan.frame_sampling {
        FrameSampling::Fps => FramePick::AtFps {
            fps: plan.fps as f64,
            count: plan.frames,
        },
        FrameSampling::FitClip => FramePick::FitClip { count: plan.frames },
    }
}

/// The frames of a video or sequence source (a still: the image, `count` times), at the
/// plan's frame size.
fn frames(plan: &JobPlan, source: &Source) -> Result<Vec<Frame>, media::Error> {
    let (width, height) = (plan.size.width_px, plan.size.height_px);
    let raw = match &source.kind {
        SourceKind::Video { .. } => media::video::decode(&source.path, &pick(plan))?,
        SourceKind::Sequence { images, .. } => media::video::decode_sequence(images, &pick(plan))?,
        SourceKind::Still { .. } => {
            let still =
                media::resize::resize_crop(&media::still::load_still(&source.path)?, width, height);
            return Ok(vec![still; plan.frames]);
        }
    };
    Ok(raw
        .iter()
        .map(|f| media::resize::resize_crop(f, width, height))
        .collect())
}

/// Decodes and prepares everything the engine conditions on.
pub fn prepare(plan: &JobPlan, device: &Device) -> Result<VaceInputs, InputError> {
    let (width, height) = (plan.size.width_px, plan.size.height_px);
    let mut inputs = match &plan.video {
        None => VaceInputs::blank(plan.frames, height, width, device)?,
        Some(video) => {
            let frames = media::frames::to_tensor(&frames(plan, video)?, device)?;
            let mask = match &plan.mask {
                Some(mask) => media::frames::mask_to_tensor(&self::frames(plan, mask)?, device)?,
                None => Tensor::ones(frames.shape(), candle_core::DType::F32, device)?,
            };
            VaceInputs {
                frames,
                mask,
                refs: Vec::new(),
            }
        }
    };
    for reference in &plan.reference_images {
        let still = media::still::load_still(&reference.path)?;
        let canvas = media::resize::letterbox_on_white(&still, width, height);
        inputs
            .refs
            .push(Tensor::from_vec(canvas, (3, 1, height, width), device)?);
    }
    Ok(inputs)
}
