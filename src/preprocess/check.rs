//! Checking a task list against the job's inputs before anything is decoded: every task's
//! options, what it reads, the weights it needs, and whether the tasks fit together. All
//! problems are returned at once, at key paths like `preprocess[1].box`.

use super::TaskClass;
use super::annotators::{AnnotatorDir, Weights};
use super::raft::MIN_SIDE_PX;
use crate::manifest::preprocess::{
    ExtensionMode, ExtensionOptions, InpaintingOptions, OutpaintingOptions, PixelBox,
    ReferenceMode, ReferenceOptions,
};
use crate::manifest::{JobPath, Problem, Task};

/// What is known about a media file before decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaFacts {
    pub width_px: usize,
    pub height_px: usize,
    /// Frames the job's sampling can take from it (1 for a still image).
    pub frames_available: usize,
    pub is_still: bool,
}

/// The job's side of the check.
pub struct InputFacts<'a> {
    /// `inputs.video` is named in the manifest.
    pub has_video: bool,
    /// What `inputs.video` holds, when it could be probed.
    pub video: Option<MediaFacts>,
    /// `inputs.mask` is named in the manifest.
    pub has_mask: bool,
    /// Frames of the result.
    pub frames: usize,
    /// Probes a file a task names (resolving it inside the job folder), or says why not.
    pub probe: &'a dyn Fn(&JobPath) -> Result<MediaFacts, String>,
    pub annotators: &'a AnnotatorDir,
}

/// The composition class of a task; `None` for reference tasks, which make no video.
pub fn class(task: &Task) -> Option<TaskClass> {
    match task {
        Task::Gray {}
        | Task::Depth {}
        | Task::Scribble {}
        | Task::ScribbleEdges(_)
        | Task::Pose {}
        | Task::PoseBody {}
        | Task::Flow {}
        | Task::LayoutBbox(_) => Some(TaskClass::Control),
        Task::Inpainting(_) | Task::Outpainting(_) | Task::OutpaintingInner(_) => {
            Some(TaskClass::Repaint)
        }
        Task::Extension(_) => Some(TaskClass::Extension),
        Task::Reference(_) => None,
    }
}

/// Whether a task reads the first frames of `inputs.video` as its source (so the result's
/// frame count comes from the video, as without preprocessing).
fn reads_source_frames(task: &Task) -> bool {
    matches!(class(task), Some(TaskClass::Control | TaskClass::Repaint))
        && !matches!(task, Task::LayoutBbox(_))
}

/// Whether the result's frames come from `inputs.video` (no tasks, or a task that reads the
/// video's frames): then the video's length bounds the frame count.
pub fn uses_source_video(tasks: &[Task]) -> bool {
    !tasks.iter().any(|t| class(t).is_some()) || tasks.iter().any(reads_source_frames)
}

/// Every problem of `tasks` for a job with `facts`.
pub fn check(tasks: &[Task], facts: &InputFacts) -> Vec<Problem> {
    let mut problems = Vec::new();
    let video_tasks: Vec<&str> = tasks
        .iter()
        .filter(|t| class(t).is_some())
        .map(|t| t.name())
        .collect();
    if video_tasks.len() > 2 {
        problems.push(Problem::new(
            "preprocess",
            format!(
                "{} tasks make a video ({}); at most two compose, as in the reference's \
                 `composition`; keep two and add reference tasks as needed",
                video_tasks.len(),
                video_tasks.join(", ")
            ),
        ));
    }
    for (i, task) in tasks.iter().enumerate() {
        let mut at = Checker {
            field: format!("preprocess[{i}]"),
            task: task.name(),
            problems: &mut problems,
        };
        at.task(task, facts);
    }
    unused_inputs(tasks, facts, &mut problems);
    problems
}

/// Inputs no task reads are refused: the job would silently ignore them.
fn unused_inputs(tasks: &[Task], facts: &InputFacts, problems: &mut Vec<Problem>) {
    if !tasks.iter().any(|t| class(t).is_some()) {
        return;
    }
    let reads_video = tasks
        .iter()
        .any(|t| reads_source_frames(t) || matches!(t, Task::Extension(o) if o.mode.is_clip()));
    if facts.has_video && !reads_video {
        problems.push(Problem::new(
            "inputs.video",
            "no task reads the source video (the tasks make the video themselves); remove \
             `inputs.video` or add a task that uses it",
        ));
    }
    let reads_mask = tasks
        .iter()
        .any(|t| matches!(t, Task::Inpainting(o) if o.fixed_box.is_none() && o.boxes.is_empty()));
    if facts.has_mask && !reads_mask {
        problems.push(Problem::new(
            "inputs.mask",
            "the preprocessing tasks make the mask, so `inputs.mask` would be ignored; \
             remove it, or use it through `inpainting` without `box`/`boxes`",
        ));
    }
}

struct Checker<'p> {
    field: String,
    task: &'static str,
    problems: &'p mut Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        let field = if key.is_empty() {
            self.field.clone()
        } else {
            format!("{}.{key}", self.field)
        };
        self.problems.push(Problem::new(field, message));
    }

    fn task(&mut self, task: &Task, facts: &InputFacts) {
        if reads_source_frames(task) && !facts.has_video {
            self.problem(
                "",
                format!(
                    "`{}` works on the source video; add `inputs.video`",
                    self.task
                ),
            );
        }
        match task {
            Task::Gray {} | Task::LayoutBbox(_) => {
                if let Task::LayoutBbox(o) = task {
                    for (k, b) in o.boxes.iter().enumerate() {
                        self.pixel_box(&format!("boxes[{k}]"), b, None);
                    }
                }
            }
            Task::Depth {} => self.weights(Weights::DepthAnythingV2, facts.annotators),
            Task::Scribble {} => self.weights(Weights::Scribble, facts.annotators),
            Task::ScribbleEdges(o) => {
                if !(0.0..=1.0).contains(&o.detail) {
                    self.problem("detail", "must be between 0 and 1");
                }
            }
            Task::Flow {} => {
                self.weights(Weights::Raft, facts.annotators);
                self.flow(facts);
            }
            Task::Pose {} | Task::PoseBody {} => {
                self.weights(Weights::PoseDetector, facts.annotators);
                self.weights(Weights::PoseEstimator, facts.annotators);
            }
            Task::Inpainting(o) => self.inpainting(o, facts),
            Task::Outpainting(o) => self.outpainting(o, false),
            Task::OutpaintingInner(o) => self.outpainting(o, true),
            Task::Extension(o) => self.extension(o, facts),
            Task::Reference(o) => self.reference(o, facts),
        }
    }

    /// RAFT needs two frames and sides it can build its correlation pyramid on.
    fn flow(&mut self, facts: &InputFacts) {
        if facts.frames < 2 {
            self.problem(
                "",
                "`flow` needs at least two frames (it draws the motion between them)",
            );
        }
        if let Some(video) = facts.video
            && video.width_px.min(video.height_px) < MIN_SIDE_PX
        {
            self.problem(
                "",
                format!(
                    "`flow` needs source frames at least {MIN_SIDE_PX} px on each side (RAFT's \
                     coarsest correlation level); the source is {}x{}",
                    video.width_px, video.height_px
                ),
            );
        }
    }

    fn weights(&mut self, weights: Weights, annotators: &AnnotatorDir) {
        if let Err(message) = annotators.locate(weights, self.task) {
            self.problem("", message);
        }
    }

    /// A box must have positive size and overlap `within` (width, height) when known.
    fn pixel_box(&mut self, key: &str, b: &PixelBox, within: Option<(usize, usize)>) {
        let [x1, y1, x2, y2] = *b;
        if b.iter().any(|v| !v.is_finite()) || x2 <= x1 || y2 <= y1 {
            self.problem(
                key,
                format!(
                    "[{x1}, {y1}, {x2}, {y2}] is not a box; give [left, top, right, bottom] \
                     with right > left and bottom > top"
                ),
            );
        } else if let Some((w, h)) = within
            && (x2 <= 0.0 || y2 <= 0.0 || x1 >= w as f64 || y1 >= h as f64)
        {
            self.problem(
                key,
                format!("[{x1}, {y1}, {x2}, {y2}] lies outside the {w}x{h} picture"),
            );
        }
    }

    fn inpainting(&mut self, o: &InpaintingOptions, facts: &InputFacts) {
        let within = facts.video.map(|v| (v.width_px, v.height_px));
        match (&o.fixed_box, o.boxes.is_empty(), facts.has_mask) {
            (Some(_), false, _) => {
                self.problem("boxes", "give `box` or `boxes`, not both");
            }
            (Some(_), true, true) | (None, false, true) => self.problem(
                "",
                "both a box and `inputs.mask` say where to repaint; keep one",
            ),
            (None, true, false) => self.problem(
                "",
                "say where to repaint: `box`, `boxes` (keyframes) or `inputs.mask`",
            ),
            _ => {}
        }
        if let Some(b) = &o.fixed_box {
            self.pixel_box("box", b, within);
        }
        let mut last = None;
        for (k, key) in o.boxes.iter().enumerate() {
            self.pixel_box(&format!("boxes[{k}].box"), &key.pixel_box, within);
            if last.is_some_and(|l| key.frame <= l) {
                self.problem(
                    &format!("boxes[{k}].frame"),
                    "keyframes must be in increasing frame order",
                );
            }
            if key.frame >= facts.frames {
                self.problem(
                    &format!("boxes[{k}].frame"),
                    format!(
                        "frame {} is past the result's {} frames (they count from 0)",
                        key.frame, facts.frames
                    ),
                );
            }
            last = Some(key.frame);
        }
    }

    fn outpainting(&mut self, o: &OutpaintingOptions, inner: bool) {
        if o.direction.is_empty() {
            self.problem("direction", "name at least one of left, right, up, down");
        }
        let mut seen = o.direction.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != o.direction.len() {
            self.problem("direction", "a side is named twice");
        }
        let max = if inner { 0.49 } else { 4.0 };
        if !(o.expand_ratio > 0.0 && o.expand_ratio <= max) {
            let why = if inner {
                "must be above 0 and below 0.5 (both borders would meet)"
            } else {
                "must be above 0 and at most 4"
            };
            self.problem("expand_ratio", why);
        }
    }

    fn extension(&mut self, o: &ExtensionOptions, facts: &InputFacts) {
        let clip = o.mode.is_clip();
        let forbid = |me: &mut Self, present: bool, key: &str, why: &str| {
            if present {
                me.problem(key, why.to_owned());
            }
        };
        if clip {
            forbid(
                self,
                o.image.is_some(),
                "image",
                "clip modes take `inputs.video`, not an image; use a frame mode or remove `image`",
            );
            forbid(
                self,
                o.last_image.is_some(),
                "last_image",
                "clip modes take videos, not images; remove `last_image`",
            );
            if !facts.has_video {
                self.problem("", "clip modes extend `inputs.video`; add it");
            }
        } else {
            forbid(
                self,
                o.keep_frames.is_some(),
                "keep_frames",
                "frame modes keep one image at each end; `keep_frames` is for clip modes",
            );
            forbid(
                self,
                o.last_clip.is_some(),
                "last_clip",
                "`last_clip` belongs to `first_last_clip`",
            );
            if o.image.is_none() {
                self.problem("image", "frame modes need the image to keep");
            }
        }
        let wants_last_image = o.mode == ExtensionMode::FirstLastFrame;
        if wants_last_image && o.last_image.is_none() {
            self.problem("last_image", "`first_last_frame` needs the last image");
        }
        if !wants_last_image && !clip {
            forbid(
                self,
                o.last_image.is_some(),
                "last_image",
                "only `first_last_frame` takes `last_image`",
            );
        }
        if o.mode == ExtensionMode::FirstLastClip && o.last_clip.is_none() {
            self.problem("last_clip", "`first_last_clip` needs the clip to end on");
        }
        if o.mode != ExtensionMode::FirstLastClip && clip {
            forbid(
                self,
                o.last_clip.is_some(),
                "last_clip",
                "only `first_last_clip` takes `last_clip`",
            );
        }
        for (key, path) in [("image", &o.image), ("last_image", &o.last_image)] {
            if let Some(path) = path {
                self.media(key, path, facts, true);
            }
        }
        let mut clips = vec![facts.video.map(|v| v.frames_available)];
        if let Some(path) = &o.last_clip {
            clips.push(
                self.media("last_clip", path, facts, false)
                    .map(|m| m.frames_available),
            );
        }
        let ends = if o.mode.is_clip() {
            if o.mode == ExtensionMode::FirstLastClip {
                2
            } else {
                1
            }
        } else if wants_last_image {
            2
        } else {
            1
        };
        let kept_each = extension_kept(o, facts.frames, &clips);
        // An unreadable clip is reported where it is named; zero kept frames from it is not news.
        if kept_each == 0 && clip && clips.iter().all(Option::is_some) {
            self.problem("keep_frames", "keep at least one frame");
        }
        if let Some(keep) = o.keep_frames {
            for available in clips.iter().flatten() {
                if keep > *available {
                    self.problem(
                        "keep_frames",
                        format!("a clip gives only {available} frames at the job's sampling"),
                    );
                }
            }
        }
        if ends * kept_each >= facts.frames {
            self.problem(
                "",
                format!(
                    "{} kept frames leave nothing to generate in a {}-frame result; keep fewer \
                     or ask for more `frames`",
                    ends * kept_each,
                    facts.frames
                ),
            );
        }
    }

    fn reference(&mut self, o: &ReferenceOptions, facts: &InputFacts) {
        let image = self.media("image", &o.image, facts, true);
        let size = image.map(|m| (m.width_px, m.height_px));
        match o.mode {
            ReferenceMode::Plain => {
                if o.mask.is_some() || o.subject_box.is_some() {
                    self.problem(
                        "mode",
                        "`plain` uses the image as it is; set `mode` to `mask` or `box` to use them",
                    );
                }
            }
            ReferenceMode::Mask => {
                if o.subject_box.is_some() {
                    self.problem("box", "`mask` mode takes `mask`, not `box`");
                }
                match &o.mask {
                    None => self.problem("mask", "`mask` mode needs the subject's mask image"),
                    Some(mask) => {
                        if let (Some(m), Some((w, h))) =
                            (self.media("mask", mask, facts, true), size)
                            && (m.width_px, m.height_px) != (w, h)
                        {
                            self.problem(
                                "mask",
                                format!(
                                    "the mask is {}x{} but the image is {w}x{h}",
                                    m.width_px, m.height_px
                                ),
                            );
                        }
                    }
                }
            }
            ReferenceMode::Box => {
                if o.mask.is_some() {
                    self.problem("mask", "`box` mode takes `box`, not `mask`");
                }
                match &o.subject_box {
                    None => self.problem("box", "`box` mode needs the subject's box"),
                    Some(b) => self.pixel_box("box", b, size),
                }
            }
            ReferenceMode::Salient => self.problem(
                "mode",
                "`salient` needs U²-Net, which is not available in this build of vaced; use \
                 `mask` or `box`",
            ),
        }
    }

    /// Probes a file the task names; `still` says whether it must be an image.
    fn media(
        &mut self,
        key: &str,
        path: &JobPath,
        facts: &InputFacts,
        still: bool,
    ) -> Option<MediaFacts> {
        match (facts.probe)(path) {
            Err(message) => {
                self.problem(key, message);
                None
            }
            Ok(m) if still && !m.is_still => {
                self.problem(key, format!("`{path}` is not a PNG, JPEG or WebP image"));
                None
            }
            Ok(m) if !still && m.is_still => {
                self.problem(
                    key,
                    format!("`{path}` is an image; give a video or a folder of frames"),
                );
                None
            }
            Ok(m) => Some(m),
        }
    }
}

/// Frames kept from each end of an extension: 1 for frame modes; for clip modes
/// `keep_frames`, or by default what the shortest clip gives, at most half of the result.
pub(crate) fn extension_kept(
    o: &ExtensionOptions,
    frames: usize,
    clips: &[Option<usize>],
) -> usize {
    if !o.mode.is_clip() {
        return 1;
    }
    if let Some(keep) = o.keep_frames {
        return keep;
    }
    let ends = if o.mode == ExtensionMode::FirstLastClip {
        2
    } else {
        1
    };
    let shortest = clips.iter().flatten().copied().min().unwrap_or(0);
    shortest.min(frames / (2 * ends))
}
