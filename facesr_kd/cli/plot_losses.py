"""``facesr-kd-plot-losses``: plot the losses of training logs (see :mod:`facesr_kd.loss_curves`)."""

import argparse
import os
import sys

from facesr_kd.loss_curves import plot, read_losses


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Plot the training losses BasicSR logged against the iteration.')
    parser.add_argument('experiments', nargs='+', help='experiments/<name> folders')
    parser.add_argument('-o', '--out', default='docs/losses.png')
    parser.add_argument('--keys', nargs='*', default=None, help='loss keys to draw (default: all l_*)')
    return parser.parse_args(argv)


def main(argv=None):
    """Print each loss's first and last value and draw the plot; exit status 1 when a log has no losses."""
    args = parse_args(argv)
    for exp in args.experiments:
        losses = read_losses(exp)
        if not losses:
            print(f'error: no loss lines in the logs of {exp}', file=sys.stderr)
            return 1
        for key, points in losses.items():
            print(
                f'{os.path.basename(os.path.normpath(exp))} {key}: {points[0][1]:.4g} (iter {points[0][0]}) -> '
                f'{points[-1][1]:.4g} (iter {points[-1][0]})'
            )
    print(f'plot: {plot(args.experiments, args.out, args.keys)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
