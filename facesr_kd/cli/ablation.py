"""``facesr-kd-ablation``: variants of the student's recipe against matched controls, over several seeds.

Stages (each skipped when done; training resumes): the ``ablation`` preset's data, dictionary and teacher
(through ``facesr-kd-reproduce``'s library), then for every seed and variant one student run and its
test, then the table (Markdown + CSV). Variants and controls: :data:`facesr_kd.ablation.VARIANTS`.

Usage::

    facesr-kd-ablation --faces ../shared/data/faces/aligned/ffhq256 --aligned --random-vgg \\
        --seeds 0 1 --work-dir runs/ablation
"""

import argparse
import sys

from facesr_kd.ablation import VARIANTS, run_ablation
from facesr_kd.recipes import PRESETS
from facesr_kd.reproduce import StageError


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument('--preset', choices=sorted(PRESETS), default='ablation')
    parser.add_argument('--faces', help='aligned face photos (default: the offline demo set)')
    parser.add_argument('--aligned', action='store_true', help='--faces are FFHQ-aligned crops')
    parser.add_argument('--work-dir', help='where everything goes (default: runs/<preset>)')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    parser.add_argument('--variants', nargs='+', choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument('--random-vgg', action='store_true', help='one fixed random VGG19 (labelled)')
    parser.add_argument('--vgg-weights', help='ImageNet vgg19-dcbb9e9d.pth')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--table-only', action='store_true', help='train nothing: tabulate the runs already done')
    return parser.parse_args(argv)


def main(argv=None):
    """Run the ablation from the command line; exit status 1 when a stage fails (re-running resumes)."""
    args = parse_args(argv)
    try:
        run_ablation(
            args.preset,
            faces=args.faces,
            aligned=args.aligned,
            work_dir=args.work_dir,
            seeds=args.seeds,
            variants=args.variants,
            random_vgg=args.random_vgg,
            vgg_weights=args.vgg_weights,
            device=args.device,
            table_only=args.table_only,
        )
    except (FileNotFoundError, StageError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
