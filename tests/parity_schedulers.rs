//! The flow solvers against the reference: schedules, then every step's sample when fed the
//! reference's model outputs.

mod common;

use common::*;
use vaced::engine::scheduler::{self, SolverKind};

#[test]
fn parity_schedulers_match_reference_at_every_step() {
    let meta = json("schedulers");
    let io = io("schedulers");
    let cases = meta["cases"].as_object().expect("`cases` object");
    assert!(!cases.is_empty());
    for (name, case) in cases {
        let kind: SolverKind = case["solver"].as_str().unwrap().parse().unwrap();
        let steps = case["steps"].as_u64().unwrap() as usize;
        let shift = case["shift"].as_f64().unwrap();
        let mut solver = scheduler::build(kind, steps, shift);

        let want_t: Vec<f32> = get(&io, &format!("{name}.timesteps")).to_vec1().unwrap();
        let got_t: Vec<f32> = solver
            .schedule()
            .timesteps
            .iter()
            .map(|&t| t as f32)
            .collect();
        assert_eq!(got_t, want_t, "{name}: timesteps");
        let want_s: Vec<f32> = get(&io, &format!("{name}.sigmas")).to_vec1().unwrap();
        assert_eq!(solver.schedule().sigmas, want_s, "{name}: sigmas");

        let mut sample = get(&io, &format!("{name}.sample0")).clone();
        for i in 0..steps {
            let velocity = get(&io, &format!("{name}.model_out.{i}"));
            sample = solver.step(velocity, &sample).unwrap();
            let want = get(&io, &format!("{name}.sample.{}", i + 1));
            assert_rel(&format!("{name} step {i}"), &sample, want, REL_TOL);
        }
    }
}
