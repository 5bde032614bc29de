//! DINOv2's positional-embedding resampling (`interpolate_pos_encoding` in `dinov2.py`):
//! PyTorch `F.interpolate(mode="bicubic", align_corners=False)` with a `scale_factor`.
//!
//! With a scale factor PyTorch maps output `i` to source `(i + 0.5) / scale_factor - 0.5`
//! (not `in/out`), and the reference's factor carries a `+ 0.1` offset, so even a 37 → 37
//! axis is resampled, not copied. Weights and sums are f32 as in ATen's CPU kernel
//! (`UpSampleKernel.cpp`, `HelperInterpCubic`, A = -0.75, border taps clamped).

use candle_core::{Result, Tensor};

/// PyTorch's cubic-convolution parameter (`get_cubic_upsample_coefficients`).
const TORCH_CUBIC_A: f32 = -0.75;
/// `DinoVisionTransformer.interpolate_offset`: added to the target grid before dividing.
const INTERPOLATE_OFFSET: f64 = 0.1;

/// Resamples the patch part of `pos_embed` `(1, 1 + n*n, dim)` to a `patch_h`×`patch_w` grid
/// and puts the class position back in front: `(1, 1 + patch_h*patch_w, dim)`.
pub fn interpolate(pos_embed: &Tensor, patch_h: usize, patch_w: usize) -> Result<Tensor> {
    let (_, tokens, dim) = pos_embed.dims3()?;
    let n = tokens - 1;
    let side = (n as f64).sqrt() as usize;
    if side * side != n {
        candle_core::bail!("pos_embed has {n} patch positions, not a square grid");
    }
    // The reference returns the table untouched only for a square input of the trained size.
    if patch_h == side && patch_w == side {
        return Ok(pos_embed.clone());
    }
    let class_pos = pos_embed.narrow(1, 0, 1)?;
    // (side, side, dim), row-major: the layout the reference reshapes before permuting.
    let grid = pos_embed
        .narrow(1, 1, n)?
        .flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    let scale_h = (patch_h as f64 + INTERPOLATE_OFFSET) / side as f64;
    let scale_w = (patch_w as f64 + INTERPOLATE_OFFSET) / side as f64;
    let rows = taps(side, scale_h)?;
    let cols = taps(side, scale_w)?;
    if rows.len() != patch_h || cols.len() != patch_w {
        candle_core::bail!(
            "bicubic grid {}x{} does not match the {patch_h}x{patch_w} patches",
            rows.len(),
            cols.len()
        );
    }
    let mut out = Vec::with_capacity(patch_h * patch_w * dim);
    let mut inner = vec![0f32; dim];
    for (ys, wy) in &rows {
        for (xs, wx) in &cols {
            // Σ_i wy_i · (Σ_j wx_j · src[y_i, x_j]), each sum in tap order (ATen's nesting).
            let mut acc = vec![0f32; dim];
            for (i, &y) in ys.iter().enumerate() {
                inner.iter_mut().for_each(|v| *v = 0.0);
                for (j, &x) in xs.iter().enumerate() {
                    let src = &grid[(y * side + x) * dim..(y * side + x + 1) * dim];
                    if j == 0 {
                        inner.iter_mut().zip(src).for_each(|(v, &s)| *v = s * wx[0]);
                    } else {
                        inner
                            .iter_mut()
                            .zip(src)
                            .for_each(|(v, &s)| *v += s * wx[j]);
                    }
                }
                if i == 0 {
                    acc.iter_mut()
                        .zip(&inner)
                        .for_each(|(a, &t)| *a = t * wy[0]);
                } else {
                    acc.iter_mut()
                        .zip(&inner)
                        .for_each(|(a, &t)| *a += t * wy[i]);
                }
            }
            out.extend(acc);
        }
    }
    let patch_pos = Tensor::from_vec(out, (1, patch_h * patch_w, dim), pos_embed.device())?
        .to_dtype(pos_embed.dtype())?;
    Tensor::cat(&[class_pos, patch_pos], 1)
}

/// Source indices and weights of the four taps for each output of one axis.
type Taps = Vec<([usize; 4], [f32; 4])>;

/// One axis of `upsample_bicubic2d` with `scale_factor`: output size `floor(in * scale)`,
/// source coordinate `(1/scale) * (i + 0.5) - 0.5` in f32.
fn taps(input: usize, scale_factor: f64) -> Result<Taps> {
    let output = (input as f64 * scale_factor).floor() as usize;
    if output == 0 {
        candle_core::bail!("bicubic resampling of {input} by {scale_factor} gives nothing");
    }
    let scale = (1.0 / scale_factor) as f32;
    let last = input as i64 - 1;
    Ok((0..output)
        .map(|i| {
            let real = scale * (i as f32 + 0.5) - 0.5;
            // guard_index_and_lambda: the index never passes the last sample.
            let index = (real.floor() as i64).min(last);
            let t = (real - index as f32).clamp(0.0, 1.0);
            let indices = std::array::from_fn(|j| (index - 1 + j as i64).clamp(0, last) as usize);
            (indices, torch_cubic_coeffs(t))
        })
        .collect())
}

/// `get_cubic_upsample_coefficients` of ATen (`UpSample.h`).
fn torch_cubic_coeffs(t: f32) -> [f32; 4] {
    let a = TORCH_CUBIC_A;
    // cubic_convolution1 for |x| <= 1, cubic_convolution2 for 1 < |x| < 2.
    let near = |x: f32| ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    let far = |x: f32| ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a;
    let x2 = 1.0 - t;
    [far(t + 1.0), near(t), near(x2), far(x2 + 1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_follow_the_scale_factor_not_the_size_ratio() {
        // 37 -> 37 with the reference's offset: output 36 maps to 35.90, not 36.
        let t = taps(37, 37.1 / 37.0).unwrap();
        assert_eq!(t.len(), 37);
        assert_eq!(t[36].0, [34, 35, 36, 36]);
        let (indices, weights) = t[0];
        assert_eq!(indices, [0, 0, 0, 1]);
        assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
