"""The paper's Table 1 (Markdown + CSV) and Figure 1 from test results, with the bicubic baselines.

Reads ``results/<test name>/metrics.json`` written by ``python -m facesr_kd.test`` (``FaceSRModel``) and the SR
faces saved under ``results/<test name>/visualization/<dataset>/``. ``facesr-kd-table1`` is its CLI.
"""

import csv
import json
import math
import os
import sys

from facesr_kd.face.components import template_boxes
from facesr_kd.recipes import METHODS as RECIPES
from facesr_kd.recipes import PAPER_TABLE1, TABLE1_ORDER

import cv2
import numpy as np
import torch

# Row label, default test name (the shipped test option file's stem), the paper's (PSNR, SSIM, LPIPS).
METHODS = tuple(
    (label, os.path.splitext(RECIPES[label][1])[0], PAPER_TABLE1.get(label, (math.nan,) * 3)) for label in TABLE1_ORDER
)
# The two baselines every table starts with: OpenCV's bicubic, and the resize the networks use (torch bicubic).
BICUBIC = 'Bicubic'
BICUBIC_TORCH = "Bicubic (torch, the networks' resize)"
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


def baseline_rows(lr_dir, gt_dir):
    """Bicubic upsampling of the LR test faces, scored like the networks (BasicSR's PSNR/SSIM, RGB and Y).

    Two rows: OpenCV's ``INTER_CUBIC`` (the usual "Bicubic" baseline) and ``torch.nn.functional.interpolate``
    bicubic, the resize the DFDNet-style networks apply to their input and the ``input_skip`` adds back.

    Args:
        lr_dir, gt_dir (str): Folders of LR and GT test faces with the same file names.

    Returns:
        list[dict]: Rows in :func:`collect`'s format (no LPIPS, no parameters).
    """
    from facesr_kd.metrics.psnr_ssim import mean_psnr_ssim

    names = sorted(f for f in os.listdir(gt_dir) if os.path.isfile(os.path.join(lr_dir, f)))
    if not names:
        raise FileNotFoundError(f'no image of {gt_dir} has an LR counterpart in {lr_dir}')
    gts, ups = [], {BICUBIC: [], BICUBIC_TORCH: []}
    for name in names:
        gt = cv2.imread(os.path.join(gt_dir, name), cv2.IMREAD_COLOR)
        lr = cv2.imread(os.path.join(lr_dir, name), cv2.IMREAD_COLOR)
        if gt is None or lr is None:
            raise ValueError(f'{name}: unreadable in {gt_dir} or {lr_dir}')
        h, w = gt.shape[:2]
        gts.append(gt)
        ups[BICUBIC].append(cv2.resize(lr, (w, h), interpolation=cv2.INTER_CUBIC))
        lr_t = torch.from_numpy(lr.astype(np.float32) / 255).permute(2, 0, 1)[None]
        up = torch.nn.functional.interpolate(lr_t, size=(h, w), mode='bicubic', align_corners=False)
        ups[BICUBIC_TORCH].append((up[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8))
    sums = {label: mean_psnr_ssim(imgs, gts) for label, imgs in ups.items()}
    rows = []
    for label, total in sums.items():
        row = {'method': label, 'test_name': '', 'dataset': os.path.basename(os.path.dirname(os.path.abspath(gt_dir)))}
        row.update({c: total.get(c, math.nan) for c in COLUMNS})
        row.update(params=0, buffers_mb=0.0, latency_ms=math.nan, device='', num_images=len(names))
        row.update(paper_psnr=math.nan, paper_ssim=math.nan, paper_lpips=math.nan)
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
        'ΔPSNR vs bicubic',
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
    bicubic = next((r['psnr'] for r in rows if r['method'] == BICUBIC), math.nan)
    for r in rows:
        cells = [
            r['method'],
            _fmt(r['psnr'], 2),
            _fmt(r['ssim'], 3),
            _fmt(r['psnr_y'], 2),
            _fmt(r['ssim_y'], 3),
            '–' if r['method'] == BICUBIC else f'{r["psnr"] - bicubic:+.2f}' if not math.isnan(bicubic) else '–',
            _fmt(r['lpips'], 4),
            _fmt(r['lpips_vgg'], 4),
            _fmt(r['params'] / 1e6, 2) if r['params'] else '–',
            _fmt(r['buffers_mb'], 1),
            _fmt(r['latency_ms'], 1),
            _fmt(r['paper_psnr'], 3),
            _fmt(r['paper_ssim'], 3),
            _fmt(r['paper_lpips'], 4),
        ]
        lines.append('| ' + ' | '.join(cells) + ' |')
    trained = [r for r in rows if r['test_name']]
    if trained:
        lines.append('')
        lines.append(
            f'Test set: {trained[0]["dataset"]} ({trained[0]["num_images"]} faces); latency on {trained[0]["device"]}.'
        )
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


def terminal_table(rows, width=100):
    """The table for a terminal: method, PSNR, SSIM, Δ PSNR vs bicubic and ms/face, within ``width`` columns.

    Args:
        rows (list[dict]): From :func:`collect` (with the bicubic rows first, as :func:`make_table1` puts them).
        width (int): Longest line allowed; longer method names are cut with ``…``.

    Returns:
        str: Aligned plain-text lines (no trailing newline).
    """
    bicubic = next((r['psnr'] for r in rows if r['method'] == BICUBIC), math.nan)
    header = ('Method', 'PSNR', 'SSIM', 'Δ vs bicubic', 'ms/face')
    numbers = (6, 6, 12, 8)
    name_width = min(max(len(header[0]), *(len(r['method']) for r in rows)), width - sum(n + 2 for n in numbers))
    cells = []
    for r in rows:
        name = r['method'] if len(r['method']) <= name_width else r['method'][: name_width - 1] + '…'
        delta = '–' if r['method'] == BICUBIC or math.isnan(bicubic) else f'{r["psnr"] - bicubic:+.2f}'
        cells.append((name, _fmt(r['psnr'], 2), _fmt(r['ssim'], 3), delta, _fmt(r['latency_ms'], 1)))
    lines = []
    for row in (header, *cells):
        parts = [row[0].ljust(name_width)] + [c.rjust(n) for c, n in zip(row[1:], numbers)]
        lines.append('  '.join(parts).rstrip())
    lines.insert(1, '-' * len(lines[0]))
    return '\n'.join(lines)


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


def figure_faces(gt_dir, faces):
    """Faces for Figure 1: each of ``faces`` is an image stem of ``gt_dir`` or an index into its sorted stems."""
    stems = sorted(os.path.splitext(f)[0] for f in os.listdir(gt_dir))
    return [stems[int(f)] if f.isdigit() and int(f) < len(stems) and f not in stems else f for f in faces]


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


def make_table1(
    results_root, out_prefix, lr_dir=None, gt_dir=None, names=None, dataset=None, lpips_valid=True, note=''
):
    """Collect the test runs, put the bicubic baselines first (when the LR/GT folders are given), write the table.

    Returns:
        tuple[list[dict], str]: The rows and the Markdown table.

    Raises:
        FileNotFoundError: No ``metrics.json`` under ``results_root``.
    """
    rows = collect(results_root, names, dataset)
    if not rows:
        raise FileNotFoundError(f'no metrics.json found under {results_root}; run the test option files first')
    if lr_dir and gt_dir:
        rows = baseline_rows(lr_dir, gt_dir) + rows
    return rows, write_table(rows, out_prefix, lpips_valid=lpips_valid, note=note)
