//! 8-bit attention on CUDA (`kernels/quantized_attention.py`): q and k quantized to INT8 per
//! token (k centred on its mean first), v centred to FP8 per channel, then one fused kernel with
//! INT8 q·kᵀ and FP8 p·v products. For head width 128 the warp-specialised kernels are used
//! instead, with k scaled per block of 128 tokens: `kernels/flash_attention_i8f8.py` (the
//! default; FP8 p·v from a transposed copy of v whose keys are stored in the order the kernel
//! holds its probabilities) or `kernels/flash_attention_i8.py` (bf16 p·v straight from the
//! model's v). The quantized copies live only for the call.

use candle_core::cuda::cudarc::driver::{CudaSlice, DevicePtr, PushKernelArg};
use candle_core::{DType, Result, Tensor};
use half::bf16;

use super::flash_cuda::{strides, unsupported_layout};
use super::row_view::RowView;
use super::tma::{TmaDescriptor, int8_rows_descriptor};
use crate::engine::cuda_kernels::{
    self, AttentionKernel, QUANTIZED_ATTENTION, Values, device, output, view, wrap,
};
use crate::engine::regions::Laps;

/// Token axes of the quantized copies are padded to this (`PAD_TOKENS` in the kernels).
const PAD_TOKENS: usize = 128;
/// Rows per program of `quantize_rows` (its `BLOCK_L`).
const QUANTIZE_ROWS: usize = 64;
/// Keys per program of `quantize_v` (`V_KEYS` in the kernels).
const QUANTIZE_V_KEYS: usize = 128;
/// Tokens per program of `column_partials` (`STATS_CHUNK` in the kernels).
const STATS_CHUNK: usize = 1024;

pub fn kernels() -> impl Iterator<Item = &'static AttentionKernel> {
    QUANTIZED_ATTENTION.iter()
}

/// The default 8-bit kernel for a head width.
pub fn default_kernel(head_dim: usize) -> Option<&'static AttentionKernel> {
    QUANTIZED_ATTENTION.iter().find(|k| k.head_dim == head_dim)
}

pub fn kernel_named(name: &str) -> Option<&'static AttentionKernel> {
    QUANTIZED_ATTENTION.iter().find(|k| k.image.name == name)
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
    if kernel
        .tma
        .as_ref()
        .is_some_and(|b| b.values == Values::Bf16Rows)
    {
        if let Err(why) = RowView::of(v.layout()) {
            return Ok(Some(format!("v cannot be read with TMA: {why}")));
        }
    }
    let names = helper_names(kernel);
    Ok(names
        .iter()
        .find(|name| cuda_kernels::fused(name).is_none())
        .map(|missing| format!("this build has no {missing} kernel")))
}

/// The quantizers `kernel` needs, in launch order: column statistics, q, then k (per token
/// for the Triton kernels, per block for the warp-specialised ones) and v (but for the
/// warp-specialised kernel that reads the model's v).
fn helper_names(kernel: &AttentionKernel) -> Vec<String> {
    let d = kernel.head_dim;
    let mut names = vec![
        format!("qattn_partials_hd{d}"),
        format!("qattn_stats_hd{d}"),
        format!("qattn_rows_hd{d}_q"),
    ];
    if let Some(boxes) = &kernel.tma {
        names.push(format!("qattn_kblocks_hd{d}"));
        if boxes.values == Values::Fp8Transposed {
            names.push(format!("qattn_vperm_hd{d}"));
        }
    } else {
        names.push(format!("qattn_rows_hd{d}_k"));
        names.push(format!("qattn_v_hd{d}"));
    }
    names
}

/// Profile regions (`VACED_PROFILE_REGIONS=1`) of an 8-bit attention call's two parts.
const QUANTIZERS_REGION: &str = "8-bit attention: quantizers";
const KERNEL_REGION: &str = "8-bit attention: kernel";

/// `softmax(q·kᵀ·scale)·v` through `kernel`; the caller has checked [`unsupported`].
pub fn attention(
    kernel: &'static AttentionKernel,
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
) -> Result<Tensor> {
    let (b, h, lq, d) = q.dims4()?;
    let lk = k.dim(2)?;
    let bh = b * h;
    // With VACED_PROFILE_REGIONS=1, the quantizers and the kernel are timed apart.
    let mut laps = Laps::start(q.device())?;
    // Quantized copies pad the head width to a power of two (`D_PAD` in the kernels).
    let d_pad = d.next_power_of_two().max(32);
    let (lq_pad, lk_pad) = (
        lq.next_multiple_of(PAD_TOKENS),
        lk.next_multiple_of(PAD_TOKENS),
    );
    let cuda = device(q)?;
    let stream = cuda.cuda_stream();
    let helpers = helper_names(kernel)
        .iter()
        .map(|n| cuda_kernels::fused_required(n))
        .collect::<Result<Vec<_>>>()?;
    let (partials, stats, rows_q) = (helpers[0], helpers[1], helpers[2]);

    let (qs_, ql) = q.storage_and_layout();
    let (ks_, kl) = k.storage_and_layout();
    let (vs_, vl) = v.storage_and_layout();
    let (qv, kv, vv) = (
        view::<bf16>(&qs_, ql)?,
        view::<bf16>(&ks_, kl)?,
        view::<bf16>(&vs_, vl)?,
    );
    let [sq_b, sq_h, sq_l] = strides(ql);
    let [sk_b, sk_h, sk_l] = strides(kl);
    let [sv_b, sv_h, sv_l] = strides(vl);
    let (heads, seq_q, seq_k) = (h as i32, lq as i32, lk as i32);
    let (pad_q, pad_k) = (lq_pad as i32, lk_pad as i32);

    // Column statistics per (batch·head, channel): sum of k, mean of v, max |v − mean|;
    // partial ones over chunks of tokens first, so that the pass over k and v fills the GPU.
    let k_sum: CudaSlice<f32> = output(&cuda, &[bh, d_pad])?;
    let v_mean: CudaSlice<f32> = output(&cuda, &[bh, d_pad])?;
    let v_range: CudaSlice<f32> = output(&cuda, &[bh, d_pad])?;
    {
        let chunks = lk.div_ceil(STATS_CHUNK);
        let parts: CudaSlice<f32> = output(&cuda, &[bh, chunks, 4, d_pad])?;
        let func = cuda_kernels::function(&cuda, partials)?;
        let mut launch = stream.launch_builder(&func);
        launch.arg(&kv).arg(&vv).arg(&parts);
        launch.arg(&seq_k).arg(&heads);
        for s in [&sk_b, &sk_h, &sk_l, &sv_b, &sv_h, &sv_l] {
            launch.arg(s);
        }
        let grid = (bh as u32, chunks as u32, 1);
        // SAFETY: matches `column_partials`; k and v cover B·H·Lk·D through their strides,
        // `parts` holds BH·chunks·4·D_PAD.
        unsafe { cuda_kernels::launch(partials, grid, launch) }?;
        let chunks = chunks as i32;
        let func = cuda_kernels::function(&cuda, stats)?;
        let mut launch = stream.launch_builder(&func);
        launch.arg(&parts).arg(&k_sum).arg(&v_mean).arg(&v_range);
        launch.arg(&seq_k).arg(&chunks);
        // SAFETY: matches `column_stats`; `parts` holds BH·chunks·4·D_PAD, the outputs BH·D_PAD.
        unsafe { cuda_kernels::launch(stats, (bh as u32, 1, 1), launch) }?;
    }

    // q (with the softmax scale in log2 units folded in) and centred k to INT8 per token.
    let qk_factor = (scale * std::f64::consts::LOG2_E) as f32;
    let inv_seq_k = 1.0 / lk as f32;
    let quantize = |image, x: &_, [sb, sh, sl]: [i64; 3], seq: i32, pad: i32, factor: f32| {
        let padded = pad as usize;
        // Bytes holding INT8 values (u8 is what the allocator offers).
        let out: CudaSlice<u8> = output(&cuda, &[bh, padded, d_pad])?;
        let scales: CudaSlice<f32> = output(&cuda, &[bh, padded])?;
        let func = cuda_kernels::function(&cuda, image)?;
        let mut launch = stream.launch_builder(&func);
        launch.arg(x).arg(&k_sum).arg(&out).arg(&scales);
        launch.arg(&seq).arg(&pad).arg(&heads);
        launch
            .arg(&sb)
            .arg(&sh)
            .arg(&sl)
            .arg(&factor)
            .arg(&inv_seq_k);
        let grid = ((padded / QUANTIZE_ROWS) as u32, bh as u32, 1);
        // SAFETY: matches `quantize_rows`; the input covers B·H·seq·D through its strides,
        // the outputs hold BH·pad·D_PAD and BH·pad.
        unsafe { cuda_kernels::launch(image, grid, launch) }?;
        Ok::<_, candle_core::Error>((out, scales))
    };
    let (q8, q_scales) = quantize(rows_q, &qv, [sq_b, sq_h, sq_l], seq_q, pad_q, qk_factor)?;

    // v minus its mean to FP8 per channel, transposed to `[BH, D_PAD, Lk_pad]` (its keys
    // permuted for the warp-specialised kernel), where the kernel reads v so: the last
    // quantizer `helper_names` lists.
    let vt8 = match helpers.get(4) {
        Some(&image) => {
            let vt8: CudaSlice<u8> = output(&cuda, &[bh, d_pad, lk_pad])?;
            let func = cuda_kernels::function(&cuda, image)?;
            let mut launch = stream.launch_builder(&func);
            launch.arg(&vv).arg(&v_mean).arg(&v_range).arg(&vt8);
            launch.arg(&seq_k).arg(&pad_k).arg(&heads);
            launch.arg(&sv_b).arg(&sv_h).arg(&sv_l);
            let grid = ((lk_pad / QUANTIZE_V_KEYS) as u32, bh as u32, 1);
            // SAFETY: matches `quantize_v`; v covers B·H·Lk·D through its strides, the output
            // holds BH·D_PAD·Lk_pad bytes, the statistics BH·D_PAD.
            unsafe { cuda_kernels::launch(image, grid, launch) }?;
            Some(vt8)
        }
        None => None,
    };

    if let Some(boxes) = &kernel.tma {
        // Centred k to INT8 with one scale per block of PAD_TOKENS (the kernel's key block).
        let k_blocks = lk_pad / PAD_TOKENS;
        let k8: CudaSlice<u8> = output(&cuda, &[bh, lk_pad, d_pad])?;
        let k_scales: CudaSlice<f32> = output(&cuda, &[bh, k_blocks])?;
        {
            let image = helpers[3];
            let func = cuda_kernels::function(&cuda, image)?;
            let mut launch = stream.launch_builder(&func);
            launch.arg(&kv).arg(&k_sum).arg(&k8).arg(&k_scales);
            launch.arg(&seq_k).arg(&pad_k).arg(&heads);
            launch.arg(&sk_b).arg(&sk_h).arg(&sk_l).arg(&inv_seq_k);
            let grid = (k_blocks as u32, bh as u32, 1);
            // SAFETY: matches `quantize_k_blocks`; k covers B·H·Lk·D through its strides, the
            // outputs hold BH·Lk_pad·D_PAD bytes and BH·(Lk_pad / PAD_TOKENS) scales.
            unsafe { cuda_kernels::launch(image, grid, launch) }?;
        }
        let out: CudaSlice<bf16> = output(&cuda, &[b, lq, h, d])?;
        let (so_b, so_h, so_m) = ((lq * h * d) as i64, d as i64, (h * d) as i64);
        let (q_ptr, _q_read) = q8.device_ptr(&stream);
        let (k_ptr, _k_read) = k8.device_ptr(&stream);
        let mut descriptors: Vec<(TmaDescriptor, [i32; 2], [i64; 2])> = vec![
            (
                int8_rows_descriptor(q_ptr, bh * lq_pad, d_pad, boxes.q_rows)?,
                [(bh * lq_pad) as i32, d_pad as i32],
                [d_pad as i64, 1],
            ),
            (
                int8_rows_descriptor(k_ptr, bh * lk_pad, d_pad, boxes.kv_rows)?,
                [(bh * lk_pad) as i32, d_pad as i32],
                [d_pad as i64, 1],
            ),
        ];
        // v as the kernel reads it: the model's tensor through a row view, or the FP8 copy.
        let fp8_values = boxes.values == Values::Fp8Transposed;
        let (v_ptr, _v_read) = match &vt8 {
            Some(vt8) => vt8.device_ptr(&stream),
            None => vv.device_ptr(&stream),
        };
        // The bf16 kernel finds each (batch, head) of v as a row of its view (`sv_n`).
        let sv_n = match boxes.values {
            Values::Bf16Rows => {
                let v_view = RowView::of(vl).map_err(candle_core::Error::Msg)?;
                descriptors.push((
                    v_view.descriptor(v_ptr, boxes.kv_rows, boxes)?,
                    [v_view.rows as i32, v_view.row_stride as i32],
                    [v_view.row_stride as i64, 1],
                ));
                v_view.row_stride as i64
            }
            Values::Fp8Transposed => {
                descriptors.push((
                    int8_rows_descriptor(v_ptr, bh * d_pad, lk_pad, d_pad as u32)?,
                    [(bh * d_pad) as i32, lk_pad as i32],
                    [lk_pad as i64, 1],
                ));
                0
            }
        };
        laps.lap(QUANTIZERS_REGION)?;
        let image = &kernel.image;
        let func = cuda_kernels::function(&cuda, image)?;
        let mut launch = stream.launch_builder(&func);
        for (descriptor, shape, strides) in &descriptors {
            launch.arg(descriptor).arg(&shape[0]).arg(&shape[1]);
            launch.arg(&strides[0]).arg(&strides[1]);
        }
        launch.arg(&q_scales).arg(&k_scales);
        if fp8_values {
            launch.arg(&v_mean).arg(&v_range);
        }
        launch
            .arg(&out)
            .arg(&seq_q)
            .arg(&seq_k)
            .arg(&pad_q)
            .arg(&pad_k)
            .arg(&heads);
        if !fp8_values {
            launch.arg(&sv_b).arg(&sv_h).arg(&sv_n);
        }
        launch.arg(&so_b).arg(&so_h).arg(&so_m);
        let grid = (lq.div_ceil(kernel.block_m) as u32, bh as u32, 1);
        // SAFETY: matches `attention_i8` (bf16 v) or `attention_i8f8` (FP8 vᵀ, whose statistics
        // hold BH·D_PAD with D_PAD = D = 128 here); the INT8 copies and vᵀ are padded to
        // Lq_pad and Lk_pad (multiples of every box) and their descriptors cover exactly them,
        // v's view covers v (checked in `unsupported`), `out` holds B·Lq·H·D.
        unsafe { cuda_kernels::launch(image, grid, launch) }?;
        laps.lap(KERNEL_REGION)?;
        return wrap(out, cuda, &[b, lq, h, d]).transpose(1, 2);
    }
    let (k8, k_scales) = quantize(helpers[3], &kv, [sk_b, sk_h, sk_l], seq_k, pad_k, 1.0)?;
    let Some(vt8) = vt8 else {
        candle_core::bail!("8-bit attention {}: no v quantizer", kernel.image.name)
    };

    laps.lap(QUANTIZERS_REGION)?;
    // The attention itself, writing `[B, Lq, H, D]`.
    let out: CudaSlice<bf16> = output(&cuda, &[b, lq, h, d])?;
    {
        let (so_b, so_h, so_m) = ((lq * h * d) as i64, d as i64, (h * d) as i64);
        let image = &kernel.image;
        let func = cuda_kernels::function(&cuda, image)?;
        let mut launch = stream.launch_builder(&func);
        launch
            .arg(&q8)
            .arg(&k8)
            .arg(&vt8)
            .arg(&q_scales)
            .arg(&k_scales)
            .arg(&v_mean)
            .arg(&v_range);
        launch
            .arg(&out)
            .arg(&seq_q)
            .arg(&seq_k)
            .arg(&pad_q)
            .arg(&pad_k)
            .arg(&heads);
        launch.arg(&so_b).arg(&so_h).arg(&so_m);
        let grid = (lq.div_ceil(kernel.block_m) as u32, bh as u32, 1);
        // SAFETY: matches `attention_fwd`; the quantized copies are padded to Lq_pad and
        // Lk_pad (multiples of every block size), `out` holds B·Lq·H·D.
        unsafe { cuda_kernels::launch(image, grid, launch) }?;
    }
    laps.lap(KERNEL_REGION)?;
    wrap(out, cuda, &[b, lq, h, d]).transpose(1, 2)
}

/// Only bf16 inputs are quantized (the model's compute dtype on the GPU).
pub fn applies(q: &Tensor) -> bool {
    q.device().is_cuda() && q.dtype() == DType::BF16
}
