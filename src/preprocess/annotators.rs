//! Where annotator weights live: one folder laid out like the reference's
//! `models/VACE-Annotators` download, so that folder can be used as it is.

use std::path::{Path, PathBuf};

/// A weights file an annotator task needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// Depth-Anything-V2 ViT-L, for `depth`.
    DepthAnythingV2,
    /// The informative-drawings line-art generator, for `scribble`.
    Scribble,
    /// RAFT (things), for `flow`.
    Raft,
    /// DWPose's YOLOX-L person detector, for `pose` and `pose_body`.
    PoseDetector,
    /// DWPose's RTMPose whole-body estimator, for `pose` and `pose_body`.
    PoseEstimator,
}

impl Weights {
    /// The file's place inside the annotator folder, as in VACE-Annotators.
    pub fn relative_path(self) -> &'static str {
        match self {
            Self::DepthAnythingV2 => "depth/depth_anything_v2_vitl.pth",
            Self::Scribble => "scribble/anime_style/netG_A_latest.pth",
            Self::Raft => "flow/raft-things.pth",
            Self::PoseDetector => "pose/yolox_l.onnx",
            Self::PoseEstimator => "pose/dw-ll_ucoco_384.onnx",
        }
    }

    /// What the file is, for messages.
    pub fn description(self) -> &'static str {
        match self {
            Self::DepthAnythingV2 => "the Depth-Anything-V2 ViT-L weights",
            Self::Scribble => "the scribble (anime-style line art) network weights",
            Self::Raft => "the RAFT optical-flow weights",
            Self::PoseDetector => "the DWPose person detector (YOLOX-L, ONNX)",
            Self::PoseEstimator => "the DWPose whole-body pose network (RTMPose, ONNX)",
        }
    }
}

/// The annotator folder of this render node, if one is configured (`annotators` in
/// vaced.toml, `--annotators`, or `VACED_ANNOTATORS`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnotatorDir(pub Option<PathBuf>);

impl AnnotatorDir {
    pub fn new(path: Option<PathBuf>) -> Self {
        Self(path)
    }

    pub fn path(&self) -> Option<&Path> {
        self.0.as_deref()
    }

    /// The weights file, or a message saying what to install where.
    pub fn locate(&self, weights: Weights, task: &str) -> Result<PathBuf, String> {
        let Some(dir) = &self.0 else {
            return Err(format!(
                "`{task}` needs {} ({}), but no annotator folder is configured; download \
                 the VACE-Annotators models and set `annotators = \"/path/to/VACE-Annotators\"` \
                 in vaced.toml, or pass --annotators",
                weights.description(),
                weights.relative_path()
            ));
        };
        let path = dir.join(weights.relative_path());
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "`{task}` needs {}, but {} does not exist; install the file there (it is \
                 `{}` in the VACE-Annotators download)",
                weights.description(),
                path.display(),
                weights.relative_path()
            ))
        }
    }
}
