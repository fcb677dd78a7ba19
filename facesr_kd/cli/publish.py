"""``facesr-kd-publish``: publish a training checkpoint as ``<name>-<sha256[:8]>.pth`` with a JSON manifest.

The library is :mod:`facesr_kd.publish`.
"""

import argparse
import sys

from facesr_kd.publish import KEYS, publish_checkpoint
from facesr_kd.utils.checkpoint import CheckpointError


def build_parser():
    parser = argparse.ArgumentParser(
        description='Publish a training checkpoint for inference: keep the weights (EMA when present), arch and '
        'scale, drop training-only entries, write DIR/<name>-<sha256[:8]>.pth and a .json manifest beside it.'
    )
    parser.add_argument('checkpoint', help='Training checkpoint, e.g. experiments/<name>/models/net_g_latest.pth')
    parser.add_argument('-o', '--output-dir', required=True, help='Folder for the .pth and .json files')
    parser.add_argument('--name', default=None, help='File name stem. Default: <arch type>_x<scale>')
    parser.add_argument(
        '--key', choices=KEYS, default='auto', help='Weights to publish. auto: params_ema when present, else params'
    )
    parser.add_argument(
        '--command',
        action='append',
        default=[],
        metavar='CMD',
        help='A command that produced the checkpoint, recorded in the manifest (repeatable)',
    )
    parser.add_argument('--opt', default=None, help='Option file describing a checkpoint without an `arch` entry')
    return parser


def main(argv=None):
    """Publish from the command line; exit status 1 when the checkpoint cannot be published."""
    args = build_parser().parse_args(argv)
    try:
        path, manifest = publish_checkpoint(
            args.checkpoint, args.output_dir, name=args.name, key=args.key, commands=args.command, opt_path=args.opt
        )
    except (FileNotFoundError, CheckpointError, ValueError, OSError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    dropped = ', '.join(manifest['dropped']) or 'nothing'
    print(
        f'{manifest["type"]} x{manifest["scale"]} ({manifest["lq_size"]} -> {manifest["out_size"]}), '
        f'`{manifest["source"]["params_key"]}` weights, published to {path}'
    )
    print(f'sha256 {manifest["sha256"]}, {manifest["size"]} bytes; dropped: {dropped}')
    print(f'manifest: {path[: -len(".pth")]}.json')
    return 0


if __name__ == '__main__':
    sys.exit(main())
