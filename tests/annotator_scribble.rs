//! The scribble line-art network (formula weights) against the reference's own
//! `ScribbleAnnotator.forward`, for a frame whose sides are multiples of 4 and one whose are
//! not; and `load` on a real torch pickle with the reference's key names.
//! tests/data/annotators/README.md says how the goldens were made.

mod common;
#[path = "data/annotators/formula_weights.rs"]
mod formula_weights;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use formula_weights::{data_dir, formula, keys, weights};
use vaced::media::load_still;
use vaced::preprocess::scribble_net::ScribbleNet;

/// Largest share of line-map values allowed to differ by one grey level (a value on the
/// other side of a truncation boundary); none may differ by more.
const OFF_BY_ONE_SHARE: f64 = 0.01;

const KEYS: &str = "scribble_keys.txt";

fn check_case(net: &ScribbleNet, case: &str) {
    let input = load_still(&data_dir().join(format!("scene_{case}.png"))).unwrap();
    let golden = load_still(&data_dir().join(format!("scribble_{case}.png"))).unwrap();
    let frame = net.line_frame(&input).unwrap();
    assert_eq!(
        (frame.width, frame.height),
        (golden.width, golden.height),
        "{case}: frame size"
    );
    let worst = frame
        .rgb
        .iter()
        .zip(&golden.rgb)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    let off = frame
        .rgb
        .iter()
        .zip(&golden.rgb)
        .filter(|(a, b)| a != b)
        .count();
    let share = off as f64 / golden.rgb.len() as f64;
    eprintln!("{case}: {off} of {} values off by one", golden.rgb.len());
    assert!(
        worst <= 1,
        "{case}: line map differs by {worst} grey levels"
    );
    assert!(
        share <= OFF_BY_ONE_SHARE,
        "{case}: {share:.4} of the line map is off by one"
    );
}

#[test]
fn scribble_net_matches_reference() {
    let vb = VarBuilder::from_tensors(weights(KEYS), DType::F32, &common::test_device());
    let net = ScribbleNet::new(vb).unwrap();
    check_case(&net, "64x80");
    // 45x30 comes back 48x32, as the reference's network returns it.
    check_case(&net, "45x30");
}

#[test]
fn scribble_net_loads_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("netG_A_latest.safetensors");
    candle_core::safetensors::save(&weights(KEYS), &path).unwrap();
    let net = ScribbleNet::load(&path, &common::test_device()).unwrap();
    check_case(&net, "64x80");
}

/// The fixture is a `torch.save`d subset of the state dict (stem and output layers; the
/// whole net is 17 MB): `load` must read those tensors under the reference's names with the
/// formula's values, then stop at the first layer the file lacks, naming it.
#[test]
fn load_reads_torch_pickles_with_reference_names() {
    let path = data_dir().join("scribble_subset.pth");
    let vb = VarBuilder::from_pth(&path, DType::F32, &Device::Cpu).unwrap();
    let all = keys(KEYS);
    let stored: Vec<_> = all
        .iter()
        .filter(|(name, _)| name.starts_with("model0.") || name.starts_with("model4."))
        .collect();
    assert_eq!(stored.len(), 4);
    for (name, shape) in stored {
        let tensor = vb.get(shape.as_slice(), name).unwrap();
        let values: Vec<f32> = tensor.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(values, formula(name, shape), "{name}");
    }

    let message = match ScribbleNet::load(&path, &Device::Cpu) {
        Ok(_) => panic!("a partial checkpoint loaded"),
        Err(err) => err.to_string(),
    };
    assert!(
        message.contains("scribble_subset.pth")
            && message.contains("tensor `model1.0.weight` is missing")
            && message.contains("netG_A_latest.pth"),
        "{message}"
    );
}

#[test]
fn load_explains_a_missing_file() {
    let path = data_dir().join("no_such_netG_A_latest.pth");
    let message = match ScribbleNet::load(&path, &Device::Cpu) {
        Ok(_) => panic!("a missing file loaded"),
        Err(err) => err.to_string(),
    };
    assert!(
        message.contains("no_such_netG_A_latest.pth") && message.contains("not found"),
        "{message}"
    );
}
