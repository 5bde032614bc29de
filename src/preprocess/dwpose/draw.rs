//! `draw_pose` with `dwpose/util.py`'s `draw_bodypose` and `draw_facepose` on the working
//! picture, then `PoseAnnotator.process`'s resize back to the frame. The reference draws on
//! a canvas it then reverses (`[..., ::-1]`), so its listed colours come out with red and
//! blue swapped; this draws the same bytes in the same order and reverses likewise.

use super::Parts;
use super::keypoints::{BODY, FACE, Person, Poses};
use crate::media::Frame;
use crate::preprocess::cv::{self, Interpolation};

/// `draw_bodypose`'s limbs, 1-based; only the first 17 are drawn.
const LIMBS: [[usize; 2]; 17] = [
    [2, 3],
    [2, 6],
    [3, 4],
    [4, 5],
    [6, 7],
    [7, 8],
    [2, 9],
    [9, 10],
    [10, 11],
    [2, 12],
    [12, 13],
    [13, 14],
    [2, 1],
    [1, 15],
    [15, 17],
    [1, 16],
    [16, 18],
];
/// `draw_bodypose`'s colours, in the canvas's channel order.
const COLORS: [[u8; 3]; BODY] = [
    [255, 0, 0],
    [255, 85, 0],
    [255, 170, 0],
    [255, 255, 0],
    [170, 255, 0],
    [85, 255, 0],
    [0, 255, 0],
    [0, 255, 85],
    [0, 255, 170],
    [0, 255, 255],
    [0, 170, 255],
    [0, 85, 255],
    [0, 0, 255],
    [85, 0, 255],
    [170, 0, 255],
    [255, 0, 255],
    [255, 0, 170],
    [255, 0, 85],
];
const STICK_WIDTH: i32 = 4;
const JOINT_RADIUS: i32 = 4;
const FACE_RADIUS: i32 = 3;
const FACE_POINTS: usize = 68;
/// `score > 0.3` shows a body point; a face point shows unless `score < 0.3`.
const THRESHOLD: f64 = 0.3;
/// `util.eps`: face points at pixel 0 in x or y are not drawn.
const EPS: f64 = 0.01;

/// The pose frame of `poses` (RGB, the frame's size).
pub(crate) fn render(poses: &Poses, parts: Parts) -> Frame {
    let (w, h) = poses.size;
    // `candidate[..., 0] /= float(W)` and so on: kept as the reference divides them.
    let normalised: Vec<Vec<[f64; 2]>> = poses
        .people
        .iter()
        .map(|p| {
            p.keypoints
                .iter()
                .map(|&[x, y]| [x / w as f64, y / h as f64])
                .collect()
        })
        .collect();
    let mut canvas = Frame::filled(w, h, [0, 0, 0]);
    draw_body(&mut canvas, &poses.people, &normalised);
    if parts == Parts::BodyFace {
        draw_face(&mut canvas, &poses.people, &normalised);
    }
    for px in canvas.rgb.chunks_exact_mut(3) {
        px.swap(0, 2);
    }
    let (fw, fh) = poses.frame_size;
    if (fw, fh) == (w, h) {
        // cv2.resize to the same size copies.
        return canvas;
    }
    let interpolation = if fw * fh > w * h {
        Interpolation::Lanczos4
    } else {
        Interpolation::Area
    };
    cv::resize(&canvas, fw, fh, interpolation)
}

/// `int()` of a Python float: towards zero.
fn trunc(v: f64) -> i32 {
    v as i32
}

fn draw_body(canvas: &mut Frame, people: &[Person], normalised: &[Vec<[f64; 2]>]) {
    let (w, h) = (canvas.width as f64, canvas.height as f64);
    let visible = |p: &Person, i: usize| p.scores[i] > THRESHOLD;
    for (limb, color) in LIMBS.iter().zip(COLORS) {
        let [a, b] = limb.map(|i| i - 1);
        for (person, points) in people.iter().zip(normalised) {
            if !visible(person, a) || !visible(person, b) {
                continue;
            }
            // The reference's Y is x and X is y.
            let ys = [points[a][0] * w, points[b][0] * w];
            let xs = [points[a][1] * h, points[b][1] * h];
            let mean_x = (xs[0] + xs[1]) / 2.0;
            let mean_y = (ys[0] + ys[1]) / 2.0;
            let (dx, dy) = (xs[0] - xs[1], ys[0] - ys[1]);
            // `** 2` and `** 0.5` are C `pow` on NumPy float64 scalars.
            let length = (dx.powf(2.0) + dy.powf(2.0)).powf(0.5);
            let angle = dx.atan2(dy).to_degrees();
            let polygon = cv::ellipse_to_poly(
                (trunc(mean_y), trunc(mean_x)),
                (trunc(length / 2.0), STICK_WIDTH),
                trunc(angle),
                0,
                360,
                1,
            );
            cv::fill_convex_poly(canvas, &polygon, color);
        }
    }
    // `(canvas * 0.6).astype(np.uint8)`: float64, truncated.
    for v in canvas.rgb.iter_mut() {
        *v = (*v as f64 * 0.6) as u8;
    }
    for (i, color) in COLORS.iter().enumerate() {
        for (person, points) in people.iter().zip(normalised) {
            if !visible(person, i) {
                continue;
            }
            let [x, y] = points[i];
            cv::fill_circle(canvas, (trunc(x * w), trunc(y * h)), JOINT_RADIUS, *color);
        }
    }
}

fn draw_face(canvas: &mut Frame, people: &[Person], normalised: &[Vec<[f64; 2]>]) {
    let (w, h) = (canvas.width as f64, canvas.height as f64);
    for (person, points) in people.iter().zip(normalised) {
        let face = FACE..FACE + FACE_POINTS;
        for (&score, &point) in person.scores[face.clone()].iter().zip(&points[face]) {
            // `candidate[subset < 0.3] = -1`.
            let [x, y] = if score < THRESHOLD {
                [-1.0, -1.0]
            } else {
                point
            };
            let (x, y) = (trunc(x * w), trunc(y * h));
            if x as f64 > EPS && y as f64 > EPS {
                cv::fill_circle(canvas, (x, y), FACE_RADIUS, [255, 255, 255]);
            }
        }
    }
}
