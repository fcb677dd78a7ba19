"""Publish a trained zoo model into facesr_kd/weights/ with its full manifest (see :mod:`facesr_kd.zoo_publish`).

    python scripts/publish_zoo.py experiments/zoo_lite_x8 experiments/zoo_lite_x8_ft --name lite-x8 \
        --opt options/zoo_lite_x8.yml options/zoo_lite_x8_ft.yml --faces ../shared/data/faces/aligned/ffhq256
"""

import argparse
import sys

from facesr_kd.zoo_publish import publish_zoo_model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        'experiments',
        nargs='+',
        help='experiments/<name> of each training stage, in order (the last is published)',
    )
    parser.add_argument('--name', required=True, help='zoo name, e.g. lite-x8')
    parser.add_argument('--opt', nargs='+', required=True, help='the shipped option file of each stage, in order')
    parser.add_argument('--faces', required=True, help='FFHQ 256 test faces (ids 00000-00099)')
    parser.add_argument('--out-dir', default=None, help='default: facesr_kd/weights')
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args(argv)
    path, manifest = publish_zoo_model(
        args.experiments, args.name, args.opt, args.faces, args.out_dir, None, args.threads
    )
    print(path)
    for condition in ('clean', 'jpeg75'):
        q = manifest['quality'][condition]
        ours, bic = q['model'], q['bicubic']
        print(f'{condition}: {ours["psnr"]:.2f} / {ours["ssim"]:.4f} (bicubic {bic["psnr"]:.2f} / {bic["ssim"]:.4f})')
    return 0


if __name__ == '__main__':
    sys.exit(main())
