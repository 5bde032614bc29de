//! The pose estimator's side of `dwpose/onnxpose.py`: each person's crop (`bbox_xyxy2cs`
//! with padding 1.25, `_fix_aspect_ratio`, `get_warp_matrix`, `warpAffine`), its
//! normalisation, and the SimCC decoding back to picture pixels. The crop geometry is
//! `float64` except the three point pairs, which the reference stores as `float32`.

use candle_core::{DType, Device, Tensor};

use crate::media::Frame;
use crate::preprocess::cv;

/// `bbox_xyxy2cs(bbox, padding=1.25)`.
const PADDING: f64 = 1.25;
/// ImageNet's RGB mean and deviation, which the reference applies to its BGR crops as they
/// are (channel 0, blue, gets the red statistics).
const MEAN: [f64; 3] = [123.675, 116.28, 103.53];
const STD: [f64; 3] = [58.395, 57.12, 57.375];
/// `decode(…, simcc_split_ratio=2.0)`.
const SIMCC_SPLIT: f32 = 2.0;

/// Where a crop came from: the box centre and the aspect-fixed box size, in picture pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CropBox {
    pub(crate) center: [f64; 2],
    pub(crate) scale: [f64; 2],
}

impl CropBox {
    /// `bbox_xyxy2cs` then `_fix_aspect_ratio` for a model input of `size` (w, h).
    pub(crate) fn new(xyxy: [f64; 4], size: (usize, usize)) -> Self {
        let [x1, y1, x2, y2] = xyxy;
        let center = [(x1 + x2) * 0.5, (y1 + y2) * 0.5];
        let (w, h) = ((x2 - x1) * PADDING, (y2 - y1) * PADDING);
        let aspect = size.0 as f64 / size.1 as f64;
        let scale = if w > h * aspect {
            [w, w / aspect]
        } else {
            [h * aspect, h]
        };
        CropBox { center, scale }
    }

    /// `get_warp_matrix(center, scale, rot=0, output_size=size)`: three point pairs kept
    /// in `float32`, handed to `getAffineTransform`.
    pub(crate) fn warp_matrix(&self, size: (usize, usize)) -> [[f64; 3]; 2] {
        let [cx, cy] = self.center;
        // `_rotate_point` by 0 rad leaves (0, −w/2) as it is.
        let src0 = [cx as f32, cy as f32];
        let src1 = [cx as f32, (cy + self.scale[0] * -0.5) as f32];
        let (dw, dh) = (size.0 as f64, size.1 as f64);
        let dst0 = [(dw * 0.5) as f32, (dh * 0.5) as f32];
        let dst1 = [(dw * 0.5) as f32, (dh * 0.5 + dw * -0.5) as f32];
        cv::get_affine_transform(
            [src0, src1, third_point(src0, src1)],
            [dst0, dst1, third_point(dst0, dst1)],
        )
    }

    /// `keypoints / model_input_size * scale + center - scale / 2`, in `float64`, for a
    /// location in model-input pixels.
    pub(crate) fn in_picture(&self, loc: [f32; 2], size: (usize, usize)) -> [f64; 2] {
        let dims = [size.0 as f64, size.1 as f64];
        std::array::from_fn(|i| {
            loc[i] as f64 / dims[i] * self.scale[i] + self.center[i] - self.scale[i] / 2.0
        })
    }
}

/// `_get_3rd_point` in `float32`: `a − b` turned 90° anticlockwise about `b`.
fn third_point(a: [f32; 2], b: [f32; 2]) -> [f32; 2] {
    let d = [a[0] - b[0], a[1] - b[1]];
    [b[0] + -d[1], b[1] + d[0]]
}

/// The normalised crops of `img` (BGR) for `boxes`, `(n, 3, h, w)` with `size` (w, h):
/// `warpAffine(INTER_LINEAR)`, then `(pixel − mean) / std` in `float64`, as `float32` the
/// way onnxruntime converts the reference's `float64` input.
pub(crate) fn crops(
    img: &Frame,
    boxes: &[CropBox],
    size: (usize, usize),
    device: &Device,
) -> candle_core::Result<Tensor> {
    let (w, h) = size;
    let plane = w * h;
    let mut data = Vec::with_capacity(boxes.len() * 3 * plane);
    for b in boxes {
        let crop = cv::warp_affine_linear(img, &b.warp_matrix(size), w, h);
        for c in 0..3 {
            data.extend(
                crop.rgb[c..]
                    .iter()
                    .step_by(3)
                    .map(|&v| ((v as f64 - MEAN[c]) / STD[c]) as f32),
            );
        }
    }
    Tensor::from_vec(data, (boxes.len(), 3, h, w), device)
}

/// `np.argmax` and `np.amax` of a row: the first maximum; a NaN beats everything.
fn arg_max(row: &[f32]) -> (usize, f32) {
    let mut best = (0, row[0]);
    for (i, &v) in row.iter().enumerate() {
        if v.is_nan() {
            return (i, v);
        }
        if v > best.1 {
            best = (i, v);
        }
    }
    best
}

/// `get_simcc_maximum` and `decode` for one keypoint's rows: the location in model-input
/// pixels (−0.5, −0.5 when the score is not positive) and the score, the smaller maximum.
pub(crate) fn decode(x_row: &[f32], y_row: &[f32]) -> Decoded {
    let (ix, vx) = arg_max(x_row);
    let (iy, vy) = arg_max(y_row);
    let score = if vx > vy { vy } else { vx };
    let loc = if score <= 0.0 {
        [-1.0, -1.0]
    } else {
        [ix as f32, iy as f32]
    };
    (loc.map(|v| v / SIMCC_SPLIT), score)
}

/// A keypoint's location in model-input pixels and its score.
pub(crate) type Decoded = ([f32; 2], f32);

/// The decoded keypoints of the estimator's output for `n` crops, per crop.
pub(crate) fn decode_all(
    simcc_x: &Tensor,
    simcc_y: &Tensor,
    n: usize,
    keypoints: usize,
) -> candle_core::Result<Vec<Vec<Decoded>>> {
    let shape_error = || {
        candle_core::Error::Msg(format!(
            "dwpose: pose output simcc_x {:?}, simcc_y {:?} is not ({n}, {keypoints}, W)",
            simcc_x.dims(),
            simcc_y.dims()
        ))
    };
    let (nx, kx, wx) = simcc_x.dims3().map_err(|_| shape_error())?;
    let (ny, ky, wy) = simcc_y.dims3().map_err(|_| shape_error())?;
    if nx != n || ny != n || kx != keypoints || ky != keypoints || wx == 0 || wy == 0 {
        return Err(shape_error());
    }
    let xs = simcc_x
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let ys = simcc_y
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    Ok((0..n)
        .map(|p| {
            (0..keypoints)
                .map(|k| {
                    let row = p * keypoints + k;
                    decode(&xs[row * wx..(row + 1) * wx], &ys[row * wy..(row + 1) * wy])
                })
                .collect()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_takes_first_maximum_and_smaller_score() {
        let (loc, score) = decode(&[0.1, 0.7, 0.7, 0.2], &[0.9, 0.3, 0.95]);
        assert_eq!(loc, [0.5, 1.0]);
        assert_eq!(score, 0.7);
        let (loc, score) = decode(&[0.5, 0.9], &[0.4, 0.1]);
        assert_eq!((loc, score), ([0.5, 0.0], 0.4));
    }

    #[test]
    fn decode_non_positive_scores_lose_their_location() {
        assert_eq!(decode(&[0.0, 0.0], &[0.3, 0.9]), ([-0.5, -0.5], 0.0));
        assert_eq!(decode(&[-0.3, -0.1], &[0.3, 0.9]), ([-0.5, -0.5], -0.1));
        // A NaN is the maximum where it first appears, and makes no score.
        let (loc, score) = decode(&[0.2, f32::NAN, 0.9], &[0.9, 0.3]);
        assert_eq!(loc, [0.5, 0.0]);
        assert!(score.is_nan());
    }

    #[test]
    fn crop_box_pads_and_fixes_aspect() {
        let wide = CropBox::new([10.0, 20.0, 110.0, 60.0], (288, 384));
        assert_eq!(wide.center, [60.0, 40.0]);
        assert_eq!(wide.scale, [125.0, 125.0 / 0.75]);
        let tall = CropBox::new([0.0, 0.0, 10.0, 100.0], (288, 384));
        assert_eq!(tall.scale, [125.0 * 0.75, 125.0]);
        // A model-input location maps back through the box.
        assert_eq!(tall.in_picture([144.0, 192.0], (288, 384)), [5.0, 50.0]);
        assert_eq!(
            tall.in_picture([0.0, 0.0], (288, 384)),
            [5.0 - 46.875, -12.5]
        );
    }

    #[test]
    fn decode_all_checks_shapes() {
        let x = Tensor::zeros((2, 133, 576), DType::F32, &Device::Cpu).unwrap();
        let y = Tensor::zeros((2, 133, 768), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(decode_all(&x, &y, 2, 133).unwrap().len(), 2);
        let err = decode_all(&x, &y, 1, 133).unwrap_err().to_string();
        assert!(err.contains("(1, 133, W)"), "{err}");
        let few = Tensor::zeros((2, 17, 768), DType::F32, &Device::Cpu).unwrap();
        assert!(decode_all(&x, &few, 2, 133).is_err());
        assert!(decode_all(&x, &y.flatten_all().unwrap(), 2, 133).is_err());
    }
}
