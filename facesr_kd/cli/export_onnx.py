"""``facesr-kd-export-onnx``: export a box-free face SR checkpoint to ONNX with a dynamic batch.

The library is :mod:`facesr_kd.export`.
"""

import argparse
import sys

from facesr_kd.export import CHECK_TOLERANCE, export_checkpoint
from facesr_kd.utils.checkpoint import CheckpointError


def build_parser():
    parser = argparse.ArgumentParser(description='Export a student, RCAN or SRFBN checkpoint to ONNX.')
    parser.add_argument(
        '--model', required=True, help='Checkpoint (.pth) of a student (DFDNetStudent, LiteFaceStudent), RCAN or SRFBN'
    )
    parser.add_argument('--opt', default=None, help='Option file describing a checkpoint without an `arch` entry')
    parser.add_argument('-o', '--output', default=None, help='Output .onnx file. Default: beside the checkpoint')
    parser.add_argument('--scale', type=int, default=8, help='Refuse a checkpoint of another scale. 0: any')
    parser.add_argument('--opset', type=int, default=17)
    parser.add_argument('--static-batch', action='store_true', help='Fix the batch axis to 1')
    parser.add_argument(
        '--check',
        action='store_true',
        help=f'Compare onnxruntime with PyTorch at batch 1 and 3 (needs onnxruntime); fail above {CHECK_TOLERANCE}',
    )
    return parser


def main(argv=None):
    """Export from the command line; exit status 1 when the checkpoint cannot be exported or the check fails."""
    args = build_parser().parse_args(argv)
    try:
        output, info, diffs = export_checkpoint(
            args.model,
            args.output,
            opt_path=args.opt,
            scale=args.scale or None,
            opset=args.opset,
            dynamic_batch=not args.static_batch,
            check=args.check,
        )
    except (FileNotFoundError, CheckpointError, ImportError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'{info["type"]} x{info["scale"]} ({info["lq_size"]} -> {info["out_size"]}) exported to {output}')
    for batch, diff in diffs.items():
        print(f'onnxruntime vs PyTorch at batch {batch}: max abs difference {diff:.2e}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
