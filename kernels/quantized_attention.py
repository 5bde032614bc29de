"""8-bit attention for vaced's CUDA engine (the SageAttention recipe): q·kᵀ on INT8 and p·v on
FP8 (e4m3) tensor cores, twice the bf16 rate on Hopper, with f32 softmax and accumulation.

The kernels, launched in order by src/engine/attention/quantized_cuda.rs. For head width 128
the warp-specialised kernel of kernels/flash_attention_i8.py (INT8 q·kᵀ, bf16 p·v) replaces
the last three: quantize_k_blocks gives k one scale per block of 128 tokens, v stays bf16.
  column_partials, column_stats
                 per (batch·head, channel): the sum of k over the tokens, the mean of v
                 and the largest |v − mean| (partial sums over chunks of tokens, then
                 their reduction)
  quantize_rows  q or k → int8 with one scale per token (k minus its mean first, which
                 changes no softmax row but leaves the quantizer only the variation)
  quantize_v     v minus its mean → fp8 scaled per channel, stored transposed ([BH, D, L])
                 because FP8 wgmma reads its B operand along the reduction axis; the mean
                 is added back after the softmax (rows of p sum to one), so fp8's relative
                 precision goes to the variation, not to a shared offset
  attention_fwd  the online-softmax loop; p is scaled by 448 into fp8's range

Token axes are padded to a multiple of PAD_TOKENS and head widths to a power of two D_PAD
with zeros (and zero scales), so the main loop loads without masks; only the last key block
masks its scores. Compiled ahead of time
for sm_90 by kernels/compile.py.
"""

import triton
import triton.language as tl

# Token axes of the quantized tensors are padded to a multiple of this (≥ every BLOCK_N).
PAD_TOKENS = 128
# log2 of 448, the largest finite e4m3 value: p ∈ [0, 1] is scaled to use the whole range.
LOG2_FP8_MAX = tl.constexpr(8.807354922057604)


# Keys per program of quantize_v (QUANTIZE_V_KEYS in src/engine/attention/quantized_cuda.rs,
# which sizes the grid: a mismatch leaves part of v's copy unwritten).
V_KEYS = 128
# Tokens per program of column_partials: enough programs to fill the GPU at the models'
# lengths (12 heads × 32760 tokens → 384), each reading whole 256-byte rows.
STATS_CHUNK = 1024
# Rows column_partials loads per iteration: with 4 warps and 128 channels, 8 values a thread
# and accumulator (32 registers for the four).
PARTIALS_ROWS = 8


@triton.jit
def _column_step(k_base, v_base, rows, sk_l, sv_l, ok, ksum, vsum, vmax, vmin, MASKED: tl.constexpr):
    """column_partials' accumulators after rows `rows` (element by element: no reduction);
    `ok` masks the loads where MASKED."""
    k_ptrs = k_base + rows.to(tl.int64)[:, None] * sk_l
    v_ptrs = v_base + rows.to(tl.int64)[:, None] * sv_l
    if MASKED:
        k = tl.load(k_ptrs, mask=ok, other=0.0).to(tl.float32)
        v = tl.load(v_ptrs, mask=ok, other=0.0).to(tl.float32)
    else:
        k = tl.load(k_ptrs).to(tl.float32)
        v = tl.load(v_ptrs).to(tl.float32)
    ksum += k
    vsum += v
    if MASKED:
        vmax = tl.maximum(vmax, tl.where(ok, v, float("-inf")))
        vmin = tl.minimum(vmin, tl.where(ok, v, float("inf")))
    else:
        vmax = tl.maximum(vmax, v)
        vmin = tl.minimum(vmin, v)
    return ksum, vsum, vmax, vmin


@triton.jit
def column_partials(K, V, PART, seq, heads, sk_b, sk_h, sk_l, sv_b, sv_h, sv_l,
                    HEAD_DIM: tl.constexpr, D_PAD: tl.constexpr, BLOCK_L: tl.constexpr, CHUNK: tl.constexpr):
    """One program: all channels of one (batch, head) over CHUNK tokens. PART f32
    [BH, chunks, 4, D_PAD]: the chunk's sum of k, sum of v, max of v, min of v.

    Each thread accumulates its own elements of BLOCK_L rows and the rows are reduced
    once at the end: reducing every iteration (across warps, through shared memory) made the
    loop 12 barriers long and the pass 0.98 ms at 14B (40 × 75600 tokens) against ~0.36 for
    its bytes (H200)."""
    bh = tl.program_id(0)
    chunk = tl.program_id(1)
    b = bh // heads
    h = bh % heads
    offs_l = tl.arange(0, BLOCK_L)
    offs_d = tl.arange(0, D_PAD)
    d_ok = (offs_d < HEAD_DIM)[None, :]
    k_base = K + b.to(tl.int64) * sk_b + h.to(tl.int64) * sk_h + offs_d[None, :]
    v_base = V + b.to(tl.int64) * sv_b + h.to(tl.int64) * sv_h + offs_d[None, :]
    ksum = tl.zeros([BLOCK_L, D_PAD], dtype=tl.float32)
    vsum = tl.zeros([BLOCK_L, D_PAD], dtype=tl.float32)
    vmax = tl.full([BLOCK_L, D_PAD], float("-inf"), dtype=tl.float32)
    vmin = tl.full([BLOCK_L, D_PAD], float("inf"), dtype=tl.float32)
    start = chunk * CHUNK
    end = tl.minimum(seq, start + CHUNK)
    full = start + (end - start) // BLOCK_L * BLOCK_L
    # Whole row blocks load without a mask (padded head widths still mask their channels).
    ok = (offs_l < BLOCK_L)[:, None] & d_ok
    for l0 in range(start, full, BLOCK_L):
        ksum, vsum, vmax, vmin = _column_step(k_base, v_base, l0 + offs_l, sk_l, sv_l, ok, ksum, vsum, vmax,
                                              vmin, HEAD_DIM < D_PAD)
    if full < end:
        rows = full + offs_l
        ksum, vsum, vmax, vmin = _column_step(k_base, v_base, rows, sk_l, sv_l, (rows < end)[:, None] & d_ok,
                                              ksum, vsum, vmax, vmin, True)
    out = PART + (bh * tl.num_programs(1) + chunk).to(tl.int64) * 4 * D_PAD + offs_d
    tl.store(out, tl.sum(ksum, 0))
    tl.store(out + D_PAD, tl.sum(vsum, 0))
    tl.store(out + 2 * D_PAD, tl.max(vmax, 0))
    tl.store(out + 3 * D_PAD, tl.min(vmin, 0))


@triton.jit
def column_stats(PART, KSUM, VMEAN, VRANGE, seq, chunks, HEAD_DIM: tl.constexpr, D_PAD: tl.constexpr):
    """One program per (batch, head): column_partials' chunks, in order (deterministic: no
    atomics) → the sum of k over the tokens, the mean of v and the largest |v − mean|, f32
    [BH, D_PAD], zero past HEAD_DIM."""
    bh = tl.program_id(0)
    offs_d = tl.arange(0, D_PAD)
    ksum = tl.zeros([D_PAD], dtype=tl.float32)
    vsum = tl.zeros([D_PAD], dtype=tl.float32)
    vmax = tl.full([D_PAD], float("-inf"), dtype=tl.float32)
    vmin = tl.full([D_PAD], float("inf"), dtype=tl.float32)
    for c in range(0, chunks):
        part = PART + (bh * chunks + c).to(tl.int64) * 4 * D_PAD + offs_d
        ksum += tl.load(part)
        vsum += tl.load(part + D_PAD)
        vmax = tl.maximum(vmax, tl.load(part + 2 * D_PAD))
        vmin = tl.minimum(vmin, tl.load(part + 3 * D_PAD))
    vmean = vsum / seq
    vrange = tl.maximum(vmax - vmean, vmean - vmin)
    live = offs_d < HEAD_DIM
    tl.store(KSUM + bh * D_PAD + offs_d, ksum)
    tl.store(VMEAN + bh * D_PAD + offs_d, tl.where(live, vmean, 0.0))
    tl.store(VRANGE + bh * D_PAD + offs_d, tl.where(live, vrange, 0.0))


@triton.jit
def _load_rows(X, bh, heads, rows, offs_d, seq, sx_b, sx_h, sx_l, HEAD_DIM: tl.constexpr):
    """Rows `rows` × channels `offs_d` of one (batch·head) of a strided [B, H, L, D] bf16
    tensor, in f32, zero outside it; and the mask of what was inside."""
    b = bh // heads
    h = bh % heads
    ok = (rows < seq)[:, None] & (offs_d < HEAD_DIM)[None, :]
    x = tl.load(X + b.to(tl.int64) * sx_b + h.to(tl.int64) * sx_h + rows.to(tl.int64)[:, None] * sx_l
                + offs_d[None, :], mask=ok, other=0.0).to(tl.float32)
    return x, ok


@triton.jit
def quantize_rows(X, MEAN_SUM, OUT, SCALES, seq, l_pad, heads, sx_b, sx_h, sx_l, factor, inv_seq,
                  HEAD_DIM: tl.constexpr, D_PAD: tl.constexpr, BLOCK_L: tl.constexpr,
                  CENTER: tl.constexpr):
    """int8(round((x − mean)·factor / s)) with s = max|(x − mean)·factor| / 127 per token.
    OUT int8 [BH, l_pad, D_PAD], SCALES f32 [BH, l_pad]; padding gets zeros."""
    bh = tl.program_id(1)
    rows = tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_d = tl.arange(0, D_PAD)
    x, ok = _load_rows(X, bh, heads, rows, offs_d, seq, sx_b, sx_h, sx_l, HEAD_DIM)
    if CENTER:
        mean = tl.load(MEAN_SUM + bh * D_PAD + offs_d) * inv_seq
        x = tl.where(ok, x - mean[None, :], 0.0)
    x = x * factor
    # A zero row keeps a tiny positive scale: the attention kernel multiplies by it.
    amax = tl.maximum(tl.max(tl.abs(x), 1), 1e-30)
    scale = amax / 127.0
    inv = 127.0 / amax
    xq = x * inv[:, None]
    # Round half away from zero, as a float → int conversion would truncate.
    xq = tl.where(xq >= 0, xq + 0.5, xq - 0.5).to(tl.int8)
    base = bh.to(tl.int64) * l_pad
    tl.store(OUT + (base + rows.to(tl.int64))[:, None] * D_PAD + offs_d[None, :], xq)
    tl.store(SCALES + base + rows, scale)


@triton.jit
def quantize_k_blocks(X, MEAN_SUM, OUT, SCALES, seq, l_pad, heads, sx_b, sx_h, sx_l, inv_seq,
                      HEAD_DIM: tl.constexpr, D_PAD: tl.constexpr, BLOCK_L: tl.constexpr):
    """For the warp-specialised kernel (kernels/flash_attention_i8.py): int8(round((k − mean)
    / s)) with one s = max|k − mean| / 127 per block of BLOCK_L tokens, so that the kernel
    applies each key block's scale once per row instead of once per score. OUT int8
    [BH, l_pad, D_PAD], SCALES f32 [BH, l_pad / BLOCK_L]; padding gets zeros."""
    blk = tl.program_id(0)
    bh = tl.program_id(1)
    rows = blk * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_d = tl.arange(0, D_PAD)
    x, ok = _load_rows(X, bh, heads, rows, offs_d, seq, sx_b, sx_h, sx_l, HEAD_DIM)
    mean = tl.load(MEAN_SUM + bh * D_PAD + offs_d) * inv_seq
    x = tl.where(ok, x - mean[None, :], 0.0)
    amax = tl.maximum(tl.max(tl.max(tl.abs(x), 1), 0), 1e-30)
    xq = x * (127.0 / amax)
    xq = tl.where(xq >= 0, xq + 0.5, xq - 0.5).to(tl.int8)
    base = bh.to(tl.int64) * l_pad
    tl.store(OUT + (base + rows.to(tl.int64))[:, None] * D_PAD + offs_d[None, :], xq)
    tl.store(SCALES + bh.to(tl.int64) * (l_pad // BLOCK_L) + blk, amax / 127.0)


@triton.jit
def quantize_v(V, VMEAN, VRANGE, OUT, seq, l_pad, heads, sv_b, sv_h, sv_l,
               HEAD_DIM: tl.constexpr, D_PAD: tl.constexpr, BLOCK_L: tl.constexpr, PERMUTED: tl.constexpr):
    """fp8((v − mean) · 448 / range) per channel, stored transposed: OUT fp8
    [BH, D_PAD, l_pad]; padding gets zeros. PERMUTED stores the keys of each group of 32 in
    the order kernels/flash_attention_i8f8.py holds its probabilities in (key 16a + 8b + 2t + e
    at 16a + 4t + 2b + e)."""
    bh = tl.program_id(1)
    rows = tl.program_id(0) * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_d = tl.arange(0, D_PAD)
    v, ok = _load_rows(V, bh, heads, rows, offs_d, seq, sv_b, sv_h, sv_l, HEAD_DIM)
    vmean = tl.load(VMEAN + bh * D_PAD + offs_d)
    vrange = tl.load(VRANGE + bh * D_PAD + offs_d)
    inv = tl.where(vrange > 0, 448.0 / vrange, 0.0)
    vq = tl.where(ok, (v - vmean[None, :]) * inv[None, :], 0.0).to(tl.float8e4nv)
    if PERMUTED:
        # Reorder the tile's keys in registers, so the rows still store as contiguous bytes.
        vq = vq.reshape([BLOCK_L // 32, 2, 2, 4, 2, D_PAD]).permute(0, 1, 3, 2, 4, 5).reshape([BLOCK_L, D_PAD])
    out = OUT + bh.to(tl.int64) * D_PAD * l_pad + offs_d[:, None].to(tl.int64) * l_pad + rows[None, :]
    tl.store(out, tl.trans(vq))


@triton.jit
def _attend_block(acc, m_i, l_i, q, qs, k_ptrs, ks_ptrs, vt_ptrs, offs_n, n_start, seq_k,
                  BLOCK_N: tl.constexpr, MASKED: tl.constexpr):
    """One key block. Scores are int32 q·kᵀ times the k scales; the q scale (per row, > 0)
    and the shift to p ∈ [0, 448] go into one fused multiply-add before exp2, so l and the
    accumulator carry the same factor 448."""
    k = tl.load(k_ptrs)
    ks = tl.load(ks_ptrs)
    s = tl.dot(q, k, out_dtype=tl.int32).to(tl.float32) * ks[None, :]
    if MASKED:
        s = tl.where((n_start + offs_n < seq_k)[None, :], s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1) * qs)
    alpha = tl.math.exp2(m_i - m_new)
    p = tl.math.exp2(tl.fma(s, qs[:, None], LOG2_FP8_MAX - m_new[:, None]))
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    vt = tl.load(vt_ptrs)
    # Accumulate each block's product in f32 (Hopper's FP8 accumulator is narrower).
    acc = tl.dot(p.to(tl.float8e4nv), tl.trans(vt), acc, max_num_imprecise_acc=BLOCK_N)
    return acc, m_new, l_i


@triton.jit
def attention_fwd(Q, K, VT, QS, KS, VMEAN, VRANGE, O, seq_q, seq_k, l_pad_q, l_pad_k, heads,
                  so_b, so_h, so_m,
                  HEAD_DIM: tl.constexpr, D_PAD: tl.constexpr, BLOCK_M: tl.constexpr,
                  BLOCK_N: tl.constexpr):
    """One program: BLOCK_M queries of one (batch, head) against all keys. Scores are
    already in log2 units (the softmax scale·log2 e was folded into q's quantization)."""
    start_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // heads
    h = bh % heads
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D_PAD)
    q_row0 = bh.to(tl.int64) * l_pad_q
    q = tl.load(Q + (q_row0 + offs_m)[:, None] * D_PAD + offs_d[None, :])
    qs = tl.load(QS + q_row0 + offs_m)
    k_row0 = bh.to(tl.int64) * l_pad_k
    # kᵀ tile [D_PAD, BLOCK_N]; vᵀ tile [D_PAD, BLOCK_N].
    k_ptrs = K + (k_row0 + offs_n)[None, :] * D_PAD + offs_d[:, None]
    ks_ptrs = KS + k_row0 + offs_n
    vt_ptrs = VT + bh.to(tl.int64) * D_PAD * l_pad_k + offs_d[:, None].to(tl.int64) * l_pad_k + offs_n[None, :]
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, D_PAD], dtype=tl.float32)
    full = (seq_k // BLOCK_N) * BLOCK_N
    for n_start in range(0, full, BLOCK_N):
        acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, qs, k_ptrs + n_start * D_PAD, ks_ptrs + n_start,
                                      vt_ptrs + n_start, offs_n, n_start, seq_k, BLOCK_N, MASKED=False)
    if full < seq_k:
        acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, qs, k_ptrs + full * D_PAD, ks_ptrs + full,
                                      vt_ptrs + full, offs_n, full, seq_k, BLOCK_N, MASKED=True)
    vmean = tl.load(VMEAN + bh * D_PAD + offs_d)
    vrange = tl.load(VRANGE + bh * D_PAD + offs_d)
    out = acc * (vrange / 448.0)[None, :] / l_i[:, None] + vmean[None, :]
    o_ptrs = O + b.to(tl.int64) * so_b + h.to(tl.int64) * so_h + offs_m[:, None].to(tl.int64) * so_m + offs_d[None, :]
    tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=(offs_m < seq_q)[:, None] & (offs_d < HEAD_DIM)[None, :])


STRIDES_K = {"sk_b": "i64", "sk_h": "i64", "sk_l": "i64"}
STRIDES_V = {"sv_b": "i64", "sv_h": "i64", "sv_l": "i64"}

# (block_m, block_n, num_warps, num_stages) by head width; the first of a width is its
# default. Several for 128, the models' width, for `vaced bench --only attention`; one for
# each of the test models' widths.
ATTENTION_TILES = {
    128: [(64, 128, 4, 3), (128, 128, 8, 3), (64, 64, 4, 3)],
    64: [(128, 64, 4, 3)],
    48: [(128, 64, 4, 3)],
    32: [(128, 64, 4, 3)],
}


# name: (kernel, signature, constexprs, num_warps, num_stages, 16-aligned arguments).
def variants():
    out = {}
    for head_dim, tiles in ATTENTION_TILES.items():
        d_pad = max(32, triton.next_power_of_2(head_dim))
        dims = {"HEAD_DIM": head_dim, "D_PAD": d_pad}
        out[f"qattn_partials_hd{head_dim}"] = (
            column_partials,
            {"K": "*bf16", "V": "*bf16", "PART": "*fp32", "seq": "i32", "heads": "i32", **STRIDES_K, **STRIDES_V,
             "HEAD_DIM": "constexpr", "D_PAD": "constexpr", "BLOCK_L": "constexpr", "CHUNK": "constexpr"},
            {**dims, "BLOCK_L": PARTIALS_ROWS, "CHUNK": STATS_CHUNK}, 4, 1,
            ["K", "V", "sk_b", "sk_h", "sk_l", "sv_b", "sv_h", "sv_l"])
        out[f"qattn_stats_hd{head_dim}"] = (
            column_stats,
            {"PART": "*fp32", "KSUM": "*fp32", "VMEAN": "*fp32", "VRANGE": "*fp32", "seq": "i32", "chunks": "i32",
             "HEAD_DIM": "constexpr", "D_PAD": "constexpr"},
            dims, 4, 1, [])
        for center in (False, True):
            out[f"qattn_rows_hd{head_dim}_{'k' if center else 'q'}"] = (
                quantize_rows,
                {"X": "*bf16", "MEAN_SUM": "*fp32", "OUT": "*i8", "SCALES": "*fp32", "seq": "i32",
                 "l_pad": "i32", "heads": "i32", "sx_b": "i64", "sx_h": "i64", "sx_l": "i64",
                 "factor": "fp32", "inv_seq": "fp32",
                 "HEAD_DIM": "constexpr", "D_PAD": "constexpr", "BLOCK_L": "constexpr", "CENTER": "constexpr"},
                {**dims, "BLOCK_L": 64, "CENTER": center}, 4, 1,
                ["X", "OUT", "sx_b", "sx_h", "sx_l"])
        if head_dim == 128:
            out[f"qattn_kblocks_hd{head_dim}"] = (
                quantize_k_blocks,
                {"X": "*bf16", "MEAN_SUM": "*fp32", "OUT": "*i8", "SCALES": "*fp32", "seq": "i32",
                 "l_pad": "i32", "heads": "i32", "sx_b": "i64", "sx_h": "i64", "sx_l": "i64", "inv_seq": "fp32",
                 "HEAD_DIM": "constexpr", "D_PAD": "constexpr", "BLOCK_L": "constexpr"},
                {**dims, "BLOCK_L": PAD_TOKENS}, 8, 1,
                ["X", "OUT", "sx_b", "sx_h", "sx_l"])
        out[f"qattn_v_hd{head_dim}"] = (
            quantize_v,
            {"V": "*bf16", "VMEAN": "*fp32", "VRANGE": "*fp32", "OUT": "*fp8e4nv", "seq": "i32", "l_pad": "i32", "heads": "i32",
             **STRIDES_V, "HEAD_DIM": "constexpr", "D_PAD": "constexpr", "BLOCK_L": "constexpr",
             "PERMUTED": "constexpr"},
            {**dims, "BLOCK_L": V_KEYS, "PERMUTED": False}, 4, 1,
            ["V", "OUT", "sv_b", "sv_h", "sv_l", "l_pad"])
        if head_dim == 128:
            out[f"qattn_vperm_hd{head_dim}"] = (
                quantize_v, out[f"qattn_v_hd{head_dim}"][1], {**dims, "BLOCK_L": V_KEYS, "PERMUTED": True}, 4, 1,
                ["V", "OUT", "sv_b", "sv_h", "sv_l", "l_pad"])
        for block_m, block_n, warps, stages in tiles:
            out[f"qattn_hd{head_dim}_m{block_m}_n{block_n}_w{warps}_s{stages}"] = (
                attention_fwd,
                {"Q": "*i8", "K": "*i8", "VT": "*fp8e4nv", "QS": "*fp32", "KS": "*fp32", "VMEAN": "*fp32",
                 "VRANGE": "*fp32",
                 "O": "*bf16", "seq_q": "i32", "seq_k": "i32", "l_pad_q": "i32", "l_pad_k": "i32",
                 "heads": "i32", "so_b": "i64", "so_h": "i64", "so_m": "i64",
                 "HEAD_DIM": "constexpr", "D_PAD": "constexpr", "BLOCK_M": "constexpr", "BLOCK_N": "constexpr"},
                {**dims, "BLOCK_M": block_m, "BLOCK_N": block_n}, warps, stages,
                ["Q", "K", "VT", "O", "l_pad_k", "so_b", "so_h", "so_m"])
    return out
