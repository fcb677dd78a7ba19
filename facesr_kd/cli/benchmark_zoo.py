"""``facesr-kd-benchmark-zoo``: PSNR/SSIM (RGB and Y) of checkpoints or zoo models on aligned test faces, clean and
JPEG LR, beside bicubic, with params, GMACs and CPU ms/face (see :mod:`facesr_kd.benchmarks.zoo_quality`)."""

import argparse
import sys

from facesr_kd.benchmarks.zoo_quality import evaluate, write_results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split()).replace('``', ''))
    parser.add_argument('--models', nargs='+', required=True, help='checkpoints or zoo names (facesr-kd-models)')
    parser.add_argument('--faces', required=True, help='aligned HR test faces, <id:05d>.jpg (e.g. FFHQ 256)')
    parser.add_argument('--first-id', type=int, default=0, help='first test id')
    parser.add_argument('--num', type=int, default=100, help='number of test ids from --first-id')
    parser.add_argument('--jpeg', type=int, nargs='*', default=[75], help='JPEG qualities of the extra LR conditions')
    parser.add_argument('--threads', type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument('--out', default='results/zoo_quality', help='output prefix (.csv and .md)')
    args = parser.parse_args(argv)
    if args.num < 1 or args.first_id < 0:
        parser.error('--num must be >= 1 and --first-id >= 0')
    if any(not 1 <= q <= 100 for q in args.jpeg):
        parser.error('--jpeg qualities must be in 1..100')
    return args


def main(argv=None):
    """Score the models and write the table."""
    args = parse_args(argv)
    conditions = ['clean'] + [f'jpeg{q}' for q in args.jpeg]
    try:
        rows = evaluate(
            args.models, args.faces, conditions, range(args.first_id, args.first_id + args.num), args.threads
        )
    except (FileNotFoundError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(write_results(rows, args.out), end='')
    print(f'written: {args.out}.csv, {args.out}.md')
    return 0


if __name__ == '__main__':
    sys.exit(main())
