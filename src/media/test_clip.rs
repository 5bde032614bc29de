//! A synthetic clip for the media tests: 32 frames whose colours stay tellable apart after
//! lossy encoding, and the function that tells which frame a decoded frame shows. Part of
//! the library (hidden from its docs) so unit and integration tests share one copy.

use super::frame::Frame;

/// Clip width.
pub const WIDTH: usize = 64;
/// Clip height.
pub const HEIGHT: usize = 48;
/// Frames in the clip.
pub const FRAMES: usize = 32;

/// Frame k's colour: far from its neighbours in every channel.
pub fn colour(k: usize) -> [u8; 3] {
    [(8 * k) as u8, (255 - 8 * k) as u8, ((k * 97) % 256) as u8]
}

/// Frame k of the clip: flat `colour(k)` with a black 16×16 square at the top left.
pub fn frame(k: usize) -> Frame {
    let mut frame = Frame::filled(WIDTH, HEIGHT, colour(k));
    for y in 0..16 {
        for x in 0..16 {
            let at = (y * WIDTH + x) * 3;
            frame.rgb[at..at + 3].copy_from_slice(&[0, 0, 0]);
        }
    }
    frame
}

/// The whole synthetic clip.
pub fn clip() -> Vec<Frame> {
    (0..FRAMES).map(frame).collect()
}

/// Which clip frame `frame` shows: the nearest colour, by the mean of the bottom-right
/// quadrant; also checks the black square is still top left (no flip, no mirror).
pub fn which(frame: &Frame) -> usize {
    assert_eq!((frame.width, frame.height), (WIDTH, HEIGHT));
    let mut sum = [0f64; 3];
    let mut n = 0.0;
    for y in 28..44 {
        for x in 36..60 {
            let px = frame.pixel(x, y);
            for c in 0..3 {
                sum[c] += px[c] as f64;
            }
            n += 1.0;
        }
    }
    let mean = sum.map(|s| s / n);
    let distance = |k: usize| -> f64 {
        let c = colour(k);
        (0..3).map(|i| (mean[i] - c[i] as f64).powi(2)).sum()
    };
    let best = (0..FRAMES)
        .min_by(|&a, &b| distance(a).total_cmp(&distance(b)))
        .unwrap();
    assert!(
        distance(best) < 8.0 * 8.0,
        "mean {mean:?} is far from every clip colour (nearest is frame {best})"
    );
    let corner = frame.pixel(6, 6);
    assert!(corner.iter().all(|&c| c < 40), "corner {corner:?}");
    best
}
