//! Preprocessing results as files, named as the reference's toolkit names them
//! (`src_video-<task>.mp4`, `src_mask-<task>.mp4`, `src_ref_image-<task>-<n>.png`), so they
//! can be inspected, or reused as a job's inputs.

use std::path::{Path, PathBuf};

use super::Prepared;
use crate::media::{self, Frame};

/// The files written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub video: Option<PathBuf>,
    pub mask: Option<PathBuf>,
    pub references: Vec<PathBuf>,
}

/// File names for results labelled `label` (the task, or tasks joined by `+`).
pub fn names(label: &str) -> (String, String, impl Fn(usize) -> String) {
    let owned = label.to_owned();
    (
        format!("src_video-{label}.mp4"),
        format!("src_mask-{label}.mp4"),
        move |n| format!("src_ref_image-{owned}-{n}.png"),
    )
}

/// Writes `prepared` into `dir` at `fps`. Videos are x264 at CRF 0 (lossless luma) so masks
/// and control frames come back as written, up to the colour conversion. An all-white mask
/// (a control video's) is not written, as the reference writes none: without a mask file
/// the whole video is the control input.
pub fn write(
    prepared: &Prepared,
    label: &str,
    dir: &Path,
    fps: u32,
) -> Result<Written, media::Error> {
    let (video_name, mask_name, reference_name) = names(label);
    let settings = media::Mp4Settings {
        fps,
        crf: 0,
        preset: "medium".to_owned(),
    };
    let mut written = Written::default();
    if let Some(video) = &prepared.video {
        let path = dir.join(video_name);
        media::write_mp4(&path, &video.frames, &settings)?;
        written.video = Some(path);
        if video
            .masks
            .iter()
            .any(|m| m.values.iter().any(|&v| v != 255))
        {
            let masks: Vec<Frame> = video.masks.iter().map(|m| m.to_frame()).collect();
            let path = dir.join(mask_name);
            media::write_mp4(&path, &masks, &settings)?;
            written.mask = Some(path);
        }
    }
    for (n, reference) in prepared.references.iter().enumerate() {
        let path = dir.join(reference_name(n));
        media::write_png(&path, reference)?;
        written.references.push(path);
    }
    Ok(written)
}
