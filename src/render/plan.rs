//! From a manifest to a plan: every input found, probed and checked against the others and
//! against the model, every default filled in (size, frames, steps, seed), before any
//! decoding or GPU work. `vaced validate` prints the plan; `vaced render` runs it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::pipeline::SamplingParams;
use crate::manifest::preprocess::Task;
use crate::manifest::{self, FrameSampling, FrameSize, JobManifest, JobPath, ModelName, Problem};
use crate::media;
use crate::preprocess::{self, AnnotatorDir, MediaFacts};

/// File extensions read as still images.
pub const STILL_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// What a source path holds.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceKind {
    /// A video file.
    Video {
        codec: String,
        width_px: usize,
        height_px: usize,
        frames: usize,
        fps: f64,
        duration_secs: f64,
        /// Frames `frame_sampling: fps` can take at the job's fps.
        #[serde(skip)]
        frames_at_job_fps: usize,
    },
    /// A folder of images, in name order.
    Sequence {
        #[serde(skip)]
        images: Vec<PathBuf>,
        width_px: usize,
        height_px: usize,
        frames: usize,
    },
    /// One image.
    Still { width_px: usize, height_px: usize },
}

impl SourceKind {
    pub fn size(&self) -> (usize, usize) {
        match self {
            Self::Video {
                width_px,
                height_px,
                ..
            }
            | Self::Sequence {
                width_px,
                height_px,
                ..
            }
            | Self::Still {
                width_px,
                height_px,
            } => (*width_px, *height_px),
        }
    }

    /// Frames in the source (1 for a still).
    pub fn frames(&self) -> usize {
        match self {
            Self::Video { frames, .. } | Self::Sequence { frames, .. } => *frames,
            Self::Still { .. } => 1,
        }
    }

    /// Frames the job can take from the source.
    fn frames_available(&self, sampling: FrameSampling) -> usize {
        match (self, sampling) {
            (
                Self::Video {
                    frames_at_job_fps, ..
                },
                FrameSampling::Fps,
            ) => *frames_at_job_fps,
            _ => self.frames(),
        }
    }
}

/// One input file of the job.
#[derive(Debug, Clone, Serialize)]
pub struct Source {
    /// As written in the manifest.
    pub name: JobPath,
    /// Resolved inside the job folder.
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(flatten)]
    pub kind: SourceKind,
}

/// Where the seed came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeedOrigin {
    Manifest,
    Random,
}

/// A job ready to run: the manifest with every default resolved and every input checked.
#[derive(Debug, Clone, Serialize)]
pub struct JobPlan {
    #[serde(skip)]
    pub job_dir: PathBuf,
    #[serde(skip)]
    pub manifest: JobManifest,
    pub model: ModelName,
    pub size: FrameSize,
    pub frames: usize,
    pub fps: u32,
    pub seed: u64,
    pub seed_origin: SeedOrigin,
    pub sampling: SamplingParams,
    pub frame_sampling: FrameSampling,
    pub video: Option<Source>,
    pub mask: Option<Source>,
    pub reference_images: Vec<Source>,
    /// The preprocessing tasks, checked (the manifest's `preprocess`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub preprocess: Vec<Task>,
    /// Where annotator weights are, for the tasks that need them.
    #[serde(skip)]
    pub annotators: AnnotatorDir,
}

fn is_still(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| STILL_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn image_size(path: &Path) -> Result<(usize, usize), String> {
    image::image_dimensions(path)
        .map(|(w, h)| (w as usize, h as usize))
        .map_err(|e| format!("cannot read the image {}: {e}", path.display()))
}

/// Probes what a resolved input path holds; videos are measured at `job_fps`.
fn probe(path: &Path, job_fps: u32) -> Result<SourceKind, String> {
    if path.is_dir() {
        let mut images: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| format!("cannot list the folder: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                is_still(p)
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        images.sort();
        let first = images
            .first()
            .ok_or("the folder holds no PNG, JPEG or WebP images")?;
        let (width_px, height_px) = image_size(first)?;
        return Ok(SourceKind::Sequence {
            frames: images.len(),
            images,
            width_px,
            height_px,
        });
    }
    if is_still(path) {
        let (width_px, height_px) = image_size(path)?;
        return Ok(SourceKind::Still {
            width_px,
            height_px,
        });
    }
    let info = media::video::probe(path).map_err(|e| e.to_string())?;
    Ok(SourceKind::Video {
        frames_at_job_fps: info.frames_at_fps(job_fps as f64),
        codec: info.codec,
        width_px: info.width_px,
        height_px: info.height_px,
        frames: info.frames,
        fps: info.fps,
        duration_secs: info.duration_secs,
    })
}

/// A file a preprocessing task names, resolved and probed.
pub(crate) fn probe_source(job_dir: &Path, job_fps: u32, name: &JobPath) -> Result<Source, String> {
    let path = name.resolve(job_dir).map_err(|e| e.to_string())?;
    let kind = probe(&path, job_fps)?;
    Ok(Source {
        name: name.clone(),
        path,
        kind,
    })
}

fn source(
    job_dir: &Path,
    job_fps: u32,
    name: &JobPath,
    field: &str,
    problems: &mut Vec<Problem>,
) -> Option<Source> {
    let path = match name.resolve(job_dir) {
        Ok(path) => path,
        Err(e) => {
            problems.push(Problem::new(field, e.to_string()));
            return None;
        }
    };
    match probe(&path, job_fps) {
        Ok(kind) => Some(Source {
            name: name.clone(),
            path,
            kind,
        }),
        Err(message) => {
            problems.push(Problem::new(field, message));
            None
        }
    }
}

/// The largest 4n+1 not above `n` (0 when `n` is 0).
fn four_n_plus_one_at_most(n: usize) -> usize {
    if n == 0 { 0 } else { 4 * ((n - 1) / 4) + 1 }
}

impl SourceKind {
    /// What preprocessing needs to know about it.
    fn facts(&self, sampling: FrameSampling) -> MediaFacts {
        let (width_px, height_px) = self.size();
        MediaFacts {
            width_px,
            height_px,
            frames_available: self.frames_available(sampling),
            is_still: matches!(self, Self::Still { .. }),
        }
    }
}

/// The size of the video preprocessing makes, when it can be told before decoding: for
/// the default frame orientation.
fn prepared_size(
    tasks: &[Task],
    video: Option<&Source>,
    probe: &dyn Fn(&JobPath) -> Result<MediaFacts, String>,
) -> Option<(usize, usize)> {
    let video_size = video.map(|v| v.kind.size());
    for task in tasks {
        match task {
            Task::Outpainting(o) => {
                let (w, h) = video_size?;
                let (cw, ch, _, _) = preprocess::outpaint_canvas(o, w, h);
                return Some((cw, ch));
            }
            Task::Extension(o) if !o.mode.is_clip() => {
                let facts = probe(o.image.as_ref()?).ok()?;
                return Some((facts.width_px, facts.height_px));
            }
            _ => {}
        }
    }
    video_size
}

/// Checks the job's inputs and fills in its defaults for rendering with `model`; tasks that
/// need annotator weights look for them in `annotators`.
pub fn plan(
    job_dir: &Path,
    manifest: &JobManifest,
    model: ModelName,
    annotators: &AnnotatorDir,
) -> Result<JobPlan, Vec<Problem>> {
    let mut problems = Vec::new();
    if let Some(asked) = manifest.model
        && asked != model
    {
        problems.push(Problem::new(
            "model",
            format!(
                "the job asks for {} but the renderer runs {}",
                asked.as_str(),
                model.as_str()
            ),
        ));
    }
    let inputs = &manifest.inputs;
    let video = inputs
        .video
        .as_ref()
        .and_then(|v| source(job_dir, manifest.fps, v, "inputs.video", &mut problems));
    let mask = inputs
        .mask
        .as_ref()
        .and_then(|m| source(job_dir, manifest.fps, m, "inputs.mask", &mut problems));
    let reference_images: Vec<Source> = inputs
        .reference_images
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            source(
                job_dir,
                manifest.fps,
                r,
                &format!("inputs.reference_images[{i}]"),
                &mut problems,
            )
        })
        .collect();

    if let Some(video) = &video
        && matches!(video.kind, SourceKind::Still { .. })
    {
        problems.push(Problem::new(
            "inputs.video",
            format!(
                "`{}` is a single image; give a video file or a folder of frames",
                video.name
            ),
        ));
    }
    for (i, reference) in reference_images.iter().enumerate() {
        if !matches!(reference.kind, SourceKind::Still { .. }) {
            problems.push(Problem::new(
                format!("inputs.reference_images[{i}]"),
                format!("`{}` is not a PNG, JPEG or WebP image", reference.name),
            ));
        }
    }
    if let (Some(video), Some(mask)) = (&video, &mask) {
        if mask.kind.size() != video.kind.size() {
            let ((mw, mh), (vw, vh)) = (mask.kind.size(), video.kind.size());
            problems.push(Problem::new(
                "inputs.mask",
                format!(
                    "`{}` is {mw}x{mh} but `{}` is {vw}x{vh}; the mask must match the video",
                    mask.name, video.name
                ),
            ));
        }
        let still = matches!(mask.kind, SourceKind::Still { .. });
        if !still && mask.kind.frames() != video.kind.frames() {
            problems.push(Problem::new(
                "inputs.mask",
                format!(
                    "`{}` has {} frames but `{}` has {}; give one mask frame per video frame, or one image",
                    mask.name,
                    mask.kind.frames(),
                    video.name,
                    video.kind.frames()
                ),
            ));
        }
    }

    let tasks = &manifest.preprocess;
    let sampling = inputs.frame_sampling;
    let probe = |name: &JobPath| -> Result<MediaFacts, String> {
        probe_source(job_dir, manifest.fps, name).map(|source| source.kind.facts(sampling))
    };
    let size = manifest.size.unwrap_or_else(|| {
        let landscape = model.default_size();
        let portrait_source =
            prepared_size(tasks, video.as_ref(), &probe).is_some_and(|(w, h)| h > w);
        if portrait_source {
            landscape.transposed()
        } else {
            landscape
        }
    });
    if let Some(message) = manifest::size_problem(model, size.width_px, size.height_px) {
        problems.push(Problem::new("size", message));
    }

    let wanted = manifest.frames.unwrap_or_else(|| model.default_frames());
    let frames_from_video = preprocess::uses_source_video(tasks);
    let frames = match video.as_ref().filter(|_| frames_from_video) {
        Some(video) => {
            let available = video.kind.frames_available(inputs.frame_sampling);
            if manifest.frames.is_some() && wanted > available {
                let how = match inputs.frame_sampling {
                    FrameSampling::Fps => format!(" at {} fps", manifest.fps),
                    FrameSampling::FitClip => String::new(),
                };
                problems.push(Problem::new(
                    "frames",
                    format!(
                        "`{}` gives {available} frames{how}; ask for at most {} or use a longer clip",
                        video.name,
                        four_n_plus_one_at_most(available)
                    ),
                ));
            }
            four_n_plus_one_at_most(wanted.min(available))
        }
        None => wanted,
    };
    if video.is_some() && frames == 0 {
        problems.push(Problem::new(
            "inputs.video",
            "the source gives no frames at the job's fps",
        ));
    }
    problems.extend(preprocess::check(
        tasks,
        &preprocess::InputFacts {
            has_video: inputs.video.is_some(),
            video: video.as_ref().map(|v| v.kind.facts(sampling)),
            has_mask: inputs.mask.is_some(),
            frames,
            probe: &probe,
            annotators,
        },
    ));

    if !problems.is_empty() {
        return Err(problems);
    }
    let (seed, seed_origin) = match manifest.seed {
        Some(seed) => (seed, SeedOrigin::Manifest),
        // Below 2^53, so every JSON reader (JavaScript included) keeps it exact.
        None => (rand::random::<u64>() >> 11, SeedOrigin::Random),
    };
    Ok(JobPlan {
        job_dir: job_dir.to_owned(),
        manifest: manifest.clone(),
        model,
        size,
        frames,
        fps: manifest.fps,
        seed,
        seed_origin,
        sampling: SamplingParams {
            steps: manifest.steps.unwrap_or_else(|| model.default_steps()),
            shift: manifest.shift,
            guide_scale: manifest.guidance,
            context_scale: manifest.context_scale,
            solver: manifest.solver,
        },
        frame_sampling: inputs.frame_sampling,
        video,
        mask,
        reference_images,
        preprocess: tasks.clone(),
        annotators: annotators.clone(),
    })
}

impl JobPlan {
    /// One paragraph saying what a render would do, for `vaced validate`.
    pub fn describe(&self) -> String {
        let mut lines = vec![format!(
            "{} frames {} at {} fps with {}, {} {} steps, guidance {}, shift {}, seed {} ({})",
            self.frames,
            self.size,
            self.fps,
            self.model.as_str(),
            self.sampling.solver,
            self.sampling.steps,
            self.sampling.guide_scale,
            self.sampling.shift,
            self.seed,
            match self.seed_origin {
                SeedOrigin::Manifest => "from job.json",
                SeedOrigin::Random => "random, will be recorded",
            }
        )];
        let describe = |role: &str, s: &Source| -> String {
            let (w, h) = s.kind.size();
            match &s.kind {
                SourceKind::Video {
                    codec, frames, fps, ..
                } => {
                    format!(
                        "{role} `{}`: {codec} video {w}x{h}, {frames} frames at {fps:.2} fps",
                        s.name
                    )
                }
                SourceKind::Sequence { frames, .. } => {
                    format!("{role} `{}`: {frames} images {w}x{h}", s.name)
                }
                SourceKind::Still { .. } => format!("{role} `{}`: image {w}x{h}", s.name),
            }
        };
        match &self.video {
            Some(video) => {
                let how = match self.frame_sampling {
                    FrameSampling::Fps => format!("taken at {} fps from the start", self.fps),
                    FrameSampling::FitClip => "spread over the whole clip".to_owned(),
                };
                lines.push(format!(
                    "{}, {how}, scaled and cropped to {}",
                    describe("source", video),
                    self.size
                ));
            }
            None => lines.push("no source video: generated from the prompt".to_owned()),
        }
        if !self.preprocess.is_empty() {
            let names: Vec<&str> = self.preprocess.iter().map(|t| t.name()).collect();
            lines.push(format!("preprocessing: {}", names.join(", then ")));
        }
        if let Some(mask) = &self.mask {
            let applied = if matches!(mask.kind, SourceKind::Still { .. }) {
                ", applied to every frame"
            } else {
                ""
            };
            lines.push(format!("{}{applied}", describe("mask", mask)));
        }
        for reference in &self.reference_images {
            lines.push(format!(
                "{}, on a white {} canvas",
                describe("reference", reference),
                self.size
            ));
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse;

    const INPAINTING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/inpainting");

    fn manifest(json: &str) -> JobManifest {
        parse(json, Path::new("job.json")).unwrap()
    }

    fn plan_of(dir: &Path, json: &str) -> Result<JobPlan, Vec<Problem>> {
        plan(
            dir,
            &manifest(json),
            ModelName::Tiny,
            &AnnotatorDir::default(),
        )
    }

    #[test]
    fn frames_default_to_what_the_source_gives() {
        let dir = Path::new(INPAINTING);
        // The sample clip: 17 frames at 16 fps.
        let p = plan_of(
            dir,
            r#"{"version": 1, "prompt": "a", "inputs": {"video": "source.mp4"}}"#,
        )
        .unwrap();
        assert_eq!((p.frames, p.size), (17, FrameSize::new(128, 80)));
        // At 8 fps the clip's 1.0625 s give 9 instants.
        let p = plan_of(
            dir,
            r#"{"version": 1, "prompt": "a", "fps": 8, "inputs": {"video": "source.mp4"}}"#,
        )
        .unwrap();
        assert_eq!(p.frames, 9);
        let problems = plan_of(
            dir,
            r#"{"version": 1, "prompt": "a", "frames": 21, "inputs": {"video": "source.mp4"}}"#,
        )
        .unwrap_err();
        assert_eq!(problems[0].field, "frames");
        assert!(
            problems[0]
                .message
                .contains("gives 17 frames at 16 fps; ask for at most 17"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_job_for_another_model_is_refused() {
        let problems = plan(
            Path::new(INPAINTING),
            &manifest(r#"{"version": 1, "prompt": "a", "model": "vace-14b", "size": "832x480"}"#),
            ModelName::Tiny,
            &AnnotatorDir::default(),
        )
        .unwrap_err();
        assert!(
            problems[0]
                .message
                .contains("asks for vace-14b but the renderer runs tiny"),
            "{problems:?}"
        );
    }

    #[test]
    fn image_folders_are_sequences_and_portrait_sources_get_portrait_frames() {
        let job = tempfile::TempDir::new().unwrap();
        let frames = job.path().join("frames");
        std::fs::create_dir(&frames).unwrap();
        for i in 0..5 {
            image::RgbImage::new(48, 96)
                .save(frames.join(format!("{i:03}.png")))
                .unwrap();
        }
        let p = plan_of(
            job.path(),
            r#"{"version": 1, "prompt": "a", "inputs": {"video": "frames"}}"#,
        )
        .unwrap();
        assert!(matches!(
            p.video.as_ref().unwrap().kind,
            SourceKind::Sequence { frames: 5, .. }
        ));
        assert_eq!((p.frames, p.size), (5, FrameSize::new(80, 128)));

        // A mask folder with another frame count does not fit.
        let masks = job.path().join("masks");
        std::fs::create_dir(&masks).unwrap();
        for i in 0..4 {
            image::RgbImage::new(48, 96)
                .save(masks.join(format!("{i:03}.png")))
                .unwrap();
        }
        let problems = plan_of(
            job.path(),
            r#"{"version": 1, "prompt": "a", "inputs": {"video": "frames", "mask": "masks"}}"#,
        )
        .unwrap_err();
        assert!(
            problems[0]
                .message
                .contains("has 4 frames but `frames` has 5"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_single_image_is_not_a_source_video() {
        let job = tempfile::TempDir::new().unwrap();
        image::RgbImage::new(32, 32)
            .save(job.path().join("still.png"))
            .unwrap();
        let problems = plan_of(
            job.path(),
            r#"{"version": 1, "prompt": "a", "inputs": {"video": "still.png"}}"#,
        )
        .unwrap_err();
        assert!(
            problems[0].message.contains("is a single image"),
            "{problems:?}"
        );
    }
}
