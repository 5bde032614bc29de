//! `vaced generate` driven as a user would: the real binary, the built-in tiny model.

use std::path::Path;
use std::process::{Command, Output};

use candle_core::Device;
use tempfile::TempDir;

fn vaced(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vaced"))
        .args(args)
        .output()
        .expect("running vaced")
}

fn generate(out: &Path, seed: &str) -> Output {
    vaced(&[
        "generate",
        "--model",
        "tiny",
        "--prompt",
        "a red fox in the snow",
        "--size",
        "64x48",
        "--frames",
        "5",
        "--steps",
        "3",
        "--seed",
        seed,
        "--out",
        out.to_str().unwrap(),
    ])
}

fn latent(out: &Path) -> Vec<f32> {
    let tensors =
        candle_core::safetensors::load(out.join("latent.safetensors"), &Device::Cpu).unwrap();
    tensors["latent"].flatten_all().unwrap().to_vec1().unwrap()
}

#[test]
fn generate_writes_frames_latent_and_record() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("fox");
    let run = generate(&out, "7");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    for i in 1..=5 {
        let frame = image::open(out.join(format!("frame-{i:04}.png"))).unwrap();
        assert_eq!((frame.width(), frame.height()), (64, 48));
    }
    assert!(!out.join("frame-0006.png").exists());
    let tensors =
        candle_core::safetensors::load(out.join("latent.safetensors"), &Device::Cpu).unwrap();
    // 16 channels, (5 − 1)/4 + 1 latent frames, 48/8 × 64/8.
    assert_eq!(tensors["latent"].dims(), [16, 2, 6, 8]);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("generation.json")).unwrap())
            .unwrap();
    assert_eq!(record["seed"], 7);
    assert_eq!(record["params"]["steps"], 3);
    assert_eq!(record["params"]["solver"], "unipc");
    assert_eq!(record["frames"], 5);
    // Nothing left behind but the result.
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["fox"]);
}

#[test]
fn the_same_seed_reproduces_the_latent() {
    let tmp = TempDir::new().unwrap();
    for (name, seed) in [("a", "11"), ("b", "11"), ("c", "12")] {
        let run = generate(&tmp.path().join(name), seed);
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let a = latent(&tmp.path().join("a"));
    assert_eq!(a, latent(&tmp.path().join("b")));
    assert_ne!(a, latent(&tmp.path().join("c")));
}

#[test]
fn bad_arguments_are_refused_with_the_reason() {
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("x");
    let out = out.to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--frames", "8"], "4n+1"),
        (&["--size", "100x50"], "multiples of 16"),
        (&["--size", "wide"], "WIDTHxHEIGHT"),
        (&["--prompt", "  "], "empty"),
        (&["--model", "/no/such/folder"], "model folder is missing"),
    ];
    for (extra, reason) in cases {
        let mut args = vec!["generate", "--out", out];
        args.extend_from_slice(extra);
        for (flag, value) in [("--model", "tiny"), ("--prompt", "a cat")] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        let run = vaced(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{extra:?} was accepted");
        assert!(stderr.contains(reason), "{extra:?}: {stderr}");
        assert!(!Path::new(out).exists());
    }
}
