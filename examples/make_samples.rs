//! Writes the media of the sample jobs in `samples/` (the manifests are written by hand):
//! `cargo run --example make_samples`. Everything is synthetic and small (128x80, 17 frames
//! at 16 fps), so the samples render with the `tiny` model on a CPU in seconds.
//!
//! Conventions of the VACE inputs (spec §6.1, §6.9): in a source video, grey (127) marks
//! content to make up; in a mask, white (255) = generate, black (0) = keep. The `inpainting`
//! sample gives those inputs ready-made; the others let the job's `preprocess` tasks make
//! them from plain media.

use std::path::Path;

use vaced::media::Frame;
use vaced::media::{Mp4Settings, write_mp4, write_png};

const WIDTH: usize = 128;
const HEIGHT: usize = 80;
const FRAMES: usize = 17;
const GREY: u8 = 127;

fn frame(f: impl Fn(usize, usize) -> [u8; 3]) -> Frame {
    let mut rgb = Vec::with_capacity(WIDTH * HEIGHT * 3);
    for y in 0..HEIGHT {
        for x in 0..WIDTH {
            rgb.extend_from_slice(&f(x, y));
        }
    }
    Frame {
        width: WIDTH,
        height: HEIGHT,
        rgb,
    }
}

/// A sky-to-grass scene with a red ball rolling left to right.
fn scene(t: usize) -> Frame {
    let cx = 20.0 + 88.0 * t as f32 / (FRAMES - 1) as f32;
    frame(|x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - 52.0);
        if dx * dx + dy * dy < 100.0 {
            [220, 40, 30]
        } else if y < 56 {
            [(90 + y) as u8, (140 + y) as u8, 235]
        } else {
            [60, (150 - (y - 56) * 2) as u8, 50]
        }
    })
}

fn settings() -> Mp4Settings {
    // Near-lossless, so grey and black/white masks survive compression.
    Mp4Settings {
        fps: 16,
        crf: 4,
        preset: "medium".into(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let scenes: Vec<Frame> = (0..FRAMES).map(scene).collect();

    // Reference image: a yellow star-ish subject on white.
    let subject = frame(|x, y| {
        let (dx, dy) = (x as f32 - 64.0, y as f32 - 40.0);
        let r = (dx * dx + dy * dy).sqrt();
        let spikes = 18.0 + 8.0 * (5.0 * dy.atan2(dx)).cos();
        if r < spikes {
            [240, 200, 20]
        } else {
            [255, 255, 255]
        }
    });
    write_png(&root.join("reference-to-video/ref-1.png"), &subject)?;

    // Inpainting: the middle box is grey in the source and white in the mask.
    let in_box = |x: usize, y: usize| (40..88).contains(&x) && (20..60).contains(&y);
    let holed: Vec<Frame> = scenes
        .iter()
        .map(|f| {
            let mut f = f.clone();
            for y in 0..HEIGHT {
                for x in 0..WIDTH {
                    if in_box(x, y) {
                        f.rgb[(y * WIDTH + x) * 3..][..3].copy_from_slice(&[GREY; 3]);
                    }
                }
            }
            f
        })
        .collect();
    write_mp4(&root.join("inpainting/source.mp4"), &holed, &settings())?;
    write_png(
        &root.join("inpainting/mask.png"),
        &frame(|x, y| if in_box(x, y) { [255; 3] } else { [0; 3] }),
    )?;

    // First-frame extension (task `extension`): one still to start from.
    write_png(&root.join("first-frame-extension/first.png"), &scenes[0])?;

    // Outpainting (task `outpainting`): a portrait clip, the middle 80 columns of the scene
    // stretched to 80x128, widened into landscape.
    let portrait: Vec<Frame> = scenes
        .iter()
        .map(|f| {
            let (w, h) = (HEIGHT, WIDTH);
            let mut rgb = Vec::with_capacity(w * h * 3);
            for y in 0..h {
                for x in 0..w {
                    let i = ((y * HEIGHT / h) * WIDTH + 24 + x) * 3;
                    rgb.extend_from_slice(&f.rgb[i..i + 3]);
                }
            }
            Frame {
                width: w,
                height: h,
                rgb,
            }
        })
        .collect();
    write_mp4(
        &root.join("outpainting/portrait.mp4"),
        &portrait,
        &settings(),
    )?;

    // Masked replacement with a reference (tasks `inpainting` + `reference`): the scene,
    // a mask over the ball's path, and a subject photographed on a coloured backdrop with
    // its mask, which the `reference` task cuts out onto white.
    write_mp4(
        &root.join("swap-with-reference/source.mp4"),
        &scenes,
        &settings(),
    )?;
    write_png(
        &root.join("swap-with-reference/mask.png"),
        &frame(|_, y| {
            if (38..68).contains(&y) {
                [255; 3]
            } else {
                [0; 3]
            }
        }),
    )?;
    let star = |x: usize, y: usize| {
        let (dx, dy) = (x as f32 - 64.0, y as f32 - 40.0);
        (dx * dx + dy * dy).sqrt() < 18.0 + 8.0 * (5.0 * dy.atan2(dx)).cos()
    };
    write_png(
        &root.join("swap-with-reference/subject.png"),
        &frame(|x, y| {
            if star(x, y) {
                [240, 200, 20]
            } else {
                [70, 90, 160]
            }
        }),
    )?;
    write_png(
        &root.join("swap-with-reference/subject-mask.png"),
        &frame(|x, y| if star(x, y) { [255; 3] } else { [0; 3] }),
    )?;
    println!("wrote the sample media under {}", root.display());
    Ok(())
}
