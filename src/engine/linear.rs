//! A linear layer that computes in the dtype of its weight, so one model can keep some
//! layers in f32 and others in bf16 (the reference's autocast does the same per call); on
//! CUDA with `VACED_LINEAR_PRECISION=fp8`, the DiT blocks' layers keep only an FP8 copy of
//! their weight (`fp8_gemm.rs`), half the memory of bf16.

#[cfg(feature = "cuda")]
use std::sync::Arc;

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::VarBuilder;

#[cfg(feature = "cuda")]
use crate::engine::fp8_gemm::{self, Fp8Rows};

/// Whether `VACED_LINEAR_PRECISION=fp8` asks for FP8 products (they apply on CUDA in bf16).
pub fn fp8_requested() -> bool {
    #[cfg(feature = "cuda")]
    return fp8_gemm::requested();
    #[cfg(not(feature = "cuda"))]
    false
}

/// `y = x·Wᵀ + b` with `W: [out, in]`; the input is cast to the weight's dtype.
#[derive(Debug, Clone)]
pub struct Linear {
    weights: Weights,
}

#[derive(Debug, Clone)]
enum Weights {
    Dense {
        inner: candle_nn::Linear,
        /// The weight quantised for FP8 products, made on first use (benchmarks, tests).
        #[cfg(feature = "cuda")]
        fp8: std::sync::OnceLock<Arc<Fp8Rows>>,
    },
    /// Only the FP8 copy: every product quantises its input per row.
    #[cfg(feature = "cuda")]
    Fp8 {
        weight: Arc<Fp8Rows>,
        bias: Option<Tensor>,
    },
}

impl Linear {
    /// Loads `weight` `[out, in]` and `bias` `[out]` under `vb`.
    pub fn new(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self::dense(candle_nn::linear(in_dim, out_dim, vb)?))
    }

    /// Loads `weight` `[out, in]` only.
    pub fn new_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Self::dense(candle_nn::linear_no_bias(in_dim, out_dim, vb)?))
    }

    /// A DiT block's layer, [`Self::new`] unless FP8 products are requested and apply (a
    /// bf16 weight on CUDA, widths a multiple of 16): then the weight is quantised per output
    /// channel as it loads and the bf16 copy is let go.
    pub fn for_products(in_dim: usize, out_dim: usize, vb: VarBuilder) -> Result<Self> {
        let dense = candle_nn::linear(in_dim, out_dim, vb)?;
        #[cfg(feature = "cuda")]
        if fp8_gemm::applies_to(dense.weight()) {
            return Ok(Self {
                weights: Weights::Fp8 {
                    weight: fp8_gemm::quantize_weight(dense.weight())?,
                    bias: dense.bias().cloned(),
                },
            });
        }
        Ok(Self::dense(dense))
    }

    fn dense(inner: candle_nn::Linear) -> Self {
        Self {
            weights: Weights::Dense {
                inner,
                #[cfg(feature = "cuda")]
                fp8: Default::default(),
            },
        }
    }

    /// The weight quantised per output channel for FP8 products (for a dense layer,
    /// quantised on first use and kept beside the bf16 weight).
    #[cfg(feature = "cuda")]
    pub fn fp8_weight(&self) -> Result<Arc<Fp8Rows>> {
        match &self.weights {
            Weights::Fp8 { weight, .. } => Ok(weight.clone()),
            Weights::Dense { inner, fp8 } => {
                if let Some(weight) = fp8.get() {
                    return Ok(weight.clone());
                }
                let weight = fp8_gemm::quantize_weight(inner.weight())?;
                // Two threads racing here both quantise; either copy is the same.
                Ok(fp8.get_or_init(|| weight).clone())
            }
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.weights {
            Weights::Dense { inner, .. } => inner.forward(&x.to_dtype(inner.weight().dtype())?),
            #[cfg(feature = "cuda")]
            Weights::Fp8 { weight, bias } => {
                let epilogue = bias.as_ref().map(|_| fp8_gemm::Epilogue::Bias);
                fp8_gemm::linear(
                    &fp8_gemm::quantize_rows(x)?,
                    weight,
                    bias.as_ref(),
                    epilogue,
                )
            }
        }
    }

    /// `x·Wᵀ` without the bias, as one 2-D matrix product over all leading dimensions; for
    /// callers that fuse the bias into what follows.
    pub fn product(&self, x: &Tensor) -> Result<Tensor> {
        let weight = match &self.weights {
            Weights::Dense { inner, .. } => inner.weight(),
            #[cfg(feature = "cuda")]
            Weights::Fp8 { weight, .. } => {
                return fp8_gemm::linear(&fp8_gemm::quantize_rows(x)?, weight, None, None);
            }
        };
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

    /// The dtype the layer computes in (FP8 layers take and give bf16).
    pub fn dtype(&self) -> DType {
        match &self.weights {
            Weights::Dense { inner, .. } => inner.weight().dtype(),
            #[cfg(feature = "cuda")]
            Weights::Fp8 { .. } => DType::BF16,
        }
    }

    /// The weight in its load dtype; `None` for a layer that keeps only its FP8 copy.
    pub fn dense_weight(&self) -> Option<&Tensor> {
        match &self.weights {
            Weights::Dense { inner, .. } => Some(inner.weight()),
            #[cfg(feature = "cuda")]
            Weights::Fp8 { .. } => None,
        }
    }

    pub fn bias(&self) -> Option<&Tensor> {
        match &self.weights {
            Weights::Dense { inner, .. } => inner.bias(),
            #[cfg(feature = "cuda")]
            Weights::Fp8 { bias, .. } => bias.as_ref(),
        }
    }
}
