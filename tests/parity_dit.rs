//! The VACE DiT against one reference forward per `dit_*` fixture case.

mod common;

use common::*;
use vaced::engine::dit::DitTrace;

#[test]
fn parity_dit_forward_matches_reference() {
    for case in cases("dit_") {
        let (model, io, t, scale) = dit_case(&case);
        let mut trace = DitTrace::default();
        let out = model
            .forward_traced(
                get(&io, "x"),
                t,
                get(&io, "vace_context"),
                get(&io, "context"),
                scale,
                Some(&mut trace),
            )
            .unwrap();
        assert_rel(
            &format!("{case} patch_embed"),
            trace.patch_embed.as_ref().unwrap(),
            get(&io, "patch_embed"),
            tolerance(REL_TOL, BF16_REL_TOL),
        );
        assert_rel(
            &format!("{case} time_projection"),
            trace.time_projection.as_ref().unwrap(),
            get(&io, "time_projection"),
            tolerance(REL_TOL, BF16_REL_TOL),
        );
        assert_rel(
            &format!("{case} text_embed"),
            trace.text_embed.as_ref().unwrap(),
            get(&io, "text_embed"),
            tolerance(REL_TOL, BF16_REL_TOL),
        );
        for (j, hint) in trace.hints.iter().enumerate() {
            assert_rel(
                &format!("{case} hint.{j}"),
                hint,
                get(&io, &format!("hint.{j}")),
                tolerance(REL_TOL, BF16_REL_TOL),
            );
        }
        for (i, block) in trace.block_outs.iter().enumerate() {
            assert_rel(
                &format!("{case} block_out.{i}"),
                block,
                get(&io, &format!("block_out.{i}")),
                tolerance(REL_TOL, BF16_REL_TOL),
            );
        }
        assert_rel(
            &format!("{case} out"),
            &out,
            get(&io, "out"),
            tolerance(REL_TOL, BF16_REL_TOL),
        );
    }
}

/// A guided step runs the prompt and the negative prompt together, sharing what precedes
/// the first cross-attention: each velocity must be exactly what a pass of its own gives.
#[test]
fn prompts_run_together_give_each_prompts_own_velocity() {
    for case in cases("dit_") {
        let (model, io, t, scale) = dit_case(&case);
        let x = get(&io, "x");
        let context = get(&io, "context");
        // The other prompt: the first half of the tokens, a different text to the model.
        let shorter = context
            .narrow(0, 0, context.dim(0).unwrap().div_ceil(2))
            .unwrap();
        let time = model.time_condition(t).unwrap();
        let vace = model.vace_condition(get(&io, "vace_context")).unwrap();
        let texts = [context, &shorter].map(|c| model.text_condition(c).unwrap());
        let together = model
            .forward_prompts(x, &time, &[&texts[0], &texts[1]], &vace, scale)
            .unwrap();
        assert_eq!(together.len(), 2, "{case}: one velocity per prompt");
        for (text, got) in texts.iter().zip(&together) {
            let alone = model
                .forward_conditioned(x, &time, text, &vace, scale)
                .unwrap();
            let (_, max_abs) = errors(got, &alone);
            assert_eq!(
                max_abs, 0.0,
                "{case}: a prompt's velocity changed when run with another"
            );
        }
        let (_, apart) = errors(&together[0], &together[1]);
        assert!(
            apart > 0.0,
            "{case}: the two prompts gave the same velocity"
        );
    }
}
