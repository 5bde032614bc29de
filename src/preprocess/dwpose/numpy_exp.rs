//! NumPy's `float32` `exp`, the function the reference decodes YOLOX box sizes with.
//! The constants are NumPy's literals as they round to `f32` (written shortest).
//!
//! On x86-64 with AVX2 and FMA3 (or AVX512F), NumPy does not call the C library: its own
//! SIMD kernel (`simd_exp_FLOAT` in `loops_exponent_log.dispatch.c.src`) evaluates a
//! Cody–Waite range reduction and a 5/2 rational approximation, up to 2.5 ULP from the true
//! value. About 40 % of its results differ from a correctly rounded `exp`, which would move
//! detector boxes by an ULP; this is a lane-for-lane scalar transcription. On other CPUs
//! NumPy falls back to the C library's `expf`, which this does not follow.

/// Above or at this, the kernel returns infinity.
const X_MAX: f32 = 88.722_84;
/// At or below this, the kernel returns zero.
const X_MIN: f32 = -103.972_084;
/// `NPY_LOG2Ef`.
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `NPY_RINT_CVT_MAGICf`, 1.5 · 2²³: adding and subtracting it rounds to an integer.
const RINT_MAGIC: f32 = 12_582_912.0;
/// `NPY_CODY_WAITE_LOGE_2_HIGHf` and `…_LOWf`: −ln 2 split in two.
const LN2_HIGH: f32 = -0.693_145_75;
const LN2_LOW: f32 = -1.428_606_8e-6;
/// `NPY_COEFF_P0_EXPf` … `P5`: the numerator, lowest degree first.
const P: [f32; 6] = [
    1.0,
    0.725_766_5,
    0.247_361_54,
    0.051_145_12,
    0.006_757_897,
    0.000_508_276_3,
];
/// `NPY_COEFF_Q0_EXPf` … `Q2`: the denominator.
const Q: [f32; 3] = [1.0, -0.274_233_55, 0.021_595_094];

/// `np.exp` of one `float32`, bit for bit as NumPy's AVX2/AVX512F kernel computes it.
pub(crate) fn exp_f32(x: f32) -> f32 {
    if x.is_nan() {
        return f32::NAN;
    }
    if x >= X_MAX {
        return f32::INFINITY;
    }
    if x <= X_MIN {
        return 0.0;
    }
    let quadrant = ((x * LOG2E) + RINT_MAGIC) - RINT_MAGIC;
    // The kernel's third reduction step adds quadrant · 0, which changes nothing.
    let r = quadrant.mul_add(LN2_LOW, quadrant.mul_add(LN2_HIGH, x));
    let num = P[5].mul_add(r, P[4]);
    let num = num.mul_add(r, P[3]);
    let num = num.mul_add(r, P[2]);
    let num = num.mul_add(r, P[1]);
    let num = num.mul_add(r, P[0]);
    let den = Q[2].mul_add(r, Q[1]);
    let den = den.mul_add(r, Q[0]);
    // `scalef`: poly · 2^quadrant, exact in f64 and rounded once (only subnormals round).
    ((num / den) as f64 * 2f64.powi(quadrant as i32)) as f32
}

#[cfg(test)]
mod tests {
    use super::exp_f32;

    /// Against `np.exp` on float32 as NumPy 2.4 computes it on an AVX512F machine: random
    /// values in the box-size range and over the whole domain, and the edges.
    #[test]
    fn matches_numpy_bit_for_bit() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/dwpose/numpy_exp.safetensors");
        let t = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
        let x = t["x"].to_vec1::<f32>().unwrap();
        let want = t["exp"].to_vec1::<f32>().unwrap();
        let mut off = 0;
        for (x, want) in x.iter().zip(&want) {
            let got = exp_f32(*x);
            if got.to_bits() != want.to_bits() {
                off += 1;
                eprintln!("exp({x:e}) = {got:e}, NumPy {want:e}");
            }
        }
        assert_eq!(off, 0, "{off} of {} values differ from NumPy", x.len());
        // Not the correctly rounded exp: this sample differs from it in many places.
        let rounded = x
            .iter()
            .filter(|x| exp_f32(**x) != ((**x as f64).exp() as f32))
            .count();
        assert!(rounded > 100, "only {rounded} differ from the rounded exp");
    }

    #[test]
    fn edges() {
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
    }
}
