"""Fused elementwise and row kernels of the DiT blocks (Triton), for vaced's CUDA engine.

At 832x480x81 a block's activations are 32760 x 1536: every separate elementwise pass is a
round trip through GPU memory, and candle's broadcast kernels run well below bandwidth. Each
kernel here replaces a chain of them with one pass, with the reference's roundings: values
the reference holds in bf16 (a linear layer's output with its bias, a normalised q/k before
its weight) are rounded to bf16 at the same points, the rest is f32.

Tensors are contiguous, rows of `n_cols` (a multiple of 16), and start 16-byte aligned
(src/engine/fused_ops.rs sees to both; the kernels are compiled with that promise, so that
loads and stores vectorise); per-batch vectors (modulation, gates) are `[batch, n_cols]` with
`rows_per_batch` rows each.
"""

import triton
import triton.language as tl
from triton.language.extra.cuda import libdevice


@triton.jit
def _layer_norm_row(X, W, B, row, n_cols, rows_per_batch, eps, cols, mask):
    """LayerNorm(x) · w + b of one row in f32, x f32; w, b f32 per batch (w = 1 + scale for
    the modulation, the affine weight for the cross-attention norm)."""
    batch = row // rows_per_batch
    x = tl.load(X + row * n_cols + cols, mask=mask, other=0.0)
    mean = tl.sum(x, 0) / n_cols
    centred = tl.where(mask, x - mean, 0.0)
    var = tl.sum(centred * centred, 0) / n_cols
    rstd = libdevice.rsqrt(var + eps)
    w = tl.load(W + batch * n_cols + cols, mask=mask, other=0.0)
    b = tl.load(B + batch * n_cols + cols, mask=mask, other=0.0)
    return centred * rstd * w + b


@triton.jit
def layer_norm_affine(X, W, B, Y, n_cols, rows_per_batch, eps, BLOCK: tl.constexpr):
    """y = LayerNorm(x) · w + b in Y's dtype (bf16 for the blocks, f32 for the head)."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    y = _layer_norm_row(X, W, B, row, n_cols, rows_per_batch, eps, cols, mask)
    tl.store(Y + row * n_cols + cols, y.to(Y.dtype.element_ty), mask=mask)


# The largest finite e4m3 value: an FP8 row is scaled so that its largest magnitude maps here.
FP8_MAX = tl.constexpr(448.0)


@triton.jit
def _store_fp8_row(Q, S, row, n_cols, y, offs, mask):
    """Row `y` (f32, 0 where masked) as e4m3 with one f32 scale `max|y| / 448`: the FP8
    products' per-token quantisation (src/engine/fp8_gemm.rs multiplies the scale back in
    the product's epilogue). An all-zero row keeps a tiny scale and stores zeros."""
    absmax = tl.max(tl.abs(y), 0)
    scale = tl.maximum(absmax, 1e-30) / FP8_MAX
    tl.store(Q + row * n_cols + offs, (y * (1.0 / scale)).to(tl.float8e4nv), mask=mask)
    tl.store(S + row, scale)


@triton.jit
def layer_norm_affine_fp8(X, W, B, Q, S, n_cols, rows_per_batch, eps, BLOCK: tl.constexpr):
    """`layer_norm_affine` for an FP8 product: the same f32 value, stored as e4m3 rows with
    one scale each instead of bf16, in the same pass."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    y = _layer_norm_row(X, W, B, row, n_cols, rows_per_batch, eps, cols, mask)
    _store_fp8_row(Q, S, row, n_cols, tl.where(mask, y, 0.0), cols, mask)


@triton.jit
def quantize_rows_fp8(X, Q, S, n_cols, BLOCK: tl.constexpr):
    """bf16 or f32 rows (attention outputs, the FFN's hidden activations, the VACE stream,
    weights) as e4m3 rows with one scale each."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(X + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    _store_fp8_row(Q, S, row, n_cols, x, cols, mask)


@triton.jit
def bias_rms_norm_rope(Y, BIAS, W, COS, SIN, OUT, n_cols, tokens, half_head, eps,
                       ROPE: tl.constexpr, BLOCK_PAIRS: tl.constexpr, HALF_HEAD: tl.constexpr = 0):
    """q or k of one token: y + bias (bf16), RMSNorm over the full width (statistics f32,
    normalised value rounded to bf16, times the f32 weight), then RoPE on adjacent pairs
    with the token's cos/sin `[tokens, half_head]`; stored as bf16. The row is loaded whole
    (vectorised) and split into its even and odd elements in registers. HALF_HEAD: the
    variant for `half_head` of that constant (0: any)."""
    row = tl.program_id(0).to(tl.int64)
    token = row % tokens
    offs = tl.arange(0, 2 * BLOCK_PAIRS)
    mask = offs < n_cols
    y = tl.load(Y + row * n_cols + offs, mask=mask, other=0.0).to(tl.float32)
    y = (y + tl.load(BIAS + offs, mask=mask, other=0.0).to(tl.float32)).to(tl.bfloat16).to(tl.float32)
    mean_square = tl.sum(y * y, 0) / n_cols
    inv_rms = 1.0 / tl.sqrt(mean_square + eps)
    y = (y * inv_rms).to(tl.bfloat16).to(tl.float32) * tl.load(W + offs, mask=mask, other=0.0)
    if ROPE:
        if HALF_HEAD > 0:
            # Each head a row of HALF_HEAD pairs: the token's cos/sin row, one vector load,
            # serves every head. Gathered pair by pair with a division each (below), the
            # kernel had twice the instructions and a round trip through shared memory (SASS).
            even, odd = tl.split(tl.reshape(y, [BLOCK_PAIRS // HALF_HEAD, HALF_HEAD, 2]))
            angle = token * HALF_HEAD + tl.arange(0, HALF_HEAD)
            c = tl.load(COS + angle)[None, :]
            s = tl.load(SIN + angle)[None, :]
        else:
            even, odd = tl.split(tl.reshape(y, [BLOCK_PAIRS, 2]))
            pair = tl.arange(0, BLOCK_PAIRS)
            pair_mask = pair < n_cols // 2
            angle = token * half_head + pair % half_head
            c = tl.load(COS + angle, mask=pair_mask, other=1.0)
            s = tl.load(SIN + angle, mask=pair_mask, other=0.0)
        y = tl.reshape(tl.join(even * c - odd * s, even * s + odd * c), [2 * BLOCK_PAIRS])
    tl.store(OUT + row * n_cols + offs, y.to(tl.bfloat16), mask=mask)


@triton.jit
def _tile(pid_rows, pid_cols, n_rows, n_cols, BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr):
    """Offsets and mask of one program's tile of a `[n_rows, n_cols]` matrix, and its rows and
    columns: 2-D so that no element needs a division to find its column (a flat index's
    64-bit `% n_cols` cost more than the memory traffic)."""
    rows = pid_rows * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    cols = tl.max_contiguous(tl.multiple_of(pid_cols * BLOCK_COLS + tl.arange(0, BLOCK_COLS), BLOCK_COLS), BLOCK_COLS)
    offs = (rows.to(tl.int64) * n_cols)[:, None] + cols[None, :]
    mask = (rows < n_rows)[:, None] & (cols < n_cols)[None, :]
    return offs, mask, rows, cols


@triton.jit
def bias_add(Y, BIAS, OUT, n_rows, n_cols, BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr):
    """bf16(y + bias): a linear layer's bias, as the reference's GEMM epilogue adds it."""
    offs, mask, _, cols = _tile(tl.program_id(0), tl.program_id(1), n_rows, n_cols, BLOCK_ROWS, BLOCK_COLS)
    y = tl.load(Y + offs, mask=mask, other=0.0).to(tl.float32)
    y = y + tl.load(BIAS + cols, mask=cols < n_cols, other=0.0).to(tl.float32)[None, :]
    tl.store(OUT + offs, y.to(tl.bfloat16), mask=mask)


@triton.jit
def bias_gate_residual(X, Y, BIAS, GATE, OUT, n_rows, n_cols, rows_per_batch,
                       HAS_GATE: tl.constexpr, BLOCK_ROWS: tl.constexpr, BLOCK_COLS: tl.constexpr):
    """x + bf16(y + bias) · gate in f32 (the residual updates; cross-attention has no gate)."""
    offs, mask, rows, cols = _tile(tl.program_id(0), tl.program_id(1), n_rows, n_cols, BLOCK_ROWS,
                                   BLOCK_COLS)
    y = tl.load(Y + offs, mask=mask, other=0.0).to(tl.float32)
    bias = tl.load(BIAS + cols, mask=cols < n_cols, other=0.0).to(tl.float32)
    y = (y + bias[None, :]).to(tl.bfloat16).to(tl.float32)
    if HAS_GATE:
        batch = rows // rows_per_batch
        y = y * tl.load(GATE + batch[:, None] * n_cols + cols[None, :], mask=mask, other=0.0)
    x = tl.load(X + offs, mask=mask, other=0.0)
    tl.store(OUT + offs, x + y, mask=mask)


# Tiles of the 2-D elementwise kernels: 4 rows × 512 columns (1536 and 5120 wide rows split
# evenly). Row widths are multiples of 16 and the tensors start 16-byte aligned
# (src/engine/fused_ops.rs sees to both), which lets the loads and stores vectorise.
TILE_ROWS = 4
TILE_COLS = 512
ALIGNED_2D = ["X", "Y", "BIAS", "GATE", "OUT", "n_cols"]


# name: (kernel, signature, constexprs, num_warps[, arguments that are multiples of 16]). The row kernels get one variant per
# power-of-two row width up to 8192 (VACE-14B's 5120 wide rows); rows are padded up to it.
def variants():
    out = {}
    for block in (64, 128, 256, 512, 1024, 2048, 4096, 8192):
        # Few warps per row: for 1536-wide rows (32760 of them, H200) the LayerNorm took 78 µs
        # with 2 warps against 91 µs with 8, q/k's bias + norm + RoPE 66 µs against 86.
        warps = max(1, block // 1024)
        out[f"layer_norm_affine_{block}"] = (
            layer_norm_affine,
            {"X": "*fp32", "W": "*fp32", "B": "*fp32", "Y": "*bf16", "n_cols": "i32",
             "rows_per_batch": "i32", "eps": "fp32", "BLOCK": "constexpr"},
            {"BLOCK": block}, warps, ["X", "W", "B", "Y", "n_cols"])
        out[f"layer_norm_affine_f32_{block}"] = (
            layer_norm_affine,
            {"X": "*fp32", "W": "*fp32", "B": "*fp32", "Y": "*fp32", "n_cols": "i32",
             "rows_per_batch": "i32", "eps": "fp32", "BLOCK": "constexpr"},
            {"BLOCK": block}, warps, ["X", "W", "B", "Y", "n_cols"])
        # Fewer warps per row than the bf16 variant: with 1536-wide rows one warp per row
        # measured 90 µs against 102 µs with eight (H200, 32760 rows).
        out[f"layer_norm_affine_fp8_{block}"] = (
            layer_norm_affine_fp8,
            {"X": "*fp32", "W": "*fp32", "B": "*fp32", "Q": "*fp8e4nv", "S": "*fp32",
             "n_cols": "i32", "rows_per_batch": "i32", "eps": "fp32", "BLOCK": "constexpr"},
            {"BLOCK": block}, max(1, block // 2048), ["X", "W", "B", "Q", "n_cols"])
        # RoPE for any head width, and for width 128 (every Wan2.1 model) a faster variant.
        for rope, half in ((True, 0), (True, 64), (False, 0)):
            pairs = block // 2
            if half > pairs:
                continue
            out[f"bias_rms_norm{'_rope' if rope else ''}{f'_h{half}' if half else ''}_{block}"] = (
                bias_rms_norm_rope,
                {"Y": "*bf16", "BIAS": "*bf16", "W": "*fp32", "COS": "*fp32", "SIN": "*fp32",
                 "OUT": "*bf16", "n_cols": "i32", "tokens": "i32", "half_head": "i32",
                 "eps": "fp32", "ROPE": "constexpr", "BLOCK_PAIRS": "constexpr", "HALF_HEAD": "constexpr"},
                {"ROPE": rope, "BLOCK_PAIRS": pairs, "HALF_HEAD": half}, max(1, pairs // 512),
                ["Y", "BIAS", "W", "OUT", "n_cols"])
    # Quantised rows reach the FFN's hidden width: 8960 (1.3B) and 13824 (14B). For those,
    # 8 warps per row measured 221 µs against 264 µs with 16 (H200, 32760 rows).
    for block in (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384):
        for dtype, suffix in (("bf16", ""), ("fp32", "_f32")):
            out[f"quantize_rows_fp8{suffix}_{block}"] = (
                quantize_rows_fp8,
                {"X": f"*{dtype}", "Q": "*fp8e4nv", "S": "*fp32", "n_cols": "i32", "BLOCK": "constexpr"},
                {"BLOCK": block}, max(1, min(8, block // 2048)), ["X", "Q", "n_cols"])
    tile = {"BLOCK_ROWS": TILE_ROWS, "BLOCK_COLS": TILE_COLS}
    shape = {"n_rows": "i32", "n_cols": "i32", "BLOCK_ROWS": "constexpr", "BLOCK_COLS": "constexpr"}
    out["bias_add"] = (bias_add, {"Y": "*bf16", "BIAS": "*bf16", "OUT": "*bf16", **shape}, tile, 4,
                       ["Y", "BIAS", "OUT", "n_cols"])
    for gate in (True, False):
        out[f"bias_{'gate_' if gate else ''}residual"] = (
            bias_gate_residual,
            {"X": "*fp32", "Y": "*bf16", "BIAS": "*bf16", "GATE": "*fp32", "OUT": "*fp32",
             "n_rows": "i32", "n_cols": "i32", "rows_per_batch": "i32",
             "HAS_GATE": "constexpr", "BLOCK_ROWS": "constexpr", "BLOCK_COLS": "constexpr"},
            {"HAS_GATE": gate, **tile}, 4, ALIGNED_2D)
    return out
