//! Running a checked task list: each task reads what it needs through [`Clips`], video
//! tasks are fitted to the result's size and composed, reference tasks add images.

use std::path::Path;

use candle_core::Device;

use super::check::{class, extension_kept};
use super::depth_anything::DepthAnythingV2;
use super::dwpose::{self, Parts};
use super::extend::{Placement, extend};
use super::pose_networks::OnnxPoseNetworks;
use super::raft::Raft;
use super::region::{Region, inpaint};
use super::scribble_net::ScribbleNet;
use super::{
    AnnotatorDir, Error, Mask, Prepared, PreparedVideo, Weights, compose, edges, gray, layout,
    outpaint, reference,
};
use crate::manifest::preprocess::{ExtensionMode, ExtensionOptions, ReferenceMode};
use crate::manifest::{FrameSize, JobPath, Task};
use crate::media::{self, Frame};

/// Which frames of a clip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipRange {
    /// The first n frames.
    First(usize),
    /// The last n frames the job's sampling can take.
    Last(usize),
}

/// The job's videos, decoded at its frame sampling and their own size (the render module
/// reads files; tests can serve frames from memory).
pub trait Clips {
    /// Frames of `inputs.video`.
    fn video(&mut self, range: ClipRange) -> Result<Vec<Frame>, Error>;
    /// `count` frames of `inputs.mask` (a single image repeated).
    fn mask(&mut self, count: usize) -> Result<Vec<Frame>, Error>;
    /// Frames of another clip the job names.
    fn clip(&mut self, path: &JobPath, range: ClipRange) -> Result<Vec<Frame>, Error>;
    /// Frames the job's sampling can take from `inputs.video` (`None`) or another clip.
    fn available(&mut self, path: Option<&JobPath>) -> Result<usize, Error>;
}

/// Where and how tasks run.
pub struct Context<'a> {
    pub job_dir: &'a Path,
    /// Frames of the result.
    pub frames: usize,
    /// Fit video outputs to this size (as the loader would, spec §6.2); `None` keeps each
    /// task's own size (then a composed second video is fitted to the first).
    pub fit_to: Option<FrameSize>,
    /// Canvas of `layout_bbox`.
    pub canvas: FrameSize,
    pub annotators: &'a AnnotatorDir,
    pub device: &'a Device,
}

/// Runs `tasks` (already checked) and returns what they prepared.
pub fn run(tasks: &[Task], ctx: &Context, clips: &mut dyn Clips) -> Result<Prepared, Error> {
    let mut prepared = Prepared::default();
    let mut source: Option<Vec<Frame>> = None;
    let mut composed: Option<(super::TaskClass, PreparedVideo)> = None;
    for task in tasks {
        let Some(task_class) = class(task) else {
            if let Task::Reference(o) = task {
                prepared
                    .references
                    .push(reference_image(task.name(), o, ctx)?);
            }
            continue;
        };
        let video = video_task(task, ctx, clips, &mut source)?;
        let video = match (ctx.fit_to, &composed) {
            (Some(size), _) => fit(&video, size.width_px, size.height_px),
            (None, Some((_, first))) => match first.frames.first() {
                Some(f) => fit(&video, f.width, f.height),
                None => video,
            },
            (None, None) => video,
        };
        composed = Some(match composed {
            None => (task_class, video),
            Some((first_class, first)) => (
                first_class,
                compose::compose((first_class, &first), (task_class, &video)),
            ),
        });
    }
    prepared.video = composed.map(|(_, video)| video);
    Ok(prepared)
}

/// The source video's first `ctx.frames` frames, decoded once for all tasks.
fn source_frames<'s>(
    ctx: &Context,
    clips: &mut dyn Clips,
    source: &'s mut Option<Vec<Frame>>,
) -> Result<&'s [Frame], Error> {
    if source.is_none() {
        *source = Some(clips.video(ClipRange::First(ctx.frames))?);
    }
    Ok(source.as_deref().unwrap_or_default())
}

fn video_task(
    task: &Task,
    ctx: &Context,
    clips: &mut dyn Clips,
    source: &mut Option<Vec<Frame>>,
) -> Result<PreparedVideo, Error> {
    let name = task.name();
    let video = match task {
        Task::Gray {} => PreparedVideo::control(
            source_frames(ctx, clips, source)?
                .iter()
                .map(gray::gray_frame)
                .collect(),
        ),
        Task::ScribbleEdges(o) => PreparedVideo::control(
            source_frames(ctx, clips, source)?
                .iter()
                .map(|f| edges::edge_frame(f, o))
                .collect(),
        ),
        Task::Depth {} => {
            let frames = source_frames(ctx, clips, source)?;
            network_control(
                name,
                Weights::DepthAnythingV2,
                ctx,
                frames,
                DepthAnythingV2::load,
                |m, frames| frames.iter().map(|f| m.depth_frame(f)).collect(),
            )?
        }
        Task::Scribble {} => {
            let frames = source_frames(ctx, clips, source)?;
            network_control(
                name,
                Weights::Scribble,
                ctx,
                frames,
                ScribbleNet::load,
                |m, frames| frames.iter().map(|f| m.line_frame(f)).collect(),
            )?
        }
        Task::Flow {} => {
            let frames = source_frames(ctx, clips, source)?;
            network_control(name, Weights::Raft, ctx, frames, Raft::load, |m, frames| {
                m.flow_frames(frames)
            })?
        }
        Task::Pose {} | Task::PoseBody {} => {
            let parts = match task {
                Task::Pose {} => Parts::BodyFace,
                _ => Parts::Body,
            };
            pose_control(name, parts, ctx, source_frames(ctx, clips, source)?)?
        }
        Task::Reference(_) => {
            return Err(Error::Task {
                task: name,
                message: "a reference task makes images, not a video".to_owned(),
            });
        }
        Task::Inpainting(o) => {
            let masks;
            let region = match (&o.fixed_box, o.boxes.is_empty()) {
                (Some(b), _) => Region::Fixed(*b),
                (None, false) => Region::Keyframes(&o.boxes),
                (None, true) => {
                    masks = clips.mask(ctx.frames)?;
                    Region::Masks(&masks)
                }
            };
            inpaint(source_frames(ctx, clips, source)?, &region)
        }
        Task::Outpainting(o) => outpaint::outpaint(source_frames(ctx, clips, source)?, o),
        Task::OutpaintingInner(o) => {
            outpaint::outpaint_inner(source_frames(ctx, clips, source)?, o)
        }
        Task::Extension(o) => extension(o, ctx, clips)?,
        Task::LayoutBbox(o) => {
            layout::layout(o, ctx.canvas.width_px, ctx.canvas.height_px, ctx.frames)
        }
    };
    Ok(video)
}

fn extension(
    o: &ExtensionOptions,
    ctx: &Context,
    clips: &mut dyn Clips,
) -> Result<PreparedVideo, Error> {
    let image = |path: &Option<JobPath>| -> Result<Vec<Frame>, Error> {
        match path {
            Some(path) => Ok(vec![load_still(path, ctx, "extension")?]),
            None => Ok(Vec::new()),
        }
    };
    let keep = if o.mode.is_clip() {
        let mut available = vec![Some(clips.available(None)?)];
        if let Some(last) = &o.last_clip {
            available.push(Some(clips.available(Some(last))?));
        }
        extension_kept(o, ctx.frames, &available)
    } else {
        1
    };
    let (placement, first, last) = match o.mode {
        ExtensionMode::FirstFrame => (Placement::First, image(&o.image)?, Vec::new()),
        ExtensionMode::LastFrame => (Placement::Last, Vec::new(), image(&o.image)?),
        ExtensionMode::FirstLastFrame => (Placement::Both, image(&o.image)?, image(&o.last_image)?),
        // The clip continues: keep its end.
        ExtensionMode::FirstClip => (
            Placement::First,
            clips.video(ClipRange::Last(keep))?,
            Vec::new(),
        ),
        // The clip follows: keep its start.
        ExtensionMode::LastClip => (
            Placement::Last,
            Vec::new(),
            clips.video(ClipRange::First(keep))?,
        ),
        ExtensionMode::FirstLastClip => {
            let second = match &o.last_clip {
                Some(path) => clips.clip(path, ClipRange::First(keep))?,
                None => Vec::new(),
            };
            (Placement::Both, clips.video(ClipRange::Last(keep))?, second)
        }
    };
    Ok(extend(placement, &first, &last, ctx.frames))
}

fn reference_image(
    task: &'static str,
    o: &crate::manifest::preprocess::ReferenceOptions,
    ctx: &Context,
) -> Result<Frame, Error> {
    let image = load_still(&o.image, ctx, task)?;
    let mask;
    let subject = match (o.mode, &o.mask, o.subject_box) {
        (ReferenceMode::Mask, Some(path), _) => {
            mask = load_still(path, ctx, task)?;
            reference::Subject::Mask(&mask)
        }
        (ReferenceMode::Box, _, Some(b)) => reference::Subject::Box(b),
        _ => reference::Subject::Plain,
    };
    reference::prepare(&image, &subject).ok_or_else(|| Error::Task {
        task,
        message: format!(
            "the subject of `{}` is empty (the mask or box selects no pixel); fix the mask or box",
            o.image
        ),
    })
}

fn load_still(path: &JobPath, ctx: &Context, task: &'static str) -> Result<Frame, Error> {
    let resolved = path.resolve(ctx.job_dir).map_err(|e| Error::Task {
        task,
        message: e.to_string(),
    })?;
    Ok(media::still::load_still(&resolved)?)
}

/// A control video from a network annotator: its weights loaded from the annotator folder,
/// then `annotate` run over the source frames.
fn network_control<M>(
    task: &'static str,
    weights: Weights,
    ctx: &Context,
    frames: &[Frame],
    load: impl FnOnce(&Path, &Device) -> candle_core::Result<M>,
    annotate: impl FnOnce(&M, &[Frame]) -> candle_core::Result<Vec<Frame>>,
) -> Result<PreparedVideo, Error> {
    let model = load_weights(task, weights, ctx, load)?;
    let controls = annotate(&model, frames).map_err(|e| Error::Annotator {
        task,
        source: Box::new(e),
    })?;
    Ok(PreparedVideo::control(controls))
}

/// The pose control video: DWPose's detector and estimator from the annotator folder.
fn pose_control(
    task: &'static str,
    parts: Parts,
    ctx: &Context,
    frames: &[Frame],
) -> Result<PreparedVideo, Error> {
    let detector = load_weights(
        task,
        Weights::PoseDetector,
        ctx,
        OnnxPoseNetworks::load_detector,
    )?;
    network_control(
        task,
        Weights::PoseEstimator,
        ctx,
        frames,
        |path, device| {
            let estimator = OnnxPoseNetworks::load_estimator(path, device)?;
            Ok(OnnxPoseNetworks::new(detector, estimator))
        },
        |nets, frames| {
            frames
                .iter()
                .map(|f| dwpose::pose_frame(nets, f, parts, ctx.device))
                .collect()
        },
    )
}

/// An annotator network loaded from its weights in the annotator folder.
fn load_weights<M>(
    task: &'static str,
    weights: Weights,
    ctx: &Context,
    load: impl FnOnce(&Path, &Device) -> candle_core::Result<M>,
) -> Result<M, Error> {
    let path = ctx
        .annotators
        .locate(weights, task)
        .map_err(|message| Error::Task { task, message })?;
    load(&path, ctx.device).map_err(|e| Error::Weights {
        task,
        path,
        source: Box::new(e),
    })
}

/// Frames and masks scaled to cover `width`×`height` and centre-cropped, as the loader does.
fn fit(video: &PreparedVideo, width: usize, height: usize) -> PreparedVideo {
    PreparedVideo {
        frames: video
            .frames
            .iter()
            .map(|f| media::resize_crop(f, width, height))
            .collect(),
        masks: video
            .masks
            .iter()
            .map(|m| Mask::from_frame(&media::resize_crop(&m.to_frame(), width, height)))
            .collect(),
    }
}
