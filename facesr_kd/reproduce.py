"""Reproduce the paper's Table 1 and Figure 1 from face photos, in one command.

Stages, each skipped when its output exists (training stages resume with ``--auto_resume``):
prepare (train/test faces, LR, boxes) -> build dictionary -> train teacher -> train student without KD ->
distil -> train RCAN x8 -> train SRFBN x8 -> test all five -> table (Markdown/CSV) + figure.

Presets:
  smoke  64x64 faces (8x8 LR), tiny widths, a few iterations: checks the chain in minutes on a laptop CPU.
  small  128x128 faces (16x16 LR), reduced widths and iterations: about an hour on a 2-core CPU.
  paper  256x256 faces (32x32 LR), the shipped option files unchanged (VGGFace2; multi-GPU with --nproc).

Without ``--faces``, a demo set is built offline from two portraits shipped inside installed packages:
scikit-image's ``astronaut.png`` (Eileen Collins, NASA, public domain) and matplotlib's ``grace_hopper.jpg``
(sample data), aligned with hand-measured landmarks and jittered into several crops. Train and test then share
identities: a check that the chain runs, never a result.

Without ImageNet VGG19 weights (torchvision's ``vgg19-dcbb9e9d.pth``), ``--random-vgg`` uses one fixed
random-initialised VGG19 (saved in the work folder, shared by the dictionary, encoders and perceptual loss),
and LPIPS runs on random backbones; the table then labels its LPIPS column as not LPIPS.

Usage::

    facesr-kd-reproduce --preset smoke
    facesr-kd-reproduce --preset small --faces ../shared/data/faces/aligned/ffhq256 --aligned \\
        --train-range 100: --test-range 0:100 --random-vgg
"""

import os
import re
import shlex
import subprocess
import sys
import time

from facesr_kd.archs.vgg19 import default_vgg19_path, save_random_vgg19
from facesr_kd.face.align import estimate_affine, warp_face
from facesr_kd.recipes import (
    METHODS,
    PRESETS,
    TABLE1_METHODS,
    TABLE1_ORDER,
    describe_preset,
    latest_checkpoint,
    make_test_options,
    make_train_options,
    write_yaml,
)
from facesr_kd.utils.entry import DONE_RE

import cv2
import numpy as np
import yaml
from tqdm import tqdm

# Hand-measured five landmarks (eyes, nose tip, mouth corners) of the shipped demo portraits.
DEMO_PORTRAITS = {
    'astronaut': [[203.5, 101.0], [245.5, 103.0], [224.0, 126.0], [201.0, 141.0], [252.0, 139.0]],
    'grace_hopper': [[220.0, 187.0], [305.0, 186.0], [265.0, 245.0], [232.0, 275.0], [307.0, 275.0]],
}


def demo_portrait_paths():
    import matplotlib.cbook
    import skimage

    return {
        'astronaut': os.path.join(os.path.dirname(skimage.__file__), 'data', 'astronaut.png'),
        'grace_hopper': matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False),
    }


def build_demo_faces(out_dir, num_train, num_test, size=256, seed=0):
    """Aligned demo faces from the two shipped portraits, each crop with its own small similarity jitter.

    Returns:
        tuple[str, str]: The train and test folders of aligned ``size`` x ``size`` PNGs.
    """
    rng = np.random.default_rng(seed)
    paths = demo_portrait_paths()
    folders = {split: os.path.join(out_dir, split) for split in ('train', 'test')}
    for split, count in (('train', num_train), ('test', num_test)):
        os.makedirs(folders[split], exist_ok=True)
        for i in range(count):
            name = sorted(DEMO_PORTRAITS)[i % 2]
            out = os.path.join(folders[split], f'{split}_{i:03d}_{name}.png')
            if os.path.exists(out):
                continue
            img = cv2.imread(paths[name])
            lm = np.array(DEMO_PORTRAITS[name])
            angle, zoom = np.deg2rad(rng.uniform(-6, 6)), rng.uniform(0.94, 1.06)
            shift = rng.uniform(-0.03, 0.03, size=2) * np.ptp(lm[:, 0])
            center = lm.mean(0)
            rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * zoom
            jittered = (lm - center) @ rot.T + center + shift
            face = warp_face(img, estimate_affine(jittered, size), size, border='reflect')
            cv2.imwrite(out, face[:, ::-1] if rng.random() < 0.5 else face)
    return folders['train'], folders['test']


def parse_range(text):
    start, _, end = text.partition(':')
    return (int(start) if start else None), (int(end) if end else None)


def random_vgg_file(work_dir, seed=0, write=True):
    """One fixed random-initialised VGG19 shared by every stage (never an ImageNet stand-in for results).

    ``write=False`` (a dry run) only names the file.
    """
    path = os.path.join(work_dir, f'vgg19_RANDOM_seed{seed}.pth')
    return path if os.path.exists(path) or not write else save_random_vgg19(path, seed)


class StageError(RuntimeError):
    """A stage's command failed; the message says how to resume."""


# BasicSR's training log line: ``[train..][epoch:  0, iter:     120, lr:(...)]``.
_ITER_RE = re.compile(r'\biter:\s*([\d,]+)')
# One line per stage: what it is, a bar, the count and the elapsed time, within 100 columns.
BAR_FORMAT = '{desc:<34}{percentage:3.0f}%|{bar:25}| {n_fmt:>6}/{total_fmt:<6} [{elapsed}]'


def stage_bar(desc, total, unit='it'):
    """A one-line tqdm progress bar for a stage (on stderr; sparse updates when stderr is not a terminal)."""
    tty = sys.stderr.isatty()
    return tqdm(
        total=total, desc=desc, unit=unit, bar_format=BAR_FORMAT, ncols=100, mininterval=0.5 if tty else 30,
        file=sys.stderr, dynamic_ncols=False,
    )  # fmt: skip


def _train_iters(args):
    """``train.total_iter`` of the option file a ``facesr_kd.train`` command reads, or None."""
    args = [str(a) for a in args]
    if 'facesr_kd.train' not in args or '-opt' not in args:
        return None
    try:
        with open(args[args.index('-opt') + 1]) as f:
            return int(yaml.safe_load(f)['train']['total_iter'])
    except (OSError, KeyError, TypeError, ValueError, IndexError, yaml.YAMLError):
        return None


def _slug(stage):
    return re.sub(r'[^A-Za-z0-9_.-]+', '_', stage).strip('_')


class Runner:
    """Runs stages as subprocesses in the work folder, logs every command, keeps their output out of the terminal.

    Each stage's output (BasicSR's banner, option dump and log lines) goes to ``<work_dir>/logs/<stage>.log``;
    the terminal gets one progress line per stage (training stages count BasicSR's logged iterations). A failed
    stage prints the end of its log and the log's path.
    """

    def __init__(self, work_dir, dry_run=False):
        self.work_dir = work_dir
        self.log = os.path.join(work_dir, 'commands.log')
        self.log_dir = os.path.join(work_dir, 'logs')
        self.dry_run = dry_run

    def run(self, args, stage):
        """Run ``python args...`` as stage ``stage`` (a training command's bar counts its ``total_iter``).

        Raises:
            StageError: The command exited non-zero (the message names its log and how to resume).
        """
        self.run_stages(args, [(stage, _train_iters(args))])

    def run_stages(self, args, stages):
        """Run ``python args...``, one command that runs several stages in turn (``facesr_kd.train`` or
        ``facesr_kd.test`` with several ``-opt`` files, which print :data:`facesr_kd.utils.entry.DONE_MARK` after
        each one).

        Each stage gets its own progress line and its own log, ``logs/<stage>.log``.

        Args:
            args (list): The arguments after ``python``.
            stages (list[tuple[str, int | None]]): Each stage's name and the iterations its bar counts (BasicSR's
                ``iter:`` log lines; None: one step).

        Raises:
            StageError: The command exited non-zero (the message names the failed stage's log and how to resume).
        """
        cmd = [sys.executable, *map(str, args)]
        line = ' '.join(shlex.quote(c) for c in cmd)
        names = ', '.join(name for name, _ in stages)
        with open(self.log, 'a') as f:
            f.write(f'# {time.strftime("%Y-%m-%d %H:%M:%S")} {names}\n(cd {shlex.quote(self.work_dir)} && {line})\n')
        if self.dry_run:
            print(f'[{names}] {line}', flush=True)
            return
        os.makedirs(self.log_dir, exist_ok=True)
        env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
        proc = subprocess.Popen(
            cmd, cwd=self.work_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors='replace',
        )  # fmt: skip
        done, current = 0, stages[0]
        log_path, log, bar = self._open_stage(current, line)
        try:
            for out in proc.stdout:
                log.write(out)
                if len(stages) > 1 and DONE_RE.search(out):
                    bar.update(bar.total - bar.n)
                    bar.close()
                    log.close()
                    done += 1
                    if done < len(stages):
                        current = stages[done]
                        log_path, log, bar = self._open_stage(current, line)
                    continue
                match = _ITER_RE.search(out) if current[1] else None
                if match:
                    bar.update(max(0, min(bar.total, int(match.group(1).replace(',', ''))) - bar.n))
            returncode = proc.wait()
            if returncode == 0 and done < len(stages):
                bar.update(bar.total - bar.n)
        finally:
            if done < len(stages):
                bar.close()
                log.close()
        if returncode != 0:
            with open(log_path, errors='replace') as f:
                tail = f.readlines()[-25:]
            print(f'--- last lines of {log_path} ---', file=sys.stderr)
            sys.stderr.writelines(tail)
            raise StageError(
                f'stage {current[0]!r} failed ({returncode}); its output is in {log_path}. Fix it and re-run: finished '
                f'stages are skipped and training resumes. Commands are in {self.log}.'
            )

    def _open_stage(self, stage, line):
        name, total = stage
        log_path = os.path.join(self.log_dir, f'{_slug(name)}.log')
        log = open(log_path, 'w', buffering=1)
        log.write(f'$ (cd {shlex.quote(self.work_dir)} && {line})\n')
        return log_path, log, stage_bar(name, total or 1, 'it' if total else 'stage')


def prepare_split(preset, work_dir, split, input_dir, rng, aligned, det_model, model_root, workers):
    from facesr_kd.data.prepare import prepare_faces, run_errors

    out = os.path.join(work_dir, 'data', split)
    start, end = parse_range(rng)
    summary = prepare_faces(
        input_dir,
        out,
        aligned=aligned,
        det_model=det_model,
        model_root=model_root,
        size=preset['size'],
        scale=8,
        start=start,
        end=end,
        workers=workers,
        progress=True,
    )
    errors = run_errors(summary, input_dir)
    if errors:
        raise StageError(f'preparing the {split} faces failed: ' + '; '.join(errors))
    return out


def reproduce_table1(
    preset='smoke',
    faces=None,
    aligned=False,
    train_range=None,
    test_range=None,
    work_dir=None,
    random_vgg=False,
    lpips_random=False,
    vgg_weights=None,
    det_model='retinaface_resnet50',
    model_root=None,
    device='cpu',
    nproc=1,
    workers=None,
    dry_run=False,
    iters=None,
    methods=None,
):
    """Run the whole chain and return the table's rows (empty for a dry run).

    Args:
        preset (str): A key of :data:`facesr_kd.recipes.PRESETS`.
        faces (str | None): Face photos (a folder, or a VGGFace2 root with ``train/`` and ``test/``); None builds
            the offline demo set.
        aligned (bool): ``faces`` are FFHQ-aligned crops (no detection).
        train_range, test_range (str | None): Sorted-index ranges of the photos, e.g. ``'100:'`` (default: the
            preset's).
        work_dir (str | None): Where everything goes (default: ``runs/table1_<preset>``).
        random_vgg (bool): One fixed random VGG19 and random LPIPS backbones instead of ImageNet weights
            (labelled in the table).
        lpips_random (bool): Random LPIPS backbones only.
        vgg_weights (str | None): ImageNet ``vgg19-dcbb9e9d.pth`` (default: the torch hub cache).
        det_model (str): Face detector for unaligned photos.
        model_root (str | None): Folder of the facexlib detector weights.
        device (str): ``'cpu'`` or ``'cuda'``.
        nproc (int): GPUs per node for training (torchrun).
        workers (int | None): Processes for face preparation.
        dry_run (bool): Write the option files and log the commands only.
        iters (int | None): Iterations of every training stage (default: the preset's).
        methods (list[str] | None): Rows to train and test (default: the preset's).

    Raises:
        FileNotFoundError: ImageNet VGG19 weights are needed and missing.
        StageError: A stage failed; re-running resumes.
    """
    preset_name = preset
    preset = dict(PRESETS[preset_name])
    if iters is not None:  # a quicker check of the chain: every stage trains this many iterations
        preset.update(iters=iters, teacher_iters=iters)
    work_dir = os.path.abspath(work_dir or os.path.join('runs', f'table1_{preset_name}'))
    os.makedirs(work_dir, exist_ok=True)
    runner = Runner(work_dir, dry_run=dry_run)
    t0 = time.time()
    if not dry_run:
        print(f'run folder: {work_dir} (stage logs: logs/, BasicSR logs: experiments/, results/)', flush=True)

    # Weights: ImageNet VGG19, or one explicit fixed random VGG19 (the smoke preset falls back to it, loudly).
    have_vgg = os.path.isfile(vgg_weights or default_vgg19_path())
    if preset_name == 'smoke' and not have_vgg and not random_vgg:
        print('ImageNet VGG19 weights not found: the smoke preset continues with a random VGG19.', flush=True)
        random_vgg = True
    if random_vgg:
        vgg_file = random_vgg_file(work_dir, write=not dry_run)
        print(
            'WARNING: random VGG19 and LPIPS backbones: the table checks the chain, it is no quality result.',
            flush=True,
        )
    else:
        vgg_file = vgg_weights or default_vgg19_path()
        if not os.path.isfile(vgg_file):
            raise FileNotFoundError(
                f'ImageNet VGG19 weights not found at {vgg_file}. Download '
                'https://download.pytorch.org/models/vgg19-dcbb9e9d.pth there (or pass --vgg-weights), or run '
                'with --random-vgg to check the chain without them.'
            )

    # 1. Faces.
    if faces:
        inputs = {'train': faces, 'test': faces}
        ranges = {'train': train_range or preset['train_range'], 'test': test_range or preset['test_range']}
        if os.path.isdir(os.path.join(faces, 'train')) and os.path.isdir(os.path.join(faces, 'test')):
            inputs = {s: os.path.join(faces, s) for s in inputs}  # a VGGFace2-style root
    else:
        print('No --faces given: the offline demo set (two portraits; train and test share them).', flush=True)
        train_dir, test_dir = build_demo_faces(
            os.path.join(work_dir, 'demo_faces'), preset['demo_train'], preset['demo_test']
        )
        inputs, ranges = {'train': train_dir, 'test': test_dir}, {'train': ':', 'test': ':'}
        aligned = True
    data = {
        split: prepare_split(
            preset, work_dir, split, inputs[split], ranges[split], aligned, det_model, model_root, workers
        )
        for split in ('train', 'test')
    }
    data['name'] = os.path.basename(os.path.normpath(faces)) if faces else 'demo'

    # 2. Dictionary.
    dict_path = os.path.join(work_dir, f'dictionary_k{preset["num_atoms"]}_{preset["size"]}.pth')
    if not os.path.exists(dict_path):
        runner.run(
            [
                '-m',
                'facesr_kd.cli.dictionary',
                '--gt-dir',
                os.path.join(data['train'], 'hr'),
                '--boxes',
                os.path.join(data['train'], 'boxes.json'),
                '-o',
                dict_path,
                '--num-atoms',
                preset['num_atoms'],
                '--out-size',
                preset['size'],
                '--vgg-weights',
                vgg_file,
                '--device',
                device,
                '--seed',
                0,
            ],
            'dictionary',
        )

    # 3. Training, teacher first (the distillation needs it), all in one process.
    opt_dir = os.path.join(work_dir, 'options')
    os.makedirs(opt_dir, exist_ok=True)
    chosen = methods or preset.get('methods', TABLE1_METHODS)
    order = [m for m in METHODS if m in chosen]  # the teacher first: the distillation needs it
    pending = []
    for method in order:
        opt = make_train_options(method, preset, work_dir, data, vgg_file, dict_path, device)
        if os.path.exists(latest_checkpoint(work_dir, method)):
            print(f'train {method}: done, skipped', flush=True)
            continue
        pending.append((method, write_yaml(opt, os.path.join(opt_dir, f'{opt["name"]}.yml')), opt))
    if pending:  # one process trains them in turn (one start-up of torch and BasicSR)
        launch = ['-m', 'facesr_kd.train']
        if nproc > 1:
            launch = ['-m', 'torch.distributed.run', f'--nproc_per_node={nproc}', '-m', 'facesr_kd.train']
        extra = ['--launcher', 'pytorch'] if nproc > 1 else []
        runner.run_stages(
            [*launch, *[a for _, f, _ in pending for a in ('-opt', f)], '--auto_resume', *extra],
            [(f'train {method}', int(opt['train']['total_iter'])) for method, _, opt in pending],
        )

    # 4. Tests, all in one process (one start-up of torch and BasicSR).
    lpips_random = random_vgg or lpips_random
    names, pending = {}, []
    for method in order:
        opt = make_test_options(method, preset, work_dir, data, vgg_file, device, lpips_random)
        names[method] = opt['name']
        if os.path.exists(os.path.join(work_dir, 'results', opt['name'], 'metrics.json')):
            print(f'test {method}: done, skipped', flush=True)
            continue
        pending.append((method, write_yaml(opt, os.path.join(opt_dir, f'{opt["name"]}.yml'))))
    if pending:
        runner.run_stages(
            ['-m', 'facesr_kd.test', *[a for _, f in pending for a in ('-opt', f)]],
            [(f'test {method}', None) for method, _ in pending],
        )

    # 5. Table and figure.
    from facesr_kd.face.components import load_boxes_file
    from facesr_kd.table1 import draw_figure, make_table1, terminal_table

    out_prefix = os.path.join(work_dir, 'table1')
    ordered = {m: names[m] for m in TABLE1_ORDER if m in names}
    box_source = load_boxes_file(os.path.join(data['test'], 'boxes.json'))[1]['source']
    note = (
        f'{describe_preset(preset_name)} Teacher boxes at test time: `{box_source}` (boxes.json of the test set); '
        f'VGG19: {"RANDOM (fixed seed)" if random_vgg else "ImageNet"}. Bicubic rows: the same LR test faces '
        'upsampled, scored with the same BasicSR functions.'
    )
    if dry_run:
        print(note)
        return []
    rows, _ = make_table1(
        os.path.join(work_dir, 'results'),
        out_prefix,
        os.path.join(data['test'], 'lr_x8'),
        os.path.join(data['test'], 'hr'),
        names=ordered,
        lpips_valid=not lpips_random,
        note=note,
    )
    stems = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(data['test'], 'hr')))
    draw_figure(
        os.path.join(work_dir, 'results'),
        stems[: preset['figure_faces']],
        os.path.join(data['test'], 'lr_x8'),
        os.path.join(data['test'], 'hr'),
        f'{out_prefix}_figure1.png',
        names=ordered,
        size=max(preset['size'], 128),
    )
    print(terminal_table(rows))
    if random_vgg:
        print('Random VGG19: a check of the chain, not a result. Levers and every column: the full table.')
    minutes, seconds = divmod(round(time.time() - t0), 60)
    print(f'full table: {out_prefix}.md (.csv), figure: {out_prefix}_figure1.png')
    print(f'commands: {runner.log}; done in {minutes} min {seconds:02d} s')
    return rows
