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


# The row kernels take a row in one or two parts. TAIL == 0: one part of BLOCK columns (a
# power of two), masked to `n_cols` (the row padded up to BLOCK). TAIL > 0: the row is
# exactly BLOCK + TAIL columns, two powers of two (the models' 1536 = 1024 + 512 and
# 5120 = 4096 + 1024), loaded as two whole parts: padded to 8192, a 14B row left 37.5% of
# the lanes masked, and every masked element cost instructions all the same.


@triton.jit
def _part(X, base, start: tl.constexpr, SIZE: tl.constexpr, n_cols, MASKED: tl.constexpr):
    """Columns [start, start + SIZE) of the row at X + base in f32, and their indices;
    0 past n_cols where MASKED."""
    cols = start + tl.arange(0, SIZE)
    if MASKED:
        x = tl.load(X + base + cols, mask=cols < n_cols, other=0.0)
    else:
        x = tl.load(X + base + cols)
    return x.to(tl.float32), cols


@triton.jit
def _affine(W, B, batch, n_cols, cols, centred, rstd, MASKED: tl.constexpr):
    """centred · rstd · w + b for the columns `cols` of the per-batch f32 vectors w and b."""
    if MASKED:
        w = tl.load(W + batch * n_cols + cols, mask=cols < n_cols, other=0.0)
        b = tl.load(B + batch * n_cols + cols, mask=cols < n_cols, other=0.0)
    else:
        w = tl.load(W + batch * n_cols + cols)
        b = tl.load(B + batch * n_cols + cols)
    return centred * rstd * w + b


@triton.jit
def _layer_norm_row(X, W, B, row, n_cols, rows_per_batch, eps, BLOCK: tl.constexpr, TAIL: tl.constexpr):
    """LayerNorm(x) · w + b of one row in f32, x f32; w, b f32 per batch (w = 1 + scale for
    the modulation, the affine weight for the cross-attention norm). Returns both parts'
    values and columns (with TAIL == 0 the second pair repeats the first)."""
    batch = row // rows_per_batch
    base = row * n_cols
    xa, ca = _part(X, base, 0, BLOCK, n_cols, TAIL == 0)
    if TAIL > 0:
        xb, cb = _part(X, base, BLOCK, TAIL, n_cols, False)
        mean = (tl.sum(xa, 0) + tl.sum(xb, 0)) / n_cols
        xa = xa - mean
        xb = xb - mean
        var = (tl.sum(xa * xa, 0) + tl.sum(xb * xb, 0)) / n_cols
    else:
        mean = tl.sum(xa, 0) / n_cols
        xa = tl.where(ca < n_cols, xa - mean, 0.0)
        var = tl.sum(xa * xa, 0) / n_cols
    rstd = libdevice.rsqrt(var + eps)
    ya = _affine(W, B, batch, n_cols, ca, xa, rstd, TAIL == 0)
    if TAIL > 0:
        yb = _affine(W, B, batch, n_cols, cb, xb, rstd, False)
    else:
        yb, cb = ya, ca
    return ya, ca, yb, cb


@triton.jit
def _store_part(Y, base, cols, y, n_cols, MASKED: tl.constexpr):
    """`y` as Y's dtype at the columns `cols` of the row at Y + base."""
    if MASKED:
        tl.store(Y + base + cols, y.to(Y.dtype.element_ty), mask=cols < n_cols)
    else:
        tl.store(Y + base + cols, y.to(Y.dtype.element_ty))


@triton.jit
def layer_norm_affine(X, W, B, Y, n_cols, rows_per_batch, eps, BLOCK: tl.constexpr, TAIL: tl.constexpr = 0):
    """y = LayerNorm(x) · w + b in Y's dtype (bf16 for the blocks, f32 for the head)."""
    row = tl.program_id(0).to(tl.int64)
    ya, ca, yb, cb = _layer_norm_row(X, W, B, row, n_cols, rows_per_batch, eps, BLOCK, TAIL)
    _store_part(Y, row * n_cols, ca, ya, n_cols, TAIL == 0)
    if TAIL > 0:
        _store_part(Y, row * n_cols, cb, yb, n_cols, False)


# The largest finite e4m3 value: an FP8 row is scaled so that its largest magnitude maps here.
FP8_MAX = tl.constexpr(448.0)


@triton.jit
def _fp8_scale(absmax):
    """The f32 scale `max|y| / 448` of a row stored as e4m3 (src/engine/fp8_gemm.rs
    multiplies it back in the product's epilogue): the FP8 products' per-token
    quantisation. An all-zero row keeps a tiny scale and stores zeros."""
    return tl.maximum(absmax, 1e-30) / FP8_MAX


@triton.jit
def _store_fp8_row(Q, S, row, n_cols, ya, ca, yb, cb, TAIL: tl.constexpr):
    """A row's parts (f32, 0 where masked) as e4m3 with one f32 scale (`_fp8_scale`)."""
    absmax = tl.max(tl.abs(ya), 0)
    if TAIL > 0:
        absmax = tl.maximum(absmax, tl.max(tl.abs(yb), 0))
    scale = _fp8_scale(absmax)
    _store_part(Q, row * n_cols, ca, ya * (1.0 / scale), n_cols, TAIL == 0)
    if TAIL > 0:
        _store_part(Q, row * n_cols, cb, yb * (1.0 / scale), n_cols, False)
    tl.store(S + row, scale)


@triton.jit
def layer_norm_affine_fp8(X, W, B, Q, S, n_cols, rows_per_batch, eps, BLOCK: tl.constexpr, TAIL: tl.constexpr = 0):
    """`layer_norm_affine` for an FP8 product: the same f32 value, stored as e4m3 rows with
    one scale each instead of bf16, in the same pass."""
    row = tl.program_id(0).to(tl.int64)
    ya, ca, yb, cb = _layer_norm_row(X, W, B, row, n_cols, rows_per_batch, eps, BLOCK, TAIL)
    if TAIL == 0:
        ya = tl.where(ca < n_cols, ya, 0.0)
    _store_fp8_row(Q, S, row, n_cols, ya, ca, yb, cb, TAIL)


@triton.jit
def quantize_rows_fp8(X, Q, S, n_cols, BLOCK: tl.constexpr, TAIL: tl.constexpr = 0):
    """bf16 or f32 rows (attention outputs, the FFN's hidden activations, the VACE stream,
    weights) as e4m3 rows with one scale each."""
    row = tl.program_id(0).to(tl.int64)
    xa, ca = _part(X, row * n_cols, 0, BLOCK, n_cols, TAIL == 0)
    if TAIL > 0:
        xb, cb = _part(X, row * n_cols, BLOCK, TAIL, n_cols, False)
    else:
        xb, cb = xa, ca
    _store_fp8_row(Q, S, row, n_cols, xa, ca, xb, cb, TAIL)


@triton.jit
def _rope(y, token, half_head, n_cols, COS, SIN, start_pair: tl.constexpr, PAIRS: tl.constexpr,
          HALF_HEAD: tl.constexpr, MASKED: tl.constexpr):
    """RoPE on the adjacent pairs of one part of a q/k row (pairs start_pair…, whole heads
    when HALF_HEAD > 0), with the token's cos/sin `[tokens, half_head]`."""
    if HALF_HEAD > 0:
        # Each head a row of HALF_HEAD pairs: the token's cos/sin row, one vector load,
        # serves every head. Gathered pair by pair with a division each (below), the
        # kernel had twice the instructions and a round trip through shared memory (SASS).
        even, odd = tl.split(tl.reshape(y, [PAIRS // HALF_HEAD, HALF_HEAD, 2]))
        angle = token * HALF_HEAD + tl.arange(0, HALF_HEAD)
        c = tl.load(COS + angle)[None, :]
        s = tl.load(SIN + angle)[None, :]
    else:
        even, odd = tl.split(tl.reshape(y, [PAIRS, 2]))
        pair = start_pair + tl.arange(0, PAIRS)
        angle = token * half_head + pair % half_head
        if MASKED:
            pair_mask = pair < n_cols // 2
            c = tl.load(COS + angle, mask=pair_mask, other=1.0)
            s = tl.load(SIN + angle, mask=pair_mask, other=0.0)
        else:
            c = tl.load(COS + angle)
            s = tl.load(SIN + angle)
    return tl.reshape(tl.join(even * c - odd * s, even * s + odd * c), [2 * PAIRS])


@triton.jit
def _bias_norm_part(Y, BIAS, row, n_cols, start: tl.constexpr, SIZE: tl.constexpr, MASKED: tl.constexpr):
    """bf16(y + bias) of one part of a q/k row, in f32."""
    y, cols = _part(Y, row * n_cols, start, SIZE, n_cols, MASKED)
    bias, _ = _part(BIAS, 0, start, SIZE, n_cols, MASKED)
    return (y + bias).to(tl.bfloat16).to(tl.float32), cols


@triton.jit
def _rms_weight(y, inv_rms, W, cols, n_cols, MASKED: tl.constexpr):
    if MASKED:
        w = tl.load(W + cols, mask=cols < n_cols, other=0.0)
    else:
        w = tl.load(W + cols)
    return (y * inv_rms).to(tl.bfloat16).to(tl.float32) * w


@triton.jit
def bias_rms_norm_rope(Y, BIAS, W, COS, SIN, OUT, n_cols, tokens, half_head, eps,
                       ROPE: tl.constexpr, BLOCK_PAIRS: tl.constexpr, HALF_HEAD: tl.constexpr = 0,
                       TAIL_PAIRS: tl.constexpr = 0):
    """q or k of one token: y + bias (bf16), RMSNorm over the full width (statistics f32,
    normalised value rounded to bf16, times the f32 weight), then RoPE on adjacent pairs
    with the token's cos/sin `[tokens, half_head]`; stored as bf16. The row is loaded whole
    (vectorised) and split into its even and odd elements in registers. HALF_HEAD: the
    variant for `half_head` of that constant (0: any). BLOCK_PAIRS and TAIL_PAIRS: the two
    parts (BLOCK and TAIL above) in pairs."""
    row = tl.program_id(0).to(tl.int64)
    token = row % tokens
    MASKED: tl.constexpr = TAIL_PAIRS == 0
    ya, ca = _bias_norm_part(Y, BIAS, row, n_cols, 0, 2 * BLOCK_PAIRS, MASKED)
    square_sum = tl.sum(ya * ya, 0)
    if TAIL_PAIRS > 0:
        yb, cb = _bias_norm_part(Y, BIAS, row, n_cols, 2 * BLOCK_PAIRS, 2 * TAIL_PAIRS, False)
        square_sum += tl.sum(yb * yb, 0)
    inv_rms = 1.0 / tl.sqrt(square_sum / n_cols + eps)
    ya = _rms_weight(ya, inv_rms, W, ca, n_cols, MASKED)
    if ROPE:
        ya = _rope(ya, token, half_head, n_cols, COS, SIN, 0, BLOCK_PAIRS, HALF_HEAD, MASKED)
    _store_part(OUT, row * n_cols, ca, ya, n_cols, MASKED)
    if TAIL_PAIRS > 0:
        yb = _rms_weight(yb, inv_rms, W, cb, n_cols, False)
        if ROPE:
            yb = _rope(yb, token, half_head, n_cols, COS, SIN, BLOCK_PAIRS, TAIL_PAIRS, HALF_HEAD, False)
        _store_part(OUT, row * n_cols, cb, yb, n_cols, False)


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


# Rows that are exactly two powers of two wide, given row kernels without padding: the
# widths of Wan2.1's 1.3B (1536) and 14B (5120) blocks.
SPLIT_ROWS = ((1024, 512), (4096, 1024))


def row_shapes():
    """(name suffix, BLOCK, TAIL, the padded power of two the warp counts go by): one per
    power of two up to 8192 (VACE-14B's 5120 wide rows padded), then the SPLIT_ROWS."""
    padded = [(f"{block}", block, 0, block) for block in (64, 128, 256, 512, 1024, 2048, 4096, 8192)]
    split = [(f"{head}_{tail}", head, tail, 2 * head) for head, tail in SPLIT_ROWS]
    return padded + split


# name: (kernel, signature, constexprs, num_warps[, arguments that are multiples of 16]). The row kernels get one variant per
# row_shapes() entry: `{kernel}_{suffix}`, e.g. layer_norm_affine_8192 and layer_norm_affine_4096_1024.
def variants():
    out = {}
    for suffix, block, tail, padded in row_shapes():
        # Few warps per row: for 1536-wide rows (32760 of them, H200) the LayerNorm took 78 µs
        # with 2 warps against 91 µs with 8, q/k's bias + norm + RoPE 66 µs against 86.
        warps = max(1, padded // 1024)
        shape = {"BLOCK": block, "TAIL": tail}
        out[f"layer_norm_affine_{suffix}"] = (
            layer_norm_affine,
            {"X": "*fp32", "W": "*fp32", "B": "*fp32", "Y": "*bf16", "n_cols": "i32",
             "rows_per_batch": "i32", "eps": "fp32", "BLOCK": "constexpr", "TAIL": "constexpr"},
            shape, warps, ["X", "W", "B", "Y", "n_cols"])
        if tail == 0:
            # The head's norm, once a step: padded widths only.
            out[f"layer_norm_affine_f32_{suffix}"] = (
                layer_norm_affine,
                {"X": "*fp32", "W": "*fp32", "B": "*fp32", "Y": "*fp32", "n_cols": "i32",
                 "rows_per_batch": "i32", "eps": "fp32", "BLOCK": "constexpr", "TAIL": "constexpr"},
                shape, warps, ["X", "W", "B", "Y", "n_cols"])
        # Fewer warps per row than the bf16 variant: with 1536-wide rows one warp per row
        # measured 90 µs against 102 µs with eight (H200, 32760 rows).
        out[f"layer_norm_affine_fp8_{suffix}"] = (
            layer_norm_affine_fp8,
            {"X": "*fp32", "W": "*fp32", "B": "*fp32", "Q": "*fp8e4nv", "S": "*fp32",
             "n_cols": "i32", "rows_per_batch": "i32", "eps": "fp32", "BLOCK": "constexpr", "TAIL": "constexpr"},
            shape, max(1, padded // 2048), ["X", "W", "B", "Q", "n_cols"])
        # RoPE for any head width, and for width 128 (every Wan2.1 model) a faster variant.
        for rope, half in ((True, 0), (True, 64), (False, 0)):
            pairs, tail_pairs = block // 2, tail // 2
            # The h64 variant holds whole heads in each part.
            if half and (pairs % half or tail_pairs % half):
                continue
            out[f"bias_rms_norm{'_rope' if rope else ''}{f'_h{half}' if half else ''}_{suffix}"] = (
                bias_rms_norm_rope,
                {"Y": "*bf16", "BIAS": "*bf16", "W": "*fp32", "COS": "*fp32", "SIN": "*fp32",
                 "OUT": "*bf16", "n_cols": "i32", "tokens": "i32", "half_head": "i32",
                 "eps": "fp32", "ROPE": "constexpr", "BLOCK_PAIRS": "constexpr", "HALF_HEAD": "constexpr",
                 "TAIL_PAIRS": "constexpr"},
                {"ROPE": rope, "BLOCK_PAIRS": pairs, "HALF_HEAD": half, "TAIL_PAIRS": tail_pairs},
                max(1, padded // 1024), ["Y", "BIAS", "W", "OUT", "n_cols"])
        for dtype, dsuffix in (("bf16", ""), ("fp32", "_f32")):
            if tail:
                out[f"quantize_rows_fp8{dsuffix}_{suffix}"] = (
                    quantize_rows_fp8,
                    {"X": f"*{dtype}", "Q": "*fp8e4nv", "S": "*fp32", "n_cols": "i32", "BLOCK": "constexpr",
                     "TAIL": "constexpr"},
                    shape, max(1, min(8, padded // 2048)), ["X", "Q", "n_cols"])
    # Quantised rows reach the FFN's hidden width: 8960 (1.3B) and 13824 (14B). For those,
    # 8 warps per row measured 221 µs against 264 µs with 16 (H200, 32760 rows).
    for block in (64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384):
        for dtype, suffix in (("bf16", ""), ("fp32", "_f32")):
            out[f"quantize_rows_fp8{suffix}_{block}"] = (
                quantize_rows_fp8,
                {"X": f"*{dtype}", "Q": "*fp8e4nv", "S": "*fp32", "n_cols": "i32", "BLOCK": "constexpr",
                 "TAIL": "constexpr"},
                {"BLOCK": block, "TAIL": 0}, max(1, min(8, block // 2048)), ["X", "Q", "n_cols"])
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
