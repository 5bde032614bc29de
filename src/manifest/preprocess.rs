//! The `preprocess` list of `job.json`: VACE's annotator tasks (spec §6.9), named and
//! parametrised as in the reference's `vace_preproccess.py`, which prepare the source video,
//! mask and reference images from the job's media before rendering. Checking what each task
//! needs, and running it, is the `preprocess` module's work; these are only the words.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::JobPath;

/// One preprocessing task. Tasks that make a video (control, repaint, extension, layout)
/// compose pairwise as the reference's `composition` task does; `reference` tasks add
/// reference images and compose with anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "task", rename_all = "snake_case", deny_unknown_fields)]
pub enum Task {
    /// Control video: the source in grey (the reference's OpenCV BGR→GRAY on RGB frames).
    Gray {},
    /// Control video: per-frame relative depth from Depth-Anything-V2 (weights
    /// `depth/depth_anything_v2_vitl.pth` in the annotator folder; the reference's `depthv2`).
    #[serde(alias = "depthv2")]
    Depth {},
    /// Control video: line art from the reference's scribble network (weights
    /// `scribble/anime_style/netG_A_latest.pth` in the annotator folder).
    Scribble {},
    /// Control video: dark lines on white from classical edge detection, no network and no
    /// weights. An approximation of `scribble`'s style, not the reference's annotator.
    ScribbleEdges(EdgeOptions),
    /// Control video: body and face skeletons on black, from DWPose (weights
    /// `pose/yolox_l.onnx` and `pose/dw-ll_ucoco_384.onnx` in the annotator folder).
    Pose {},
    /// Control video: body skeletons only, from DWPose (the same weights as `pose`).
    PoseBody {},
    /// Control video: optical flow between consecutive frames from RAFT, drawn on the colour
    /// wheel (weights `flow/raft-things.pth` in the annotator folder). Frames need sides of
    /// at least 121 px.
    Flow {},
    /// Repaint a region of the source video: filled with grey 128, mask white there.
    Inpainting(InpaintingOptions),
    /// Enlarge the canvas of the source video and generate the new border.
    Outpainting(OutpaintingOptions),
    /// Cut a border inside the source video's frame and generate it again.
    OutpaintingInner(OutpaintingOptions),
    /// Extend in time: keep given frames or clips, generate the rest.
    Extension(ExtensionOptions),
    /// Control video: a box moving linearly from one position to another on white.
    LayoutBbox(LayoutOptions),
    /// Prepare a reference image: the subject on white, cropped to it.
    Reference(ReferenceOptions),
}

impl Task {
    /// The task's name as written in `job.json`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Gray {} => "gray",
            Self::Depth {} => "depth",
            Self::Scribble {} => "scribble",
            Self::ScribbleEdges(_) => "scribble_edges",
            Self::Pose {} => "pose",
            Self::PoseBody {} => "pose_body",
            Self::Flow {} => "flow",
            Self::Inpainting(_) => "inpainting",
            Self::Outpainting(_) => "outpainting",
            Self::OutpaintingInner(_) => "outpainting_inner",
            Self::Extension(_) => "extension",
            Self::LayoutBbox(_) => "layout_bbox",
            Self::Reference(_) => "reference",
        }
    }
}

impl Task {
    /// The files the task names, in the order written.
    pub fn files(&self) -> Vec<&JobPath> {
        match self {
            Self::Extension(o) => [&o.image, &o.last_image, &o.last_clip]
                .into_iter()
                .flatten()
                .collect(),
            Self::Reference(o) => std::iter::once(&o.image).chain(&o.mask).collect(),
            _ => Vec::new(),
        }
    }
}

/// A box in pixels, `[x1, y1, x2, y2]`: left, top, right, bottom (right and bottom exclusive).
pub type PixelBox = [f64; 4];

/// Options of `scribble_edges`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EdgeOptions {
    /// Line density from 0 (only the strongest edges) to 1 (every texture edge).
    #[serde(default = "default_edge_detail")]
    pub detail: f64,
}

impl Default for EdgeOptions {
    fn default() -> Self {
        Self {
            detail: default_edge_detail(),
        }
    }
}

fn default_edge_detail() -> f64 {
    0.5
}

/// Where `inpainting` repaints. Exactly one of: `inputs.mask` (neither `box` nor
/// `boxes` given), `box`, or `boxes`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InpaintingOptions {
    /// One box for every frame, in source-video pixels.
    #[serde(default, rename = "box", skip_serializing_if = "Option::is_none")]
    pub fixed_box: Option<PixelBox>,
    /// A box that moves: keyframes in output-frame order, linearly interpolated between
    /// them and held before the first and after the last. Boxes are in source-video pixels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub boxes: Vec<BoxKeyframe>,
}

/// A box at one output frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BoxKeyframe {
    /// Output frame index, from 0.
    pub frame: usize,
    #[serde(rename = "box")]
    pub pixel_box: PixelBox,
}

/// A side of the frame.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Left,
    Right,
    Up,
    Down,
}

/// Options of `outpainting` and `outpainting_inner`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutpaintingOptions {
    /// Sides to generate.
    #[serde(default = "default_directions")]
    pub direction: Vec<Direction>,
    /// Border width on each chosen side as a fraction of the source width (left, right) or
    /// height (up, down).
    #[serde(default = "default_expand_ratio")]
    pub expand_ratio: f64,
}

impl Default for OutpaintingOptions {
    fn default() -> Self {
        Self {
            direction: default_directions(),
            expand_ratio: default_expand_ratio(),
        }
    }
}

fn default_directions() -> Vec<Direction> {
    vec![Direction::Left, Direction::Right]
}

fn default_expand_ratio() -> f64 {
    0.25
}

/// Which frames `extension` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExtensionMode {
    /// `image` first, then generated frames.
    FirstFrame,
    /// Generated frames, then `image` last.
    LastFrame,
    /// `image` first, generated frames, `last_image` last.
    FirstLastFrame,
    /// The end of `inputs.video` first, then generated frames: continues the clip.
    FirstClip,
    /// Generated frames, then the start of `inputs.video`: leads into the clip.
    LastClip,
    /// The end of `inputs.video`, generated frames, the start of `last_clip`: a bridge.
    FirstLastClip,
}

impl ExtensionMode {
    /// Whether kept frames come from videos rather than images.
    pub fn is_clip(self) -> bool {
        matches!(self, Self::FirstClip | Self::LastClip | Self::FirstLastClip)
    }
}

/// Options of `extension`. The result has the job's `frames` frames (default 81, tiny 17):
/// the kept ones in place, grey 127 with mask 255 everywhere else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionOptions {
    pub mode: ExtensionMode,
    /// The kept image of `first_frame` and `last_frame`, the first of `first_last_frame`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub image: Option<JobPath>,
    /// The last image of `first_last_frame`, letterboxed on white into `image`'s size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub last_image: Option<JobPath>,
    /// The second clip of `first_last_clip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub last_clip: Option<JobPath>,
    /// Clip modes: frames kept from each clip. Default: what the clip gives, at most
    /// half of the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_frames: Option<usize>,
}

/// Options of `layout_bbox`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayoutOptions {
    /// Start and end box in output-frame pixels. As in the reference the box moves by
    /// (end − start)/frames per frame, so it stops one step short of the end box.
    pub boxes: [PixelBox; 2],
    /// Colour of the 2-pixel outline, `[r, g, b]`.
    #[serde(default)]
    pub color: [u8; 3],
}

/// How `reference` finds the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceMode {
    /// The image as it is.
    #[default]
    Plain,
    /// `mask` (non-zero = subject): the subject on white, cropped to it.
    Mask,
    /// `box`: the box's content, cropped.
    Box,
    /// U²-Net saliency. Not available in this build.
    Salient,
}

/// Options of `reference`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferenceOptions {
    /// The image (PNG, JPEG, WebP).
    #[schemars(with = "String")]
    pub image: JobPath,
    #[serde(default)]
    pub mode: ReferenceMode,
    /// `mask` mode: an image the size of `image`, non-zero over the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub mask: Option<JobPath>,
    /// `box` mode: the subject's box in the image's pixels.
    #[serde(default, rename = "box", skip_serializing_if = "Option::is_none")]
    pub subject_box: Option<PixelBox>,
}
