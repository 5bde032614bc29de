//! vaced's own CUDA kernels: cubins compiled by build.rs from the Triton sources in
//! `kernels/` (fused attention, fused elementwise/row ops), embedded in the binary, loaded
//! into a device's context on first use.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::cuda::cudarc::driver::sys::CUfunction_attribute_enum;
use candle_core::cuda::cudarc::driver::{
    CudaFunction, CudaView, LaunchArgs, LaunchConfig, PushKernelArg,
};
use candle_core::cuda::cudarc::nvrtc::Ptx;
use candle_core::cuda::{CudaDType, DeviceId};
use candle_core::op::BackpropOp;
use candle_core::{CudaDevice, DType, Layout, Result, Storage, Tensor};

/// One compiled kernel.
#[derive(Debug)]
pub struct KernelImage {
    pub name: &'static str,
    /// The entry point inside the cubin.
    pub function: &'static str,
    pub num_warps: u32,
    /// Dynamic shared memory per program.
    pub shared_bytes: u32,
    pub cubin: &'static [u8],
}

/// A fused attention kernel: `name` is `hd{head}_m{block_m}_n{block_n}_w{warps}_s{stages}`,
/// or `ws_hd{head}_n{block_n}_s{stages}` for the warp-specialised ones.
#[derive(Debug)]
pub struct AttentionKernel {
    pub head_dim: usize,
    /// Queries per program.
    pub block_m: usize,
    /// For kernels that read q, k and v through TMA descriptors
    /// (kernels/flash_attention_ws.py): the boxes the descriptors must be made with.
    pub tma: Option<TmaBoxes>,
    pub image: KernelImage,
}

/// The TMA boxes of a warp-specialised attention kernel: q is read `q_rows`, k and v
/// `kv_rows` rows at a time, `cols` bf16 columns (128 bytes, swizzled) per copy. The 8-bit
/// kernels read their INT8 q and k 128 bytes wide too.
#[derive(Debug)]
pub struct TmaBoxes {
    pub q_rows: u32,
    pub kv_rows: u32,
    pub cols: u32,
    pub values: Values,
}

/// What a warp-specialised attention kernel reads as v.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Values {
    /// The model's bf16 v, through a row view of the tensor.
    Bf16Rows,
    /// The quantizers' FP8 copy (kernels/flash_attention_i8f8.py): centred and scaled per
    /// channel, transposed to `[BH·128, Lk_pad]` with the keys of every 32 permuted; read in
    /// boxes of 128 channels × `kv_rows` keys.
    Fp8Transposed,
}

/// A convolution kernel of the VAE (kernels/causal_conv.py): `name` is
/// `conv_{kt}{kh}{kw}_{class}_{tile}`, with the tile as `p{block_p}_o{block_o}_c…_w…_s…`.
#[derive(Debug)]
pub struct ConvKernel {
    /// `[kt, kh, kw]`.
    pub kernel: [usize; 3],
    /// What the kernel assumes of the shapes: "wide", "thin" or "narrow".
    pub class: &'static str,
    /// The tile's name, `p128_o64_c32_w4_s3`.
    pub tile: &'static str,
    /// Output pixels and output channels per program.
    pub block_p: usize,
    pub block_o: usize,
    pub image: KernelImage,
}

// `ATTENTION`, `FUSED` and `CONV`, written by build.rs (empty where Triton was unavailable).
include!(concat!(env!("OUT_DIR"), "/kernels.rs"));

/// The fused op of that name, if this build has it.
pub fn fused(name: &str) -> Option<&'static KernelImage> {
    FUSED.iter().find(|k| k.name == name)
}

/// The name of row kernel `base` (kernels/fused_ops.py) for rows of `cols` elements:
/// `{base}_{head}_{tail}` where `cols` is two powers of two and the build has that variant
/// (the row loads as two whole parts, no lanes masked), else `{base}_{block}`, the row padded
/// to the power of two `block` (at least 64).
pub fn row_kernel(base: &str, cols: usize) -> String {
    let block = cols.next_power_of_two().max(64);
    let head = block / 2;
    if cols > head && (cols - head).is_power_of_two() {
        let split = format!("{base}_{head}_{}", cols - head);
        if fused(&split).is_some() {
            return split;
        }
    }
    format!("{base}_{block}")
}

/// The fused op of that name, or an error saying the build lacks it.
pub fn fused_required(name: &str) -> Result<&'static KernelImage> {
    fused(name).ok_or_else(|| {
        candle_core::Error::Msg(format!(
            "this build has no CUDA kernel {name} (rebuild with scripts/build-cuda)"
        ))
    })
}

/// Triton's two trailing scratch-pointer parameters, passed as null (kernels/compile.py
/// rejects kernels that would use them).
static NULL_SCRATCH: u64 = 0;

/// Launches `image` as a grid of `grid` programs with the arguments pushed on `args` (the
/// kernel's non-constexpr parameters, in order), adding Triton's scratch pointers.
///
/// # Safety
/// `args` must match the kernel's parameters in number, order and type, and every pointer
/// must cover what the kernel reads and writes for this grid.
pub unsafe fn launch(
    image: &KernelImage,
    grid: (u32, u32, u32),
    mut args: LaunchArgs<'_>,
) -> Result<()> {
    args.arg(&NULL_SCRATCH).arg(&NULL_SCRATCH);
    let config = LaunchConfig {
        grid_dim: grid,
        block_dim: (image.num_warps * 32, 1, 1),
        shared_mem_bytes: image.shared_bytes,
    };
    // SAFETY: the caller vouches for the arguments; the scratch pointers are unused.
    unsafe { args.launch(config) }
        .map(drop)
        .map_err(candle_core::Error::wrap)
}

/// Kernels loaded into a device's context, by device and kernel name.
type FunctionCache = Mutex<HashMap<(DeviceId, &'static str), Arc<CudaFunction>>>;

/// `image` loaded into `device`'s context (once per device).
pub fn function(device: &CudaDevice, image: &'static KernelImage) -> Result<Arc<CudaFunction>> {
    static CACHE: OnceLock<FunctionCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (device.id(), image.name);
    let mut loaded = cache
        .lock()
        .map_err(|_| candle_core::Error::Msg("CUDA kernel cache poisoned".into()))?;
    if let Some(func) = loaded.get(&key) {
        return Ok(func.clone());
    }
    let context = device.cuda_stream().context().clone();
    let module = context
        .load_module(Ptx::from_binary(image.cubin.to_vec()))
        .map_err(|e| {
            candle_core::Error::Msg(format!(
                "loading CUDA kernel {} (built for the CUDA_COMPUTE_CAP of the build, sm_90 by \
                 default; rebuild for this GPU): {e}",
                image.name
            ))
        })?;
    let func = module
        .load_function(image.function)
        .map_err(candle_core::Error::wrap)?;
    // Above 48 KB a kernel must opt in to dynamic shared memory.
    if image.shared_bytes > 48 << 10 {
        func.set_attribute(
            CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
            image.shared_bytes as i32,
        )
        .map_err(candle_core::Error::wrap)?;
    }
    let func = Arc::new(func);
    loaded.insert(key, func.clone());
    Ok(func)
}

/// `t` contiguous in `dtype` (a no-op when it already is).
pub fn prepared(t: &Tensor, dtype: DType) -> Result<Tensor> {
    t.to_dtype(dtype)?.contiguous()
}

/// [`prepared`], starting on a 16-byte boundary: the fused DiT kernels were compiled with
/// that promise so that their loads vectorise (a view that starts elsewhere, rare, is
/// copied).
pub fn prepared_aligned(t: &Tensor, dtype: DType) -> Result<Tensor> {
    let t = prepared(t, dtype)?;
    if (t.layout().start_offset() * dtype.size_in_bytes()) % 16 == 0 {
        Ok(t)
    } else {
        t.copy()
    }
}

pub fn device(t: &Tensor) -> Result<CudaDevice> {
    match t.device() {
        candle_core::Device::Cuda(d) => Ok(d.clone()),
        _ => candle_core::bail!("vaced kernels: tensor not on a CUDA device"),
    }
}

pub fn view<'a, T: CudaDType>(storage: &'a Storage, layout: &Layout) -> Result<CudaView<'a, T>> {
    match storage {
        Storage::Cuda(s) => Ok(T::as_cuda_slice(s)?.slice(layout.start_offset()..)),
        _ => candle_core::bail!("vaced kernels: tensor not on a CUDA device"),
    }
}

/// A fresh contiguous tensor of `dims` in `T` on `device` (uninitialised: the kernel
/// writes every element).
pub fn output<T: CudaDType + candle_core::cuda::cudarc::driver::DeviceRepr>(
    device: &CudaDevice,
    dims: &[usize],
) -> Result<candle_core::cuda::cudarc::driver::CudaSlice<T>> {
    // SAFETY: every element is written by the kernel before the tensor is read.
    unsafe { device.alloc::<T>(dims.iter().product()) }
}

pub fn wrap<T: CudaDType>(
    slice: candle_core::cuda::cudarc::driver::CudaSlice<T>,
    device: CudaDevice,
    dims: &[usize],
) -> Tensor {
    let storage = Storage::Cuda(T::wrap_cuda_slice(slice, device));
    Tensor::from_storage(storage, dims, BackpropOp::none(), false)
}
