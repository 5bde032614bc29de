//! Depth-Anything-V2, the network of the `depthv2` annotator (spec §6.9; `DepthV2Annotator` in
//! `vace/annotators/depth.py` and `vace/annotators/depth_anything_v2/` of ali-vilab/VACE
//! 48eb44f): relative depth of one RGB frame, and the grey control frame VACE is given.
//!
//! The pipeline is the reference's `infer_image`: [`transform`] (channel swap, bicubic resize
//! to a 518 lower bound, ImageNet normalisation), the [`dinov2`] encoder, the [`dpt_head`],
//! then bilinear resampling back to the frame size. Everything runs in f32.

pub(crate) mod checkpoint;
mod dinov2;
mod dpt_head;
mod pos_embed;
pub mod transform;

use std::path::Path;

use candle_core::{Device, Result, Tensor};
use candle_nn::VarBuilder;

use self::checkpoint::Checkpoint;
use self::dinov2::Dinov2;
use self::dpt_head::DptHead;
use self::transform::PATCH_SIZE;
use crate::media::Frame;

/// Name used in load errors.
const MODEL_NAME: &str = "Depth-Anything-V2";
/// Where the weights VACE uses come from (`vace/configs/video_preproccess.py`).
const DOWNLOAD_HINT: &str =
    "download depth/depth_anything_v2_vitl.pth of ali-vilab/VACE-Annotators";
/// The tensor every Depth-Anything-V2 checkpoint has; its width gives the encoder size.
const PATCH_EMBED_KEY: &str = "pretrained.patch_embed.proj.weight";

/// The DINOv2 size under the depth head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoder {
    /// ViT-S/14: width 384, 12 blocks, 6 heads.
    Vits,
    /// ViT-B/14: width 768, 12 blocks, 12 heads.
    Vitb,
    /// ViT-L/14: width 1024, 24 blocks, 16 heads (the one VACE ships).
    Vitl,
    /// ViT-g/14: width 1536, 40 blocks, 24 heads, SwiGLU feed-forward.
    Vitg,
}

impl Encoder {
    /// Token width.
    pub fn embed_dim(self) -> usize {
        match self {
            Self::Vits => 384,
            Self::Vitb => 768,
            Self::Vitl => 1024,
            Self::Vitg => 1536,
        }
    }

    /// Number of transformer blocks.
    pub fn depth(self) -> usize {
        match self {
            Self::Vits | Self::Vitb => 12,
            Self::Vitl => 24,
            Self::Vitg => 40,
        }
    }

    /// Attention heads per block.
    pub fn num_heads(self) -> usize {
        match self {
            Self::Vits => 6,
            Self::Vitb => 12,
            Self::Vitl => 16,
            Self::Vitg => 24,
        }
    }

    /// The blocks whose outputs feed the depth head (`intermediate_layer_idx` in `dpt.py`).
    pub fn intermediate_layers(self) -> [usize; 4] {
        match self {
            Self::Vits | Self::Vitb => [2, 5, 8, 11],
            Self::Vitl => [4, 11, 17, 23],
            Self::Vitg => [9, 19, 29, 39],
        }
    }

    /// Whether the feed-forward layers are SwiGLU (`ffn_layer="swiglufused"` for ViT-g).
    pub fn uses_swiglu(self) -> bool {
        self == Self::Vitg
    }

    fn from_embed_dim(dim: usize) -> Option<Self> {
        [Self::Vits, Self::Vitb, Self::Vitl, Self::Vitg]
            .into_iter()
            .find(|e| e.embed_dim() == dim)
    }
}

/// The sizes of a Depth-Anything-V2 model (`DepthAnythingV2(encoder, features, out_channels)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DepthAnythingConfig {
    /// The encoder size.
    pub encoder: Encoder,
    /// Width of the DPT fusion path.
    pub features: usize,
    /// Channels of the four reassembled token maps, finest first.
    pub out_channels: [usize; 4],
}

impl DepthAnythingConfig {
    /// `depth_anything_v2_vits.pth` (Depth-Anything-V2's `model_configs`).
    pub fn vits() -> Self {
        Self {
            encoder: Encoder::Vits,
            features: 64,
            out_channels: [48, 96, 192, 384],
        }
    }

    /// `depth_anything_v2_vitb.pth`.
    pub fn vitb() -> Self {
        Self {
            encoder: Encoder::Vitb,
            features: 128,
            out_channels: [96, 192, 384, 768],
        }
    }

    /// `depth_anything_v2_vitl.pth`, what `DepthV2Annotator` builds.
    pub fn vitl() -> Self {
        Self {
            encoder: Encoder::Vitl,
            features: 256,
            out_channels: [256, 512, 1024, 1024],
        }
    }

    /// `depth_anything_v2_vitg.pth`.
    pub fn vitg() -> Self {
        Self {
            encoder: Encoder::Vitg,
            features: 384,
            out_channels: [1536, 1536, 1536, 1536],
        }
    }

    /// Reads the sizes off a checkpoint's tensor shapes.
    fn from_checkpoint(checkpoint: &Checkpoint, path: &Path) -> Result<Self> {
        let not_depth_anything = |what: String| {
            candle_core::Error::Msg(format!(
                "{}: not a {MODEL_NAME} checkpoint ({what}); {DOWNLOAD_HINT}",
                path.display()
            ))
        };
        let leading = |name: &str| {
            checkpoint
                .shape(name)
                .and_then(|shape| shape.first().copied())
                .ok_or_else(|| not_depth_anything(format!("it has no tensor `{name}`")))
        };
        let dim = leading(PATCH_EMBED_KEY)?;
        let encoder = Encoder::from_embed_dim(dim).ok_or_else(|| {
            not_depth_anything(format!(
                "encoder width {dim} is none of ViT-S/B/L/g's 384/768/1024/1536"
            ))
        })?;
        let features = leading("depth_head.scratch.layer1_rn.weight")?;
        let mut out_channels = [0; 4];
        for (i, channels) in out_channels.iter_mut().enumerate() {
            *channels = leading(&format!("depth_head.projects.{i}.weight"))?;
        }
        Ok(Self {
            encoder,
            features,
            out_channels,
        })
    }
}

/// Depth-Anything-V2: DINOv2 encoder (`pretrained.*`) and DPT head (`depth_head.*`).
#[derive(Debug, Clone)]
pub struct DepthAnythingV2 {
    config: DepthAnythingConfig,
    pretrained: Dinov2,
    depth_head: DptHead,
    device: Device,
}

impl DepthAnythingV2 {
    /// Loads a checkpoint (`.pth` as the reference ships it, e.g.
    /// `depth_anything_v2_vitl.pth`, or `.safetensors`), inferring the encoder size
    /// (vits/vitb/vitl/vitg) from tensor shapes. Weights are f32 on `device`.
    ///
    /// Fails with a message naming the file when it is missing, unreadable, not a
    /// Depth-Anything-V2 checkpoint, or lacks a tensor.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let checkpoint = Checkpoint::open(path, MODEL_NAME, DOWNLOAD_HINT)?;
        let config = DepthAnythingConfig::from_checkpoint(&checkpoint, path)?;
        checkpoint.build(device, |vb| Self::new(config, vb))
    }

    /// Builds the model from `vb`, whose names are the reference's state-dict keys
    /// (`pretrained.blocks.0.attn.qkv.weight`, `depth_head.scratch.refinenet1.out_conv.bias`).
    pub fn new(config: DepthAnythingConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            pretrained: Dinov2::new(config.encoder, vb.pp("pretrained"))?,
            depth_head: DptHead::new(&config, vb.pp("depth_head"))?,
            device: vb.device().clone(),
            config,
        })
    }

    /// The model's sizes.
    pub fn config(&self) -> &DepthAnythingConfig {
        &self.config
    }

    /// Raw relative depth (larger is nearer) at the frame's size: `height * width` values,
    /// row-major, what the reference's `infer_image` returns for this frame.
    pub fn infer(&self, frame: &Frame) -> Result<Vec<f32>> {
        let input = transform::to_network_input(frame, &self.device)?;
        let depth = self.forward(&input)?; // (1, 1, 14 * patch_h, 14 * patch_w)
        depth
            .upsample_bilinear2d(frame.height, frame.width, true)?
            .flatten_all()?
            .to_vec1()
    }

    /// The control frame of the reference's `DepthV2Annotator.forward`: depth min-max
    /// normalised per frame, ×255, truncated to u8, in three identical channels, at the
    /// frame's size. A constant depth map (0/0 in the reference) gives black.
    pub fn depth_frame(&self, frame: &Frame) -> Result<Frame> {
        let depth = self.infer(frame)?;
        Ok(Self::control_frame(&depth, frame.width, frame.height))
    }

    /// The second half of [`Self::depth_frame`], for a depth map [`Self::infer`] already
    /// gave: `(d - min) / max(d - min) * 255`, clipped and truncated as `astype(np.uint8)`
    /// does, computed in f32 like the reference's NumPy arrays. `depth` holds
    /// `width * height` values, row-major.
    pub fn control_frame(depth: &[f32], width: usize, height: usize) -> Frame {
        let min = depth.iter().copied().fold(f32::INFINITY, f32::min);
        let range = depth.iter().map(|&d| d - min).fold(0.0, f32::max);
        let rgb = depth
            .iter()
            .flat_map(|&d| {
                // A NaN (constant map) casts to 0.
                let grey = ((d - min) / range * 255.0).clamp(0.0, 255.0) as u8;
                [grey; 3]
            })
            .collect();
        Frame { width, height, rgb }
    }

    /// `DepthAnythingV2.forward`: `(batch, 3, h, w)` normalised input with sides multiple of
    /// 14 → `(batch, 1, h, w)` non-negative depth.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let layers = self.config.encoder.intermediate_layers();
        let tokens = self.pretrained.intermediate_layers(x, &layers)?;
        self.depth_head
            .forward(&tokens, h / PATCH_SIZE, w / PATCH_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frame_truncates_and_handles_a_flat_map() {
        let frame = DepthAnythingV2::control_frame(&[1.0, 2.0, 1.5, 1.999], 2, 2);
        assert_eq!(
            frame.rgb,
            [0, 0, 0, 255, 255, 255, 127, 127, 127, 254, 254, 254]
        );
        assert_eq!(DepthAnythingV2::control_frame(&[3.0; 4], 2, 2).rgb, [0; 12]);
    }
}
