//! Seeded Gaussian noise for the initial latent.
//!
//! The reference draws it from PyTorch's CUDA Philox generator, which cannot be reproduced
//! outside PyTorch; we draw from ChaCha20 with `rand_distr`'s standard normal on the host, so
//! a seed gives the same noise on every machine and device.

use candle_core::{Device, Result, Shape, Tensor};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};

/// Names the generator in reports, so a run can be reproduced later.
pub const NOISE_GENERATOR: &str = "chacha20+standard-normal";

/// Standard normal f32 noise of `shape` from `seed`.
pub fn gaussian(shape: impl Into<Shape>, seed: u64, device: &Device) -> Result<Tensor> {
    let shape = shape.into();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..shape.elem_count())
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    Tensor::from_vec(values, shape, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_noise_other_seed_other_noise() {
        let dev = Device::Cpu;
        let a: Vec<f32> = gaussian(1000, 7, &dev).unwrap().to_vec1().unwrap();
        let b: Vec<f32> = gaussian(1000, 7, &dev).unwrap().to_vec1().unwrap();
        let c: Vec<f32> = gaussian(1000, 8, &dev).unwrap().to_vec1().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mean = a.iter().sum::<f32>() / 1000.0;
        let var = a.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / 1000.0;
        assert!(
            mean.abs() < 0.1 && (var - 1.0).abs() < 0.15,
            "mean {mean}, var {var}"
        );
    }
}
