"""``facesr-kd-options``: list the shipped option files, or copy them into a folder.

With a pip-installed package there is no checkout: ``facesr-kd-options copy options`` writes them into
``./options`` so that ``facesr-kd-train -opt options/distill_vggface2.yml`` (or BasicSR's own entry) finds them.
Files that already exist there and differ are kept unless ``--overwrite``.
"""

import argparse
import os
import sys

from facesr_kd.recipes import copy_options, options_dir, shipped_option_files


def build_parser():
    parser = argparse.ArgumentParser(description='List or copy the option files shipped with facesr_kd.')
    sub = parser.add_subparsers(dest='action', required=True)
    sub.add_parser('list', help='print the shipped option files and where they are')
    copy = sub.add_parser('copy', help='copy them into a folder (default: ./options)')
    copy.add_argument('dest', nargs='?', default='options', help='target folder')
    copy.add_argument('--overwrite', action='store_true', help='replace files that differ from the shipped ones')
    return parser


def main(argv=None):
    """List or copy; exit status 1 when the target is not a folder."""
    args = build_parser().parse_args(argv)
    if args.action == 'list':
        print(f'# {options_dir()}')
        print('\n'.join(shipped_option_files()))
        return 0
    if os.path.exists(args.dest) and not os.path.isdir(args.dest):
        print(f'error: {args.dest} is a file, not a folder', file=sys.stderr)
        return 1
    written, kept = copy_options(args.dest, overwrite=args.overwrite)
    print(f'{len(written)} option files written to {args.dest}')
    if kept:
        print(f'{len(kept)} kept because they differ from the shipped ones (--overwrite replaces them):', *kept)
    return 0


if __name__ == '__main__':
    sys.exit(main())
