//! The ONNX runner against onnxruntime: small, architecture-faithful YOLOX and RTMPose
//! exports (TorchScript opset 11 and 17, the dynamo exporter at opset 18, onnxsim), the
//! two stand-ins for DWPose's real files, and one graph per operator form.
//! tests/data/onnx/README.md says how the fixtures were made. `VACED_ONNX_FIXTURES`
//! points elsewhere for that folder (a GPU machine without the source tree).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use vaced::preprocess::onnx::OnnxModel;

/// Bound on max |ours − onnxruntime| / max |onnxruntime| per output (f32).
const REL_TOL: f64 = 1e-4;

fn data_dir() -> PathBuf {
    match std::env::var_os("VACED_ONNX_FIXTURES") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx"),
    }
}

/// `(n, c, h, w)` values `((h·7 + w·13 + c·29 + n·31 + (h·w) mod 17) mod 256 − offset) /
/// scale`, as the generator made them (exact in f32).
fn formula(shape: [usize; 4], scale: f64, offset: f64, device: &Device) -> Tensor {
    let [n, c, h, w] = shape;
    let mut v = Vec::with_capacity(n * c * h * w);
    for ni in 0..n {
        for ci in 0..c {
            for hi in 0..h {
                for wi in 0..w {
                    let x = (hi * 7 + wi * 13 + ci * 29 + ni * 31 + (hi * wi) % 17) % 256;
                    v.push(((x as f64 - offset) / scale) as f32);
                }
            }
        }
    }
    Tensor::from_vec(v, (n, c, h, w), device).unwrap()
}

/// The golden tensors of `file`, keyed as stored (`prefix` stripped).
fn goldens(file: &Path, prefix: &str) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(file, &Device::Cpu)
        .unwrap()
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_string(), v)))
        .collect()
}

/// The model's inputs from the goldens: stored values, or the formula's parameters.
fn golden_inputs(model: &OnnxModel, g: &HashMap<String, Tensor>, device: &Device) -> Vec<Tensor> {
    model
        .inputs()
        .iter()
        .map(|(name, _)| {
            if let Some(t) = g.get(&format!("input:{name}")) {
                return t.to_device(device).unwrap();
            }
            let p = g
                .get(&format!("formula:{name}"))
                .unwrap_or_else(|| panic!("no golden for input {name}"))
                .to_vec1::<f64>()
                .unwrap();
            let shape = [p[0] as usize, p[1] as usize, p[2] as usize, p[3] as usize];
            formula(shape, p[4], p[5], device)
        })
        .collect()
}

/// Max |got − want| / max |want|, after picking the stored rows (dim 1) if any.
fn rel_error(got: &Tensor, want: &Tensor, rows: Option<&Tensor>) -> f64 {
    let got = got.to_device(&Device::Cpu).unwrap();
    let got = match rows {
        Some(r) => got.index_select(r, 1).unwrap(),
        None => got,
    };
    assert_eq!(got.dims(), want.dims(), "shape");
    let got = got.to_dtype(DType::F64).unwrap();
    let want = want.to_dtype(DType::F64).unwrap();
    let err = (got - &want)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let scale = want
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    if scale == 0.0 { err } else { err / scale }
}

/// Loads `name.onnx` from the fixtures, runs it on its golden inputs and compares every
/// output; returns the worst relative error.
fn check_model(name: &str) -> f64 {
    check_model_in(&data_dir(), name, REL_TOL)
}

fn check_model_in(dir: &Path, name: &str, tol: f64) -> f64 {
    let device = common::test_device();
    let model = OnnxModel::load(&dir.join(format!("{name}.onnx")), &device).unwrap();
    let g = goldens(&dir.join(format!("{name}.safetensors")), "");
    let outs = model.run(&golden_inputs(&model, &g, &device)).unwrap();
    let mut worst: f64 = 0.0;
    for (oname, got) in model.output_names().iter().zip(&outs) {
        let want = &g[&format!("output:{oname}")];
        let e = rel_error(got, want, g.get(&format!("rows:{oname}")));
        eprintln!("{name}: {oname} {:?} relative error {e:.3e}", got.dims());
        assert!(e <= tol, "{name}: {oname} relative error {e:.3e}");
        worst = worst.max(e);
    }
    worst
}

#[test]
fn detector_stand_in_matches_onnxruntime() {
    let device = common::test_device();
    let model = OnnxModel::load(&data_dir().join("yolox_l_tiny.onnx"), &device).unwrap();
    assert_eq!(
        model.inputs(),
        vec![(
            "images".to_string(),
            vec![Some(1), Some(3), Some(640), Some(640)]
        )]
    );
    assert_eq!(model.output_names(), vec!["output".to_string()]);
    check_model("yolox_l_tiny");
}

#[test]
fn pose_stand_in_matches_onnxruntime() {
    let device = common::test_device();
    let model = OnnxModel::load(&data_dir().join("dw-ll_ucoco_384_tiny.onnx"), &device).unwrap();
    assert_eq!(
        model.inputs(),
        vec![(
            "input".to_string(),
            vec![None, Some(3), Some(384), Some(288)]
        )]
    );
    assert_eq!(model.output_names(), vec!["simcc_x", "simcc_y"]);
    check_model("dw-ll_ucoco_384_tiny");
}

#[test]
fn other_exporter_forms_match_onnxruntime() {
    for name in [
        "yolox_small_opset17",
        "rtmpose_small_opset17",
        "rtmpose_small_dynamo",
    ] {
        check_model(name);
    }
}

#[test]
fn pose_batch_of_two_equals_two_single_runs() {
    let device = common::test_device();
    let model = OnnxModel::load(&data_dir().join("dw-ll_ucoco_384_tiny.onnx"), &device).unwrap();
    let both = formula([2, 3, 384, 288], 64.0, 128.0, &device);
    let batch = model.run(std::slice::from_ref(&both)).unwrap();
    assert_eq!(batch[0].dims(), &[2, 133, 576]);
    assert_eq!(batch[1].dims(), &[2, 133, 768]);
    for i in 0..2 {
        let single = model.run(&[both.narrow(0, i, 1).unwrap()]).unwrap();
        for (b, s) in batch.iter().zip(&single) {
            let e = rel_error(
                &b.narrow(0, i, 1).unwrap(),
                &s.to_device(&Device::Cpu).unwrap(),
                None,
            );
            eprintln!("batch item {i}: relative difference {e:.3e}");
            assert!(e <= 1e-5, "batch item {i} differs by {e:.3e}");
        }
    }
}

#[test]
fn operators_match_onnxruntime() {
    let device = common::test_device();
    let dir = data_dir().join("ops");
    let all =
        candle_core::safetensors::load(dir.join("goldens.safetensors"), &Device::Cpu).unwrap();
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension()? == "onnx").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "only {} operator fixtures", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let model = match OnnxModel::load(&dir.join(format!("{case}.onnx")), &device) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{case}: load: {e}"));
                continue;
            }
        };
        let inputs: Vec<Tensor> = model
            .inputs()
            .iter()
            .map(|(n, _)| {
                all[&format!("{case}/input:{n}")]
                    .to_device(&device)
                    .unwrap()
            })
            .collect();
        let outs = match model.run(&inputs) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{case}: run: {e}"));
                continue;
            }
        };
        let mut worst: f64 = 0.0;
        for (name, got) in model.output_names().iter().zip(&outs) {
            let want = &all[&format!("{case}/output:{name}")];
            let got = if got.dtype() == DType::U8 || got.dtype() == DType::I64 {
                got.to_dtype(DType::F32).unwrap()
            } else {
                got.clone()
            };
            // candle reads a 0-d safetensors entry back as shape [1].
            let got = if got.rank() == 0 && want.dims() == [1] {
                got.reshape(1).unwrap()
            } else {
                got
            };
            if got.dims() != want.dims() {
                failures.push(format!(
                    "{case}: {name} has shape {:?}, onnxruntime {:?}",
                    got.dims(),
                    want.dims()
                ));
                continue;
            }
            let e = rel_error(&got, want, None);
            if e > REL_TOL {
                failures.push(format!("{case}: {name} relative error {e:.3e}"));
            }
            worst = worst.max(e);
        }
        eprintln!("{case}: worst relative error {worst:.3e}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn unsupported_operators_are_refused_at_load() {
    let path = data_dir().join("unsupported.onnx");
    let err = OnnxModel::load(&path, &Device::Cpu)
        .expect_err("a graph with Einsum and TopK must be refused")
        .to_string();
    eprintln!("{err}");
    for needle in ["unsupported.onnx", "Einsum", "TopK", "mode=cubic"] {
        assert!(err.contains(needle), "message lacks {needle}: {err}");
    }
    assert!(!err.contains("Relu"), "Relu is implemented: {err}");
}

#[test]
fn external_data_is_refused_at_load() {
    let err = OnnxModel::load(&data_dir().join("external_data.onnx"), &Device::Cpu)
        .expect_err("external data must be refused")
        .to_string();
    eprintln!("{err}");
    assert!(err.contains("external_data.bin"), "{err}");
    assert!(err.contains("save_as_external_data=False"), "{err}");
}

#[test]
fn bad_files_and_inputs_are_errors() {
    let err = OnnxModel::load(&data_dir().join("README.md"), &Device::Cpu)
        .expect_err("a README is no model")
        .to_string();
    assert!(
        err.contains("README.md") && err.contains("not an ONNX model"),
        "{err}"
    );
    let model =
        OnnxModel::load(&data_dir().join("yolox_small_opset17.onnx"), &Device::Cpu).unwrap();
    let wrong = Tensor::zeros((1, 3, 64, 64), DType::F32, &Device::Cpu).unwrap();
    let err = model.run(&[wrong]).expect_err("wrong size").to_string();
    assert!(
        err.contains("'images'") && err.contains("[1, 3, 96, 64]"),
        "{err}"
    );
}

/// Full-size YOLOX-L and RTMPose-L (random weights; made on the GPU machine by the
/// generator, too large to keep here) against onnxruntime, with timings:
/// `VACED_ONNX_FULL=<dir> VACED_TEST_DEVICE=cuda:0 onnx_models --ignored --nocapture`.
#[test]
#[ignore]
fn full_size_models() {
    let Some(dir) = std::env::var_os("VACED_ONNX_FULL").map(PathBuf::from) else {
        eprintln!("VACED_ONNX_FULL is not set");
        return;
    };
    let device = common::test_device();
    for (name, batch) in [
        ("yolox_l_full", 1),
        ("rtmpose_l_full", 1),
        ("rtmpose_l_full", 8),
    ] {
        let t = std::time::Instant::now();
        let model = OnnxModel::load(&dir.join(format!("{name}.onnx")), &device).unwrap();
        eprintln!("{name}: load {:.3} s", t.elapsed().as_secs_f64());
        if batch == 1 {
            check_model_in(&dir, name, 1e-3);
        }
        let g = goldens(&dir.join(format!("{name}.safetensors")), "");
        let mut inputs = golden_inputs(&model, &g, &device);
        if batch > 1 {
            let x = &inputs[0];
            inputs[0] = Tensor::cat(&vec![x.clone(); batch], 0).unwrap();
        }
        let finish = |outs: Vec<Tensor>| {
            for o in outs {
                o.to_device(&Device::Cpu).unwrap();
            }
        };
        finish(model.run(&inputs).unwrap());
        let reps = 20;
        let t = std::time::Instant::now();
        for _ in 0..reps {
            finish(model.run(&inputs).unwrap());
        }
        eprintln!(
            "{name}: batch {batch}: {:.2} ms a run (mean of {reps}, outputs copied to the host)",
            t.elapsed().as_secs_f64() * 1e3 / reps as f64
        );
        let (_, profile) = model.profile(&inputs).unwrap();
        let total: f64 = profile.iter().map(|p| p.1).sum();
        eprintln!(
            "{name}: batch {batch}: profile (waiting after each node), {:.2} ms:",
            total * 1e3
        );
        for (kind, secs, n) in profile.iter().take(12) {
            eprintln!("  {kind:<24} {:>8.3} ms  {n:>4} nodes", secs * 1e3);
        }
    }
}
