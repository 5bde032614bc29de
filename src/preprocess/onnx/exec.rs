//! Running a compiled graph: inputs into slots, each step in order, slots freed after
//! their last reader.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::Tensor;

use super::Profile;
use super::graph::{Plan, ValueRef};

/// Runs `plan` on `inputs` (in the order of `plan.inputs`).
pub(crate) fn run(plan: &Plan, inputs: &[Tensor]) -> candle_core::Result<Vec<Tensor>> {
    run_inner(plan, inputs, None)
}

/// Runs `plan` waiting for the device after every step, and reports where the time went.
pub(crate) fn run_profiled(
    plan: &Plan,
    inputs: &[Tensor],
) -> candle_core::Result<(Vec<Tensor>, Profile)> {
    let mut times: HashMap<String, (f64, usize)> = HashMap::new();
    let outs = run_inner(plan, inputs, Some(&mut times))?;
    let mut profile: Profile = times.into_iter().map(|(k, (t, n))| (k, t, n)).collect();
    profile.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok((outs, profile))
}

fn run_inner(
    plan: &Plan,
    inputs: &[Tensor],
    mut times: Option<&mut HashMap<String, (f64, usize)>>,
) -> candle_core::Result<Vec<Tensor>> {
    let fail = |m: String| candle_core::Error::Msg(format!("{}: {m}", plan.file));
    if inputs.len() != plan.inputs.len() {
        let names: Vec<&str> = plan.inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(fail(format!(
            "the model takes {} input(s) ({}), got {}",
            plan.inputs.len(),
            names.join(", "),
            inputs.len()
        )));
    }
    let mut slots: Vec<Option<Tensor>> = vec![None; plan.n_slots];
    for (gi, t) in plan.inputs.iter().zip(inputs) {
        let fits = gi.dims.is_empty()
            || (gi.dims.len() == t.rank()
                && gi
                    .dims
                    .iter()
                    .zip(t.dims())
                    .all(|(want, &got)| want.is_none_or(|w| w == got)));
        if !fits {
            let want: Vec<String> = gi
                .dims
                .iter()
                .map(|d| d.map(|v| v.to_string()).unwrap_or_else(|| "?".into()))
                .collect();
            return Err(fail(format!(
                "input '{}' must have shape [{}], got {:?}",
                gi.name,
                want.join(", "),
                t.dims()
            )));
        }
        if t.dtype() != gi.dtype {
            return Err(fail(format!(
                "input '{}' must be {:?}, got {:?}",
                gi.name,
                gi.dtype,
                t.dtype()
            )));
        }
        slots[gi.slot] = Some(t.to_device(&plan.device)?);
    }
    if times.is_some() {
        plan.device.synchronize()?;
    }
    for step in &plan.steps {
        let started = Instant::now();
        let args: Vec<Option<Tensor>> = step
            .inputs
            .iter()
            .map(|r| match r {
                None => None,
                Some(ValueRef::Const(c)) => plan.consts.get(*c).cloned(),
                Some(ValueRef::Slot(s)) => slots[*s].clone(),
            })
            .collect();
        let outs = step
            .op
            .run(&args)
            .map_err(|e| fail(format!("{}: {e}", step.label)))?;
        drop(args);
        for (i, slot) in step.outputs.iter().enumerate() {
            let Some(slot) = slot else { continue };
            match outs.get(i) {
                Some(t) => slots[*slot] = Some(t.clone()),
                None => return Err(fail(format!("{}: output {i} was not produced", step.label))),
            }
        }
        for &s in &step.free {
            slots[s] = None;
        }
        if let Some(times) = times.as_deref_mut() {
            plan.device.synchronize()?;
            let e = times.entry(step.kind.clone()).or_default();
            e.0 += started.elapsed().as_secs_f64();
            e.1 += 1;
        }
    }
    plan.outputs
        .iter()
        .map(|(name, r)| match r {
            ValueRef::Const(c) => plan
                .consts
                .get(*c)
                .cloned()
                .ok_or_else(|| fail(format!("output '{name}' is missing"))),
            // Views (a final Transpose, Expand) are laid out for the caller.
            ValueRef::Slot(s) => slots[*s]
                .take()
                .ok_or_else(|| fail(format!("output '{name}' was not computed")))
                .and_then(|t| t.contiguous()),
        })
        .collect()
}
