//! Seeded random weights for any model configuration, made on request by the model's own
//! constructors (a `VarBuilder` backend), so no list of tensor names is kept apart from the
//! model code. The built-in `tiny` model and the random-weight benchmarks use it.
//!
//! Each tensor's values depend only on the seed and the tensor's name, and are scaled like
//! the reference's initialisation so activations stay in a sane range.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::VarBuilder;
use candle_nn::var_builder::SimpleBackend;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};

/// FNV-1a, a hash that stays the same across Rust releases (std's does not promise that).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How a tensor is initialised, decided from its name and shape.
fn values(name: &str, shape: &Shape, rng: &mut rand_chacha::ChaCha20Rng) -> Vec<f32> {
    let n = shape.elem_count();
    let dims = shape.dims();
    let leaf = name.rsplit('.').next().unwrap_or(name);
    let normal = |rng: &mut rand_chacha::ChaCha20Rng, std: f32| -> Vec<f32> {
        (0..n)
            .map(|_| std * Distribution::<f32>::sample(&StandardNormal, &mut *rng))
            .collect::<Vec<f32>>()
    };
    let uniform = |rng: &mut rand_chacha::ChaCha20Rng, bound: f32| -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-bound..=bound)).collect()
    };
    if leaf == "gamma" || (leaf == "weight" && dims.len() == 1) {
        // Norm scales: around one.
        return normal(rng, 0.05).into_iter().map(|v| 1.0 + v).collect();
    }
    if leaf == "modulation" {
        let dim = dims[dims.len() - 1] as f32;
        return normal(rng, dim.powf(-0.5));
    }
    if name.ends_with("pos_embedding.embedding.weight") {
        return normal(rng, (2.0 * n as f32).powf(-0.5));
    }
    if name.ends_with("token_embedding.weight") {
        return normal(rng, 1.0);
    }
    if leaf == "bias" {
        return uniform(rng, 0.02);
    }
    // Linear and convolution weights `[out, in, …]`: uniform with the fan-in bound.
    let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
    uniform(rng, (fan_in as f32).powf(-0.5))
}

/// A `VarBuilder` backend that invents every tensor it is asked for and remembers it.
#[derive(Debug)]
pub struct RandomWeights {
    seed: u64,
    made: Mutex<BTreeMap<String, Tensor>>,
    /// Draw on the target device with its own generator, keeping no copy: for benchmarks at
    /// the real sizes, where host generation of billions of values would take minutes.
    on_device: bool,
}

impl RandomWeights {
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(Self {
            seed,
            made: Mutex::new(BTreeMap::new()),
            on_device: false,
        })
    }

    /// Weights drawn by the device's own generator (same scales, other values), not kept.
    pub fn on_device(seed: u64) -> Arc<Self> {
        Arc::new(Self {
            seed,
            made: Mutex::new(BTreeMap::new()),
            on_device: true,
        })
    }

    fn make_on_device(
        &self,
        name: &str,
        shape: &Shape,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        let dims = shape.dims();
        let leaf = name.rsplit('.').next().unwrap_or(name);
        let f32_tensor = if leaf == "gamma" || (leaf == "weight" && dims.len() == 1) {
            (Tensor::randn(0f32, 0.05, shape, dev)? + 1.0)?
        } else if leaf == "modulation" {
            Tensor::randn(0f32, (dims[dims.len() - 1] as f32).powf(-0.5), shape, dev)?
        } else if name.ends_with("pos_embedding.embedding.weight") {
            Tensor::randn(
                0f32,
                (2.0 * shape.elem_count() as f32).powf(-0.5),
                shape,
                dev,
            )?
        } else if name.ends_with("token_embedding.weight") {
            Tensor::randn(0f32, 1.0, shape, dev)?
        } else if leaf == "bias" {
            Tensor::rand(-0.02f32, 0.02, shape, dev)?
        } else {
            let fan_in: usize = dims.iter().skip(1).product::<usize>().max(1);
            let bound = (fan_in as f32).powf(-0.5);
            Tensor::rand(-bound, bound, shape, dev)?
        };
        f32_tensor.to_dtype(dtype)
    }

    /// A `VarBuilder` whose lookups create seeded tensors (converted to `dtype`).
    pub fn var_builder(self: &Arc<Self>, dtype: DType, device: &Device) -> VarBuilder<'static> {
        let backend: Box<dyn SimpleBackend> = Box::new(Backend(self.clone()));
        VarBuilder::from_backend(backend, dtype, device.clone())
    }

    /// Every tensor made so far, in f32 on the CPU, by name (e.g. to save as safetensors).
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.made.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn make(&self, name: &str, shape: &Shape) -> candle_core::Result<Tensor> {
        let mut made = self.made.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = made.get(name) {
            return Ok(t.clone());
        }
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(self.seed ^ fnv1a(name.as_bytes()));
        let t = Tensor::from_vec(values(name, shape, &mut rng), shape, &Device::Cpu)?;
        made.insert(name.to_owned(), t.clone());
        Ok(t)
    }
}

struct Backend(Arc<RandomWeights>);

impl SimpleBackend for Backend {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        dev: &Device,
    ) -> candle_core::Result<Tensor> {
        if self.0.on_device {
            return self.0.make_on_device(name, &shape, dtype, dev);
        }
        self.0.make(name, &shape)?.to_device(dev)?.to_dtype(dtype)
    }

    fn get_unchecked(&self, name: &str, _: DType, _: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("random weights need a shape for `{name}`")
    }

    fn contains_tensor(&self, _: &str) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_depend_on_seed_and_name_only() {
        let a = RandomWeights::new(1);
        let b = RandomWeights::new(1);
        let vb_a = a.var_builder(DType::F32, &Device::Cpu);
        let vb_b = b.var_builder(DType::F32, &Device::Cpu);
        // Different request order, same values.
        let x1: Vec<f32> = vb_a.get(8, "x.bias").unwrap().to_vec1().unwrap();
        let _ = vb_b.get((4, 4), "y.weight").unwrap();
        let x2: Vec<f32> = vb_b.get(8, "x.bias").unwrap().to_vec1().unwrap();
        assert_eq!(x1, x2);
        let other: Vec<f32> = RandomWeights::new(2)
            .var_builder(DType::F32, &Device::Cpu)
            .get(8, "x.bias")
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_ne!(x1, other);
        assert_eq!(a.tensors().len(), 1);
    }
}
