//! `nn.InstanceNorm2d(affine=False)`, the normalisation of the scribble network and of
//! RAFT's feature encoder.

use candle_core::{D, DType, Result, Tensor};

/// PyTorch's default `eps`.
const EPS: f64 = 1e-5;

/// Per sample and channel, `(x - mean) / sqrt(var + eps)` with the biased variance, on
/// `(b, c, h, w)` f32. PyTorch gathers the statistics in f64 and applies them in f32 as
/// `x * invstd - mean * invstd`; so does this.
pub(crate) fn instance_norm(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let flat = x.reshape((b, c, h * w))?;
    let wide = flat.to_dtype(DType::F64)?;
    let mean = wide.mean_keepdim(D::Minus1)?;
    let var = wide.broadcast_sub(&mean)?.sqr()?.mean_keepdim(D::Minus1)?;
    let invstd = (var + EPS)?.sqrt()?.recip()?.to_dtype(DType::F32)?;
    let shift = (mean.to_dtype(DType::F32)? * &invstd)?.neg()?;
    flat.broadcast_mul(&invstd)?
        .broadcast_add(&shift)?
        .reshape((b, c, h, w))
}
