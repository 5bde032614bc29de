//! Round trips through every container and codec this FFmpeg can write: encode a
//! synthetic clip with `write_video`, then check `probe` and `decode` pick the right frames.
//!
//! These live inside the crate because `write_video` (any codec) is private; the public
//! MP4 path is tested from `tests/media_video.rs`.

use std::path::Path;

use ffmpeg_next::format::Pixel;
use ffmpeg_next::util::color;

use super::encode::{VideoSpec, write_video};
use super::error::Error;
use super::test_clip::{FRAMES, HEIGHT, WIDTH, clip, which};
use super::video::{FramePick, decode, probe};

struct Case {
    file: &'static str,
    spec: VideoSpec<'static>,
    codec_name: &'static str,
}

fn cases() -> Vec<Case> {
    let spec = |container, codec, pixel, codec_options: Vec<(&'static str, &str)>| VideoSpec {
        // MPEG-4 part 2 carries no colour tag, and FFmpeg 5.1's ProRes decoder reports
        // none; readers take small untagged videos as BT.601.
        colour: if codec == "mpeg4" || codec == "prores_ks" {
            color::Space::SMPTE170M
        } else {
            color::Space::BT709
        },
        container,
        codec,
        pixel,
        fps: 24,
        codec_options: codec_options
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect(),
        mux_options: Vec::new(),
    };
    vec![
        Case {
            file: "h264.mkv",
            spec: spec(
                "matroska",
                "libx264",
                Pixel::YUV420P,
                vec![("crf", "12"), ("preset", "veryfast")],
            ),
            codec_name: "h264",
        },
        Case {
            file: "vp9.webm",
            spec: spec(
                "webm",
                "libvpx-vp9",
                Pixel::YUV420P,
                vec![
                    ("crf", "10"),
                    ("b", "0"),
                    ("cpu-used", "8"),
                    ("deadline", "realtime"),
                ],
            ),
            codec_name: "vp9",
        },
        Case {
            file: "mpeg4.avi",
            spec: spec("avi", "mpeg4", Pixel::YUV420P, vec![("qscale", "2")]),
            codec_name: "mpeg4",
        },
        Case {
            file: "mpeg4.mp4",
            spec: spec("mp4", "mpeg4", Pixel::YUV420P, vec![("qscale", "2")]),
            codec_name: "mpeg4",
        },
        Case {
            file: "prores.mov",
            spec: spec("mov", "prores_ks", Pixel::YUV422P10LE, vec![]),
            codec_name: "prores",
        },
    ]
}

fn encoder_exists(name: &str) -> bool {
    super::libav::init();
    ffmpeg_next::encoder::find_by_name(name).is_some()
}

fn check_round_trip(dir: &Path, case: &Case) {
    let path = dir.join(case.file);
    write_video(&path, &clip(), &case.spec).unwrap();
    let info = probe(&path).unwrap();
    assert_eq!(info.frames, FRAMES, "{}", case.file);
    assert_eq!((info.width_px, info.height_px), (WIDTH, HEIGHT));
    assert_eq!(info.codec, case.codec_name);
    assert!(
        (info.fps - 24.0).abs() < 0.01,
        "{}: fps {}",
        case.file,
        info.fps
    );
    assert!(
        (info.duration_secs - FRAMES as f64 / 24.0).abs() < 0.01,
        "{}: duration {}",
        case.file,
        info.duration_secs
    );

    let frames = decode(
        &path,
        &FramePick::AtFps {
            fps: 16.0,
            count: 17,
        },
    )
    .unwrap();
    let picked: Vec<usize> = frames.iter().map(which).collect();
    let expected: Vec<usize> = (0..17).map(|k| k * 24 / 16).collect();
    assert_eq!(picked, expected, "{}: AtFps", case.file);

    let frames = decode(&path, &FramePick::FitClip { count: 9 }).unwrap();
    let picked: Vec<usize> = frames.iter().map(which).collect();
    assert_eq!(
        picked,
        [0, 3, 7, 11, 15, 19, 23, 27, 31],
        "{}: FitClip",
        case.file
    );
}

#[test]
fn every_available_codec_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut tested = Vec::new();
    for case in cases() {
        if !encoder_exists(case.spec.codec) {
            eprintln!("skipping {}: no {} encoder", case.file, case.spec.codec);
            continue;
        }
        check_round_trip(dir.path(), &case);
        tested.push(case.file);
    }
    // libx264 is a hard requirement of the daemon, so at least the MKV case always runs.
    assert!(tested.contains(&"h264.mkv"), "tested only {tested:?}");
}

#[test]
fn an_mp4_cut_before_its_index_says_so() {
    // Without +faststart the index (moov) comes last, so a cut file has none.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-index.mp4");
    let spec = VideoSpec {
        container: "mp4",
        codec: "libx264",
        pixel: Pixel::YUV420P,
        fps: 24,
        codec_options: vec![("preset", "veryfast".to_string())],
        mux_options: Vec::new(),
        colour: color::Space::BT709,
    };
    write_video(&path, &clip(), &spec).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = probe(&path).unwrap_err();
    assert!(matches!(err, Error::MissingIndex { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("incomplete"), "{message}");
}
