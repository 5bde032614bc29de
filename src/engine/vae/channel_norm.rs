//! The VAE's channel RMS norm (`RMS_norm` in `wan/modules/vae.py`), alone or followed by
//! SiLU as the residual blocks and heads use it; one kernel on CUDA
//! (`kernels/channel_norm.py`), candle ops elsewhere.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

/// L2-normalise over channels, times `√C · γ` (`F.normalize` guards the norm with 1e-12).
#[derive(Debug, Clone)]
pub struct ChannelNorm {
    /// `[C, 1, 1]`.
    gamma: Tensor,
    scale: f64,
}

impl ChannelNorm {
    /// `gamma` is stored `[C, 1, 1, 1]` in 3-D blocks (`images=False`) and `[C, 1, 1]` in
    /// the attention blocks.
    pub fn new(dim: usize, video: bool, vb: VarBuilder) -> Result<Self> {
        let gamma = if video {
            vb.get((dim, 1, 1, 1), "gamma")?
        } else {
            vb.get((dim, 1, 1), "gamma")?
        };
        Ok(Self {
            gamma: gamma.reshape((dim, 1, 1))?,
            scale: (dim as f64).sqrt(),
        })
    }

    /// The norm of `x: [T, C, H, W]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, false)
    }

    /// The norm of `x: [T, C, H, W]`, then SiLU.
    pub fn forward_silu(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, true)
    }

    fn run(&self, x: &Tensor, silu: bool) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        if x.dtype() == candle_core::DType::F32
            && let Some(image) = cuda::kernel(x, silu)
        {
            return cuda::channel_rms_norm(image, x, &self.gamma, self.scale);
        }
        let norm = x.sqr()?.sum_keepdim(1)?.sqrt()?.maximum(1e-12)?;
        let y = (x.broadcast_div(&norm)? * self.scale)?.broadcast_mul(&self.gamma)?;
        if silu { y.silu() } else { Ok(y) }
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use candle_core::cuda::cudarc::driver::PushKernelArg;
    use candle_core::{DType, Result, Tensor};

    use crate::engine::cuda_kernels::{self, KernelImage, device, output, prepared, view, wrap};
    use crate::engine::fused_ops;

    /// Pixels per program (`BLOCK_P` in kernels/channel_norm.py).
    const BLOCK_P: usize = 32;

    /// The kernel for `x`'s channel count, if it runs on `x`'s device.
    pub fn kernel(x: &Tensor, silu: bool) -> Option<&'static KernelImage> {
        if !x.device().is_cuda() || !fused_ops::enabled() || x.rank() != 4 {
            return None;
        }
        let channels = x.dim(1).ok()?;
        let c_pad = channels.next_power_of_two().max(128);
        let name = format!(
            "channel_rms_norm{}_{c_pad}",
            if silu { "_silu" } else { "" }
        );
        cuda_kernels::fused(&name)
    }

    pub fn channel_rms_norm(
        image: &'static KernelImage,
        x: &Tensor,
        gamma: &Tensor,
        scale: f64,
    ) -> Result<Tensor> {
        let (frames, channels, height, width) = x.dims4()?;
        let device = device(x)?;
        let x = prepared(x, DType::F32)?;
        let gamma = prepared(&gamma.flatten_all()?, DType::F32)?;
        if gamma.elem_count() != channels {
            candle_core::bail!(
                "channel norm: {channels} channels, {} gains",
                gamma.elem_count()
            );
        }
        let out = output::<f32>(&device, x.dims())?;
        {
            let (xs, xl) = x.storage_and_layout();
            let (gs, gl) = gamma.storage_and_layout();
            let (xv, gv) = (view::<f32>(&xs, xl)?, view::<f32>(&gs, gl)?);
            let pixels = height * width;
            let (n_channels, n_pixels, scale) = (channels as i32, pixels as i32, scale as f32);
            let func = cuda_kernels::function(&device, image)?;
            let stream = device.cuda_stream();
            let mut launch = stream.launch_builder(&func);
            launch.arg(&xv).arg(&gv).arg(&out);
            launch.arg(&n_channels).arg(&n_pixels).arg(&scale);
            let grid = (pixels.div_ceil(BLOCK_P) as u32, frames as u32, 1);
            // SAFETY: arguments match `channel_rms_norm` in kernels/channel_norm.py; `x` and `out` are contiguous
            // `[T, C, H·W]`, γ holds C values.
            unsafe { cuda_kernels::launch(image, grid, launch) }?;
        }
        Ok(wrap(out, device, x.dims()))
    }
}
