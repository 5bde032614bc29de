"""The VAE's convolutions as implicit-GEMM kernels (Triton), for vaced's CUDA engine.

candle's CUDA conv2d materialises im2col matrices (on the VAE at 832x480 that pass was half
of all GPU time, and 45 GiB at peak) and the 3-D causal convolution ran as one conv2d per
temporal tap plus adds. These kernels read the input frames in place and accumulate every
(dt, dy, dx, channel) tap into one output tile.

The input is channels-last (`[T, H, W, C]`, the caller transposes it once): a tile of
pixels × channels is then rows of contiguous channels, loaded as 16-byte vectors with one
address and one bounds test per pixel; channels-first input needed one 4-byte load and one
address per element, which bounded the kernel at ~9 TFLOP/s. The output stays
channels-first (`[T, O, OH, OW]`), the layout the rest of the VAE uses.

Products use Triton's "tf32x3" precision: three TF32 tensor-core products per tile, which
keeps f32 accuracy (the VAE runs in f32 in the reference) at several times the speed of
plain f32 FMA.
"""

import triton
import triton.language as tl


@triton.jit
def _tf32_round(x):
    """x rounded to TF32's 10 mantissa bits, to nearest (ties away from zero), in f32."""
    return ((x.to(tl.int32, bitcast=True) + 4096) & -8192).to(tl.float32, bitcast=True)


@triton.jit
def tf32_split_channels_last(X, BIG, SMALL, channels, pixels,
                             BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr):
    """X `[T, C, P]` → BIG, SMALL `[T, P, C]` with X = BIG + SMALL, BIG exact in TF32 (rounded
    to nearest at mantissa bit 13, so that a one-product TF32 GEMM is unbiased, as cuDNN's
    conversion is), SMALL the exact remainder: the operands of a 3-product TF32 GEMM."""
    pid_p = tl.program_id(0)
    pid_c = tl.program_id(1)
    t = tl.program_id(2).to(tl.int64)
    c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    mask = (c < channels)[:, None] & (p < pixels)[None, :]
    x = tl.load(X + t * channels * pixels + c[:, None] * pixels + p[None, :], mask=mask, other=0.0)
    big = _tf32_round(x)
    out = t * channels * pixels + p[None, :] * channels + c[:, None]
    tl.store(BIG + out, big, mask=mask)
    tl.store(SMALL + out, x - big, mask=mask)


@triton.jit
def tf32_split(X, BIG, SMALL, n_elements, BLOCK: tl.constexpr):
    """Flat X → BIG + SMALL as `tf32_split_channels_last` (the weights, once at load)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n_elements
    x = tl.load(X + offs, mask=mask, other=0.0)
    big = _tf32_round(x)
    tl.store(BIG + offs, big, mask=mask)
    tl.store(SMALL + offs, x - big, mask=mask)


@triton.jit
def conv_channels_last(XB, XS, WB, WS, BIAS, Y, channels, height, width, out_channels,
                       out_height, out_width, stride_t, stride_hw, pad_h, pad_w,
                       KT: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                       BLOCK_P: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_C: tl.constexpr,
                       SPLIT_ACC: tl.constexpr, TF32: tl.constexpr):
    """Y[t, o, y, x] = bias[o] + Σ X[t·stride_t + dt, y·s + dy − pad_h, x·s + dx − pad_w, c]
    · W[o, k] with k = ((dt·KH + dy)·KW + dx)·C + c and s = stride_hw; X = XB + XS
    `[T_in, H, W, C]`, W = WB + WS `[O, KT·KH·KW·C]`, Y `[T_out, O, OH, OW]`, all contiguous
    f32; reads outside the frame are 0 (so padding may differ per side: the caller picks
    OH, OW). The product is XB·WB + XB·WS + XS·WB in TF32, all operands K-major in shared
    memory as Hopper's TF32 wgmma needs, so the products pipeline with the loads. With TF32
    only XB·WB is formed: the precision of cuDNN's default under PyTorch, which the
    reference's GPU runs use."""
    pid_p = tl.program_id(0)
    pid_o = tl.program_id(1)
    t_out = tl.program_id(2).to(tl.int64)
    pixels = out_height * out_width
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    oy = (p // out_width) * stride_hw - pad_h
    ox = (p % out_width) * stride_hw - pad_w
    p_ok = p < pixels
    o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    o_ok = o < out_channels
    c_range = tl.arange(0, BLOCK_C)
    c_blocks = tl.cdiv(channels, BLOCK_C)
    depth = KT * KH * KW * channels
    frame = t_out * stride_t * height * width * channels
    acc = tl.zeros([BLOCK_P, BLOCK_O], dtype=tl.float32)
    small = tl.zeros([BLOCK_P, BLOCK_O], dtype=tl.float32)
    # One flat loop over (tap, channel block), so the loads pipeline across taps.
    for step in range(0, KT * KH * KW * c_blocks):
        tap = step // c_blocks
        c = (step % c_blocks) * BLOCK_C + c_range
        iy = oy + (tap // KW) % KH
        ix = ox + tap % KW
        ok = p_ok & (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
        c_ok = c < channels
        pixel = ((tap // (KH * KW)) * height + iy) * width + ix
        x_at = frame + pixel[:, None] * channels + c[None, :]
        x_mask = ok[:, None] & c_ok[None, :]
        xb = tl.load(XB + x_at, mask=x_mask, other=0.0)
        w_at = o[:, None] * depth + (tap * channels + c)[None, :]
        w_mask = o_ok[:, None] & c_ok[None, :]
        wb = tl.trans(tl.load(WB + w_at, mask=w_mask, other=0.0))
        if TF32:
            acc = tl.dot(xb, wb, acc, input_precision="tf32")
        elif SPLIT_ACC:
            xs = tl.load(XS + x_at, mask=x_mask, other=0.0)
            ws = tl.trans(tl.load(WS + w_at, mask=w_mask, other=0.0))
            # Two accumulators, the small products interleaved with the big one, so each
            # product need not wait for the one before it.
            small = tl.dot(xs, wb, small, input_precision="tf32")
            acc = tl.dot(xb, wb, acc, input_precision="tf32")
            small = tl.dot(xb, ws, small, input_precision="tf32")
        else:
            xs = tl.load(XS + x_at, mask=x_mask, other=0.0)
            ws = tl.trans(tl.load(WS + w_at, mask=w_mask, other=0.0))
            acc = tl.dot(xs, wb, acc, input_precision="tf32")
            acc = tl.dot(xb, ws, acc, input_precision="tf32")
            acc = tl.dot(xb, wb, acc, input_precision="tf32")
    if SPLIT_ACC:
        acc += small
    acc += tl.load(BIAS + o, mask=o_ok, other=0.0)[None, :]
    out = Y + t_out * out_channels * pixels + o[None, :].to(tl.int64) * pixels + p[:, None]
    tl.store(out, acc, mask=p_ok[:, None] & o_ok[None, :])


@triton.jit
def conv_channels_last_narrow(XB, XS, WB, WS, BIAS, Y, channels, height, width, out_channels,
                              out_height, out_width, stride_t, stride_hw, pad_h, pad_w,
                              KT: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                              BLOCK_P: tl.constexpr, BLOCK_O: tl.constexpr,
                              BLOCK_C: tl.constexpr, SPLIT_ACC: tl.constexpr,
                              TF32: tl.constexpr):
    """As `conv_channels_last`, for inputs with few channels (the encoder's RGB input): the
    reduction runs over (tap, channel) pairs flattened, so 3 channels do not pad to a block
    of 32 per tap."""
    pid_p = tl.program_id(0)
    pid_o = tl.program_id(1)
    t_out = tl.program_id(2).to(tl.int64)
    pixels = out_height * out_width
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    oy = (p // out_width) * stride_hw - pad_h
    ox = (p % out_width) * stride_hw - pad_w
    p_ok = p < pixels
    o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    o_ok = o < out_channels
    frame = t_out * stride_t * height * width * channels
    depth = KT * KH * KW * channels
    acc = tl.zeros([BLOCK_P, BLOCK_O], dtype=tl.float32)
    for k0 in range(0, depth, BLOCK_C):
        k = k0 + tl.arange(0, BLOCK_C)
        k_ok = k < depth
        tap = k // channels
        c = k % channels
        iy = oy[:, None] + ((tap // KW) % KH)[None, :]
        ix = ox[:, None] + (tap % KW)[None, :]
        ok = p_ok[:, None] & k_ok[None, :] & (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
        pixel = ((tap // (KH * KW))[None, :] * height + iy) * width + ix
        x_at = frame + pixel * channels + c[None, :]
        xb = tl.load(XB + x_at, mask=ok, other=0.0)
        w_at = o[:, None] * depth + k[None, :]
        w_mask = o_ok[:, None] & k_ok[None, :]
        wb = tl.trans(tl.load(WB + w_at, mask=w_mask, other=0.0))
        if not TF32:
            xs = tl.load(XS + x_at, mask=ok, other=0.0)
            ws = tl.trans(tl.load(WS + w_at, mask=w_mask, other=0.0))
            acc = tl.dot(xs, wb, acc, input_precision="tf32")
            acc = tl.dot(xb, ws, acc, input_precision="tf32")
        acc = tl.dot(xb, wb, acc, input_precision="tf32")
    acc += tl.load(BIAS + o, mask=o_ok, other=0.0)[None, :]
    out = Y + t_out * out_channels * pixels + o[None, :].to(tl.int64) * pixels + p[:, None]
    tl.store(out, acc, mask=p_ok[:, None] & o_ok[None, :])


SIGNATURE = {
    "XB": "*fp32", "XS": "*fp32", "WB": "*fp32", "WS": "*fp32", "BIAS": "*fp32", "Y": "*fp32",
    "channels": "i32", "height": "i32",
    "width": "i32", "out_channels": "i32", "out_height": "i32", "out_width": "i32",
    "stride_t": "i32", "stride_hw": "i32", "pad_h": "i32", "pad_w": "i32",
    "KT": "constexpr", "KH": "constexpr", "KW": "constexpr",
    "BLOCK_P": "constexpr", "BLOCK_O": "constexpr", "BLOCK_C": "constexpr", "SPLIT_ACC": "constexpr",
    "TF32": "constexpr",
}

# Kernel shapes of the Wan VAE's convolutions: 3x3x3 (most), 1x1x1 (shortcuts, head/tail
# projections, attention's 1x1 conv2d), 3x1x1 (temporal resampling), 1x3x3 (the spatial
# resamplers' conv2d).
KERNEL_SHAPES = [(3, 3, 3), (1, 1, 1), (3, 1, 1), (1, 3, 3)]

# Classes of convolution, by what the shapes let the kernel assume (the Rust side picks one,
# src/engine/fused_ops.rs): "wide" needs channels and out_channels multiples of 16, which
# makes every tile row a run of aligned 16-byte vectors; "thin" (out_channels < 64, e.g.
# the decoder's RGB head) needs channels multiples of 16; "narrow" takes anything. (Both
# need the weight rows, `depth = KT·KH·KW·C` long, to start 16-byte aligned, which
# channels multiples of 16 give.)
# Per class: kernel, arguments hinted as multiples of 16, (BLOCK_P, BLOCK_O, BLOCK_C, warps,
# stages, mode) tiles, mode False (f32-exact, three TF32 products), True (the same with two
# accumulators) or "tf32" (one TF32 product, `VACED_VAE_PRECISION=tf32`). The first tile of
# each precision is its default; `VACED_CONV_TILE` picks another by its name
# (`p128_o64_c32_w4_s3`), to compare.
CLASSES = {
    "wide": (conv_channels_last, ["XB", "XS", "WB", "WS", "channels"],
             [(128, 128, 32, 8, 3, False), (128, 64, 32, 4, 3, False), (256, 128, 16, 8, 4, False),
              (64, 128, 32, 4, 3, True), (128, 128, 32, 8, 3, "tf32"), (128, 128, 64, 8, 3, "tf32")]),
    "thin": (conv_channels_last, ["XB", "XS", "WB", "WS", "channels"],
             [(128, 16, 32, 4, 3, False), (128, 16, 32, 4, 3, "tf32")]),
    "narrow": (conv_channels_last_narrow, [], [(128, 64, 32, 4, 2, False), (128, 64, 32, 4, 2, "tf32")]),
}


def tile_name(tile):
    block_p, block_o, block_c, warps, stages, mode = tile
    suffix = {False: "", True: "_split", "tf32": "_tf32"}[mode]
    return f"p{block_p}_o{block_o}_c{block_c}_w{warps}_s{stages}{suffix}"


SPLIT_SIGNATURE = {"X": "*fp32", "BIG": "*fp32", "SMALL": "*fp32", "channels": "i32",
                   "pixels": "i32", "BLOCK_C": "constexpr", "BLOCK_P": "constexpr"}
FLAT_SPLIT_SIGNATURE = {"X": "*fp32", "BIG": "*fp32", "SMALL": "*fp32", "n_elements": "i64",
                        "BLOCK": "constexpr"}
# Tiles of the operand splitters; the Rust side (src/engine/vae/gemm_conv.rs) sizes grids
# with the same numbers.
SPLIT_BLOCK_C, SPLIT_BLOCK_P, FLAT_SPLIT_BLOCK = 32, 128, 2048


def splitters():
    """name → (kernel, signature, constexprs, warps) for kernels/compile.py's FUSED table."""
    return {
        "tf32_split_channels_last": (tf32_split_channels_last, SPLIT_SIGNATURE,
                                     {"BLOCK_C": SPLIT_BLOCK_C, "BLOCK_P": SPLIT_BLOCK_P}, 4),
        "tf32_split": (tf32_split, FLAT_SPLIT_SIGNATURE, {"BLOCK": FLAT_SPLIT_BLOCK}, 4),
    }


def variants():
    """name → (kernel, signature, constexprs, warps, stages, aligned argument names)."""
    out = {}
    for kt, kh, kw in KERNEL_SHAPES:
        for cls, (fn, aligned, tiles) in CLASSES.items():
            # Only the 3x3x3 convolutions, most of the VAE's work, carry alternative tiles;
            # the others get each precision's default.
            defaults = [next(t for t in tiles if (t[5] == "tf32") == tf32) for tf32 in (False, True)]
            for tile in tiles if kt * kh * kw == 27 else defaults:
                block_p, block_o, block_c, warps, stages, mode = tile
                name = f"conv_{kt}{kh}{kw}_{cls}_{tile_name(tile)}"
                out[name] = (fn, SIGNATURE,
                             {"KT": kt, "KH": kh, "KW": kw, "BLOCK_P": block_p,
                              "BLOCK_O": block_o, "BLOCK_C": block_c, "SPLIT_ACC": mode is True,
                              "TF32": mode == "tf32"},
                             warps, stages, aligned)
    return out
