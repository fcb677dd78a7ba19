"""``facesr-kd-benchmark-iter``: time one training iteration of each recipe (see
:mod:`facesr_kd.benchmarks.distill_iter`)."""

import argparse
import sys

from facesr_kd.benchmarks.distill_iter import benchmark, format_results
from facesr_kd.recipes import PRESETS

import torch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--preset', choices=sorted(PRESETS), default='paper', help='sizes and widths')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument(
        '--methods',
        nargs='+',
        default=None,
        help='recipes to time (default: "Student w/o KD" "Student"); also Teacher, RCAN, SRFBN',
    )
    parser.add_argument(
        '--no-shared-encoder',
        action='store_true',
        help='distil with separate teacher and student encoder passes (for comparison)',
    )
    return parser.parse_args(argv)


def main(argv=None):
    """Time the recipes from the command line and print the table."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    results = benchmark(
        args.preset,
        args.batch,
        args.iters,
        args.warmup,
        args.device,
        args.methods,
        shared_encoder=not args.no_shared_encoder,
    )
    print('\n' + format_results(results, args.preset, args.batch, args.iters, args.device))
    return 0


if __name__ == '__main__':
    sys.exit(main())
