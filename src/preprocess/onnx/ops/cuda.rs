//! The runner's own CUDA kernels, compiled with NVRTC the first time a model is loaded on
//! a GPU: a depthwise convolution (candle would launch one convolution per channel, or
//! the tap-by-tap sum would launch dozens of kernels per layer) and a per-channel bias
//! plus optional SiLU after a convolution (one pass instead of two). Where NVRTC fails the
//! loader keeps candle's ops, so a model still runs, only slower.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use candle_core::cuda::DeviceId;
use candle_core::cuda::cudarc::driver::{CudaFunction, LaunchConfig, PushKernelArg};
use candle_core::cuda::cudarc::nvrtc;
use candle_core::{CudaDevice, DType, Device, Result, Tensor};

use crate::engine::cuda_kernels::{output, prepared, view, wrap};

const SOURCE: &str = r#"
extern "C" __global__ void onnx_depthwise(
    const float* x, const float* w, const float* b, float* y,
    int n, int c, int h, int wd, int c_out, int ho, int wo, int kh, int kw,
    int sh, int sw, int dh, int dw, int ph, int pw, int has_bias, int silu)
{
    long long total = (long long)n * c_out * ho * wo;
    int m = c_out / c;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        int ox = (int)(i % wo);
        long long t = i / wo;
        int oy = (int)(t % ho);
        t /= ho;
        int o = (int)(t % c_out);
        long long ni = t / c_out;
        const float* src = x + (ni * c + o / m) * (long long)h * wd;
        const float* tap = w + (long long)o * kh * kw;
        float acc = 0.f;
        for (int ky = 0; ky < kh; ++ky) {
            int iy = oy * sh + ky * dh - ph;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < kw; ++kx) {
                int ix = ox * sw + kx * dw - pw;
                if (ix < 0 || ix >= wd) continue;
                acc += tap[ky * kw + kx] * src[(long long)iy * wd + ix];
            }
        }
        if (has_bias) acc += b[o];
        if (silu) acc = acc / (1.f + expf(-acc));
        y[i] = acc;
    }
}

extern "C" __global__ void onnx_bias_act(
    const float* x, const float* b, float* y, long long total, long long inner, int c,
    int has_bias, int silu)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)blockDim.x * gridDim.x) {
        float v = x[i];
        if (has_bias) v += b[(i / inner) % c];
        if (silu) v = v / (1.f + expf(-v));
        y[i] = v;
    }
}
"#;

/// The kernels, loaded into one device's context.
pub(crate) struct Kernels {
    device: CudaDevice,
    depthwise: CudaFunction,
    bias_act: CudaFunction,
}

type Cache = Mutex<HashMap<DeviceId, std::result::Result<Arc<Kernels>, String>>>;

/// The kernels on `device` (compiled once per process and device), or why not.
pub(crate) fn kernels(device: &Device) -> std::result::Result<Arc<Kernels>, String> {
    let Device::Cuda(dev) = device else {
        return Err("not a CUDA device".into());
    };
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .map_err(|_| "ONNX kernel cache poisoned".to_string())?;
    cache
        .entry(dev.id())
        .or_insert_with(|| {
            let built = build(dev);
            if let Err(e) = &built {
                tracing::warn!("ONNX runner: own CUDA kernels unavailable, using candle ops: {e}");
            }
            built
        })
        .clone()
}

fn build(dev: &CudaDevice) -> std::result::Result<Arc<Kernels>, String> {
    let ptx = nvrtc::compile_ptx(SOURCE).map_err(|e| format!("NVRTC: {e}"))?;
    let module = dev
        .cuda_stream()
        .context()
        .load_module(ptx)
        .map_err(|e| format!("loading the module: {e}"))?;
    let f = |name: &str| {
        module
            .load_function(name)
            .map_err(|e| format!("{name}: {e}"))
    };
    Ok(Arc::new(Kernels {
        device: dev.clone(),
        depthwise: f("onnx_depthwise")?,
        bias_act: f("onnx_bias_act")?,
    }))
}

fn config(total: usize) -> LaunchConfig {
    const THREADS: usize = 256;
    // Enough blocks to fill the GPU; the kernels loop over the rest.
    let blocks = total.div_ceil(THREADS).clamp(1, 65_535 * 8);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS as u32, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Geometry of a depthwise convolution: kernel, strides, dilations, leading pads, and the
/// output size.
pub(crate) struct DepthwiseShape {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub dilation: (usize, usize),
    pub pad: (usize, usize),
    pub out: (usize, usize),
}

impl Kernels {
    /// `silu?(depthwise(x, w) + bias)` for `x` `(n, c, h, w)` and `w` `(c_out, 1, kh, kw)`,
    /// f32.
    pub(crate) fn depthwise(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        silu: bool,
        s: &DepthwiseShape,
    ) -> Result<Tensor> {
        let (n, c, h, wd) = x.dims4()?;
        let c_out = w.dim(0)?;
        let x = prepared(x, DType::F32)?;
        let w = prepared(w, DType::F32)?;
        let dims = [n, c_out, s.out.0, s.out.1];
        let out = output::<f32>(&self.device, &dims)?;
        {
            let (xs, xl) = x.storage_and_layout();
            let (ws, wl) = w.storage_and_layout();
            let b = bias.map(|b| prepared(b, DType::F32)).transpose()?;
            let bsl = b.as_ref().map(|b| b.storage_and_layout());
            let (xv, wv) = (view::<f32>(&xs, xl)?, view::<f32>(&ws, wl)?);
            let bv = match &bsl {
                Some((bs, bl)) => Some(view::<f32>(bs, bl)?),
                None => None,
            };
            let i = |v: usize| v as i32;
            let args = [
                i(n),
                i(c),
                i(h),
                i(wd),
                i(c_out),
                i(s.out.0),
                i(s.out.1),
                i(s.kernel.0),
                i(s.kernel.1),
                i(s.stride.0),
                i(s.stride.1),
                i(s.dilation.0),
                i(s.dilation.1),
                i(s.pad.0),
                i(s.pad.1),
                i32::from(bv.is_some()),
                i32::from(silu),
            ];
            let stream = self.device.cuda_stream();
            let mut launch = stream.launch_builder(&self.depthwise);
            launch.arg(&xv).arg(&wv);
            match &bv {
                Some(bv) => launch.arg(bv),
                // Never read without a bias; any valid pointer will do.
                None => launch.arg(&wv),
            };
            launch.arg(&out);
            for a in &args {
                launch.arg(a);
            }
            // SAFETY: the arguments match `onnx_depthwise`; `x`, `w` and the bias are
            // contiguous f32 of the sizes passed, `out` holds n·c_out·ho·wo values.
            unsafe { launch.launch(config(dims.iter().product())) }
                .map_err(candle_core::Error::wrap)?;
        }
        Ok(wrap(out, self.device.clone(), &dims))
    }

    /// `silu?(y + bias[channel])` for `y` `(n, c, …)`, f32, in one pass.
    pub(crate) fn bias_act(&self, y: &Tensor, bias: Option<&Tensor>, silu: bool) -> Result<Tensor> {
        let dims = y.dims().to_vec();
        let c = dims.get(1).copied().unwrap_or(1);
        let inner: usize = dims.iter().skip(2).product();
        let total: usize = dims.iter().product();
        let y = prepared(y, DType::F32)?;
        let out = output::<f32>(&self.device, &dims)?;
        {
            let (ys, yl) = y.storage_and_layout();
            let b = bias.map(|b| prepared(b, DType::F32)).transpose()?;
            let bsl = b.as_ref().map(|b| b.storage_and_layout());
            let yv = view::<f32>(&ys, yl)?;
            let bv = match &bsl {
                Some((bs, bl)) => Some(view::<f32>(bs, bl)?),
                None => None,
            };
            let (total_i, inner_i) = (total as i64, inner as i64);
            let (c_i, has_bias, silu_i) = (c as i32, i32::from(bv.is_some()), i32::from(silu));
            let stream = self.device.cuda_stream();
            let mut launch = stream.launch_builder(&self.bias_act);
            launch.arg(&yv);
            match &bv {
                Some(bv) => launch.arg(bv),
                None => launch.arg(&yv),
            };
            launch
                .arg(&out)
                .arg(&total_i)
                .arg(&inner_i)
                .arg(&c_i)
                .arg(&has_bias)
                .arg(&silu_i);
            // SAFETY: the arguments match `onnx_bias_act`; `y` is contiguous f32 with
            // `total` values, the bias holds `c`.
            unsafe { launch.launch(config(total)) }.map_err(candle_core::Error::wrap)?;
        }
        Ok(wrap(out, self.device.clone(), &dims))
    }
}
