//! Normalisations shared by the DiT and the text encoder.
//!
//! LayerNorm is computed in two passes (mean, then the variance of the centred values) as
//! PyTorch does; the one-pass `E[x²] − E[x]²` form loses precision when a residual stream
//! has a large mean.

use candle_core::{D, DType, Result, Tensor};

/// LayerNorm over the last dimension, in f32, without affine parameters; the result has the
/// dtype of `x`.
pub fn layer_norm(x: &Tensor, eps: f64) -> Result<Tensor> {
    let dtype = x.dtype();
    let x = x.to_dtype(DType::F32)?;
    let mean = x.mean_keepdim(D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
    centred
        .broadcast_mul(&(var + eps)?.recip()?.sqrt()?)?
        .to_dtype(dtype)
}

/// LayerNorm with an elementwise weight and bias (`nn.LayerNorm(elementwise_affine=True)`).
#[derive(Debug, Clone)]
pub struct AffineLayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl AffineLayerNorm {
    pub fn new(dim: usize, eps: f64, vb: candle_nn::VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            bias: vb.get(dim, "bias")?,
            eps,
        })
    }

    /// `(weight, bias, eps)`, for the fused GPU kernels.
    pub fn parts(&self) -> (&Tensor, &Tensor, f64) {
        (&self.weight, &self.bias, self.eps)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = layer_norm(x, self.eps)?.to_dtype(DType::F32)?;
        y.broadcast_mul(&self.weight)?
            .broadcast_add(&self.bias)?
            .to_dtype(x.dtype())
    }
}

/// RMSNorm over the last dimension with a weight: `w · x / sqrt(mean(x²) + eps)`, statistics
/// in f32 (`WanRMSNorm`, `T5LayerNorm`).
#[derive(Debug, Clone)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub fn new(dim: usize, eps: f64, vb: candle_nn::VarBuilder) -> Result<Self> {
        Ok(Self {
            weight: vb.get(dim, "weight")?,
            eps,
        })
    }

    /// `(weight, eps)`, for the fused GPU kernels.
    pub fn parts(&self) -> (&Tensor, f64) {
        (&self.weight, self.eps)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dtype = x.dtype();
        let xf = x.to_dtype(DType::F32)?;
        let inv_rms = (xf.sqr()?.mean_keepdim(D::Minus1)? + self.eps)?
            .sqrt()?
            .recip()?;
        let normed = xf.broadcast_mul(&inv_rms)?.to_dtype(dtype)?;
        normed.broadcast_mul(&self.weight.to_dtype(dtype)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn layer_norm_is_exact_for_a_large_mean() {
        // One-pass variance in f32 returns garbage here; two passes keep it.
        let x = Tensor::new(&[[1000.0f32, 1001.0, 1002.0, 1003.0]], &Device::Cpu).unwrap();
        let y: Vec<f32> = layer_norm(&x, 1e-6)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let expected = [-1.3416406f32, -0.4472135, 0.4472135, 1.3416406];
        for (a, b) in y.iter().zip(expected) {
            assert!((a - b).abs() < 1e-5, "{y:?}");
        }
    }
}
