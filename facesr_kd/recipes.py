"""The five recipes of the paper's Table 1 as option dicts, at any preset size.

The shipped option files (``options/*.yml``, ``options/test/*.yml``) are the paper-scale recipes; a preset
changes only sizes, widths, iterations and paths, so the smoke runs of the test suite and the ``small``
benchmark exercise exactly the recipes that ship. ``facesr-kd-reproduce`` is the CLI over this module.
"""

import copy
import os

from facesr_kd.utils.files import write_text

import yaml

# Row label -> (train option file, test option file, model kind). Table 1's order of training: the teacher first.
METHODS = {
    'Teacher': ('train_teacher_vggface2.yml', 'test_teacher_vggface2.yml', 'teacher'),
    'Student w/o KD': ('train_student_nokd_vggface2.yml', 'test_student_nokd_vggface2.yml', 'student'),
    'Student': ('distill_vggface2.yml', 'test_student_vggface2.yml', 'student'),
    'Student (KD+)': ('distill_plus_vggface2.yml', 'test_student_plus_vggface2.yml', 'student'),
    'Student (hints)': ('distill_hint_vggface2.yml', 'test_student_hint_vggface2.yml', 'student'),
    'Student (output KD)': ('distill_output_vggface2.yml', 'test_student_output_vggface2.yml', 'student'),
    'Lite student w/o KD': ('train_lite_student_nokd_vggface2.yml', 'test_lite_student_nokd_vggface2.yml', 'lite'),
    'Lite student': ('distill_lite_vggface2.yml', 'test_lite_student_vggface2.yml', 'lite'),
    'Tiny student w/o KD': ('train_tiny_student_nokd_vggface2.yml', 'test_tiny_student_nokd_vggface2.yml', 'tiny'),
    'Tiny student': ('distill_tiny_vggface2.yml', 'test_tiny_student_vggface2.yml', 'tiny'),
    'RCAN': ('train_rcan_x8_vggface2.yml', 'test_rcan_x8_vggface2.yml', 'rcan'),
    'SRFBN': ('train_srfbn_x8_vggface2.yml', 'test_srfbn_x8_vggface2.yml', 'srfbn'),
}
# The rows of the paper's Table 1: (PSNR, SSIM, LPIPS) on VGGFace2, 32 -> 256.
PAPER_TABLE1 = {
    'RCAN': (26.59, 0.779, 0.3191),
    'SRFBN': (26.399, 0.761, 0.3944),
    'Teacher': (26.74, 0.771, 0.2413),
    'Student w/o KD': (25.837, 0.750, 0.2746),
    'Student': (26.623, 0.769, 0.2511),
}
# The rows a preset runs, when it does not list its own (`methods`).
TABLE1_METHODS = ('Teacher', 'Student w/o KD', 'Student', 'RCAN', 'SRFBN')
# Table 1's row order: the baselines first, then METHODS' order.
TABLE1_ORDER = ('RCAN', 'SRFBN') + tuple(m for m in METHODS if m not in ('RCAN', 'SRFBN'))
# Preset keys that are levers for short runs, each stated beside the figures it affects (see describe_preset).
PRESETS = {
    'smoke': {
        'size': 64,
        'num_feat': 8,
        'disc_feat': 8,
        'num_atoms': 4,
        'iters': 120,
        'teacher_iters': 180,
        'save_freq': 10000,  # one checkpoint and training state, at the end: the suite keeps disk use small
        'batch': 2,
        'workers': 0,
        'ema_decay': 0,  # too few iterations for an EMA: every row uses the trained weights
        'input_skip': True,
        'lr': 1e-3,
        'gan_weight': 1e-4,
        'rcan': {'num_feat': 8, 'num_group': 1, 'num_block': 1, 'squeeze_factor': 4},
        'srfbn': {'num_feat': 8, 'num_steps': 2, 'num_groups': 1, 'init': 'kaiming'},
        'lite': {'num_feat': 16, 'num_block': 2, 'feat_channels': 8},
        'tiny': {'num_feat': 8, 'num_block': 1, 'feat_channels': 4},
        'methods': TABLE1_METHODS + ('Lite student w/o KD', 'Lite student'),
        'train_range': '100:108',
        'test_range': '0:4',
        'demo_train': 8,
        'demo_test': 4,
        'figure_faces': 2,
    },
    'small': {
        'size': 128,
        'num_feat': 32,
        'disc_feat': 32,
        'num_atoms': 64,
        'iters': 250,
        'teacher_iters': 600,
        'save_freq': 100,
        'batch': 4,
        'workers': 1,
        'ema_decay': 0,
        'input_skip': True,
        'lr': 5e-4,
        'gan_weight': 1e-4,
        'rcan': {'num_feat': 32, 'num_group': 3, 'num_block': 4, 'squeeze_factor': 8},
        'srfbn': {'num_feat': 32, 'num_steps': 4, 'num_groups': 3, 'init': 'kaiming'},
        'lite': {'num_feat': 64, 'num_block': 8, 'feat_channels': 32},
        'tiny': {'num_feat': 32, 'num_block': 4, 'feat_channels': 16},
        'methods': TABLE1_METHODS + ('Student (hints)',) + tuple(m for m in METHODS if m.startswith(('Lite', 'Tiny'))),
        'train_range': '100:',
        'test_range': '0:100',
        'demo_train': 48,
        'demo_test': 8,
        'figure_faces': 4,
    },
    # The distillation ablation (facesr-kd-ablation): one teacher, many short student runs.
    'ablation': {
        'size': 64,
        'num_feat': 16,
        'disc_feat': 16,
        'num_atoms': 32,
        'iters': 200,
        'teacher_iters': 600,
        'save_freq': 10000,
        'batch': 4,
        'workers': 0,
        'ema_decay': 0,
        'input_skip': True,
        'lr': 5e-4,
        'methods': ('Teacher',),
        'train_range': '100:',
        'test_range': '0:100',
        'demo_train': 48,
        'demo_test': 8,
        'figure_faces': 4,
    },
    'paper': {
        'size': 256,
        'num_atoms': 512,
        'methods': tuple(METHODS),
        'train_range': ':',
        'test_range': ':',
        'demo_train': 0,
        'demo_test': 0,
        'figure_faces': 4,
    },
}

# The distillation ablation with a teacher trained 4x longer: a bigger lead for the students to distil.
PRESETS['ablation_strong'] = {**PRESETS['ablation'], 'teacher_iters': 2400}
# ... and with students trained as long as that teacher: is the teacher's lead a matter of budget or of knowledge?
PRESETS['ablation_long'] = {**PRESETS['ablation_strong'], 'iters': 2400}


def describe_preset(name):
    """One sentence naming what a preset changes from the paper-scale recipes (printed beside its figures)."""
    preset = PRESETS[name]
    parts = [f'{preset["size"]}x{preset["size"]} faces from {preset["size"] // 8}x{preset["size"] // 8} (x8)']
    if 'iters' in preset:
        parts.append(
            f'{preset.get("teacher_iters", preset["iters"])} teacher / {preset["iters"]} other iterations at batch '
            f'{preset["batch"]}'
        )
    if 'num_feat' in preset:
        parts.append(f'decoder width {preset["num_feat"]}, K={preset["num_atoms"]}')
    if preset.get('input_skip'):
        parts.append(
            'LEVER: every network adds the bicubic-upsampled input to a zero-initialised residual output '
            '(`input_skip`, off in the paper-scale option files)'
        )
    if 'lr' in preset:
        parts.append(f'LEVER: learning rate {preset["lr"]:g} (paper-scale files: 1e-4)')
    if preset.get('srfbn', {}).get('init') == 'kaiming':
        parts.append(
            'LEVER: SRFBN starts from He-normal weights (official: PyTorch default, whose vanishing '
            'features keep a short run at bicubic)'
        )
    if 'gan_weight' in preset:
        parts.append(
            f'LEVER: adversarial feature-KD weight lambda_adv {preset["gan_weight"]:g} (paper: 1e-2, which collapses '
            'the residual of these short runs to bicubic; see the distillation ablation)'
        )
    return f'Preset `{name}`: ' + '; '.join(parts) + '.'


def options_dir():
    """The shipped option files: ``facesr_kd/options`` inside the installed package (``options/`` of a checkout
    links to it)."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), 'options')


# The model zoo's recipes (options/zoo_*.yml): zoo name -> the option files of its training stages, in order
# (a later stage fine-tunes the one before: ``path: pretrain_network_g`` names that stage's net_g_latest.pth).
ZOO_RECIPES = {
    'lite-x8': ('zoo_lite_x8.yml', 'zoo_lite_x8_ft.yml'),
    'lite-x4': ('zoo_lite_x4.yml', 'zoo_lite_x4_ft.yml'),
}
# Controls, run and measured, never shipped: stage 1 of lite-x8 with clean MATLAB-bicubic LR only (what training
# on realistic degradations costs on the clean FFHQ benchmark, docs/model_zoo.md).
ZOO_CONTROLS = ('zoo_lite_x8_clean.yml',)


def shipped_option_files():
    """Every shipped option file, relative to :func:`options_dir` (``train_*.yml``, ``test/*.yml``...), sorted."""
    root = options_dir()
    found = []
    for folder, _, files in os.walk(root):
        found += [os.path.relpath(os.path.join(folder, f), root) for f in files if f.endswith('.yml')]
    return sorted(found)


def shipped_meta_files():
    """The file lists the shipped option files read (``meta/*.txt``: the zoo's train and test splits)."""
    root = os.path.join(options_dir(), 'meta')
    if not os.path.isdir(root):
        return []
    return sorted(os.path.join('meta', f) for f in os.listdir(root) if f.endswith('.txt'))


def copy_options(dest, overwrite=False):
    """Copy the shipped option files and the ``meta/`` lists they read into ``dest/`` (keeping ``test/``), so
    that ``-opt options/<file>.yml`` works from there with a pip-installed package.

    Args:
        dest (str): Target folder (created).
        overwrite (bool): Replace files that differ; otherwise they are kept (a user's edits are never lost).

    Returns:
        tuple[list[str], list[str]]: The files written and the ones kept because they differ, relative to ``dest``.
    """
    written, kept = [], []
    for rel in shipped_option_files() + shipped_meta_files():
        src, dst = os.path.join(options_dir(), rel), os.path.join(dest, rel)
        with open(src, encoding='utf-8') as f:
            text = f.read()
        if os.path.exists(dst):
            with open(dst, encoding='utf-8') as f:
                same = f.read() == text
            if same:
                continue
            if not overwrite:
                kept.append(rel)
                continue
        write_text(dst, text)
        written.append(rel)
    return written, kept


def load_yaml(path):
    """An option file read safely and within the size and alias bounds of
    :func:`facesr_kd.utils.options.load_option_file`."""
    from facesr_kd.utils.options import load_option_file

    return load_option_file(path)


def write_yaml(opt, path):
    write_text(path, yaml.safe_dump(opt, sort_keys=False))
    return path


def _dataset(opt_ds, data, split, preset, phase):
    data_dir = data[split]
    size = preset['size']
    ds = copy.deepcopy(opt_ds)
    if data.get('name'):
        ds['name'] = f'{data["name"]}_{split}'  # the faces actually used, not the option file's VGGFace2
    ds.update(
        dataroot_gt=os.path.join(data_dir, 'hr'),
        dataroot_lq=os.path.join(data_dir, 'lr_x8'),
        meta_info_file=os.path.join(data_dir, 'meta_info.txt'),
        gt_size=size,
    )
    if 'boxes_file' in ds or ds.get('box_source') != 'template':
        ds.pop('box_source', None)
        ds['boxes_file'] = os.path.join(data_dir, 'boxes.json')
    if phase == 'train' and 'batch' in preset:
        ds.update(batch_size_per_gpu=preset['batch'], num_worker_per_gpu=preset['workers'])
    return ds


def _vgg(opt_net, vgg_file):
    if opt_net.get('type') in ('DFDNetStudent', 'DFDNetTeacher') and opt_net.get('vgg_pretrained', True):
        opt_net['vgg_weights'] = vgg_file


def _networks(opt, kind, preset, vgg_file, dict_path):
    net = opt['network_g']
    net_t = opt.get('network_t')
    if kind in ('teacher', 'student'):
        net['out_size'] = preset['size']
        if 'num_feat' in preset:
            net['num_feat'] = preset['num_feat']
    elif kind in ('lite', 'tiny'):
        net['out_size'] = preset['size']
        net.update(preset.get(kind, {}))
    elif kind in preset:
        net.update(preset[kind])
    if net_t is not None:
        net_t.update(out_size=preset['size'])
        if 'num_feat' in preset:
            net_t['num_feat'] = preset['num_feat']
    for n in (net, net_t):
        if n is not None and n['type'] == 'DFDNetTeacher':
            n.update(out_size=preset['size'], num_atoms=preset['num_atoms'])
            if 'dict_path' in n:
                n['dict_path'] = dict_path
    if 'network_d' in opt and 'disc_feat' in preset:
        opt['network_d']['num_feat'] = preset['disc_feat']
        if net_t is not None:  # the distillation's D sees (adapted) decoder features; an image D keeps 3 channels
            opt['network_d']['in_channels'] = net_t['num_feat']
    if 'network_d_region' in opt and 'disc_feat' in preset and net_t is not None:
        opt['network_d_region'].update(num_feat=preset['disc_feat'], in_channels=net_t['num_feat'])
    if preset.get('input_skip'):
        for n in (net, net_t):
            if n is not None:
                if n['type'] == 'RCAN':
                    n['type'] = 'FaceRCAN'  # BasicSR's RCAN with the optional skip
                n['input_skip'] = True
    _vgg(net, vgg_file)


def _from_teacher(opt):
    """Whether a recipe initialises its student from the teacher (``pretrain_network_g`` names the teacher's run)."""
    path = (opt.get('path') or {}).get('pretrain_network_g')
    if not isinstance(path, str):
        return False
    teacher = load_yaml(os.path.join(options_dir(), METHODS['Teacher'][0]))['name']
    return os.path.normpath(path).split(os.sep)[-3:-2] == [teacher]


def train_name(method):
    """The experiment name of the training stage of ``method``: its option file's stem."""
    return os.path.splitext(METHODS[method][0])[0]


def latest_checkpoint(work_dir, method):
    """Where the training stage of ``method`` leaves its final ``net_g`` checkpoint in ``work_dir``."""
    return os.path.join(work_dir, 'experiments', train_name(method), 'models', 'net_g_latest.pth')


def make_train_options(method, preset, work_dir, data, vgg_file, dict_path, device, train_file=None):
    """The option file of one training stage: the shipped one with the preset's sizes and this run's paths.

    Args:
        method (str): A row of Table 1 (a key of :data:`METHODS`).
        preset (dict): A value of :data:`PRESETS`.
        work_dir (str): Where the run's ``experiments/`` are.
        data (dict): ``train`` and ``test`` prepared-data folders (``hr/``, ``lr_x8/``, ``meta_info.txt``,
            ``boxes.json``), and optionally ``name``, which names the datasets (``<name>_train``...).
        vgg_file (str): VGG19 weights for the encoders and the perceptual loss.
        dict_path (str | None): The teacher's dictionary file.
        device (str): ``'cpu'`` sets ``num_gpu: 0``.
        train_file (str | None): Another shipped recipe of the same method in ``options/`` (e.g.
            ``train_teacher_gan_vggface2.yml``, the teacher with its image GAN term). Default: the Table 1 one.
    """
    default_file, _, kind = METHODS[method]
    train_file = train_file or default_file
    opt = load_yaml(os.path.join(options_dir(), train_file))
    opt['name'] = os.path.splitext(train_file)[0]
    opt['num_gpu'] = 0 if device == 'cpu' else 'auto'
    opt['datasets'] = {
        'train': _dataset(opt['datasets']['train'], data, 'train', preset, 'train'),
        'val': _dataset(opt['datasets']['val'], data, 'test', preset, 'val'),
    }
    _networks(opt, kind, preset, vgg_file, dict_path)
    if 'network_t' in opt:
        opt['path']['pretrain_network_t'] = latest_checkpoint(work_dir, 'Teacher')
    if _from_teacher(opt):
        opt['path']['pretrain_network_g'] = latest_checkpoint(work_dir, 'Teacher')
    if 'ema_decay' in preset:
        opt['train']['ema_decay'] = preset['ema_decay']
        if not preset['ema_decay']:
            if 'network_t' in opt:
                opt['path']['param_key_t'] = 'params'
            if _from_teacher(opt):
                opt['path']['param_key_g'] = 'params'
    percep = opt['train'].get('perceptual_opt')
    if percep is not None:
        percep['weights_path'] = vgg_file
    if 'lr' in preset:
        for key in ('optim_g', 'optim_d'):
            if key in opt['train']:
                opt['train'][key]['lr'] = preset['lr']
    if 'gan_weight' in preset and 'network_t' in opt and 'gan_opt' in opt['train']:
        opt['train']['gan_opt']['loss_weight'] = preset['gan_weight']
    if 'iters' in preset:
        iters = preset.get('teacher_iters', preset['iters']) if kind == 'teacher' else preset['iters']
        distill = opt['train'].get('distill')
        if distill and distill.get('gan_ramp_iters'):
            distill['gan_ramp_iters'] = max(1, iters // 4)
        opt['train']['total_iter'] = iters
        opt['train']['scheduler']['milestones'] = [iters // 2, iters * 3 // 4]
        opt['logger'].update(
            print_freq=max(1, iters // 20), save_checkpoint_freq=min(preset['save_freq'], iters), use_tb_logger=False
        )
        opt['val']['val_freq'] = iters + 1  # BasicSR validates after the last iteration anyway: only then, once
        opt.pop('dist_params', None)
    return opt


def make_test_options(method, preset, work_dir, data, vgg_file, device, lpips_random):
    """The test option file of one row: the shipped one, reading the checkpoint its training stage wrote.

    Arguments as :func:`make_train_options`; ``lpips_random`` runs LPIPS on random backbones (labelled so).
    """
    _, test_file, kind = METHODS[method]
    opt = load_yaml(os.path.join(options_dir(), 'test', test_file))
    opt['num_gpu'] = 0 if device == 'cpu' else 'auto'
    opt['datasets']['test_1'] = _dataset(opt['datasets']['test_1'], data, 'test', preset, 'test')
    _networks(opt, kind, preset, vgg_file, None)
    opt['path']['pretrain_network_g'] = latest_checkpoint(work_dir, method)
    if preset.get('ema_decay', 1) == 0:
        opt['path']['param_key_g'] = 'params'
    for metric in opt['val']['metrics'].values():
        if metric['type'] == 'calculate_lpips' and lpips_random:
            metric['random_backbone'] = True
    return opt


def parsed_options(opt, root):
    """What ``basicsr.utils.options.parse_options`` adds to a training option dict, for in-process use.

    Lets tests and benchmarks build a model (``basicsr.models.build_model``) without the command line. The
    experiment folders are made under ``root``.
    """
    import torch

    opt = copy.deepcopy(opt)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    if opt.get('num_gpu') == 'auto':  # as BasicSR's parse_options resolves it
        opt['num_gpu'] = torch.cuda.device_count()
    exp = os.path.join(str(root), 'experiments', opt['name'])
    opt['path'].update(
        experiments_root=exp,
        models=os.path.join(exp, 'models'),
        log=exp,
        training_states=os.path.join(exp, 'training_states'),
        visualization=os.path.join(exp, 'visualization'),
    )
    for folder in (opt['path']['models'], opt['path']['training_states']):
        os.makedirs(folder, exist_ok=True)
    for phase, ds in opt['datasets'].items():
        ds.update(phase=phase.split('_')[0], scale=opt['scale'])
    return opt
