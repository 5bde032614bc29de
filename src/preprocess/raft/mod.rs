//! RAFT optical flow for the `flow` annotator (being written; this stub keeps the crate
//! building and says so).

use std::path::Path;

use candle_core::{Device, Result};
use candle_nn::VarBuilder;

use crate::media::Frame;

/// RAFT (princeton-vl), the reference's flow network.
pub struct Raft;

impl Raft {
    pub fn load(path: &Path, _device: &Device) -> Result<Self> {
        candle_core::bail!("{}: RAFT is not ported yet", path.display())
    }

    pub fn new(_vb: VarBuilder) -> Result<Self> {
        candle_core::bail!("RAFT is not ported yet")
    }

    pub fn flow(&self, _a: &Frame, _b: &Frame) -> Result<Vec<f32>> {
        candle_core::bail!("RAFT is not ported yet")
    }

    pub fn flow_frames(&self, _frames: &[Frame]) -> Result<Vec<Frame>> {
        candle_core::bail!("RAFT is not ported yet")
    }
}

/// The colour-wheel picture of a flow field.
pub fn flow_to_image(_flow: &[f32], width: usize, height: usize) -> Frame {
    Frame::filled(width, height, [255; 3])
}
