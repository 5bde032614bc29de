//! Checkpoint folders in the official layout, assembled from the fixture files: they load to
//! the same tensors and generate the same video as the reference, and every kind of broken
//! folder gives an error that names the file, the tensor and what to do.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::*;
use tempfile::TempDir;
use vaced::engine::checkpoint::{self, Access, LoadError, ModelDir, TensorFiles};
use vaced::engine::config::{DitConfig, T5Config};
use vaced::engine::random_weights::RandomWeights;
use vaced::engine::text::{EOS_ID, Umt5Encoder};

const PIPELINE: &str = "pipeline_tiny";
/// Keys the reference leaves out of the published config.json.
const UNSERIALIZED_KEYS: [&str; 5] = [
    "patch_size",
    "window_size",
    "qk_norm",
    "cross_attn_norm",
    "text_dim",
];

fn cpu() -> Device {
    Device::Cpu
}

/// The pipeline case's tensors under `prefix`, with the prefix removed.
fn prefixed(prefix: &str) -> BTreeMap<String, Tensor> {
    tensors(&format!("{PIPELINE}.weights.safetensors"))
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|k| (k.to_owned(), v)))
        .collect()
}

fn save(tensors: &BTreeMap<String, Tensor>, path: &Path) {
    let map: HashMap<&str, Tensor> = tensors
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    candle_core::safetensors::save(&map, path).unwrap();
}

/// A tokenizer.json shaped like google/umt5-xxl's: unigram pieces, metaspace, `$A </s>`.
fn write_tokenizer(path: &Path) {
    use tokenizers::models::unigram::Unigram;
    use tokenizers::pre_tokenizers::metaspace::Metaspace;
    use tokenizers::processors::template::TemplateProcessing;
    let pieces = ["<pad>", "</s>", "<unk>", "▁a", "▁cat", "▁c", "a", "t", "▁"];
    let vocab = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.to_string(), -(i as f64)))
        .collect();
    let mut tokenizer = tokenizers::Tokenizer::new(Unigram::from(vocab, Some(2), false).unwrap());
    tokenizer.with_pre_tokenizer(Some(Metaspace::default()));
    let template = TemplateProcessing::builder()
        .try_single("$A </s>")
        .unwrap()
        .special_tokens(vec![("</s>", EOS_ID)])
        .build()
        .unwrap();
    tokenizer.with_post_processor(Some(template));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    tokenizer.save(path, false).unwrap();
}

/// Copies `fixture.pth` if its tensors equal `expected`, else writes the safetensors twin.
fn place_weights(
    dir: &Path,
    pth_fixture: &str,
    pth_name: &str,
    st_name: &str,
    expected: &BTreeMap<String, Tensor>,
) {
    let fixture = fixtures_dir().join(pth_fixture);
    let files = Arc::new(TensorFiles::pth(&fixture, "fixture").unwrap());
    let vb = files.var_builder(Access::Load, DType::F32, &cpu());
    let same = expected.iter().all(|(name, want)| {
        vb.get_unchecked(name)
            .is_ok_and(|got| errors(&got, want).1 == 0.0)
    });
    if same {
        std::fs::copy(&fixture, dir.join(pth_name)).unwrap();
    } else {
        save(expected, &dir.join(st_name));
    }
}

/// An official-layout folder made of the pipeline case's DiT and VAE and the T5 fixture.
fn assemble() -> TempDir {
    let dir = TempDir::new().unwrap();
    let meta = json(PIPELINE);
    let mut config = meta["dit_config"].as_object().unwrap().clone();
    for key in UNSERIALIZED_KEYS {
        config.remove(key);
    }
    config.insert("_class_name".into(), "VaceWanModel".into());
    config.insert("model_type".into(), "vace".into());
    std::fs::write(
        dir.path().join(checkpoint::DIT_CONFIG),
        serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    save(&prefixed("dit."), &dir.path().join(checkpoint::DIT_WEIGHTS));
    place_weights(
        dir.path(),
        "vae_small.pth",
        checkpoint::VAE_WEIGHTS,
        checkpoint::VAE_WEIGHTS_SAFETENSORS,
        &prefixed("vae."),
    );
    std::fs::copy(
        fixtures_dir().join("t5_umt5.bf16.pth"),
        dir.path().join(checkpoint::T5_WEIGHTS),
    )
    .unwrap();
    write_tokenizer(&dir.path().join(checkpoint::TOKENIZER));
    dir
}

fn final_latent_of(model_dir: &ModelDir) -> (Tensor, Tensor) {
    let dit = model_dir.load_dit(&cpu(), DType::F32).unwrap();
    let vae = model_dir.load_vae(&cpu()).unwrap();
    let (latent, video, _) = run_pipeline_case(PIPELINE, &dit, &vae);
    (latent, video)
}

#[test]
fn parity_pth_fixtures_hold_the_safetensors_tensors() {
    for (pth, twin, bf16) in [
        ("t5_umt5.bf16.pth", "t5_umt5.weights.safetensors", true),
        ("vae_small.pth", "vae_small.weights.safetensors", false),
    ] {
        let files = Arc::new(TensorFiles::pth(&fixtures_dir().join(pth), "fixture").unwrap());
        let vb = files.var_builder(Access::Load, DType::F32, &cpu());
        let twin = tensors(twin);
        let mut names: Vec<&str> = files.names().collect();
        names.sort();
        let mut twin_names: Vec<&str> = twin.keys().map(String::as_str).collect();
        twin_names.sort();
        assert_eq!(names, twin_names, "{pth}: tensor names");
        for (name, want) in &twin {
            let want = if bf16 {
                want.to_dtype(DType::BF16)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap()
            } else {
                want.clone()
            };
            let got = vb.get_unchecked(name).unwrap();
            assert_eq!(
                errors(&got, &want).1,
                0.0,
                "{pth}: `{name}` differs from its safetensors twin"
            );
        }
    }
}

#[test]
fn parity_official_layout_folder_reproduces_the_tiny_generation() {
    let dir = assemble();
    let model_dir = ModelDir::open(dir.path()).unwrap();
    let (latent, video) = final_latent_of(&model_dir);
    let io = io(PIPELINE);
    assert_rel(
        "folder final_latent",
        &latent,
        get(&io, "final_latent"),
        PIPELINE_LATENT_REL_TOL,
    );
    assert_abs(
        "folder video",
        &video,
        get(&io, "video"),
        PIPELINE_VIDEO_ABS_TOL,
    );
}

#[test]
fn parity_folder_text_encoder_matches_the_bf16_weights() {
    let dir = assemble();
    let text = ModelDir::open(dir.path())
        .unwrap()
        .load_text_encoder(&cpu(), DType::F32)
        .unwrap();
    // The tokenizer's pieces, then `</s>`.
    assert_eq!(text.token_ids("  a   cat ").unwrap(), vec![3, 4, EOS_ID]);

    let meta = json("t5_umt5");
    let cfg: T5Config = serde_json::from_value(meta["config"].clone()).unwrap();
    let rounded: HashMap<String, Tensor> = tensors("t5_umt5.weights.safetensors")
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.to_dtype(DType::BF16)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap(),
            )
        })
        .collect();
    let expected =
        Umt5Encoder::new(&cfg, VarBuilder::from_tensors(rounded, DType::F32, &cpu())).unwrap();
    let io = io("t5_umt5");
    let ids = get(&io, "ids").to_dtype(DType::U32).unwrap();
    let got = text
        .device_encoder()
        .unwrap()
        .forward(&ids, get(&io, "mask"))
        .unwrap();
    let want = expected.forward(&ids, get(&io, "mask")).unwrap();
    assert_rel("folder t5 out", &got, &want, 1e-6);
}

#[test]
fn sharded_dit_weights_load_through_the_index() {
    let dir = assemble();
    let single = ModelDir::open(dir.path())
        .unwrap()
        .load_dit(&cpu(), DType::F32)
        .unwrap();
    let weights = prefixed("dit.");
    let (mut first, mut second) = (BTreeMap::new(), BTreeMap::new());
    let mut weight_map = serde_json::Map::new();
    for (i, (name, t)) in weights.into_iter().enumerate() {
        let shard = if i % 2 == 0 {
            "diffusion_pytorch_model-00001-of-00002.safetensors"
        } else {
            "diffusion_pytorch_model-00002-of-00002.safetensors"
        };
        weight_map.insert(name.clone(), shard.into());
        if i % 2 == 0 {
            first.insert(name, t)
        } else {
            second.insert(name, t)
        };
    }
    std::fs::remove_file(dir.path().join(checkpoint::DIT_WEIGHTS)).unwrap();
    save(
        &first,
        &dir.path()
            .join("diffusion_pytorch_model-00001-of-00002.safetensors"),
    );
    save(
        &second,
        &dir.path()
            .join("diffusion_pytorch_model-00002-of-00002.safetensors"),
    );
    let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map });
    std::fs::write(dir.path().join(checkpoint::DIT_INDEX), index.to_string()).unwrap();
    let sharded = ModelDir::open(dir.path())
        .unwrap()
        .load_dit(&cpu(), DType::F32)
        .unwrap();

    let cfg = single.config();
    let (f, h, w) = (2, 4, 6);
    let x = Tensor::randn(0f32, 1.0, (cfg.in_dim, f, h, w), &cpu()).unwrap();
    let z = Tensor::randn(0f32, 1.0, (cfg.vace_in_dim(), f, h, w), &cpu()).unwrap();
    let ctx = Tensor::randn(0f32, 1.0, (3, cfg.text_dim), &cpu()).unwrap();
    let a = single.forward(&x, 500.0, &z, &ctx, 1.0).unwrap();
    let b = sharded.forward(&x, 500.0, &z, &ctx, 1.0).unwrap();
    assert_eq!(errors(&a, &b).1, 0.0);

    // A shard the index names but the folder lacks is named in the error.
    std::fs::remove_file(
        dir.path()
            .join("diffusion_pytorch_model-00002-of-00002.safetensors"),
    )
    .unwrap();
    let err = ModelDir::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, LoadError::MissingFile { path, .. } if path.ends_with("diffusion_pytorch_model-00002-of-00002.safetensors")),
        "{err}"
    );
}

/// Replaces the DiT file with `tensors`.
fn rewrite_dit(dir: &Path, tensors: &BTreeMap<String, Tensor>) -> PathBuf {
    let path = dir.join(checkpoint::DIT_WEIGHTS);
    save(tensors, &path);
    path
}

#[test]
fn missing_files_are_named_with_what_to_do() {
    for file in [
        checkpoint::VAE_WEIGHTS,
        checkpoint::T5_WEIGHTS,
        checkpoint::TOKENIZER,
        checkpoint::DIT_CONFIG,
        checkpoint::DIT_WEIGHTS,
    ] {
        let dir = assemble();
        let _ = std::fs::remove_file(dir.path().join(checkpoint::VAE_WEIGHTS_SAFETENSORS));
        std::fs::remove_file(dir.path().join(file)).unwrap();
        let err = ModelDir::open(dir.path()).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(&err, LoadError::MissingFile { path, .. } if path.ends_with(file)),
            "{file}: {message}"
        );
        assert!(
            message.contains(file) && message.contains("download"),
            "{message}"
        );
    }
}

#[test]
fn truncated_files_are_reported_as_corrupt() {
    let dir = assemble();
    let model_dir = ModelDir::open(dir.path()).unwrap();
    let dit = dir.path().join(checkpoint::DIT_WEIGHTS);
    let bytes = std::fs::read(&dit).unwrap();
    std::fs::write(&dit, &bytes[..bytes.len() / 2]).unwrap();
    let err = model_dir.load_dit(&cpu(), DType::F32).unwrap_err();
    assert!(
        matches!(&err, LoadError::Corrupt { file, .. } if file == &dit),
        "{err}"
    );
    assert!(err.to_string().contains("download it again"), "{err}");

    let t5 = dir.path().join(checkpoint::T5_WEIGHTS);
    let bytes = std::fs::read(&t5).unwrap();
    std::fs::write(&t5, &bytes[..bytes.len() - 100]).unwrap();
    let err = model_dir.load_text_encoder(&cpu(), DType::F32).unwrap_err();
    assert!(
        matches!(&err, LoadError::Corrupt { file, .. } if file == &t5),
        "{err}"
    );
}

#[test]
fn renamed_tensor_is_reported_by_name_and_file() {
    let dir = assemble();
    let mut weights = prefixed("dit.");
    let t = weights.remove("blocks.1.ffn.0.weight").unwrap();
    weights.insert("blocks.1.ffn.O.weight".into(), t);
    let path = rewrite_dit(dir.path(), &weights);
    let model_dir = ModelDir::open(dir.path()).unwrap();
    for err in [
        model_dir.load_dit(&cpu(), DType::F32).unwrap_err(),
        model_dir.verify().unwrap_err(),
    ] {
        assert!(
            matches!(&err, LoadError::MissingTensor { file, tensor, .. } if file == &path && tensor == "blocks.1.ffn.0.weight"),
            "{err}"
        );
        assert!(err.to_string().contains("blocks.1.ffn.0.weight"), "{err}");
    }
}

#[test]
fn misshaped_tensor_reports_expected_and_found_shapes() {
    let dir = assemble();
    let mut weights = prefixed("dit.");
    let head = weights["head.head.weight"].clone();
    let (out, dim) = head.dims2().unwrap();
    weights.insert(
        "head.head.weight".into(),
        head.narrow(0, 0, out / 2).unwrap(),
    );
    let path = rewrite_dit(dir.path(), &weights);
    let err = ModelDir::open(dir.path())
        .unwrap()
        .load_dit(&cpu(), DType::F32)
        .unwrap_err();
    match &err {
        LoadError::ShapeMismatch {
            file,
            tensor,
            expected,
            found,
            ..
        } => {
            assert_eq!(file, &path);
            assert_eq!(tensor, "head.head.weight");
            assert_eq!(expected, &[out, dim]);
            assert_eq!(found, &[out / 2, dim]);
        }
        other => panic!("expected a shape mismatch, got: {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("{:?}", [out, dim]))
            && message.contains(&format!("{:?}", [out / 2, dim])),
        "{message}"
    );
}

#[test]
fn unknown_layouts_are_explained() {
    let dir = assemble();
    std::fs::write(dir.path().join("model_index.json"), "{}").unwrap();
    let err = ModelDir::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, LoadError::UnknownLayout { .. }) && err.to_string().contains("diffusers"),
        "{err}"
    );

    let dir = assemble();
    let config = dir.path().join(checkpoint::DIT_CONFIG);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"vace\"", "\"t2v\"");
    std::fs::write(&config, text).unwrap();
    let err = ModelDir::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, LoadError::UnknownLayout { .. }) && err.to_string().contains("not VACE"),
        "{err}"
    );
}

/// Writes a random-weight text encoder of width `dim` as the folder's T5 (safetensors form).
fn replace_text_encoder(dir: &Path, dim: usize) {
    let weights = RandomWeights::new(1);
    let cfg = T5Config {
        vocab: 16,
        dim,
        dim_attn: dim,
        dim_ffn: 2 * dim,
        num_heads: 2,
        num_layers: 2,
        ..T5Config::umt5_xxl()
    };
    Umt5Encoder::new(&cfg, weights.var_builder(DType::F32, &cpu())).unwrap();
    let _ = std::fs::remove_file(dir.join(checkpoint::T5_WEIGHTS));
    save(
        &weights.tensors(),
        &dir.join(checkpoint::T5_WEIGHTS_SAFETENSORS),
    );
}

#[test]
fn verify_checks_that_the_models_fit_together() {
    let dir = assemble();
    let text_dim = serde_json::from_value::<DitConfig>(json(PIPELINE)["dit_config"].clone())
        .unwrap()
        .text_dim;
    replace_text_encoder(dir.path(), text_dim);
    ModelDir::open(dir.path()).unwrap().verify().unwrap();

    replace_text_encoder(dir.path(), text_dim + 8);
    let err = ModelDir::open(dir.path()).unwrap().verify().unwrap_err();
    assert!(
        matches!(err, LoadError::InvalidConfig { .. })
            && err.to_string().contains("different models"),
        "{err}"
    );
}

#[test]
fn check_model_command_reports_a_good_and_a_broken_folder() {
    let dir = assemble();
    let text_dim = serde_json::from_value::<DitConfig>(json(PIPELINE)["dit_config"].clone())
        .unwrap()
        .text_dim;
    replace_text_encoder(dir.path(), text_dim);
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vaced"))
            .args(["check-model", dir.path().to_str().unwrap()])
            .output()
            .unwrap()
    };
    let run = check();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(String::from_utf8_lossy(&run.stdout).contains(": ok"));

    let mut weights = prefixed("dit.");
    weights.remove("vace_blocks.0.before_proj.bias");
    rewrite_dit(dir.path(), &weights);
    let run = check();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains("vace_blocks.0.before_proj.bias")
            && stderr.contains(checkpoint::DIT_WEIGHTS),
        "{stderr}"
    );
}
