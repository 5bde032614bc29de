//! The Wan2.1 diffusion transformer with the VACE branch (`VaceWanModel`,
//! `wan/modules/model.py` and `wan/modules/vace_model.py` at Wan-Video/Wan2.1 `9737cba9`).
//!
//! Latents are `[C, F, H, W]` without a batch axis; tokens are `[1, L, dim]`, frame-major.
//! A forward pass: patch-embed the noisy latent, run the VACE blocks over
//! `before_proj(vace tokens) + tokens` to get one hint per VACE block, run the main blocks
//! adding `context_scale · hint` after each block listed in `vace_layers`, then the
//! modulated head and unpatchify. What depends only on the prompt, the VACE context or the
//! timestep is computed once by [`WanModel::text_condition`], [`WanModel::vace_condition`]
//! and [`WanModel::time_condition`].

mod block;
mod embed;
mod rope;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

pub use block::{AttentionBlock, CrossKv, SelfAttended};
pub use embed::{PatchEmbedding, TimeCondition, sinusoidal_embedding};
pub use rope::{Rope, TokenGrid};

use crate::engine::config::DitConfig;
use crate::engine::fused_ops::FusedOps;
use crate::engine::linear::Linear;
use crate::engine::norm::layer_norm;
use crate::engine::regions::region;
use block::modulate;
use embed::{TextEmbedding, TimeEmbedding, unpatchify};

/// The embedded prompt and every block's cross-attention keys/values for it.
#[derive(Debug, Clone)]
pub struct TextCondition {
    /// `[text_len, dim]`: the text-embedding MLP over the zero-padded context.
    pub embedded: Tensor,
    blocks: Vec<CrossKv>,
    vace_blocks: Vec<CrossKv>,
}

/// The VACE context of one run, embedded: `before_proj(vace_patch_embedding(z))`, plus the
/// token grid and its RoPE tables.
#[derive(Debug, Clone)]
pub struct VaceCondition {
    /// `[1, L, dim]`.
    tokens: Tensor,
    pub rope: Rope,
}

/// Intermediate values of one forward pass, for parity checks against the reference.
#[derive(Debug, Clone, Default)]
pub struct DitTrace {
    /// Patch-embedded latent `[dim, F', H', W']`.
    pub patch_embed: Option<Tensor>,
    /// Flattened `e0`, `[6·dim]`.
    pub time_projection: Option<Tensor>,
    /// `[text_len, dim]`.
    pub text_embed: Option<Tensor>,
    /// `after_proj` output of each VACE block, `[L, dim]`.
    pub hints: Vec<Tensor>,
    /// Residual stream after each main block, `[L, dim]`.
    pub block_outs: Vec<Tensor>,
}

/// A VACE block: an attention block with `before_proj` (first block only) and `after_proj`.
#[derive(Debug, Clone)]
struct VaceBlock {
    block: AttentionBlock,
    before_proj: Option<Linear>,
    after_proj: Linear,
}

/// `head`: modulated LayerNorm and a linear layer to `out_dim · pt · ph · pw`, in f32.
#[derive(Debug, Clone)]
struct Head {
    /// `[1, 2, dim]`: shift then scale.
    modulation: Tensor,
    head: Linear,
    eps: f64,
}

impl Head {
    fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        let vb = vb.to_dtype(DType::F32);
        let out = cfg.out_dim * cfg.patch_size.iter().product::<usize>();
        Ok(Self {
            modulation: vb.get((1, 2, cfg.dim), "modulation")?,
            head: Linear::new(cfg.dim, out, vb.pp("head"))?,
            eps: cfg.eps,
        })
    }

    /// `x: [1, L, dim]`, `e: [1, dim]` (the time embedding itself, not `e0`).
    fn forward(&self, x: &Tensor, e: &Tensor) -> Result<Tensor> {
        let m = self
            .modulation
            .broadcast_add(&e.unsqueeze(1)?)?
            .chunk(2, 1)?;
        let y = match FusedOps::layer_norm_affine_f32(x, &(&m[1] + 1.0)?, &m[0], self.eps)? {
            Some(y) => y,
            None => modulate(&layer_norm(x, self.eps)?, &m[0], &m[1])?,
        };
        self.head.forward(&y)
    }
}

/// How a DiT on `device` computing in `dtype` forms its attention and linear layers: the
/// dtype itself, or the 8-bit paths switched on from the environment
/// (`VACED_ATTENTION_PRECISION=8bit`, `VACED_LINEAR_PRECISION=fp8`), which apply to CUDA
/// bf16 runs only. Reports and benchmarks record it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Numerics {
    /// `bf16`, `f32`, … or `8bit` (INT8 q·kᵀ, FP8 p·v).
    pub attention: String,
    /// `bf16`, `f32`, … or `fp8` (per-token and per-channel scales).
    pub linear_products: String,
}

impl Numerics {
    pub fn of(device: &Device, dtype: DType) -> Self {
        let name = format!("{dtype:?}").to_lowercase();
        let gpu_bf16 = device.is_cuda() && dtype == DType::BF16;
        let pick = |on: bool, switched: &str| {
            if gpu_bf16 && on {
                switched.to_owned()
            } else {
                name.clone()
            }
        };
        Self {
            attention: pick(crate::engine::attention::eight_bit_requested(), "8bit"),
            linear_products: pick(crate::engine::linear::fp8_requested(), "fp8"),
        }
    }
}

/// The VACE diffusion transformer.
#[derive(Debug, Clone)]
pub struct WanModel {
    cfg: DitConfig,
    patch_embedding: PatchEmbedding,
    text_embedding: TextEmbedding,
    time_embedding: TimeEmbedding,
    blocks: Vec<AttentionBlock>,
    head: Head,
    vace_patch_embedding: PatchEmbedding,
    vace_blocks: Vec<VaceBlock>,
    /// For each main block, the index of the hint added after it.
    hint_after_block: Vec<Option<usize>>,
    device: Device,
}

impl WanModel {
    /// Builds the model from weights named as in `diffusion_pytorch_model*.safetensors`.
    /// Linear layers take the dtype of `vb`; modulation, norms, time MLPs and head stay f32.
    pub fn new(cfg: &DitConfig, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(candle_core::Error::Msg)?;
        let numerics = Numerics::of(vb.device(), vb.dtype());
        if numerics.attention == "8bit" || numerics.linear_products == "fp8" {
            tracing::info!(
                attention = %numerics.attention,
                linear_products = %numerics.linear_products,
                "DiT with 8-bit paths switched on (faster, slightly less exact)"
            );
        }
        let d = cfg.dim;
        let vace_layers = cfg.vace_layers();
        let blocks = (0..cfg.num_layers)
            .map(|i| AttentionBlock::new(cfg, vb.pp("blocks").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        let vace_blocks = (0..vace_layers.len())
            .map(|j| {
                let vb = vb.pp("vace_blocks").pp(j);
                Ok(VaceBlock {
                    block: AttentionBlock::new(cfg, vb.clone())?,
                    before_proj: (j == 0)
                        .then(|| Linear::new(d, d, vb.pp("before_proj")))
                        .transpose()?,
                    // bf16 even with FP8 products: a hint joins the residual stream as it is,
                    // so e4m3's rounding would reach the output undamped (the fixture's DiT
                    // output: 2.1e-2 with FP8 hints, 6.4e-3 without).
                    after_proj: Linear::new(d, d, vb.pp("after_proj"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let hint_after_block = (0..cfg.num_layers)
            .map(|i| vace_layers.iter().position(|&l| l == i))
            .collect();
        Ok(Self {
            cfg: cfg.clone(),
            patch_embedding: PatchEmbedding::new(
                cfg.in_dim,
                d,
                cfg.patch_size,
                vb.pp("patch_embedding"),
            )?,
            text_embedding: TextEmbedding::new(
                cfg.text_dim,
                d,
                cfg.text_len,
                vb.pp("text_embedding"),
            )?,
            time_embedding: TimeEmbedding::new(cfg.freq_dim, d, vb.clone())?,
            blocks,
            head: Head::new(cfg, vb.pp("head"))?,
            vace_patch_embedding: PatchEmbedding::new(
                cfg.vace_in_dim(),
                d,
                cfg.patch_size,
                vb.pp("vace_patch_embedding"),
            )?,
            vace_blocks,
            hint_after_block,
            device: vb.device().clone(),
        })
    }

    pub fn config(&self) -> &DitConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the linear layers (the compute dtype).
    pub fn dtype(&self) -> DType {
        self.patch_embedding.dtype()
    }

    /// Embeds a prompt's encoder states `[Lc, text_dim]` (trimmed to the real tokens) and
    /// precomputes every block's cross-attention keys and values.
    pub fn text_condition(&self, context: &Tensor) -> Result<TextCondition> {
        let embedded = self
            .text_embedding
            .forward(&context.to_device(&self.device)?)?;
        let batched = embedded.unsqueeze(0)?;
        Ok(TextCondition {
            blocks: self
                .blocks
                .iter()
                .map(|b| b.cross_kv(&batched))
                .collect::<Result<_>>()?,
            vace_blocks: self
                .vace_blocks
                .iter()
                .map(|b| b.block.cross_kv(&batched))
                .collect::<Result<_>>()?,
            embedded,
        })
    }

    /// Embeds the VACE context `z: [vace_in_dim, F, H, W]` and builds the run's RoPE tables.
    pub fn vace_condition(&self, z: &Tensor) -> Result<VaceCondition> {
        let z = z.to_device(&self.device)?;
        let grid = self.vace_patch_embedding.grid(&z)?;
        let tokens = self.vace_patch_embedding.forward(&z)?.unsqueeze(0)?;
        let before_proj = self.vace_blocks[0]
            .before_proj
            .as_ref()
            .ok_or_else(|| candle_core::Error::Msg("vace_blocks.0 has no before_proj".into()))?;
        Ok(VaceCondition {
            tokens: before_proj.forward(&tokens)?.to_dtype(DType::F32)?,
            rope: Rope::new(grid, self.cfg.head_dim(), &self.device)?,
        })
    }

    /// The time embedding of scheduler timestep `t`.
    pub fn time_condition(&self, t: f64) -> Result<TimeCondition> {
        self.time_embedding.forward(t, &self.device)
    }

    /// Predicts the flow velocity `[out_dim, F, H, W]` for the noisy latent `x: [in_dim, F, H, W]`.
    pub fn forward_conditioned(
        &self,
        x: &Tensor,
        time: &TimeCondition,
        text: &TextCondition,
        vace: &VaceCondition,
        context_scale: f64,
    ) -> Result<Tensor> {
        only_one(self.run(x, time, &[text], vace, context_scale, None)?)
    }

    /// The velocities under each of `texts` for one latent and timestep (a guided step's
    /// prompt and negative prompt): each as [`Self::forward_conditioned`] would give it,
    /// with what the passes share computed once. That is the patch embedding and the first
    /// block of each branch up to its cross-attention, before the prompt is first read.
    pub fn forward_prompts(
        &self,
        x: &Tensor,
        time: &TimeCondition,
        texts: &[&TextCondition],
        vace: &VaceCondition,
        context_scale: f64,
    ) -> Result<Vec<Tensor>> {
        self.run(x, time, texts, vace, context_scale, None)
    }

    /// One forward pass from raw inputs: `x: [in_dim, F, H, W]`, the timestep, the VACE
    /// context `[vace_in_dim, F, H, W]` and the prompt's encoder states `[Lc, text_dim]`.
    pub fn forward(
        &self,
        x: &Tensor,
        t: f64,
        vace_context: &Tensor,
        context: &Tensor,
        context_scale: f64,
    ) -> Result<Tensor> {
        self.forward_traced(x, t, vace_context, context, context_scale, None)
    }

    /// [`WanModel::forward`], recording intermediates into `trace` when given.
    pub fn forward_traced(
        &self,
        x: &Tensor,
        t: f64,
        vace_context: &Tensor,
        context: &Tensor,
        context_scale: f64,
        mut trace: Option<&mut DitTrace>,
    ) -> Result<Tensor> {
        let time = self.time_condition(t)?;
        let text = self.text_condition(context)?;
        let vace = self.vace_condition(vace_context)?;
        if let Some(trace) = trace.as_deref_mut() {
            trace.time_projection = Some(time.e0.flatten_all()?);
            trace.text_embed = Some(text.embedded.clone());
        }
        only_one(self.run(x, &time, &[&text], &vace, context_scale, trace)?)
    }

    /// One velocity per prompt of `texts`; `trace` records the first prompt's pass.
    fn run(
        &self,
        x: &Tensor,
        time: &TimeCondition,
        texts: &[&TextCondition],
        vace: &VaceCondition,
        context_scale: f64,
        mut trace: Option<&mut DitTrace>,
    ) -> Result<Vec<Tensor>> {
        let x = x.to_device(&self.device)?;
        let grid = self.patch_embedding.grid(&x)?;
        if grid != vace.rope.grid {
            candle_core::bail!(
                "latent grid {grid:?} differs from the VACE context grid {:?}",
                vace.rope.grid
            );
        }
        let tokens = region("patch embedding", &self.device, || {
            self.patch_embedding
                .forward(&x)?
                .to_dtype(DType::F32)?
                .unsqueeze(0)
        })?;
        if let Some(trace) = trace.as_deref_mut() {
            let (f, h, w) = (grid.frames, grid.rows, grid.cols);
            trace.patch_embed = Some(tokens.squeeze(0)?.t()?.reshape((self.cfg.dim, f, h, w))?);
        }
        // Until a block's cross-attention reads the prompt, the passes compute the same: the
        // first VACE block over `before_proj(vace tokens) + tokens`, the first main block
        // over the tokens. One f32 residual stream more stays alive for it (0.2 GB at 1.3B
        // 832x480, 1.5 GB at 14B 1280x720) against a self-attention saved per branch.
        let (Some(first_vace), Some(first)) = (self.vace_blocks.first(), self.blocks.first())
        else {
            candle_core::bail!("the DiT has no blocks or no VACE blocks");
        };
        let shared = SharedHalves {
            vace: first_vace
                .block
                .attend_self(&(&vace.tokens + &tokens)?, &time.e0, &vace.rope)?,
            main: first.attend_self(&tokens, &time.e0, &vace.rope)?,
        };
        drop(tokens);
        texts
            .iter()
            .map(|text| self.finish(&shared, time, text, vace, context_scale, trace.take()))
            .collect()
    }

    /// One prompt's pass on from the shared first halves of the branches' first blocks.
    fn finish(
        &self,
        shared: &SharedHalves,
        time: &TimeCondition,
        text: &TextCondition,
        vace: &VaceCondition,
        context_scale: f64,
        mut trace: Option<&mut DitTrace>,
    ) -> Result<Tensor> {
        // VACE branch: all hints are computed before the first main block. They stay in
        // the compute dtype, as the reference's are (15 f32 hints would be 3 GB at 832x480).
        let mut hints = Vec::with_capacity(self.vace_blocks.len());
        let mut c: Option<Tensor> = None;
        for (vace_block, kv) in self.vace_blocks.iter().zip(&text.vace_blocks) {
            let next = match &c {
                None => vace_block.block.attend_text(&shared.vace, kv)?,
                Some(c) => vace_block.block.forward(c, &time.e0, &vace.rope, kv)?,
            };
            hints.push(region("vace hint: after_proj", &self.device, || {
                Hint::of(&vace_block.after_proj, &next)
            })?);
            c = Some(next);
        }
        drop(c);

        let mut x: Option<Tensor> = None;
        for ((block, kv), hint) in self
            .blocks
            .iter()
            .zip(&text.blocks)
            .zip(&self.hint_after_block)
        {
            let mut next = match &x {
                None => block.attend_text(&shared.main, kv)?,
                Some(x) => block.forward(x, &time.e0, &vace.rope, kv)?,
            };
            if let Some(j) = hint {
                next = region("vace hint: add", &self.device, || {
                    hints[*j].add_to(&next, context_scale)
                })?;
            }
            if let Some(trace) = trace.as_deref_mut() {
                trace.block_outs.push(next.squeeze(0)?);
            }
            x = Some(next);
        }
        let Some(x) = x else {
            candle_core::bail!("the DiT has no blocks");
        };
        if let Some(trace) = trace {
            trace.hints = hints
                .iter()
                .map(|h| h.value()?.to_dtype(DType::F32)?.squeeze(0))
                .collect::<Result<_>>()?;
        }

        let grid = vace.rope.grid;
        let out = region("head", &self.device, || {
            self.head.forward(&x, &time.e)?.squeeze(0)
        })?;
        unpatchify(&out, grid, self.cfg.patch_size, self.cfg.out_dim)?.to_dtype(DType::F32)
    }
}

/// The one velocity of a one-prompt run.
fn only_one(mut outs: Vec<Tensor>) -> Result<Tensor> {
    match (outs.pop(), outs.is_empty()) {
        (Some(out), true) => Ok(out),
        _ => candle_core::bail!("expected one velocity from one prompt"),
    }
}

/// What a step's prompts share: the first VACE block and the first main block up to their
/// cross-attention.
struct SharedHalves {
    vace: SelfAttended,
    main: SelfAttended,
}

/// A VACE block's hint, `after_proj(c)`, waiting to join the residual stream.
enum Hint {
    /// The finished projection, in the layer's dtype.
    Value(Tensor),
    /// On the fused GPU path: the product alone; bias, scale and residual add happen in one
    /// pass when it is added (rounded to bf16 after the bias, as the projection would be).
    Product {
        product: Tensor,
        bias: Tensor,
        ops: FusedOps,
    },
}

impl Hint {
    fn of(after_proj: &Linear, c: &Tensor) -> Result<Self> {
        if let Some(bias) = after_proj.bias()
            && let Some(ops) = FusedOps::for_activations(c, after_proj.dtype(), bias.elem_count())
        {
            return Ok(Self::Product {
                product: after_proj.product(c)?,
                bias: bias.clone(),
                ops,
            });
        }
        Ok(Self::Value(after_proj.forward(c)?))
    }

    /// `x + context_scale · hint`, in f32.
    fn add_to(&self, x: &Tensor, context_scale: f64) -> Result<Tensor> {
        match self {
            Self::Value(hint) => x + (hint.to_dtype(DType::F32)? * context_scale)?,
            Self::Product { product, bias, ops } => {
                let gate = (context_scale != 1.0)
                    .then(|| {
                        let dim = bias.elem_count();
                        Tensor::full(context_scale as f32, (1, 1, dim), x.device())
                    })
                    .transpose()?;
                ops.bias_residual(x, product, bias, gate.as_ref())
            }
        }
    }

    /// The projection's output (for traces).
    fn value(&self) -> Result<Tensor> {
        match self {
            Self::Value(hint) => Ok(hint.clone()),
            Self::Product { product, bias, ops } => ops.bias_add(product, bias),
        }
    }
}
