"""Quality and cost of face-restoration checkpoints (the model zoo) on aligned test faces, beside bicubic.

For every checkpoint and every LR condition — ``clean`` (MATLAB-bicubic downscale rounded to 8 bits, what
``facesr-kd-prepare`` writes) and ``jpeg<q>`` (the same LR face through JPEG at quality ``q``) — it scores the
restored faces against the HR faces with BasicSR's PSNR/SSIM on RGB and on Y, and puts an OpenCV bicubic upscale
of the same LR faces beside them. Cost from the same run: parameters, GMACs per face (``torch.utils.flop_counter``,
multiply-adds), and the median CPU milliseconds per face at batch 1.

``training_throughput`` times training steps (L1, Adam, batch on random tensors) of an option file's network in
fp32 and under bf16 autocast, one after the other in one process: the ratio is what ``train: amp: bf16`` buys.
"""

import csv
import os
import statistics
import time

from facesr_kd.benchmarks.efficiency import median_time
from facesr_kd.data.degradations import jpeg
from facesr_kd.data.face_sr_dataset import downscale_like_prepare
from facesr_kd.metrics.psnr_ssim import PSNR_SSIM_KEYS, mean_psnr_ssim
from facesr_kd.utils.checkpoint import load_sr_network
from facesr_kd.utils.files import write_text

import cv2
import numpy as np
import torch
from basicsr.utils import img2tensor, tensor2img

BICUBIC = 'Bicubic (OpenCV)'


def test_face_paths(faces, ids=range(100)):
    """The test split's files: ``faces/<id:05d>.jpg`` (or ``.png``) for each id; missing ones are an error."""
    paths = []
    for i in ids:
        for ext in ('.jpg', '.png'):
            path = os.path.join(faces, f'{i:05d}{ext}')
            if os.path.isfile(path):
                paths.append(path)
                break
        else:
            raise FileNotFoundError(f'test face {i:05d}.jpg/.png not found in {faces}')
    return paths


def lr_faces(gts, scale, condition):
    """LR faces (uint8 BGR) of ``gts`` (uint8 BGR) under ``condition``: ``clean`` or ``jpeg<q>``."""
    out = []
    for gt in gts:
        lr = downscale_like_prepare(gt.astype(np.float32) / 255.0, scale)
        if condition.startswith('jpeg'):
            lr = jpeg(lr, int(condition[4:]))
        elif condition != 'clean':
            raise ValueError(f'unknown LR condition {condition!r}; use clean or jpeg<quality>, e.g. jpeg75')
        out.append(np.clip(np.rint(lr * 255.0), 0, 255).astype(np.uint8))
    return out


def restore(net, lrs, batch=10):
    """Run ``net`` on uint8 BGR LR faces, in batches; uint8 BGR outputs."""
    outs = []
    with torch.no_grad():
        for i in range(0, len(lrs), batch):
            x = torch.stack(img2tensor([lr.astype(np.float32) / 255.0 for lr in lrs[i : i + batch]]))
            outs += tensor2img(list(net(x).float()), min_max=(0, 1))
    return outs


def gmacs(net, lq_size):
    """Multiply-adds of one forward pass on one face, in GMACs."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(torch.rand(1, 3, lq_size, lq_size))
    return counter.get_total_flops() / 2 / 1e9


def evaluate(models, faces, conditions=('clean', 'jpeg75'), ids=range(100), threads=None, runs=5):
    """Score each checkpoint and bicubic on the test faces under each LR condition.

    Args:
        models (Sequence[str]): Checkpoints, or zoo names (:func:`facesr_kd.zoo.resolve_model`).
        faces (str): Folder of aligned HR test faces (``ffhq256``: ids 00000–00099).
        conditions (Sequence[str]): ``clean`` and/or ``jpeg<q>``.
        ids (Iterable[int]): Test face ids.
        threads (int | None): ``torch.set_num_threads`` for the run (and the timing).
        runs (int): Timed single-face forwards per model (median kept).

    Returns:
        list[dict]: Rows with ``model``, ``scale``, ``lq``, ``condition``, the four metrics, ``params``,
        ``gmacs`` and ``ms_per_face`` (bicubic rows: cost fields empty).
    """
    if threads:
        torch.set_num_threads(threads)
    gts = [cv2.imread(p, cv2.IMREAD_COLOR) for p in test_face_paths(faces, ids)]
    rows = []
    for spec in models:
        path = _resolve(spec)
        net, info = load_sr_network(path, device='cpu')
        scale, lq_size, out_size = info['scale'], info['lq_size'], info['out_size']
        if gts[0].shape[0] != out_size:
            raise ValueError(f'{spec}: outputs {out_size}px faces; the test faces in {faces} are {gts[0].shape[0]}px')
        one = torch.rand(1, 3, lq_size, lq_size)
        with torch.no_grad():
            ms = 1e3 * median_time(lambda n=net, x=one: n(x), warmup=2, runs=runs)
        cost = {'params': sum(p.numel() for p in net.parameters()), 'gmacs': gmacs(net, lq_size), 'ms_per_face': ms}
        for condition in conditions:
            lrs = lr_faces(gts, scale, condition)
            base = [cv2.resize(lr, (out_size, out_size), interpolation=cv2.INTER_CUBIC) for lr in lrs]
            common = {'scale': scale, 'lq': f'{lq_size}->{out_size}', 'condition': condition}
            rows.append({'model': BICUBIC, **common, **mean_psnr_ssim(base, gts)})
            rows.append({'model': os.path.basename(spec), **common, **mean_psnr_ssim(restore(net, lrs), gts), **cost})
    return rows


def _resolve(spec):
    if os.path.isfile(spec):
        return spec
    from facesr_kd.zoo import resolve_model

    return resolve_model(spec)


FIELDS = ('model', 'scale', 'lq', 'condition', *PSNR_SSIM_KEYS, 'params', 'gmacs', 'ms_per_face')


def format_table(rows):
    """A Markdown table of :func:`evaluate`'s rows, with Δ PSNR against the bicubic row above each model."""
    lines = [
        '| model | LR | condition | PSNR | SSIM | PSNR-Y | SSIM-Y | Δ PSNR vs bicubic | params | GMACs | CPU ms/face |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
    ]
    base = None
    for r in rows:
        if r['model'] == BICUBIC:
            base = r
        delta = '' if r['model'] == BICUBIC or base is None else f'{r["psnr"] - base["psnr"]:+.2f}'
        cost = (
            (f'{r["params"] / 1e6:.2f} M', f'{r["gmacs"]:.2f}', f'{r["ms_per_face"]:.1f}')
            if 'params' in r
            else ('', '', '')
        )
        lines.append(
            f'| {r["model"]} | {r["lq"]} | {r["condition"]} | {r["psnr"]:.2f} | {r["ssim"]:.4f} | {r["psnr_y"]:.2f} '
            f'| {r["ssim_y"]:.4f} | {delta} | {" | ".join(cost)} |'
        )
    return '\n'.join(lines) + '\n'


def write_results(rows, out_prefix, note=''):
    """Write ``<out_prefix>.csv`` and ``<out_prefix>.md`` (the table, then ``note``); return the Markdown."""
    os.makedirs(os.path.dirname(os.path.abspath(out_prefix)), exist_ok=True)
    with open(out_prefix + '.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (f'{r[k]:.4f}' if isinstance(r.get(k), float) else r.get(k, '')) for k in FIELDS})
    text = format_table(rows) + (f'\n{note}\n' if note else '')
    write_text(out_prefix + '.md', text)
    return text


def training_throughput(network_opt, batch=8, iters=10, warmup=3, amps=('fp32', 'bf16'), threads=None):
    """Training samples per second of ``network_opt`` (an option file's ``network_g``) in each precision.

    One L1 + Adam step on a random batch (no data loading), timed ``iters`` times after ``warmup``, for each of
    ``amps`` in turn in this process; the median step time gives samples/s.

    Returns:
        dict[str, float]: samples/s per precision.
    """
    import facesr_kd  # noqa: F401  (registers the archs)

    from basicsr.utils.registry import ARCH_REGISTRY

    if threads:
        torch.set_num_threads(threads)
    opt = dict(network_opt)
    cls = ARCH_REGISTRY.get(opt.pop('type'))
    out = {}
    for amp in amps:
        torch.manual_seed(0)
        net = cls(**opt)
        optim = torch.optim.Adam(net.parameters(), lr=1e-4)
        lq_size = net.out_size // net.scale
        lq, gt = torch.rand(batch, 3, lq_size, lq_size), torch.rand(batch, 3, net.out_size, net.out_size)
        dtype = {'fp32': None, 'bf16': torch.bfloat16}[amp]

        def step(net=net, optim=optim, lq=lq, gt=gt, dtype=dtype):
            optim.zero_grad()
            with torch.autocast('cpu', dtype=dtype or torch.float32, enabled=dtype is not None):
                sr = net(lq)
            torch.nn.functional.l1_loss(sr.float(), gt).backward()
            optim.step()

        for _ in range(warmup):
            step()
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        out[amp] = batch / statistics.median(times)
    return out
