"""``facesr-kd-table1``: collect test results into Table 1 (Markdown + CSV) with bicubic rows; draw Figure 1.

Reads ``results/<test name>/metrics.json`` written by ``python -m facesr_kd.test`` (``FaceSRModel``) and the SR
faces saved under ``results/<test name>/visualization/<dataset>/``; the library is :mod:`facesr_kd.table1`.

Usage::

    facesr-kd-table1 --results results --out docs/table1 \\
        --lr-dir datasets/vggface2_256/test/lr_x8 --gt-dir datasets/vggface2_256/test/hr --faces 0 5 17
"""

import argparse
import sys

from facesr_kd.table1 import draw_figure, figure_faces, make_table1


def main(argv=None):
    """Write the table (and figure); exit status 1 when the results or face folders are missing."""
    args = parse_args(argv)
    try:
        _, table = make_table1(
            args.results,
            args.out,
            args.lr_dir,
            args.gt_dir,
            dataset=args.dataset,
            lpips_valid=not args.lpips_random,
            note=args.note,
        )
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(table)
    if not (args.lr_dir and args.gt_dir):
        print('note: no --lr-dir/--gt-dir given, so the table has no bicubic rows', file=sys.stderr)
    if args.faces:
        if not args.gt_dir:
            print('error: --faces needs --lr-dir and --gt-dir', file=sys.stderr)
            return 1
        faces = figure_faces(args.gt_dir, args.faces)
        draw_figure(args.results, faces, args.lr_dir, args.gt_dir, f'{args.out}_figure1.png', dataset=args.dataset)
        print(f'figure: {args.out}_figure1.png')
    return 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--results', default='results', help='folder holding the test runs')
    parser.add_argument('--out', default='docs/table1', help='output prefix (.md, .csv, _figure1.png)')
    parser.add_argument('--dataset', default=None, help='dataset name in metrics.json (default: the first)')
    parser.add_argument(
        '--lpips-random',
        action='store_true',
        help='LPIPS ran with random backbones: label the column as such, not as LPIPS',
    )
    parser.add_argument('--note', default='', help='a line under the table (preset, sizes, box source)')
    parser.add_argument('--faces', nargs='*', default=[], help='faces for Figure 1: image stems or indices')
    parser.add_argument('--lr-dir', help='LR test faces (for the bicubic rows and Figure 1)')
    parser.add_argument('--gt-dir', help='GT test faces (for the bicubic rows and Figure 1)')
    return parser.parse_args(argv)


if __name__ == '__main__':
    sys.exit(main())
