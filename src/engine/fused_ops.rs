//! Fused elementwise and row kernels of the DiT blocks on CUDA in bf16
//! (`kernels/fused_ops.py`): LayerNorm with modulation or affine weights, bias + RMSNorm +
//! RoPE of q and k, bias + gate + residual; and linear layers with bias (+ GELU) in the
//! product's epilogue (cuBLASLt, `epilogue_gemm.rs`). Each replaces a chain of candle
//! ops (each a full pass through GPU memory) with one pass, rounding where the reference
//! rounds. Where they do not apply (CPU, f32, a build without the kernels, or
//! `VACED_FUSED_OPS=0`) callers take the portable composition of candle ops.
//!
//! With `VACED_LINEAR_PRECISION=fp8` the linear layers' inputs are quantised per row as
//! they are made (the LayerNorms write e4m3 rows directly) and the products run in FP8
//! (`fp8_gemm.rs`); [`ProductInput`] carries either kind to the products.

use candle_core::{DType, Result, Tensor};

use crate::engine::linear::Linear;

/// Environment switch: `VACED_FUSED_OPS=0` keeps the portable path on CUDA (to compare).
pub const FUSED_OPS_ENV: &str = "VACED_FUSED_OPS";

/// Whether [`FUSED_OPS_ENV`] leaves the fused kernels on; read once, since every DiT block
/// and VAE layer asks.
pub(crate) fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var(FUSED_OPS_ENV).map_or(true, |v| v != "0"))
}

/// Handle to the fused kernels for rows of one width; only made where they apply.
#[derive(Debug, Clone, Copy)]
pub struct FusedOps {
    /// Whether the linear layers run as FP8 products.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    fp8: bool,
}

/// The input of one or more linear layers: bf16 rows, or rows quantised for FP8 products.
#[derive(Debug)]
pub enum ProductInput {
    Bf16(Tensor),
    #[cfg(feature = "cuda")]
    Fp8(crate::engine::fp8_gemm::Fp8Rows),
}

impl FusedOps {
    /// The kernels for `[B, L, dim]` activations like `x` computed in `compute`, if they
    /// apply.
    pub fn for_activations(x: &Tensor, compute: DType, dim: usize) -> Option<Self> {
        let row_block = dim.next_power_of_two().max(64);
        // The kernels assume rows of a multiple of 16 elements (vectorised loads).
        let applies = enabled() && x.device().is_cuda() && compute == DType::BF16 && dim % 16 == 0;
        #[cfg(feature = "cuda")]
        if applies && cuda::has_row_kernels(row_block) {
            let fp8 = crate::engine::fp8_gemm::requested() && cuda::has_fp8_kernels(row_block);
            return Some(Self { fp8 });
        }
        let _ = (applies, row_block);
        None
    }

    /// `bf16(LayerNorm(x)·w + b)` for `x: [B, L, D]` f32 and `w, b: [B, 1, D]` or `[D]` f32
    /// (modulation: `w = 1 + scale`, `b = shift`).
    pub fn layer_norm_affine(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        eps: f64,
    ) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        return cuda::layer_norm_affine(x, w, b, eps, DType::BF16);
        #[cfg(not(feature = "cuda"))]
        no_cuda(&[x, w, b, &Tensor::new(eps, x.device())?])
    }

    /// `LayerNorm(x)·w + b` in f32 for `x: [B, L, D]` f32 (the head's modulated norm) in one
    /// pass, where the fused kernels apply (CUDA, `VACED_FUSED_OPS` on, a kernel for the
    /// width); `None` elsewhere.
    pub fn layer_norm_affine_f32(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        eps: f64,
    ) -> Result<Option<Tensor>> {
        #[cfg(feature = "cuda")]
        {
            let dim = x.dims().last().copied().unwrap_or(0);
            let kernel = crate::engine::cuda_kernels::row_kernel("layer_norm_affine_f32", dim);
            if enabled()
                && x.device().is_cuda()
                && dim % 16 == 0
                && x.rank() == 3
                && crate::engine::cuda_kernels::fused(&kernel).is_some()
            {
                return cuda::layer_norm_affine(x, w, b, eps, DType::F32).map(Some);
            }
        }
        let _ = (x, w, b, eps);
        Ok(None)
    }

    /// [`Self::layer_norm_affine`] as the input of linear layers: quantised in the same
    /// pass when they run in FP8.
    pub fn layer_norm_input(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        eps: f64,
    ) -> Result<ProductInput> {
        #[cfg(feature = "cuda")]
        if self.fp8 {
            return cuda::layer_norm_affine_fp8(x, w, b, eps).map(ProductInput::Fp8);
        }
        self.layer_norm_affine(x, w, b, eps).map(ProductInput::Bf16)
    }

    /// `x` (bf16) as the input of linear layers, quantised when they run in FP8.
    pub fn input(&self, x: &Tensor) -> Result<ProductInput> {
        #[cfg(feature = "cuda")]
        if self.fp8 {
            return crate::engine::fp8_gemm::quantize_rows(x).map(ProductInput::Fp8);
        }
        Ok(ProductInput::Bf16(x.clone()))
    }

    /// `x·Wᵀ` without the bias, bf16 `[.., out]`.
    pub fn product(&self, linear: &Linear, x: &ProductInput) -> Result<Tensor> {
        match x {
            ProductInput::Bf16(x) => linear.product(x),
            #[cfg(feature = "cuda")]
            ProductInput::Fp8(x) => {
                crate::engine::fp8_gemm::linear(x, &*linear.fp8_weight()?, None, None)
            }
        }
    }

    /// q or k from its linear layer's product `y: [B, L, D]` bf16: `+ bias`, RMSNorm with
    /// f32 `weight`, then RoPE with `tables` (`[L, hd/2]` cos and sin) when given; bf16.
    pub fn bias_rms_norm_rope(
        &self,
        y: &Tensor,
        bias: &Tensor,
        weight: &Tensor,
        eps: f64,
        tables: Option<(&Tensor, &Tensor)>,
    ) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        return cuda::bias_rms_norm_rope(y, bias, weight, eps, tables);
        #[cfg(not(feature = "cuda"))]
        {
            let _ = (eps, tables);
            no_cuda(&[y, bias, weight])
        }
    }

    /// `bf16(y + bias)`.
    pub fn bias_add(&self, y: &Tensor, bias: &Tensor) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        return cuda::bias_flat("bias_add", y, bias);
        #[cfg(not(feature = "cuda"))]
        no_cuda(&[y, bias])
    }

    /// `bf16(x·Wᵀ + b)` of a linear layer with a bias, the bias added in the product's
    /// epilogue.
    pub fn linear_bias(&self, linear: &Linear, x: &ProductInput) -> Result<Tensor> {
        self.epilogue_linear(linear, x, false)
    }

    /// `bf16(gelu_tanh(x·Wᵀ + b))`, bias and GELU in the product's epilogue.
    pub fn linear_bias_gelu(&self, linear: &Linear, x: &ProductInput) -> Result<Tensor> {
        self.epilogue_linear(linear, x, true)
    }

    fn epilogue_linear(&self, linear: &Linear, x: &ProductInput, gelu: bool) -> Result<Tensor> {
        let Some(bias) = linear.bias() else {
            candle_core::bail!("fused linear: the layer has no bias")
        };
        #[cfg(feature = "cuda")]
        {
            use crate::engine::epilogue_gemm::{Epilogue, linear as gemm};
            let epilogue = if gelu {
                Epilogue::BiasGelu
            } else {
                Epilogue::Bias
            };
            use crate::engine::fp8_gemm;
            match (x, linear.dense_weight()) {
                (ProductInput::Bf16(x), Some(weight)) => gemm(x, weight, bias, epilogue),
                // A layer that kept only its FP8 weight.
                (ProductInput::Bf16(x), None) => fp8_gemm::linear(
                    &fp8_gemm::quantize_rows(x)?,
                    &*linear.fp8_weight()?,
                    Some(bias),
                    Some(epilogue),
                ),
                (ProductInput::Fp8(x), _) => {
                    fp8_gemm::linear(x, &*linear.fp8_weight()?, Some(bias), Some(epilogue))
                }
            }
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = gelu;
            let ProductInput::Bf16(x) = x;
            no_cuda(&[x, bias])
        }
    }

    /// A linear layer's residual update `x + (input·Wᵀ + bias)·gate` in f32, `x: [B, L, D]`
    /// f32, `gate: [B, 1, D]` f32: [`Self::bias_residual`] after the product, or for FP8
    /// products of one batch the update in the product's epilogue.
    pub fn product_residual(
        &self,
        linear: &Linear,
        input: &ProductInput,
        x: &Tensor,
        gate: Option<&Tensor>,
    ) -> Result<Tensor> {
        let Some(bias) = linear.bias() else {
            candle_core::bail!("fused residual: the layer has no bias")
        };
        #[cfg(feature = "cuda")]
        if let ProductInput::Fp8(rows) = input
            && x.dim(0)? == 1
            && let Some(out) = crate::engine::fp8_gemm::linear_residual(
                rows,
                &*linear.fp8_weight()?,
                bias,
                gate,
                x,
            )?
        {
            return Ok(out);
        }
        self.bias_residual(x, &self.product(linear, input)?, bias, gate)
    }

    /// `x + bf16(y + bias)·gate` in f32, `x: [B, L, D]` f32, `y` bf16, `gate: [B, 1, D]` f32.
    pub fn bias_residual(
        &self,
        x: &Tensor,
        y: &Tensor,
        bias: &Tensor,
        gate: Option<&Tensor>,
    ) -> Result<Tensor> {
        #[cfg(feature = "cuda")]
        return cuda::bias_residual(x, y, bias, gate);
        #[cfg(not(feature = "cuda"))]
        {
            let _ = gate;
            no_cuda(&[x, y, bias])
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn no_cuda(_: &[&Tensor]) -> Result<Tensor> {
    candle_core::bail!("fused GPU kernels need a build with the cuda feature")
}

#[cfg(feature = "cuda")]
pub(crate) mod cuda {
    use candle_core::cuda::cudarc::driver::{CudaSlice, PushKernelArg};
    use candle_core::{DType, Result, Tensor};
    use half::bf16;

    use crate::engine::cuda_kernels::{self, device, output, prepared_aligned, view, wrap};

    /// Rows × columns per program of the 2-D elementwise kernels (`TILE_ROWS`, `TILE_COLS` in
    /// kernels/fused_ops.py).
    const TILE: (usize, usize) = (4, 512);

    /// The grid covering a `[rows, cols]` matrix with [`TILE`]s.
    fn tile_grid(rows: usize, cols: usize) -> (u32, u32, u32) {
        (
            rows.div_ceil(TILE.0) as u32,
            cols.div_ceil(TILE.1) as u32,
            1,
        )
    }

    /// Whether the FP8 path's quantisers are built for rows of `block` (the FFN's hidden
    /// rows are wider: `quantize_rows` checks their width class when it runs).
    pub fn has_fp8_kernels(block: usize) -> bool {
        ["layer_norm_affine_fp8", "quantize_rows_fp8"]
            .iter()
            .all(|k| cuda_kernels::fused(&format!("{k}_{block}")).is_some())
    }

    /// `layer_norm_affine` quantised per row for FP8 products.
    pub fn layer_norm_affine_fp8(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        eps: f64,
    ) -> Result<crate::engine::fp8_gemm::Fp8Rows> {
        let (batch, _, dim) = x.dims3()?;
        let (w, b) = (per_batch(w, batch, dim)?, per_batch(b, batch, dim)?);
        crate::engine::fp8_gemm::layer_norm_affine(x, &w, &b, eps)
    }

    pub fn has_row_kernels(block: usize) -> bool {
        ["layer_norm_affine", "bias_rms_norm_rope", "bias_rms_norm"]
            .iter()
            .all(|k| cuda_kernels::fused(&format!("{k}_{block}")).is_some())
            && ["bias_add", "bias_residual", "bias_gate_residual"]
                .iter()
                .all(|k| cuda_kernels::fused(k).is_some())
    }

    /// A per-batch vector `[B, 1, D]` or `[D]` as contiguous f32 `[B', D]`.
    fn per_batch(t: &Tensor, batch: usize, dim: usize) -> Result<Tensor> {
        let t = t.to_dtype(DType::F32)?;
        let t = if t.rank() == 1 {
            t.reshape((1, dim))?
        } else {
            t.reshape((t.elem_count() / dim, dim))?
        };
        prepared_aligned(&t.broadcast_as((batch, dim))?, DType::F32)
    }

    /// The modulated or affine LayerNorm, stored as `out` (bf16 or f32).
    pub fn layer_norm_affine(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        eps: f64,
        out: DType,
    ) -> Result<Tensor> {
        let (batch, _, dim) = x.dims3()?;
        let (w, b) = (per_batch(w, batch, dim)?, per_batch(b, batch, dim)?);
        let device = device(x)?;
        match out {
            DType::BF16 => {
                let y = output::<bf16>(&device, x.dims())?;
                launch_layer_norm(x, &w, &b, eps, NormOutput::Bf16(&y))?;
                Ok(wrap(y, device, x.dims()))
            }
            DType::F32 => {
                let y = output::<f32>(&device, x.dims())?;
                launch_layer_norm(x, &w, &b, eps, NormOutput::F32(&y))?;
                Ok(wrap(y, device, x.dims()))
            }
            other => candle_core::bail!("fused LayerNorm: no kernel writing {other:?}"),
        }
    }

    /// Where a LayerNorm kernel writes: bf16 or f32 rows, or e4m3 rows with a scale each.
    pub(crate) enum NormOutput<'a> {
        Bf16(&'a CudaSlice<bf16>),
        F32(&'a CudaSlice<f32>),
        Fp8 {
            values: &'a CudaSlice<u8>,
            scales: &'a CudaSlice<f32>,
        },
    }

    /// Launches the LayerNorm kernel that writes `out` (`layer_norm_affine…` in
    /// kernels/fused_ops.py, its variant for the row width) over `x: [B, L, D]` f32 with
    /// `w, b` f32 `[B, D]` (`per_batch`), into `out`, which holds B·L rows of D.
    pub(crate) fn launch_layer_norm(
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        eps: f64,
        out: NormOutput<'_>,
    ) -> Result<()> {
        let (batch, rows, dim) = x.dims3()?;
        if w.dims() != [batch, dim] || b.dims() != [batch, dim] {
            candle_core::bail!(
                "fused LayerNorm: x {:?}, w {:?}, b {:?}",
                x.dims(),
                w.dims(),
                b.dims()
            );
        }
        let base = match out {
            NormOutput::Bf16(_) => "layer_norm_affine",
            NormOutput::F32(_) => "layer_norm_affine_f32",
            NormOutput::Fp8 { .. } => "layer_norm_affine_fp8",
        };
        let image = cuda_kernels::fused_required(&cuda_kernels::row_kernel(base, dim))?;
        let device = device(x)?;
        let x = prepared_aligned(x, DType::F32)?;
        let (w, b) = (
            prepared_aligned(w, DType::F32)?,
            prepared_aligned(b, DType::F32)?,
        );
        let (xs, xl) = x.storage_and_layout();
        let (ws, wl) = w.storage_and_layout();
        let (bs, bl) = b.storage_and_layout();
        let (xv, wv, bv) = (
            view::<f32>(&xs, xl)?,
            view::<f32>(&ws, wl)?,
            view::<f32>(&bs, bl)?,
        );
        let (n_cols, rows_per_batch, eps) = (dim as i32, rows as i32, eps as f32);
        let func = cuda_kernels::function(&device, image)?;
        let stream = device.cuda_stream();
        let mut launch = stream.launch_builder(&func);
        launch.arg(&xv).arg(&wv).arg(&bv);
        match out {
            NormOutput::Bf16(y) => launch.arg(y),
            NormOutput::F32(y) => launch.arg(y),
            NormOutput::Fp8 { values, scales } => launch.arg(values).arg(scales),
        };
        launch.arg(&n_cols).arg(&rows_per_batch).arg(&eps);
        let grid = ((batch * rows) as u32, 1, 1);
        // SAFETY: arguments match `layer_norm_affine` or `layer_norm_affine_fp8` in
        // kernels/fused_ops.py, the kernel `out` picked; `x` is contiguous with B·L rows of
        // `dim`, `w` and `b` contiguous `[B, dim]` (checked above), and the caller's output
        // holds B·L rows.
        unsafe { cuda_kernels::launch(image, grid, launch) }
    }

    pub fn bias_rms_norm_rope(
        y: &Tensor,
        bias: &Tensor,
        weight: &Tensor,
        eps: f64,
        tables: Option<(&Tensor, &Tensor)>,
    ) -> Result<Tensor> {
        let (batch, tokens, dim) = y.dims3()?;
        let name = match tables {
            // The variant for the tables' width where the build has one (head width 128:
            // `bias_rms_norm_rope_h64_*`), else the one for any width.
            Some((c, _)) => Some(cuda_kernels::row_kernel(
                &format!("bias_rms_norm_rope_h{}", c.dim(1)?),
                dim,
            ))
            .filter(|name| cuda_kernels::fused(name).is_some())
            .unwrap_or_else(|| cuda_kernels::row_kernel("bias_rms_norm_rope", dim)),
            None => cuda_kernels::row_kernel("bias_rms_norm", dim),
        };
        let image = cuda_kernels::fused_required(&name)?;
        let device = device(y)?;
        let y = prepared_aligned(y, DType::BF16)?;
        let bias = prepared_aligned(bias, DType::BF16)?;
        let weight = prepared_aligned(weight, DType::F32)?;
        // Without RoPE the tables are not read; any f32 tensor stands in.
        let (cos, sin) = match tables {
            Some((c, s)) => (
                prepared_aligned(c, DType::F32)?,
                prepared_aligned(s, DType::F32)?,
            ),
            None => (weight.clone(), weight.clone()),
        };
        let half_head = match tables {
            Some((c, _)) => {
                if c.dim(0)? != tokens {
                    candle_core::bail!("RoPE tables for {} tokens, input has {tokens}", c.dim(0)?);
                }
                c.dim(1)? as i32
            }
            None => 1,
        };
        let out = output::<bf16>(&device, y.dims())?;
        {
            let (ys, yl) = y.storage_and_layout();
            let (bs, bl) = bias.storage_and_layout();
            let (ws, wl) = weight.storage_and_layout();
            let (cs, cl) = cos.storage_and_layout();
            let (ss, sl) = sin.storage_and_layout();
            let (yv, bv) = (view::<bf16>(&ys, yl)?, view::<bf16>(&bs, bl)?);
            let (wv, cv, sv) = (
                view::<f32>(&ws, wl)?,
                view::<f32>(&cs, cl)?,
                view::<f32>(&ss, sl)?,
            );
            let (n_cols, tokens_i, eps) = (dim as i32, tokens as i32, eps as f32);
            let func = cuda_kernels::function(&device, image)?;
            let stream = device.cuda_stream();
            let mut launch = stream.launch_builder(&func);
            launch
                .arg(&yv)
                .arg(&bv)
                .arg(&wv)
                .arg(&cv)
                .arg(&sv)
                .arg(&out);
            launch.arg(&n_cols).arg(&tokens_i).arg(&half_head).arg(&eps);
            let grid = ((batch * tokens) as u32, 1, 1);
            // SAFETY: arguments match `bias_rms_norm_rope` in kernels/fused_ops.py; inputs are
            // contiguous; the tables cover `tokens` rows.
            unsafe { cuda_kernels::launch(image, grid, launch) }?;
        }
        Ok(wrap(out, device, y.dims()))
    }

    /// `bias_add` over `y: [.., N]` bf16 with `bias: [N]`.
    pub fn bias_flat(name: &str, y: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let image = cuda_kernels::fused_required(name)?;
        let device = device(y)?;
        let y = prepared_aligned(y, DType::BF16)?;
        let bias = prepared_aligned(bias, DType::BF16)?;
        let n_cols = bias.elem_count();
        if y.dims().last() != Some(&n_cols) {
            candle_core::bail!("{name}: bias of {n_cols} for rows of {:?}", y.dims());
        }
        let rows = y.elem_count() / n_cols;
        let out = output::<bf16>(&device, y.dims())?;
        {
            let (ys, yl) = y.storage_and_layout();
            let (bs, bl) = bias.storage_and_layout();
            let (yv, bv) = (view::<bf16>(&ys, yl)?, view::<bf16>(&bs, bl)?);
            let grid = tile_grid(rows, n_cols);
            let (n_rows, n_cols) = (rows as i32, n_cols as i32);
            let func = cuda_kernels::function(&device, image)?;
            let stream = device.cuda_stream();
            let mut launch = stream.launch_builder(&func);
            launch.arg(&yv).arg(&bv).arg(&out).arg(&n_rows).arg(&n_cols);
            // SAFETY: arguments match the kernel in kernels/fused_ops.py; `y` and `out` hold
            // `rows` rows of `n_cols`, `bias` one row; all start 16-byte aligned (`prepared_aligned`).
            unsafe { cuda_kernels::launch(image, grid, launch) }?;
        }
        Ok(wrap(out, device, y.dims()))
    }

    pub fn bias_residual(
        x: &Tensor,
        y: &Tensor,
        bias: &Tensor,
        gate: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (batch, rows, dim) = x.dims3()?;
        if y.dims() != x.dims() {
            candle_core::bail!("residual: x {:?}, y {:?}", x.dims(), y.dims());
        }
        let image = cuda_kernels::fused_required(if gate.is_some() {
            "bias_gate_residual"
        } else {
            "bias_residual"
        })?;
        let device = device(x)?;
        let x = prepared_aligned(x, DType::F32)?;
        let y = prepared_aligned(y, DType::BF16)?;
        let bias = prepared_aligned(bias, DType::BF16)?;
        // Without a gate the pointer is not read; `x` stands in.
        let gate = match gate {
            Some(g) => per_batch(g, batch, dim)?,
            None => x.clone(),
        };
        let out = output::<f32>(&device, x.dims())?;
        {
            let (xs, xl) = x.storage_and_layout();
            let (ys, yl) = y.storage_and_layout();
            let (bs, bl) = bias.storage_and_layout();
            let (gs, gl) = gate.storage_and_layout();
            let (xv, gv) = (view::<f32>(&xs, xl)?, view::<f32>(&gs, gl)?);
            let (yv, bv) = (view::<bf16>(&ys, yl)?, view::<bf16>(&bs, bl)?);
            let grid = tile_grid(batch * rows, dim);
            let (n_rows, n_cols, rows_per_batch) = ((batch * rows) as i32, dim as i32, rows as i32);
            let func = cuda_kernels::function(&device, image)?;
            let stream = device.cuda_stream();
            let mut launch = stream.launch_builder(&func);
            launch.arg(&xv).arg(&yv).arg(&bv).arg(&gv);
            launch
                .arg(&out)
                .arg(&n_rows)
                .arg(&n_cols)
                .arg(&rows_per_batch);
            // SAFETY: arguments match `bias_gate_residual` in kernels/fused_ops.py; `x`, `y`
            // and `out` hold B·rows rows of `dim`, the gate `[B, D]`; all start 16-byte
            // aligned (`prepared_aligned`, `per_batch`).
            unsafe { cuda_kernels::launch(image, grid, launch) }?;
        }
        Ok(wrap(out, device, x.dims()))
    }
}
