//! `FlowDPMSolverMultistepScheduler` as the reference configures it: dpmsolver++, order 2,
//! midpoint, first order at the first and last step (spec §6.8). With σ_0 = 1 the log-SNR
//! starts at −∞; the exponentials are computed from sigma ratios so that limit is exact.

use candle_core::{Result, Tensor};

use super::{FlowScheduler, Schedule, alpha_lambda};

/// The DPM-Solver++ multistep solver.
pub struct DpmSolver {
    schedule: Schedule,
    step_index: usize,
    /// Data prediction of the previous step.
    previous_x0: Option<Tensor>,
}

impl DpmSolver {
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            step_index: 0,
            previous_x0: None,
        }
    }

    fn sigma(&self, i: usize) -> f64 {
        self.schedule.sigmas[i] as f64
    }
}

impl FlowScheduler for DpmSolver {
    fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    fn step(&mut self, velocity: &Tensor, sample: &Tensor) -> Result<Tensor> {
        let i = self.step_index;
        let n = self.schedule.steps();
        if i >= n {
            candle_core::bail!("DPM++ stepped {} times for a {n}-step schedule", i + 1);
        }
        let (sigma_s, sigma_t) = (self.sigma(i), self.sigma(i + 1));
        let x0 = (sample - (velocity * sigma_s)?)?;
        let (alpha_s, alpha_t) = (1.0 - sigma_s, 1.0 - sigma_t);
        // e^{−h} with h = λ_t − λ_s, as a ratio: 0 when σ_s = 1 (α_s = 0).
        let exp_neg_h = if sigma_t == 0.0 {
            0.0
        } else {
            (sigma_t * alpha_s) / (alpha_t * sigma_s)
        };
        let first = ((sample * (sigma_t / sigma_s))? - (&x0 * (alpha_t * (exp_neg_h - 1.0)))?)?;
        let next = match &self.previous_x0 {
            // Second-order midpoint, except at the last step.
            Some(m1) if i + 1 < n => {
                let previous_sigma = self.schedule.sigmas[i - 1];
                if previous_sigma >= 1.0 {
                    // λ_{i−1} = −∞ makes r0 infinite and the correction vanish.
                    first
                } else {
                    let (_, lambda_s1) = alpha_lambda(previous_sigma);
                    let (_, lambda_s0) = alpha_lambda(self.schedule.sigmas[i]);
                    let (_, lambda_t) = alpha_lambda(self.schedule.sigmas[i + 1]);
                    let r0 = (lambda_s0 - lambda_s1) / (lambda_t - lambda_s0);
                    let d1 = ((&x0 - m1)? / r0)?;
                    (first - (d1 * (0.5 * alpha_t * (exp_neg_h - 1.0)))?)?
                }
            }
            _ => first,
        };
        self.previous_x0 = Some(x0);
        self.step_index += 1;
        Ok(next)
    }
}
