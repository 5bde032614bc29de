//! Stills, resizing, previews and the encoder's refusals through the public `media` API.
#![cfg(feature = "ffmpeg")]

mod media_common;

use std::path::Path;

use image::{ImageFormat, Rgba, RgbaImage};
use media_common::{FRAMES, HEIGHT, WIDTH, clip, colour, which};
use vaced::media::{
    Error, Frame, Mp4Settings, contact_sheet, ffmpeg_version, letterbox_on_white, load_still,
    poster, resize_crop, write_mp4, write_png,
};

/// A 8×6 test picture: a horizontal red ramp, green by row, blue constant.
fn picture() -> Frame {
    let (w, h) = (8, 6);
    let mut rgb = Vec::new();
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&[(x * 32) as u8, (y * 40) as u8, 200]);
        }
    }
    Frame {
        width: w,
        height: h,
        rgb,
    }
}

fn save(path: &Path, frame: &Frame, format: ImageFormat) {
    image::save_buffer_with_format(
        path,
        &frame.rgb,
        frame.width as u32,
        frame.height as u32,
        image::ColorType::Rgb8,
        format,
    )
    .unwrap();
}

#[test]
fn png_and_webp_stills_load_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let original = picture();
    let png = dir.path().join("still.png");
    write_png(&png, &original).unwrap();
    assert_eq!(load_still(&png).unwrap(), original);
    // The image crate writes lossless WebP.
    let webp = dir.path().join("still.webp");
    save(&webp, &original, ImageFormat::WebP);
    assert_eq!(load_still(&webp).unwrap(), original);
}

#[test]
fn jpeg_stills_load_close_to_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let original = Frame::filled(16, 16, [200, 40, 90]);
    let path = dir.path().join("still.jpg");
    save(&path, &original, ImageFormat::Jpeg);
    let loaded = load_still(&path).unwrap();
    assert_eq!((loaded.width, loaded.height), (16, 16));
    for (a, b) in loaded.rgb.iter().zip(&original.rgb) {
        assert!(a.abs_diff(*b) <= 6, "{a} vs {b}");
    }
}

#[test]
fn the_format_comes_from_the_content_not_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("actually-a-png.jpg");
    write_png(&path, &picture()).unwrap();
    assert_eq!(load_still(&path).unwrap(), picture());
}

#[test]
fn transparent_pixels_are_composited_on_white() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alpha.png");
    let mut rgba = RgbaImage::new(3, 1);
    rgba.put_pixel(0, 0, Rgba([10, 20, 30, 255]));
    rgba.put_pixel(1, 0, Rgba([10, 20, 30, 0]));
    rgba.put_pixel(2, 0, Rgba([0, 0, 0, 128]));
    rgba.save(&path).unwrap();
    let frame = load_still(&path).unwrap();
    assert_eq!(frame.rgb, [10, 20, 30, 255, 255, 255, 127, 127, 127]);
}

#[test]
fn greyscale_stills_become_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("grey.png");
    image::GrayImage::from_raw(2, 1, vec![5, 250])
        .unwrap()
        .save(&path)
        .unwrap();
    assert_eq!(load_still(&path).unwrap().rgb, [5, 5, 5, 250, 250, 250]);
}

#[test]
fn unreadable_stills_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.png");
    let err = load_still(&missing).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    let junk = dir.path().join("junk.png");
    std::fs::write(&junk, b"\x89PNG\r\n\x1a\nthen nothing useful").unwrap();
    let err = load_still(&junk).unwrap_err();
    assert!(matches!(err, Error::Image { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.starts_with(&junk.display().to_string()),
        "{message}"
    );
    assert!(message.contains("save it as PNG or JPEG"), "{message}");
}

#[test]
fn resize_crop_scales_to_cover_and_crops_the_centre() {
    // 100×50 with red = 2·x: scale max(0.64, 0.96) = 0.96 → 96×48, crop x from 16.
    let mut rgb = Vec::new();
    for _ in 0..50 {
        for x in 0..100 {
            rgb.extend_from_slice(&[(2 * x) as u8, 100, 50]);
        }
    }
    let frame = Frame {
        width: 100,
        height: 50,
        rgb,
    };
    let out = resize_crop(&frame, 64, 48);
    assert_eq!((out.width, out.height), (64, 48));
    // Output column c is scaled column c + 16, source x = (c + 16.5)/0.96 − 0.5.
    for c in [0usize, 31, 63] {
        let source_x = (c as f64 + 16.5) / 0.96 - 0.5;
        let red = out.pixel(c, 24)[0] as f64;
        assert!((red - 2.0 * source_x).abs() <= 2.0, "column {c}: {red}");
        assert_eq!(out.pixel(c, 24)[1..], [100, 50]);
    }
    // The same size comes back untouched.
    assert_eq!(resize_crop(&out, 64, 48), out);
}

#[test]
fn letterbox_keeps_the_aspect_on_a_white_canvas() {
    // 8×6 onto 16×16: scale min(16/6, 16/8) = 2 → 16×12 at top 2; rows 0–1, 14–15 white.
    let canvas = letterbox_on_white(&picture(), 16, 16);
    assert_eq!(canvas.len(), 3 * 16 * 16);
    for c in 0..3 {
        let plane = &canvas[c * 256..(c + 1) * 256];
        assert!(plane[..32].iter().all(|&v| v == 1.0), "channel {c} top");
        assert!(
            plane[14 * 16..].iter().all(|&v| v == 1.0),
            "channel {c} bottom"
        );
    }
    // Blue is 200 everywhere in the picture: (200/255 − 0.5)/0.5 inside.
    let blue = &canvas[2 * 256..];
    assert!((blue[8 * 16 + 8] - (200.0 / 255.0 * 2.0 - 1.0)).abs() < 1e-6);
    // Red ramps left to right inside the image.
    let red = &canvas[..256];
    assert!(red[8 * 16] < red[8 * 16 + 15]);
}

#[test]
fn contact_sheet_lays_out_evenly_spaced_thumbnails() {
    let frames = clip();
    // 8 of 32 frames, 4 columns, 32 px thumbs (24 high): 4·32 + 5·4 by 2·24 + 3·4.
    let sheet = contact_sheet(&frames, 8, 4, 32);
    assert_eq!((sheet.width, sheet.height), (148, 60));
    // The first thumb shows frame 0, the eighth (column 3, row 1) frame 31.
    let first = sheet.pixel(4 + 24, 4 + 16);
    let last = sheet.pixel(4 + 3 * 36 + 24, 4 + 28 + 16);
    for (px, k) in [(first, 0), (last, FRAMES - 1)] {
        for c in 0..3 {
            assert!(px[c].abs_diff(colour(k)[c]) <= 2, "{px:?} vs frame {k}");
        }
    }
    assert_eq!(sheet.pixel(0, 0), sheet.pixel(147, 59));
    assert_eq!(which(poster(&frames)), FRAMES / 2);
}

#[test]
fn write_mp4_refuses_frames_it_cannot_encode() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Mp4Settings {
        fps: 24,
        crf: 18,
        preset: "veryfast".into(),
    };
    let path = dir.path().join("odd.mp4");
    let odd = vec![Frame::filled(WIDTH - 1, HEIGHT, [0, 0, 0])];
    let err = write_mp4(&path, &odd, &settings).unwrap_err();
    assert!(matches!(err, Error::FrameSize { index: 0, .. }), "{err}");
    assert!(err.to_string().contains("even width and height"), "{err}");

    let mixed = vec![
        Frame::filled(WIDTH, HEIGHT, [0, 0, 0]),
        Frame::filled(WIDTH, HEIGHT + 2, [0, 0, 0]),
    ];
    let err = write_mp4(&path, &mixed, &settings).unwrap_err();
    assert!(matches!(err, Error::FrameSize { index: 1, .. }), "{err}");

    let err = write_mp4(&path, &[], &settings).unwrap_err();
    assert!(matches!(err, Error::NoFrames { .. }), "{err}");

    let bad = Mp4Settings {
        preset: "warp-speed".into(),
        ..settings.clone()
    };
    let err = write_mp4(&path, &clip(), &bad).unwrap_err();
    assert!(matches!(err, Error::EncoderSettings { .. }), "{err}");
    assert!(err.to_string().contains("preset=warp-speed"), "{err}");
    assert!(!path.exists(), "a failed write left a file behind");
    // Nor does it damage a finished video already there, or leave its stand-in about.
    write_mp4(&path, &clip(), &settings).unwrap();
    let before = std::fs::read(&path).unwrap();
    assert!(write_mp4(&path, &clip(), &bad).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "{names:?}");

    let err = write_mp4(&dir.path().join("no/such/dir.mp4"), &clip(), &settings).unwrap_err();
    assert!(matches!(err, Error::Encode { .. }), "{err}");
}

#[test]
fn ffmpeg_version_names_libavcodec() {
    let version = ffmpeg_version();
    assert!(version.starts_with("libavcodec "), "{version}");
    assert_eq!(version.split('.').count(), 3, "{version}");
}
