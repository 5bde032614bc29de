//! The person detector's side of `dwpose/onnxdet.py`: the letterboxed input, YOLOX's grid
//! decoding, NMS and the reference's thresholds. Arithmetic follows NumPy's dtypes: boxes
//! and scores are `float32`, grid offsets are added in `float64` and stored back as
//! `float32`, and the final boxes are `float64` copies of the `float32` ones.

use candle_core::{DType, Device, Tensor};

use super::numpy_exp;
use crate::media::Frame;
use crate::preprocess::cv::{self, Interpolation};

/// YOLOX's input side.
pub(crate) const INPUT: usize = 640;
/// The letterbox's grey.
const PAD: u8 = 114;
/// YOLOX's strides (no P6).
const STRIDES: [usize; 3] = [8, 16, 32];
/// `multiclass_nms(…, nms_thr=0.45, score_thr=0.1)`.
const NMS_THRESHOLD: f32 = 0.45;
const CANDIDATE_SCORE: f32 = 0.1;
/// `final_scores > 0.3`, compared in `float64` (the detections are `float64` by then).
const PERSON_SCORE: f64 = 0.3;

/// The detector input: `img` (BGR) resized by `ratio` with `INTER_LINEAR` into the top-left
/// of a 640 × 640 square of grey 114, as a `(1, 3, 640, 640)` `f32` tensor of 0–255 values.
pub(crate) fn letterbox(img: &Frame, device: &Device) -> candle_core::Result<(Tensor, f64)> {
    // Python floats; `int()` truncates.
    let ratio = f64::min(
        INPUT as f64 / img.height as f64,
        INPUT as f64 / img.width as f64,
    );
    let (w, h) = (
        (img.width as f64 * ratio) as usize,
        (img.height as f64 * ratio) as usize,
    );
    if w == 0 || h == 0 || w > INPUT || h > INPUT {
        return Err(candle_core::Error::Msg(format!(
            "dwpose: a {}×{} picture does not letterbox into {INPUT}×{INPUT}",
            img.width, img.height
        )));
    }
    let resized = cv::resize(img, w, h, Interpolation::Linear);
    let plane = INPUT * INPUT;
    let mut data = vec![PAD as f32; 3 * plane];
    for y in 0..h {
        for x in 0..w {
            let at = (y * w + x) * 3;
            for c in 0..3 {
                data[c * plane + y * INPUT + x] = resized.rgb[at + c] as f32;
            }
        }
    }
    Ok((Tensor::from_vec(data, (1, 3, INPUT, INPUT), device)?, ratio))
}

/// A candidate box of the person class: corners in picture pixels (`float32`, as the
/// reference holds them until NMS) and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) xyxy: [f32; 4],
    pub(crate) score: f32,
}

/// The person boxes of the detector's raw output `(1, anchors, 5 + classes)` for a
/// letterbox made with `ratio`: `inference_detector`'s result, corners in picture pixels,
/// best first. Only class 0 matters: NMS is per class and the reference keeps class 0 only.
pub(crate) fn person_boxes(raw: &Tensor, ratio: f64) -> candle_core::Result<Vec<[f64; 4]>> {
    let anchors: usize = STRIDES.iter().map(|s| (INPUT / s).pow(2)).sum();
    let (batch, n, width) = raw.dims3().map_err(|_| {
        candle_core::Error::Msg(format!(
            "dwpose: detector output {:?} is not (1, {anchors}, 5 + classes)",
            raw.dims()
        ))
    })?;
    if batch != 1 || n != anchors || width < 6 {
        return Err(candle_core::Error::Msg(format!(
            "dwpose: detector output {:?} is not (1, {anchors}, 5 + classes)",
            raw.dims()
        )));
    }
    let values = raw.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let candidates = candidates(&values, width, ratio as f32);
    Ok(nms(&candidates, NMS_THRESHOLD)
        .into_iter()
        .map(|i| candidates[i])
        .filter(|c| c.score as f64 > PERSON_SCORE)
        .map(|c| c.xyxy.map(f64::from))
        .collect())
}

/// `demo_postprocess` and the xyxy conversion for the anchors whose person score passes
/// `score_thr`, in anchor order.
fn candidates(values: &[f32], width: usize, ratio: f32) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut anchor = 0;
    for stride in STRIDES {
        let side = INPUT / stride;
        for gy in 0..side {
            for gx in 0..side {
                let row = &values[anchor * width..(anchor + 1) * width];
                anchor += 1;
                let score = row[4] * row[5];
                if score.is_nan() || score <= CANDIDATE_SCORE {
                    continue;
                }
                // `(outputs + grids) * strides` mixes in int64 arrays: float64, stored
                // back into the float32 output.
                let s = stride as f64;
                let cx = ((row[0] as f64 + gx as f64) * s) as f32;
                let cy = ((row[1] as f64 + gy as f64) * s) as f32;
                let w = (numpy_exp::exp_f32(row[2]) as f64 * s) as f32;
                let h = (numpy_exp::exp_f32(row[3]) as f64 * s) as f32;
                // float32 from here; `/= ratio` casts the Python float to float32.
                let xyxy =
                    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0].map(|v| v / ratio);
                out.push(Candidate { xyxy, score });
            }
        }
    }
    out
}

/// `np.maximum` / `np.minimum`: NaN wins.
fn np_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a >= b {
        a
    } else {
        b
    }
}

fn np_min(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else if a <= b {
        a
    } else {
        b
    }
}

/// `onnxdet.nms` in `float32`: indices kept, best score first. `scores.argsort()[::-1]`
/// orders ties by the later index first when the sort is stable; NumPy's quicksort does
/// not promise that, so equal scores may come out the other way round in the reference.
pub(crate) fn nms(boxes: &[Candidate], threshold: f32) -> Vec<usize> {
    let area = |b: &Candidate| {
        let [x1, y1, x2, y2] = b.xyxy;
        (x2 - x1 + 1.0) * (y2 - y1 + 1.0)
    };
    let mut order: Vec<usize> = (0..boxes.len()).collect();
    order.sort_by(|&a, &b| {
        boxes[b]
            .score
            .total_cmp(&boxes[a].score)
            .then_with(|| b.cmp(&a))
    });
    let mut keep = Vec::new();
    while let Some((&i, rest)) = order.split_first() {
        keep.push(i);
        let [x1, y1, x2, y2] = boxes[i].xyxy;
        let area_i = area(&boxes[i]);
        order = rest
            .iter()
            .copied()
            .filter(|&j| {
                let [a1, b1, a2, b2] = boxes[j].xyxy;
                let w = np_max(0.0, np_min(x2, a2) - np_max(x1, a1) + 1.0);
                let h = np_max(0.0, np_min(y2, b2) - np_max(y1, b1) + 1.0);
                let inter = w * h;
                let overlap = inter / (area_i + area(&boxes[j]) - inter);
                overlap <= threshold
            })
            .collect();
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(xyxy: [f32; 4], score: f32) -> Candidate {
        Candidate { xyxy, score }
    }

    #[test]
    fn nms_keeps_best_and_disjoint() {
        let boxes = [
            cand([0.0, 0.0, 99.0, 99.0], 0.5),
            cand([5.0, 5.0, 104.0, 104.0], 0.9), // overlaps the first by ~0.82
            cand([200.0, 0.0, 299.0, 99.0], 0.7),
            cand([60.0, 0.0, 159.0, 99.0], 0.8), // overlaps #1 by 45/155 ≈ 0.29: kept
        ];
        assert_eq!(nms(&boxes, 0.45), vec![1, 3, 2]);
    }

    #[test]
    fn nms_threshold_is_inclusive() {
        // Boxes 0..=9 and 0..=X with the 1-pixel convention: overlap exactly 0.5.
        let boxes = [
            cand([0.0, 0.0, 9.0, 9.0], 0.9),
            cand([0.0, 0.0, 19.0, 9.0], 0.8),
        ];
        assert_eq!(nms(&boxes, 0.5), vec![0, 1]);
        assert_eq!(nms(&boxes, 0.49), vec![0]);
    }

    #[test]
    fn nms_ties_later_index_first_and_nan_boxes_suppressed() {
        let boxes = [
            cand([0.0, 0.0, 9.0, 9.0], 0.6),
            cand([0.0, 0.0, 9.0, 9.0], 0.6),
            cand([f32::NAN, 0.0, 9.0, 9.0], 0.5),
        ];
        // The NaN box's overlap is NaN, which is not ≤ the threshold: dropped.
        assert_eq!(nms(&boxes, 0.45), vec![1]);
        assert_eq!(nms(&boxes[2..], 0.45), vec![0]);
        assert!(nms(&[], 0.45).is_empty());
    }

    #[test]
    fn decodes_grid_strides_and_thresholds() {
        let width = 6;
        let anchors = 8400;
        let mut values = vec![0.0f32; anchors * width];
        // Anchor 6400 + 3·40 + 2: stride 16, grid (2, 3).
        let a = 6400 + 3 * 40 + 2;
        values[a * width..(a + 1) * width].copy_from_slice(&[0.5, 0.25, 0.0, 1.0, 0.8, 0.5]);
        // 0.1 × 1.0 is not above score_thr.
        let b = 10;
        values[b * width + 4] = 0.1;
        values[b * width + 5] = 1.0;
        let c = candidates(&values, width, 0.5);
        assert_eq!(c.len(), 1);
        let e = numpy_exp::exp_f32(1.0) * 16.0;
        let (cx, cy) = (2.5f32 * 16.0, 3.25f32 * 16.0);
        assert_eq!(
            c[0].xyxy,
            [
                (cx - 8.0) / 0.5,
                (cy - e / 2.0) / 0.5,
                (cx + 8.0) / 0.5,
                (cy + e / 2.0) / 0.5
            ]
        );
        assert_eq!(c[0].score, 0.4);

        // Below the final 0.3: no person, whatever NMS kept.
        let raw = Tensor::from_vec(values.clone(), (1, anchors, width), &Device::Cpu).unwrap();
        assert_eq!(person_boxes(&raw, 0.5).unwrap().len(), 1);
        values[a * width + 4] = 0.5; // score 0.25
        let raw = Tensor::from_vec(values, (1, anchors, width), &Device::Cpu).unwrap();
        assert!(person_boxes(&raw, 0.5).unwrap().is_empty());
    }

    #[test]
    fn refuses_wrong_shapes() {
        let raw = Tensor::zeros((1, 100, 85), DType::F32, &Device::Cpu).unwrap();
        let err = person_boxes(&raw, 1.0).unwrap_err().to_string();
        assert!(err.contains("(1, 8400, 5 + classes)"), "{err}");
        let raw = Tensor::zeros((8400, 85), DType::F32, &Device::Cpu).unwrap();
        assert!(person_boxes(&raw, 1.0).is_err());
    }
}
