"""Fused elementwise and row kernels of the DiT blocks (Triton), for vaced's CUDA engine.

At 832x480x81 a block's activations are 32760 x 1536: every separate elementwise pass is a
round trip through GPU memory, and candle's broadcast kernels run well below bandwidth. Each
kernel here replaces a chain of them with one pass, with the reference's roundings: values
the reference holds in bf16 (a linear layer's output with its bias, a normalised q/k before
its weight) are rounded to bf16 at the same points, the rest is f32.

Tensors are contiguous, rows of `n_cols`; per-batch vectors (modulation, gates) are
`[batch, n_cols]` with `rows_per_batch` rows each.
"""

import triton
import triton.language as tl
from triton.language.extra.cuda import libdevice


@triton.jit
def layer_norm_affine(X, W, B, Y, n_cols, rows_per_batch, eps, BLOCK: tl.constexpr):
    """y = bf16(LayerNorm(x) · w + b), x f32; w, b f32 per batch (w = 1 + scale for the
    blocks' modulation, the affine weight for the cross-attention norm)."""
    row = tl.program_id(0).to(tl.int64)
    batch = row // rows_per_batch
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(X + row * n_cols + cols, mask=mask, other=0.0)
    mean = tl.sum(x, 0) / n_cols
    centred = tl.where(mask, x - mean, 0.0)
    var = tl.sum(centred * centred, 0) / n_cols
    rstd = libdevice.rsqrt(var + eps)
    w = tl.load(W + batch * n_cols + cols, mask=mask, other=0.0)
    b = tl.load(B + batch * n_cols + cols, mask=mask, other=0.0)
    tl.store(Y + row * n_cols + cols, (centred * rstd * w + b).to(tl.bfloat16), mask=mask)


@triton.jit
def bias_rms_norm_rope(Y, BIAS, W, COS, SIN, OUT, n_cols, tokens, half_head, eps,
                       ROPE: tl.constexpr, BLOCK_PAIRS: tl.constexpr):
    """q or k of one token: y + bias (bf16), RMSNorm over the full width (statistics f32,
    normalised value rounded to bf16, times the f32 weight), then RoPE on adjacent pairs
    with the token's cos/sin `[tokens, half_head]`; stored as bf16."""
    row = tl.program_id(0).to(tl.int64)
    token = row % tokens
    pair = tl.arange(0, BLOCK_PAIRS)
    mask = pair < n_cols // 2
    base = Y + row * n_cols
    even = tl.load(base + 2 * pair, mask=mask, other=0.0).to(tl.float32)
    odd = tl.load(base + 2 * pair + 1, mask=mask, other=0.0).to(tl.float32)
    even = (even + tl.load(BIAS + 2 * pair, mask=mask, other=0.0).to(tl.float32)).to(tl.bfloat16).to(tl.float32)
    odd = (odd + tl.load(BIAS + 2 * pair + 1, mask=mask, other=0.0).to(tl.float32)).to(tl.bfloat16).to(tl.float32)
    mean_square = (tl.sum(even * even, 0) + tl.sum(odd * odd, 0)) / n_cols
    inv_rms = 1.0 / tl.sqrt(mean_square + eps)
    even = (even * inv_rms).to(tl.bfloat16).to(tl.float32) * tl.load(W + 2 * pair, mask=mask, other=0.0)
    odd = (odd * inv_rms).to(tl.bfloat16).to(tl.float32) * tl.load(W + 2 * pair + 1, mask=mask, other=0.0)
    if ROPE:
        angle = token * half_head + pair % half_head
        c = tl.load(COS + angle, mask=mask, other=1.0)
        s = tl.load(SIN + angle, mask=mask, other=0.0)
        even, odd = even * c - odd * s, even * s + odd * c
    out = OUT + row * n_cols
    tl.store(out + 2 * pair, even.to(tl.bfloat16), mask=mask)
    tl.store(out + 2 * pair + 1, odd.to(tl.bfloat16), mask=mask)


@triton.jit
def bias_add(Y, BIAS, OUT, n_elements, n_cols, BLOCK: tl.constexpr):
    """bf16(y + bias): a linear layer's bias, as the reference's GEMM epilogue adds it."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    y = tl.load(Y + offs, mask=mask, other=0.0).to(tl.float32)
    y = y + tl.load(BIAS + offs % n_cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(OUT + offs, y.to(tl.bfloat16), mask=mask)


@triton.jit
def bias_gate_residual(X, Y, BIAS, GATE, OUT, n_elements, n_cols, rows_per_batch,
                       HAS_GATE: tl.constexpr, BLOCK: tl.constexpr):
    """x + bf16(y + bias) · gate in f32 (the residual updates; cross-attention has no gate)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    col = offs % n_cols
    y = tl.load(Y + offs, mask=mask, other=0.0).to(tl.float32)
    y = (y + tl.load(BIAS + col, mask=mask, other=0.0).to(tl.float32)).to(tl.bfloat16).to(tl.float32)
    if HAS_GATE:
        batch = offs // (n_cols * rows_per_batch)
        y = y * tl.load(GATE + batch * n_cols + col, mask=mask, other=0.0)
    x = tl.load(X + offs, mask=mask, other=0.0)
    tl.store(OUT + offs, x + y, mask=mask)


# Elements per program of the flat kernels.
FLAT_BLOCK = 2048

# name: (kernel, signature, constexprs, num_warps). The row kernels get one variant per
# power-of-two row width up to 8192 (VACE-14B's 5120 wide rows); rows are padded up to it.
def variants():
    out = {}
    for block in (64, 128, 256, 512, 1024, 2048, 4096, 8192):
        warps = max(1, min(16, block // 256))
        out[f"layer_norm_affine_{block}"] = (
            layer_norm_affine,
            {"X": "*fp32", "W": "*fp32", "B": "*fp32", "Y": "*bf16", "n_cols": "i32",
             "rows_per_batch": "i32", "eps": "fp32", "BLOCK": "constexpr"},
            {"BLOCK": block}, warps)
        for rope in (True, False):
            pairs = block // 2
            out[f"bias_rms_norm{'_rope' if rope else ''}_{block}"] = (
                bias_rms_norm_rope,
                {"Y": "*bf16", "BIAS": "*bf16", "W": "*fp32", "COS": "*fp32", "SIN": "*fp32",
                 "OUT": "*bf16", "n_cols": "i32", "tokens": "i32", "half_head": "i32",
                 "eps": "fp32", "ROPE": "constexpr", "BLOCK_PAIRS": "constexpr"},
                {"ROPE": rope, "BLOCK_PAIRS": pairs}, max(1, min(16, pairs // 128)))
    flat = {"n_elements": "i64", "n_cols": "i32", "BLOCK": "constexpr"}
    out["bias_add"] = (bias_add, {"Y": "*bf16", "BIAS": "*bf16", "OUT": "*bf16", **flat},
                       {"BLOCK": FLAT_BLOCK}, 8)
    for gate in (True, False):
        out[f"bias_{'gate_' if gate else ''}residual"] = (
            bias_gate_residual,
            {"X": "*fp32", "Y": "*bf16", "BIAS": "*bf16", "GATE": "*fp32", "OUT": "*fp32",
             "n_elements": "i64", "n_cols": "i32", "rows_per_batch": "i32",
             "HAS_GATE": "constexpr", "BLOCK": "constexpr"},
            {"HAS_GATE": gate, "BLOCK": FLAT_BLOCK}, 8)
    return out
