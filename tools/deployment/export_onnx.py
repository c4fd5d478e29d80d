"""Export an InternImage classifier (or any config's backbone) to ONNX and check it.

DCNv3 is expressed in standard ONNX operators (GridSample, opset >= 16), so the file runs in
onnxruntime, TensorRT, OpenVINO, ... without a custom-op plugin. The batch size is dynamic.

    python tools/deployment/export_onnx.py CONFIG CHECKPOINT [--out model.onnx]
        [--part auto|classifier|backbone] [--shape H W] [--opset 18]

It prints the largest difference between onnxruntime and PyTorch on random inputs of batch 1
and 2, and fails if it exceeds --tolerance (relative to the output's magnitude).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from internimage_mm.apis.export import build_exportable, export_onnx


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint', help="checkpoint file ('none' for random weights)")
    parser.add_argument('--out', default=None,
                        help='output .onnx (default: work_dirs/<config>.onnx)')
    parser.add_argument('--part', default='auto', choices=['auto', 'classifier', 'backbone'])
    parser.add_argument('--shape', type=int, nargs='+', default=[224],
                        help='input H W (or S for S x S)')
    parser.add_argument('--opset', type=int, default=18)
    parser.add_argument('--tolerance', type=float, default=1e-4,
                        help='max |onnx - torch| / max|torch| accepted')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if len(args.shape) not in (1, 2):
        raise SystemExit(f'--shape takes H W or S, got {args.shape}')
    h, w = (args.shape * 2)[:2]
    checkpoint = None if args.checkpoint.lower() == 'none' else args.checkpoint
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise SystemExit(f'checkpoint {checkpoint} does not exist')
    out = args.out or f'work_dirs/{Path(args.config).stem}.onnx'
    try:
        module, names = build_exportable(args.config, checkpoint, args.part)
    except ValueError as e:
        raise SystemExit(str(e)) from e
    report = export_onnx(module, names, out, (1, 3, h, w), opset=args.opset)
    print(f'exported {report.onnx_file} (outputs: {", ".join(report.output_names)}; '
          f'dynamic batch, checked at {report.batch_sizes})')
    print(f'onnxruntime vs PyTorch: max abs error {report.max_abs_error:.3e}, '
          f'max rel error {report.max_rel_error:.3e}')
    if report.max_rel_error > args.tolerance:
        raise SystemExit(f'error: relative error {report.max_rel_error:.3e} exceeds '
                         f'--tolerance {args.tolerance:g}')


if __name__ == '__main__':
    main()
