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
