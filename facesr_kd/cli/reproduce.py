"""``facesr-kd-reproduce``: Table 1 and Figure 1 from face photos in one command (see :mod:`facesr_kd.reproduce`)."""

import argparse
import sys

from facesr_kd import reproduce
from facesr_kd.recipes import METHODS, PRESETS

import torch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=reproduce.__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=reproduce.__doc__,
    )
    parser.add_argument('--preset', choices=sorted(PRESETS), default='smoke')
    parser.add_argument(
        '--faces',
        help='face photos (a folder, or a VGGFace2 root with train/ and test/); default: the offline demo set',
    )
    parser.add_argument('--aligned', action='store_true', help='--faces are FFHQ-aligned crops (no detection)')
    parser.add_argument('--train-range', help='sorted-index range of training photos, e.g. 100: (default: preset)')
    parser.add_argument('--test-range', help='sorted-index range of test photos, e.g. 0:100 (default: preset)')
    parser.add_argument('--work-dir', help='where everything goes (default: runs/table1_<preset>)')
    parser.add_argument(
        '--random-vgg',
        action='store_true',
        help='no ImageNet VGG19: use one fixed random VGG19 and random LPIPS backbones (labelled)',
    )
    parser.add_argument('--lpips-random', action='store_true', help='random LPIPS backbones only')
    parser.add_argument('--vgg-weights', help='ImageNet vgg19-dcbb9e9d.pth (default: torch hub cache)')
    parser.add_argument('--det-model', default='retinaface_resnet50', help='face detector for unaligned photos')
    parser.add_argument('--model-root', help='folder of the facexlib detector weights')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--nproc', type=int, default=1, help='GPUs per node for training (torchrun)')
    parser.add_argument('--workers', type=int, default=None, help='processes for face preparation')
    parser.add_argument('--dry-run', action='store_true', help='write the option files and log the commands only')
    parser.add_argument('--iters', type=int, help="iterations of every training stage (default: the preset's)")
    parser.add_argument(
        '--methods', nargs='+', choices=list(METHODS), help="rows to train and test (default: the preset's)"
    )
    return parser.parse_args(argv)


def main(argv=None):
    """Run the chain from the command line; exit status 1 when a stage fails (re-running resumes)."""
    args = parse_args(argv)
    try:
        reproduce.reproduce_table1(**vars(args))
    except (FileNotFoundError, reproduce.StageError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
