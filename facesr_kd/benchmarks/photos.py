"""Photo benchmark: whole photos shrunk, restored with the face restorer, and scored face by face against the originals.

For each photo and each factor ``f`` (x4, x8):

1. The photo is cropped to a multiple of ``f`` and shrunk by ``f`` with ``cv2.INTER_AREA`` (how a small copy of a
   photo is usually made).
2. The small photo is restored with :class:`facesr_kd.inference.FaceSRRestorer` at ``upscale=f`` (the zoo by
   default: each face at its own size by the model of the upscale, large and soft faces kept), and also upscaled
   with plain bicubic (``cv2.INTER_CUBIC``, the restorer's own background).
3. The faces are the ones the detector finds on the SMALL photo (restored or kept by the size policy); each face's
   box, mapped to the original photo (times ``f``, clipped), is scored with BasicSR's PSNR (RGB, no border crop)
   against the original, for bicubic and for the restorer.

With ``shrink=False`` (``--no-shrink``) the photo is not shrunk: it is restored at ``--upscale`` as it is, and each
face region is scored against the bicubic upscale of the photo itself (there is no ground truth): a face that is
kept scores as the plain upscale (PSNR ``inf`` when nothing else changed it), a face that was shrunk and restored
scores far below (the "large faces" check: ``deepface_couple.jpg`` at ``--upscale 2`` keeps both faces).

Outputs (:func:`run_benchmark`): ``<out>/faces.csv`` (one row per photo, factor and face), ``<out>/faces.md`` (the
same as Markdown tables per factor, plus the mean per factor and how many faces fall more than 0.2 dB below
bicubic), ``<out>/summary.json``, and ``<out>/comparison_<photo>_x<f>.png``: input (nearest-neighbour enlarged, to
show its pixels) | bicubic | ours, cropped around the faces of one chosen photo.
"""

import csv
import math
import os

from facesr_kd.face.image_io import read_image, write_image
from facesr_kd.inference import list_inputs, to_bgr8
from facesr_kd.utils.files import write_json

import cv2
import numpy as np
from tqdm import tqdm

# A face more than this below bicubic counts as a loss (the "no face more than 0.2 dB below bicubic").
LOSS_DB = 0.2
FIELDS = (
    'photo',
    'factor',
    'face',
    'x0',
    'y0',
    'x1',
    'y1',
    'native_px',
    'model',
    'psnr_bicubic',
    'psnr_ours',
    'gain_db',
)
PICTURE_MAX_WIDTH = 1800


def shrink(img, factor):
    """``img`` cropped to a multiple of ``factor`` and shrunk by it with ``cv2.INTER_AREA``.

    Returns:
        tuple[ndarray, ndarray]: The cropped original (the reference) and the small photo.
    """
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    if h == 0 or w == 0:
        raise ValueError(f'a {img.shape[1]}x{img.shape[0]} photo is smaller than the factor {factor}')
    ref = img[:h, :w]
    return ref, cv2.resize(ref, (w // factor, h // factor), interpolation=cv2.INTER_AREA)


def bicubic(img, upscale):
    """``img`` upscaled with ``cv2.INTER_CUBIC`` to ``round(side * upscale)``."""
    h, w = img.shape[:2]
    return cv2.resize(img, (int(round(w * upscale)), int(round(h * upscale))), interpolation=cv2.INTER_CUBIC)


def psnr(a, b):
    """BasicSR's PSNR of two uint8 images (RGB or BGR alike; no border crop); ``inf`` when they are equal."""
    from basicsr.metrics.psnr_ssim import calculate_psnr

    return float(calculate_psnr(a, b, crop_border=0, input_order='HWC'))


def face_region(box, upscale, shape):
    """A detector box of the small photo mapped to the upscaled photo's pixels, clipped: (x0, y0, x1, y1) ints."""
    h, w = shape[:2]
    x0, y0, x1, y1 = (float(v) * upscale for v in box[:4])
    x0, y0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
    x1, y1 = min(int(math.ceil(x1)), w), min(int(math.ceil(y1)), h)
    return x0, y0, x1, y1


def score_photo(restorer, img, factor, shrink_photo=True, upscale=None):
    """Restore one photo at one factor and score its faces.

    Args:
        restorer (FaceSRRestorer): The restorer; its ``upscale`` is set here.
        img (ndarray): (H, W, 3) uint8 BGR photo.
        factor (int): Shrink and upscale factor.
        shrink_photo (bool): False: restore ``img`` itself at ``upscale`` and score against its bicubic upscale.
        upscale (float | None): Upscale without shrinking (``shrink_photo=False``); None: ``factor``.

    Returns:
        tuple[list[dict], dict]: One row per face (:data:`FIELDS`), and the images ``small``, ``bicubic``,
        ``ours``, ``reference`` with the face ``regions`` (for the comparison picture).
    """
    up = factor if shrink_photo or upscale is None else upscale
    if shrink_photo:
        ref, small = shrink(img, factor)
    else:
        small = img
    restorer.upscale = up
    _, _, ours = restorer.enhance(small, paste_back=True)
    ours = to_bgr8(ours)
    bic = bicubic(small, up)
    if not shrink_photo:
        ref = bic
    stats = restorer.last_stats
    faces = [d for d in stats['detections'] if d.get('kept')] + list(stats.get('kept_large', []))
    rows, regions = [], []
    for i, det in enumerate(faces):
        x0, y0, x1, y1 = face_region(det['box'], up, ref.shape)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        regions.append((x0, y0, x1, y1))
        p_bic = psnr(bic[y0:y1, x0:x1], ref[y0:y1, x0:x1])
        p_ours = psnr(ours[y0:y1, x0:x1], ref[y0:y1, x0:x1])
        rows.append(
            {
                'factor': factor if shrink_photo else up,
                'face': i,
                'x0': x0,
                'y0': y0,
                'x1': x1,
                'y1': y1,
                'native_px': round(float(det.get('native_size', float('nan'))), 1),
                'model': det.get('model') or ('kept' if det.get('size_kept') else '?'),
                'psnr_bicubic': p_bic,
                'psnr_ours': p_ours,
                'gain_db': p_ours - p_bic,
            }
        )
    return rows, {'small': small, 'bicubic': bic, 'ours': ours, 'reference': ref, 'regions': regions, 'up': up}


def comparison_picture(images, margin=0.25, max_width=PICTURE_MAX_WIDTH):
    """input | bicubic | ours (| original when shrunk), cropped around the faces' regions; four panels of a
    region wider than tall go in two rows of two.

    Args:
        images (dict): :func:`score_photo`'s second value.
        margin (float): Margin around the union of the face regions, as a fraction of its larger side.
        max_width (int): The picture is shrunk (INTER_AREA) to at most this width.

    Returns:
        ndarray: uint8 BGR picture, each panel labelled.
    """
    bic, ours, _up = images['bicubic'], images['ours'], images['up']
    h, w = bic.shape[:2]
    regions = images['regions'] or [(0, 0, w, h)]
    x0, y0 = min(r[0] for r in regions), min(r[1] for r in regions)
    x1, y1 = max(r[2] for r in regions), max(r[3] for r in regions)
    pad = int(margin * max(x1 - x0, y1 - y0))
    x0, y0, x1, y1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, w), min(y1 + pad, h)
    small = images['small']
    nearest = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST) if small.shape[:2] != (h, w) else small
    panels = [('input', nearest), ('bicubic', bic), ('ours', ours)]
    if images['reference'] is not bic:
        panels.append(('original', images['reference']))
    crops = []
    for label, img in panels:
        crop = np.ascontiguousarray(img[y0:y1, x0:x1])
        scale = max(0.5, (x1 - x0) / 500)
        cv2.putText(crop, label, (8, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(crop, label, (8, int(30 * scale)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        crops.append(crop)
    sep = np.full((y1 - y0, 4, 3), 255, np.uint8)
    if len(crops) == 4 and x1 - x0 > 1.2 * (y1 - y0):  # a wide group of faces: two rows of two panels
        rows = [np.hstack([crops[i], sep, crops[i + 1]]) for i in (0, 2)]
        row = np.vstack([rows[0], np.full((4, rows[0].shape[1], 3), 255, np.uint8), rows[1]])
    else:
        row = np.hstack([c for crop in crops for c in (crop, sep)][:-1])
    if row.shape[1] > max_width:
        row = cv2.resize(row, (max_width, max(1, round(row.shape[0] * max_width / row.shape[1]))), cv2.INTER_AREA)
    return row


def summarise(rows):
    """Per factor: faces, mean PSNR of bicubic and ours, mean gain, faces more than :data:`LOSS_DB` below bicubic,
    and faces per model."""
    out = {}
    for factor in sorted({r['factor'] for r in rows}):
        sel = [r for r in rows if r['factor'] == factor]
        finite = [r for r in sel if math.isfinite(r['psnr_bicubic']) and math.isfinite(r['psnr_ours'])]
        models = {}
        for r in sel:
            models[r['model']] = models.get(r['model'], 0) + 1
        out[str(factor)] = {
            'faces': len(sel),
            'photos': len({r['photo'] for r in sel}),
            'mean_psnr_bicubic': float(np.mean([r['psnr_bicubic'] for r in finite])) if finite else None,
            'mean_psnr_ours': float(np.mean([r['psnr_ours'] for r in finite])) if finite else None,
            'mean_gain_db': float(np.mean([r['gain_db'] for r in finite])) if finite else None,
            'min_gain_db': float(min(r['gain_db'] for r in finite)) if finite else None,
            'faces_below_bicubic_by_0.2dB': sum(r['gain_db'] < -LOSS_DB for r in finite),
            'models': models,
        }
    return out


def _fmt(v, digits=2):
    if isinstance(v, float):
        return 'inf' if math.isinf(v) else f'{v:.{digits}f}'
    return '-' if v is None else str(v)


def format_markdown(rows, summary, note=''):
    """The Markdown report: the mean per factor, then one table per factor with a row per photo and face."""
    lines = ['# Photo benchmark', '']
    if note:
        lines += [note, '']
    lines += [
        '| factor | photos | faces | bicubic PSNR | ours PSNR | mean gain (dB) | worst gain (dB) | '
        f'faces > {LOSS_DB} dB below bicubic | faces per model |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for factor, s in summary.items():
        models = ', '.join(f'{k}: {v}' for k, v in sorted(s['models'].items()))
        lines.append(
            f'| x{factor} | {s["photos"]} | {s["faces"]} | {_fmt(s["mean_psnr_bicubic"])} | '
            f'{_fmt(s["mean_psnr_ours"])} | {_fmt(s["mean_gain_db"])} | {_fmt(s["min_gain_db"])} | '
            f'{s["faces_below_bicubic_by_0.2dB"]} | {models} |'
        )
    for factor in summary:
        lines += [
            '',
            f'## x{factor}',
            '',
            '| photo | face | box (original px) | native px | model | bicubic | ours | gain |',
        ]
        lines.append('|---|---|---|---|---|---|---|---|')
        for r in rows:
            if str(r['factor']) != factor:
                continue
            lines.append(
                f'| {r["photo"]} | {r["face"]} | {r["x0"]},{r["y0"]},{r["x1"]},{r["y1"]} | {_fmt(r["native_px"], 1)} | '
                f'{r["model"]} | {_fmt(r["psnr_bicubic"])} | {_fmt(r["psnr_ours"])} | {_fmt(r["gain_db"])} |'
            )
    return '\n'.join(lines) + '\n'


def collect_photos(inputs):
    """The photo files of ``inputs`` (files or folders, :func:`facesr_kd.inference.list_inputs`) and the skipped."""
    paths, skipped = [], {}
    for item in inputs:
        found, skip = list_inputs(item)
        paths += found
        skipped.update(skip)
    return paths, skipped


def run_benchmark(
    restorer, inputs, output, factors=(4, 8), shrink_photo=True, upscale=None, picture=None, note='', progress=True
):
    """Run the photo benchmark and write its tables and picture under ``output``.

    Args:
        restorer (FaceSRRestorer): The restorer (the zoo by default in the CLI).
        inputs (Sequence[str]): Photo files or folders.
        output (str): Output folder.
        factors (Sequence[int]): Shrink / upscale factors.
        shrink_photo (bool): False: no shrink, restore at ``upscale`` and score against the photo's own bicubic
            upscale (the large-faces check).
        upscale (float | None): The upscale without shrinking.
        picture (str | None): File name (or stem) of the photo for the comparison picture; None: the photo with
            the most faces at the first factor.
        note (str): A line for the top of the Markdown report (what the models are).
        progress (bool): Show a progress bar.

    Returns:
        dict: ``rows``, ``summary`` (:func:`summarise`), ``skipped`` (path -> reason), ``files`` (what was written).

    Raises:
        FileNotFoundError: An input does not exist.
        ValueError: No photo could be scored.
    """
    paths, skipped = collect_photos(inputs)
    os.makedirs(output, exist_ok=True)
    factors = list(factors) if shrink_photo else [upscale or factors[0]]
    rows, keep = [], {}
    bar = tqdm(total=len(paths) * len(factors), desc='photos', unit='run', disable=not progress)
    for path in paths:
        name = os.path.basename(path)
        try:
            img, _, _ = read_image(path)
            img = to_bgr8(img)
        except Exception as err:  # noqa: BLE001  (an unreadable input is reported and skipped)
            skipped[path] = f'{type(err).__name__}: {err}'
            bar.update(len(factors))
            continue
        for factor in factors:
            try:
                found, images = score_photo(restorer, img, int(factor), shrink_photo, upscale)
            except Exception as err:  # noqa: BLE001
                skipped[f'{path} x{factor}'] = f'{type(err).__name__}: {err}'
                bar.update(1)
                continue
            for r in found:
                r['photo'] = name
            rows += found
            if picture is None or picture in (name, os.path.splitext(name)[0]):
                best = keep.get(factor)
                if best is None or (picture is None and len(found) > best[0]):
                    keep[factor] = (len(found), name, images)
            bar.update(1)
    bar.close()
    for path, reason in skipped.items():
        tqdm.write(f'skip {path}: {reason}')
    if not rows:
        raise ValueError(f'no face could be scored in {len(paths)} photo(s) ({len(skipped)} skipped)')
    rows = [{k: r[k] for k in FIELDS} for r in rows]
    summary = summarise(rows)
    files = {'csv': os.path.join(output, 'faces.csv'), 'markdown': os.path.join(output, 'faces.md')}
    with open(files['csv'], 'w', newline='', encoding='utf-8') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f'{v:.4f}' if isinstance(v, float) else v) for k, v in r.items()})
    with open(files['markdown'], 'w', encoding='utf-8') as f:
        f.write(format_markdown(rows, summary, note))
    files['pictures'] = []
    for factor, (_, name, images) in sorted(keep.items()):
        pic = os.path.join(output, f'comparison_{os.path.splitext(name)[0]}_x{factor}.png')
        write_image(pic, comparison_picture(images))
        files['pictures'].append(pic)
    files['summary'] = os.path.join(output, 'summary.json')
    write_json(files['summary'], {'note': note, 'summary': summary, 'skipped': skipped}, indent=2)
    return {'rows': rows, 'summary': summary, 'skipped': skipped, 'files': files}


def load_rows(csv_path):
    """The rows of a ``faces.csv`` (numbers as floats / ints)."""
    with open(csv_path, encoding='utf-8') as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for k in ('psnr_bicubic', 'psnr_ours', 'gain_db', 'native_px'):
            r[k] = float(r[k])
        for k in ('face', 'x0', 'y0', 'x1', 'y1'):
            r[k] = int(r[k])
    return rows
