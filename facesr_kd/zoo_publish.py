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
    # BasicSR validates again after the last iteration, when val_freq already did: keep one point per iteration.
    curve = [point for i, point in enumerate(curve) if i + 1 == len(curve) or curve[i + 1]['iter'] != point['iter']]
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


def combine_stages(stages):
    """One training record from the records of consecutive stages (each a :func:`read_training_log` dict with
    ``option_file`` and ``command``): summed iterations and wall time, one learning curve on the running
    iteration count, and the stages themselves under ``stages``."""
    if len(stages) == 1:
        return dict(stages[0])
    curve, done, samples = [], 0, 0
    for stage in stages:
        curve += [{**point, 'iter': point['iter'] + done} for point in stage['curve']]
        done += stage['iterations']
        samples += stage['iterations'] * (stage['batch_size'] or 0)
    wall = sum(stage['wall_s'] for stage in stages)
    return {
        'start': stages[0]['start'],
        'end': stages[-1]['end'],
        'wall_s': wall,
        'iterations': done,
        'batch_size': stages[-1]['batch_size'],
        'samples_per_s': samples / wall if samples and wall > 0 else None,
        'curve': curve,
        'option_file': stages[-1]['option_file'],
        'command': ' && '.join(stage['command'] for stage in stages),
        'stages': [dict(stage) for stage in stages],
    }


def publish_zoo_model(experiments, name, option_files, faces, out_dir=None, commands=None, threads=1):
    """Publish the last experiment's ``models/net_g_latest.pth`` as zoo model ``name`` with the full manifest.

    Args:
        experiments (str | list[str]): The BasicSR experiment folders (``experiments/<name>``), one per training
            stage, in order (a fine-tuning stage starts from the stage before it); the last one is published.
        name (str): Zoo name, e.g. ``lite-x8``.
        option_files (str | list[str]): The shipped option file of each stage (recorded as given, e.g. a
            relative path).
        faces (str): The FFHQ 256 test faces (ids 00000–00099) for the quality rows.
        out_dir (str | None): Output folder; default ``facesr_kd/weights``.
        commands (list[str] | None): The training command of each stage (recorded); default
            ``OMP_NUM_THREADS=1 facesr-kd-train -opt <option file>``.
        threads (int): Threads of the quality timing and the fp32/bf16 throughput run.

    Returns:
        tuple[str, dict]: The published ``.pth`` and its manifest.

    Raises:
        ValueError: Experiments and option files differ in number.
        FileNotFoundError: An experiment has no training log.
    """
    from facesr_kd.benchmarks.zoo_quality import evaluate, training_throughput
    from facesr_kd.publish import publish_checkpoint
    from facesr_kd.recipes import load_yaml

    experiments = [experiments] if isinstance(experiments, str) else list(experiments)
    option_files = [option_files] if isinstance(option_files, str) else list(option_files)
    commands = commands or [f'OMP_NUM_THREADS=1 facesr-kd-train -opt {f}' for f in option_files]
    if not len(experiments) == len(option_files) == len(commands):
        raise ValueError(
            f'one option file (and command) per experiment: got {len(experiments)} experiments, '
            f'{len(option_files)} option files and {len(commands)} commands'
        )
    stages = []
    for experiment, option_file, command in zip(experiments, option_files, commands):
        logs = sorted(f for f in os.listdir(experiment) if f.startswith('train_') and f.endswith('.log'))
        if not logs:
            raise FileNotFoundError(f'no train_*.log in {experiment}')
        stage = read_training_log(os.path.join(experiment, logs[-1]))
        stages.append({**stage, 'option_file': option_file, 'command': command})
    training = combine_stages(stages)
    ckpt = os.path.join(experiments[-1], 'models', 'net_g_latest.pth')
    path, manifest = publish_checkpoint(ckpt, out_dir or os.path.join(os.path.dirname(__file__), 'weights'),
                                        name=name, commands=commands)  # fmt: skip
    opt = load_yaml(option_files[-1])
    training.update(
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
