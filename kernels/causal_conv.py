"""The VAE's convolutions as one implicit-GEMM kernel (Triton), for vaced's CUDA engine.

candle's CUDA conv2d materialises im2col matrices (on the VAE at 832x480 that pass was half
of all GPU time, and 45 GiB at peak) and the 3-D causal convolution ran as one conv2d per
temporal tap plus adds. This kernel reads the input frames in place and accumulates every
(dt, dy, dx, channel) tap into one output tile.

Products use Triton's "tf32x3" precision: three TF32 tensor-core products per tile, which
keeps f32 accuracy (the VAE runs in f32 in the reference) at several times the speed of
plain f32 FMA.
"""

import triton
import triton.language as tl


@triton.jit
def causal_conv3d(X, W, BIAS, Y, channels, height, width, out_channels, out_height, out_width,
                  stride_t, pad_h, pad_w,
                  KT: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                  BLOCK_P: tl.constexpr, BLOCK_O: tl.constexpr, BLOCK_C: tl.constexpr):
    """Y[t, o, p] = bias[o] + Σ X[t·stride_t + dt, c, y + dy − pad_h, x + dx − pad_w] · W[k, o]
    with k = ((dt·KH + dy)·KW + dx)·C + c; X `[T_in, C, H, W]`, W `[KT·KH·KW·C, O]`,
    Y `[T_out, O, OH, OW]`, all contiguous f32; spatial stride 1; out of range reads are 0."""
    pid_p = tl.program_id(0)
    pid_o = tl.program_id(1)
    t_out = tl.program_id(2).to(tl.int64)
    pixels = out_height * out_width
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    oy = p // out_width
    ox = p % out_width
    p_ok = p < pixels
    o = pid_o * BLOCK_O + tl.arange(0, BLOCK_O)
    o_ok = o < out_channels
    c_range = tl.arange(0, BLOCK_C)
    plane = height * width
    c_blocks = tl.cdiv(channels, BLOCK_C)
    acc = tl.zeros([BLOCK_P, BLOCK_O], dtype=tl.float32)
    # One flat loop over (tap, channel block), so the loads pipeline across taps.
    for step in range(0, KT * KH * KW * c_blocks):
        tap = step // c_blocks
        c = (step % c_blocks) * BLOCK_C + c_range
        dt = tap // (KH * KW)
        dy = (tap // KW) % KH
        dx = tap % KW
        iy = oy + dy - pad_h
        ix = ox + dx - pad_w
        ok = p_ok & (iy >= 0) & (iy < height) & (ix >= 0) & (ix < width)
        c_ok = c < channels
        frame = X + (t_out * stride_t + dt) * channels * plane
        x = tl.load(frame + c[None, :].to(tl.int64) * plane + (iy * width + ix)[:, None],
                    mask=ok[:, None] & c_ok[None, :], other=0.0)
        w = tl.load(W + (tap * channels + c)[:, None].to(tl.int64) * out_channels + o[None, :],
                    mask=c_ok[:, None] & o_ok[None, :], other=0.0)
        acc = tl.dot(x, w, acc, input_precision="tf32x3")
    acc += tl.load(BIAS + o, mask=o_ok, other=0.0)[None, :]
    out = Y + t_out * out_channels * pixels + o[None, :].to(tl.int64) * pixels + p[:, None]
    tl.store(out, acc, mask=p_ok[:, None] & o_ok[None, :])


SIGNATURE = {
    "X": "*fp32", "W": "*fp32", "BIAS": "*fp32", "Y": "*fp32", "channels": "i32", "height": "i32",
    "width": "i32", "out_channels": "i32", "out_height": "i32", "out_width": "i32",
    "stride_t": "i32", "pad_h": "i32", "pad_w": "i32",
    "KT": "constexpr", "KH": "constexpr", "KW": "constexpr",
    "BLOCK_P": "constexpr", "BLOCK_O": "constexpr", "BLOCK_C": "constexpr",
}

# Kernel shapes of the Wan VAE's convolutions: 3x3x3 (most), 1x1x1 (shortcuts, head/tail
# projections, attention's 1x1 conv2d), 3x1x1 (temporal resampling), 1x3x3 (the spatial
# upsamplers' conv2d).
KERNEL_SHAPES = [(3, 3, 3), (1, 1, 1), (3, 1, 1), (1, 3, 3)]
BLOCK_P, BLOCK_O, BLOCK_C, WARPS, STAGES = 128, 64, 32, 4, 2


def variants():
    out = {}
    for kt, kh, kw in KERNEL_SHAPES:
        out[f"causal_conv3d_{kt}{kh}{kw}"] = (
            causal_conv3d, SIGNATURE,
            {"KT": kt, "KH": kh, "KW": kw, "BLOCK_P": BLOCK_P, "BLOCK_O": BLOCK_O, "BLOCK_C": BLOCK_C},
            WARPS, STAGES)
    return out
