"""Warp-specialised 8-bit attention for Hopper with both products 8-bit, head width 128:
INT8 q·kᵀ as in kernels/flash_attention_i8.py, and FP8 (e4m3) p·v, each at twice the bf16
rate (the SageAttention-2 recipe in the organisation of kernels/flash_attention_ws.py).

- V arrives as kernels/quantized_attention.py's `quantize_v` makes it with PERMUTED=True:
  v minus its per-channel mean, scaled per channel into e4m3's range, transposed to
  `[BH·128, Lk_pad]` (FP8 wgmma reads its B operand along the reduction axis), and the keys
  of every 32-key group stored in the order in which a thread holds p's columns after the
  scores' product. The probabilities then feed the p·v product from the registers they were
  computed in: the reorder below is a renaming, no data moves between threads (checked at
  compile time with assert_trivial).
- p is scaled by 448 into e4m3's range by folding log2(448) into the exponent; the row sums
  carry the same factor, so it cancels.
- p·v of one key block goes into a fresh accumulator (Hopper's FP8 products accumulate with
  fewer mantissa bits than f32, fine for 128 terms, not for 32760) and is added to the f32
  output with the previous block's rescale in one multiply-add.
"""

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma, warpgroup_mma_wait

from flash_attention_i8 import MAGIC, MAGIC_BITS
from flash_attention_ws import _allocate, _pass_turn, _stagger_release, _stagger_wait, _take_turn

ROWS_PER_CONSUMER = gl.constexpr(64)
CONSUMERS = gl.constexpr(2)
MAXNREG = 168
CONSUMER_REGS = gl.constexpr(240)
PRODUCER_REGS = gl.constexpr(24)
LOG2_FP8_MAX = gl.constexpr(8.807354922057604)
# Key blocks between the consumers' re-staggerings (flash_attention_ws._stagger_wait; every
# 8 blocks measured 131.4 ms on a 14B layer, every 32 129.6).
STAGGER_BLOCKS = gl.constexpr(32)


@gluon.jit
def _softmax(s, m_i, r, n_valid, MASKED: gl.constexpr, BLOCK_N: gl.constexpr, s_layout: gl.constexpr):
    """INT32 scores and the per-row factor r to log2 units → (p·448, new row max, rescale
    factor of the old state)."""
    s = (s + MAGIC_BITS).to(gl.float32, bitcast=True)
    bias = MAGIC * r
    if MASKED:
        cols = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
        s = gl.where((cols < n_valid)[None, :], s, float("-inf"))
    m_new = gl.maximum(m_i, gl.max(s, 1) * r - bias)
    p = gl.exp2(s * r[:, None] - (m_new + bias - LOG2_FP8_MAX)[:, None])
    alpha = gl.exp2(m_i - m_new)
    return p, m_new, alpha


@gluon.jit
def _as_operand(p, BLOCK_N: gl.constexpr, p_layout: gl.constexpr):
    """p (f32, in the scores' accumulator layout) → e4m3 A operand of the p·v product, its
    columns reordered within each 32-key group (key 16a + 8b + 2t + e → 16a + 4t + 2b + e)
    to match V's stored order, so the conversion only renames registers."""
    p = gl.reshape(p, [p.shape[0], BLOCK_N // 32, 2, 2, 4, 2])
    p = gl.permute(p, (0, 1, 2, 4, 3, 5))
    p = gl.reshape(p, [p.shape[0], BLOCK_N])
    p = gl.convert_layout(p, p_layout, assert_trivial=True)
    # Four neighbouring k of one row → one register, as wgmma reads it (Triton's own
    # conversion goes through 16-bit halves and sign extensions: ~14 instructions a register).
    p8 = gl.inline_asm_elementwise(
        "{ .reg .b16 lo, hi; cvt.rn.satfinite.e4m3x2.f32 lo, $2, $1; cvt.rn.satfinite.e4m3x2.f32 hi, $4, $3; "
        "mov.b32 $0, {lo, hi}; }", "=r,r,r,r,r", [p], dtype=gl.int8, is_pure=True, pack=4)
    return p8.to(gl.float8e4nv, bitcast=True)


@gluon.jit
def _consume(c: gl.constexpr, o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qs_ptr, q_row,
             ks_ptr, vmean_ptr, vrange_ptr, HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    q_bar, k_ready, k_empty, v_ready, v_empty, turn = bars
    ROWS: gl.constexpr = ROWS_PER_CONSUMER
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, BLOCK_N, 32])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, HEAD_DIM, 32])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=4)
    row_layout: gl.constexpr = gl.SliceLayout(1, s_layout)
    o_rows: gl.constexpr = gl.SliceLayout(1, o_layout)

    q_scale = gl.load(qs_ptr + q_row + c * ROWS + gl.arange(0, ROWS, layout=row_layout))
    mbarrier.wait(q_bar.index(c), 0)
    # q is the A operand of every scores' product: from registers (16 a thread) the products
    # read only k from shared memory (1.3B layer 7.98 → 7.76 ms, 14B 139.4 → 134.9).
    q = q_smem.index(c).load(gl.DotOperandLayout(operand_index=0, parent=s_layout, k_width=4))
    n_blocks = gl.cdiv(seq_k, BLOCK_N)

    _stagger_wait(turn, c, 0, True)
    mbarrier.wait(k_ready.index(0), 0)
    s = gl.zeros([ROWS, BLOCK_N], gl.int32, s_layout)
    # With ping-pong a consumer holds the turn from issuing a block's p·v to issuing the next
    # block's scores (its tensor-core phase), and runs its softmax while the other holds it.
    _take_turn(turn, c, 0)
    s = warpgroup_mma(q, k_smem.index(0).permute((1, 0)), s, use_acc=False, is_async=True)
    s = warpgroup_mma_wait(0, deps=(s, ))
    mbarrier.arrive(k_empty.index(0), count=1)
    m_i = gl.full([ROWS], float("-inf"), gl.float32, row_layout)
    l_i = gl.zeros([ROWS], gl.float32, row_layout)
    acc = gl.zeros([ROWS, HEAD_DIM], gl.float32, o_layout)
    pv = gl.zeros([ROWS, HEAD_DIM], gl.float32, o_layout)

    # Iteration j: block j+1's scores are issued, block j's softmax runs under them, then
    # block j's p·v is issued from the registers the probabilities were just converted in
    # (carried across the loop as bytes they were repacked byte by byte, ~14 instructions a
    # register) and waited for with the scores; the other consumer fills the tensor cores
    # meanwhile. The last block, whose keys may end mid-block, follows the loop.
    for j in range(0, n_blocks - 1):
        st = j % STAGES
        nxt = (j + 1) % STAGES
        _stagger_wait(turn, c, j // STAGGER_BLOCKS, (j % STAGGER_BLOCKS == 0) & (j > 0))
        mbarrier.wait(k_ready.index(nxt), ((j + 1) // STAGES) & 1)
        s_next = warpgroup_mma(q, k_smem.index(nxt).permute((1, 0)), s, use_acc=False, is_async=True)
        _pass_turn(turn, c)
        p, m_i, alpha = _softmax(s, m_i, q_scale * gl.load(ks_ptr + j), 0, False, BLOCK_N, s_layout)
        l_i = l_i * alpha + gl.sum(p, 1)
        p_op = _as_operand(p, BLOCK_N, p_layout)
        _stagger_release(turn, c, j % STAGGER_BLOCKS == 0)
        mbarrier.wait(v_ready.index(st), (j // STAGES) & 1)
        _take_turn(turn, c, j + 1)
        pv = warpgroup_mma(p_op, v_smem.index(st).permute((1, 0)), pv, use_acc=False, is_async=True)
        s = warpgroup_mma_wait(1, deps=(s_next, ))
        mbarrier.arrive(k_empty.index(nxt), count=1)
        pv = warpgroup_mma_wait(0, deps=(pv, ))
        mbarrier.arrive(v_empty.index(st), count=1)
        acc = acc * gl.convert_layout(alpha, o_rows)[:, None] + pv

    j = n_blocks - 1
    st = j % STAGES
    _pass_turn(turn, c)
    p, m_i, alpha = _softmax(s, m_i, q_scale * gl.load(ks_ptr + j), seq_k - j * BLOCK_N, True, BLOCK_N, s_layout)
    l_i = l_i * alpha + gl.sum(p, 1)
    p_op = _as_operand(p, BLOCK_N, p_layout)
    _stagger_release(turn, c, n_blocks == 1)
    mbarrier.wait(v_ready.index(st), (j // STAGES) & 1)
    _take_turn(turn, c, n_blocks)
    pv = warpgroup_mma(p_op, v_smem.index(st).permute((1, 0)), pv, use_acc=False, is_async=True)
    pv = warpgroup_mma_wait(0, deps=(pv, ))
    _pass_turn(turn, c)
    mbarrier.arrive(v_empty.index(st), count=1)
    acc = acc * gl.convert_layout(alpha, o_rows)[:, None] + pv

    cols = gl.arange(0, HEAD_DIM, layout=gl.SliceLayout(0, o_layout))
    vmean = gl.load(vmean_ptr + cols)
    vstep = gl.load(vrange_ptr + cols) / 448.0
    acc = acc / gl.convert_layout(l_i, o_rows)[:, None] * vstep[None, :] + vmean[None, :]
    rows = m_start + c * ROWS + gl.arange(0, ROWS, layout=o_rows)
    ptrs = o_ptr + o_off + rows.to(gl.int64)[:, None] * so_m + cols[None, :]
    gl.store(ptrs, acc.to(gl.bfloat16), mask=(rows < seq_q)[:, None])


@gluon.jit
def _consumer_0(o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qs_ptr, q_row, ks_ptr,
                vmean_ptr, vrange_ptr, HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    _consume(0, o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qs_ptr, q_row, ks_ptr,
             vmean_ptr, vrange_ptr, HEAD_DIM, BLOCK_N, STAGES)


@gluon.jit
def _consumer_1(q_desc, k_desc, v_desc, o_ptr, q_smem, k_smem, v_smem, bars, q_row, k_row, v_row, o_off, so_m, seq_q,
                seq_k, m_start, qs_ptr, ks_ptr, vmean_ptr, vrange_ptr):
    STAGES: gl.constexpr = k_smem.type.shape[0]
    BLOCK_N: gl.constexpr = k_smem.type.shape[1]
    HEAD_DIM: gl.constexpr = k_smem.type.shape[2]
    _consume(1, o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qs_ptr, q_row, ks_ptr,
             vmean_ptr, vrange_ptr, HEAD_DIM, BLOCK_N, STAGES)


@gluon.jit
def _producer_worker(q_desc, k_desc, v_desc, o_ptr, q_smem, k_smem, v_smem, bars, q_row, k_row, v_row, o_off, so_m,
                     seq_q, seq_k, m_start, qs_ptr, ks_ptr, vmean_ptr, vrange_ptr):
    STAGES: gl.constexpr = k_smem.type.shape[0]
    BLOCK_N: gl.constexpr = k_smem.type.shape[1]
    q_bar, k_ready, k_empty, v_ready, v_empty, turn = bars
    for c in gl.static_range(2):
        mbarrier.expect(q_bar.index(c), q_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(q_desc, [q_row + c * q_desc.block_type.shape[0], 0], q_bar.index(c),
                                        q_smem.index(c))
    n_blocks = gl.cdiv(seq_k, BLOCK_N)
    for j in range(n_blocks):
        s = j % STAGES
        phase = (j // STAGES) & 1
        mbarrier.wait(k_empty.index(s), phase ^ 1)
        mbarrier.expect(k_ready.index(s), k_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(k_desc, [k_row + j * BLOCK_N, 0], k_ready.index(s), k_smem.index(s))
        mbarrier.wait(v_empty.index(s), phase ^ 1)
        mbarrier.expect(v_ready.index(s), v_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(v_desc, [v_row, j * BLOCK_N], v_ready.index(s), v_smem.index(s))


@gluon.jit
def attention_i8f8(q_desc, k_desc, v_desc, QS, KS, VMEAN, VRANGE, O, seq_q, seq_k, l_pad_q, l_pad_k, heads,
                   so_b, so_h, so_m, HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr,
                   PINGPONG: gl.constexpr):
    """One CTA: 128 queries of one (batch, head) against all keys. Q, K: padded INT8 rows
    (row `bh·l_pad + i`); V: the permuted, transposed e4m3 copy `[BH·HEAD_DIM, l_pad_k]`;
    QS f32 `[BH·Lq_pad]`, KS f32 `[BH, Lk_pad / BLOCK_N]`, VMEAN/VRANGE f32 `[BH, HEAD_DIM]`."""
    start_m = gl.program_id(0)
    bh = gl.program_id(1)
    b = (bh // heads).to(gl.int64)
    h = (bh % heads).to(gl.int64)
    m_start = start_m * (CONSUMERS * ROWS_PER_CONSUMER)
    q_row = bh * l_pad_q + m_start
    k_row = bh * l_pad_k
    v_row = bh * HEAD_DIM
    ks_ptr = KS + bh * (l_pad_k // BLOCK_N)
    vmean_ptr = VMEAN + bh * HEAD_DIM
    vrange_ptr = VRANGE + bh * HEAD_DIM
    o_off = b * so_b + h * so_h

    q_smem, k_smem, v_smem, bars = _allocate(q_desc, k_desc, v_desc, STAGES, PINGPONG)

    worker_args = (q_desc, k_desc, v_desc, O, q_smem, k_smem, v_smem, bars, q_row, k_row, v_row, o_off, so_m, seq_q,
                   seq_k, m_start, QS, ks_ptr, vmean_ptr, vrange_ptr)
    gl.warp_specialize([
        (_consumer_0, (O, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, QS, q_row, ks_ptr,
                       vmean_ptr, vrange_ptr, HEAD_DIM, BLOCK_N, STAGES)),
        (_consumer_1, worker_args),
        (_producer_worker, worker_args),
    ], [4, 1], [CONSUMER_REGS, PRODUCER_REGS])


def signature(block_n: int):
    """The kernel's signature for kernels/compile.py (descriptors carry their TMA boxes)."""
    from triton.experimental.gluon.language import NVMMASharedLayout
    import triton.language as tl

    def desc(rows, cols, dt, name):
        layout = NVMMASharedLayout.get_default_for([rows, cols], dt)
        return f"tensordesc<{name}[{rows}, {cols}],{layout!r}>"

    return {
        "q_desc": desc(ROWS_PER_CONSUMER.value, 128, tl.int8, "i8"), "k_desc": desc(block_n, 128, tl.int8, "i8"),
        "v_desc": desc(128, block_n, tl.float8e4nv, "fp8e4nv"), "QS": "*fp32", "KS": "*fp32", "VMEAN": "*fp32",
        "VRANGE": "*fp32", "O": "*bf16", "seq_q": "i32", "seq_k": "i32", "l_pad_q": "i32", "l_pad_k": "i32",
        "heads": "i32", "so_b": "i64", "so_h": "i64", "so_m": "i64",
        "HEAD_DIM": "constexpr", "BLOCK_N": "constexpr", "STAGES": "constexpr", "PINGPONG": "constexpr",
    }


# The output pointer and strides are 16-element aligned (checked on the Rust side).
ALIGNED_ARGS = ["O", "so_b", "so_h", "so_m"]

# (block_n, stages, ping-pong): the first is the default (on the H200, kernels/attention_lab.py,
# one VACE-1.3B layer: 7.45-7.64 ms; in `vaced bench --only attention`, quantizers included, 7.46 ms,
# 3 stages 7.99, ping-pong 8.25).
VARIANTS = [(128, 2, False), (128, 3, False), (128, 2, True)]
