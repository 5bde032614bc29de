//! RAFT (large, formula weights) against the reference's own `FlowAnnotator` /
//! `FlowVisAnnotator`: raw `flow_up` and colour-wheel pictures of two frame pairs whose size
//! is not a multiple of 8 (so the padded, never unpadded, output size is checked too);
//! `load` on safetensors and on a real torch pickle with `module.`-prefixed keys, and its
//! errors. tests/data/annotators/README.md says how the goldens were made.

mod common;
#[path = "data/annotators/formula_weights.rs"]
mod formula_weights;

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use formula_weights::{data_dir, formula, weights};
use vaced::media::{Frame, load_still};
use vaced::preprocess::raft::{Raft, flow_to_image, padded_size};

/// Largest `max|rust - reference| / max|reference|` accepted for the raw flow (20 GRU
/// iterations feed rounding differences back; the reference itself moves by 2e-5 between
/// f32 and f64).
const RAW_REL_TOL: f32 = 1e-3;
/// Largest share of picture values allowed to differ by one level (a colour on the other
/// side of a `floor`); none may differ by more.
const OFF_BY_ONE_SHARE: f64 = 0.01;
/// The stored raw flow keeps every second row and column.
const GOLDEN_STEP: usize = 2;

const KEYS: &str = "flow_raft_keys.txt";
const FRAME_SIZE: (usize, usize) = (130, 125);

fn frames() -> Vec<Frame> {
    let (w, h) = FRAME_SIZE;
    (0..3)
        .map(|k| load_still(&data_dir().join(format!("flow_frame{k}_{w}x{h}.png"))).unwrap())
        .collect()
}

fn golden_flow(pair: usize) -> Tensor {
    let tensors =
        candle_core::safetensors::load(data_dir().join("flow_up.safetensors"), &Device::Cpu)
            .unwrap();
    tensors[&format!("flow_up_{pair}_every2")].clone()
}

fn golden_picture(pair: usize) -> Frame {
    load_still(&data_dir().join(format!("flow_vis{pair}.png"))).unwrap()
}

/// Compares a full padded flow field with the stored every-second-pixel golden.
fn check_raw(pair: usize, flow: &[f32]) {
    let (w, h) = padded_size(FRAME_SIZE.0, FRAME_SIZE.1);
    assert_eq!(flow.len(), w * h * 2, "pair {pair}: flow length");
    let golden = golden_flow(pair);
    let (gh, gw, _) = golden.dims3().unwrap();
    assert_eq!((gw, gh), (w.div_ceil(GOLDEN_STEP), h.div_ceil(GOLDEN_STEP)));
    let expected: Vec<f32> = golden.flatten_all().unwrap().to_vec1().unwrap();
    let mut max_diff = 0.0f32;
    for y in 0..gh {
        for x in 0..gw {
            for c in 0..2 {
                let got = flow[2 * (GOLDEN_STEP * y * w + GOLDEN_STEP * x) + c];
                let want = expected[2 * (y * gw + x) + c];
                max_diff = max_diff.max((got - want).abs());
            }
        }
    }
    let scale = expected.iter().map(|v| v.abs()).fold(0.0, f32::max);
    let rel = max_diff / scale;
    eprintln!(
        "pair {pair}: flow max|diff| {max_diff:.3e} px of max {scale:.2} px, relative {rel:.3e}"
    );
    assert!(
        rel <= RAW_REL_TOL,
        "pair {pair}: raw flow relative error {rel:.3e}"
    );
}

fn check_picture(what: &str, got: &Frame, expected: &Frame) {
    assert_eq!(
        (got.width, got.height),
        (expected.width, expected.height),
        "{what}: picture size"
    );
    let worst = got
        .rgb
        .iter()
        .zip(&expected.rgb)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    let off = got
        .rgb
        .iter()
        .zip(&expected.rgb)
        .filter(|(a, b)| a != b)
        .count();
    let share = off as f64 / expected.rgb.len() as f64;
    eprintln!("{what}: {off} of {} values off by one", expected.rgb.len());
    assert!(worst <= 1, "{what}: picture differs by {worst} levels");
    assert!(
        share <= OFF_BY_ONE_SHARE,
        "{what}: {share:.4} of the picture is off by one"
    );
}

/// Both pairs through `flow` (raw field and `flow_to_image`), then `flow_frames` on the
/// first two frames through a model loaded from safetensors.
#[test]
fn raft_matches_reference() {
    let tensors = weights(KEYS);
    let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &common::test_device());
    let model = Raft::new(vb).unwrap();
    let frames = frames();
    let (w, h) = padded_size(FRAME_SIZE.0, FRAME_SIZE.1);
    assert_eq!((w, h), (136, 128));
    for pair in 0..2 {
        let start = Instant::now();
        let flow = model.flow(&frames[pair], &frames[pair + 1]).unwrap();
        eprintln!("pair {pair}: {:.2?}", start.elapsed());
        check_raw(pair, &flow);
        let picture = flow_to_image(&flow, w, h);
        check_picture(&format!("pair {pair}"), &picture, &golden_picture(pair));
    }

    // `load` of a safetensors file whose keys carry DataParallel's `module.`, as
    // raft-things.pth does.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft-things.safetensors");
    let prefixed: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(name, tensor)| (format!("module.{name}"), tensor))
        .collect();
    candle_core::safetensors::save(&prefixed, &path).unwrap();
    let loaded = Raft::load(&path, &common::test_device()).unwrap();
    let pictures = loaded.flow_frames(&frames[..2]).unwrap();
    assert_eq!(pictures.len(), 2, "N frames give N pictures");
    for (i, picture) in pictures.iter().enumerate() {
        check_picture(&format!("flow_frames[{i}]"), picture, &golden_picture(0));
    }
}

#[test]
fn flow_frames_of_one_frame_is_empty_as_in_the_reference() {
    let vb = VarBuilder::zeros(DType::F32, &Device::Cpu);
    let model = Raft::new(vb).unwrap();
    assert!(model.flow_frames(&frames()[..1]).unwrap().is_empty());
}

#[test]
fn flow_refuses_frames_the_reference_cannot_handle() {
    let model = Raft::new(VarBuilder::zeros(DType::F32, &Device::Cpu)).unwrap();
    let small = Frame::filled(120, 200, [10, 20, 30]);
    let message = model.flow(&small, &small).unwrap_err().to_string();
    assert!(
        message.contains("at least 121x121") && message.contains("120x200"),
        "{message}"
    );
    let other = Frame::filled(130, 126, [10, 20, 30]);
    let message = model.flow(&frames()[0], &other).unwrap_err().to_string();
    assert!(message.contains("130x125 then 130x126"), "{message}");
}

/// The fixture is a `torch.save`d subset of the state dict with `module.` keys, as
/// raft-things.pth has them (`fnet.conv1.bias` and the context encoder's first batch norm,
/// including its int64 `num_batches_tracked`, which must not stop the load): `load` must
/// read it and name the first tensor the file lacks.
#[test]
fn load_reads_torch_pickles_with_module_prefix() {
    let path = data_dir().join("flow_raft_subset.pth");
    let vb = VarBuilder::from_pth(&path, DType::F32, &Device::Cpu).unwrap();
    for name in [
        "fnet.conv1.bias",
        "cnet.norm1.running_var",
        "cnet.norm1.weight",
    ] {
        let tensor = vb.get(64, &format!("module.{name}")).unwrap();
        let values: Vec<f32> = tensor.to_vec1().unwrap();
        assert_eq!(values, formula(name, &[64]), "{name}");
    }
    let message = load_error(&path);
    assert!(
        message.contains("flow_raft_subset.pth")
            && message.contains("tensor `fnet.conv1.weight`")
            && message.contains("is missing")
            && message.contains("raft-things.pth"),
        "{message}"
    );
}

fn load_error(path: &Path) -> String {
    let message = Raft::load(path, &Device::Cpu).unwrap_err().to_string();
    eprintln!("{message}");
    message
}

#[test]
fn load_explains_a_missing_file() {
    let path = data_dir().join("no_such_raft-things.pth");
    let message = load_error(&path);
    assert!(
        message.contains("no_such_raft-things.pth")
            && message.contains("not found")
            && message.contains("flow/raft-things.pth of ali-vilab/VACE-Annotators"),
        "{message}"
    );
}

#[test]
fn load_refuses_a_file_that_is_no_checkpoint() {
    let path = data_dir().join(KEYS);
    let message = load_error(&path);
    assert!(
        message.contains(KEYS) && message.contains("cannot read the file"),
        "{message}"
    );
}
