"""Warp-specialised 8-bit attention for Hopper, head width 128: q·kᵀ on INT8 tensor cores
(twice the bf16 rate), softmax and p·v as in the bf16 kernel (kernels/flash_attention_ws.py,
whose organisation this keeps: one TMA producer warp, two consumer warpgroups of 64 query
rows, the scores of block j+1 issued with the p·v of block j and waited for before the
softmax of block j+1).

Inputs, prepared by the quantizers in kernels/quantized_attention.py:
- Q: INT8 rows `[BH·Lq_pad, 128]`, one f32 scale per token that also carries the softmax
  scale · log2 e;
- K: INT8 rows `[BH·Lk_pad, 128]` of k minus its mean over the tokens (which changes no
  softmax row), one f32 scale per block of 128 keys;
- V: the model's bf16 tensor, read through a row view as in the bf16 kernel.

A score in log2 units is `s·qs·ks` with `s` the INT32 product. Converting `s` with I2F runs at
a quarter of the FMA rate and cost more than the halved product saved, so the kernel adds
the bits of 1.5·2²³ instead (|s| ≤ 128·127² < 2²²), which makes the float `1.5·2²³ + s`
exactly; the bias leaves through the per-row terms of the one multiply-add that forms each
exponent. Token axes of Q and K are padded to a multiple of 128 with zeros; keys past the
sequence are masked in the last block.
"""

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma, warpgroup_mma_wait

# The ping-pong turns, the row arithmetic and the last block with the store are the bf16
# kernel's.
from flash_attention_ws import _allocate, _finish, _pass_turn, _row_start, _take_turn

# Rows of queries per consumer warpgroup (one wgmma M of 64) and consumers per CTA.
ROWS_PER_CONSUMER = gl.constexpr(64)
CONSUMERS = gl.constexpr(2)

# Register budget: 12 warps (3 warpgroups) at MAXNREG each; setmaxnreg moves the producer's
# share to the consumers (the default partition gets what is left: 240 here).
MAXNREG = 168
CONSUMER_REGS = gl.constexpr(240)
PRODUCER_REGS = gl.constexpr(24)
# 1.5·2²³: a float whose last mantissa bit is worth 1, centred so negative sums stay exact.
MAGIC_BITS = gl.constexpr(0x4B400000)
MAGIC = gl.constexpr(12582912.0)


@gluon.jit
def _producer(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, bars, q_row, k_row, row_stride_v, v_off, seq_k,
              BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    q_bar, k_ready, k_empty, v_ready, v_empty, turn = bars
    q_col = 0
    k_col = 0
    v_row, v_col = _row_start(v_off, row_stride_v)
    for c in gl.static_range(2):
        mbarrier.expect(q_bar.index(c), q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [q_row + c * q_desc.block_type.shape[0], q_col], q_bar.index(c),
                                        q_smem.index(c))
    n_blocks = gl.cdiv(seq_k, BLOCK_N)
    for j in range(n_blocks):
        s = j % STAGES
        phase = (j // STAGES) & 1
        mbarrier.wait(k_empty.index(s), phase ^ 1)
        mbarrier.expect(k_ready.index(s), k_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(k_desc, [k_row + j * BLOCK_N, k_col], k_ready.index(s), k_smem.index(s))
        mbarrier.wait(v_empty.index(s), phase ^ 1)
        mbarrier.expect(v_ready.index(s), v_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(v_desc, [v_row + j * BLOCK_N, v_col], v_ready.index(s), v_smem.index(s))


@gluon.jit
def _softmax(s, m_i, r, n_valid, MASKED: gl.constexpr, BLOCK_N: gl.constexpr, s_layout: gl.constexpr):
    """INT32 scores of one key block and the per-row factor r (> 0) to log2 units → (p, new
    row max, rescale factor of the old state)."""
    s = (s + MAGIC_BITS).to(gl.float32, bitcast=True)
    bias = MAGIC * r
    if MASKED:
        cols = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
        s = gl.where((cols < n_valid)[None, :], s, float("-inf"))
    m_new = gl.maximum(m_i, gl.max(s, 1) * r - bias)
    p = gl.exp2(s * r[:, None] - (m_new + bias)[:, None])
    alpha = gl.exp2(m_i - m_new)
    return p, m_new, alpha


@gluon.jit
def _consume(c: gl.constexpr, o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qs_ptr, q_row,
             ks_ptr, HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    q_bar, k_ready, k_empty, v_ready, v_empty, turn = bars
    ROWS: gl.constexpr = ROWS_PER_CONSUMER
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, BLOCK_N, 32])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, HEAD_DIM, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_layout: gl.constexpr = gl.SliceLayout(1, s_layout)

    # Per-row factor to log2 units, times the key block's scale in each iteration.
    q_scale = gl.load(qs_ptr + q_row + c * ROWS + gl.arange(0, ROWS, layout=row_layout))
    q = q_smem.index(c)
    mbarrier.wait(q_bar.index(c), 0)
    n_blocks = gl.cdiv(seq_k, BLOCK_N)

    # Block 0: scores, softmax; its p·v is issued with the next block's scores.
    mbarrier.wait(k_ready.index(0), 0)
    s = gl.zeros([ROWS, BLOCK_N], gl.int32, s_layout)
    _take_turn(turn, c, 0)
    s = warpgroup_mma(q, k_smem.index(0).permute((1, 0)), s, use_acc=False, is_async=True)
    _pass_turn(turn, c)
    s = warpgroup_mma_wait(0, deps=(s, ))
    mbarrier.arrive(k_empty.index(0), count=1)
    m_i = gl.full([ROWS], float("-inf"), gl.float32, row_layout)
    p, m_i, alpha = _softmax(s, m_i, q_scale * gl.load(ks_ptr), seq_k, True, BLOCK_N, s_layout)
    l_i = gl.sum(p, 1)
    p_op = gl.convert_layout(p.to(gl.bfloat16), p_layout)
    acc = gl.zeros([ROWS, HEAD_DIM], gl.float32, o_layout)

    for j in range(1, n_blocks):
        st = j % STAGES
        prev = (j - 1) % STAGES
        mbarrier.wait(k_ready.index(st), (j // STAGES) & 1)
        mbarrier.wait(v_ready.index(prev), ((j - 1) // STAGES) & 1)
        _take_turn(turn, c, j)
        s = warpgroup_mma(q, k_smem.index(st).permute((1, 0)), s, use_acc=False, is_async=True)
        acc = warpgroup_mma(p_op, v_smem.index(prev), acc, is_async=True)
        _pass_turn(turn, c)
        qk_scale = q_scale * gl.load(ks_ptr + j)
        s = warpgroup_mma_wait(1, deps=(s, ))
        mbarrier.arrive(k_empty.index(st), count=1)
        if j == n_blocks - 1:
            p, m_i, alpha = _softmax(s, m_i, qk_scale, seq_k - j * BLOCK_N, True, BLOCK_N, s_layout)
        else:
            p, m_i, alpha = _softmax(s, m_i, qk_scale, 0, False, BLOCK_N, s_layout)
        acc = warpgroup_mma_wait(0, deps=(acc, ))
        mbarrier.arrive(v_empty.index(prev), count=1)
        acc = acc * gl.convert_layout(alpha, gl.SliceLayout(1, o_layout))[:, None]
        l_i = l_i * alpha + gl.sum(p, 1)
        p_op = gl.convert_layout(p.to(gl.bfloat16), p_layout)

    _finish(c, o_ptr, v_smem, bars, p_op, acc, l_i, o_off, so_m, seq_q, m_start, n_blocks, ROWS, HEAD_DIM, STAGES,
            o_layout)


@gluon.jit
def _consumer_0(o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qs_ptr, q_row, ks_ptr,
                HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    _consume(0, o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qs_ptr, q_row, ks_ptr, HEAD_DIM,
             BLOCK_N, STAGES)


@gluon.jit
def _consumer_1(q_desc, k_desc, v_desc, o_ptr, q_smem, k_smem, v_smem, bars, q_row, k_row, v_off, o_off,
                row_stride_v, so_m, seq_q, seq_k, m_start, qs_ptr, ks_ptr):
    # Worker arguments lose constexpr-ness: the tile sizes come from the buffers' shapes.
    STAGES: gl.constexpr = k_smem.type.shape[0]
    BLOCK_N: gl.constexpr = k_smem.type.shape[1]
    HEAD_DIM: gl.constexpr = k_smem.type.shape[2]
    _consume(1, o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qs_ptr, q_row, ks_ptr, HEAD_DIM,
             BLOCK_N, STAGES)


@gluon.jit
def _producer_worker(q_desc, k_desc, v_desc, o_ptr, q_smem, k_smem, v_smem, bars, q_row, k_row, v_off, o_off,
                     row_stride_v, so_m, seq_q, seq_k, m_start, qs_ptr, ks_ptr):
    STAGES: gl.constexpr = k_smem.type.shape[0]
    BLOCK_N: gl.constexpr = k_smem.type.shape[1]
    _producer(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, bars, q_row, k_row, row_stride_v, v_off, seq_k,
              BLOCK_N, STAGES)


@gluon.jit
def attention_i8(q_desc, k_desc, v_desc, QS, KS, O, seq_q, seq_k, l_pad_q, l_pad_k, heads,
                 sv_b, sv_h, sv_n, so_b, so_h, so_m, HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr,
                 STAGES: gl.constexpr, PINGPONG: gl.constexpr):
    """One CTA: 128 queries of one (batch, head) against all keys. Q and K are the padded
    INT8 copies (row `bh·l_pad + i`), QS f32 `[BH·Lq_pad]`, KS f32 `[BH, Lk_pad / BLOCK_N]`;
    V is read like the bf16 kernel's (`sv_n` is the row stride its descriptor was made
    with)."""
    start_m = gl.program_id(0)
    bh = gl.program_id(1)
    b = (bh // heads).to(gl.int64)
    h = (bh % heads).to(gl.int64)
    m_start = start_m * (CONSUMERS * ROWS_PER_CONSUMER)
    q_row = bh * l_pad_q + m_start
    k_row = bh * l_pad_k
    ks_ptr = KS + bh * (l_pad_k // BLOCK_N)
    v_off = b * sv_b + h * sv_h
    o_off = b * so_b + h * so_h

    q_smem, k_smem, v_smem, bars = _allocate(q_desc, k_desc, v_desc, STAGES, PINGPONG)

    worker_args = (q_desc, k_desc, v_desc, O, q_smem, k_smem, v_smem, bars, q_row, k_row, v_off, o_off,
                   sv_n, so_m, seq_q, seq_k, m_start, QS, ks_ptr)
    gl.warp_specialize([
        (_consumer_0, (O, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, QS, q_row, ks_ptr, HEAD_DIM,
                       BLOCK_N, STAGES)),
        (_consumer_1, worker_args),
        (_producer_worker, worker_args),
    ], [4, 1], [CONSUMER_REGS, PRODUCER_REGS])


def signature(block_n: int):
    """The kernel's signature for kernels/compile.py (descriptors carry their TMA boxes)."""
    from triton.experimental.gluon.language import NVMMASharedLayout
    import triton.language as tl

    def desc(rows, dt, name):
        layout = NVMMASharedLayout.get_default_for([rows, 128], dt)
        return f"tensordesc<{name}[{rows}, 128],{layout!r}>"

    return {
        "q_desc": desc(ROWS_PER_CONSUMER.value, tl.int8, "i8"), "k_desc": desc(block_n, tl.int8, "i8"),
        "v_desc": desc(block_n, tl.bfloat16, "bf16"), "QS": "*fp32", "KS": "*fp32", "O": "*bf16",
        "seq_q": "i32", "seq_k": "i32", "l_pad_q": "i32", "l_pad_k": "i32", "heads": "i32",
        "sv_b": "i64", "sv_h": "i64", "sv_n": "i64", "so_b": "i64", "so_h": "i64", "so_m": "i64",
        "HEAD_DIM": "constexpr", "BLOCK_N": "constexpr", "STAGES": "constexpr", "PINGPONG": "constexpr",
    }


# The output pointer and strides are 16-element aligned (checked on the Rust side).
ALIGNED_ARGS = ["O", "sv_b", "sv_h", "sv_n", "so_b", "so_h", "so_m"]

# (block_n, stages, ping-pong): the first is the default.
VARIANTS = [(128, 2, False), (128, 3, False), (128, 2, True)]
