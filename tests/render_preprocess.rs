//! Every preprocessing task, and the main compositions, rendered end to end by
//! `vaced render` with the tiny model and by the daemon, from job folders on disk.
#![cfg(feature = "ffmpeg")]

mod daemon_common;
#[path = "data/annotators/formula_weights.rs"]
mod formula_weights;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use daemon_common::Env;
use tempfile::TempDir;
use vaced::media::{Frame, Mp4Settings, test_clip, write_mp4, write_png};

/// Small and quick: 64x48, 5 frames, 2 steps.
fn manifest(inputs: &str, tasks: &str) -> String {
    format!(
        r#"{{"version": 1, "prompt": "a ball", "model": "tiny", "size": "64x48", "frames": 5, "steps": 2, "seed": 1, "inputs": {{{inputs}}}, "preprocess": [{tasks}]}}"#
    )
}

/// The jobs: a name, the `inputs` and the `preprocess` list.
fn jobs() -> Vec<(&'static str, String)> {
    let video = r#""video": "clip.mp4""#;
    [
        ("gray", manifest(video, r#"{"task": "gray"}"#)),
        ("edges", manifest(video, r#"{"task": "scribble_edges", "detail": 0.7}"#)),
        ("inpaint-box", manifest(video, r#"{"task": "inpainting", "box": [16, 8, 48, 40]}"#)),
        ("inpaint-mask", manifest(r#""video": "clip.mp4", "mask": "mask.png""#, r#"{"task": "inpainting"}"#)),
        ("outpaint", manifest(video, r#"{"task": "outpainting", "direction": ["up", "down"], "expand_ratio": 0.5}"#)),
        ("outpaint-inner", manifest(video, r#"{"task": "outpainting_inner", "expand_ratio": 0.2}"#)),
        ("first-frame", manifest("", r#"{"task": "extension", "mode": "first_frame", "image": "image.png"}"#)),
        ("last-clip", manifest(video, r#"{"task": "extension", "mode": "last_clip", "keep_frames": 2}"#)),
        ("first-last", manifest("", r#"{"task": "extension", "mode": "first_last_frame", "image": "image.png", "last_image": "image.png"}"#)),
        ("layout", manifest("", r#"{"task": "layout_bbox", "boxes": [[4, 4, 20, 20], [40, 20, 60, 44]]}"#)),
        ("reference", manifest("", r#"{"task": "reference", "mode": "box", "image": "image.png", "box": [4, 4, 30, 24]}"#)),
        ("pose-and-first-frame", manifest(video, r#"{"task": "extension", "mode": "first_frame", "image": "image.png"}, {"task": "gray"}"#)),
        ("swap", manifest(video, r#"{"task": "inpainting", "box": [16, 8, 48, 40]}, {"task": "reference", "mode": "plain", "image": "image.png"}"#)),
    ]
    .into()
}

/// A job folder with the media every job above may name.
fn job_folder(root: &Path, name: &str, manifest: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let settings = Mp4Settings {
        fps: 16,
        crf: 18,
        preset: "ultrafast".into(),
    };
    write_mp4(&dir.join("clip.mp4"), &test_clip::clip()[..12], &settings).unwrap();
    // A 128x128 clip with a square moving right, for `flow`.
    let big: Vec<Frame> = (0..6)
        .map(|t| {
            let mut frame = Frame::filled(128, 128, [40, 90, 160]);
            for y in 40..80 {
                for x in 20 + 6 * t..60 + 6 * t {
                    frame.rgb[(y * 128 + x) * 3..(y * 128 + x) * 3 + 3]
                        .copy_from_slice(&[230, 200, 40]);
                }
            }
            frame
        })
        .collect();
    write_mp4(&dir.join("big.mp4"), &big, &settings).unwrap();
    write_png(
        &dir.join("image.png"),
        &Frame::filled(40, 30, [200, 30, 60]),
    )
    .unwrap();
    let mut mask = Frame::filled(test_clip::WIDTH, test_clip::HEIGHT, [0; 3]);
    mask.rgb[..test_clip::WIDTH * 3 * 10].fill(255);
    write_png(&dir.join("mask.png"), &mask).unwrap();
    std::fs::write(dir.join("job.json"), manifest).unwrap();
    dir
}

/// `vaced render JOB --out OUT` with `extra` arguments; fails the test if it fails.
fn render(job: &Path, out: &Path, extra: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_vaced"))
        .args([
            "render",
            job.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}: {}",
        job.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn check_result(out: &Path, name: &str) {
    let info = vaced::media::video::probe(&out.join("result.mp4")).unwrap();
    assert_eq!(
        (info.frames, info.width_px, info.height_px),
        (5, 64, 48),
        "{name}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(
        report["plan"]["preprocess"].is_array(),
        "{name}: tasks missing from the report"
    );
}

#[test]
fn every_task_renders_with_vaced_render() {
    let root = TempDir::new().unwrap();
    for (name, manifest) in jobs() {
        let job = job_folder(root.path(), name, &manifest);
        let out = root.path().join(format!("{name}-out"));
        render(&job, &out, &[]);
        check_result(&out, name);
    }
}

/// An annotator folder laid out like VACE-Annotators, holding the fixtures' formula
/// weights (ViT-S for depth: the loader reads the size from the shapes) and the small ONNX
/// stand-ins of DWPose's networks.
fn install_annotators(annotators: &Path) {
    let onnx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/onnx");
    std::fs::create_dir_all(annotators.join("pose")).unwrap();
    for (stand_in, file) in [
        ("yolox_l_tiny.onnx", "pose/yolox_l.onnx"),
        ("dw-ll_ucoco_384_tiny.onnx", "pose/dw-ll_ucoco_384.onnx"),
    ] {
        std::fs::copy(onnx.join(stand_in), annotators.join(file)).unwrap();
    }
    for (keys, file) in [
        ("depth_vits_keys.txt", "depth/depth_anything_v2_vitl.pth"),
        (
            "scribble_keys.txt",
            "scribble/anime_style/netG_A_latest.pth",
        ),
        ("flow_raft_keys.txt", "flow/raft-things.pth"),
    ] {
        let path = annotators.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        candle_core::safetensors::save(&formula_weights::weights(keys), &path).unwrap();
    }
}

/// Jobs for the network annotators; one frame of depth, as a ViT-S pass takes seconds on a
/// CPU, and of pose (the stand-in detector's random weights find hundreds of "people").
fn network_jobs() -> Vec<(&'static str, String, usize)> {
    let video = r#""video": "clip.mp4""#;
    let one_frame =
        |tasks: &str| manifest(video, tasks).replace(r#""frames": 5"#, r#""frames": 1"#);
    vec![
        ("depth", one_frame(r#"{"task": "depth"}"#), 1),
        ("pose", one_frame(r#"{"task": "pose"}"#), 1),
        ("pose_body", one_frame(r#"{"task": "pose_body"}"#), 1),
        ("scribble", manifest(video, r#"{"task": "scribble"}"#), 5),
        // RAFT needs sides of at least 121 px.
        (
            "flow",
            manifest(r#""video": "big.mp4""#, r#"{"task": "flow"}"#),
            5,
        ),
    ]
}

/// `vaced render --annotators` finds the weights in the folder it names. One network, the
/// quickest: the daemon's test below renders every network annotator, and depth, pose and
/// flow cost 10-20 s each on CI's CPU.
#[test]
fn network_annotators_render_from_the_annotator_folder() {
    let root = TempDir::new().unwrap();
    let annotators = root.path().join("VACE-Annotators");
    install_annotators(&annotators);
    let jobs = network_jobs()
        .into_iter()
        .filter(|(name, _, _)| *name == "scribble");
    for (name, manifest, frames) in jobs {
        let job = job_folder(root.path(), name, &manifest);
        let out = root.path().join(format!("{name}-out"));
        render(&job, &out, &["--annotators", annotators.to_str().unwrap()]);
        let info = vaced::media::video::probe(&out.join("result.mp4")).unwrap();
        assert_eq!(info.frames, frames, "{name}");
    }
}

#[test]
fn the_daemon_renders_every_task_and_refuses_missing_weights_at_intake() {
    let annotators = TempDir::new().unwrap();
    let env = Env::new(&format!(
        "annotators = \"{}\"\n",
        annotators.path().display()
    ));
    let daemon = env.start(&[]);
    let folders = TempDir::new().unwrap();
    // Before the weights are installed, a depth job is refused when it is taken in.
    let (_, depth, _) = &network_jobs()[0];
    env.submit(
        &job_folder(folders.path(), "early-depth", depth),
        "early-depth",
    );
    let failure = env
        .wait_failed("early-depth", Duration::from_secs(60))
        .to_string();
    assert!(
        failure.contains("depth/depth_anything_v2_vitl.pth does not exist"),
        "{failure}"
    );

    install_annotators(annotators.path());
    let mut expected = Vec::new();
    for (name, manifest) in jobs() {
        env.submit(&job_folder(folders.path(), name, &manifest), name);
        expected.push((name, 5));
    }
    for (name, manifest, frames) in network_jobs() {
        env.submit(&job_folder(folders.path(), name, &manifest), name);
        expected.push((name, frames));
    }
    for (name, frames) in expected {
        let out = env.wait_done(name, Duration::from_secs(180));
        let info = vaced::media::video::probe(&out.join("result.mp4")).unwrap();
        assert_eq!(
            (info.frames, info.width_px, info.height_px),
            (frames, 64, 48),
            "{name}"
        );
    }
    assert!(daemon.stop());
}
