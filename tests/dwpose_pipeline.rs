//! The DWPose pipeline (`pose`, `pose_body`) against the reference's own
//! `PoseBodyFaceAnnotator` and `PoseBodyAnnotator`, run with fake networks: a replay checks
//! that the detector and the estimator receive what the reference gave its networks, serves
//! the outputs the reference got, and the pose frames must equal the reference's.
//! tests/data/dwpose/README.md says how the goldens were made.

mod common;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use sha2::{Digest, Sha256};
use vaced::media::{Frame, load_still};
use vaced::preprocess::dwpose::{self, Parts, PoseNetworks, Poses};

/// RTMPose's input (w, h) and SimCC widths (split ratio 2).
const POSE_SIZE: (usize, usize) = (288, 384);
const WX: usize = 576;
const WY: usize = 768;
const K: usize = 133;
const ANCHORS: usize = 8400;
const DET_WIDTH: usize = 85;
const MEAN: [f64; 3] = [123.675, 116.28, 103.53];
const STD: [f64; 3] = [58.395, 57.12, 57.375];
/// Largest difference allowed between a pose input value and the reference's: both are
/// `float32` of the same `float64` formula on the same `uint8` crop, so none is expected;
/// one grey level of the crop would be about 0.017.
const POSE_INPUT_TOL: f32 = 1e-6;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/dwpose")
}

fn png(name: &str) -> Frame {
    load_still(&data_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sha256(values: &[f32]) -> String {
    let mut h = Sha256::new();
    for v in values {
        h.update(v.to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The crafted detector output: the background formula with the case's anchors over it.
fn detector_output(tensors: &HashMap<String, Tensor>) -> Vec<f32> {
    let mut out = vec![0f32; ANCHORS * DET_WIDTH];
    for a in 0..ANCHORS {
        for c in 0..DET_WIDTH {
            let v = match c {
                0..4 => ((a * 13 + c * 7) % 64) as f64 / 256.0 - 0.125,
                4 => ((a * 29) % 97) as f64 / 1024.0,
                _ => ((a * 7 + c * 3) % 89) as f64 / 256.0,
            };
            out[a * DET_WIDTH + c] = v as f32;
        }
    }
    let anchors = tensors["det.anchor"].to_vec1::<i64>().unwrap();
    let values = tensors["det.values"].to_vec2::<f32>().unwrap();
    for (a, row) in anchors.iter().zip(values) {
        let a = *a as usize;
        out[a * DET_WIDTH..(a + 1) * DET_WIDTH].copy_from_slice(&row);
    }
    out
}

/// One crop's crafted SimCC rows: a background formula, negative throughout for keypoints
/// whose peak is not positive, and one peak per row.
fn simcc(tensors: &HashMap<String, Tensor>, crop: usize, axis: &str, width: usize) -> Vec<f32> {
    let peaks = tensors[&format!("crop{crop}.peak_{axis}")]
        .to_vec1::<i64>()
        .unwrap();
    let vals = tensors[&format!("crop{crop}.val_{axis}")]
        .to_vec1::<f32>()
        .unwrap();
    let mut out = Vec::with_capacity(K * width);
    for k in 0..K {
        for j in 0..width {
            let bg = ((k * 37 + j * 11 + crop * 101) % 173) as f32 / 2048.0;
            out.push(if j == peaks[k] as usize {
                vals[k]
            } else if vals[k] > 0.0 {
                bg
            } else {
                -bg - 0.5
            });
        }
    }
    out
}

/// Byte planes of a golden PNG that stores a tensor's three planes as its R, G, B.
fn planes(frame: &Frame) -> [Vec<u8>; 3] {
    std::array::from_fn(|c| frame.rgb[c..].iter().step_by(3).copied().collect())
}

#[derive(Default)]
struct Seen {
    detect_calls: usize,
    detect_mismatches: usize,
    estimate_calls: usize,
    crops: usize,
    worst_pose_input: f32,
}

/// Networks that replay the reference's: they check their inputs against the recorded
/// ones and answer with the recorded outputs.
struct Replay {
    det_input: [Vec<u8>; 3],
    det_output: Vec<f32>,
    crops: Vec<[Vec<u8>; 3]>,
    simcc: Vec<(Vec<f32>, Vec<f32>)>,
    seen: RefCell<Seen>,
}

struct Case {
    name: String,
    meta: serde_json::Value,
    tensors: HashMap<String, Tensor>,
}

impl Case {
    fn load(name: &str) -> Case {
        let text = std::fs::read_to_string(data_dir().join("cases.json")).unwrap();
        let all: serde_json::Value = serde_json::from_str(&text).unwrap();
        let meta = all["cases"][name].clone();
        assert!(meta.is_object(), "no case {name} in cases.json");
        let path = data_dir().join(format!("{name}.safetensors"));
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        Case {
            name: name.to_owned(),
            meta,
            tensors,
        }
    }

    fn people(&self) -> usize {
        self.meta["people"].as_u64().unwrap() as usize
    }

    fn replay(&self) -> Replay {
        let det_output = detector_output(&self.tensors);
        assert_eq!(
            sha256(&det_output),
            self.meta["det_output_sha256"].as_str().unwrap(),
            "{}: the rebuilt detector output is not the one the reference got",
            self.name
        );
        let mut crops = Vec::new();
        let mut simccs = Vec::new();
        for c in 0..self.people() {
            crops.push(planes(&png(&format!("{}_crop{c}.png", self.name))));
            let (x, y) = (
                simcc(&self.tensors, c, "x", WX),
                simcc(&self.tensors, c, "y", WY),
            );
            let sums = &self.meta["crop_sha256"][c];
            assert_eq!(sha256(&x), sums[0].as_str().unwrap(), "crop {c} simcc_x");
            assert_eq!(sha256(&y), sums[1].as_str().unwrap(), "crop {c} simcc_y");
            simccs.push((x, y));
        }
        Replay {
            det_input: planes(&png(&format!("{}_det_input.png", self.name))),
            det_output,
            crops,
            simcc: simccs,
            seen: RefCell::default(),
        }
    }
}

impl PoseNetworks for Replay {
    fn detect(&self, input: &Tensor) -> candle_core::Result<Tensor> {
        assert_eq!(input.dims(), &[1, 3, 640, 640], "detector input shape");
        assert_eq!(input.dtype(), DType::F32);
        let got = input.flatten_all()?.to_vec1::<f32>()?;
        let want = self.det_input.iter().flatten().map(|&v| v as f32);
        let mut seen = self.seen.borrow_mut();
        seen.detect_calls += 1;
        seen.detect_mismatches += got.iter().zip(want).filter(|(g, w)| **g != *w).count();
        Tensor::from_vec(
            self.det_output.clone(),
            (1, ANCHORS, DET_WIDTH),
            input.device(),
        )
    }

    fn pose_input_size(&self) -> (usize, usize) {
        POSE_SIZE
    }

    fn estimate(&self, input: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let n = self.crops.len();
        assert_eq!(
            input.dims(),
            &[n, 3, POSE_SIZE.1, POSE_SIZE.0],
            "pose input shape"
        );
        let got = input.flatten_all()?.to_vec1::<f32>()?;
        let mut seen = self.seen.borrow_mut();
        seen.estimate_calls += 1;
        seen.crops += n;
        let plane = POSE_SIZE.0 * POSE_SIZE.1;
        for (i, crop) in self.crops.iter().enumerate() {
            for (c, bytes) in crop.iter().enumerate() {
                let at = (i * 3 + c) * plane;
                for (g, &u) in got[at..at + plane].iter().zip(bytes) {
                    let want = ((u as f64 - MEAN[c]) / STD[c]) as f32;
                    seen.worst_pose_input = seen.worst_pose_input.max((g - want).abs());
                }
            }
        }
        let device = input.device();
        let xs: Vec<f32> = self.simcc.iter().flat_map(|(x, _)| x.clone()).collect();
        let ys: Vec<f32> = self.simcc.iter().flat_map(|(_, y)| y.clone()).collect();
        Ok((
            Tensor::from_vec(xs, (n, K, WX), device)?,
            Tensor::from_vec(ys, (n, K, WY), device)?,
        ))
    }
}

/// Differing bytes and the largest difference of two frames of one size.
fn frame_diff(got: &Frame, want: &Frame) -> (usize, u8) {
    assert_eq!(
        (got.width, got.height),
        (want.width, want.height),
        "frame size"
    );
    got.rgb
        .iter()
        .zip(&want.rgb)
        .filter(|(a, b)| a != b)
        .fold((0, 0), |(n, m), (a, b)| (n + 1, m.max(a.abs_diff(*b))))
}

/// The keypoints, scores and boxes against the reference's `Wholebody` result.
fn check_poses(case: &Case, poses: &Poses) {
    let name = &case.name;
    let meta = &case.meta;
    assert_eq!(
        poses.size(),
        (
            meta["work_width"].as_u64().unwrap() as usize,
            meta["work_height"].as_u64().unwrap() as usize
        ),
        "{name}: working size"
    );
    let boxes = meta["boxes"].as_u64().unwrap() as usize;
    assert_eq!(poses.boxes().len(), boxes, "{name}: person boxes");
    if boxes > 0 {
        let want = case.tensors["boxes"].to_vec2::<f64>().unwrap();
        for (got, want) in poses.boxes().iter().zip(&want) {
            assert_eq!(&got[..], &want[..], "{name}: person box");
        }
    }
    assert_eq!(poses.people().len(), case.people(), "{name}: people");
    let points = case.tensors["keypoints"].to_vec3::<f64>().unwrap();
    let scores = case.tensors["scores"].to_vec2::<f64>().unwrap();
    for (p, person) in poses.people().iter().enumerate() {
        for k in 0..dwpose::KEYPOINTS {
            assert_eq!(
                &person.keypoints()[k][..],
                &points[p][k][..],
                "{name}: person {p} keypoint {k}"
            );
            assert_eq!(
                person.scores()[k].to_bits(),
                scores[p][k].to_bits(),
                "{name}: person {p} score {k}"
            );
        }
    }
}

/// Runs a case through both annotators with `nets` and compares everything; returns the
/// replay's record.
fn run_case(case: &Case, nets: &Replay) {
    let name = &case.name;
    let device = common::test_device();
    let frame = png(&format!("{name}.png"));
    let poses = dwpose::estimate_poses(nets, &frame, &device).unwrap();
    check_poses(case, &poses);
    let mut failures = Vec::new();
    for (parts, suffix) in [(Parts::BodyFace, "pose"), (Parts::Body, "pose_body")] {
        let got = dwpose::pose_frame(nets, &frame, parts, &device).unwrap();
        let want = png(&format!("{name}_{suffix}.png"));
        let (n, worst) = frame_diff(&got, &want);
        eprintln!(
            "{name} {suffix}: {n} of {} bytes differ (largest {worst})",
            want.rgb.len()
        );
        if n > 0 {
            failures.push(format!("{suffix}: {n} bytes differ, largest by {worst}"));
        }
    }
    let seen = nets.seen.borrow();
    eprintln!(
        "{name}: detector input {} values off; pose inputs within {:.2e}",
        seen.detect_mismatches, seen.worst_pose_input
    );
    assert_eq!(seen.detect_calls, 3, "{name}: detector calls");
    assert_eq!(
        seen.estimate_calls, 3,
        "{name}: one batched estimate per frame"
    );
    assert_eq!(seen.crops, 3 * case.people(), "{name}: crops");
    assert_eq!(
        seen.detect_mismatches, 0,
        "{name}: detector input differs from the reference's"
    );
    assert!(
        seen.worst_pose_input <= POSE_INPUT_TOL,
        "{name}: pose input differs by {}",
        seen.worst_pose_input
    );
    assert!(failures.is_empty(), "{name}: {failures:?}");
}

#[test]
fn street_three_people() {
    let case = Case::load("street_208x120");
    run_case(&case, &case.replay());
}

#[test]
fn portrait_one_person() {
    let case = Case::load("portrait_96x160");
    run_case(&case, &case.replay());
}

/// A car and a person below 0.3: no person box, so the whole picture is cropped as one
/// person (and the frame is enlarged back with Lanczos, its short side being over 1024).
#[test]
fn no_person_takes_the_whole_picture() {
    let case = Case::load("empty_1088x1040");
    assert_eq!(case.meta["boxes"], 0);
    run_case(&case, &case.replay());
}

/// The same with a detector that finds nothing at all (`multiclass_nms` returns None in
/// the reference): the same whole-picture crop, so the same frames.
#[test]
fn no_candidates_at_all() {
    let case = Case::load("empty_1088x1040");
    let mut nets = case.replay();
    for row in nets.det_output.chunks_exact_mut(DET_WIDTH) {
        row[4] = 0.0;
    }
    run_case(&case, &nets);
}

/// Networks whose outputs have the wrong shapes are refused with a message.
#[test]
fn wrong_output_shapes_are_errors() {
    struct Wrong {
        det: (usize, usize, usize),
        keypoints: usize,
    }
    impl PoseNetworks for Wrong {
        fn detect(&self, input: &Tensor) -> candle_core::Result<Tensor> {
            Tensor::zeros(self.det, DType::F32, input.device())
        }
        fn pose_input_size(&self) -> (usize, usize) {
            POSE_SIZE
        }
        fn estimate(&self, input: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
            let n = input.dim(0)?;
            Ok((
                Tensor::zeros((n, self.keypoints, WX), DType::F32, input.device())?,
                Tensor::zeros((n, self.keypoints, WY), DType::F32, input.device())?,
            ))
        }
    }
    let device = common::test_device();
    let frame = Frame::filled(64, 48, [10, 200, 30]);
    let err = dwpose::pose_frame(
        &Wrong {
            det: (1, 100, 85),
            keypoints: K,
        },
        &frame,
        Parts::Body,
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("detector output [1, 100, 85]"), "{err}");
    let err = dwpose::pose_frame(
        &Wrong {
            det: (1, ANCHORS, DET_WIDTH),
            keypoints: 17,
        },
        &frame,
        Parts::Body,
        &device,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("pose output"), "{err}");
    let bad = Frame {
        width: 4,
        height: 4,
        rgb: vec![0; 5],
    };
    assert!(
        dwpose::pose_frame(
            &Wrong {
                det: (1, ANCHORS, DET_WIDTH),
                keypoints: K
            },
            &bad,
            Parts::Body,
            &device
        )
        .is_err()
    );
}
