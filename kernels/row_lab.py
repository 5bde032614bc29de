"""Times the row kernels of kernels/fused_ops.py from source, at several warp counts, on a
GPU machine with PyTorch and Triton (the device machine has both): how the warp counts in
`fused_ops.variants()` were chosen. Rows that are two powers of two wide (the models' 1536
and 5120) are timed both padded to the next power of two and as two whole parts (`TAIL`),
the variant vaced takes for them. Run from the repository root:

    python3 kernels/row_lab.py [--tokens 32760] [--dim 1536] [--hidden 8960]
    python3 kernels/row_lab.py --tokens 75600 --dim 5120 --hidden 13824   # the 14B's rows
"""

import argparse
import sys
from pathlib import Path

import torch
from triton.testing import do_bench

sys.path.insert(0, str(Path(__file__).parent))
import fused_ops  # noqa: E402


def report(name, warps, launch, bytes_moved):
    micros = do_bench(launch, rep=200) * 1e3
    print(f"{name:<36} {warps:>2} warps: {micros:7.1f} us  {bytes_moved / micros / 1e6:5.2f} TB/s", flush=True)


def shapes(dim):
    """(label, BLOCK, TAIL) for rows of `dim`: padded, and split where it is two powers of two."""
    block = 1 << (dim - 1).bit_length()
    out = [(f"padded {block}", block, 0)]
    head = block // 2
    if dim > head and (dim - head) & (dim - head - 1) == 0:
        out.append((f"{head}+{dim - head}", head, dim - head))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32760)
    parser.add_argument("--dim", type=int, default=1536)
    parser.add_argument("--hidden", type=int, default=8960)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--warps", default="1,2,4,8,16", help="comma-separated warp counts")
    args = parser.parse_args()
    rows, dim, hidden, hd = args.tokens, args.dim, args.hidden, args.head_dim
    cuda = torch.device("cuda")

    x = torch.randn(rows, dim, device=cuda)
    w, b = torch.randn(1, dim, device=cuda), torch.randn(1, dim, device=cuda)
    y_bf16 = torch.empty(rows, dim, device=cuda, dtype=torch.bfloat16)
    q8 = torch.empty(rows, dim, device=cuda, dtype=torch.float8_e4m3fn)
    scales = torch.empty(rows, device=cuda)
    y = torch.randn(rows, dim, device=cuda, dtype=torch.bfloat16)
    bias = torch.randn(dim, device=cuda, dtype=torch.bfloat16)
    norm_w = torch.randn(dim, device=cuda)
    cos, sin = torch.randn(rows, hd // 2, device=cuda), torch.randn(rows, hd // 2, device=cuda)
    h = torch.randn(rows, hidden, device=cuda, dtype=torch.bfloat16)
    h8 = torch.empty(rows, hidden, device=cuda, dtype=torch.float8_e4m3fn)

    for warps in (int(w) for w in args.warps.split(",")):
        for label, block, tail in shapes(dim):
            report(f"layer_norm_affine (bf16) {label}", warps, lambda: fused_ops.layer_norm_affine[(rows,)](
                x, w, b, y_bf16, dim, rows, 1e-6, BLOCK=block, TAIL=tail, num_warps=warps), rows * dim * 6)
            report(f"layer_norm_affine_fp8 {label}", warps, lambda: fused_ops.layer_norm_affine_fp8[(rows,)](
                x, w, b, q8, scales, dim, rows, 1e-6, BLOCK=block, TAIL=tail, num_warps=warps), rows * dim * 5)
            for half in (0, hd // 2):
                report(f"bias_rms_norm_rope{f'_h{half}' if half else ''} {label}", warps,
                       lambda half=half: fused_ops.bias_rms_norm_rope[(rows,)](
                           y, bias, norm_w, cos, sin, y_bf16, dim, rows, hd // 2, 1e-6, ROPE=True,
                           BLOCK_PAIRS=block // 2, HALF_HEAD=half, TAIL_PAIRS=tail // 2, num_warps=warps),
                       rows * dim * 4)
            report(f"bias_rms_norm {label}", warps, lambda: fused_ops.bias_rms_norm_rope[(rows,)](
                y, bias, norm_w, cos, sin, y_bf16, dim, rows, hd // 2, 1e-6, ROPE=False,
                BLOCK_PAIRS=block // 2, TAIL_PAIRS=tail // 2, num_warps=warps), rows * dim * 4)
            report(f"quantize_rows_fp8 {label}", warps, lambda: fused_ops.quantize_rows_fp8[(rows,)](
                y, q8, scales, dim, BLOCK=block, TAIL=tail, num_warps=warps), rows * dim * 3)
        for label, block, tail in shapes(hidden):
            report(f"quantize_rows_fp8 (hidden) {label}", warps, lambda: fused_ops.quantize_rows_fp8[(rows,)](
                h, h8, scales, hidden, BLOCK=block, TAIL=tail, num_warps=warps), rows * hidden * 3)


if __name__ == "__main__":
    main()
