//! Videos and image sequences through the public `media` API: write a synthetic clip as
//! H.264 MP4, probe it, decode it with both frame picks, and break it in the ways users do.
#![cfg(feature = "ffmpeg")]

mod media_common;

use std::path::{Path, PathBuf};

use media_common::{FRAMES, HEIGHT, WIDTH, clip, frame, which};
use vaced::media::{
    self, Error, Frame, FramePick, Mp4Settings, decode, decode_sequence, probe, write_mp4,
};

fn settings() -> Mp4Settings {
    Mp4Settings {
        fps: 24,
        crf: 12,
        preset: "veryfast".to_string(),
    }
}

fn write_clip(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    write_mp4(&path, &clip(), &settings()).unwrap();
    path
}

fn names_path(err: &Error, path: &Path) -> String {
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()),
        "the message does not name {}: {message}",
        path.display()
    );
    message
}

#[test]
fn mp4_probes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_clip(dir.path(), "clip.mp4");
    let info = probe(&path).unwrap();
    assert_eq!(info.frames, FRAMES);
    assert_eq!((info.width_px, info.height_px), (WIDTH, HEIGHT));
    assert_eq!(info.fps, 24.0);
    assert_eq!(info.codec, "h264");
    assert!((info.duration_secs - 32.0 / 24.0).abs() < 1e-9, "{info:?}");
}

#[test]
fn mp4_at_fps_takes_the_frame_on_screen_at_each_instant() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_clip(dir.path(), "clip.mp4");
    let frames = decode(
        &path,
        &FramePick::AtFps {
            fps: 16.0,
            count: 17,
        },
    )
    .unwrap();
    assert_eq!(frames.len(), 17);
    let picked: Vec<usize> = frames.iter().map(which).collect();
    // Output k is at k/16 s, inside source frame ⌊k·24/16⌋.
    let expected: Vec<usize> = (0..17).map(|k| k * 24 / 16).collect();
    assert_eq!(picked, expected);

    // Sampling faster than the source repeats frames.
    let frames = decode(
        &path,
        &FramePick::AtFps {
            fps: 48.0,
            count: 6,
        },
    )
    .unwrap();
    let picked: Vec<usize> = frames.iter().map(which).collect();
    assert_eq!(picked, [0, 0, 1, 1, 2, 2]);
}

#[test]
fn mp4_fit_clip_spreads_picks_and_ends_on_the_last_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_clip(dir.path(), "clip.mp4");
    let frames = decode(&path, &FramePick::FitClip { count: 9 }).unwrap();
    let picked: Vec<usize> = frames.iter().map(which).collect();
    // Instants j·(31.5/24)/8 s: source frames ⌊j·3.9375⌋, the last one 31.
    assert_eq!(picked, [0, 3, 7, 11, 15, 19, 23, 27, 31]);

    let frames = decode(&path, &FramePick::FitClip { count: FRAMES }).unwrap();
    let picked: Vec<usize> = frames.iter().map(which).collect();
    assert_eq!(picked, (0..FRAMES).collect::<Vec<_>>());

    let err = decode(&path, &FramePick::FitClip { count: 33 }).unwrap_err();
    assert!(matches!(
        err,
        Error::TooFewFrames {
            requested: 33,
            available: 32,
            ..
        }
    ));
    names_path(&err, &path);
}

#[test]
fn a_clip_too_short_for_at_fps_says_what_it_gives() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_clip(dir.path(), "short.mp4");
    // 4/3 s at 16 fps gives instants 0 … 21/16: 22 frames.
    assert!(
        decode(
            &path,
            &FramePick::AtFps {
                fps: 16.0,
                count: 22
            }
        )
        .is_ok()
    );
    let err = decode(
        &path,
        &FramePick::AtFps {
            fps: 16.0,
            count: 23,
        },
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::TooShort {
            available: 22,
            requested: 23,
            ..
        }
    ));
    let message = names_path(&err, &path);
    assert!(message.contains("1.333 s"), "{message}");
    assert!(message.contains("gives 22 frames at 16 fps"), "{message}");
}

#[test]
fn a_missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nowhere.mp4");
    let err = probe(&path).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(names_path(&err, &path).contains("no such file"));
    let err = decode(&path, &FramePick::FitClip { count: 1 }).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[test]
fn a_text_file_named_mp4_is_not_a_video() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.mp4");
    std::fs::write(&path, "these are my notes, not a video\n".repeat(50)).unwrap();
    let err = probe(&path).unwrap_err();
    assert!(matches!(err, Error::NotVideo { .. }), "{err}");
    let message = names_path(&err, &path);
    assert!(message.contains("not a video"), "{message}");
    assert!(message.contains("re-export it as H.264 MP4"), "{message}");
}

#[test]
fn a_truncated_mp4_is_cut_short() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_clip(dir.path(), "cut.mp4");
    let bytes = std::fs::read(&path).unwrap();
    // The index is at the front (faststart), so the cut removes frame data only.
    std::fs::write(&path, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let err = probe(&path).unwrap_err();
    let Error::Truncated { read, expected, .. } = &err else {
        panic!("expected Truncated, got {err}");
    };
    assert_eq!(*expected, FRAMES);
    assert!(*read < FRAMES && *read > 0, "read {read}");
    let message = names_path(&err, &path);
    assert!(message.contains("cut short"), "{message}");
    let err = decode(&path, &FramePick::FitClip { count: 2 }).unwrap_err();
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn an_empty_file_and_a_folder_are_not_videos() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let err = probe(&empty).unwrap_err();
    assert!(names_path(&err, &empty).contains("empty"), "{err}");
    let err = probe(dir.path()).unwrap_err();
    assert!(names_path(&err, dir.path()).contains("folder"), "{err}");
}

fn write_sequence(dir: &Path, frames: &[Frame]) -> Vec<PathBuf> {
    media::frames::write_png_sequence(frames, dir).unwrap()
}

#[test]
fn image_sequences_pick_like_videos() {
    let dir = tempfile::tempdir().unwrap();
    let frames: Vec<Frame> = (0..10).map(frame).collect();
    let paths = write_sequence(dir.path(), &frames);

    // AtFps: image k for output k, losslessly.
    let out = decode_sequence(
        &paths,
        &FramePick::AtFps {
            fps: 16.0,
            count: 4,
        },
    )
    .unwrap();
    assert_eq!(out, frames[..4]);
    let err = decode_sequence(
        &paths,
        &FramePick::AtFps {
            fps: 16.0,
            count: 11,
        },
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::TooShort {
            available: 10,
            requested: 11,
            ..
        }
    ));
    names_path(&err, dir.path());

    // FitClip: duration 9.5, instants 0, 2.375, 4.75, 7.125, 9.5.
    let out = decode_sequence(&paths, &FramePick::FitClip { count: 5 }).unwrap();
    let picked: Vec<usize> = out.iter().map(which).collect();
    assert_eq!(picked, [0, 2, 4, 7, 9]);
    assert_eq!(out[4], frames[9]);
}

#[test]
fn a_sequence_with_an_odd_sized_image_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut frames: Vec<Frame> = (0..4).map(frame).collect();
    frames[2] = Frame::filled(32, 48, [1, 2, 3]);
    frames[3] = Frame::filled(16, 16, [1, 2, 3]);
    let paths = write_sequence(dir.path(), &frames);
    let err = decode_sequence(&paths, &FramePick::FitClip { count: 2 }).unwrap_err();
    assert!(
        matches!(&err, Error::SequenceSize { path, width_px: 32, .. } if *path == paths[2]),
        "{err}"
    );
    let message = names_path(&err, &paths[2]);
    assert!(message.contains("32x48"), "{message}");
    assert!(message.contains("64x48"), "{message}");

    assert!(matches!(
        decode_sequence(&[], &FramePick::FitClip { count: 1 }),
        Err(Error::EmptySequence)
    ));
    let missing = vec![paths[0].clone(), dir.path().join("gone.png")];
    let err = decode_sequence(&missing, &FramePick::FitClip { count: 1 }).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}
