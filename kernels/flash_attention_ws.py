"""Warp-specialised attention for Hopper (FlashAttention-3 style), head width 128, bf16.

The same computation as kernels/flash_attention.py (softmax(q·kᵀ·scale)·v, online softmax
in f32, exp2), organised the way Hopper wants it, in Gluon (Triton's explicit dialect):

- one producer warp streams K and V tiles into a ring of shared-memory stages with TMA,
  signalling each tile's arrival on an mbarrier, so no compute warp spends registers or
  issue slots on loads;
- two consumer warpgroups each own 64 query rows of the CTA's 128, and run independently:
  while one computes a softmax the other's products keep the tensor cores busy;
- inside a consumer the products of consecutive key blocks overlap its own softmax: the
  scores of block j+1 (q·kᵀ) and the accumulation of block j (p·v) are issued
  asynchronously before the softmax of block j+1 runs, and waited for after it.

Q, K and V are read through 2-D TMA descriptors over `[rows, row_stride]` views of the
tensors (kernels/compile.py and src/engine/attention/warp_specialized.rs): a (batch, head)
starts at row `off // row_stride`, column `off % row_stride`, where `off` is its element
offset. Rows past a sequence belong to the next head (or are outside the tensor and read as
zeros); keys there are masked to -inf and queries there are computed but never stored.
"""

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier, tma, warpgroup_mma, warpgroup_mma_wait

# Rows of queries per consumer warpgroup (one wgmma M of 64) and consumers per CTA.
ROWS_PER_CONSUMER = gl.constexpr(64)
CONSUMERS = gl.constexpr(2)

# Register budget: 12 warps (3 warpgroups) at MAXNREG each; setmaxnreg moves the producer's
# share to the consumers (the default partition gets what is left: 240 here).
MAXNREG = 168
CONSUMER_REGS = gl.constexpr(240)
PRODUCER_REGS = gl.constexpr(24)


@gluon.jit
def _row_start(off, row_stride):
    return (off // row_stride).to(gl.int32), (off % row_stride).to(gl.int32)


@gluon.jit
def _producer(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, bars, q_off, k_off, row_stride_q,
              row_stride_k, row_stride_v, v_off, seq_k, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    q_bar, k_ready, k_empty, v_ready, v_empty, turn = bars
    q_row, q_col = _row_start(q_off, row_stride_q)
    k_row, k_col = _row_start(k_off, row_stride_k)
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
def _take_turn(turn, c: gl.constexpr, t):
    """Ping-pong: consumer `c` waits until the other has issued its products of the round
    before (consumer 0 goes first), so one consumer's softmax runs under the other's products
    instead of both contending for the tensor cores at once. `turn` has one barrier per
    consumer when ping-pong is on, and a single unused one when it is off."""
    if turn.type.shape[0] == 2:
        mbarrier.wait(turn.index(c), (t & 1) ^ (1 - c))


@gluon.jit
def _pass_turn(turn, c: gl.constexpr):
    if turn.type.shape[0] == 2:
        mbarrier.arrive(turn.index(1 - c), count=1)


@gluon.jit
def _stagger_wait(turn, c: gl.constexpr, t, pred):
    """Without ping-pong, consumer 1 waits (where `pred`) for consumer 0's `t`-th
    `_stagger_release`, which comes when consumer 0 has computed a block's probabilities.
    Left to themselves the two consumers fall into step, their softmaxes contending for the
    same issue slots while the tensor cores idle; half an iteration apart they interleave.
    kernels/flash_attention_i8f8.py staggers them at the start and again every
    STAGGER_BLOCKS key blocks, since the offset wears off over long rows (one VACE-1.3B layer
    7.76 → 7.55 ms; a 14B layer 134.6 → 129.6 ms with the re-staggering, which at 1.3B's
    256 blocks changes nothing). The two are never 2 releases apart (the K/V ring keeps them
    within two blocks), so waiting on the phase's parity is exact."""
    if turn.type.shape[0] == 1:
        if c == 1:
            mbarrier.wait(turn.index(0), t & 1, pred=pred)


@gluon.jit
def _stagger_release(turn, c: gl.constexpr, pred):
    if turn.type.shape[0] == 1:
        if c == 0:
            mbarrier.arrive(turn.index(0), count=1, pred=pred)


@gluon.jit
def _softmax(s, m_i, qk_scale, n_valid, MASKED: gl.constexpr, BLOCK_N: gl.constexpr, s_layout: gl.constexpr):
    """Scaled scores of one key block → (p, new row max, rescale factor of the old state)."""
    if MASKED:
        cols = gl.arange(0, BLOCK_N, layout=gl.SliceLayout(0, s_layout))
        s = gl.where((cols < n_valid)[None, :], s, float("-inf"))
    m_new = gl.maximum(m_i, gl.max(s, 1) * qk_scale)
    p = gl.exp2(s * qk_scale - m_new[:, None])
    alpha = gl.exp2(m_i - m_new)
    return p, m_new, alpha


@gluon.jit
def _finish(c: gl.constexpr, o_ptr, v_smem, bars, p_op, acc, l_i, o_off, so_m, seq_q, m_start, n_blocks,
            ROWS: gl.constexpr, HEAD_DIM: gl.constexpr, STAGES: gl.constexpr, o_layout: gl.constexpr):
    """The last key block's p·v, then the normalised output rows of consumer `c`, stored as bf16
    (shared with kernels/flash_attention_i8.py)."""
    q_bar, k_ready, k_empty, v_ready, v_empty, turn = bars
    last = (n_blocks - 1) % STAGES
    mbarrier.wait(v_ready.index(last), ((n_blocks - 1) // STAGES) & 1)
    _take_turn(turn, c, n_blocks)
    acc = warpgroup_mma(p_op, v_smem.index(last), acc, is_async=True)
    _pass_turn(turn, c)
    acc = warpgroup_mma_wait(0, deps=(acc, ))
    mbarrier.arrive(v_empty.index(last), count=1)

    acc = acc / gl.convert_layout(l_i, gl.SliceLayout(1, o_layout))[:, None]
    rows = m_start + c * ROWS + gl.arange(0, ROWS, layout=gl.SliceLayout(1, o_layout))
    cols = gl.arange(0, HEAD_DIM, layout=gl.SliceLayout(0, o_layout))
    ptrs = o_ptr + o_off + rows.to(gl.int64)[:, None] * so_m + cols[None, :]
    gl.store(ptrs, acc.to(gl.bfloat16), mask=(rows < seq_q)[:, None])


@gluon.jit
def _consume(c: gl.constexpr, o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qk_scale,
             HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    q_bar, k_ready, k_empty, v_ready, v_empty, turn = bars
    ROWS: gl.constexpr = ROWS_PER_CONSUMER
    s_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, BLOCK_N, 16])
    o_layout: gl.constexpr = gl.NVMMADistributedLayout(version=[3, 0], warps_per_cta=[4, 1],
                                                       instr_shape=[16, HEAD_DIM, 16])
    p_layout: gl.constexpr = gl.DotOperandLayout(operand_index=0, parent=o_layout, k_width=2)
    row_layout: gl.constexpr = gl.SliceLayout(1, s_layout)

    q = q_smem.index(c)
    mbarrier.wait(q_bar.index(c), 0)
    n_blocks = gl.cdiv(seq_k, BLOCK_N)

    # Block 0: scores, softmax; its p·v is issued with the next block's scores.
    mbarrier.wait(k_ready.index(0), 0)
    s = gl.zeros([ROWS, BLOCK_N], gl.float32, s_layout)
    _take_turn(turn, c, 0)
    s = warpgroup_mma(q, k_smem.index(0).permute((1, 0)), s, use_acc=False, is_async=True)
    _pass_turn(turn, c)
    s = warpgroup_mma_wait(0, deps=(s, ))
    mbarrier.arrive(k_empty.index(0), count=1)
    m_i = gl.full([ROWS], float("-inf"), gl.float32, row_layout)
    p, m_i, alpha = _softmax(s, m_i, qk_scale, seq_k, True, BLOCK_N, s_layout)
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
def _consumer_0(o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qk_scale,
                HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr, STAGES: gl.constexpr):
    _consume(0, o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qk_scale, HEAD_DIM,
             BLOCK_N, STAGES)


@gluon.jit
def _consumer_1(q_desc, k_desc, v_desc, o_ptr, q_smem, k_smem, v_smem, bars, q_off, k_off, v_off, o_off,
                row_stride_q, row_stride_k, row_stride_v, so_m, seq_q, seq_k, m_start, qk_scale):
    # Worker arguments lose constexpr-ness: the tile sizes come from the buffers' shapes.
    STAGES: gl.constexpr = k_smem.type.shape[0]
    BLOCK_N: gl.constexpr = k_smem.type.shape[1]
    HEAD_DIM: gl.constexpr = k_smem.type.shape[2]
    _consume(1, o_ptr, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qk_scale, HEAD_DIM,
             BLOCK_N, STAGES)


@gluon.jit
def _producer_worker(q_desc, k_desc, v_desc, o_ptr, q_smem, k_smem, v_smem, bars, q_off, k_off, v_off, o_off,
                     row_stride_q, row_stride_k, row_stride_v, so_m, seq_q, seq_k, m_start, qk_scale):
    STAGES: gl.constexpr = k_smem.type.shape[0]
    BLOCK_N: gl.constexpr = k_smem.type.shape[1]
    _producer(q_desc, k_desc, v_desc, q_smem, k_smem, v_smem, bars, q_off, k_off, row_stride_q, row_stride_k,
              row_stride_v, v_off, seq_k, BLOCK_N, STAGES)


@gluon.jit
def _allocate(q_desc, k_desc, v_desc, STAGES: gl.constexpr, PINGPONG: gl.constexpr):
    """A CTA's shared memory (q for each consumer, a ring of STAGES k and v tiles) and its
    barriers `(q_bar, k_ready, k_empty, v_ready, v_empty, turn)`, initialised (shared with
    kernels/flash_attention_i8.py and kernels/flash_attention_i8f8.py). `turn` holds the
    ping-pong barriers, or without ping-pong the one that staggers the consumers' start."""
    q_smem = gl.allocate_shared_memory(q_desc.dtype, [CONSUMERS] + q_desc.block_type.shape, q_desc.layout)
    k_smem = gl.allocate_shared_memory(k_desc.dtype, [STAGES] + k_desc.block_type.shape, k_desc.layout)
    v_smem = gl.allocate_shared_memory(v_desc.dtype, [STAGES] + v_desc.block_type.shape, v_desc.layout)
    q_bar = gl.allocate_shared_memory(gl.int64, [CONSUMERS, 1], mbarrier.MBarrierLayout())
    k_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    k_empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    v_ready = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    v_empty = gl.allocate_shared_memory(gl.int64, [STAGES, 1], mbarrier.MBarrierLayout())
    for c in gl.static_range(CONSUMERS):
        mbarrier.init(q_bar.index(c), count=1)
    for s in gl.static_range(STAGES):
        mbarrier.init(k_ready.index(s), count=1)
        mbarrier.init(v_ready.index(s), count=1)
        # Both consumers read every tile; it is free once both have arrived.
        mbarrier.init(k_empty.index(s), count=CONSUMERS)
        mbarrier.init(v_empty.index(s), count=CONSUMERS)
    turn = gl.allocate_shared_memory(gl.int64, [CONSUMERS if PINGPONG else 1, 1], mbarrier.MBarrierLayout())
    for c in gl.static_range(CONSUMERS if PINGPONG else 1):
        mbarrier.init(turn.index(c), count=1)
    return q_smem, k_smem, v_smem, (q_bar, k_ready, k_empty, v_ready, v_empty, turn)


@gluon.jit
def attention_ws(q_desc, k_desc, v_desc, O, seq_q, seq_k, heads, qk_scale, sq_b, sq_h, sq_m, sk_b, sk_h, sk_n,
                 sv_b, sv_h, sv_n, so_b, so_h, so_m, HEAD_DIM: gl.constexpr, BLOCK_N: gl.constexpr,
                 STAGES: gl.constexpr, PINGPONG: gl.constexpr):
    """One CTA: 128 queries of one (batch, head) against all keys. `s*_m`/`s*_n` are the
    row strides the descriptors were made with."""
    start_m = gl.program_id(0)
    bh = gl.program_id(1)
    b = (bh // heads).to(gl.int64)
    h = (bh % heads).to(gl.int64)
    m_start = start_m * (CONSUMERS * ROWS_PER_CONSUMER)
    q_off = b * sq_b + h * sq_h + m_start.to(gl.int64) * sq_m
    k_off = b * sk_b + h * sk_h
    v_off = b * sv_b + h * sv_h
    o_off = b * so_b + h * so_h

    q_smem, k_smem, v_smem, bars = _allocate(q_desc, k_desc, v_desc, STAGES, PINGPONG)

    worker_args = (q_desc, k_desc, v_desc, O, q_smem, k_smem, v_smem, bars, q_off, k_off, v_off, o_off, sq_m, sk_n,
                   sv_n, so_m, seq_q, seq_k, m_start, qk_scale)
    gl.warp_specialize([
        (_consumer_0, (O, q_smem, k_smem, v_smem, bars, o_off, so_m, seq_q, seq_k, m_start, qk_scale, HEAD_DIM,
                       BLOCK_N, STAGES)),
        (_consumer_1, worker_args),
        (_producer_worker, worker_args),
    ], [4, 1], [CONSUMER_REGS, PRODUCER_REGS])


def signature(block_n: int):
    """The kernel's signature for kernels/compile.py: descriptors carry their block and
    shared layout (the producer's TMA boxes)."""
    from triton.experimental.gluon.language import NVMMASharedLayout
    import triton.language as tl

    def desc(rows):
        layout = NVMMASharedLayout.get_default_for([rows, 128], tl.bfloat16)
        return f"tensordesc<bf16[{rows}, 128],{layout!r}>"

    return {
        "q_desc": desc(ROWS_PER_CONSUMER.value), "k_desc": desc(block_n), "v_desc": desc(block_n), "O": "*bf16",
        "seq_q": "i32", "seq_k": "i32", "heads": "i32", "qk_scale": "fp32",
        "sq_b": "i64", "sq_h": "i64", "sq_m": "i64", "sk_b": "i64", "sk_h": "i64", "sk_n": "i64",
        "sv_b": "i64", "sv_h": "i64", "sv_n": "i64", "so_b": "i64", "so_h": "i64", "so_m": "i64",
        "HEAD_DIM": "constexpr", "BLOCK_N": "constexpr", "STAGES": "constexpr", "PINGPONG": "constexpr",
    }


# The output pointer and strides are 16-element aligned (checked on the Rust side).
ALIGNED_ARGS = ["O", "sq_b", "sq_h", "sq_m", "sk_b", "sk_h", "sk_n", "sv_b", "sv_h", "sv_n", "so_b", "so_h", "so_m"]

# (block_n, stages, ping-pong): the first is the default (on the H100: 10.1-10.5 ms for one
# layer of VACE-1.3B; ping-pong 10.7 ms, 3 stages 10.4-11.2 ms, 64-key blocks 11.8-12.4 ms).
VARIANTS = [(128, 2, False), (128, 2, True), (128, 3, False)]
