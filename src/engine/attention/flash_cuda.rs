//! The fused attention kernels on CUDA (`kernels/flash_attention.py`), launched through the
//! driver as a candle custom op.

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::cuda::cudarc::driver::{DevicePtr, PushKernelArg};
use candle_core::{CpuStorage, CudaStorage, CustomOp3, DType, Layout, Result, Shape, Tensor};

use super::row_view::RowView;
use crate::engine::cuda_kernels::{self, ATTENTION, AttentionKernel};

/// Environment variable naming the kernel to use for its head width (see `vaced bench
/// --only attention`); by default the first one listed for the width.
pub const KERNEL_ENV: &str = "VACED_ATTENTION_KERNEL";

/// Pointers must be 16-byte aligned and strides multiples of this many elements: the
/// kernels were compiled with that promise so that loads vectorise.
const ALIGN_ELEMENTS: usize = 16;

pub fn kernels() -> impl Iterator<Item = &'static AttentionKernel> {
    ATTENTION.iter()
}

pub fn kernel_named(name: &str) -> Result<&'static AttentionKernel> {
    match ATTENTION.iter().find(|k| k.image.name == name) {
        Some(kernel) => Ok(kernel),
        None => candle_core::bail!(
            "no attention kernel named {name:?}; this build has: {}",
            ATTENTION
                .iter()
                .map(|k| k.image.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The kernels for a head width in order of preference: the one `VACED_ATTENTION_KERNEL`
/// names, then the table's order (fastest first).
fn candidates(head_dim: usize) -> impl Iterator<Item = &'static AttentionKernel> {
    static CHOSEN: OnceLock<Option<String>> = OnceLock::new();
    let chosen = CHOSEN.get_or_init(|| std::env::var(KERNEL_ENV).ok());
    let of_width = move || ATTENTION.iter().filter(move |k| k.head_dim == head_dim);
    let named = of_width().filter(move |k| chosen.as_deref() == Some(k.image.name));
    named.chain(of_width())
}

/// The kernel that will compute this attention, or `None` for the portable path: the first
/// candidate that can read the inputs (the TMA kernels need views made of whole rows).
pub fn kernel_for(q: &Tensor, k: &Tensor, v: &Tensor) -> Result<Option<&'static AttentionKernel>> {
    if !q.device().is_cuda() || q.dtype() != DType::BF16 {
        return Ok(None);
    }
    for kernel in candidates(q.dim(3)?) {
        if unsupported(kernel, q, k, v)?.is_none() {
            return Ok(Some(kernel));
        }
    }
    Ok(None)
}

/// Why `kernel` cannot run these inputs, or `None` if it can.
pub fn unsupported(
    kernel: &AttentionKernel,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<Option<String>> {
    if let Some(why) = unsupported_layout(kernel.head_dim, q, k, v)? {
        return Ok(Some(why));
    }
    if kernel.tma.is_some() {
        for (name, t) in [("q", q), ("k", k), ("v", v)] {
            if let Err(why) = RowView::of(t.layout()) {
                return Ok(Some(format!("{name} cannot be read with TMA: {why}")));
            }
        }
    }
    Ok(None)
}

/// Why a kernel for `head_dim` cannot read these inputs (shapes, dtypes, alignment), or
/// `None` if it can.
pub(super) fn unsupported_layout(
    head_dim: usize,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
) -> Result<Option<String>> {
    let (b, h, lq, d) = q.dims4()?;
    let (kb, kh, lk, kd) = k.dims4()?;
    if (kb, kh, kd) != (b, h, d) || v.dims4()? != (kb, kh, lk, kd) {
        return Ok(Some(format!(
            "shapes q {:?}, k {:?}, v {:?} do not match",
            q.dims(),
            k.dims(),
            v.dims()
        )));
    }
    if d != head_dim {
        return Ok(Some(format!("head width {d}, kernel {head_dim}")));
    }
    if [q, k, v].iter().any(|t| t.dtype() != DType::BF16) {
        return Ok(Some("not all bf16".into()));
    }
    if !k.device().same_device(q.device()) || !v.device().same_device(q.device()) {
        return Ok(Some("inputs on different devices".into()));
    }
    if lk == 0 || lq.max(lk) > i32::MAX as usize || b * h > 65535 {
        return Ok(Some(format!(
            "sizes out of range (B·H {}, Lq {lq}, Lk {lk})",
            b * h
        )));
    }
    for t in [q, k, v] {
        let layout = t.layout();
        let strides = strides(layout);
        if (layout.stride()[3] != 1 && d > 1)
            || strides.iter().any(|s| s % ALIGN_ELEMENTS as i64 != 0)
            || layout.start_offset() % (16 / DType::BF16.size_in_bytes()) != 0
        {
            return Ok(Some(format!(
                "layout not aligned (strides {:?}, offset {})",
                layout.stride(),
                layout.start_offset()
            )));
        }
    }
    Ok(None)
}

/// The batch, head and row strides of a `[B, H, L, D]` layout; 0 for dimensions of size 1,
/// whose stride is never used and may be arbitrary in a view.
pub(super) fn strides(layout: &Layout) -> [i64; 3] {
    let dims = layout.dims();
    let stride = layout.stride();
    std::array::from_fn(|i| if dims[i] == 1 { 0 } else { stride[i] as i64 })
}

/// Runs `kernel`; the caller has checked [`unsupported`].
pub fn attention(
    kernel: &'static AttentionKernel,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
) -> Result<Tensor> {
    let op = FlashAttention { kernel, scale };
    // The op writes `[B, Lq, H, D]`: merging the heads back is then free.
    q.apply_op3_no_bwd(k, v, &op)?.transpose(1, 2)
}

struct FlashAttention {
    kernel: &'static AttentionKernel,
    scale: f64,
}

impl CustomOp3 for FlashAttention {
    fn name(&self) -> &'static str {
        "flash-attention"
    }

    fn cpu_fwd(
        &self,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
        _: &CpuStorage,
        _: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("the fused attention kernel runs on CUDA only")
    }

    fn cuda_fwd(
        &self,
        qs: &CudaStorage,
        ql: &Layout,
        ks: &CudaStorage,
        kl: &Layout,
        vs: &CudaStorage,
        vl: &Layout,
    ) -> Result<(CudaStorage, Shape)> {
        let device = qs.device().clone();
        let (b, h, lq, d) = ql.shape().dims4()?;
        let lk = kl.dims()[2];
        let q = qs.as_cuda_slice::<half::bf16>()?.slice(ql.start_offset()..);
        let k = ks.as_cuda_slice::<half::bf16>()?.slice(kl.start_offset()..);
        let v = vs.as_cuda_slice::<half::bf16>()?.slice(vl.start_offset()..);
        // Output `[B, Lq, H, D]`, contiguous.
        let out = unsafe { device.alloc::<half::bf16>(b * lq * h * d) }?;
        let [sq_b, sq_h, mut sq_m] = strides(ql);
        let [sk_b, sk_h, mut sk_n] = strides(kl);
        let [sv_b, sv_h, mut sv_n] = strides(vl);
        let (so_b, so_h, so_m) = ((lq * h * d) as i64, d as i64, (h * d) as i64);
        let (seq_q, seq_k, heads) = (lq as i32, lk as i32, h as i32);
        let qk_scale = (self.scale * std::f64::consts::LOG2_E) as f32;
        let image = &self.kernel.image;
        let func = cuda_kernels::function(&device, image)?;
        let stream = device.cuda_stream();
        let grid = (lq.div_ceil(self.kernel.block_m) as u32, (b * h) as u32, 1);
        // The TMA kernels take descriptors (and their shapes and strides) instead of pointers.
        let descriptors;
        let descriptor_dims;
        let (_q_read, _k_read, _v_read);
        let mut launch = stream.launch_builder(&func);
        match &self.kernel.tma {
            None => {
                launch.arg(&q).arg(&k).arg(&v);
            }
            Some(boxes) => {
                let views = [RowView::of(ql), RowView::of(kl), RowView::of(vl)]
                    .map(|view| view.map_err(candle_core::Error::Msg));
                let [qv, kv, vv] = views;
                let (qv, kv, vv) = (qv?, kv?, vv?);
                let (q_ptr, q_read) = q.device_ptr(&stream);
                let (k_ptr, k_read) = k.device_ptr(&stream);
                let (v_ptr, v_read) = v.device_ptr(&stream);
                (_q_read, _k_read, _v_read) = (q_read, k_read, v_read);
                descriptors = [
                    qv.descriptor(q_ptr, boxes.q_rows, boxes)?,
                    kv.descriptor(k_ptr, boxes.kv_rows, boxes)?,
                    vv.descriptor(v_ptr, boxes.kv_rows, boxes)?,
                ];
                descriptor_dims = [qv, kv, vv].map(|view| {
                    (
                        [view.rows as i32, view.row_stride as i32],
                        [view.row_stride as i64, 1i64],
                    )
                });
                // The kernel finds each (batch, head) as a row of the view: its row stride
                // is needed even where the sequence has one position.
                (sq_m, sk_n, sv_n) = (
                    qv.row_stride as i64,
                    kv.row_stride as i64,
                    vv.row_stride as i64,
                );
                for (descriptor, (shape, strides)) in descriptors.iter().zip(&descriptor_dims) {
                    launch.arg(descriptor).arg(&shape[0]).arg(&shape[1]);
                    launch.arg(&strides[0]).arg(&strides[1]);
                }
            }
        }
        launch.arg(&out);
        launch.arg(&seq_q).arg(&seq_k).arg(&heads).arg(&qk_scale);
        for stride in [
            &sq_b, &sq_h, &sq_m, &sk_b, &sk_h, &sk_n, &sv_b, &sv_h, &sv_n, &so_b, &so_h, &so_m,
        ] {
            launch.arg(stride);
        }
        // SAFETY: the argument list matches the kernel's signature (kernels/flash_attention.py,
        // kernels/flash_attention_ws.py); `unsupported` checked shapes, dtypes, alignment and
        // that TMA views cover the tensors; `out` holds B·Lq·H·D elements.
        unsafe { cuda_kernels::launch(image, grid, launch) }?;
        Ok((
            CudaStorage::wrap_cuda_slice(out, device),
            Shape::from((b, lq, h, d)),
        ))
    }
}
