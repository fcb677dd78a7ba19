"""Publish a trained zoo model into ``facesr_kd/weights/`` with a manifest that says how it was made and how good it is.

``publish_zoo_model`` runs :func:`facesr_kd.publish.publish_checkpoint` on an experiment's ``net_g_latest.pth``
(EMA weights), then adds to the manifest what a user of the zoo needs: the training data and terms, the option file
and command, iterations, wall time and samples/s read from the BasicSR training log, its learning curve (the
validation PSNR/SSIM lines), fp32 vs bf16 training samples/s measured in one process, and the quality and cost of the
published file on the test faces (:func:`facesr_kd.benchmarks.zoo_quality.evaluate`).
"""

import json
import os
import re
from datetime import datetime

from facesr_kd.utils.files import write_json

TERMS = (
    'Weights trained on FFHQ (NVIDIA, CC BY-NC-SA 4.0; each image under its own Flickr license) and on synthetic '
    'StyleGAN faces from a model trained on FFHQ: non-commercial research use, with attribution to FFHQ '
    '(Karras et al., CVPR 2019). The code is Apache-2.0; these weights are not.'
)
DATA = (
    'FFHQ 256x256 train ids 00100-01100 (1,000 faces; 01099 is missing) + 1,100 synthetic StyleGAN faces '
    '(extra training pool, never tested on); LR made on the fly by facesr_kd.data.degradations.RealisticDownscale. '
    'Tested on FFHQ ids 00000-00099.'
)
_TIME = r'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+'


def read_training_log(log_path):
    """Iterations, wall time, samples/s and the learning curve of a BasicSR training log.

    Returns:
        dict: ``start``, ``end`` (ISO times), ``wall_s``, ``iterations``, ``batch_size``, ``samples_per_s``,
        ``curve`` (list of ``{'iter', 'psnr', 'ssim'}``, from the validation lines).
    """
    with open(log_path, encoding='utf-8') as f:
        text = f.read()
    stamps = re.findall(_TIME + ' INFO:', text)
    if not stamps:
        raise ValueError(f'{log_path}: no log lines with times; is it a BasicSR training log?')
    start = re.search(_TIME + r' INFO: Start training', text)
    start = datetime.fromisoformat((start or re.search(_TIME, text)).group(1))
    end = datetime.fromisoformat(stamps[-1])
    batch = re.search(r'batch_size_per_gpu: (\d+)', text)
    curve, last = [], 0
    for line in text.splitlines():
        if m := re.search(r'iter:\s*([\d,]+)', line):  # BasicSR prints 1,000
            last = int(m.group(1).replace(',', ''))
        if 'INFO: Validation ' in line:
            curve.append({'iter': last})
        elif (m := re.search(r'# (psnr|ssim): ([\d.]+)', line)) and curve:
            curve[-1][m.group(1)] = float(m.group(2))
    total = last
    wall = (end - start).total_seconds()
    bs = int(batch.group(1)) if batch else None
    return {
        'start': start.isoformat(),
        'end': end.isoformat(),
        'wall_s': wall,
        'iterations': total,
        'batch_size': bs,
        'samples_per_s': total * bs / wall if bs and wall > 0 else None,
        'curve': curve,
    }


def publish_zoo_model(experiment, name, option_file, faces, out_dir=None, command=None, threads=1):
    """Publish ``experiment/models/net_g_latest.pth`` as zoo model ``name`` with the full manifest.

    Args:
        experiment (str): The BasicSR experiment folder (``experiments/<name>``).
        name (str): Zoo name, e.g. ``lite-x8``.
        option_file (str): The shipped option file that trained it (recorded as given, e.g. a relative path).
        faces (str): The FFHQ 256 test faces (ids 00000–00099) for the quality rows.
        out_dir (str | None): Output folder; default ``facesr_kd/weights``.
        command (str | None): The training command (recorded).
        threads (int): Threads of the quality timing and the fp32/bf16 throughput run.

    Returns:
        tuple[str, dict]: The published ``.pth`` and its manifest.
    """
    from facesr_kd.benchmarks.zoo_quality import evaluate, training_throughput
    from facesr_kd.publish import publish_checkpoint
    from facesr_kd.recipes import load_yaml

    out_dir = out_dir or os.path.join(os.path.dirname(__file__), 'weights')
    ckpt = os.path.join(experiment, 'models', 'net_g_latest.pth')
    logs = sorted(f for f in os.listdir(experiment) if f.startswith('train_') and f.endswith('.log'))
    if not logs:
        raise FileNotFoundError(f'no train_*.log in {experiment}')
    training = read_training_log(os.path.join(experiment, logs[-1]))
    command = command or f'OMP_NUM_THREADS=1 facesr-kd-train -opt {option_file}'
    path, manifest = publish_checkpoint(ckpt, out_dir, name=name, commands=[command])
    opt = load_yaml(option_file)
    training.update(
        option_file=option_file,
        command=command,
        amp=opt['train'].get('amp'),
        threads=1,
        throughput_samples_per_s=training_throughput(opt['network_g'], threads=threads),
        throughput_note='one training step (L1 + Adam, batch 8, random tensors), fp32 then bf16 autocast, one process',
    )
    rows = evaluate([path], faces, ('clean', 'jpeg75'), threads=threads)
    quality = {}
    for bic, ours in zip(rows[::2], rows[1::2]):
        quality[ours['condition']] = {
            'model': {k: round(float(ours[k]), 4) for k in ('psnr', 'ssim', 'psnr_y', 'ssim_y')},
            'bicubic': {k: round(float(bic[k]), 4) for k in ('psnr', 'ssim', 'psnr_y', 'ssim_y')},
        }
    manifest.update(
        name=name,
        terms=TERMS,
        data=DATA,
        training=training,
        quality={'test_set': 'FFHQ 256 ids 00000-00099, MATLAB-bicubic LR (jpeg75: then JPEG q75)', **quality},
        cost={
            'params': rows[1]['params'],
            'gmacs': round(rows[1]['gmacs'], 3),
            'cpu_ms_per_face': round(rows[1]['ms_per_face'], 2),
            'threads': threads,
        },
    )
    manifest['source'].pop('options', None)  # the option file is shipped; its hash stays in the manifest
    write_json(os.path.splitext(path)[0] + '.json', manifest, indent=2)
    return path, manifest


def load_manifest(path):
    """A manifest ``.json`` as a dict."""
    with open(path, encoding='utf-8') as f:
        return json.load(f)
