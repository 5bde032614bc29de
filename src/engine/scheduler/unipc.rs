//! `FlowUniPCMultistepScheduler` as the reference configures it: order 2, `bh2`, data
//! prediction, lower order at the first and last step, corrector on every step but the
//! first, final sigma 0 (spec §6.7).

use candle_core::{Result, Tensor};

use super::{FlowScheduler, Schedule, alpha_lambda};

const SOLVER_ORDER: usize = 2;

/// The UniPC predictor–corrector.
pub struct UniPcSolver {
    schedule: Schedule,
    step_index: usize,
    /// Data predictions of the last two steps, oldest first.
    model_outputs: Vec<Tensor>,
    /// The (corrected) sample that entered the previous predictor.
    last_sample: Option<Tensor>,
    /// Order used by the previous predictor, reused by this step's corrector.
    this_order: usize,
    lower_order_nums: usize,
}

impl UniPcSolver {
    pub fn new(schedule: Schedule) -> Self {
        Self {
            schedule,
            step_index: 0,
            model_outputs: Vec::new(),
            last_sample: None,
            this_order: 1,
            lower_order_nums: 0,
        }
    }

    fn sigma(&self, i: usize) -> f32 {
        self.schedule.sigmas[i]
    }

    /// UniC: refines the sample at step `i` with its own data prediction `model_t`.
    fn correct(&self, model_t: &Tensor, last_sample: &Tensor, order: usize) -> Result<Tensor> {
        let i = self.step_index;
        let m0 = &self.model_outputs[self.model_outputs.len() - 1];
        let (sigma_t, sigma_s0) = (self.sigma(i) as f64, self.sigma(i - 1) as f64);
        let (alpha_t, lambda_t) = alpha_lambda(self.sigma(i));
        let (_, lambda_s0) = alpha_lambda(self.sigma(i - 1));
        let h = lambda_t - lambda_s0;
        let hh = -h;
        let h_phi_1 = hh.exp_m1();
        let b_h = hh.exp_m1();
        let x_t_ = ((last_sample * (sigma_t / sigma_s0))? - (m0 * (alpha_t * h_phi_1))?)?;
        let d1_t = (model_t - m0)?;
        let correction = if order == 1 {
            (d1_t * 0.5)?
        } else {
            let m1 = &self.model_outputs[self.model_outputs.len() - 2];
            let (_, lambda_s1) = alpha_lambda(self.sigma(i - 2));
            let rk = (lambda_s1 - lambda_s0) / h;
            let d1 = ((m1 - m0)? / rk)?;
            // Solve [[1, 1], [rk, 1]]·ρ = b with b_k = h·φ_k(h)·k! / B(h).
            let h_phi_k = h_phi_1 / hh - 1.0;
            let b0 = h_phi_k / b_h;
            let b1 = (h_phi_k / hh - 0.5) * 2.0 / b_h;
            let rho_0 = (b0 - b1) / (1.0 - rk);
            let rho_1 = b0 - rho_0;
            ((d1 * rho_0)? + (d1_t * rho_1)?)?
        };
        x_t_ - (correction * (alpha_t * b_h))?
    }

    /// UniP: moves the sample from σ_i to σ_{i+1}.
    fn predict(&self, sample: &Tensor, order: usize) -> Result<Tensor> {
        let i = self.step_index;
        let m0 = &self.model_outputs[self.model_outputs.len() - 1];
        if self.sigma(i + 1) == 0.0 {
            // λ = +∞: the update returns the data prediction itself.
            return Ok(m0.clone());
        }
        let (sigma_t, sigma_s0) = (self.sigma(i + 1) as f64, self.sigma(i) as f64);
        let (alpha_t, lambda_t) = alpha_lambda(self.sigma(i + 1));
        let (_, lambda_s0) = alpha_lambda(self.sigma(i));
        let h = lambda_t - lambda_s0;
        let hh = -h;
        let h_phi_1 = hh.exp_m1();
        let b_h = hh.exp_m1();
        let x_t_ = ((sample * (sigma_t / sigma_s0))? - (m0 * (alpha_t * h_phi_1))?)?;
        if order == 1 {
            return Ok(x_t_);
        }
        let m1 = &self.model_outputs[self.model_outputs.len() - 2];
        let (_, lambda_s1) = alpha_lambda(self.sigma(i - 1));
        let rk = (lambda_s1 - lambda_s0) / h;
        let d1 = ((m1 - m0)? / rk)?;
        x_t_ - (d1 * (alpha_t * b_h * 0.5))?
    }
}

impl FlowScheduler for UniPcSolver {
    fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    fn step(&mut self, velocity: &Tensor, sample: &Tensor) -> Result<Tensor> {
        let i = self.step_index;
        let n = self.schedule.steps();
        if i >= n {
            candle_core::bail!("UniPC stepped {} times for a {n}-step schedule", i + 1);
        }
        let x0 = (sample - (velocity * self.sigma(i) as f64)?)?;
        let sample = match &self.last_sample {
            Some(last) if i > 0 => self.correct(&x0, last, self.this_order)?,
            _ => sample.clone(),
        };
        self.model_outputs.push(x0);
        if self.model_outputs.len() > SOLVER_ORDER {
            self.model_outputs.remove(0);
        }
        self.this_order = SOLVER_ORDER.min(n - i).min(self.lower_order_nums + 1);
        let next = self.predict(&sample, self.this_order)?;
        self.last_sample = Some(sample);
        self.lower_order_nums = (self.lower_order_nums + 1).min(SOLVER_ORDER);
        self.step_index += 1;
        Ok(next)
    }
}
