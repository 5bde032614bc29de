//! A linear layer that computes in the dtype of its weight, so one model can keep some
//! layers in f32 and others in bf16 (the reference's autocast does the same per call).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

/// `y = x·Wᵀ + b` with `W: [out, in]`; the input is cast to the weight's dtype.
#[derive(Debug, Clone)]
pub struct Linear {
    inner: candle_nn::Linear,
}

impl Linear {
    /// Loads `weight` `[out, in]` and `bias` `[out]` under `vb`.
    pub fn new(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            inner: candle_nn::linear(in_dim, out_dim, vb)?,
        })
    }

    /// Loads `weight` `[out, in]` only.
    pub fn new_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            inner: candle_nn::linear_no_bias(in_dim, out_dim, vb)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.inner
            .forward(&x.to_dtype(self.inner.weight().dtype())?)
    }

    /// `x·Wᵀ` without the bias, as one 2-D matrix product over all leading dimensions; for
    /// callers that fuse the bias into what follows.
    pub fn product(&self, x: &Tensor) -> Result<Tensor> {
        let weight = self.inner.weight();
        let dims = x.dims();
        let rows = dims[..dims.len() - 1].iter().product::<usize>();
        let mut out_dims = dims.to_vec();
        if let Some(last) = out_dims.last_mut() {
            *last = weight.dim(0)?;
        }
        x.to_dtype(weight.dtype())?
            .reshape((rows, weight.dim(1)?))?
            .matmul(&weight.t()?)?
            .reshape(out_dims)
    }

    /// The dtype the layer computes in.
    pub fn dtype(&self) -> candle_core::DType {
        self.inner.weight().dtype()
    }

    pub fn weight(&self) -> &Tensor {
        self.inner.weight()
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.inner.bias()
    }
}
