"""Compiles vaced's Triton kernels ahead of time: `compile.py OUT_DIR [ARCH]`.

build.rs runs this for `--features cuda` builds (no GPU needed). It writes one cubin per
kernel variant into OUT_DIR and `kernels.rs`, four tables the Rust engine embeds
(src/engine/cuda_kernels.rs): ATTENTION (kernels/flash_attention.py, and the warp-specialised
Gluon kernels of kernels/flash_attention_ws.py, whose Q/K/V are TMA descriptors), FUSED
(kernels/fused_ops.py, kernels/channel_norm.py, the splitters of kernels/causal_conv.py, the
quantizers of kernels/quantized_attention.py), CONV (kernels/causal_conv.py) and
QUANTIZED_ATTENTION (kernels/flash_attention_i8f8.py, kernels/flash_attention_i8.py, then
kernels/quantized_attention.py). A cubin's parameters are its kernel's
non-constexpr arguments in order, then two scratch pointers Triton appends, passed as null:
compilation fails here if a kernel would need either.
"""

import json
import sys
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton.experimental.gluon._runtime import GluonASTSource

sys.path.insert(0, str(Path(__file__).resolve().parent))
import causal_conv  # noqa: E402
import channel_norm  # noqa: E402
import flash_attention  # noqa: E402
import flash_attention_i8  # noqa: E402
import flash_attention_i8f8  # noqa: E402
import flash_attention_ws  # noqa: E402
import fused_ops  # noqa: E402
import quantized_attention  # noqa: E402


def compile_one(out: Path, arch: int, name: str, fn, signature, constexprs, warps, stages, attrs=None,
                gluon=False, maxnreg=None, with_meta=False):
    source = GluonASTSource if gluon else ASTSource
    src = source(fn=fn, signature=signature, constexprs=constexprs, attrs=attrs or {})
    options = {"num_warps": warps, "num_stages": stages}
    if maxnreg is not None:
        options["maxnreg"] = maxnreg
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    meta = kernel.metadata
    if getattr(meta, "global_scratch_size", 0) or getattr(meta, "profile_scratch_size", 0):
        raise SystemExit(f"{name}: needs Triton scratch memory, which the Rust launcher does not provide")
    cubin = out / f"{name}.cubin"
    cubin.write_bytes(kernel.asm["cubin"])
    print(f"{name}: {meta.shared} B shared, {len(kernel.asm['cubin'])} B cubin")
    # Warp-specialised kernels run more warps than `num_warps` (their worker partitions).
    image = (f"name: {json.dumps(name)}, function: {json.dumps(meta.name)}, num_warps: {meta.num_warps}, "
             f"shared_bytes: {meta.shared}, cubin: include_bytes!({json.dumps(str(cubin.resolve()))})")
    return (image, meta) if with_meta else image


def compile_warp_specialized(out: Path, arch: int, module, fn, prefix: str):
    """Every variant of a warp-specialised Gluon attention kernel (head width 128):
    `(name, image, block_n, (q_box, k_box, v_box))`, the boxes its TMA descriptors were
    compiled for (all 128-byte swizzled, which the Rust side assumes)."""
    names = list(module.signature(128))
    aligned = {(names.index(a),): [["tt.divisibility", 16]] for a in module.ALIGNED_ARGS}
    for block_n, stages, pingpong in module.VARIANTS:
        name = f"{prefix}_hd128_n{block_n}_s{stages}" + ("_pp" if pingpong else "")
        image, meta = compile_one(out, arch, name, fn, module.signature(block_n),
                                  {"HEAD_DIM": 128, "BLOCK_N": block_n, "STAGES": stages, "PINGPONG": pingpong},
                                  4, 1, aligned, gluon=True, maxnreg=module.MAXNREG, with_meta=True)
        if any(d["swizzle"] != 3 for d in meta.tensordesc_meta):
            raise SystemExit(f"{name}: unexpected TMA swizzle {meta.tensordesc_meta}")
        yield name, image, block_n, tuple(d["block_size"] for d in meta.tensordesc_meta)


def attention_entry(module, image: str, boxes: str) -> str:
    """An `AttentionKernel` table entry for a warp-specialised kernel of `module`."""
    return (f"    AttentionKernel {{ head_dim: 128, block_m: {module.CONSUMERS.value * module.ROWS_PER_CONSUMER.value}, "
            f"tma: Some(TmaBoxes {{ {boxes} }}), image: KernelImage {{ {image} }} }},")


def main(out_dir: str, arch: int) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(flash_attention.SIGNATURE)
    aligned = {(names.index(a),): [["tt.divisibility", 16]] for a in flash_attention.ALIGNED_ARGS}
    attention = []
    for head_dim, block_m, block_n, warps, stages in flash_attention.VARIANTS:
        name = f"hd{head_dim}_m{block_m}_n{block_n}_w{warps}_s{stages}"
        constexprs = {"HEAD_DIM": head_dim, "D_PAD": max(16, triton.next_power_of_2(head_dim)),
                      "BLOCK_M": block_m, "BLOCK_N": block_n}
        image = compile_one(out, arch, f"attention_{name}", flash_attention.attention_fwd,
                            flash_attention.SIGNATURE, constexprs, warps, stages, aligned)
        image = image.replace(f'name: "attention_{name}"', f'name: "{name}"')
        attention.append(f"    AttentionKernel {{ head_dim: {head_dim}, block_m: {block_m}, tma: None, "
                         f"image: KernelImage {{ {image} }} }},")
    # The warp-specialised kernels come first: the first kernel of a width that can read the
    # inputs is the default (src/engine/attention/flash_cuda.rs).
    ws = flash_attention_ws
    warp_specialized = []
    for name, image, block_n, (q_box, k_box, v_box) in compile_warp_specialized(out, arch, ws, ws.attention_ws, "ws"):
        if k_box != v_box or q_box[1] != k_box[1]:
            raise SystemExit(f"{name}: unexpected TMA boxes {q_box} {k_box} {v_box}")
        warp_specialized.append(attention_entry(ws, image, f"q_rows: {q_box[0]}, kv_rows: {k_box[0]}, "
                                                f"cols: {k_box[1]}, values: Values::Bf16Rows"))
    attention = warp_specialized + attention
    # The warp-specialised 8-bit kernels, first in the 8-bit table (the default for width 128):
    # both products 8-bit, then INT8 q·kᵀ with bf16 p·v.
    quantized = []
    f8 = flash_attention_i8f8
    for name, image, block_n, (q_box, k_box, v_box) in compile_warp_specialized(out, arch, f8, f8.attention_i8f8,
                                                                               "qattn_ws8"):
        # int8 q and k, fp8 vᵀ (128 channels × a key block): every box is 128 bytes wide.
        if [q_box[1], k_box[1], v_box[1], v_box[0]] != [128, 128, block_n, 128] or k_box[0] != block_n:
            raise SystemExit(f"{name}: unexpected TMA boxes {q_box} {k_box} {v_box}")
        quantized.append(attention_entry(f8, image, f"q_rows: {q_box[0]}, kv_rows: {k_box[0]}, cols: 128, "
                                         "values: Values::Fp8Transposed"))
    i8 = flash_attention_i8
    for name, image, block_n, (q_box, k_box, v_box) in compile_warp_specialized(out, arch, i8, i8.attention_i8,
                                                                               "qattn_ws"):
        # int8 q and k, bf16 v: every box is 128 bytes wide (the Rust side relies on it).
        if [q_box[1], k_box[1], v_box[1] * 2] != [128] * 3 or k_box[0] != v_box[0]:
            raise SystemExit(f"{name}: unexpected TMA boxes {q_box} {k_box} {v_box}")
        quantized.append(attention_entry(i8, image, f"q_rows: {q_box[0]}, kv_rows: {k_box[0]}, "
                                         f"cols: {v_box[1]}, values: Values::Bf16Rows"))
    fused = []
    for name, (fn, signature, constexprs, warps, *aligned) in [*fused_ops.variants().items(),
                                                                *causal_conv.splitters().items(),
                                                                *channel_norm.variants().items()]:
        names = list(signature)
        hints = {(names.index(a),): [["tt.divisibility", 16]] for a in (aligned[0] if aligned else [])}
        fused.append(f"    KernelImage {{ {compile_one(out, arch, name, fn, signature, constexprs, warps, 1, hints)} }},")
    for name, (fn, signature, constexprs, warps, stages, aligned_args) in quantized_attention.variants().items():
        names = list(signature)
        hints = {(names.index(a),): [["tt.divisibility", 16]] for a in aligned_args}
        image = compile_one(out, arch, name, fn, signature, constexprs, warps, stages, hints)
        if fn is quantized_attention.attention_fwd:
            quantized.append(f"    AttentionKernel {{ head_dim: {constexprs['HEAD_DIM']}, "
                             f"block_m: {constexprs['BLOCK_M']}, tma: None, image: KernelImage {{ {image} }} }},")
        else:
            fused.append(f"    KernelImage {{ {image} }},")
    conv = []
    for name, (fn, signature, constexprs, warps, stages, aligned) in causal_conv.variants().items():
        names = list(signature)
        hints = {(names.index(a),): [["tt.divisibility", 16]] for a in aligned}
        image = compile_one(out, arch, name, fn, signature, constexprs, warps, stages, hints)
        _, shape, cls, tile = name.split("_", 3)
        conv.append(f"    ConvKernel {{ kernel: [{', '.join(shape)}], class: {json.dumps(cls)}, "
                    f"tile: {json.dumps(tile)}, block_p: {constexprs['BLOCK_P']}, "
                    f"block_o: {constexprs['BLOCK_O']}, image: KernelImage {{ {image} }} }},")
    table = "\n".join([
        f"// Generated by kernels/compile.py with Triton {triton.__version__} for sm_{arch}.",
        "pub const ATTENTION: &[AttentionKernel] = &[", *attention, "];",
        "pub const FUSED: &[KernelImage] = &[", *fused, "];",
        "pub const CONV: &[ConvKernel] = &[", *conv, "];",
        "pub const QUANTIZED_ATTENTION: &[AttentionKernel] = &[", *quantized, "];", ""])
    (out / "kernels.rs").write_text(table)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 90)
