//! Linear layers whose bias (and GELU) run in the matrix product's epilogue, through
//! cuBLASLt, on CUDA in bf16. The FFN's hidden activations (`L × 8960` at 1.3B) are the
//! largest tensor of a block: applying bias and GELU while the product is still in
//! registers saves a full read and write of it per block.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::cuda::DeviceId;
use candle_core::cuda::cudarc::cublaslt::{Activation, CudaBlasLT, Matmul, MatmulConfig};
use candle_core::{DType, Result, Tensor};
use half::bf16;

use crate::engine::cuda_kernels::{device, output, prepared, view, wrap};

/// What the epilogue applies after adding the bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Epilogue {
    Bias,
    /// `gelu_tanh(y + bias)`, the FFN's activation.
    BiasGelu,
}

/// One cuBLASLt handle (with its 32 MiB workspace) per device, on candle's stream.
fn handle(device: &candle_core::CudaDevice) -> Result<Arc<CudaBlasLT>> {
    type Handles = Mutex<HashMap<DeviceId, Arc<CudaBlasLT>>>;
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    let mut handles = HANDLES
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| candle_core::Error::Msg("cuBLASLt handle cache poisoned".into()))?;
    if let Some(handle) = handles.get(&device.id()) {
        return Ok(handle.clone());
    }
    let handle = Arc::new(CudaBlasLT::new(device.cuda_stream()).map_err(candle_core::Error::wrap)?);
    handles.insert(device.id(), handle.clone());
    Ok(handle)
}

/// `epilogue(x·Wᵀ + bias)` in bf16 for `x: [.., in]`, `weight: [out, in]`, `bias: [out]`,
/// rounded once (f32 accumulation and epilogue).
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor, epilogue: Epilogue) -> Result<Tensor> {
    let (out_dim, in_dim) = weight.dims2()?;
    let dims = x.dims();
    if dims.last() != Some(&in_dim) || bias.dims() != [out_dim] {
        candle_core::bail!(
            "epilogue linear: x {dims:?}, weight {:?}, bias {:?}",
            weight.dims(),
            bias.dims()
        );
    }
    let rows = x.elem_count() / in_dim;
    let cuda = device(x)?;
    let x = prepared(x, DType::BF16)?;
    let weight = prepared(weight, DType::BF16)?;
    let bias = prepared(bias, DType::BF16)?;
    let mut out = output::<bf16>(&cuda, &[rows, out_dim])?;
    {
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = weight.storage_and_layout();
        let (bs, bl) = bias.storage_and_layout();
        let (xv, wv, bv) = (
            view::<bf16>(&xs, xl)?,
            view::<bf16>(&ws, wl)?,
            view::<bf16>(&bs, bl)?,
        );
        // cuBLASLt is column-major: the row-major `y [rows, out]` is `yᵀ = W·xᵀ` there, with
        // W read transposed from its row-major `[out, in]` and xᵀ read as stored.
        let cfg = MatmulConfig {
            transa: true,
            transb: false,
            transc: false,
            m: out_dim as u64,
            n: rows as u64,
            k: in_dim as u64,
            alpha: 1.0,
            lda: in_dim as i64,
            ldb: in_dim as i64,
            beta: 0.0,
            ldc: out_dim as i64,
            stride_a: None,
            stride_b: None,
            stride_c: None,
            stride_bias: None,
            batch_size: None,
        };
        let act = match epilogue {
            Epilogue::Bias => None,
            Epilogue::BiasGelu => Some(Activation::Gelu),
        };
        // SAFETY: the shapes were checked above; all operands are contiguous bf16 on this
        // device, `out` holds rows·out elements, and everything runs on candle's stream.
        unsafe { handle(&cuda)?.matmul(cfg, &wv, &xv, &mut out, Some(&bv), act.as_ref()) }
            .map_err(candle_core::Error::wrap)?;
    }
    let mut out_dims = dims.to_vec();
    if let Some(last) = out_dims.last_mut() {
        *last = out_dim;
    }
    wrap(out, cuda, &[rows, out_dim]).reshape(out_dims)
}
