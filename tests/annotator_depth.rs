//! Depth-Anything-V2 (ViT-S, formula weights) against the reference's own code: raw depth of
//! `infer_image` and the uint8 control frame of `DepthV2Annotator.forward`, for two aspect
//! ratios; and `load`'s errors. tests/data/annotators/README.md says how the goldens were made.

mod common;
#[path = "data/annotators/formula_weights.rs"]
mod formula_weights;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use formula_weights::{data_dir, weights};
use vaced::media::{Frame, load_still};
use vaced::preprocess::depth_anything::{DepthAnythingConfig, DepthAnythingV2};

/// Largest `max|rust - reference| / max|reference|` accepted for the raw depth.
const RAW_REL_TOL: f32 = 1e-4;
/// Largest share of control-frame pixels allowed to differ by one grey level (a depth value
/// that lands on the other side of a truncation boundary); none may differ by more.
const OFF_BY_ONE_SHARE: f64 = 0.01;

const KEYS: &str = "depth_vits_keys.txt";

fn expected_raw(case: &str) -> Vec<f32> {
    let tensors =
        candle_core::safetensors::load(data_dir().join("depth_raw.safetensors"), &Device::Cpu)
            .unwrap();
    tensors[&format!("depth_{case}")]
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn still(name: &str) -> Frame {
    load_still(&data_dir().join(name)).unwrap()
}

/// Compares one case's raw depth and control frame with the reference's.
fn check_case(model: &DepthAnythingV2, case: &str) {
    let input = still(&format!("scene_{case}.png"));
    let raw = model.infer(&input).unwrap();
    let expected = expected_raw(case);
    assert_eq!(raw.len(), expected.len(), "{case}: raw depth length");
    let max_diff = raw
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    let scale = expected.iter().map(|v| v.abs()).fold(0.0, f32::max);
    let rel = max_diff / scale;
    eprintln!("{case}: raw depth max|diff| {max_diff:.3e}, relative {rel:.3e}");
    assert!(
        rel <= RAW_REL_TOL,
        "{case}: raw depth relative error {rel:.3e}"
    );

    // What `depth_frame` returns, without a second inference.
    let frame = DepthAnythingV2::control_frame(&raw, input.width, input.height);
    let golden = still(&format!("depth_{case}.png"));
    assert_eq!(
        (frame.width, frame.height),
        (golden.width, golden.height),
        "{case}: frame size"
    );
    assert_off_by_one_at_most(case, &frame.rgb, &golden.rgb);
}

fn assert_off_by_one_at_most(case: &str, got: &[u8], expected: &[u8]) {
    let worst = got
        .iter()
        .zip(expected)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    let off = got.iter().zip(expected).filter(|(a, b)| a != b).count();
    let share = off as f64 / expected.len() as f64;
    eprintln!(
        "{case}: control frame {off} of {} values off by one",
        expected.len()
    );
    assert!(
        worst <= 1,
        "{case}: control frame differs by {worst} grey levels"
    );
    assert!(
        share <= OFF_BY_ONE_SHARE,
        "{case}: {share:.4} of the control frame is off by one"
    );
}

#[test]
fn depth_anything_vits_matches_reference() {
    let tensors = weights(KEYS);
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &common::test_device());
    let model = DepthAnythingV2::new(DepthAnythingConfig::vits(), vb).unwrap();
    check_case(&model, "96x64");

    // The other aspect ratio goes through `load`: a safetensors file with the reference's
    // keys, from which the sizes must be inferred.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("depth_anything_v2_vits.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let loaded = DepthAnythingV2::load(&path, &common::test_device()).unwrap();
    assert_eq!(loaded.config(), &DepthAnythingConfig::vits());
    check_case(&loaded, "64x80");
}

fn load_error(path: &Path) -> String {
    match DepthAnythingV2::load(path, &Device::Cpu) {
        Ok(_) => panic!("{} loaded", path.display()),
        Err(err) => {
            let message = err.to_string();
            eprintln!("{message}");
            message
        }
    }
}

#[test]
fn load_explains_a_missing_file() {
    let path = data_dir().join("no_such_depth_anything_v2_vitl.pth");
    let message = load_error(&path);
    assert!(
        message.contains("no_such_depth_anything_v2_vitl.pth")
            && message.contains("not found")
            && message.contains("depth_anything_v2_vitl.pth of ali-vilab/VACE-Annotators"),
        "{message}"
    );
}

#[test]
fn load_refuses_a_checkpoint_of_another_model() {
    // A real torch pickle, but of the scribble network.
    let message = load_error(&data_dir().join("scribble_subset.pth"));
    assert!(
        message.contains("scribble_subset.pth")
            && message.contains("not a Depth-Anything-V2 checkpoint")
            && message.contains("pretrained.patch_embed.proj.weight"),
        "{message}"
    );
}

#[test]
fn load_refuses_a_file_that_is_no_checkpoint() {
    let message = load_error(&data_dir().join("depth_vits_keys.txt"));
    assert!(
        message.contains("depth_vits_keys.txt") && message.contains("cannot read the file"),
        "{message}"
    );
}

#[test]
fn load_refuses_an_unknown_encoder_width() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("odd.safetensors");
    let patch = Tensor::zeros((100, 3, 14, 14), DType::F32, &Device::Cpu).unwrap();
    let tensors = HashMap::from([("pretrained.patch_embed.proj.weight".to_string(), patch)]);
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let message = load_error(&path);
    assert!(message.contains("encoder width 100"), "{message}");
}
