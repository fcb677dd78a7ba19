"""``facesr-kd-dictionary``: build the teacher's component dictionaries from prepared HR faces.

The library is :mod:`facesr_kd.dictionary`.
"""

import argparse
import sys

from facesr_kd.dictionary import RANDOM_VGG_WARNING, build_dictionary, list_faces

import torch


def _int_at_least(low):
    """An argparse type: an integer >= ``low``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
        if value < low:
            raise argparse.ArgumentTypeError(f'must be >= {low}, got {value}')
        return value

    return parse


def _out_size(text):
    value = _int_at_least(16)(text)
    if value % 16:
        raise argparse.ArgumentTypeError(f'must be a multiple of 16 (the encoder stride), got {value}')
    return value


def _device(text):
    try:
        torch.device(text)
    except (RuntimeError, ValueError) as err:
        raise argparse.ArgumentTypeError(f'{text!r} is not a device (cpu, cuda, cuda:1...): {err}') from None
    return text


def build_parser():
    """The command line; every numeric option is range-checked here (argparse's exit status 2)."""
    positive = _int_at_least(1)
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--gt-dir', required=True, help='Folder of prepared HR faces (searched recursively)')
    boxes = parser.add_mutually_exclusive_group(required=True)
    boxes.add_argument('--boxes', help='JSON box file of the faces (keys: paths relative to --gt-dir)')
    boxes.add_argument('--template-boxes', action='store_true', help='FFHQ-template boxes for every face')
    parser.add_argument('-o', '--output', required=True, help='Output dictionary .pth')
    parser.add_argument('--meta-info', help='BasicSR meta-info file listing the faces to use')
    parser.add_argument('--start', help='First face to use (path without extension, string order, e.g. 00100)')
    parser.add_argument('--end', help='Last face to use (inclusive, e.g. 01100)')
    parser.add_argument('--limit', type=positive, help='Use at most this many faces (after filtering)')
    parser.add_argument('--num-atoms', type=positive, default=512, help='Atoms per component and level, K')
    parser.add_argument('--out-size', type=_out_size, default=256, help='Output size of the teacher')
    parser.add_argument('--batch-size', type=positive, default=16, help='Faces per encoder batch')
    parser.add_argument('--kmeans-batch', type=positive, default=1024, help='Crops per K-means update (>= K used)')
    parser.add_argument('--epochs', type=positive, default=1, help='Passes over the faces')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--vgg-weights', help='ImageNet VGG19 weights (vgg19-dcbb9e9d.pth); default: torch cache')
    parser.add_argument(
        '--vgg-random',
        action='store_true',
        help='Random encoder weights: for tests only, the dictionary is NOT meaningful',
    )
    parser.add_argument('--device', type=_device, default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--num-workers', type=_int_at_least(0), default=0, help='Image-loading workers')
    parser.add_argument('--no-progress', action='store_true', help='Hide the progress bar')
    return parser


def main(argv=None):
    """Build a dictionary from the command line; print what was written.

    Returns:
        int: 0, or 1 with an ``error:`` line on stderr when the inputs, the boxes or the output are wrong or too
        few faces are usable. Bad options exit with argparse's status 2.
    """
    args = build_parser().parse_args(argv)
    try:
        if args.device.startswith('cuda') and not torch.cuda.is_available():
            raise ValueError(f'--device {args.device}: CUDA is not available here; use --device cpu')
        keys = list_faces(args.gt_dir, args.meta_info, args.start, args.end, args.limit)
        data = build_dictionary(
            args.gt_dir,
            args.output,
            keys=keys,
            boxes_file=args.boxes,
            use_template_boxes=args.template_boxes,
            num_atoms=args.num_atoms,
            out_size=args.out_size,
            batch_size=args.batch_size,
            kmeans_batch=args.kmeans_batch,
            epochs=args.epochs,
            seed=args.seed,
            vgg_weights=args.vgg_weights,
            vgg_random=args.vgg_random,
            device=args.device,
            num_workers=args.num_workers,
            progress=not args.no_progress,
        )
    except (FileNotFoundError, KeyError, ValueError, OSError) as err:
        # str(KeyError) quotes its message: print the message itself.
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        return 1
    size_mb = sum(a.numel() for a in data['atoms'].values()) * 4 / 2**20
    skipped = f' ({data["num_skipped"]} skipped)' if data.get('num_skipped') else ''
    print(
        f'dictionary of {data["num_faces"]} faces{skipped}, K={args.num_atoms}, out_size={args.out_size} '
        f'({size_mb:.1f} MB of atoms) written to {args.output}'
    )
    if args.vgg_random:
        print(RANDOM_VGG_WARNING, file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
