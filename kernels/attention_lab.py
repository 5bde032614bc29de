"""Times and checks the warp-specialised attention kernels on a GPU, straight from their
Python sources (no Rust build): `python3 kernels/attention_lab.py [--heads 12 --seq 32760]`.

For trying kernel changes on the device machine in seconds. Inputs are random bf16
`[1, heads, seq, 128]`; the 8-bit kernels get their quantized copies from PyTorch here
(the same recipe as kernels/quantized_attention.py's quantizers). Relative errors are
against PyTorch's f32 attention on the first heads; times are medians of
triton.testing.do_bench. Needs PyTorch and Triton 3.6 (the device machine has both).
"""

import argparse
import importlib
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import triton
from triton.experimental.gluon.nvidia.hopper import TensorDescriptor
from triton.experimental.gluon.language import NVMMASharedLayout
import triton.language as tl

sys.path.insert(0, str(Path(__file__).resolve().parent))
import flash_attention_i8 as i8  # noqa: E402
import flash_attention_i8f8 as i8f8  # noqa: E402
import flash_attention_ws as ws  # noqa: E402
import quantized_attention as qa  # noqa: E402

LOG2E = 1.4426950408889634
PAD = 128


def desc(t, rows, cols, dt):
    return TensorDescriptor.from_tensor(t, [rows, cols], NVMMASharedLayout.get_default_for([rows, cols], dt))


def padded(x, l_pad):
    bh, l, d = x.shape
    out = torch.zeros(bh, l_pad, d, dtype=x.dtype, device=x.device)
    out[:, :l] = x
    return out


def key_order(l_pad, device):
    """Position of each key in the permuted V: within 32-key groups, 16a + 8b + 2t + e →
    16a + 4t + 2b + e (kernels/flash_attention_i8f8.py)."""
    c = torch.arange(l_pad, device=device)
    g, r = c // 32, c % 32
    a, b, t, e = r // 16, (r // 8) % 2, (r // 2) % 4, r % 2
    return g * 32 + a * 16 + t * 4 + b * 2 + e


def quantize(q, k, v, scale):
    """q, k, v: [BH, L, 128] bf16 → the 8-bit kernels' inputs."""
    bh, l, d = q.shape
    l_pad = triton.cdiv(l, PAD) * PAD
    qf = q.float() * (scale * LOG2E)
    qs = qf.abs().amax(-1).clamp_min(1e-30) / 127
    q8 = padded(torch.round(qf / qs[..., None]).to(torch.int8), l_pad)
    kc = k.float() - k.float().mean(1, keepdim=True)
    kc = padded(kc, l_pad).view(bh, l_pad // PAD, PAD, d)
    ks = kc.abs().amax((-1, -2)).clamp_min(1e-30) / 127
    k8 = torch.round(kc / ks[..., None, None]).to(torch.int8).view(bh, l_pad, d)
    vm = v.float().mean(1)
    vr = (v.float() - vm[:, None]).abs().amax(1)
    vq = ((v.float() - vm[:, None]) * torch.where(vr > 0, 448 / vr, 0)[:, None]).to(torch.float8_e4m3fn)
    vt = torch.zeros(bh, d, l_pad, dtype=torch.float8_e4m3fn, device=q.device)
    vt[:, :, key_order(l_pad, q.device)[:l]] = vq.transpose(1, 2)
    return dict(l_pad=l_pad, q8=q8, qs=padded(qs[..., None], l_pad)[..., 0].contiguous(), k8=k8,
                ks=ks.contiguous(), vt=vt, vmean=vm.contiguous(), vrange=vr.contiguous())


def run_ws(q, k, v, o, scale, variant):
    bh, l, d = q.shape
    block_n, stages, pp = variant
    grid = (triton.cdiv(l, 128), bh)
    ws.attention_ws[grid](desc(q.view(-1, d), 64, d, tl.bfloat16), desc(k.view(-1, d), block_n, d, tl.bfloat16),
                          desc(v.view(-1, d), block_n, d, tl.bfloat16), o, l, l, bh, scale * LOG2E,
                          0, l * d, d, 0, l * d, d, 0, l * d, d, 0, l * d, d,
                          HEAD_DIM=d, BLOCK_N=block_n, STAGES=stages, PINGPONG=pp, num_warps=4, maxnreg=ws.MAXNREG)


def run_i8(qq, v, o, variant):
    bh, l, d = v.shape
    block_n, stages, pp = variant
    lp = qq["l_pad"]
    grid = (triton.cdiv(l, 128), bh)
    i8.attention_i8[grid](desc(qq["q8"].view(-1, d), 64, d, tl.int8), desc(qq["k8"].view(-1, d), block_n, d, tl.int8),
                          desc(v.view(-1, d), block_n, d, tl.bfloat16), qq["qs"], qq["ks"], o, l, l, lp, lp, bh,
                          0, l * d, d, 0, l * d, d,
                          HEAD_DIM=d, BLOCK_N=block_n, STAGES=stages, PINGPONG=pp, num_warps=4, maxnreg=i8.MAXNREG)


def run_i8f8(qq, o, l, variant, module=i8f8):
    bh = qq["q8"].shape[0]
    d = 128
    block_n, stages, pp = variant
    lp = qq["l_pad"]
    grid = (triton.cdiv(l, 128), bh)
    module.attention_i8f8[grid](
        desc(qq["q8"].view(-1, d), 64, d, tl.int8), desc(qq["k8"].view(-1, d), block_n, d, tl.int8),
        desc(qq["vt"].view(-1, lp), d, block_n, tl.float8e4nv), qq["qs"], qq["ks"], qq["vmean"], qq["vrange"], o,
        l, l, lp, lp, bh, 0, l * d, d,
        HEAD_DIM=d, BLOCK_N=block_n, STAGES=stages, PINGPONG=pp, num_warps=4, maxnreg=module.MAXNREG)


def time_quantizers(q, k, v, scale):
    """The quantizers of kernels/quantized_attention.py with src/engine/attention/
    quantized_cuda.rs's grids, on [1, BH, L, 128] views of q, k, v."""
    bh, l, d = q.shape
    lp = triton.cdiv(l, PAD) * PAD
    f32 = dict(dtype=torch.float32, device="cuda")
    ksum, vmean, vrange = (torch.empty(bh, d, **f32) for _ in range(3))
    part = torch.empty(bh, triton.cdiv(l, qa.STATS_CHUNK), 4, d, **f32)
    q8 = torch.empty(bh, lp, d, dtype=torch.int8, device="cuda")
    k8 = torch.empty_like(q8)
    qs = torch.empty(bh, lp, **f32)
    ks = torch.empty(bh, lp // PAD, **f32)
    vt = torch.empty(bh, d, lp, dtype=torch.float8_e4m3fn, device="cuda")
    st = (0, q.stride(0), q.stride(1))
    assert k.stride() == q.stride() == v.stride() and q.stride(2) == 1
    dims = dict(HEAD_DIM=d, D_PAD=d)
    steps = {
        "column_partials": lambda: qa.column_partials[(bh, triton.cdiv(l, qa.STATS_CHUNK))](
            k, v, part, l, bh, *st, *st, **dims, BLOCK_L=qa.PARTIALS_ROWS, CHUNK=qa.STATS_CHUNK, num_warps=4, num_stages=1),
        "column_stats": lambda: qa.column_stats[(bh, )](part, ksum, vmean, vrange, l, triton.cdiv(l, qa.STATS_CHUNK),
                                                        **dims, num_warps=4, num_stages=1),
        "quantize_rows q": lambda: qa.quantize_rows[(lp // 64, bh)](q, ksum, q8, qs, l, lp, bh, *st,
                                                                    scale * LOG2E, 1 / l, **dims, BLOCK_L=64,
                                                                    CENTER=False, num_warps=4, num_stages=1),
        "quantize_k_blocks": lambda: qa.quantize_k_blocks[(lp // PAD, bh)](k, ksum, k8, ks, l, lp, bh, *st, 1 / l,
                                                                           **dims, BLOCK_L=PAD, num_warps=8,
                                                                           num_stages=1),
        "quantize_v permuted": lambda: qa.quantize_v[(lp // 128, bh)](v, vmean, vrange, vt, l, lp, bh, *st, **dims,
                                                                      BLOCK_L=128, PERMUTED=True, num_warps=4,
                                                                     num_stages=1),
    }
    total = 0.0
    for name, fn in steps.items():
        fn()
        ms = triton.testing.do_bench(fn, warmup=50, rep=200, return_mode="median")
        total += ms
        print(f"{name}: {ms:.3f} ms", flush=True)
    print(f"quantizers: {total:.3f} ms", flush=True)
    want = quantize(q, k, v, scale)
    for name, got, ref in [("vmean", vmean, want["vmean"]), ("vrange", vrange, want["vrange"]),
                           ("k sum", ksum, k.float().sum(1)), ("v fp8", vt.float(), want["vt"].float()),
                           ("q int8", q8.float(), want["q8"].float()), ("q scales", qs, want["qs"]),
                           ("k int8", k8.float(), want["k8"].float()), ("k scales", ks, want["ks"])]:
        print(f"{name}: max abs difference from PyTorch's {(got - ref).abs().max().item():.3e}, "
              f"finite {torch.isfinite(got).all().item()}", flush=True)
    return dict(l_pad=lp, q8=q8, qs=qs.view(-1), k8=k8, ks=ks, vt=vt, vmean=vmean, vrange=vrange)


# Probes: the 8-bit kernel with one part of its work removed (wrong results, true timings),
# to see what bounds it. Each is a list of (text of kernels/flash_attention_i8f8.py,
# replacement).
_V_LOAD = """mbarrier.expect(v_ready.index(s), v_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(v_desc, [v_row, j * BLOCK_N], v_ready.index(s), v_smem.index(s))"""
_K_LOAD = """mbarrier.expect(k_ready.index(s), k_desc.block_type.nbytes)
        tma.async_copy_global_to_shared(k_desc, [k_row + j * BLOCK_N, 0], k_ready.index(s), k_smem.index(s))"""
_SOFTMAX = "p, m_i, alpha = _softmax(s, m_i, q_scale * gl.load(ks_ptr + j), 0, False, BLOCK_N, s_layout)"
PROBES = {
    "no_softmax": [(_SOFTMAX, "p = s.to(gl.float32, bitcast=True)\n        alpha = m_i")],
    "no_exp": [("p = gl.exp2(s * r[:, None] - (m_new + bias - LOG2_FP8_MAX)[:, None])",
                "p = s * r[:, None] - (m_new + bias - LOG2_FP8_MAX)[:, None]")],
    "no_row_max": [("m_new = gl.maximum(m_i, gl.max(s, 1) * r - bias)", "m_new = m_i * 0.0 + 20.0 * r")],
    "no_row_sum": [("l_i = l_i * alpha + gl.sum(p, 1)\n        p_op", "l_i = l_i * alpha + 1.0\n        p_op")],
    "no_kv_loads": [(_V_LOAD, "mbarrier.arrive(v_ready.index(s), count=1)"),
                    (_K_LOAD, "mbarrier.arrive(k_ready.index(s), count=1)")],
}


def probe_module(name):
    """kernels/flash_attention_i8f8.py with probe `name`'s edits, imported from a temporary copy."""
    src = (Path(__file__).resolve().parent / "flash_attention_i8f8.py").read_text()
    for old, new in PROBES[name]:
        if old not in src:
            raise SystemExit(f"probe {name}: the kernel no longer contains {old!r}")
        src = src.replace(old, new)
    folder = Path(tempfile.mkdtemp())
    (folder / f"probe_{name}.py").write_text(src)
    sys.path.insert(0, str(folder))
    return importlib.import_module(f"probe_{name}")


def rel(o, ref):
    return ((o.float() - ref).norm() / ref.norm()).item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--seq", type=int, default=32760)
    ap.add_argument("--check-heads", type=int, default=2)
    ap.add_argument("--peak", type=float, default=1.0, help="scales q: sharper softmax rows")
    ap.add_argument("--only", default="", help="comma-separated kernel names to run")
    ap.add_argument("--quantizers", action="store_true", help="also time the quantizers as vaced launches them")
    ap.add_argument("--strided", action="store_true", help="heads interleaved in memory ([L, H, D]), as in the model")
    ap.add_argument("--probes", action="store_true",
                    help="also time the 8-bit kernel with parts of its work removed (PROBES)")
    ap.add_argument("--sustain", type=float, default=0.0, metavar="SECS",
                    help="also run each kernel back to back for SECS seconds and print ms a call each second: "
                         "a 14B step loads the GPU for ~17 s, do_bench for half a second")
    args = ap.parse_args()
    torch.manual_seed(0)
    bh, l, d = args.heads, args.seq, 128
    shape = (l, bh, d) if args.strided else (bh, l, d)
    # As tests/attention.rs draws them: k with a large shared offset, v off centre.
    q, k, v = (((torch.randn(*shape, device="cuda") * 1.5 + shift) * f).bfloat16()
               for f, shift in ((args.peak, 0.0), (args.peak, 2.0), (1, 0.5)))
    if args.strided:
        q, k, v = (x.transpose(0, 1) for x in (q, k, v))
    scale = 1 / math.sqrt(d)
    c = args.check_heads
    ref = torch.nn.functional.scaled_dot_product_attention(q[:c].float()[None], k[:c].float()[None],
                                                           v[:c].float()[None])[0]
    qq = quantize(q, k, v, scale)
    flops = 4 * bh * l * l * d
    runs = {}
    for var in ws.VARIANTS:
        runs["ws_n%d_s%d%s" % (var[0], var[1], "_pp" if var[2] else "")] = lambda o, var=var: run_ws(q, k, v, o, scale, var)
    for var in i8.VARIANTS:
        runs["i8_n%d_s%d%s" % (var[0], var[1], "_pp" if var[2] else "")] = lambda o, var=var: run_i8(qq, v, o, var)
    for var in i8f8.VARIANTS:
        runs["i8f8_n%d_s%d%s" % (var[0], var[1], "_pp" if var[2] else "")] = lambda o, var=var: run_i8f8(qq, o, l, var)
    if args.probes:
        for probe in PROBES:
            runs[f"i8f8_probe_{probe}"] = lambda o, m=probe_module(probe): run_i8f8(qq, o, l, i8f8.VARIANTS[0], m)
    only = [n for n in args.only.split(",") if n]
    if args.quantizers:
        tq = time_quantizers(q, k, v, scale)
        o = torch.full((bh, l, d), float("nan"), dtype=torch.bfloat16, device="cuda")
        run_i8f8(tq, o, l, i8f8.VARIANTS[0])
        print(f"i8f8 on the Triton quantizers' copies: rel err {rel(o[:c], ref):.2e}, "
              f"finite {torch.isfinite(o.float()).all().item()}", flush=True)
    for name, fn in runs.items():
        if only and name not in only:
            continue
        o = torch.full((bh, l, d), float("nan"), dtype=torch.bfloat16, device="cuda")
        try:
            fn(o)
            torch.cuda.synchronize()
        except Exception as e:  # a variant that fails to compile or run is reported, not fatal
            print(f"{name}: failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
            continue
        written = not torch.isnan(o.float()).any().item()
        err = rel(o[:c], ref)
        ms = triton.testing.do_bench(lambda: fn(o), warmup=100, rep=500, return_mode="median")
        print(f"{name}: {ms:.3f} ms, {flops / ms / 1e9:.0f} TFLOP/s, rel err {err:.2e}, all written {written}",
              flush=True)
        if args.sustain > 0:
            print(f"{name} sustained, ms a call:", " ".join(f"{t:.2f}" for t in sustain(lambda: fn(o), args.sustain)),
                  flush=True)


def sustain(fn, secs):
    """Launches fn back to back for secs seconds; the mean time a call over each second."""
    times, end = [], time.time() + secs
    while time.time() < end:
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        calls, second = 0, time.time() + 1
        start.record()
        while time.time() < second:
            fn()
            calls += 1
            torch.cuda.synchronize()
        stop.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(stop) / calls)
    return times


if __name__ == "__main__":
    main()
