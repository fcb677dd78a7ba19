"""``facesr-kd-models``: list the model zoo (the weights shipped in ``facesr_kd/weights/``).

One row per model: name, scale, LR -> HR face size, parameters, GMACs (when the manifest has them), the measured
quality the manifest records (``quality``: PSNR / SSIM of the model and of bicubic per test condition) and the file.
The library is :mod:`facesr_kd.zoo`.
"""

import argparse
import sys

from facesr_kd.utils.checkpoint import CheckpointError
from facesr_kd.zoo import ZOO_ENV, list_models, zoo_root


def _quality(manifest):
    """The manifest's ``quality`` as short text, PSNR to 0.01 dB and SSIM to 0.001:
    ``clean 26.40/0.750 (bicubic 24.29/0.680); ...``."""
    quality = manifest.get('quality')
    if not isinstance(quality, dict) or not quality:
        return '-'
    parts = []
    for key, value in quality.items():
        if isinstance(value, dict) and isinstance(value.get('model'), dict):
            ours, bic = value['model'], value.get('bicubic') or {}

            def pair(d):
                fmt = {'psnr': '.2f', 'ssim': '.3f'}
                return '/'.join(f'{d[k]:{fmt[k]}}' if isinstance(d.get(k), (int, float)) else '?' for k in fmt)

            parts.append(f'{key} {pair(ours)}' + (f' (bicubic {pair(bic)})' if bic else ''))
        elif key != 'test_set':
            parts.append(f'{key} {value}')
    text = '; '.join(parts) or '-'
    return text + (f' [{quality["test_set"]}]' if isinstance(quality.get('test_set'), str) else '')


def rows(models):
    """The table rows (lists of strings) of :func:`facesr_kd.zoo.list_models`' entries."""
    out = []
    for m in models:
        cost = m.manifest.get('cost') if isinstance(m.manifest.get('cost'), dict) else {}
        params = cost.get('params', m.manifest.get('num_params'))
        gmacs = cost.get('gmacs')
        out.append(
            [
                m.name,
                f'x{m.scale}',
                f'{m.in_size}->{m.out_size}',
                f'{params / 1e6:.2f} M' if isinstance(params, (int, float)) else '-',
                f'{gmacs:.3g}' if isinstance(gmacs, (int, float)) else '-',
                _quality(m.manifest),
                m.file,
            ]
        )
    return out


def format_table(models):
    """The zoo as an aligned text table."""
    header = ['name', 'scale', 'LR->HR', 'params', 'GMACs', 'quality (PSNR/SSIM)', 'file']
    table = [header, *rows(models)]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return '\n'.join('  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)


def main(argv=None):
    """List the zoo; 0 also when it is empty (with a message), 1 when a zoo file cannot be read."""
    parser = argparse.ArgumentParser(
        description='List the model zoo: the trained weights facesr-kd-infer uses when --model is left out.'
    )
    parser.add_argument('--root', default=None, help=f'Zoo folder (default: ${ZOO_ENV}, else facesr_kd/weights)')
    args = parser.parse_args(argv)
    root = zoo_root(args.root)
    try:
        models = list_models(root)
    except (CheckpointError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    if not models:
        print(
            f'The model zoo ({root}) is empty: no <name>-<hash>.pth files there. Publish one with '
            'facesr-kd-publish CHECKPOINT -o <that folder> --name NAME, or pass --model PATH to facesr-kd-infer.'
        )
        return 0
    print(f'{len(models)} model(s) in {root}:')
    print(format_table(models))
    return 0


if __name__ == '__main__':
    sys.exit(main())
