"""Colour error of pasted faces against the upscaled photo, per photo, for each ``--color-fix``.

The metric is :func:`facesr_kd.face.colour.paste_colour_error`: mean CIE76 ΔE between the pasted photo and the
bicubic-upscaled input, both Gaussian-blurred, inside the face regions (the feathered rim left out). Two networks:
a tiny DFDNetStudent with RANDOM weights (seed 0, as the tests' ``student_ckpt``: its colours are arbitrary, so the
fix's effect is far larger than a trained network's) and a bicubic x8 stand-in whose faces already have the
photo's colours (the fix should change nothing there). No quality figure comes out of this benchmark.
"""

import os

from facesr_kd.archs.dfdnet_student_arch import DFDNetStudent
from facesr_kd.face.colour import COLOR_FIXES, face_region_mask, paste_colour_error
from facesr_kd.face.image_io import read_image
from facesr_kd.inference import FaceSRRestorer

import numpy as np
import torch
import torch.nn.functional as F

INFO = {'lq_size': 32, 'out_size': 256, 'scale': 8, 'needs_boxes': False}


class BicubicX8(torch.nn.Module):
    """The LR face bicubic-upsampled x8: a network whose output colours are the input's."""

    def forward(self, lq):
        return F.interpolate(lq, scale_factor=8, mode='bicubic', align_corners=False).clamp(0, 1)


def measure(photo_dir, model_root, det_model='retinaface_mobile0.25', upscale=2):
    """ΔE per photo and colour fix, for the random tiny student and the bicubic stand-in.

    Returns:
        dict[str, list[tuple[str, int, list[float]]]]: network label -> (photo name, faces, ΔE per method of
        :data:`COLOR_FIXES`) rows.
    """
    torch.manual_seed(0)
    nets = {
        'random tiny DFDNetStudent': (DFDNetStudent(out_size=256, num_feat=8, vgg_pretrained=False), 'DFDNetStudent'),
        'bicubic x8 stand-in': (BicubicX8(), 'BicubicX8'),
    }
    det = dict(det_model=det_model, model_root=model_root, offline=True, device='cpu', upscale=upscale)
    results = {}
    for label, (net, arch) in nets.items():
        restorer = FaceSRRestorer(net=net, info={**INFO, 'type': arch}, **det)
        rows = []
        for name in sorted(os.listdir(photo_dir)):
            img, _, _ = read_image(os.path.join(photo_dir, name))
            errs = []
            for method in COLOR_FIXES:
                restorer.color_fix = method
                _, _, out = restorer.enhance(img)
                dets = restorer.last_stats['detections']
                bg = restorer.upscale_background(img)
                mask = np.zeros(out.shape[:2], bool)
                for d in dets:
                    mask |= face_region_mask(out.shape, d['affine'], restorer.out_size, restorer.upscale)
                errs.append(paste_colour_error(out, bg, mask))
            rows.append((name, len(dets), errs))
        results[label] = rows
    return results


def format_results(results):
    """The Markdown tables of :func:`measure`."""
    lines = []
    for label, rows in results.items():
        lines += [f'\n{label}: mean ΔE (Lab, Gaussian σ 4 px) of pasted faces vs the bicubic photo', '']
        lines += ['| photo | faces | ' + ' | '.join(COLOR_FIXES) + ' |', '|---|---|' + '---|' * len(COLOR_FIXES)]
        lines += [f'| {n} | {k} | ' + ' | '.join(f'{e:.2f}' for e in errs) + ' |' for n, k, errs in rows]
        means = np.mean([errs for _, _, errs in rows], axis=0)
        lines.append('| **mean** | | ' + ' | '.join(f'**{m:.2f}**' for m in means) + ' |')
    return '\n'.join(lines)


def main(argv=None):
    """``facesr-kd-benchmark-colour DATA``: DATA holds ``faces/whole`` and ``weights/facexlib`` (../shared/data)."""
    import argparse

    parser = argparse.ArgumentParser(description='Colour error of pasted faces for each --color-fix.')
    parser.add_argument('data', help='folder with faces/whole/ and weights/facexlib/ (e.g. ../shared/data)')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(
        format_results(
            measure(os.path.join(args.data, 'faces', 'whole'), os.path.join(args.data, 'weights', 'facexlib'))
        )
    )
    return 0
