//! `pose` and `pose_body` end to end: vaced's ONNX runner and DWPose pipeline against the
//! reference's `PoseBodyFaceAnnotator` / `PoseBodyAnnotator` running the same ONNX graphs
//! in onnxruntime. The graphs are the small stand-ins of tests/data/onnx (the real files'
//! inputs and outputs, random weights); tests/data/annotators/README.md says how the
//! goldens were made.
//!
//! Random weights make useless detections (boxes e^20 px wide) and a chaotic estimator (one
//! grey level of difference in a crop moves many SimCC maxima), so on both sides the
//! networks' outputs are shaped by the same fixed formulas ([`Shaped`]): a few anchors keep
//! their objectness and boxes get person sizes; every keypoint gets a clear SimCC peak,
//! every seventh is hidden. The networks' own numbers still decide the boxes, the scores
//! and everything the detector sees.

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use vaced::media::{Frame, load_still};
use vaced::preprocess::dwpose::{Parts, PoseNetworks, pose_frame};
use vaced::preprocess::pose_networks::OnnxPoseNetworks;

/// The frames: a landscape scene, a portrait one, and a larger photo-like frame.
const SCENES: [&str; 3] = ["scene_96x64", "scene_64x80", "flow_frame0_130x125"];

/// Share of pixels allowed to differ: boxes come out ~1e-3 px from onnxruntime's (another
/// f32 summation order), so a keypoint on an `int()` boundary may land one pixel away,
/// moving a limb's outline.
const MOVED_SHARE: f64 = 0.005;

/// Anchors whose objectness is kept, on the three YOLOX levels; the rest are zeroed.
const ANCHORS: [usize; 9] = [1234, 2345, 4321, 5000, 6500, 7000, 7700, 8100, 8300];
/// Added at each keypoint's SimCC peak; subtracted twice from every bin of hidden ones.
const PEAK: f32 = 30.0;

/// The stand-ins with their outputs shaped (see the module docs); the reference side
/// applies the same formulas in NumPy float32.
struct Shaped(OnnxPoseNetworks);

impl PoseNetworks for Shaped {
    fn detect(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        let raw = self.0.detect(input)?;
        let (n, anchors, width) = raw.dims3()?;
        let mut rows = raw.flatten_all()?.to_vec1::<f32>()?;
        for (anchor, row) in rows.chunks_mut(width).enumerate() {
            for v in &mut row[0..4] {
                *v *= 0.02;
            }
            row[2] += 8f32.ln();
            row[3] += 12f32.ln();
            if !ANCHORS.contains(&(anchor % anchors)) {
                row[4] = 0.0;
            }
            row[5] = row[5].powf(0.25);
        }
        Tensor::from_vec(rows, (n, anchors, width), input.device())
    }

    fn pose_input_size(&self) -> (usize, usize) {
        self.0.pose_input_size()
    }

    fn estimate(&self, input: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (x, y) = self.0.estimate(input)?;
        Ok((peaks(&x, 37, 11)?, peaks(&y, 53, 5)?))
    }
}

/// `simcc` plus a peak at bin `(mult·k + add) mod bins` of keypoint k, every seventh
/// keypoint (k mod 7 = 3) pushed below zero.
fn peaks(simcc: &Tensor, mult: usize, add: usize) -> candle_core::Result<Tensor> {
    let (n, k, bins) = simcc.dims3()?;
    let mut bias = vec![0f32; n * k * bins];
    for (row, values) in bias.chunks_mut(bins).enumerate() {
        let point = row % k;
        values[(mult * point + add) % bins] = PEAK;
        if point % 7 == 3 {
            for v in values.iter_mut() {
                *v -= 2.0 * PEAK;
            }
        }
    }
    let bias = Tensor::from_vec(bias, (n, k, bins), simcc.device())?.to_dtype(DType::F32)?;
    simcc + bias
}

fn data(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(file)
}

fn networks() -> Shaped {
    let device = common::test_device();
    Shaped(OnnxPoseNetworks::new(
        OnnxPoseNetworks::load_detector(&data("onnx/yolox_l_tiny.onnx"), &device).unwrap(),
        OnnxPoseNetworks::load_estimator(&data("onnx/dw-ll_ucoco_384_tiny.onnx"), &device).unwrap(),
    ))
}

fn compare(case: &str, got: &Frame, golden: &Frame) {
    assert_eq!(
        (got.width, got.height),
        (golden.width, golden.height),
        "{case}: size"
    );
    let pixels = golden.width * golden.height;
    let moved = got
        .rgb
        .chunks(3)
        .zip(golden.rgb.chunks(3))
        .filter(|(a, b)| a != b)
        .count();
    let drawn = golden.rgb.chunks(3).filter(|p| p != &[0, 0, 0]).count();
    eprintln!("{case}: {moved} of {pixels} pixels differ ({drawn} drawn in the golden)");
    assert!(
        drawn > pixels / 200,
        "{case}: the golden should show skeletons"
    );
    assert!(
        moved as f64 <= MOVED_SHARE * pixels as f64,
        "{case}: {moved} of {pixels} pixels differ from the reference"
    );
}

fn check(parts: Parts, prefix: &str) {
    let nets = networks();
    let device = common::test_device();
    for scene in SCENES {
        let frame = load_still(&data(&format!("annotators/{scene}.png"))).unwrap();
        let golden = load_still(&data(&format!("annotators/{prefix}_{scene}.png"))).unwrap();
        let got = pose_frame(&nets, &frame, parts, &device).unwrap();
        compare(&format!("{prefix} {scene}"), &got, &golden);
    }
}

#[test]
fn pose_matches_reference() {
    check(Parts::BodyFace, "pose");
}

#[test]
fn pose_body_matches_reference() {
    check(Parts::Body, "pose_body");
}

/// A file that is not an ONNX graph is refused when loaded, naming the file.
#[test]
fn a_broken_weights_file_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yolox_l.onnx");
    std::fs::write(&path, b"not a protobuf at all").unwrap();
    let err = OnnxPoseNetworks::load_detector(&path, &common::test_device())
        .expect_err("a broken file must not load")
        .to_string();
    assert!(err.contains("yolox_l.onnx"), "{err}");
}
