//! The causal 3-D convolution of the Wan VAE and the per-layer frame caches that make
//! chunked processing equal to one pass over the whole video (`CausalConv3d` and the
//! `feat_cache` logic of `wan/modules/vae.py`; spec §5.3).
//!
//! Activations are `[T, C, H, W]` (frames as the batch axis). candle has no conv3d: a
//! `kt×kh×kw` convolution is the sum over its `kt` temporal taps of a conv2d of the frames
//! shifted by the tap; on CUDA one implicit-GEMM kernel does it all ([`gemm_conv`]).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::gemm_conv::{self, ConvGeometry, Frames, GemmWeight};

/// Frames a causal conv keeps from one chunk for the next (`CACHE_T`).
pub const CACHE_T: usize = 2;

/// What one cached layer remembers between chunks.
#[derive(Debug, Clone, Default)]
pub enum CacheSlot {
    /// Nothing seen yet in this encode/decode.
    #[default]
    Empty,
    /// Decoder time upsampler only: the first latent frame went through without the
    /// temporal conv (the reference's `'Rep'` marker).
    FirstFrameSeen,
    /// Input frames of the layer from the previous chunk(s), `[n ≤ 2, C, H, W]`.
    Frames(Tensor),
}

/// One cache slot per cached layer of an encoder or decoder, indexed by the layer's slot id.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    slots: Vec<CacheSlot>,
}

impl FeatureCache {
    pub fn new(slot_count: usize) -> Self {
        Self {
            slots: vec![CacheSlot::Empty; slot_count],
        }
    }

    pub fn slot(&self, id: usize) -> &CacheSlot {
        &self.slots[id]
    }

    pub fn set(&mut self, id: usize, slot: CacheSlot) {
        self.slots[id] = slot;
    }
}

/// Hands out cache slot ids in construction order.
#[derive(Debug, Default)]
pub struct SlotCounter(usize);

impl SlotCounter {
    pub fn next(&mut self) -> usize {
        self.0 += 1;
        self.0 - 1
    }

    pub fn count(&self) -> usize {
        self.0
    }
}

/// The last `CACHE_T` frames of `x`, topped up with the last frame of `previous` when the
/// chunk is shorter than that (the rule every cached causal conv applies).
pub fn next_cache(x: &Tensor, previous: Option<&Tensor>) -> Result<Tensor> {
    let t = x.dim(0)?;
    let kept = x.narrow(0, t.saturating_sub(CACHE_T), t.min(CACHE_T))?;
    match previous {
        Some(previous) if kept.dim(0)? < CACHE_T => {
            let n = previous.dim(0)?;
            Tensor::cat(&[&previous.narrow(0, n - 1, 1)?, &kept], 0)
        }
        _ => Ok(kept),
    }
}

/// A causal conv's weight, in the form the device's path reads.
#[derive(Debug, Clone)]
enum ConvWeight {
    /// Per temporal tap, `[out, in, kh, kw]`, for candle's conv2d.
    Taps(Vec<Tensor>),
    /// For the implicit-GEMM kernel (CUDA).
    Gemm(GemmWeight),
}

/// A Conv3d whose temporal padding (`2·pt` frames) is all in front of the first frame.
#[derive(Debug, Clone)]
pub struct CausalConv3d {
    weight: ConvWeight,
    /// `[kt, kh, kw]`.
    kernel: [usize; 3],
    bias: Tensor,
    /// Symmetric spatial padding (the layers of this VAE use equal padding for H and W).
    pad_hw: usize,
    /// Zero frames put before the input when no cache covers them.
    causal_frames: usize,
    stride_t: usize,
    /// Cache slot of this layer when it runs chunked with a cache.
    pub slot: Option<usize>,
}

impl CausalConv3d {
    /// Loads `weight [out, in, kt, kh, kw]` and `bias [out]`. `padding` is the declared
    /// `(pt, ph, pw)`; `slots` is given for the layers that cache frames between chunks.
    pub fn new(
        in_dim: usize,
        out_dim: usize,
        kernel: [usize; 3],
        padding: [usize; 3],
        stride_t: usize,
        slots: Option<&mut SlotCounter>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let [kt, kh, kw] = kernel;
        let [pt, ph, pw] = padding;
        if ph != pw {
            candle_core::bail!(
                "causal conv with unequal spatial padding ({ph}, {pw}) is not supported"
            );
        }
        let weight = vb.get((out_dim, in_dim, kt, kh, kw), "weight")?;
        let weight = match gemm_conv::gemm_weight(&weight)? {
            Some(gemm) => ConvWeight::Gemm(gemm),
            None => ConvWeight::Taps(
                (0..kt)
                    .map(|k| weight.narrow(2, k, 1)?.squeeze(2)?.contiguous())
                    .collect::<Result<Vec<_>>>()?,
            ),
        };
        Ok(Self {
            weight,
            kernel,
            bias: vb.get(out_dim, "bias")?.reshape((1, out_dim, 1, 1))?,
            pad_hw: ph,
            causal_frames: 2 * pt,
            stride_t,
            slot: slots.map(SlotCounter::next),
        })
    }

    /// Convolves `x: [τ, C, H, W]` preceded by `cache` (frames of the previous chunk, only
    /// used when the layer pads in time); missing history is zero frames.
    pub fn forward(&self, x: &Tensor, cache: Option<&Tensor>) -> Result<Tensor> {
        let cache = cache.filter(|_| self.causal_frames > 0);
        let cached = cache.map_or(Ok(0), |c| c.dim(0))?;
        let front = self.causal_frames.saturating_sub(cached);
        let frames = front + cached + x.dim(0)?;
        let kt = self.kernel[0];
        if frames < kt {
            candle_core::bail!("causal conv needs {kt} frames, got {frames}");
        }
        let taps = match &self.weight {
            ConvWeight::Taps(taps) => taps,
            ConvWeight::Gemm(weight) => {
                let geometry = ConvGeometry {
                    kernel: self.kernel,
                    stride_t: self.stride_t,
                    stride_hw: 1,
                    pad_begin: self.pad_hw,
                    pad_end: self.pad_hw,
                };
                let mut input = Vec::with_capacity(3);
                if front > 0 {
                    input.push(Frames::Zeros(front));
                }
                input.extend(cache.map(Frames::Of));
                input.push(Frames::Of(x));
                return gemm_conv::conv(&input, weight, &self.bias.flatten_all()?, geometry);
            }
        };
        let mut parts = Vec::with_capacity(3);
        if front > 0 {
            let (_, c, h, w) = x.dims4()?;
            parts.push(Tensor::zeros((front, c, h, w), x.dtype(), x.device())?);
        }
        parts.extend(cache.cloned());
        parts.push(x.clone());
        let input = Tensor::cat(&parts, 0)?;
        let out_frames = (frames - kt) / self.stride_t + 1;
        let mut out: Option<Tensor> = None;
        for (k, tap) in taps.iter().enumerate() {
            let shifted = if self.stride_t == 1 {
                input.narrow(0, k, out_frames)?
            } else {
                let ids: Vec<u32> = (0..out_frames)
                    .map(|i| (k + i * self.stride_t) as u32)
                    .collect();
                input.index_select(&Tensor::new(ids.as_slice(), input.device())?, 0)?
            };
            let y = shifted.contiguous()?.conv2d(tap, self.pad_hw, 1, 1, 1)?;
            out = Some(match out {
                Some(acc) => (acc + y)?,
                None => y,
            });
        }
        match out {
            Some(out) => out.broadcast_add(&self.bias),
            None => candle_core::bail!("causal conv without taps"),
        }
    }

    /// Runs one chunk through the layer with its cache slot: the previous chunk's frames are
    /// prepended and this chunk's last frames are stored for the next one.
    pub fn forward_cached(&self, x: &Tensor, cache: &mut FeatureCache) -> Result<Tensor> {
        let Some(slot) = self.slot else {
            return self.forward(x, None);
        };
        let previous = match cache.slot(slot) {
            CacheSlot::Frames(frames) => Some(frames.clone()),
            _ => None,
        };
        let keep = next_cache(x, previous.as_ref())?;
        let out = self.forward(x, previous.as_ref())?;
        cache.set(slot, CacheSlot::Frames(keep));
        Ok(out)
    }
}
