"""Validation of BasicSR option files, run right after they are parsed and before any work starts.

:func:`check_options` resolves every ``type:`` in its registry, checks the keyword arguments of networks,
losses and metrics against their signatures, checks that every input path exists, and catches misspelt
section keys. :func:`install_option_check` hooks it into BasicSR's ``parse_options`` so that BasicSR's own
entry points and ours validate alike.
"""

import difflib
import inspect
import os
import re

# YAML 1.1 (PyYAML, BasicSR's loader) reads a float without a dot, like 1e-3, as a string.
_FLOAT_AS_STRING = re.compile(r'^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$')

TOP_KEYS = {
    'name',
    'model_type',
    'scale',
    'num_gpu',
    'manual_seed',
    'datasets',
    'path',
    'train',
    'val',
    'logger',
    'dist_params',
    'find_unused_parameters',
    'dist',
    'rank',
    'world_size',
    'auto_resume',
    'is_train',
    'root_path',
    'gt_size',
    'queue_size',
    'high_order_degradation',
    'l1_gt_usm',
    'percep_gt_usm',
    'gan_gt_usm',
}
TRAIN_KEYS = {
    'ema_decay',
    'optim_g',
    'optim_d',
    'scheduler',
    'total_iter',
    'warmup_iter',
    'net_d_iters',
    'net_d_init_iters',
    'use_grad_clip',
    'grad_clip',
    'save_teacher',
    'distill',
}
VAL_KEYS = {'val_freq', 'save_img', 'metrics', 'pbar', 'suffix', 'use_chop', 'max_minibatch', 'selfensemble_testing'}
LOGGER_KEYS = {'print_freq', 'save_checkpoint_freq', 'use_tb_logger', 'wandb'}
PATH_KEYS_FIXED = {
    'resume_state',
    'experiments_root',
    'models',
    'training_states',
    'log',
    'visualization',
    'results_root',
}
DATASET_KEYS = {
    'name',
    'type',
    'phase',
    'scale',
    'io_backend',
    'dataroot_gt',
    'dataroot_lq',
    'meta_info_file',
    'filename_tmpl',
    'gt_size',
    'use_hflip',
    'use_flip',
    'use_rot',
    'mean',
    'std',
    'color',
    'num_worker_per_gpu',
    'batch_size_per_gpu',
    'dataset_enlarge_ratio',
    'prefetch_mode',
    'pin_memory',
    'persistent_workers',
}
PATH_KEYS_NETWORK = {
    'pretrain_network_g',
    'pretrain_network_d',
    'pretrain_network_t',
    'pretrain_network_d_region',
    'ignore_resume_networks',
}
SCHEDULERS = {'MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR'}


class OptionError(ValueError):
    """An option file that cannot run. The message names the file, the key and what to do."""


def _fail(opt_path, key, problem):
    raise OptionError(f'{opt_path}: `{key}`: {problem}')


def _misspelt(opt_path, section, keys, known, strict):
    for key in keys:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        if close:
            _fail(opt_path, f'{section}{key}', f'unknown key; did you mean `{close[0]}`?')
        if strict:
            _fail(opt_path, f'{section}{key}', f'unknown key; known keys are {sorted(known)}.')


def _check_kwargs(opt_path, key, target, kwargs, ignore=()):
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    accepted = set(params) - {'self'}
    for name in kwargs:
        if name in ignore or name in accepted:
            continue
        close = difflib.get_close_matches(name, sorted(accepted), n=1, cutoff=0.6)
        hint = f'did you mean `{close[0]}`?' if close else f'it takes {sorted(accepted - set(ignore))}.'
        _fail(opt_path, f'{key}.{name}', f'{getattr(target, "__name__", target)} has no argument `{name}`; {hint}')


def _resolve(opt_path, key, registry, type_name):
    if type_name is None:
        _fail(opt_path, f'{key}.type', f'missing; give one of the registered {registry._name} names.')
    if type_name not in registry:
        close = difflib.get_close_matches(str(type_name), sorted(name for name, _ in registry), n=1, cutoff=0.6)
        hint = f'did you mean `{close[0]}`?' if close else 'is the package that registers it imported?'
        _fail(opt_path, f'{key}.type', f"`{type_name}` is not in BasicSR's {registry._name} registry; {hint}")
    return registry.get(type_name)


def _check_path(opt_path, key, value, kind='exist'):
    if value is None:
        return
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, str) and not os.path.exists(os.path.expanduser(v)):
            _fail(
                opt_path,
                key,
                f'{v} does not exist. Prepare it first (see scripts/prepare_vggface2.py) or fix '
                'the path in the option file.',
            )


def _check_numbers(opt_path, value, key=''):
    if isinstance(value, dict):
        for k, v in value.items():
            _check_numbers(opt_path, v, f'{key}.{k}' if key else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_numbers(opt_path, v, f'{key}[{i}]')
    elif isinstance(value, str) and _FLOAT_AS_STRING.match(value.strip()):
        _fail(
            opt_path,
            key,
            f"'{value}' was read as a string, not a number (YAML needs a dot: write !!float {value} or "
            f'{float(value)!r}; on the command line --force_yml takes {float(value)!r}).',
        )


def check_options(opt, opt_path='<options>', check_paths=True):
    """Validate a parsed BasicSR option dict.

    Args:
        opt (dict): The options as ``basicsr.utils.options.parse_options`` returns them.
        opt_path (str): The option file, named in every error.
        check_paths (bool): Also check that every dataset, pretrained-network and resume path exists (off:
            check a shipped recipe before its data are prepared).

    Raises:
        OptionError: On the first problem, naming the file and the key.
    """
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    for key in ('name', 'model_type', 'datasets'):
        if key not in opt:
            _fail(opt_path, key, 'required key is missing.')
    _misspelt(opt_path, '', [k for k in opt if not k.startswith('network_')], TOP_KEYS, strict=False)
    _check_numbers(opt_path, opt)
    _resolve(opt_path, 'model_type', MODEL_REGISTRY, opt['model_type'])

    for key, net_opt in opt.items():
        if key.startswith('network_'):
            if not isinstance(net_opt, dict):
                _fail(opt_path, key, 'must be a mapping with a `type`.')
            arch = _resolve(opt_path, key, ARCH_REGISTRY, net_opt.get('type'))
            _check_kwargs(opt_path, key, arch, {k: v for k, v in net_opt.items() if k != 'type'})

    for phase, ds_opt in opt['datasets'].items():
        key = f'datasets.{phase}'
        if phase != 'train' and not phase.startswith(('val', 'test')):
            _fail(opt_path, key, 'dataset phases are `train`, `val*` or `test*`.')
        dataset_cls = _resolve(opt_path, key, DATASET_REGISTRY, ds_opt.get('type'))
        known = DATASET_KEYS | set(getattr(dataset_cls, 'OPTION_KEYS', ()))
        _misspelt(opt_path, f'{key}.', ds_opt, known, strict=hasattr(dataset_cls, 'OPTION_KEYS'))
        backend = (ds_opt.get('io_backend') or {}).get('type', 'disk')
        for k, v in ds_opt.items():
            if k.startswith('dataroot_') or k.endswith(('_file', '_path')):
                if backend == 'lmdb' and k.startswith('dataroot_') and isinstance(v, str) and not v.endswith('.lmdb'):
                    _fail(opt_path, f'{key}.{k}', f'an lmdb io_backend needs a folder ending in .lmdb, got {v}.')
                if check_paths:
                    _check_path(opt_path, f'{key}.{k}', v)

    path_opt = opt.get('path') or {}
    for k, v in path_opt.items():
        if k.startswith(('pretrain_network_', 'resume_state')):
            if check_paths:
                _check_path(opt_path, f'path.{k}', v)
        elif not (k in PATH_KEYS_FIXED or k.startswith(('param_key_', 'strict_load_'))):
            _misspelt(opt_path, 'path.', [k], PATH_KEYS_FIXED | PATH_KEYS_NETWORK, strict=False)

    train_opt = opt.get('train')
    if opt.get('is_train', True) and train_opt is not None:
        for k, v in train_opt.items():
            if k.endswith('_opt') and isinstance(v, dict):
                loss = _resolve(opt_path, f'train.{k}', LOSS_REGISTRY, v.get('type'))
                _check_kwargs(opt_path, f'train.{k}', loss, {kk: vv for kk, vv in v.items() if kk != 'type'})
            elif not k.endswith('_opt'):
                _misspelt(opt_path, 'train.', [k], TRAIN_KEYS, strict=False)
        model_check = getattr(MODEL_REGISTRY.get(opt['model_type']), 'check_train_options', None)
        if model_check is not None:
            try:
                model_check(opt)
            except ValueError as err:
                _fail(opt_path, 'train', str(err))
        scheduler = (train_opt.get('scheduler') or {}).get('type')
        if scheduler is not None and scheduler not in SCHEDULERS:
            _fail(opt_path, 'train.scheduler.type', f'`{scheduler}` is not one of {sorted(SCHEDULERS)}.')

    val_opt = opt.get('val')
    if val_opt is not None:
        _misspelt(opt_path, 'val.', val_opt, VAL_KEYS, strict=False)
        for name, m_opt in (val_opt.get('metrics') or {}).items():
            metric = _resolve(opt_path, f'val.metrics.{name}', METRIC_REGISTRY, m_opt.get('type'))
            _check_kwargs(
                opt_path,
                f'val.metrics.{name}',
                metric,
                {k: v for k, v in m_opt.items() if k not in ('type', 'better')},
                ignore=('img', 'img2'),
            )
    if opt.get('logger') is not None:
        _misspelt(opt_path, 'logger.', opt['logger'], LOGGER_KEYS, strict=False)


def normalize_options(opt):
    """Settings every facesr_kd option file gets, whatever entry point parsed it.

    The frozen teacher (``network_t``) is never saved by the distillation, so resuming must not look for it
    in the experiment: it is added to ``path: ignore_resume_networks``.
    """
    if 'network_t' in opt:
        path_opt = opt.setdefault('path', {})
        ignored = list(path_opt.get('ignore_resume_networks') or [])
        if 'network_t' not in ignored and not (opt.get('train') or {}).get('save_teacher', False):
            path_opt['ignore_resume_networks'] = ignored + ['network_t']
    return opt


def install_option_check():
    """Make BasicSR's ``parse_options`` validate every option file it reads (idempotent)."""
    import basicsr.test
    import basicsr.train
    import basicsr.utils.options as basicsr_options

    if getattr(basicsr_options.parse_options, 'checks_options', False):
        return
    original = basicsr_options.parse_options

    def parse_options(root_path, is_train=True):
        opt, args = original(root_path, is_train=is_train)
        check_options(normalize_options(opt), args.opt)
        return opt, args

    parse_options.checks_options = True
    for module in (basicsr_options, basicsr.train, basicsr.test):
        module.parse_options = parse_options
