//! The video VAE against the reference: encode of a clip and of one image, decode.
//!
//! Exact (f32) everywhere; on a CUDA test device also with single TF32 products, the
//! reference's own GPU numerics (what a bf16 pipeline uses there), within what TF32 costs
//! the reference itself.

mod common;

use common::*;
use vaced::engine::config::VaeConfig;
use vaced::engine::vae::{ConvPrecision, WanVae};

#[test]
fn parity_vae_encode_decode_match_reference() {
    let mut precisions = vec![ConvPrecision::Exact];
    if test_device().is_cuda() {
        precisions.push(ConvPrecision::Tf32);
    }
    for case in cases("vae_") {
        let meta = json(&case);
        let mut cfg: VaeConfig = serde_json::from_value(meta["config"].clone()).unwrap();
        cfg.mean = serde_json::from_value(meta["mean"].clone()).unwrap();
        cfg.std = serde_json::from_value(meta["std"].clone()).unwrap();
        let io = io(&case);
        for &precision in &precisions {
            let vae = WanVae::new(&cfg, weights(&case))
                .unwrap()
                .with_conv_precision(precision);
            let what = |output: &str| format!("{case} {output} ({precision:?})");
            let latent = vae.encode(get(&io, "video")).unwrap();
            let image_latent = vae.encode(get(&io, "image")).unwrap();
            let unclamped = vae.decode_unclamped(get(&io, "z")).unwrap();
            let decoded = vae.decode(get(&io, "z")).unwrap();
            let latents = [(latent, "latent"), (image_latent, "image_latent")];
            let decodes = [(unclamped, "decoded_unclamped"), (decoded, "decoded")];
            match precision {
                ConvPrecision::Exact => {
                    for (got, name) in latents {
                        assert_rel(&what(name), &got, get(&io, name), REL_TOL);
                    }
                    for (got, name) in decodes {
                        assert_abs(&what(name), &got, get(&io, name), DECODE_ABS_TOL);
                    }
                }
                ConvPrecision::Tf32 => {
                    for (got, name) in latents {
                        assert_rel(&what(name), &got, get(&io, name), TF32_LATENT_REL_TOL);
                    }
                    for (got, name) in decodes {
                        assert_rel(&what(name), &got, get(&io, name), TF32_DECODE_REL_TOL);
                    }
                }
            }
        }
    }
}
