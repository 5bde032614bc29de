//! `scribble_edges`: dark lines on white from classical edge detection, for jobs without
//! the scribble network's weights. A difference of Gaussians on the luminance marks the
//! dark side of every edge; its depth sets the line's darkness, smoothly, so lines have the
//! soft, single-stroke look of the reference's line art rather than binary edge maps. It is
//! an approximation of that style, not the reference's annotator.

use super::gray::grey;
use crate::manifest::preprocess::EdgeOptions;
use crate::media::Frame;

/// Ratio of the two Gaussians (Marr–Hildreth's classic 1.6).
const SIGMA_RATIO: f32 = 1.6;

/// The line frame of one source frame.
pub fn edge_frame(frame: &Frame, o: &EdgeOptions) -> Frame {
    let (w, h) = (frame.width, frame.height);
    let luma: Vec<f32> = frame
        .rgb
        .chunks_exact(3)
        .map(|px| grey([px[0], px[1], px[2]]) as f32 / 255.0)
        .collect();
    // Line width follows the picture's size: about one pixel at 480p.
    let sigma = 0.5 + w.min(h) as f32 / 960.0;
    let fine = blur(&luma, w, h, sigma);
    let coarse = blur(&luma, w, h, sigma * SIGMA_RATIO);
    // Contrast (in luminance) at which a line starts, and at which it is fully dark.
    let start = 0.002 + 0.012 * (1.0 - o.detail as f32);
    let full = 5.0 * start;
    let rgb = fine
        .iter()
        .zip(&coarse)
        .flat_map(|(f, c)| {
            let depth = ((c - f - start) / (full - start)).clamp(0.0, 1.0);
            // Smoothstep: soft line edges without a hard threshold.
            let dark = depth * depth * (3.0 - 2.0 * depth);
            let v = (255.0 * (1.0 - dark)).round() as u8;
            [v, v, v]
        })
        .collect();
    Frame {
        width: w,
        height: h,
        rgb,
    }
}

/// A separable Gaussian blur with edge replication.
fn blur(plane: &[f32], w: usize, h: usize, sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / sum).collect();
    let pass = |src: &[f32], len: usize, stride: usize, lines: usize, line_stride: usize| {
        let mut out = vec![0f32; src.len()];
        for line in 0..lines {
            for i in 0..len {
                let mut acc = 0.0;
                for (k, weight) in kernel.iter().enumerate() {
                    let j = (i as isize + k as isize - radius).clamp(0, len as isize - 1) as usize;
                    acc += weight * src[line * line_stride + j * stride];
                }
                out[line * line_stride + i * stride] = acc;
            }
        }
        out
    };
    let rows = pass(plane, w, 1, h, w);
    pass(&rows, h, w, w, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edge_becomes_a_dark_line_on_white() {
        // Left half dark grey, right half light: one vertical edge at x = 32.
        let (w, h) = (64, 16);
        let mut frame = Frame::filled(w, h, [200; 3]);
        for y in 0..h {
            for x in 0..32 {
                let at = (y * w + x) * 3;
                frame.rgb[at..at + 3].fill(60);
            }
        }
        let lines = edge_frame(&frame, &EdgeOptions::default());
        let row: Vec<u8> = (0..w).map(|x| lines.pixel(x, 8)[0]).collect();
        assert!(
            row[..24].iter().all(|&v| v == 255),
            "flat areas stay white: {row:?}"
        );
        assert!(
            row[40..].iter().all(|&v| v == 255),
            "flat areas stay white: {row:?}"
        );
        assert!(
            row[29..32].iter().any(|&v| v < 64),
            "the dark side of the edge is a line: {row:?}"
        );
        assert!(
            lines
                .rgb
                .chunks_exact(3)
                .all(|p| p[0] == p[1] && p[1] == p[2])
        );
    }
}
