"""Collect test results into the paper's Table 1 (Markdown + CSV) and draw Figure 1.

Reads ``results/<test name>/metrics.json`` written by ``python -m facesr_kd.test`` (``FaceSRModel``) and the SR
faces saved under ``results/<test name>/visualization/<dataset>/``.

Usage::

    python scripts/make_table1.py --results results --out docs/table1 \\
        --lr-dir datasets/vggface2_256/test/lr_x8 --gt-dir datasets/vggface2_256/test/hr --faces 0 5 17
"""

import argparse
import csv
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from facesr_kd.face.components import template_boxes  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

# Row label, default test name, the paper's (PSNR, SSIM, LPIPS).
METHODS = (
    ('RCAN', 'test_rcan_x8_vggface2', (26.59, 0.779, 0.3191)),
    ('SRFBN', 'test_srfbn_x8_vggface2', (26.399, 0.761, 0.3944)),
    ('Teacher', 'test_teacher_vggface2', (26.74, 0.771, 0.2413)),
    ('Student w/o KD', 'test_student_nokd_vggface2', (25.837, 0.750, 0.2746)),
    ('Student', 'test_student_vggface2', (26.623, 0.769, 0.2511)),
)
COLUMNS = ('psnr', 'ssim', 'psnr_y', 'ssim_y', 'lpips', 'lpips_vgg')


def collect(results_root, names=None, dataset=None):
    """Read every method's ``metrics.json``.

    Args:
        results_root (str): The ``results/`` folder of the test runs.
        names (dict[str, str] | None): Row label to test name; default :data:`METHODS`' names.
        dataset (str | None): Dataset name inside ``metrics.json``; default: the only (or first) one.

    Returns:
        list[dict]: One row per method found: ``method``, the metric columns, ``params``, ``buffers_mb``,
        ``latency_ms``, ``paper_psnr``, ``paper_ssim``, ``paper_lpips``, ``test_name``, ``dataset``.
    """
    names = names or {label: name for label, name, _ in METHODS}
    paper = {label: numbers for label, _, numbers in METHODS}
    rows = []
    for label, name in names.items():
        path = os.path.join(results_root, name, 'metrics.json')
        if not os.path.exists(path):
            print(f'warning: {path} not found; {label} is left out of the table', file=sys.stderr)
            continue
        with open(path) as f:
            summary = json.load(f)
        ds = dataset or next(iter(summary))
        if ds not in summary:
            raise KeyError(f'{path} has no results for dataset {ds!r}; it has {sorted(summary)}')
        entry = summary[ds]
        row = {'method': label, 'test_name': name, 'dataset': ds}
        row.update({c: entry['metrics'].get(c, math.nan) for c in COLUMNS})
        row['params'] = entry['params']
        row['buffers_mb'] = entry.get('buffers_mb', 0.0)
        row['latency_ms'] = 1000 * entry['latency_s_per_face'] if entry.get('latency_s_per_face') else math.nan
        row['device'] = entry.get('device', '')
        row['num_images'] = entry.get('num_images')
        p = paper.get(label, (math.nan, math.nan, math.nan))
        row.update(paper_psnr=p[0], paper_ssim=p[1], paper_lpips=p[2])
        rows.append(row)
    return rows


def _fmt(value, digits):
    return '–' if value is None or (isinstance(value, float) and math.isnan(value)) else f'{value:.{digits}f}'


def write_table(rows, out_prefix, lpips_valid=True, note=''):
    """Write ``<out_prefix>.md`` and ``<out_prefix>.csv``.

    Args:
        rows (list[dict]): From :func:`collect`.
        out_prefix (str): Output path without extension.
        lpips_valid (bool): False when LPIPS ran on random backbones: the column is then named ``d_rand`` and
            flagged, never called LPIPS.
        note (str): A line printed under the table (preset, sizes, box source...).

    Returns:
        str: The Markdown table.
    """
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    lp = 'LPIPS↓' if lpips_valid else 'd_rand† (not LPIPS)'
    lpv = 'LPIPS-VGG↓' if lpips_valid else 'd_rand-VGG†'
    header = [
        'Method',
        'PSNR↑',
        'SSIM↑',
        'PSNR-Y↑',
        'SSIM-Y↑',
        lp,
        lpv,
        'Params (M)',
        'Buffers (MB)',
        'ms / face',
        'paper PSNR',
        'paper SSIM',
        'paper LPIPS',
    ]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    for r in rows:
        cells = [
            r['method'],
            _fmt(r['psnr'], 2),
            _fmt(r['ssim'], 3),
            _fmt(r['psnr_y'], 2),
            _fmt(r['ssim_y'], 3),
            _fmt(r['lpips'], 4),
            _fmt(r['lpips_vgg'], 4),
            _fmt(r['params'] / 1e6, 2),
            _fmt(r['buffers_mb'], 1),
            _fmt(r['latency_ms'], 1),
            _fmt(r['paper_psnr'], 3),
            _fmt(r['paper_ssim'], 3),
            _fmt(r['paper_lpips'], 4),
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    if rows:
        lines.append('')
        lines.append(f'Test set: {rows[0]["dataset"]} ({rows[0]["num_images"]} faces); latency on {rows[0]["device"]}.')
    if not lpips_valid:
        lines.append(
            '† LPIPS code path run with random-initialised backbones (ImageNet weights unavailable): '
            'not a valid LPIPS and not comparable with the paper.'
        )
    if note:
        lines.append(note)
    markdown = '\n'.join(lines) + '\n'
    with open(f'{out_prefix}.md', 'w') as f:
        f.write(markdown)
    with open(f'{out_prefix}.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ['method'])
        writer.writeheader()
        writer.writerows(rows)
    return markdown


def _label(img, text):
    out = cv2.copyMakeBorder(img, 22, 0, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def _zooms(img, boxes, size):
    """Eye and mouth crops of ``img`` side by side, as wide as ``img``."""
    crops = []
    for idx in (0, 3):  # left eye, mouth
        x1, y1, x2, y2 = np.round(boxes[idx]).astype(int)
        crops.append(cv2.resize(img[y1:y2, x1:x2], (size // 2, size // 2), interpolation=cv2.INTER_NEAREST))
    return np.concatenate(crops, axis=1)


def draw_figure(results_root, face_names, lr_dir, gt_dir, out_path, names=None, dataset=None, size=256):
    """Figure 1: LR | RCAN | SRFBN | Teacher | Student w/o KD | Student | GT, with eye and mouth zooms.

    Args:
        results_root (str): The ``results/`` folder.
        face_names (list[str]): Image stems to show (as in the test set's file names).
        lr_dir, gt_dir (str): Folders of the LR and GT test faces.
        out_path (str): Output PNG.
        names (dict[str, str] | None): Row label to test name (default :data:`METHODS`).
        dataset (str | None): Visualization sub-folder (the test dataset's name).
        size (int): Side of each panel.
    """
    names = names or {label: name for label, name, _ in METHODS}
    boxes = template_boxes(size)
    rows = []
    for stem in face_names:
        panels = []
        lr = cv2.imread(os.path.join(lr_dir, f'{stem}.png'))
        gt = cv2.imread(os.path.join(gt_dir, f'{stem}.png'))
        if lr is None or gt is None:
            raise FileNotFoundError(f'{stem}.png is missing from {lr_dir} or {gt_dir}')
        entries = [('LR (x8)', cv2.resize(lr, (size, size), interpolation=cv2.INTER_NEAREST))]
        for label, name in names.items():
            vis = os.path.join(results_root, name, 'visualization')
            ds = dataset or (sorted(os.listdir(vis))[0] if os.path.isdir(vis) else '')
            img = cv2.imread(os.path.join(vis, ds, f'{stem}_{name}.png'))
            if img is None:
                img = np.full((size, size, 3), 200, np.uint8)
                label = f'{label} (missing)'
            entries.append((label, cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)))
        entries.append(('GT', cv2.resize(gt, (size, size), interpolation=cv2.INTER_AREA)))
        for label, img in entries:
            panels.append(_label(np.concatenate([img, _zooms(img, boxes, size)], axis=0), label))
        rows.append(np.concatenate(panels, axis=1))
    figure = np.concatenate(rows, axis=0)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    cv2.imwrite(out_path, figure)
    return figure


def main(args):
    rows = collect(args.results, dataset=args.dataset)
    if not rows:
        sys.exit(f'error: no metrics.json found under {args.results}; run the test option files first')
    print(write_table(rows, args.out, lpips_valid=not args.lpips_random, note=args.note))
    if args.faces:
        stems = sorted(os.path.splitext(f)[0] for f in os.listdir(args.gt_dir))
        faces = [stems[int(f)] if f.isdigit() and int(f) < len(stems) and f not in stems else f for f in args.faces]
        draw_figure(args.results, faces, args.lr_dir, args.gt_dir, f'{args.out}_figure1.png', dataset=args.dataset)
        print(f'figure: {args.out}_figure1.png')


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
    parser.add_argument('--lr-dir', help='LR test faces (for Figure 1)')
    parser.add_argument('--gt-dir', help='GT test faces (for Figure 1)')
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_args())
