"""Fused scaled-dot-product attention (FlashAttention-2 style) for vaced's CUDA engine.

softmax(q·kᵀ·scale)·v over [B, H, L, D] tensors in bf16, f32 accumulation, online softmax,
never materialising the scores. Written in Triton and compiled ahead of time to cubins for
sm_90 (no GPU needed to compile) by kernels/compile.py, which build.rs runs for
`--features cuda` builds; src/engine/attention/flash_cuda.rs launches them. Kernel
parameters are the non-constexpr arguments below, in order.
"""

import triton
import triton.language as tl


@triton.jit
def _attend_block(acc, m_i, l_i, q, k_ptrs, v_ptrs, offs_n, d_ok, n_start, seq_k, qk_scale,
                  MASKED: tl.constexpr, EVEN_D: tl.constexpr):
    """One key block: scores, online-softmax update, accumulate p·v."""
    if MASKED:
        in_range = (n_start + offs_n) < seq_k
        if EVEN_D:
            k = tl.load(k_ptrs, mask=in_range[None, :], other=0.0)
            v = tl.load(v_ptrs, mask=in_range[:, None], other=0.0)
        else:
            k = tl.load(k_ptrs, mask=in_range[None, :] & d_ok[:, None], other=0.0)
            v = tl.load(v_ptrs, mask=in_range[:, None] & d_ok[None, :], other=0.0)
    elif EVEN_D:
        k = tl.load(k_ptrs)
        v = tl.load(v_ptrs)
    else:
        k = tl.load(k_ptrs, mask=d_ok[:, None], other=0.0)
        v = tl.load(v_ptrs, mask=d_ok[None, :], other=0.0)
    qk = tl.dot(q, k) * qk_scale
    if MASKED:
        qk = tl.where(in_range[None, :], qk, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(qk, 1))
    p = tl.math.exp2(qk - m_new[:, None])
    alpha = tl.math.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None]
    acc = tl.dot(p.to(v.dtype), v, acc)
    return acc, m_new, l_i


@triton.jit
def attention_fwd(Q, K, V, O, seq_q, seq_k, heads, qk_scale,
                  sq_b, sq_h, sq_m, sk_b, sk_h, sk_n, sv_b, sv_h, sv_n, so_b, so_h, so_m,
                  HEAD_DIM: tl.constexpr, D_PAD: tl.constexpr, BLOCK_M: tl.constexpr,
                  BLOCK_N: tl.constexpr):
    """One program: BLOCK_M queries of one (batch, head) against all keys.

    Head widths that are not a power of two (the test models' 48) are padded to D_PAD with
    zeros, which changes neither q·kᵀ nor the padded output columns that are never stored.
    """
    EVEN_D: tl.constexpr = HEAD_DIM == D_PAD
    start_m = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // heads
    h = bh % heads
    offs_m = start_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D_PAD)
    d_ok = offs_d < HEAD_DIM
    q_ptrs = Q + b.to(tl.int64) * sq_b + h.to(tl.int64) * sq_h + offs_m[:, None] * sq_m + offs_d[None, :]
    q = tl.load(q_ptrs, mask=(offs_m < seq_q)[:, None] & d_ok[None, :], other=0.0)
    k_base = K + b.to(tl.int64) * sk_b + h.to(tl.int64) * sk_h
    v_base = V + b.to(tl.int64) * sv_b + h.to(tl.int64) * sv_h
    # kᵀ tile [HEAD_DIM, BLOCK_N] and v tile [BLOCK_N, HEAD_DIM].
    k_ptrs = k_base + offs_n[None, :] * sk_n + offs_d[:, None]
    v_ptrs = v_base + offs_n[:, None] * sv_n + offs_d[None, :]
    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, D_PAD], dtype=tl.float32)
    full = (seq_k // BLOCK_N) * BLOCK_N
    for n_start in range(0, full, BLOCK_N):
        acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, k_ptrs + n_start * sk_n, v_ptrs + n_start * sv_n,
                                      offs_n, d_ok, n_start, seq_k, qk_scale, MASKED=False, EVEN_D=EVEN_D)
    if full < seq_k:
        acc, m_i, l_i = _attend_block(acc, m_i, l_i, q, k_ptrs + full * sk_n, v_ptrs + full * sv_n,
                                      offs_n, d_ok, full, seq_k, qk_scale, MASKED=True, EVEN_D=EVEN_D)
    acc = acc / l_i[:, None]
    o_ptrs = O + b.to(tl.int64) * so_b + h.to(tl.int64) * so_h + offs_m[:, None] * so_m + offs_d[None, :]
    tl.store(o_ptrs, acc.to(O.dtype.element_ty), mask=(offs_m < seq_q)[:, None] & d_ok[None, :])


SIGNATURE = {
    "Q": "*bf16", "K": "*bf16", "V": "*bf16", "O": "*bf16",
    "seq_q": "i32", "seq_k": "i32", "heads": "i32", "qk_scale": "fp32",
    "sq_b": "i64", "sq_h": "i64", "sq_m": "i64", "sk_b": "i64", "sk_h": "i64", "sk_n": "i64",
    "sv_b": "i64", "sv_h": "i64", "sv_n": "i64", "so_b": "i64", "so_h": "i64", "so_m": "i64",
    "HEAD_DIM": "constexpr", "D_PAD": "constexpr", "BLOCK_M": "constexpr", "BLOCK_N": "constexpr",
}

# (head_dim, block_m, block_n, num_warps, num_stages). Several for head 128, the models'
# width, so `vaced bench --only attention` can compare (the first of a width is the default;
# on the H100 m128/n128/w8/s3 measured fastest); one each for the test models' widths.
VARIANTS = [
    (128, 128, 128, 8, 3),
    (128, 128, 64, 8, 3),
    (128, 128, 64, 4, 3),
    (128, 64, 64, 4, 3),
    (128, 128, 128, 8, 2),
    (64, 128, 64, 4, 3),
    (48, 64, 64, 4, 3),
    (32, 64, 64, 4, 3),
    (16, 64, 64, 4, 3),
]


# Pointers are 16-byte aligned and strides multiples of 16 elements: lets Triton vectorise
# loads. The Rust side checks both before launching and otherwise uses the portable path.
ALIGNED_ARGS = ["Q", "K", "V", "O", "sq_b", "sq_h", "sq_m", "sk_b", "sk_h", "sk_n", "sv_b", "sv_h",
                "sv_n", "so_b", "so_h", "so_m"]
