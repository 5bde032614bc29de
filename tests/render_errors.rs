//! Bad jobs are refused by `vaced render` and `vaced validate` with a specific message, and
//! leave nothing behind in the output location.
#![cfg(feature = "ffmpeg")]

use std::path::Path;
use std::process::{Command, Output};

use tempfile::TempDir;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");

fn vaced(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vaced"))
        .args(args)
        .output()
        .unwrap()
}

/// A job folder with the inpainting sample's media and `manifest` as job.json.
fn job(root: &Path, name: &str, manifest: &str) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["source.mp4", "mask.png"] {
        std::fs::copy(
            Path::new(SAMPLES).join("inpainting").join(file),
            dir.join(file),
        )
        .unwrap();
    }
    std::fs::write(dir.join("job.json"), manifest).unwrap();
    dir
}

fn assert_refused(root: &Path, name: &str, manifest: &str, reason: &str) {
    let dir = job(root, name, manifest);
    let out = root.join(format!("{name}-out"));
    for args in [
        vec![
            "render",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        vec!["validate", dir.to_str().unwrap()],
    ] {
        let run = vaced(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(!run.status.success(), "{name}: {} accepted it", args[0]);
        assert!(
            stderr.contains(reason),
            "{name}: {} said: {stderr}",
            args[0]
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("-out"))
        .collect();
    assert!(leftovers.is_empty(), "{name}: left {leftovers:?}");
}

const OK: &str = r#""version": 1, "model": "tiny", "steps": 2, "frames": 9"#;

#[test]
fn unknown_field_is_refused_with_a_suggestion() {
    let tmp = TempDir::new().unwrap();
    assert_refused(
        tmp.path(),
        "unknown",
        &format!(r#"{{{OK}, "promt": "a ball"}}"#),
        "did you mean `prompt`",
    );
}

#[test]
fn missing_media_file_is_named() {
    let tmp = TempDir::new().unwrap();
    let manifest = format!(r#"{{{OK}, "prompt": "a ball", "inputs": {{"video": "take-2.mp4"}}}}"#);
    assert_refused(
        tmp.path(),
        "missing",
        &manifest,
        "`take-2.mp4` does not exist in the job folder",
    );
}

#[test]
fn corrupt_video_is_refused() {
    let tmp = TempDir::new().unwrap();
    let manifest = format!(r#"{{{OK}, "prompt": "a ball", "inputs": {{"video": "broken.mp4"}}}}"#);
    let dir = job(tmp.path(), "corrupt", &manifest);
    std::fs::write(dir.join("broken.mp4"), "this is not a video").unwrap();
    assert_refused(tmp.path(), "corrupt", &manifest, "broken.mp4");
}

#[test]
fn path_escaping_the_folder_is_refused() {
    let tmp = TempDir::new().unwrap();
    let manifest = format!(
        r#"{{{OK}, "prompt": "a ball", "inputs": {{"video": "../inpainting/source.mp4"}}}}"#
    );
    assert_refused(tmp.path(), "escape", &manifest, "leaves the job folder");
}

#[test]
fn unsupported_size_is_refused() {
    let tmp = TempDir::new().unwrap();
    let manifest =
        r#"{"version": 1, "model": "vace-1.3b", "prompt": "a ball", "size": "1280x720"}"#;
    assert_refused(
        tmp.path(),
        "size",
        manifest,
        "vace-1.3b renders 832x480, 480x832, not 1280x720",
    );
    let manifest = format!(r#"{{{OK}, "prompt": "a ball", "size": "120x80"}}"#);
    assert_refused(tmp.path(), "size16", &manifest, "multiples of 16");
}

#[test]
fn frame_count_must_be_4n_plus_1() {
    let tmp = TempDir::new().unwrap();
    let manifest = r#"{"version": 1, "model": "tiny", "prompt": "a ball", "frames": 16}"#;
    assert_refused(
        tmp.path(),
        "frames",
        manifest,
        "16 is not 4n+1; use 13 or 17",
    );
}

#[test]
fn mask_of_another_size_is_refused() {
    let tmp = TempDir::new().unwrap();
    let manifest = format!(
        r#"{{{OK}, "prompt": "a ball", "inputs": {{"video": "source.mp4", "mask": "small.png"}}}}"#
    );
    let dir = job(tmp.path(), "mask", &manifest);
    image::RgbImage::new(64, 40)
        .save(dir.join("small.png"))
        .unwrap();
    assert_refused(
        tmp.path(),
        "mask",
        &manifest,
        "the mask must match the video",
    );
}

#[test]
fn empty_prompt_is_refused() {
    let tmp = TempDir::new().unwrap();
    assert_refused(
        tmp.path(),
        "prompt",
        &format!(r#"{{{OK}, "prompt": "  "}}"#),
        "`prompt`: is empty",
    );
}

#[test]
fn validate_prints_the_plan_of_a_good_job() {
    let run = vaced(&["validate", &format!("{SAMPLES}/inpainting")]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("17 frames 128x80 at 16 fps with tiny"),
        "{stdout}"
    );
    assert!(
        stdout.contains("mask `mask.png`: image 128x80, applied to every frame"),
        "{stdout}"
    );
}
