//! Decoding a plan's media into the engine's pixel-space inputs: the source video and mask
//! picked frame by frame, preprocessed when the job asks for it, scaled and centre-cropped
//! to the frame size, and the reference images letterboxed on white (spec §6.2).

use candle_core::{Device, Tensor};

use super::plan::{JobPlan, Source, SourceKind};
use crate::engine::conditioning::VaceInputs;
use crate::manifest::{FrameSampling, FrameSize, JobPath};
use crate::media::video::FramePick;
use crate::media::{self, Frame};
use crate::preprocess::{self, ClipRange, Clips, Prepared};

/// Why the inputs could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Media(#[from] media::Error),
    #[error("preprocessing: {0}")]
    Preprocess(#[from] preprocess::Error),
    #[error("building input tensors: {0}")]
    Tensor(#[from] candle_core::Error),
}

fn pick(plan: &JobPlan, count: usize) -> FramePick {
    match plan.frame_sampling {
        FrameSampling::Fps => FramePick::AtFps {
            fps: plan.fps as f64,
            count,
        },
        FrameSampling::FitClip => FramePick::FitClip { count },
    }
}

/// `count` frames of a video or sequence source at their own size (a still: the image,
/// `count` times).
fn decode(plan: &JobPlan, source: &Source, count: usize) -> Result<Vec<Frame>, media::Error> {
    match &source.kind {
        SourceKind::Video { .. } => media::video::decode(&source.path, &pick(plan, count)),
        SourceKind::Sequence { images, .. } => {
            media::video::decode_sequence(images, &pick(plan, count))
        }
        SourceKind::Still { .. } => Ok(vec![media::still::load_still(&source.path)?; count]),
    }
}

/// The plan's frames of a source, at the plan's frame size.
fn frames(plan: &JobPlan, source: &Source) -> Result<Vec<Frame>, media::Error> {
    let (width, height) = (plan.size.width_px, plan.size.height_px);
    Ok(decode(plan, source, plan.frames)?
        .iter()
        .map(|f| media::resize_crop(f, width, height))
        .collect())
}

/// The plan's media as preprocessing reads it.
struct PlanClips<'a> {
    plan: &'a JobPlan,
}

impl PlanClips<'_> {
    fn range(&self, source: &Source, range: ClipRange) -> Result<Vec<Frame>, preprocess::Error> {
        Ok(match range {
            ClipRange::First(n) => decode(self.plan, source, n)?,
            ClipRange::Last(n) => {
                let all = decode(self.plan, source, self.available_in(source))?;
                all[all.len().saturating_sub(n)..].to_vec()
            }
        })
    }

    fn available_in(&self, source: &Source) -> usize {
        match (&source.kind, self.plan.frame_sampling) {
            (
                SourceKind::Video {
                    frames_at_job_fps, ..
                },
                FrameSampling::Fps,
            ) => *frames_at_job_fps,
            (kind, _) => kind.frames(),
        }
    }

    fn named(&self, path: &JobPath) -> Result<Source, preprocess::Error> {
        super::plan::probe_source(&self.plan.job_dir, self.plan.fps, path).map_err(|message| {
            preprocess::Error::Task {
                task: "extension",
                message,
            }
        })
    }

    fn video_source(&self) -> Result<&Source, preprocess::Error> {
        self.plan.video.as_ref().ok_or(preprocess::Error::Task {
            task: "preprocess",
            message: "the job has no `inputs.video`".to_owned(),
        })
    }
}

impl Clips for PlanClips<'_> {
    fn video(&mut self, range: ClipRange) -> Result<Vec<Frame>, preprocess::Error> {
        let source = self.video_source()?;
        self.range(source, range)
    }

    fn mask(&mut self, count: usize) -> Result<Vec<Frame>, preprocess::Error> {
        match &self.plan.mask {
            Some(mask) => Ok(decode(self.plan, mask, count)?),
            None => Err(preprocess::Error::Task {
                task: "inpainting",
                message: "the job has no `inputs.mask`".to_owned(),
            }),
        }
    }

    fn clip(&mut self, path: &JobPath, range: ClipRange) -> Result<Vec<Frame>, preprocess::Error> {
        let source = self.named(path)?;
        self.range(&source, range)
    }

    fn available(&mut self, path: Option<&JobPath>) -> Result<usize, preprocess::Error> {
        match path {
            None => Ok(self.available_in(self.video_source()?)),
            Some(path) => Ok(self.available_in(&self.named(path)?)),
        }
    }
}

/// Runs the plan's preprocessing tasks, their videos fitted to `fit_to` if given.
pub fn preprocess(
    plan: &JobPlan,
    device: &Device,
    fit_to: Option<FrameSize>,
) -> Result<Prepared, preprocess::Error> {
    let context = preprocess::Context {
        job_dir: &plan.job_dir,
        frames: plan.frames,
        fit_to,
        canvas: plan.size,
        annotators: &plan.annotators,
        device,
    };
    preprocess::run(&plan.preprocess, &context, &mut PlanClips { plan })
}

/// Decodes and prepares everything the engine conditions on, taking what preprocessing
/// made (`prepared`) in place of the job's own video and mask when it made a video.
pub fn prepare(
    plan: &JobPlan,
    prepared: Prepared,
    device: &Device,
) -> Result<VaceInputs, InputError> {
    let (width, height) = (plan.size.width_px, plan.size.height_px);
    let mut inputs = match (&prepared.video, &plan.video) {
        (Some(video), _) => {
            let masks: Vec<Frame> = video.masks.iter().map(|m| m.to_frame()).collect();
            VaceInputs {
                frames: media::frames::to_tensor(&video.frames, device)?,
                mask: media::frames::mask_to_tensor(&masks, device)?,
                refs: Vec::new(),
            }
        }
        (None, None) => VaceInputs::blank(plan.frames, height, width, device)?,
        (None, Some(video)) => {
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
    let references = prepared.references.into_iter().map(Ok).chain(
        plan.reference_images
            .iter()
            .map(|r| media::still::load_still(&r.path)),
    );
    for still in references {
        let canvas = media::resize::letterbox_on_white(&still?, width, height);
        inputs
            .refs
            .push(Tensor::from_vec(canvas, (3, 1, height, width), device)?);
    }
    Ok(inputs)
}
