//! The whole tiny VACE generation against the reference: masked source video plus one
//! reference image, CFG sampling with UniPC, reference frame dropped, decode.

mod common;

use candle_core::DType;
use candle_nn::VarBuilder;
use common::*;
use vaced::engine::conditioning::{encode_frames, encode_masks};
use vaced::engine::config::{DitConfig, VaeConfig};
use vaced::engine::dit::WanModel;
use vaced::engine::vae::{ConvPrecision, WanVae};

#[test]
fn parity_pipeline_tiny_generation_matches_reference() {
    for case in cases("pipeline_") {
        let meta = json(&case);
        let dit_cfg: DitConfig = serde_json::from_value(meta["dit_config"].clone()).unwrap();
        let vae_cfg: VaeConfig = serde_json::from_value(meta["vae_config"].clone()).unwrap();
        let device = test_device();
        let tensors = candle_core::safetensors::load(weights_file(&case), &device).unwrap();
        let vb = VarBuilder::from_tensors(tensors, test_dtype(), &device);
        let dit = WanModel::new(&dit_cfg, vb.pp("dit")).unwrap();
        // The VAE as a pipeline in this dtype builds it: TF32 convolutions beside bf16 on CUDA.
        let vae = WanVae::new(&vae_cfg, vb.pp("vae"))
            .unwrap()
            .with_conv_precision(ConvPrecision::for_compute_dtype(test_dtype()));
        let io = io(&case);

        let (inputs, params) = pipeline_case_inputs(&case);
        let frames_latent = encode_frames(&vae, &inputs).unwrap();
        assert_rel(
            &format!("{case} vace_frames_latent"),
            &frames_latent,
            get(&io, "vace_frames_latent"),
            match vae.conv_precision() {
                ConvPrecision::Exact => REL_TOL,
                ConvPrecision::Tf32 => TF32_LATENT_REL_TOL,
            },
        );
        let mask_latent =
            encode_masks(&inputs.mask, inputs.refs.len(), vae.config().stride().1).unwrap();
        assert_rel(
            &format!("{case} vace_mask_latent"),
            &mask_latent,
            get(&io, "vace_mask_latent"),
            REL_TOL,
        );

        let (latent, video, steps_seen) = run_pipeline_case(&case, &dit, &vae);
        assert_eq!(steps_seen, params.steps);
        assert_rel(
            &format!("{case} final_latent"),
            &latent,
            get(&io, "final_latent"),
            tolerance(PIPELINE_LATENT_REL_TOL, BF16_PIPELINE_LATENT_REL_TOL),
        );
        if test_dtype() == DType::F32 {
            assert_abs(
                &format!("{case} video"),
                &video,
                get(&io, "video"),
                PIPELINE_VIDEO_ABS_TOL,
            );
        } else {
            assert_rel(
                &format!("{case} video"),
                &video,
                get(&io, "video"),
                BF16_PIPELINE_LATENT_REL_TOL,
            );
        }
    }
}
