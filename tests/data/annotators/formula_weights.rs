//! The deterministic weights the annotator fixtures were made with (README.md beside this
//! file gives the formula; the generator computed the same numbers with NumPy).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

/// The annotator fixture folder.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/annotators")
}

/// The one bias set high so the depth map is not mostly clipped by the final ReLU.
const FINAL_DEPTH_BIAS: &str = "depth_head.scratch.output_conv2.2.bias";

fn fnv1a64(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `n` values in [-1, 1): splitmix64 of `fnv1a64(name) + (i + 1) * golden`, top 24 bits.
fn unit(name: &str, n: usize) -> impl Iterator<Item = f64> {
    let seed = fnv1a64(name);
    (1..=n as u64).map(move |i| {
        let mut z = seed.wrapping_add(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 40) as f64 / (1u64 << 23) as f64 - 1.0
    })
}

/// The formula value of every element of tensor `name` with `shape`.
pub fn formula(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let leaf = name.rsplit('.').next().unwrap_or(name);
    let (offset, scale) = if leaf == "running_var" {
        // BatchNorm variances (RAFT's context encoder) must be positive.
        (1.0, 0.5)
    } else if name == FINAL_DEPTH_BIAS {
        (3.0, 0.02)
    } else if leaf == "gamma" {
        (0.1, 0.05)
    } else if leaf == "bias" {
        (0.0, 0.02)
    } else if leaf == "weight" && shape.len() == 1 {
        (1.0, 0.1)
    } else if leaf == "weight" {
        (0.0, (3.0 / (n / shape[0]) as f64).sqrt())
    } else {
        (0.0, 0.5)
    };
    unit(name, n).map(|v| (offset + scale * v) as f32).collect()
}

/// The reference's state-dict keys and shapes, as the generator listed them (`name AxBxC`).
pub fn keys(file: &str) -> Vec<(String, Vec<usize>)> {
    let text = std::fs::read_to_string(data_dir().join(file)).unwrap();
    text.lines()
        .map(|line| {
            let (name, shape) = line.split_once(' ').unwrap();
            let shape = shape.split('x').map(|d| d.parse().unwrap()).collect();
            (name.to_owned(), shape)
        })
        .collect()
}

/// Every tensor of the keys file, filled by the formula, on the CPU.
pub fn weights(file: &str) -> HashMap<String, Tensor> {
    keys(file)
        .into_iter()
        .map(|(name, shape)| {
            let data = formula(&name, &shape);
            let tensor = Tensor::from_vec(data, shape, &Device::Cpu).unwrap();
            (name, tensor)
        })
        .collect()
}
