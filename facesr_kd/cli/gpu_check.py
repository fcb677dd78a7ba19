"""``facesr-kd-gpu-check``: check the GPU path end to end (CUDA tests, training iterations in fp32 and bf16, a
torchrun DDP run, inference throughput, CPU/CUDA agreement) and write ``gpu_check.json`` and ``gpu_check.md``
(see :mod:`facesr_kd.benchmarks.gpu_check`).

Exit status: 0 when every section that ran passed, 1 otherwise (and for ``--device cuda`` without CUDA).
"""

import argparse
import sys

from facesr_kd.benchmarks.gpu_check import DEFAULT_BUDGET_S, DEFAULT_RECIPES, QUICK_RECIPES, GpuCheckError
from facesr_kd.recipes import METHODS


def build_parser():
    """The command line of ``facesr-kd-gpu-check``."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0].replace('``', ''))
    parser.add_argument('--out', required=True, help='report folder (gpu_check.json, gpu_check.md, logs)')
    parser.add_argument('--device', default='cuda', help='cuda (default), cuda:N, or cpu (the machinery only)')
    parser.add_argument(
        '--quick',
        action='store_true',
        help=f'smoke sizes, 1 warm-up + 2 timed iterations, recipes {", ".join(QUICK_RECIPES)}, a tiny inference '
        'batch (the test suite on a CPU)',
    )
    parser.add_argument(
        '--recipes',
        nargs='+',
        choices=list(METHODS),
        metavar='RECIPE',
        help=f'training recipes to time (default: {", ".join(DEFAULT_RECIPES)}); any of: {", ".join(METHODS)}',
    )
    parser.add_argument(
        '--budget-s',
        type=float,
        default=DEFAULT_BUDGET_S,
        help=f'seconds for the whole check (default {DEFAULT_BUDGET_S:g}); the training section stops, with a '
        'note, when they are spent',
    )
    parser.add_argument(
        '--tests',
        default='auto',
        help="tests folder for the CUDA-marked tests; 'auto' (default): the checkout's tests/ beside the package; "
        "'none': skip them",
    )
    return parser


def main(argv=None):
    """Run the check from the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.budget_s <= 0:
        print('error: --budget-s must be positive', file=sys.stderr)
        return 1
    from facesr_kd.benchmarks.gpu_check import run_gpu_check

    tests = None if args.tests.lower() == 'none' else args.tests
    try:
        report = run_gpu_check(args.out, args.device, args.quick, args.recipes, args.budget_s, tests)
    except GpuCheckError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    return 0 if report['passed'] else 1


if __name__ == '__main__':
    sys.exit(main())
