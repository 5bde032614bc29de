//! Flow-matching solvers of the reference pipeline: UniPC (the default) and DPM++, with the
//! shifted sigma schedules they are set up with (`wan/utils/fm_solvers_unipc.py`,
//! `wan/utils/fm_solvers.py`, `wan/vace.py`).
//!
//! The model predicts the flow velocity `v ≈ noise − x0` for `x_σ = (1 − σ)·x0 + σ·noise`;
//! both solvers work on the data prediction `x̂0 = x − σ·v`. Schedules are computed in f64
//! like numpy and stored as f32 sigmas and integer timesteps, exactly as the reference's.

mod dpm;
mod unipc;

use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

pub use dpm::DpmSolver;
pub use unipc::UniPcSolver;

/// Training timesteps of Wan2.1 (`num_train_timesteps`).
pub const NUM_TRAIN_TIMESTEPS: usize = 1000;

/// Which solver samples a job.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
pub enum SolverKind {
    /// `FlowUniPCMultistepScheduler`, order 2, bh2, with the UniC corrector.
    #[default]
    #[serde(rename = "unipc")]
    UniPc,
    /// `FlowDPMSolverMultistepScheduler`, dpmsolver++ order 2, midpoint.
    #[serde(rename = "dpm++")]
    DpmPlusPlus,
}

impl std::fmt::Display for SolverKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::UniPc => "unipc",
            Self::DpmPlusPlus => "dpm++",
        })
    }
}

impl std::str::FromStr for SolverKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "unipc" => Ok(Self::UniPc),
            "dpm++" | "dpmpp" => Ok(Self::DpmPlusPlus),
            other => Err(format!("unknown solver `{other}`; use `unipc` or `dpm++`")),
        }
    }
}

/// The timesteps fed to the model and the sigmas the solver steps between.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// `int64(σ_i · 1000)` for each step, e.g. 999, 998, … for UniPC at shift 16.
    pub timesteps: Vec<i64>,
    /// `σ_0 … σ_{N−1}, 0` as f32.
    pub sigmas: Vec<f32>,
}

/// `numpy.linspace(start, stop, num)`: `i·step + start`, the last value exactly `stop`.
fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 1 {
        return vec![start];
    }
    let step = (stop - start) / (num - 1) as f64;
    let mut values: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    values[num - 1] = stop;
    values
}

/// The time shift `s·σ / (1 + (s − 1)·σ)` that spends more steps at high noise.
fn shift_sigma(sigma: f64, shift: f64) -> f64 {
    shift * sigma / (1.0 + (shift - 1.0) * sigma)
}

impl Schedule {
    fn from_shifted(sigmas: Vec<f64>) -> Self {
        let timesteps = sigmas
            .iter()
            .map(|s| (s * NUM_TRAIN_TIMESTEPS as f64) as i64)
            .collect();
        let sigmas = sigmas
            .iter()
            .map(|&s| s as f32)
            .chain(std::iter::once(0.0))
            .collect();
        Self { timesteps, sigmas }
    }

    /// UniPC's `set_timesteps(N, shift)`: N+1 points from the largest training sigma (0.999
    /// in f32) down to 0, the last dropped, then shifted.
    pub fn unipc(steps: usize, shift: f64) -> Self {
        let sigma_max = (1.0 - 1.0 / NUM_TRAIN_TIMESTEPS as f64) as f32 as f64;
        let sigmas = linspace(sigma_max, 0.0, steps + 1);
        Self::from_shifted(
            sigmas[..steps]
                .iter()
                .map(|&s| shift_sigma(s, shift))
                .collect(),
        )
    }

    /// DPM++'s `get_sampling_sigmas(N, shift)`: N+1 points from 1 to 0, the last dropped,
    /// shifted (so σ_0 = 1 and the first timestep is 1000).
    pub fn dpm(steps: usize, shift: f64) -> Self {
        let sigmas = linspace(1.0, 0.0, steps + 1);
        Self::from_shifted(
            sigmas[..steps]
                .iter()
                .map(|&s| shift_sigma(s, shift))
                .collect(),
        )
    }

    pub fn steps(&self) -> usize {
        self.timesteps.len()
    }
}

/// A multistep flow solver: call [`FlowScheduler::step`] once per timestep, in order.
pub trait FlowScheduler: Send {
    fn schedule(&self) -> &Schedule;

    /// Advances `sample` (the latent at the current step) with the model's velocity
    /// prediction to the next sigma.
    fn step(&mut self, velocity: &Tensor, sample: &Tensor) -> Result<Tensor>;
}

/// Builds a solver set up as the reference pipeline does for `steps` and `shift`.
pub fn build(kind: SolverKind, steps: usize, shift: f64) -> Box<dyn FlowScheduler> {
    match kind {
        SolverKind::UniPc => Box::new(UniPcSolver::new(Schedule::unipc(steps, shift))),
        SolverKind::DpmPlusPlus => Box::new(DpmSolver::new(Schedule::dpm(steps, shift))),
    }
}

/// `α = 1 − σ` and `λ = ln α − ln σ` of a sigma.
fn alpha_lambda(sigma: f32) -> (f64, f64) {
    let s = sigma as f64;
    let alpha = 1.0 - s;
    (alpha, alpha.ln() - s.ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unipc_schedule_matches_the_spec() {
        // Spec §6.7 (N = 25, shift 16) and appendix A.
        let s = Schedule::unipc(25, 16.0);
        let expected = [
            999, 997, 994, 991, 988, 984, 980, 976, 971, 965, 959, 953, 945, 936, 926, 914, 899,
            882, 861, 834, 799, 752, 685, 581, 399,
        ];
        assert_eq!(s.timesteps, expected);
        let s = Schedule::unipc(50, 16.0);
        // Appendix A prints 9 digits; the f32 nearest to them.
        assert_eq!(s.sigmas[0], 0.999937415f64 as f32);
        assert_eq!(s.sigmas[49], 0.245964453f64 as f32);
        assert_eq!(s.sigmas[50], 0.0);
    }

    #[test]
    fn dpm_schedule_starts_at_sigma_one() {
        let s = Schedule::dpm(50, 16.0);
        assert_eq!(s.timesteps[0], 1000);
        assert_eq!(s.sigmas[0], 1.0);
        assert_eq!(*s.timesteps.last().unwrap(), 246);
    }

    #[test]
    fn solver_names_round_trip() {
        for kind in [SolverKind::UniPc, SolverKind::DpmPlusPlus] {
            assert_eq!(kind.to_string().parse::<SolverKind>(), Ok(kind));
        }
        assert!("euler".parse::<SolverKind>().unwrap_err().contains("unipc"));
    }
}
