//! The VAE's convolutions on CUDA as implicit-GEMM kernels (`kernels/causal_conv.py`): every
//! causal 3-D convolution and every per-frame 2-D convolution, with its temporal taps,
//! spatial taps, stride and zero padding, in one launch that reads the frames in place.
//! Elsewhere (CPU, a build without the kernels, `VACED_FUSED_OPS=0`) the layers use candle's
//! conv2d per temporal tap.

use candle_core::{Device, Result, Tensor};

/// Environment switch: `VACED_CONV_TILE=p128_o64_c32_w4_s3` picks the tile of the 3x3x3
/// convolutions among those built (kernels/causal_conv.py), to compare them.
pub const CONV_TILE_ENV: &str = "VACED_CONV_TILE";

/// Environment switch: `VACED_VAE_PRECISION=tf32` or `f32` forces how every VAE forms its
/// convolutions (see [`ConvPrecision`]), whatever the pipeline chose; for comparisons.
pub const VAE_PRECISION_ENV: &str = "VACED_VAE_PRECISION";

/// How the GPU kernels form a convolution's products. The VAE computes in f32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvPrecision {
    /// Three TF32 products over operands split into a TF32 part and the remainder: exact to
    /// f32, as the reference computes on a CPU (where the fixtures come from).
    #[default]
    Exact,
    /// One TF32 product, as cuDNN forms it under PyTorch's default `allow_tf32`: what the
    /// reference computes on a GPU (spec §5), about twice as fast.
    Tf32,
}

impl ConvPrecision {
    /// The precision beside a DiT computing in `dtype`: a bf16 pipeline is the reference's
    /// GPU run, so its VAE takes the reference's GPU numerics too; an f32 pipeline is exact.
    pub fn for_compute_dtype(dtype: candle_core::DType) -> Self {
        match dtype {
            candle_core::DType::F32 | candle_core::DType::F64 => Self::Exact,
            _ => Self::Tf32,
        }
    }

    /// What a VAE set to `self` computes in: [`VAE_PRECISION_ENV`]'s choice where it names
    /// one.
    pub fn effective(self) -> Self {
        Self::forced().unwrap_or(self)
    }

    /// [`VAE_PRECISION_ENV`]'s choice, if it names one.
    fn forced() -> Option<Self> {
        static FORCED: std::sync::OnceLock<Option<ConvPrecision>> = std::sync::OnceLock::new();
        *FORCED.get_or_init(|| match std::env::var(VAE_PRECISION_ENV).ok()?.as_str() {
            "tf32" => Some(Self::Tf32),
            "f32" | "exact" => Some(Self::Exact),
            other => {
                tracing::warn!("{VAE_PRECISION_ENV}={other} is neither tf32 nor f32; ignored");
                None
            }
        })
    }
}

thread_local! {
    /// The precision of the convolutions this thread runs: set for the length of one encode or
    /// decode by [`precision_scope`] (the layers are shared, the precision belongs to the VAE).
    static PRECISION: std::cell::Cell<ConvPrecision> =
        const { std::cell::Cell::new(ConvPrecision::Exact) };
}

/// Runs this thread's convolutions in `precision` (or the environment's) until the guard
/// is dropped.
pub fn precision_scope(precision: ConvPrecision) -> PrecisionScope {
    PrecisionScope(PRECISION.replace(precision.effective()))
}

/// Restores the previous precision when dropped.
#[must_use]
pub struct PrecisionScope(ConvPrecision);

impl Drop for PrecisionScope {
    fn drop(&mut self) {
        PRECISION.set(self.0);
    }
}

/// The precision the current encode or decode runs in.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
fn current_precision() -> ConvPrecision {
    PRECISION.get()
}

/// Where a convolution reads, the same for rows and columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// `[kt, kh, kw]`.
    pub kernel: [usize; 3],
    pub stride_t: usize,
    pub stride_hw: usize,
    /// Zero rows (and columns) before the first pixel and after the last.
    pub pad_begin: usize,
    pub pad_end: usize,
}

impl ConvGeometry {
    /// Output `(frames, height, width)` of an input of `frames × height × width`.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub fn output_size(&self, frames: usize, height: usize, width: usize) -> Option<[usize; 3]> {
        let [kt, kh, kw] = self.kernel;
        let pad = self.pad_begin + self.pad_end;
        let out = |n: usize, k: usize, stride: usize| {
            (n + pad).checked_sub(k).map(|span| span / stride + 1)
        };
        Some([
            frames.checked_sub(kt)? / self.stride_t + 1,
            out(height, kh, self.stride_hw)?,
            out(width, kw, self.stride_hw)?,
        ])
    }
}

/// A convolution weight as the kernels read it: `[out, kt·kh·kw·in]` (per output channel,
/// taps outermost, then input channels), split into a TF32-exact part and the remainder.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub struct GemmWeight {
    big: Tensor,
    small: Tensor,
}

/// `weight [out, in, kt, kh, kw]` as a [`GemmWeight`] when the kernels run its
/// convolutions on its device.
pub fn gemm_weight(weight: &Tensor) -> Result<Option<GemmWeight>> {
    let (out_dim, in_dim, kt, kh, kw) = weight.dims5()?;
    if !available(weight.device(), [kt, kh, kw]) {
        return Ok(None);
    }
    let gemm = weight
        .to_dtype(candle_core::DType::F32)?
        .permute((0, 2, 3, 4, 1))?
        .contiguous()?
        .reshape((out_dim, kt * kh * kw * in_dim))?;
    #[cfg(feature = "cuda")]
    {
        let (big, small) = cuda::split(&gemm)?;
        Ok(Some(GemmWeight { big, small }))
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = gemm;
        Ok(None)
    }
}

/// Whether the kernels run `[kt, kh, kw]` convolutions of every width on `device`.
pub fn available(device: &Device, kernel: [usize; 3]) -> bool {
    #[cfg(feature = "cuda")]
    if crate::engine::fused_ops::enabled() && device.is_cuda() {
        return cuda::available(kernel);
    }
    let _ = (device, kernel);
    false
}

/// A run of input frames of a convolution: the causal zero frames, a cache, the chunk.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub enum Frames<'a> {
    Zeros(usize),
    /// `[n, C, H, W]`.
    Of(&'a Tensor),
}

/// The convolution of the frames of `input` (in order; f32 `[T_in, C, H, W]` once joined)
/// with `weight` from [`gemm_weight`] and `bias: [O]`; returns `[T_out, O, OH, OW]` as
/// [`ConvGeometry::output_size`] says. The frames are joined as the kernel's operands are
/// prepared, without a concatenated copy.
pub fn conv(
    input: &[Frames],
    weight: &GemmWeight,
    bias: &Tensor,
    geometry: ConvGeometry,
) -> Result<Tensor> {
    #[cfg(feature = "cuda")]
    return cuda::conv(input, weight, bias, geometry);
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (input, weight, bias, geometry);
        candle_core::bail!("the VAE's GPU convolution needs a build with the cuda feature")
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use std::sync::OnceLock;

    use candle_core::cuda::cudarc::driver::PushKernelArg;
    use candle_core::{DType, Result, Tensor};

    use super::{CONV_TILE_ENV, ConvGeometry, ConvPrecision, Frames, GemmWeight};
    use crate::engine::cuda_kernels::{
        self, CONV, ConvKernel, device, output, prepared, view, wrap,
    };

    /// Tiles of the splitters (`SPLIT_BLOCK_C`, `SPLIT_BLOCK_P`, `FLAT_SPLIT_BLOCK` in
    /// kernels/causal_conv.py).
    const SPLIT_BLOCK_C: usize = 32;
    const SPLIT_BLOCK_P: usize = 128;
    const FLAT_SPLIT_BLOCK: usize = 2048;

    /// Which kernel class fits the shapes (kernels/causal_conv.py says what each assumes).
    fn class(channels: usize, out_channels: usize) -> &'static str {
        if channels % 16 != 0 {
            "narrow"
        } else if out_channels % 16 == 0 && out_channels >= 64 {
            "wide"
        } else {
            "thin"
        }
    }

    pub fn available(kernel: [usize; 3]) -> bool {
        ["wide", "thin", "narrow"]
            .iter()
            .all(|class| CONV.iter().any(|k| k.kernel == kernel && k.class == *class))
            && ["tf32_split", "tf32_split_channels_last"]
                .iter()
                .all(|name| cuda_kernels::fused(name).is_some())
    }

    /// The kernel for these shapes in the chosen precision: the tile named by
    /// [`CONV_TILE_ENV`] if built, else the class's default (its first).
    fn select(
        kernel: [usize; 3],
        channels: usize,
        out_channels: usize,
    ) -> Result<&'static ConvKernel> {
        static WANTED: OnceLock<Option<String>> = OnceLock::new();
        let wanted = WANTED.get_or_init(|| std::env::var(CONV_TILE_ENV).ok());
        let class = class(channels, out_channels);
        let mut fitting = CONV
            .iter()
            .filter(|k| k.kernel == kernel && k.class == class)
            .filter(|k| {
                k.tile.ends_with("_tf32") == (super::current_precision() == ConvPrecision::Tf32)
            })
            .peekable();
        let default = fitting.peek().copied();
        fitting
            .find(|k| wanted.as_deref() == Some(k.tile))
            .or(default)
            .ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "this build has no {class} convolution kernel for {kernel:?}"
                ))
            })
    }

    /// `x` (any shape, f32) as a TF32-exact part and the remainder, same shape.
    pub fn split(x: &Tensor) -> Result<(Tensor, Tensor)> {
        let image = cuda_kernels::fused_required("tf32_split")?;
        let device = device(x)?;
        let x = prepared(x, DType::F32)?;
        let n = x.elem_count();
        let (big, small) = (output::<f32>(&device, &[n])?, output::<f32>(&device, &[n])?);
        {
            let (xs, xl) = x.storage_and_layout();
            let xv = view::<f32>(&xs, xl)?;
            let n_elements = n as i64;
            let func = cuda_kernels::function(&device, image)?;
            let stream = device.cuda_stream();
            let mut launch = stream.launch_builder(&func);
            launch.arg(&xv).arg(&big).arg(&small).arg(&n_elements);
            let grid = (n.div_ceil(FLAT_SPLIT_BLOCK) as u32, 1, 1);
            // SAFETY: arguments match `tf32_split` in kernels/causal_conv.py; all three
            // buffers hold `n` elements.
            unsafe { cuda_kernels::launch(image, grid, launch) }?;
        }
        Ok((
            wrap(big, device.clone(), x.dims()),
            wrap(small, device, x.dims()),
        ))
    }

    /// The frames of `input` joined as channels-last `[T, H, W, C]` TF32-exact part and
    /// remainder, with `[T, C, H, W]`.
    fn split_channels_last(input: &[Frames]) -> Result<(Tensor, Tensor, [usize; 4])> {
        let Some(first) = input.iter().find_map(|part| match part {
            Frames::Of(t) => Some(*t),
            Frames::Zeros(_) => None,
        }) else {
            candle_core::bail!("VAE convolution: no input frames");
        };
        let (_, channels, height, width) = first.dims4()?;
        let device = device(first)?;
        let frames: usize = input
            .iter()
            .map(|part| match part {
                Frames::Zeros(n) => Ok(*n),
                Frames::Of(t) => t.dim(0),
            })
            .sum::<Result<usize>>()?;
        let image = cuda_kernels::fused_required("tf32_split_channels_last")?;
        let pixels = height * width;
        let frame_len = pixels * channels;
        let (mut big, mut small) = (
            output::<f32>(&device, &[frames * frame_len])?,
            output::<f32>(&device, &[frames * frame_len])?,
        );
        let stream = device.cuda_stream();
        let func = cuda_kernels::function(&device, image)?;
        let missing = || candle_core::Error::Msg("VAE convolution: frame range".into());
        let mut at = 0;
        for part in input {
            match part {
                Frames::Zeros(n) => {
                    let range = at * frame_len..(at + n) * frame_len;
                    for buffer in [&mut big, &mut small] {
                        let mut zeros = buffer.try_slice_mut(range.clone()).ok_or_else(missing)?;
                        stream
                            .memset_zeros(&mut zeros)
                            .map_err(candle_core::Error::wrap)?;
                    }
                    at += n;
                }
                Frames::Of(x) => {
                    let (n, c, h, w) = x.dims4()?;
                    if (c, h, w) != (channels, height, width) {
                        candle_core::bail!(
                            "VAE convolution: frames {:?} and {:?} differ",
                            x.dims(),
                            [channels, height, width]
                        );
                    }
                    let x = prepared(x, DType::F32)?;
                    let (xs, xl) = x.storage_and_layout();
                    let xv = view::<f32>(&xs, xl)?;
                    let range = at * frame_len..(at + n) * frame_len;
                    let mut big_part = big.try_slice_mut(range.clone()).ok_or_else(missing)?;
                    let mut small_part = small.try_slice_mut(range).ok_or_else(missing)?;
                    let sizes = [channels as i32, pixels as i32];
                    let mut launch = stream.launch_builder(&func);
                    launch.arg(&xv).arg(&mut big_part).arg(&mut small_part);
                    launch.arg(&sizes[0]).arg(&sizes[1]);
                    let grid = (
                        pixels.div_ceil(SPLIT_BLOCK_P) as u32,
                        channels.div_ceil(SPLIT_BLOCK_C) as u32,
                        n as u32,
                    );
                    // SAFETY: arguments match `tf32_split_channels_last` in
                    // kernels/causal_conv.py; `x` is contiguous `[n, C, H·W]`, both
                    // destinations hold as many elements.
                    unsafe { cuda_kernels::launch(image, grid, launch) }?;
                    at += n;
                }
            }
        }
        let dims = [frames, height, width, channels];
        Ok((
            wrap(big, device.clone(), &dims),
            wrap(small, device, &dims),
            [frames, channels, height, width],
        ))
    }

    pub fn conv(
        input: &[Frames],
        weight: &GemmWeight,
        bias: &Tensor,
        geometry: ConvGeometry,
    ) -> Result<Tensor> {
        let (input_big, input_small, [frames, channels, height, width]) =
            split_channels_last(input)?;
        let (out_channels, k) = weight.big.dims2()?;
        let [kt, kh, kw] = geometry.kernel;
        let sizes = geometry.output_size(frames, height, width);
        let (Some([out_frames, out_h, out_w]), true) = (sizes, k == kt * kh * kw * channels) else {
            candle_core::bail!(
                "VAE convolution: input {:?} does not fit weight {:?} with {geometry:?}",
                [frames, channels, height, width],
                weight.big.dims()
            );
        };
        let conv = select(geometry.kernel, channels, out_channels)?;
        let device = device(&input_big)?;
        let bias = prepared(bias, DType::F32)?;
        let dims = [out_frames, out_channels, out_h, out_w];
        let out = output::<f32>(&device, &dims)?;
        {
            let (xbs, xbl) = input_big.storage_and_layout();
            let (xss, xsl) = input_small.storage_and_layout();
            let (wbs, wbl) = weight.big.storage_and_layout();
            let (wss, wsl) = weight.small.storage_and_layout();
            let (bs, bl) = bias.storage_and_layout();
            if [xbl, xsl, wbl, wsl]
                .iter()
                .any(|l| l.start_offset() % 4 != 0)
            {
                candle_core::bail!("VAE convolution: operands not 16-byte aligned");
            }
            let (xbv, xsv, wbv, wsv, bv) = (
                view::<f32>(&xbs, xbl)?,
                view::<f32>(&xss, xsl)?,
                view::<f32>(&wbs, wbl)?,
                view::<f32>(&wss, wsl)?,
                view::<f32>(&bs, bl)?,
            );
            let sizes = [
                channels,
                height,
                width,
                out_channels,
                out_h,
                out_w,
                geometry.stride_t,
                geometry.stride_hw,
                geometry.pad_begin,
                geometry.pad_begin,
            ]
            .map(|n| n as i32);
            let func = cuda_kernels::function(&device, &conv.image)?;
            let stream = device.cuda_stream();
            let mut launch = stream.launch_builder(&func);
            launch
                .arg(&xbv)
                .arg(&xsv)
                .arg(&wbv)
                .arg(&wsv)
                .arg(&bv)
                .arg(&out);
            for size in &sizes {
                launch.arg(size);
            }
            let grid = (
                (out_h * out_w).div_ceil(conv.block_p) as u32,
                out_channels.div_ceil(conv.block_o) as u32,
                out_frames as u32,
            );
            // SAFETY: arguments match the kernels of kernels/causal_conv.py; the operands
            // are contiguous with the sizes passed (the "wide"/"thin" classes' multiples
            // of 16 checked by `class`, the pointers' alignment above), `out` holds `dims`.
            unsafe { cuda_kernels::launch(&conv.image, grid, launch) }?;
        }
        Ok(wrap(out, device, &dims))
    }
}

#[cfg(test)]
mod tests {
    use super::{ConvGeometry, ConvPrecision};

    #[test]
    fn a_bf16_pipeline_takes_the_reference_gpu_numerics_and_an_f32_one_stays_exact() {
        use candle_core::DType;
        assert_eq!(
            ConvPrecision::for_compute_dtype(DType::BF16),
            ConvPrecision::Tf32
        );
        assert_eq!(
            ConvPrecision::for_compute_dtype(DType::F32),
            ConvPrecision::Exact
        );
        assert_eq!(ConvPrecision::default(), ConvPrecision::Exact);
    }

    #[test]
    fn output_sizes_follow_the_reference_layers() {
        let causal = ConvGeometry {
            kernel: [3, 3, 3],
            stride_t: 1,
            stride_hw: 1,
            pad_begin: 1,
            pad_end: 1,
        };
        // 2 causal frames in front of 4: 4 out, same size.
        assert_eq!(causal.output_size(6, 60, 104), Some([4, 60, 104]));
        // The downsampler: ZeroPad2d((0, 1, 0, 1)) then a 3x3 stride-2 valid conv halves.
        let down = ConvGeometry {
            kernel: [1, 3, 3],
            stride_t: 1,
            stride_hw: 2,
            pad_begin: 0,
            pad_end: 1,
        };
        assert_eq!(down.output_size(4, 480, 832), Some([4, 240, 416]));
        // The temporal downsampler: stride 2 over the last frame and a chunk of 4.
        let time = ConvGeometry {
            kernel: [3, 1, 1],
            stride_t: 2,
            stride_hw: 1,
            pad_begin: 0,
            pad_end: 0,
        };
        assert_eq!(time.output_size(5, 8, 8), Some([2, 8, 8]));
        assert_eq!(causal.output_size(2, 60, 104), None);
    }
}
