//! `vaced preprocess` on a real small video, each task's files checked against the spec
//! (§6.9): values at masked and unmasked pixels, mask polarity, frame counts and placement,
//! canvas geometry; then the problems it must refuse before doing any work.
#![cfg(feature = "ffmpeg")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;
use vaced::media::test_clip::{self, HEIGHT, WIDTH};
use vaced::media::video::{FramePick, decode};
use vaced::media::{Frame, Mp4Settings, write_mp4, write_png};

/// Lossless-luma H.264 still converts colours through 4:2:0 YUV: a few units off.
const CODEC_TOL: i32 = 6;
const FRAMES: usize = 17;

struct Scene {
    dir: TempDir,
}

impl Scene {
    /// The synthetic clip (32 frames, 64x48, a colour per frame, black square top left),
    /// an image and a mask beside it.
    fn new() -> Self {
        let dir = TempDir::new().unwrap();
        let settings = Mp4Settings {
            fps: 16,
            crf: 0,
            preset: "ultrafast".into(),
        };
        write_mp4(&dir.path().join("clip.mp4"), &test_clip::clip(), &settings).unwrap();
        let mut image = Frame::filled(40, 30, [200, 30, 60]);
        image.rgb[..3].copy_from_slice(&[0, 0, 255]);
        write_png(&dir.path().join("image.png"), &image).unwrap();
        write_png(
            &dir.path().join("wide.png"),
            &Frame::filled(80, 30, [10, 220, 10]),
        )
        .unwrap();
        // Subject mask: the right half of the clip's frame.
        let mut mask = Frame::filled(WIDTH, HEIGHT, [0; 3]);
        for y in 0..HEIGHT {
            for x in WIDTH / 2..WIDTH {
                mask.rgb[(y * WIDTH + x) * 3..(y * WIDTH + x) * 3 + 3].fill(255);
            }
        }
        write_png(&dir.path().join("mask.png"), &mask).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Runs `vaced preprocess` into `out` (under the scene folder).
    fn run(&self, out: &str, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_vaced"))
            .arg("preprocess")
            .args(["--out", &self.path(out), "--model", "tiny", "--fps", "16"])
            .args(args)
            .env_remove("VACED_ANNOTATORS")
            .output()
            .unwrap()
    }

    fn ok(&self, out: &str, args: &[&str]) -> PathBuf {
        let output = self.run(out, args);
        assert!(
            output.status.success(),
            "vaced preprocess {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.dir.path().join(out)
    }
}

fn frames(path: &Path) -> Vec<Frame> {
    let info = vaced::media::video::probe(path).unwrap();
    decode(
        path,
        &FramePick::AtFps {
            fps: 16.0,
            count: info.frames,
        },
    )
    .unwrap()
}

fn near(got: [u8; 3], want: [u8; 3]) -> bool {
    got.iter()
        .zip(want)
        .all(|(g, w)| (*g as i32 - w as i32).abs() <= CODEC_TOL)
}

fn assert_px(frame: &Frame, (x, y): (usize, usize), want: [u8; 3], what: &str) {
    let got = frame.pixel(x, y);
    assert!(
        near(got, want),
        "{what} at ({x}, {y}): {got:?}, want {want:?}"
    );
}

#[test]
fn gray_is_the_reference_grey_in_every_channel_and_needs_no_mask() {
    let scene = Scene::new();
    let out = scene.ok(
        "gray",
        &[
            "--task",
            "gray",
            "--video",
            &scene.path("clip.mp4"),
            "--frames",
            "17",
        ],
    );
    let video = frames(&out.join("src_video-gray.mp4"));
    assert_eq!(video.len(), FRAMES);
    assert!(
        !out.join("src_mask-gray.mp4").exists(),
        "a control video has no mask file"
    );
    for (k, frame) in video.iter().enumerate() {
        let [r, g, b] = test_clip::colour(k);
        // OpenCV's BGR2GRAY on RGB frames: 0.114 R + 0.587 G + 0.299 B.
        let y = (0.114 * r as f64 + 0.587 * g as f64 + 0.299 * b as f64).round() as u8;
        assert_px(frame, (50, 40), [y, y, y], &format!("frame {k}"));
    }
}

#[test]
fn inpainting_a_box_greys_it_and_masks_exactly_it() {
    let scene = Scene::new();
    let out = scene.ok(
        "box",
        &[
            "--task",
            "inpainting",
            "--box",
            "24,8,56,40",
            "--video",
            &scene.path("clip.mp4"),
            "--frames",
            "17",
        ],
    );
    let (video, masks) = (
        frames(&out.join("src_video-inpainting.mp4")),
        frames(&out.join("src_mask-inpainting.mp4")),
    );
    assert_eq!((video.len(), masks.len()), (FRAMES, FRAMES));
    for k in [0, 8, 16] {
        assert_px(&video[k], (40, 24), [128; 3], "inside the box");
        assert_px(&masks[k], (40, 24), [255; 3], "mask inside the box");
        assert_px(&video[k], (10, 44), test_clip::colour(k), "outside the box");
        assert_px(&masks[k], (10, 44), [0; 3], "mask outside the box");
        // Box edges: x 24..56 and y 8..40, right and bottom exclusive.
        assert_px(
            &masks[k],
            (24, 8),
            [255; 3],
            "mask at the box's first pixel",
        );
        assert_px(&masks[k], (57, 41), [0; 3], "mask past the box");
    }
}

#[test]
fn inpainting_keyframes_move_the_box_and_a_mask_image_marks_non_zero_pixels() {
    let scene = Scene::new();
    let out = scene.ok(
        "keys",
        &[
            "--task",
            "inpainting",
            "--boxes",
            "0:0,20,16,36 16:48,20,64,36",
            "--video",
            &scene.path("clip.mp4"),
            "--frames",
            "17",
        ],
    );
    let masks = frames(&out.join("src_mask-inpainting.mp4"));
    assert_px(&masks[0], (6, 28), [255; 3], "frame 0 box at the left");
    assert_px(&masks[0], (56, 28), [0; 3], "frame 0 right side kept");
    assert_px(&masks[8], (30, 28), [255; 3], "frame 8 box halfway");
    assert_px(&masks[16], (56, 28), [255; 3], "frame 16 box at the right");
    assert_px(&masks[16], (6, 28), [0; 3], "frame 16 left side kept");

    let out = scene.ok(
        "mask",
        &[
            "--task",
            "inpainting",
            "--video",
            &scene.path("clip.mp4"),
            "--mask",
            &scene.path("mask.png"),
            "--frames",
            "9",
        ],
    );
    let (video, masks) = (
        frames(&out.join("src_video-inpainting.mp4")),
        frames(&out.join("src_mask-inpainting.mp4")),
    );
    assert_eq!(video.len(), 9);
    assert_px(&video[3], (50, 30), [128; 3], "masked half");
    assert_px(&masks[3], (50, 30), [255; 3], "mask of the masked half");
    assert_px(&video[3], (20, 30), test_clip::colour(3), "kept half");
    assert_px(&masks[3], (20, 30), [0; 3], "mask of the kept half");
}

#[test]
fn outpainting_enlarges_the_canvas_and_inner_outpainting_cuts_a_border() {
    let scene = Scene::new();
    let out = scene.ok(
        "out",
        &[
            "--task",
            "outpainting",
            "--direction",
            "left,right",
            "--expand-ratio",
            "0.25",
            "--video",
            &scene.path("clip.mp4"),
            "--frames",
            "5",
        ],
    );
    let (video, masks) = (
        frames(&out.join("src_video-outpainting.mp4")),
        frames(&out.join("src_mask-outpainting.mp4")),
    );
    // 64 + 16 + 16 = 96 (a multiple of 8), the original at x = 16; height unchanged.
    assert_eq!((video[0].width, video[0].height, video.len()), (96, 48, 5));
    assert_px(&video[2], (4, 30), [128; 3], "left border");
    assert_px(&video[2], (90, 30), [128; 3], "right border");
    assert_px(
        &video[2],
        (16 + 50, 40),
        test_clip::colour(2),
        "the original, shifted",
    );
    assert_px(&video[2], (16 + 4, 4), [0; 3], "the black square, shifted");
    assert_px(&masks[2], (4, 30), [255; 3], "border mask");
    assert_px(&masks[2], (50, 30), [0; 3], "original mask");
    assert_px(&masks[2], (15, 30), [255; 3], "last border column");
    assert_px(&masks[2], (16, 30), [0; 3], "first original column");

    let out = scene.ok(
        "inner",
        &[
            "--task",
            "outpainting_inner",
            "--direction",
            "up,down",
            "--expand-ratio",
            "0.25",
            "--video",
            &scene.path("clip.mp4"),
            "--frames",
            "5",
        ],
    );
    let (video, masks) = (
        frames(&out.join("src_video-outpainting_inner.mp4")),
        frames(&out.join("src_mask-outpainting_inner.mp4")),
    );
    assert_eq!((video[0].width, video[0].height), (WIDTH, HEIGHT));
    // Borders of 12 rows at the top and bottom.
    assert_px(&video[1], (40, 4), [128; 3], "top border");
    assert_px(&masks[1], (40, 4), [255; 3], "top border mask");
    assert_px(&video[1], (40, 24), test_clip::colour(1), "kept middle");
    assert_px(&masks[1], (40, 24), [0; 3], "kept middle mask");
    assert_px(&masks[1], (40, 44), [255; 3], "bottom border mask");
}

#[test]
fn extension_places_kept_frames_and_fills_the_rest_with_grey() {
    let scene = Scene::new();
    let out = scene.ok(
        "first",
        &[
            "--task",
            "extension",
            "--mode",
            "first_frame",
            "--image",
            &scene.path("image.png"),
            "--frames",
            "17",
        ],
    );
    let (video, masks) = (
        frames(&out.join("src_video-extension.mp4")),
        frames(&out.join("src_mask-extension.mp4")),
    );
    assert_eq!((video.len(), video[0].width, video[0].height), (17, 40, 30));
    assert_px(&video[0], (20, 15), [200, 30, 60], "the kept image");
    assert_px(&masks[0], (20, 15), [0; 3], "kept frame mask");
    for k in 1..17 {
        assert_px(&video[k], (20, 15), [127; 3], "generated frame grey");
        assert_px(&masks[k], (20, 15), [255; 3], "generated frame mask");
    }

    let out = scene.ok(
        "both",
        &[
            "--task",
            "extension",
            "--mode",
            "first_last_frame",
            "--image",
            &scene.path("image.png"),
            "--last-image",
            &scene.path("wide.png"),
            "--frames",
            "9",
        ],
    );
    let (video, masks) = (
        frames(&out.join("src_video-extension.mp4")),
        frames(&out.join("src_mask-extension.mp4")),
    );
    assert_eq!(
        video.len(),
        9,
        "exactly the asked frames, not the reference's 82"
    );
    assert_px(&masks[8], (20, 15), [0; 3], "last frame kept");
    // 80x30 letterboxed into 40x30: 40x15 in the middle rows, white above and below.
    assert_px(
        &video[8],
        (20, 15),
        [10, 220, 10],
        "last image, letterboxed",
    );
    assert_px(&video[8], (20, 2), [255; 3], "white letterbox band");
    assert_px(&video[4], (20, 15), [127; 3], "generated middle");

    // Last clip: generated frames lead into the clip's first frames.
    let out = scene.ok(
        "clip",
        &[
            "--task",
            "extension",
            "--mode",
            "last_clip",
            "--keep-frames",
            "6",
            "--video",
            &scene.path("clip.mp4"),
            "--frames",
            "17",
        ],
    );
    let (video, masks) = (
        frames(&out.join("src_video-extension.mp4")),
        frames(&out.join("src_mask-extension.mp4")),
    );
    assert_eq!(video.len(), 17);
    for k in 0..11 {
        assert_px(&video[k], (40, 30), [127; 3], "generated lead-in");
        assert_px(&masks[k], (40, 30), [255; 3], "lead-in mask");
    }
    for k in 11..17 {
        assert_eq!(test_clip::which(&video[k]), k - 11, "clip frame in place");
        assert_px(&masks[k], (40, 30), [0; 3], "kept clip mask");
    }
    // First clip: the clip's end continues into generated frames.
    let out = scene.ok(
        "cont",
        &[
            "--task",
            "extension",
            "--mode",
            "first_clip",
            "--keep-frames",
            "4",
            "--video",
            &scene.path("clip.mp4"),
            "--frames",
            "9",
        ],
    );
    let video = frames(&out.join("src_video-extension.mp4"));
    for (k, frame) in video[..4].iter().enumerate() {
        assert_px(
            frame,
            (40, 30),
            test_clip::colour(28 + k),
            "the end of the clip",
        );
    }
    assert_px(&video[4], (40, 30), [127; 3], "generated continuation");
}

#[test]
fn layout_draws_a_moving_outline_on_white_at_the_asked_size() {
    let scene = Scene::new();
    let out = scene.ok(
        "layout",
        &[
            "--task",
            "layout_bbox",
            "--boxes",
            "8,8,24,24 40,8,56,24",
            "--size",
            "64x48",
            "--frames",
            "5",
        ],
    );
    let video = frames(&out.join("src_video-layout_bbox.mp4"));
    assert_eq!((video.len(), video[0].width, video[0].height), (5, 64, 48));
    assert_px(&video[0], (8, 16), [0; 3], "left edge of the first box");
    assert_px(&video[0], (16, 16), [255; 3], "inside the first box");
    assert_px(&video[0], (40, 40), [255; 3], "background");
    // Frame 4: x advanced by 4·(40 − 8)/5 = 25.6 → 33.
    assert_px(&video[4], (33, 16), [0; 3], "left edge of the last box");
    assert_px(
        &video[4],
        (8, 16),
        [255; 3],
        "the first position, empty again",
    );
}

#[test]
fn reference_images_are_cropped_to_the_subject_on_white() {
    let scene = Scene::new();
    let first_frame = Frame::filled(WIDTH, HEIGHT, [90, 80, 70]);
    write_png(&scene.dir.path().join("subject.png"), &first_frame).unwrap();
    let out = scene.ok(
        "box",
        &[
            "--task",
            "reference",
            "--mode",
            "box",
            "--box",
            "10,5,30,25",
            "--image",
            &scene.path("subject.png"),
        ],
    );
    let image = vaced::media::load_still(&out.join("src_ref_image-reference-0.png")).unwrap();
    assert_eq!((image.width, image.height), (20, 20));
    assert_eq!(image.pixel(10, 10), [90, 80, 70]);

    let out = scene.ok(
        "mask",
        &[
            "--task",
            "reference",
            "--mode",
            "mask",
            "--mask",
            &scene.path("mask.png"),
            "--image",
            &scene.path("subject.png"),
        ],
    );
    let image = vaced::media::load_still(&out.join("src_ref_image-reference-0.png")).unwrap();
    assert_eq!(
        (image.width, image.height),
        (WIDTH / 2, HEIGHT),
        "cropped to the mask's box"
    );
    assert_eq!(image.pixel(3, 3), [90, 80, 70]);
}

#[test]
fn problems_are_refused_before_any_work() {
    let scene = Scene::new();
    let annotators = TempDir::new().unwrap();
    let cases: [(&str, Vec<&str>, &str); 8] = [
        ("unknown", vec!["--task", "grey"], "did you mean `gray`?"),
        (
            "contradiction",
            vec!["--task", "inpainting", "--box", "1,1,9,9", "--mask", "MASK"],
            "both a box and `inputs.mask`",
        ),
        (
            "no-region",
            vec!["--task", "inpainting"],
            "say where to repaint",
        ),
        (
            "option",
            vec!["--task", "gray", "--box", "1,1,9,9"],
            "`--box`: unknown key",
        ),
        (
            "weights",
            vec![
                "--task",
                "depth",
                "--annotators",
                annotators.path().to_str().unwrap(),
            ],
            "depth/depth_anything_v2_vitl.pth does not exist",
        ),
        (
            "pose-weights",
            vec![
                "--task",
                "pose",
                "--annotators",
                annotators.path().to_str().unwrap(),
            ],
            "pose/yolox_l.onnx does not exist",
        ),
        (
            "unported",
            vec![
                "--task",
                "reference",
                "--mode",
                "salient",
                "--image",
                "MASK",
            ],
            "needs U²-Net, which is not available in this build",
        ),
        (
            "small-flow",
            vec!["--task", "flow"],
            "at least 121 px on each side",
        ),
    ];
    let mask = scene.path("mask.png");
    for (name, args, expected) in cases {
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "MASK" { mask.as_str() } else { a })
            .collect();
        let mut all = vec!["--video", "CLIP"];
        all.extend(args);
        let clip = scene.path("clip.mp4");
        let all: Vec<&str> = all
            .iter()
            .map(|a| if *a == "CLIP" { clip.as_str() } else { a })
            .collect();
        let output = scene.run(name, &all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: accepted");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(
            !scene.dir.path().join(name).exists(),
            "{name}: wrote output before failing"
        );
    }
}
