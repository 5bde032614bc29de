"""The VAE's channel RMS norm, optionally followed by SiLU, as one Triton kernel.

`RMS_norm` in wan/modules/vae.py is `F.normalize(x, dim=1) · √C · γ` over the channels of
`[T, C, H, W]` activations; candle ran it as seven passes through memory (square, sum over a
strided axis, sqrt, clamp, divide, two products) and SiLU as an eighth. Here each program
normalises a block of pixels across all channels in registers.
"""

import triton
import triton.language as tl


@triton.jit
def channel_rms_norm(X, GAMMA, Y, channels, pixels, scale,
                     C_PAD: tl.constexpr, BLOCK_P: tl.constexpr, SILU: tl.constexpr):
    """Y[t, c, p] = X[t, c, p] / max(‖X[t, :, p]‖, 1e-12) · scale · γ[c], then SiLU if SILU;
    X, Y `[T, C, P]` contiguous f32, γ `[C]`."""
    pid_p = tl.program_id(0)
    t = tl.program_id(1).to(tl.int64)
    c = tl.arange(0, C_PAD)
    p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    mask = (c < channels)[:, None] & (p < pixels)[None, :]
    at = t * channels * pixels + c[:, None] * pixels + p[None, :]
    x = tl.load(X + at, mask=mask, other=0.0)
    norm = tl.maximum(tl.sqrt(tl.sum(x * x, axis=0)), 1e-12)
    gamma = tl.load(GAMMA + c, mask=c < channels, other=0.0)
    y = x / norm[None, :] * scale * gamma[:, None]
    if SILU:
        y = y / (1.0 + tl.exp(-y))
    tl.store(Y + at, y, mask=mask)


SIGNATURE = {"X": "*fp32", "GAMMA": "*fp32", "Y": "*fp32", "channels": "i32", "pixels": "i32",
             "scale": "fp32", "C_PAD": "constexpr", "BLOCK_P": "constexpr", "SILU": "constexpr"}
# Pixels per program; the Rust side (src/engine/vae/channel_norm.rs) sizes grids with it.
BLOCK_P = 32
# Channel counts padded to powers of two: the Wan VAE has 96, 192 and 384 (and 128 and 256
# for other widths).
C_PADS = [128, 256, 512]


def variants():
    """name → (kernel, signature, constexprs, warps) for kernels/compile.py's FUSED table."""
    out = {}
    for c_pad in C_PADS:
        for silu in (False, True):
            name = f"channel_rms_norm{'_silu' if silu else ''}_{c_pad}"
            out[name] = (channel_rms_norm, SIGNATURE,
                         {"C_PAD": c_pad, "BLOCK_P": BLOCK_P, "SILU": silu}, 8 if c_pad > 128 else 4)
    return out
