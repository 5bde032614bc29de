//! FP8 (e4m3) matrix products for the DiT's linear layers on CUDA, opt-in with
//! `VACED_LINEAR_PRECISION=fp8`: Hopper's 8-bit tensor cores do twice the bf16 work per
//! clock, and the block's products are about 40% of a step once attention is 8-bit.
//!
//! Both operands are quantised per row with one f32 scale each (the activations per token,
//! the weight per output channel; `kernels/fused_ops.py`, `_store_fp8_row`), and cuBLASLt
//! multiplies the two scale vectors back in its epilogue (`OUTER_VEC_32F` scaling), before
//! the bias and GELU; the output is bf16 as the bf16 path's. Per-row scales keep a token
//! with large activations from flattening every other token's, which a per-tensor scale
//! would do. e4m3 keeps 3 mantissa bits, so a product carries ~4% relative error on
//! Gaussian data (tests/fp8_products.rs bounds it), about what 8-bit attention adds.

use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::cuda::DeviceId;
use candle_core::cuda::cudarc::cublaslt::CudaBlasLT;
use candle_core::cuda::cudarc::cublaslt::MatmulShared;
use candle_core::cuda::cudarc::cublaslt::result as lt;
use candle_core::cuda::cudarc::cublaslt::sys;
use candle_core::cuda::cudarc::driver::{CudaSlice, DevicePtr, PushKernelArg};
use candle_core::{CudaDevice, DType, Result, Tensor};
use half::bf16;

use crate::engine::cuda_kernels::{self, device, output, prepared_aligned, view, wrap};
pub use crate::engine::epilogue_gemm::Epilogue;
use crate::engine::fused_ops::cuda::{NormOutput, launch_layer_norm};

/// Environment switch: `VACED_LINEAR_PRECISION=fp8` runs the DiT blocks' linear layers as
/// FP8 products (default `bf16`).
pub const PRECISION_ENV: &str = "VACED_LINEAR_PRECISION";

/// Environment switch: `VACED_GEMM_TUNE=1` times cuBLASLt's first [`TUNE_CANDIDATES`]
/// algorithms for each FP8 product shape on its first use, on the real operands, and keeps
/// the fastest; by default the heuristic's first choice is taken untimed.
pub const TUNE_ENV: &str = "VACED_GEMM_TUNE";

/// Algorithms timed per product shape when tuning.
const TUNE_CANDIDATES: usize = 8;

/// Timed runs of each candidate, after one untimed.
const TUNE_RUNS: usize = 3;

fn tuning() -> bool {
    static TUNE: OnceLock<bool> = OnceLock::new();
    *TUNE.get_or_init(|| std::env::var(TUNE_ENV).is_ok_and(|v| v == "1"))
}

/// Whether [`PRECISION_ENV`] asks for FP8 products; read once.
pub fn requested() -> bool {
    static FP8: OnceLock<bool> = OnceLock::new();
    *FP8.get_or_init(|| std::env::var(PRECISION_ENV).is_ok_and(|v| v == "fp8"))
}

/// Whether a linear layer with this weight `[out, in]` runs as FP8 products: requested, a
/// bf16 weight on CUDA, widths that are multiples of 16, and the quantiser built for them.
pub fn applies_to(weight: &Tensor) -> bool {
    let Ok((out_dim, in_dim)) = weight.dims2() else {
        return false;
    };
    requested()
        && weight.device().is_cuda()
        && weight.dtype() == DType::BF16
        && out_dim % 16 == 0
        && in_dim % 16 == 0
        && cuda_kernels::fused(&cuda_kernels::row_kernel("quantize_rows_fp8", in_dim)).is_some()
}

/// A matrix of `rows × cols` as e4m3 rows with one f32 scale each: `row ≈ values · scale`.
pub struct Fp8Rows {
    values: CudaSlice<u8>,
    scales: CudaSlice<f32>,
    /// The dimensions of the matrix it came from, `[.., cols]`; a product's output keeps
    /// the leading ones.
    dims: Vec<usize>,
    device: CudaDevice,
}

impl std::fmt::Debug for Fp8Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fp8Rows").field("dims", &self.dims).finish()
    }
}

impl Fp8Rows {
    fn cols(&self) -> usize {
        self.dims.last().copied().unwrap_or(0)
    }

    fn rows(&self) -> usize {
        self.dims.iter().product::<usize>() / self.cols().max(1)
    }

    /// A copy of the row scales as an f32 tensor `[rows]`.
    fn scales_tensor(&self) -> Result<Tensor> {
        let copy = self.scales.try_clone().map_err(candle_core::Error::wrap)?;
        Ok(wrap(copy, self.device.clone(), &[self.rows()]))
    }

    /// Uninitialised storage for a quantised `dims` matrix, for a kernel to fill.
    fn alloc(device: &CudaDevice, dims: &[usize]) -> Result<Self> {
        let cols = dims.last().copied().unwrap_or(0);
        let rows = dims.iter().product::<usize>() / cols.max(1);
        Ok(Self {
            values: output::<u8>(device, &[rows, cols])?,
            scales: output::<f32>(device, &[rows])?,
            dims: dims.to_vec(),
            device: device.clone(),
        })
    }
}

fn check_cols(cols: usize, what: &str) -> Result<()> {
    // 16-byte rows for the vectorised stores and cuBLASLt's FP8 alignment.
    if cols == 0 || cols % 16 != 0 {
        candle_core::bail!("FP8 {what}: rows of {cols} elements (need a multiple of 16)");
    }
    Ok(())
}

/// `x: [.., cols]` quantised per row: read as f32 when it is f32 (the VACE stream),
/// else as bf16 (other dtypes are rounded to bf16 first).
pub fn quantize_rows(x: &Tensor) -> Result<Fp8Rows> {
    let cols = x.dims().last().copied().unwrap_or(0);
    check_cols(cols, "rows")?;
    let (dtype, suffix) = match x.dtype() {
        DType::F32 => (DType::F32, "_f32"),
        _ => (DType::BF16, ""),
    };
    let name = cuda_kernels::row_kernel(&format!("quantize_rows_fp8{suffix}"), cols);
    let image = cuda_kernels::fused_required(&name)?;
    let device = device(x)?;
    let x = prepared_aligned(x, dtype)?;
    let quantized = Fp8Rows::alloc(&device, x.dims())?;
    {
        let (xs, xl) = x.storage_and_layout();
        let (f32_view, bf16_view) = match dtype {
            DType::F32 => (Some(view::<f32>(&xs, xl)?), None),
            _ => (None, Some(view::<bf16>(&xs, xl)?)),
        };
        let n_cols = cols as i32;
        let func = cuda_kernels::function(&device, image)?;
        let stream = device.cuda_stream();
        let mut launch = stream.launch_builder(&func);
        match (&f32_view, &bf16_view) {
            (Some(v), _) => launch.arg(v),
            (None, Some(v)) => launch.arg(v),
            (None, None) => candle_core::bail!("FP8 rows: no view of the input"),
        };
        launch
            .arg(&quantized.values)
            .arg(&quantized.scales)
            .arg(&n_cols);
        let grid = (quantized.rows() as u32, 1, 1);
        // SAFETY: arguments match `quantize_rows_fp8` in kernels/fused_ops.py for `x`'s dtype
        // (the variant chosen by it); `x` is contiguous, 16-byte aligned, with the rows the
        // grid covers, and the outputs hold as many rows.
        unsafe { cuda_kernels::launch(image, grid, launch) }?;
    }
    Ok(quantized)
}

/// `LayerNorm(x)·w + b` quantised per row, `x: [B, L, D]` f32 and `w, b` f32 `[B, D]` (per
/// batch: the modulation's `1 + scale` and shift, or the affine norm's weight and bias), in
/// one pass: the input of the linear layers after a norm.
pub fn layer_norm_affine(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> Result<Fp8Rows> {
    check_cols(x.dims().last().copied().unwrap_or(0), "LayerNorm")?;
    let quantized = Fp8Rows::alloc(&device(x)?, x.dims())?;
    let out = NormOutput::Fp8 {
        values: &quantized.values,
        scales: &quantized.scales,
    };
    launch_layer_norm(x, w, b, eps, out)?;
    Ok(quantized)
}

/// `epilogue(x·Wᵀ)` in bf16 for `x: [.., in]` and the weight `[out, in]`, both quantised
/// per row: `[.., out]`. `bias: [out]` bf16 is needed by the epilogues that add it.
pub fn linear(
    x: &Fp8Rows,
    weight: &Fp8Rows,
    bias: Option<&Tensor>,
    epilogue: Option<Epilogue>,
) -> Result<Tensor> {
    let out_dim = check_shapes(x, weight)?;
    let bias = match (epilogue, bias) {
        (None, _) => None,
        (Some(_), Some(b)) if b.dims() == [out_dim] => Some(prepared_aligned(b, DType::BF16)?),
        (Some(_), b) => candle_core::bail!(
            "FP8 linear: epilogue bias {:?} for {out_dim} outputs",
            b.map(Tensor::dims)
        ),
    };
    let out = output::<bf16>(&x.device, &[x.rows(), out_dim])?;
    let product = Product {
        m: out_dim as u64,
        n: x.rows() as u64,
        k: x.cols() as u64,
        epilogue,
        output: Output::Bf16,
    };
    let ran = product.launch(x, weight, None, bias.as_ref(), None, &out)?;
    if !ran {
        // Some shapes (a few hundred rows, deep products) have no algorithm with an
        // epilogue: the product alone, then the epilogue as candle ops.
        let (Some(epilogue), Some(bias)) = (epilogue, bias) else {
            return Err(no_algorithm(&product));
        };
        let y = linear(x, weight, None, None)?
            .to_dtype(DType::F32)?
            .broadcast_add(&bias.to_dtype(DType::F32)?)?;
        let y = match epilogue {
            Epilogue::Bias => y,
            Epilogue::BiasGelu => y.gelu()?,
        };
        return y.to_dtype(DType::BF16);
    }
    wrap(out, x.device.clone(), &[x.rows(), out_dim]).reshape(output_dims(x, out_dim))
}

/// `residual + gate ⊙ (x·Wᵀ + bias)` in f32 for one batch (`x: [1, L, in]`, `residual:
/// [1, L, out]` f32, `gate: [1, 1, out]` f32, `bias: [out]`): a residual update in the
/// product's epilogue (C = the residual, beta 1; the gate folded into the weight's scales and
/// the bias), saving the pass that adds it. Unlike the bf16 path the product plus bias is
/// not rounded to bf16 before the gate. `None` where cuBLASLt has no such product here.
pub fn linear_residual(
    x: &Fp8Rows,
    weight: &Fp8Rows,
    bias: &Tensor,
    gate: Option<&Tensor>,
    residual: &Tensor,
) -> Result<Option<Tensor>> {
    let out_dim = check_shapes(x, weight)?;
    let rows = x.rows();
    if residual.elem_count() != rows * out_dim || residual.dims().last() != Some(&out_dim) {
        candle_core::bail!(
            "FP8 residual: x {:?}, residual {:?}",
            x.dims,
            residual.dims()
        );
    }
    let (scales, bias) = match gate {
        Some(gate) => {
            let gate = gate.to_dtype(DType::F32)?.flatten_all()?;
            if gate.dims() != [out_dim] {
                candle_core::bail!("FP8 residual: gate {:?} for {out_dim} outputs", gate.dims());
            }
            let scales = weight.scales_tensor()?.mul(&gate)?;
            (Some(scales), bias.to_dtype(DType::F32)?.mul(&gate)?)
        }
        None => (None, bias.clone()),
    };
    let bias = prepared_aligned(&bias, DType::BF16)?;
    let residual = prepared_aligned(residual, DType::F32)?;
    let out = output::<f32>(&x.device, &[rows, out_dim])?;
    let product = Product {
        m: out_dim as u64,
        n: rows as u64,
        k: x.cols() as u64,
        epilogue: Some(Epilogue::Bias),
        output: Output::F32Accumulate,
    };
    let ran = product.launch(
        x,
        weight,
        scales.as_ref(),
        Some(&bias),
        Some(&residual),
        &out,
    )?;
    ran.then(|| wrap(out, x.device.clone(), &[rows, out_dim]).reshape(residual.dims()))
        .transpose()
}

/// The product's output width, after checking that `x`'s rows are as wide as the weight's.
fn check_shapes(x: &Fp8Rows, weight: &Fp8Rows) -> Result<usize> {
    let (in_dim, out_dim) = (weight.cols(), weight.rows());
    if x.cols() != in_dim {
        candle_core::bail!("FP8 linear: x {:?}, weight [{out_dim}, {in_dim}]", x.dims);
    }
    Ok(out_dim)
}

fn output_dims(x: &Fp8Rows, out_dim: usize) -> Vec<usize> {
    let mut dims = x.dims.clone();
    if let Some(last) = dims.last_mut() {
        *last = out_dim;
    }
    dims
}

fn no_algorithm(product: &Product) -> candle_core::Error {
    candle_core::Error::Msg(format!(
        "cuBLASLt has no FP8 product with per-row scales for {product:?} on this GPU: it needs \
         Hopper or newer and cuBLAS 12.9 or newer; unset {PRECISION_ENV} to compute in bf16"
    ))
}

/// What a product writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Output {
    /// bf16, overwriting.
    Bf16,
    /// f32, the product added to an f32 matrix (C) of the same shape.
    F32Accumulate,
}

/// One product in cuBLASLt's column-major terms: `D[m, n] = A[m, k]·B[k, n]` with A the
/// row-major weight `[out, in]` read transposed (`m = out`) and B the row-major activations
/// `[rows, in]` as stored (`n = rows`), the only FP8 layout Hopper supports ("TN").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Product {
    m: u64,
    n: u64,
    k: u64,
    epilogue: Option<Epilogue>,
    output: Output,
}

/// Device pointers of one product's operands.
struct Operands {
    a: u64,
    a_scales: u64,
    b: u64,
    b_scales: u64,
    bias: Option<u64>,
    /// The matrix added to the product (f32), for [`Output::F32Accumulate`].
    c: Option<u64>,
    d: u64,
}

impl Product {
    /// Queues the product of `x` and `weight` (with `a_scales` in place of the weight's own
    /// scales when given) into `out`; false where cuBLASLt has no algorithm for it.
    fn launch<T: candle_core::cuda::cudarc::driver::DeviceRepr>(
        &self,
        x: &Fp8Rows,
        weight: &Fp8Rows,
        a_scales: Option<&Tensor>,
        bias: Option<&Tensor>,
        c: Option<&Tensor>,
        out: &CudaSlice<T>,
    ) -> Result<bool> {
        let device = &x.device;
        let stream = device.cuda_stream();
        let a_scales = a_scales
            .map(|t| prepared_aligned(t, DType::F32))
            .transpose()?;
        let a_scale_storage = a_scales.as_ref().map(Tensor::storage_and_layout);
        let a_scale_view = match &a_scale_storage {
            Some((s, l)) => Some(view::<f32>(s, l)?),
            None => None,
        };
        let bias_storage = bias.map(Tensor::storage_and_layout);
        let bias_view = match &bias_storage {
            Some((s, l)) => Some(view::<bf16>(s, l)?),
            None => None,
        };
        let c_storage = c.map(Tensor::storage_and_layout);
        let c_view = match &c_storage {
            Some((s, l)) => Some(view::<f32>(s, l)?),
            None => None,
        };
        let (w_ptr, _w) = weight.values.device_ptr(&stream);
        let (ws_ptr, _ws) = match &a_scale_view {
            Some(v) => v.device_ptr(&stream),
            None => weight.scales.device_ptr(&stream),
        };
        let (x_ptr, _x) = x.values.device_ptr(&stream);
        let (xs_ptr, _xs) = x.scales.device_ptr(&stream);
        let (bias_ptr, _b) = bias_view.as_ref().map(|b| b.device_ptr(&stream)).unzip();
        let (c_ptr, _c) = c_view.as_ref().map(|c| c.device_ptr(&stream)).unzip();
        let (out_ptr, _o) = out.device_ptr(&stream);
        // SAFETY: the callers checked the shapes; the pointers cover the operands `self`
        // describes (contiguous allocations; scale vectors of m and n floats; C and D of
        // m·n), and everything is queued on candle's stream, which `_w` … `_o` keep ordered.
        unsafe {
            self.run(
                device,
                Operands {
                    a: w_ptr,
                    a_scales: ws_ptr,
                    b: x_ptr,
                    b_scales: xs_ptr,
                    bias: bias_ptr,
                    c: c_ptr,
                    d: out_ptr,
                },
            )
        }
    }
}

fn lt_error(what: &str, e: lt::CublasError) -> candle_core::Error {
    candle_core::Error::Msg(format!("cuBLASLt FP8 product ({what}): {e:?}"))
}

/// A matmul descriptor, destroyed when dropped.
struct Desc(sys::cublasLtMatmulDesc_t);

impl Drop for Desc {
    fn drop(&mut self) {
        // SAFETY: created by `create_matmul_desc` and destroyed once.
        let _ = unsafe { lt::destroy_matmul_desc(self.0) };
    }
}

impl Desc {
    /// Sets `attribute` to the plain value `value`.
    fn set<T>(&self, attribute: sys::cublasLtMatmulDescAttributes_t, value: &T) -> Result<()> {
        // SAFETY: `value` lives for the call and has the size passed; cuBLASLt copies it.
        unsafe {
            lt::set_matmul_desc_attribute(
                self.0,
                attribute,
                value as *const T as *const c_void,
                std::mem::size_of::<T>(),
            )
        }
        .map_err(|e| lt_error("descriptor", e))
    }
}

/// A matrix layout, destroyed when dropped.
struct Layout(sys::cublasLtMatrixLayout_t);

impl Drop for Layout {
    fn drop(&mut self) {
        // SAFETY: created by `create_matrix_layout` and destroyed once.
        let _ = unsafe { lt::destroy_matrix_layout(self.0) };
    }
}

impl Layout {
    fn new(dtype: sys::cudaDataType, rows: u64, cols: u64) -> Result<Self> {
        lt::create_matrix_layout(dtype, rows, cols, rows as i64)
            .map(Self)
            .map_err(|e| lt_error("layout", e))
    }
}

/// A cuBLASLt handle and its workspace for one device, with the algorithm chosen for each
/// product shape (the heuristic query costs more than a small product).
struct Context {
    blas: CudaBlasLT,
    workspace: CudaSlice<u8>,
    /// None where the heuristic found none.
    algorithms: HashMap<Product, Option<sys::cublasLtMatmulAlgo_t>>,
}

/// cuBLASLt's recommended workspace on Hopper.
const WORKSPACE_BYTES: usize = 32 << 20;

type Contexts = Mutex<HashMap<DeviceId, Context>>;

impl Product {
    fn descriptor(&self, operands: &Operands) -> Result<Desc> {
        use sys::cublasLtMatmulDescAttributes_t as A;
        let desc = lt::create_matmul_desc(
            sys::cublasComputeType_t::CUBLAS_COMPUTE_32F,
            sys::cudaDataType_t::CUDA_R_32F,
        )
        .map(Desc)
        .map_err(|e| lt_error("descriptor", e))?;
        // cublasOperation_t (cuBLAS's, not in cuBLASLt's bindings): 1 transposes, 0 does not.
        desc.set(A::CUBLASLT_MATMUL_DESC_TRANSA, &1i32)?;
        desc.set(A::CUBLASLT_MATMUL_DESC_TRANSB, &0i32)?;
        let outer =
            sys::cublasLtMatmulMatrixScale_t::CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F as i32;
        desc.set(A::CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &outer)?;
        desc.set(A::CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &outer)?;
        desc.set(A::CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &operands.a_scales)?;
        desc.set(A::CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &operands.b_scales)?;
        // Hopper accumulates FP8 products in fewer than f32's bits unless cuBLASLt promotes
        // them; at these depths (1536-13824) e4m3's own rounding dominates either way.
        desc.set(A::CUBLASLT_MATMUL_DESC_FAST_ACCUM, &1i8)?;
        use sys::cublasLtEpilogue_t as E;
        let epilogue = match self.epilogue {
            None => E::CUBLASLT_EPILOGUE_DEFAULT,
            Some(Epilogue::Bias) => E::CUBLASLT_EPILOGUE_BIAS,
            Some(Epilogue::BiasGelu) => E::CUBLASLT_EPILOGUE_GELU_BIAS,
        };
        desc.set(A::CUBLASLT_MATMUL_DESC_EPILOGUE, &(epilogue as u32))?;
        if let Some(bias) = operands.bias {
            desc.set(A::CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias)?;
            desc.set(
                A::CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE,
                &(sys::cudaDataType_t::CUDA_R_16BF as i32),
            )?;
        }
        Ok(desc)
    }

    /// Queues the product on `device`'s stream; false where cuBLASLt has no algorithm for
    /// it (remembered, so that a fallback costs one query).
    ///
    /// # Safety
    /// `operands` must point to live device memory of the sizes `self` implies, which stays
    /// untouched until the product has run on the stream.
    unsafe fn run(&self, device: &CudaDevice, operands: Operands) -> Result<bool> {
        static CONTEXTS: OnceLock<Contexts> = OnceLock::new();
        let mut contexts = CONTEXTS
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| candle_core::Error::Msg("cuBLASLt FP8 context cache poisoned".into()))?;
        let stream = device.cuda_stream();
        let context = match contexts.entry(device.id()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(Context {
                blas: CudaBlasLT::new(stream.clone()).map_err(|e| lt_error("handle", e))?,
                // SAFETY: cuBLASLt's scratch space, never read before it writes it.
                workspace: unsafe { stream.alloc::<u8>(WORKSPACE_BYTES) }
                    .map_err(candle_core::Error::wrap)?,
                algorithms: HashMap::new(),
            }),
        };
        let desc = self.descriptor(&operands)?;
        let fp8 = sys::cudaDataType_t::CUDA_R_8F_E4M3;
        let a = Layout::new(fp8, self.k, self.m)?;
        let b = Layout::new(fp8, self.k, self.n)?;
        let d = Layout::new(
            match self.output {
                Output::Bf16 => sys::cudaDataType_t::CUDA_R_16BF,
                Output::F32Accumulate => sys::cudaDataType_t::CUDA_R_32F,
            },
            self.m,
            self.n,
        )?;
        let handle = *context.blas.handle();
        let (workspace, _record) = context.workspace.device_ptr(&stream);
        let (alpha, beta) = match (self.output, operands.c) {
            (Output::Bf16, _) => (1f32, 0f32),
            (Output::F32Accumulate, Some(_)) => (1f32, 1f32),
            (Output::F32Accumulate, None) => candle_core::bail!("FP8 residual product without C"),
        };
        // Without C, D doubles as C, unread with beta 0.
        let c = operands.c.unwrap_or(operands.d);
        // D is a function of the operands alone (C is never D when read), so a product can
        // run again, as tuning does, and leave the same result.
        let matmul = |algorithm: &sys::cublasLtMatmulAlgo_t| {
            // SAFETY: descriptors and layouts are live; the caller vouches for the operands.
            unsafe {
                lt::matmul(
                    handle,
                    desc.0,
                    &alpha as *const f32 as *const c_void,
                    &beta as *const f32 as *const c_void,
                    operands.a as *const c_void,
                    a.0,
                    operands.b as *const c_void,
                    b.0,
                    c as *const c_void,
                    d.0,
                    operands.d as *mut c_void,
                    d.0,
                    algorithm,
                    workspace as *mut c_void,
                    WORKSPACE_BYTES,
                    stream.cu_stream() as sys::cudaStream_t,
                )
            }
            .map_err(|e| lt_error("matmul", e))
        };
        let algorithm = match context.algorithms.get(self) {
            Some(algorithm) => *algorithm,
            None => {
                let count = if tuning() { TUNE_CANDIDATES } else { 1 };
                let candidates = candidates(handle, &desc, [&a, &b, &d], count)?;
                let algorithm = if candidates.len() > 1 {
                    Some(fastest(self, &stream, &candidates, matmul)?)
                } else {
                    candidates.first().copied()
                };
                context.algorithms.insert(*self, algorithm);
                algorithm
            }
        };
        let Some(algorithm) = algorithm else {
            return Ok(false);
        };
        matmul(&algorithm)?;
        Ok(true)
    }
}

/// cuBLASLt's first `count` algorithms for the product `desc` with layouts A, B and D (C
/// like D) within [`WORKSPACE_BYTES`], best first by its heuristic; none where it has none.
fn candidates(
    handle: sys::cublasLtHandle_t,
    desc: &Desc,
    [a, b, d]: [&Layout; 3],
    count: usize,
) -> Result<Vec<sys::cublasLtMatmulAlgo_t>> {
    let preference = lt::create_matmul_pref().map_err(|e| lt_error("preference", e))?;
    // SAFETY: a zeroed heuristic result is a valid value of this plain C struct.
    let mut results: Vec<sys::cublasLtMatmulHeuristicResult_t> =
        vec![unsafe { std::mem::zeroed() }; count];
    let mut found = 0;
    // SAFETY: `preference` is live and the value outlives the call; `results` holds `count`
    // entries for cuBLASLt to fill, `found` says how many it did.
    let status = unsafe {
        lt::set_matmul_pref_attribute(
            preference,
            sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
            &WORKSPACE_BYTES as *const usize as *const c_void,
            std::mem::size_of::<usize>(),
        )
        .and_then(|()| {
            sys::cublasLtMatmulAlgoGetHeuristic(
                handle,
                desc.0,
                a.0,
                b.0,
                d.0,
                d.0,
                preference,
                count as i32,
                results.as_mut_ptr(),
                &mut found,
            )
            .result()
        })
    };
    // SAFETY: created above, destroyed once.
    let _ = unsafe { lt::destroy_matmul_pref(preference) };
    // "Not supported" means no algorithm for this product: the caller falls back.
    if status.is_err() {
        return Ok(Vec::new());
    }
    Ok(results
        .iter()
        .take(found.max(0) as usize)
        .filter(|r| r.state == sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS)
        .map(|r| r.algo)
        .collect())
}

/// The fastest of `candidates` for `product`, timed on the stream with `run` (one untimed
/// run each, then [`TUNE_RUNS`] between two events); one that fails to run is passed over.
fn fastest(
    product: &Product,
    stream: &std::sync::Arc<candle_core::cuda::cudarc::driver::CudaStream>,
    candidates: &[sys::cublasLtMatmulAlgo_t],
    run: impl Fn(&sys::cublasLtMatmulAlgo_t) -> Result<()>,
) -> Result<sys::cublasLtMatmulAlgo_t> {
    use candle_core::cuda::cudarc::driver::sys::CUevent_flags;
    let timing = Some(CUevent_flags::CU_EVENT_DEFAULT);
    let mut best: Option<(f32, usize)> = None;
    let mut times = Vec::new();
    for (i, algorithm) in candidates.iter().enumerate() {
        if run(algorithm).is_err() {
            times.push(f32::NAN);
            continue;
        }
        let start = stream
            .record_event(timing)
            .map_err(candle_core::Error::wrap)?;
        let runs = (0..TUNE_RUNS).try_for_each(|_| run(algorithm));
        let end = stream
            .record_event(timing)
            .map_err(candle_core::Error::wrap)?;
        let ms = start.elapsed_ms(&end).map_err(candle_core::Error::wrap)? / TUNE_RUNS as f32;
        if runs.is_err() {
            times.push(f32::NAN);
            continue;
        }
        times.push(ms);
        if best.is_none_or(|(t, _)| ms < t) {
            best = Some((ms, i));
        }
    }
    tracing::info!(
        "FP8 product {}x{}x{} ({:?}, {:?}): candidates' ms {times:?}, kept #{}",
        product.m,
        product.n,
        product.k,
        product.epilogue,
        product.output,
        best.map_or(0, |(_, i)| i)
    );
    Ok(candidates[best.map_or(0, |(_, i)| i)])
}

/// A linear layer's weight `[out, in]` quantised per output channel, made once per layer.
pub fn quantize_weight(weight: &Tensor) -> Result<Arc<Fp8Rows>> {
    quantize_rows(weight).map(Arc::new)
}
