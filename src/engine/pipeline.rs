//! The VACE generation loop (`WanVace.generate` in `wan/vace.py`, spec §6): encode the
//! prompts and the VACE context, start from noise over all latent frames (reference frames
//! included), run the solver with classifier-free guidance (two DiT passes per step), drop
//! the reference frames and decode.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::engine::conditioning::{VaceInputs, vace_context};
use crate::engine::dit::{TextCondition, TimeCondition, VaceCondition, WanModel};
use crate::engine::noise;
use crate::engine::scheduler::{self, SolverKind};
use crate::engine::text::{DEFAULT_NEGATIVE_PROMPT, TextEncoder};
use crate::engine::vae::WanVae;

/// Sampling settings; the defaults are the reference's for VACE (`generate.py`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    pub steps: usize,
    /// Time shift of the sigma schedule (16 for VACE, 5 for plain T2V).
    pub shift: f64,
    /// Classifier-free guidance scale.
    pub guide_scale: f64,
    /// Scale of the VACE hints.
    pub context_scale: f64,
    pub solver: SolverKind,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            steps: 50,
            shift: 16.0,
            guide_scale: 5.0,
            context_scale: 1.0,
            solver: SolverKind::UniPc,
        }
    }
}

/// The stages of a generation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    EncodeText,
    EncodeVideo,
    Denoise,
    DecodeVideo,
}

/// Progress reported while generating; the observer answers `Break` to cancel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    PhaseStarted(Phase),
    /// A denoising step finished (`step` counts from 1).
    Step {
        step: usize,
        total: usize,
        elapsed: Duration,
    },
    PhaseFinished(Phase, Duration),
}

/// Why a generation stopped without a result.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("generation cancelled")]
    Cancelled,
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// One generation's inputs, prepared in pixel space.
#[derive(Debug, Clone)]
pub struct GenerationRequest {
    pub prompt: String,
    /// `None` uses the reference's default negative prompt.
    pub negative_prompt: Option<String>,
    pub inputs: VaceInputs,
    pub params: SamplingParams,
    pub seed: u64,
}

/// The result of a generation.
#[derive(Debug, Clone)]
pub struct Generation {
    /// Final latent `[z, n_ref + t, h, w]`, reference frames included.
    pub latent: Tensor,
    /// Decoded video `[3, T, H, W]` in [−1, 1].
    pub video: Tensor,
    /// Wall time of each phase.
    pub timings: Vec<(Phase, Duration)>,
}

/// The three models of a VACE checkpoint, ready to generate.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub dit: WanModel,
    pub vae: WanVae,
    pub text: TextEncoder,
}

type Observer<'a> = &'a mut dyn FnMut(Event) -> ControlFlow<()>;

/// Runs `work` as `phase`, reporting its start and duration.
fn phase<T>(
    phase: Phase,
    observer: Observer,
    timings: &mut Vec<(Phase, Duration)>,
    work: impl FnOnce(Observer) -> Result<T, Error>,
) -> Result<T, Error> {
    if observer(Event::PhaseStarted(phase)).is_break() {
        return Err(Error::Cancelled);
    }
    let start = Instant::now();
    let out = work(observer)?;
    let took = start.elapsed();
    timings.push((phase, took));
    if observer(Event::PhaseFinished(phase, took)).is_break() {
        return Err(Error::Cancelled);
    }
    Ok(out)
}

impl Pipeline {
    /// The dtype the DiT's linear layers compute in.
    pub fn dit_dtype(&self) -> DType {
        self.dit.dtype()
    }

    /// Generates one video. The observer sees every phase and step and may cancel between
    /// steps.
    pub fn generate(
        &self,
        request: &GenerationRequest,
        observer: Observer,
    ) -> Result<Generation, Error> {
        let mut timings = Vec::new();
        let negative = request
            .negative_prompt
            .as_deref()
            .unwrap_or(DEFAULT_NEGATIVE_PROMPT);
        let (context, context_null) = phase(Phase::EncodeText, observer, &mut timings, |_| {
            let mut states = self
                .text
                .encode_all(&[&request.prompt, negative])?
                .into_iter();
            match (states.next(), states.next()) {
                (Some(context), Some(null)) => Ok((context, null)),
                _ => Err(candle_core::Error::Msg("prompt states missing".into()).into()),
            }
        })?;
        let z = phase(Phase::EncodeVideo, observer, &mut timings, |_| {
            Ok(vace_context(&self.vae, &request.inputs)?)
        })?;
        let (_, frames, h, w) = z.dims4()?;
        let noise = noise::gaussian(
            (self.vae.config().z_dim, frames, h, w),
            request.seed,
            self.dit.device(),
        )?;
        let latent = phase(Phase::Denoise, observer, &mut timings, |observer| {
            sample(
                &self.dit,
                &z,
                &context,
                &context_null,
                noise,
                &request.params,
                observer,
            )
        })?;
        let video = phase(Phase::DecodeVideo, observer, &mut timings, |_| {
            Ok(decode(&self.vae, &latent, request.inputs.refs.len())?)
        })?;
        Ok(Generation {
            latent,
            video,
            timings,
        })
    }
}

/// Denoises `noise` `[z, F, h, w]` under the VACE context `z` with classifier-free guidance
/// between the prompt states `context` and the negative prompt states `context_null`.
pub fn sample(
    dit: &WanModel,
    z: &Tensor,
    context: &Tensor,
    context_null: &Tensor,
    noise: Tensor,
    params: &SamplingParams,
    observer: Observer,
) -> Result<Tensor, Error> {
    let mut solver = scheduler::build(params.solver, params.steps, params.shift);
    let timesteps = solver.schedule().timesteps.clone();
    let vace = dit.vace_condition(z)?;
    let cond = dit.text_condition(context)?;
    let uncond = dit.text_condition(context_null)?;
    let mut latent = noise.to_device(dit.device())?.to_dtype(DType::F32)?;
    let start = Instant::now();
    for (i, &t) in timesteps.iter().enumerate() {
        let time = dit.time_condition(t as f64)?;
        let velocity = guided_velocity(
            dit,
            &latent,
            &time,
            [&cond, &uncond],
            &vace,
            params.context_scale,
            params.guide_scale,
        )?;
        latent = solver.step(&velocity, &latent)?;
        let event = Event::Step {
            step: i + 1,
            total: timesteps.len(),
            elapsed: start.elapsed(),
        };
        if observer(event).is_break() {
            return Err(Error::Cancelled);
        }
    }
    Ok(latent)
}

/// Classifier-free guidance: `v_uncond + guide_scale · (v_cond − v_uncond)`, both passes
/// sharing what precedes the prompt ([`WanModel::forward_prompts`]).
pub fn guided_velocity(
    dit: &WanModel,
    latent: &Tensor,
    time: &TimeCondition,
    [cond, uncond]: [&TextCondition; 2],
    vace: &VaceCondition,
    context_scale: f64,
    guide_scale: f64,
) -> candle_core::Result<Tensor> {
    let [v_cond, v_uncond]: [Tensor; 2] = dit
        .forward_prompts(latent, time, &[cond, uncond], vace, context_scale)?
        .try_into()
        .map_err(|_| candle_core::Error::Msg("expected two velocities".into()))?;
    &v_uncond + ((v_cond - &v_uncond)? * guide_scale)?
}

/// Drops the `n_ref` reference frames of a final latent and decodes it to `[3, T, H, W]`.
pub fn decode(vae: &WanVae, latent: &Tensor, n_ref: usize) -> candle_core::Result<Tensor> {
    let frames = latent.dim(1)?;
    vae.decode(&latent.narrow(1, n_ref, frames - n_ref)?)
}
