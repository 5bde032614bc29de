//! Shared helpers for the parity tests: locating the reference fixtures, reading them, and
//! comparing tensors with the tolerances of the fixtures' README.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

/// Relative error bound for DiT, T5 outputs, VAE latents and scheduler samples (f32).
pub const REL_TOL: f64 = 1e-4;
/// Max abs error bound for decoded VAE frames.
pub const DECODE_ABS_TOL: f64 = 1e-3;
/// Relative error bound for the tiny pipeline's final latent (f32).
pub const PIPELINE_LATENT_REL_TOL: f64 = 1e-3;
/// Max abs error bound for the tiny pipeline's decoded video (f32).
pub const PIPELINE_VIDEO_ABS_TOL: f64 = 5e-3;
/// bf16 bounds (issue "The engine on the GPU"): a DiT forward and the T5 output.
pub const BF16_REL_TOL: f64 = 2e-2;
/// bf16 bound of the tiny pipeline's final latent.
pub const BF16_PIPELINE_LATENT_REL_TOL: f64 = 5e-2;
/// VAE bounds with TF32 convolutions (a bf16 pipeline's on CUDA). The reference's own VAE
/// run on an H200 under PyTorch's default `allow_tf32` lands this far from its CPU f32 output
/// (the fixtures): latents 3.9e-4 (image 2.8e-4) relative, decode 4.6e-3 relative (max abs
/// 3.3e-2), as spec §5 expects ("roughly 1e-3"); about twice that is allowed.
pub const TF32_LATENT_REL_TOL: f64 = 1e-3;
pub const TF32_DECODE_REL_TOL: f64 = 1e-2;

/// The device the parity tests run on: `$VACED_TEST_DEVICE` (`cpu`, `cuda:N`), default cpu.
pub fn test_device() -> Device {
    match std::env::var("VACED_TEST_DEVICE").ok().as_deref() {
        None | Some("") | Some("cpu") => Device::Cpu,
        Some(spec) => {
            let ordinal = spec
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .expect("VACED_TEST_DEVICE: cpu or cuda:N");
            Device::new_cuda(ordinal).expect("opening the CUDA device of VACED_TEST_DEVICE")
        }
    }
}

/// The compute dtype of the parity tests: `$VACED_TEST_DTYPE` (`f32`, `bf16`), default f32.
pub fn test_dtype() -> DType {
    match std::env::var("VACED_TEST_DTYPE").ok().as_deref() {
        None | Some("") | Some("f32") => DType::F32,
        Some("bf16") => DType::BF16,
        Some(other) => panic!("VACED_TEST_DTYPE={other}: use f32 or bf16"),
    }
}

/// `f32_bound` when testing in f32, else `bf16_bound`.
pub fn tolerance(f32_bound: f64, bf16_bound: f64) -> f64 {
    if test_dtype() == DType::F32 {
        f32_bound
    } else {
        bf16_bound
    }
}

/// The fixture folder: `$VACED_FIXTURES`, else `../shared/fixtures/vace` from the repository.
pub fn fixtures_dir() -> PathBuf {
    let dir = match std::env::var_os("VACED_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/vace"),
    };
    assert!(
        dir.is_dir(),
        "parity fixtures not found at {}; set VACED_FIXTURES to the fixture folder",
        dir.display()
    );
    dir
}

/// Case names in the fixture folder whose JSON starts with `prefix`.
pub fn cases(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir())
        .expect("reading the fixture folder")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    assert!(
        !names.is_empty(),
        "no `{prefix}*.json` case in {}",
        fixtures_dir().display()
    );
    names
}

pub fn json(case: &str) -> serde_json::Value {
    let path = fixtures_dir().join(format!("{case}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture file's tensors, on the test device.
pub fn tensors(file: &str) -> HashMap<String, Tensor> {
    let path = fixtures_dir().join(file);
    candle_core::safetensors::load(&path, &test_device())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `NAME.io.safetensors` tensors of a case.
pub fn io(case: &str) -> HashMap<String, Tensor> {
    tensors(&format!("{case}.io.safetensors"))
}

/// The weights of a case: `CASE.weights.safetensors`, or that of the longest prefix of the
/// case name ending before an `_` (`dit_vace_ref` uses `dit_vace.weights.safetensors`).
pub fn weights_file(case: &str) -> PathBuf {
    let mut name = case;
    loop {
        let path = fixtures_dir().join(format!("{name}.weights.safetensors"));
        if path.exists() {
            return path;
        }
        match name.rfind('_') {
            Some(cut) => name = &name[..cut],
            None => panic!(
                "no weights file for case {case} in {}",
                fixtures_dir().display()
            ),
        }
    }
}

pub fn weights(case: &str) -> VarBuilder<'static> {
    let path = weights_file(case);
    let device = test_device();
    let tensors = candle_core::safetensors::load(&path, &device).unwrap();
    VarBuilder::from_tensors(tensors, test_dtype(), &device)
}

pub fn get<'a>(io: &'a HashMap<String, Tensor>, name: &str) -> &'a Tensor {
    io.get(name)
        .unwrap_or_else(|| panic!("fixture tensor `{name}` missing"))
}

fn flat(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// `||got − want|| / ||want||` and the largest absolute difference.
pub fn errors(got: &Tensor, want: &Tensor) -> (f64, f64) {
    assert_eq!(got.dims(), want.dims(), "shape differs from the reference");
    let (g, w) = (flat(got), flat(want));
    let (mut diff2, mut norm2, mut max_abs) = (0.0, 0.0, 0.0f64);
    for (a, b) in g.iter().zip(&w) {
        diff2 += (a - b) * (a - b);
        norm2 += b * b;
        max_abs = max_abs.max((a - b).abs());
    }
    ((diff2 / norm2.max(f64::MIN_POSITIVE)).sqrt(), max_abs)
}

pub fn assert_rel(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    let (rel, max_abs) = errors(got, want);
    assert!(
        rel <= tol,
        "{what}: relative error {rel:.3e} > {tol:.0e} (largest abs difference {max_abs:.3e})"
    );
    eprintln!("{what}: relative error {rel:.2e}, largest abs difference {max_abs:.2e}");
}

pub fn assert_abs(what: &str, got: &Tensor, want: &Tensor, tol: f64) {
    let (rel, max_abs) = errors(got, want);
    assert!(
        max_abs <= tol,
        "{what}: largest abs difference {max_abs:.3e} > {tol:.0e} (relative {rel:.3e})"
    );
    eprintln!("{what}: largest abs difference {max_abs:.2e}, relative error {rel:.2e}");
}

/// A `dit_*` fixture case: the model built from its weights, its tensors, the timestep and
/// the context scale of its reference forward.
pub fn dit_case(
    case: &str,
) -> (
    vaced::engine::dit::WanModel,
    HashMap<String, Tensor>,
    f64,
    f64,
) {
    let meta = json(case);
    let cfg: vaced::engine::config::DitConfig =
        serde_json::from_value(meta["config"].clone()).unwrap();
    let model = vaced::engine::dit::WanModel::new(&cfg, weights(case)).unwrap();
    let io = io(case);
    let t = get(&io, "t").to_vec1::<f32>().unwrap()[0] as f64;
    let context_scale = meta["context_scale"].as_f64().unwrap();
    (model, io, t, context_scale)
}

/// A pipeline case's pixel inputs (the reference image only when the case has one) and
/// its sampling settings.
pub fn pipeline_case_inputs(
    case: &str,
) -> (
    vaced::engine::conditioning::VaceInputs,
    vaced::engine::pipeline::SamplingParams,
) {
    let meta = json(case);
    let io = io(case);
    let inputs = vaced::engine::conditioning::VaceInputs {
        frames: get(&io, "src_video").clone(),
        mask: get(&io, "src_mask").clone(),
        refs: io.get("ref_image").cloned().into_iter().collect(),
    };
    let params = vaced::engine::pipeline::SamplingParams {
        steps: meta["steps"].as_u64().unwrap() as usize,
        shift: meta["shift"].as_f64().unwrap(),
        guide_scale: meta["guide_scale"].as_f64().unwrap(),
        context_scale: meta["context_scale"].as_f64().unwrap(),
        solver: vaced::engine::scheduler::SolverKind::UniPc,
    };
    (inputs, params)
}

/// Runs a pipeline case's whole generation with the given models from the case's noise and
/// text states; returns the final latent, the decoded video and the steps observed.
pub fn run_pipeline_case(
    case: &str,
    dit: &vaced::engine::dit::WanModel,
    vae: &vaced::engine::vae::WanVae,
) -> (Tensor, Tensor, usize) {
    let io = io(case);
    let (inputs, params) = pipeline_case_inputs(case);
    let z = vaced::engine::conditioning::vace_context(vae, &inputs).unwrap();
    let mut steps_seen = 0;
    let latent = vaced::engine::pipeline::sample(
        dit,
        &z,
        get(&io, "context"),
        get(&io, "context_null"),
        get(&io, "noise").clone(),
        &params,
        &mut |_| {
            steps_seen += 1;
            std::ops::ControlFlow::Continue(())
        },
    )
    .unwrap();
    let video = vaced::engine::pipeline::decode(vae, &latent, inputs.refs.len()).unwrap();
    (latent, video, steps_seen)
}

/// The smallest cosine similarity between matching rows (last dimension) of two tensors.
pub fn min_row_cosine(got: &Tensor, want: &Tensor) -> f64 {
    assert_eq!(got.dims(), want.dims(), "shape differs from the reference");
    let width = *got.dims().last().unwrap();
    let (g, w) = (flat(got), flat(want));
    g.chunks(width)
        .zip(w.chunks(width))
        .map(|(a, b)| {
            let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
            dot / (na * nb).max(f64::MIN_POSITIVE)
        })
        .fold(1.0, f64::min)
}

/// Smallest per-token cosine similarity of the bf16 text encoder against the f32 reference.
/// The spec's 0.999 is bf16 against PyTorch bf16; against the f32 fixture the weights'
/// rounding to bf16 adds its own error (0.997 measured on the fixture), and a real mistake
/// drops far lower.
pub const BF16_T5_MIN_COSINE: f64 = 0.99;

/// In f32 the relative error bound; in bf16 a per-token cosine similarity bound.
pub fn assert_t5_close(what: &str, got: &Tensor, want: &Tensor) {
    if test_dtype() == DType::F32 {
        assert_rel(what, got, want, REL_TOL);
    } else {
        let cosine = min_row_cosine(got, want);
        assert!(
            cosine > BF16_T5_MIN_COSINE,
            "{what}: smallest per-token cosine similarity {cosine:.5} ≤ {BF16_T5_MIN_COSINE}"
        );
        eprintln!("{what}: smallest per-token cosine similarity {cosine:.5}");
    }
}
