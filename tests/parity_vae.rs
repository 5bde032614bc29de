//! The video VAE against the reference: encode of a clip and of one image, decode.

mod common;

use common::*;
use vaced::engine::config::VaeConfig;
use vaced::engine::vae::WanVae;

#[test]
fn parity_vae_encode_decode_match_reference() {
    for case in cases("vae_") {
        let meta = json(&case);
        let mut cfg: VaeConfig = serde_json::from_value(meta["config"].clone()).unwrap();
        cfg.mean = serde_json::from_value(meta["mean"].clone()).unwrap();
        cfg.std = serde_json::from_value(meta["std"].clone()).unwrap();
        let vae = WanVae::new(&cfg, weights(&case)).unwrap();
        let io = io(&case);
        let latent = vae.encode(get(&io, "video")).unwrap();
        assert_rel(
            &format!("{case} latent"),
            &latent,
            get(&io, "latent"),
            REL_TOL,
        );
        let image_latent = vae.encode(get(&io, "image")).unwrap();
        assert_rel(
            &format!("{case} image_latent"),
            &image_latent,
            get(&io, "image_latent"),
            REL_TOL,
        );
        let unclamped = vae.decode_unclamped(get(&io, "z")).unwrap();
        assert_abs(
            &format!("{case} decoded_unclamped"),
            &unclamped,
            get(&io, "decoded_unclamped"),
            DECODE_ABS_TOL,
        );
        let decoded = vae.decode(get(&io, "z")).unwrap();
        assert_abs(
            &format!("{case} decoded"),
            &decoded,
            get(&io, "decoded"),
            DECODE_ABS_TOL,
        );
    }
}
