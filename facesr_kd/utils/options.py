"""Validation of BasicSR option files, run right after they are parsed and before any work starts.

:func:`check_options` acts only on option files that use facesr_kd: a ``model_type``, network, dataset, loss
or metric whose registered object comes from this package (:func:`uses_facesr_kd`). Every other file is left
alone, so that installing the startup hook never refuses a file that stock BasicSR (or GFPGAN, Real-ESRGAN...)
would run. In our files it resolves every ``type:`` as BasicSR's registries do, checks the keyword arguments of
networks, losses, metrics and optimisers against their signatures, checks that every input path exists, the
numbers a run needs (``total_iter``, ``batch_size_per_gpu``, save and print frequencies, ``num_gpu`` against
the machine), the teacher checkpoint and the dictionary file, and catches misspelt keys. Sections read by stock
BasicSR code (a stock dataset's keys, the top-level and ``train:`` keys of a stock model) are not checked for
misspellings: stock code accepts keys we do not know.

:func:`install_option_check` hooks it into BasicSR's ``parse_options`` so that BasicSR's own entry points and
ours validate alike.
"""

import contextlib
import difflib
import inspect
import io
import os
import re
import sys

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
# The input paths of a stock dataset that are checked in our files; other keys are the dataset's business.
STOCK_DATASET_PATHS = ('dataroot_gt', 'dataroot_lq', 'meta_info_file')
PATH_KEYS_NETWORK = {
    'pretrain_network_g',
    'pretrain_network_d',
    'pretrain_network_t',
    'pretrain_network_d_region',
    'ignore_resume_networks',
}
SCHEDULERS = {'MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR'}
# Optimiser arguments people write for other frameworks.
OPTIM_ALIASES = {'learning_rate': 'lr', 'learningrate': 'lr', 'epsilon': 'eps', 'beta1': 'betas', 'beta2': 'betas'}
PREPARE_HINT = 'Prepare it first (see `facesr-kd-prepare --help`) or fix the path in the option file.'


class OptionError(ValueError):
    """An option file that cannot run. The message names the file, the key and what to do."""


def _fail(opt_path, key, problem):
    raise OptionError(f'{opt_path}: `{key}`: {problem}')


# --- Bounds on the option file itself, checked before it is parsed (issue 25). ---
# These apply to every option file the hook sees, ours or not: the shipped files are under 10 KB and hold about
# 200 YAML nodes, so no real option file comes near them, while past them BasicSR's parse, option dump and log
# cost memory and time without bound (a 50 MB file: 72 s, 3.7 GB, a 56 MB log; 1.7 KB of nested aliases: 10^7
# leaves, an 80 MB log).
MAX_OPTION_FILE_BYTES = 1 << 20  # 1 MiB
# Nodes that YAML aliases (``*name``) may add to a file once expanded; plain ``<<: *base`` merges add a few dozen.
MAX_ALIAS_NODES = 10_000


def _yaml_loader():
    import yaml

    return getattr(yaml, 'CSafeLoader', yaml.SafeLoader)  # libyaml also bounds the nesting depth


def check_yaml_text(text, source='<options>'):
    """Refuse YAML whose aliases expand it past :data:`MAX_ALIAS_NODES` extra nodes, or refer to themselves.

    The text is composed (a node graph in which an alias is the node it names, so nothing is expanded) and the
    nodes of the expanded document are counted on that graph.

    Args:
        text (str): The YAML text.
        source (str): Named in the message.

    Raises:
        OptionError: Aliases that expand too far or recursively, or text that is not valid YAML.
    """
    import yaml

    if '*' not in text:  # no alias can be there: nothing to expand
        return
    try:
        root = yaml.compose(text, Loader=_yaml_loader())
    except yaml.YAMLError as err:
        raise OptionError(f'{source}: not a valid YAML option file: {err}') from None
    if root is None:
        return
    sizes = {}  # id(node) -> nodes of its expansion
    on_path = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            children = _yaml_children(node)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise OptionError(
                f'{source}: a YAML alias (*name) refers to the anchor (&name) that contains it: the file expands '
                'without end; write the values out instead of aliasing them.'
            )
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _yaml_children(node) if id(c) not in sizes)
    added = sizes[id(root)] - len(sizes)
    if added > MAX_ALIAS_NODES:
        raise OptionError(
            f'{source}: refused: its YAML aliases (*name) expand {len(sizes)} nodes to {sizes[id(root)]} '
            f'("billion laughs"); option files may add at most {MAX_ALIAS_NODES} nodes through aliases: write '
            'the values out, or alias fewer of them.'
        )


def _yaml_children(node):
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def read_option_text(path):
    """The text of an option file, refused above :data:`MAX_OPTION_FILE_BYTES` (before it is read) or when its
    YAML aliases expand too far (:func:`check_yaml_text`).

    Raises:
        OSError: The file cannot be read.
        OptionError: Too large, an alias bomb, or not UTF-8 text.
    """
    size = os.path.getsize(path)
    if size > MAX_OPTION_FILE_BYTES:
        raise OptionError(
            f'{path}: refused: {size} bytes; option files may be at most {MAX_OPTION_FILE_BYTES} bytes (1 MiB, the '
            'shipped ones are under 10 KB). Is it an option file?'
        )
    try:
        with open(path, encoding='utf-8') as f:
            text = f.read(MAX_OPTION_FILE_BYTES + 1)
    except UnicodeDecodeError as err:
        raise OptionError(f'{path}: not a UTF-8 text file ({err.reason} at byte {err.start})') from None
    if len(text.encode('utf-8')) > MAX_OPTION_FILE_BYTES:  # it grew after the size was read
        raise OptionError(f'{path}: refused: over {MAX_OPTION_FILE_BYTES} bytes (1 MiB)')
    check_yaml_text(text, path)
    return text


def load_option_yaml(text, source='<options>'):
    """Parse option-file text with the safe loader, after :func:`check_yaml_text` (mappings are plain dicts).

    Raises:
        OptionError: An alias bomb, or text that is not valid YAML or builds Python objects.
    """
    import yaml

    check_yaml_text(text, source)
    with yaml_errors(source):
        return yaml.load(text, Loader=_yaml_loader())


@contextlib.contextmanager
def yaml_errors(source):
    """Turn YAML errors raised inside the block into one-line ``OptionError``s naming ``source``."""
    import yaml

    try:
        yield
    except yaml.constructor.ConstructorError as err:
        raise OptionError(
            f"{source}: refused: {err}. Option files are read with YAML's safe loader: tags that build Python "
            'objects (such as !!python/...) are not allowed; write plain values.'
        ) from None
    except yaml.YAMLError as err:
        raise OptionError(f'{source}: not a valid YAML option file: {err}') from None


def load_option_file(path):
    """:func:`load_option_yaml` of :func:`read_option_text`: an option file read within the bounds above."""
    return load_option_yaml(read_option_text(path), path)


def check_name(opt_path, name, key='name'):
    """Refuse an experiment ``name`` that is not one plain path component.

    BasicSR makes ``experiments/<name>``, ``results/<name>`` and ``tb_logger/<name>`` and first renames an
    existing folder of that path to ``<name>_archived_<time>``: ``name: ../../dir`` or an absolute path would
    rename and write folders outside ``experiments/``. This is refused for every option file, also those that
    do not use facesr_kd (stock BasicSR would run them), because what it does is never what was meant.

    Raises:
        OptionError: Not a string, empty, ``.``/``..``, or holding ``/``, ``\\``, a NUL or a line break.
    """
    if not isinstance(name, str):
        _fail(opt_path, key, f'is {name!r} ({type(name).__name__}); the experiment name must be a string.')
    bad = [c for c in ('/', '\\', '\0', '\n', '\r') if c in name]
    if not name.strip() or name in ('.', '..') or bad or os.path.isabs(name):
        _fail(
            opt_path,
            key,
            f'is {name!r}; the experiment name must be one folder name (no /, \\, .., NUL or absolute path): '
            'BasicSR makes experiments/<name> and renames an existing folder of that path.',
        )


def _mapping(opt_path, key, value, what='a mapping'):
    if not isinstance(value, dict):
        _fail(opt_path, key, f'is {value!r} ({type(value).__name__}); it must be {what}.')


def check_basicsr_structure(opt, opt_path='<options>'):
    """What BasicSR's ``parse_options`` needs of the file as read, checked before it runs, for any file.

    Only what stock BasicSR's parse would stop on with a traceback is refused here, plus a ``name`` that is not
    one folder name (:func:`check_name`); anything else is left to :func:`check_options` (our files),
    :func:`check_pipeline_sections` or BasicSR.

    Raises:
        OptionError: Naming the file and the key.
    """
    if not isinstance(opt, dict):
        raise OptionError(f'{opt_path}: holds a {type(opt).__name__}, not a mapping of options.')
    if 'name' not in opt:
        _fail(opt_path, 'name', 'required key is missing.')
    check_name(opt_path, opt['name'])
    if 'datasets' not in opt:
        _fail(opt_path, 'datasets', 'required key is missing.')
    _mapping(opt_path, 'datasets', opt['datasets'], 'a mapping of phases (`train`, `val*`, `test*`) to datasets')
    for phase, ds_opt in opt['datasets'].items():
        _mapping(opt_path, f'datasets.{phase}', ds_opt, 'a mapping with a `type`')
        for k in ('dataroot_gt', 'dataroot_lq'):
            if ds_opt.get(k) is not None and not isinstance(ds_opt[k], str):
                _fail(opt_path, f'datasets.{phase}.{k}', f'is {ds_opt[k]!r}; it must be a folder path (a string).')
    if 'path' not in opt:
        _fail(opt_path, 'path', 'required key is missing (BasicSR reads it); add `path: {}`.')
    _mapping(opt_path, 'path', opt['path'])
    for k, v in opt['path'].items():
        if v is not None and ('resume_state' in k or 'pretrain_network' in k) and not isinstance(v, str):
            _fail(opt_path, f'path.{k}', f'is {v!r}; it must be a file path (a string) or ~.')
    if 'num_gpu' not in opt:
        _fail(opt_path, 'num_gpu', 'required key is missing; give a number of GPUs (0: the CPU) or auto.')
    num_gpu = opt['num_gpu']
    if num_gpu != 'auto' and (isinstance(num_gpu, bool) or not isinstance(num_gpu, int) or num_gpu < 0):
        _fail(opt_path, 'num_gpu', f'is {num_gpu!r}; give a number of GPUs (0: the CPU) or auto.')
    seed = opt.get('manual_seed')
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        _fail(opt_path, 'manual_seed', f'is {seed!r}; it must be an integer (or ~ for a random seed).')


def check_pipeline_sections(opt, opt_path='<options>', is_train=True):
    """The sections BasicSR's ``train_pipeline`` reads right after it makes ``experiments/<name>/``, for any file.

    Run after :func:`check_options`, whose messages about our files say more.

    Raises:
        OptionError: ``logger`` missing (training) or not a mapping, ``train`` or ``val`` not a mapping.
    """
    if is_train:
        if 'logger' not in opt:
            _fail(opt_path, 'logger', 'required key is missing for training; add `logger: {print_freq: 100}`.')
        _mapping(opt_path, 'logger', opt['logger'])
        if 'train' in opt:
            _mapping(opt_path, 'train', opt['train'])
    if opt.get('val') is not None:
        _mapping(opt_path, 'val', opt['val'])


# --- Types of the settings of our files (issue 25): nonsense is refused by name before any folder is made. ---


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


_KINDS = {
    'int': (_is_int, 'an integer'),
    'number': (_is_number, 'a number'),
    'bool': (lambda v: isinstance(v, bool), 'true or false'),
    'str': (lambda v: isinstance(v, str), 'a string'),
    'str?': (lambda v: v is None or isinstance(v, str), 'a string or ~'),
    'ints': (lambda v: isinstance(v, (list, tuple)) and all(_is_int(x) for x in v), 'a list of integers'),
    'numbers': (lambda v: isinstance(v, (list, tuple)) and all(_is_number(x) for x in v), 'a list of numbers'),
    'map': (lambda v: isinstance(v, dict), 'a mapping'),
    'map?': (lambda v: v is None or isinstance(v, dict), 'a mapping or ~'),
}
# Settings whose type BasicSR or our code relies on (section -> key -> kind); absent keys are not checked.
SETTING_KINDS = {
    '': {'model_type': 'str', 'scale': 'int', 'train': 'map?', 'val': 'map?', 'logger': 'map?', 'path': 'map'},
    'dataset': {
        'name': 'str',
        'type': 'str',
        'io_backend': 'map',
        'meta_info_file': 'str?',
        'filename_tmpl': 'str',
        'gt_size': 'int',
        'use_hflip': 'bool',
        'use_flip': 'bool',
        'use_rot': 'bool',
        'mean': 'numbers',
        'std': 'numbers',
        'num_worker_per_gpu': 'int',
        'batch_size_per_gpu': 'int',
        'dataset_enlarge_ratio': 'int',
        'prefetch_mode': 'str?',
        'pin_memory': 'bool',
        'persistent_workers': 'bool',
    },
    'train': {
        'ema_decay': 'number',
        'total_iter': 'number',  # BasicSR takes int() of these: !!float 1e5 runs
        'warmup_iter': 'number',
        'net_d_iters': 'number',
        'net_d_init_iters': 'number',
        'use_grad_clip': 'bool',
        'grad_clip': 'number',
        'save_teacher': 'bool',
        'distill': 'map?',
        'scheduler': 'map',
    },
    'scheduler': {
        'type': 'str',
        'milestones': 'ints',
        'gamma': 'number',
        'restarts': 'ints',
        'restart_weights': 'numbers',
        'periods': 'ints',
        'eta_min': 'number',
    },
    'val': {'val_freq': 'number', 'save_img': 'bool', 'metrics': 'map?', 'pbar': 'bool', 'suffix': 'str?'},
    'logger': {'print_freq': 'number', 'save_checkpoint_freq': 'number', 'use_tb_logger': 'bool', 'wandb': 'map?'},
}


def _check_kinds(opt_path, section, values, kinds):
    for key, kind in kinds.items():
        if key in values:
            ok, what = _KINDS[kind]
            if not ok(values[key]):
                v = values[key]
                _fail(opt_path, f'{section}{key}', f'is {v!r} ({type(v).__name__}); it must be {what}.')


def _check_arg_types(opt_path, key, target, kwargs, ours):
    """Keyword arguments against the types of their defaults: a string where a number is due, and so on.

    A bool default takes a bool, a number default a number (an integer one an integer when ``ours``: our
    networks take widths and sizes), a string default a string, a tuple or list default a list; a None default
    anything.
    """
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return
    for name, value in kwargs.items():
        param = params.get(name)
        if param is None or param.default is inspect.Parameter.empty or param.default is None:
            continue
        default = param.default
        if isinstance(default, bool):
            kind = 'bool'
        elif isinstance(default, int) and ours:
            kind = 'int'
        elif isinstance(default, (int, float)):
            kind = 'number'
        elif isinstance(default, str):
            kind = 'str'
        elif isinstance(default, (tuple, list)):
            ok = isinstance(value, (list, tuple))
            if not ok:
                _fail(opt_path, f'{key}.{name}', f'is {value!r} ({type(value).__name__}); it must be a list.')
            continue
        else:
            continue
        ok, what = _KINDS[kind]
        if not ok(value):
            _fail(opt_path, f'{key}.{name}', f'is {value!r} ({type(value).__name__}); it must be {what}.')


def check_setting_types(opt, opt_path='<options>'):
    """The sections and typed settings of an option file of ours (:data:`SETTING_KINDS`), before anything else.

    Raises:
        OptionError: The first setting of the wrong type, naming the file, the key and the type it takes.
    """
    _check_kinds(opt_path, '', opt, SETTING_KINDS[''])
    for phase, ds_opt in opt['datasets'].items():
        _mapping(opt_path, f'datasets.{phase}', ds_opt, 'a mapping with a `type`')
        _check_kinds(opt_path, f'datasets.{phase}.', ds_opt, SETTING_KINDS['dataset'])
    for key, net_opt in opt.items():
        if key.startswith('network_'):
            _mapping(opt_path, key, net_opt, 'a mapping with a `type`')
    train_opt = opt.get('train') or {}
    _check_kinds(opt_path, 'train.', train_opt, SETTING_KINDS['train'])
    for k, v in train_opt.items():
        if k.endswith('_opt') or k.startswith('optim_'):
            _mapping(opt_path, f'train.{k}', v, 'a mapping with a `type`')
    if isinstance(train_opt.get('scheduler'), dict):
        _check_kinds(opt_path, 'train.scheduler.', train_opt['scheduler'], SETTING_KINDS['scheduler'])
    val_opt = opt.get('val') or {}
    _check_kinds(opt_path, 'val.', val_opt, SETTING_KINDS['val'])
    for name, m_opt in (val_opt.get('metrics') or {}).items():
        _mapping(opt_path, f'val.metrics.{name}', m_opt, 'a mapping with a `type`')
    _check_kinds(opt_path, 'logger.', opt.get('logger') or {}, SETTING_KINDS['logger'])
    for k, v in (opt.get('path') or {}).items():
        if k.startswith('strict_load_') and not isinstance(v, bool):
            _fail(opt_path, f'path.{k}', f'is {v!r}; it must be true or false.')
        if k.startswith('param_key_') and not isinstance(v, str):
            _fail(opt_path, f'path.{k}', f'is {v!r}; it must be a key such as params or params_ema.')


def lookup(registry, name):
    """The object ``registry.get(name)`` returns, or None where it raises.

    BasicSR's own ``get`` is called, so names resolve exactly as BasicSR resolves them, including the
    fallback of BasicSR versions whose ``get(name, suffix='basicsr')`` also tries ``name + '_basicsr'``
    (e.g. ``RealESRGANModel``); the message that fallback prints is swallowed.
    """
    if not isinstance(name, str):
        return None
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            return registry.get(name)
        except KeyError:
            return None


def is_ours(obj):
    """Whether a registered object (class or function) is defined in facesr_kd."""
    module = getattr(obj, '__module__', None) or ''
    return module == 'facesr_kd' or module.startswith('facesr_kd.')


def _registries():
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    return ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY


def _typed_entries(opt):
    """``(registry kind, type name)`` of every ``type:`` BasicSR resolves in an option dict."""
    yield 'model', opt.get('model_type')
    for key, value in opt.items():
        if key.startswith('network_') and isinstance(value, dict):
            yield 'arch', value.get('type')
    datasets = opt.get('datasets')
    for ds_opt in (datasets or {}).values() if isinstance(datasets, dict) else ():
        if isinstance(ds_opt, dict):
            yield 'dataset', ds_opt.get('type')
    train_opt = opt.get('train')
    for key, value in train_opt.items() if isinstance(train_opt, dict) else ():
        if key.endswith('_opt') and isinstance(value, dict):
            yield 'loss', value.get('type')
    val_opt = opt.get('val')
    metrics = val_opt.get('metrics') if isinstance(val_opt, dict) else None
    for m_opt in metrics.values() if isinstance(metrics, dict) else ():
        if isinstance(m_opt, dict):
            yield 'metric', m_opt.get('type')


def uses_facesr_kd(opt):
    """Whether an option dict uses any of facesr_kd's registered models, networks, datasets, losses or metrics."""
    arch, dataset, loss, metric, model = _registries()
    registries = {'arch': arch, 'dataset': dataset, 'loss': loss, 'metric': metric, 'model': model}
    if not isinstance(opt, dict):
        return False
    return any(is_ours(lookup(registries[kind], name)) for kind, name in _typed_entries(opt))


def _misspelt(opt_path, section, keys, known, strict):
    for key in keys:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.75)
        if close:
            _fail(opt_path, f'{section}{key}', f'unknown key; did you mean `{close[0]}`?')
        if strict:
            _fail(opt_path, f'{section}{key}', f'unknown key; known keys are {sorted(known)}.')


def _check_kwargs(opt_path, key, target, kwargs, ignore=(), aliases=None):
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
        close = [aliases[name]] if name in (aliases or {}) else []
        close = close or difflib.get_close_matches(name, sorted(accepted), n=1, cutoff=0.6)
        hint = f'did you mean `{close[0]}`?' if close else f'it takes {sorted(accepted - set(ignore))}.'
        _fail(opt_path, f'{key}.{name}', f'{getattr(target, "__name__", target)} has no argument `{name}`; {hint}')


def _resolve(opt_path, key, registry, type_name):
    if type_name is None:
        _fail(opt_path, f'{key}.type', f'missing; give one of the registered {registry._name} names.')
    obj = lookup(registry, type_name)
    if obj is None:
        close = difflib.get_close_matches(str(type_name), sorted(name for name, _ in registry), n=1, cutoff=0.6)
        hint = f'did you mean `{close[0]}`?' if close else 'is the package that registers it imported?'
        _fail(opt_path, f'{key}.type', f"`{type_name}` is not in BasicSR's {registry._name} registry; {hint}")
    return obj


def _check_path(opt_path, key, value):
    if value is None:
        return
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if isinstance(v, str) and not os.path.exists(os.path.expanduser(v)):
            _fail(opt_path, key, f'{v} does not exist. {PREPARE_HINT}')


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
            f'{float(value)!r}).',
        )


def _positive(opt_path, key, value, what):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        _fail(opt_path, key, f'is {value!r}; {what}')


def _default(target, name, fallback=None):
    try:
        param = inspect.signature(target).parameters.get(name)
    except (TypeError, ValueError):
        return fallback
    return fallback if param is None or param.default is inspect.Parameter.empty else param.default


def _read_lazily(path):
    """A ``torch.save`` file, memory-mapped (tensor data is not read) and without running code; None if unreadable."""
    from facesr_kd.utils.checkpoint import CheckpointError, load_file

    try:
        return load_file(path, mmap=True)
    except (CheckpointError, OSError):  # a foreign file: the model's own loading reports it
        return None


def _check_optimizer(opt_path, key, optim_opt, model_cls):
    import torch

    if not isinstance(optim_opt, dict):
        _fail(opt_path, key, 'must be a mapping with a `type` and an `lr`.')
    type_ = optim_opt.get('type')
    cls = getattr(torch.optim, type_, None) if isinstance(type_, str) else None
    if not (inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer)):
        known = sorted(
            n
            for n, c in vars(torch.optim).items()
            if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer
        )
        close = difflib.get_close_matches(str(type_), known, n=1, cutoff=0.6)
        _fail(
            opt_path,
            f'{key}.type',
            f'`{type_}` is not a torch.optim optimiser; '
            + (f'did you mean `{close[0]}`?' if close else f'use one of {known}.'),
        )
    kwargs = {k: v for k, v in optim_opt.items() if k != 'type'}
    _check_kwargs(opt_path, key, cls, kwargs, ignore=('params',), aliases=OPTIM_ALIASES)
    _check_arg_types(opt_path, key, cls, kwargs, ours=False)
    if 'lr' not in kwargs:
        _fail(
            opt_path, f'{key}.lr', 'missing: BasicSR hands the learning rate to the optimiser; add `lr: !!float 1e-4`.'
        )
    get_optimizer = getattr(model_cls, 'get_optimizer', None)
    if get_optimizer is None:
        return
    # The model's own get_optimizer, on one dummy parameter: what it refuses now, it would refuse in setup.
    lr = kwargs.pop('lr')
    try:
        get_optimizer(None, type_, [torch.zeros(1, requires_grad=True)], lr, **kwargs)
    except NotImplementedError as err:
        _fail(
            opt_path,
            f'{key}.type',
            f'{model_cls.__name__}.get_optimizer of this BasicSR refuses `{type_}` ({err}); use one it supports, '
            'e.g. Adam.',
        )
    except ValueError as err:
        _fail(opt_path, key, f'{type_} refuses these settings: {err}')
    except Exception:  # a get_optimizer of another signature, or one that needs a real model: checked at build
        return


def _check_teacher(opt_path, opt, arch_cls):
    path = (opt.get('path') or {}).get('pretrain_network_t')
    net_opt = opt.get('network_t')
    if not isinstance(path, str) or not isinstance(net_opt, dict) or not os.path.isfile(os.path.expanduser(path)):
        return
    ckpt = _read_lazily(os.path.expanduser(path))
    if not isinstance(ckpt, dict):
        return
    want = net_opt.get('type')
    arch = ckpt.get('arch') if isinstance(ckpt.get('arch'), dict) else None
    if arch is not None and arch.get('type') != want:
        _fail(
            opt_path,
            'path.pretrain_network_t',
            f"{path} holds a {arch.get('type')} checkpoint, not a {want} teacher; point it at the teacher's "
            'checkpoint (experiments/<teacher run>/models/net_g_latest.pth).',
        )
    if arch is not None:
        for name in ('num_atoms', 'out_size'):
            mine, theirs = net_opt.get(name, _default(arch_cls, name)), arch.get(name, _default(arch_cls, name))
            if mine is not None and theirs is not None and mine != theirs:
                _fail(
                    opt_path,
                    f'network_t.{name}',
                    f'is {mine} but the teacher in {path} was trained with {name}: {theirs}; set {name}: {theirs}.',
                )
        return
    key = (opt.get('path') or {}).get('param_key_t', 'params')
    if key not in ckpt and 'params' in ckpt:
        key = 'params'  # as BasicSR's load_network falls back
    state = ckpt.get(key) if isinstance(ckpt.get(key), dict) else ckpt
    if state and not any(str(k).startswith('dictionary.') for k in state):
        _fail(
            opt_path,
            'path.pretrain_network_t',
            f'{path} holds no component dictionary (`{key}` has no `dictionary.*` entries): it is not a {want} '
            "teacher checkpoint; point it at the teacher's checkpoint.",
        )


def _check_dictionary_file(opt_path, key, net_opt, arch_cls):
    dict_path = net_opt.get('dict_path')
    if not isinstance(dict_path, str) or not os.path.isfile(os.path.expanduser(dict_path)):
        return
    data = _read_lazily(os.path.expanduser(dict_path))
    if not isinstance(data, dict) or 'num_atoms' not in data:
        return
    for name in ('num_atoms', 'out_size'):
        mine = net_opt.get(name, _default(arch_cls, name))
        if mine is not None and data.get(name) is not None and mine != data[name]:
            _fail(
                opt_path,
                f'{key}.{name}',
                f'is {mine} but the dictionary {dict_path} holds {name}={data[name]} (K={data.get("num_atoms")} atoms '
                f'per component); set {name}: {data[name]}, or build a dictionary for {name}={mine}.',
            )


def check_options(opt, opt_path='<options>', check_paths=True):
    """Validate a parsed BasicSR option dict that uses facesr_kd; leave any other alone.

    Args:
        opt (dict): The options as ``basicsr.utils.options.parse_options`` returns them.
        opt_path (str): The option file, named in every error.
        check_paths (bool): Also check that every dataset, pretrained-network and resume path exists, and that
            the teacher checkpoint and dictionary files fit (off: check a shipped recipe before its data are
            prepared).

    Returns:
        bool: Whether the file was checked (False: it uses none of facesr_kd's types, see :func:`uses_facesr_kd`).

    Raises:
        OptionError: On the first problem, naming the file and the key.
    """
    import torch

    arch_registry, dataset_registry, loss_registry, metric_registry, model_registry = _registries()
    if not uses_facesr_kd(opt):
        return False
    for key in ('name', 'model_type', 'datasets'):
        if key not in opt:
            _fail(opt_path, key, 'required key is missing.')
    if not isinstance(opt['datasets'], dict):
        _fail(opt_path, 'datasets', 'must be a mapping of phases (`train`, `val*`, `test*`) to datasets.')
    _check_numbers(opt_path, opt)
    check_setting_types(opt, opt_path)
    model_cls = _resolve(opt_path, 'model_type', model_registry, opt['model_type'])
    our_model = is_ours(model_cls)
    is_train = opt.get('is_train', True)
    if our_model:
        _misspelt(opt_path, '', [k for k in opt if not k.startswith('network_')], TOP_KEYS, strict=False)
    num_gpu = opt.get('num_gpu')
    if isinstance(num_gpu, int) and not isinstance(num_gpu, bool) and num_gpu >= 1 and not torch.cuda.is_available():
        _fail(
            opt_path,
            'num_gpu',
            f'is {num_gpu} but this machine has no CUDA device; set `num_gpu: 0` to run on the CPU.',
        )

    archs = {}
    for key, net_opt in opt.items():
        if not key.startswith('network_'):
            continue
        if not isinstance(net_opt, dict):
            _fail(opt_path, key, 'must be a mapping with a `type`.')
        arch = lookup(arch_registry, net_opt.get('type'))
        if arch is None and not our_model:
            continue  # a stock model's network: the model decides whether it builds it
        arch = _resolve(opt_path, key, arch_registry, net_opt.get('type'))
        archs[key] = arch
        if our_model or is_ours(arch):
            net_kwargs = {k: v for k, v in net_opt.items() if k != 'type'}
            _check_kwargs(opt_path, key, arch, net_kwargs)
            _check_arg_types(opt_path, key, arch, net_kwargs, ours=is_ours(arch))
        if check_paths and is_ours(arch):
            _check_dictionary_file(opt_path, key, net_opt, arch)

    metrics_on = bool(isinstance(opt.get('val'), dict) and opt['val'].get('metrics'))
    for phase, ds_opt in opt['datasets'].items():
        key = f'datasets.{phase}'
        if phase != 'train' and not phase.startswith(('val', 'test')):
            _fail(opt_path, key, 'dataset phases are `train`, `val*` or `test*`.')
        if not isinstance(ds_opt, dict):
            _fail(opt_path, key, 'must be a mapping with a `type`.')
        dataset_cls = _resolve(opt_path, key, dataset_registry, ds_opt.get('type'))
        our_dataset = is_ours(dataset_cls)
        if our_dataset:
            known = DATASET_KEYS | set(getattr(dataset_cls, 'OPTION_KEYS', ()))
            _misspelt(opt_path, f'{key}.', ds_opt, known, strict=hasattr(dataset_cls, 'OPTION_KEYS'))
        needs_gt = phase == 'train' or (phase.startswith('val') and (our_dataset or metrics_on))
        if is_train and needs_gt and ds_opt.get('dataroot_gt') is None:
            _fail(opt_path, f'{key}.dataroot_gt', f'missing: the {phase} dataset needs its HR (ground-truth) folder.')
        if is_train and phase == 'train':
            _positive(opt_path, f'{key}.batch_size_per_gpu', ds_opt.get('batch_size_per_gpu'), 'it must be >= 1.')
        backend = (ds_opt.get('io_backend') or {}).get('type', 'disk')
        for k, v in ds_opt.items():
            ours_path = our_dataset and (k.startswith('dataroot_') or k.endswith(('_file', '_path')))
            if ours_path or k in STOCK_DATASET_PATHS:
                if backend == 'lmdb' and k.startswith('dataroot_') and isinstance(v, str) and not v.endswith('.lmdb'):
                    _fail(opt_path, f'{key}.{k}', f'an lmdb io_backend needs a folder ending in .lmdb, got {v}.')
                if check_paths:
                    _check_path(opt_path, f'{key}.{k}', v)

    path_opt = opt.get('path') or {}
    for k, v in path_opt.items():
        if k.startswith('pretrain_network_'):
            if check_paths and (our_model or f'network_{k[len("pretrain_network_") :]}' in opt):
                _check_path(opt_path, f'path.{k}', v)
        elif k.startswith('resume_state'):
            if check_paths:
                _check_path(opt_path, f'path.{k}', v)
        elif our_model and not (k in PATH_KEYS_FIXED or k.startswith(('param_key_', 'strict_load_'))):
            _misspelt(opt_path, 'path.', [k], PATH_KEYS_FIXED | PATH_KEYS_NETWORK, strict=False)
    if check_paths and our_model and 'network_t' in archs:
        _check_teacher(opt_path, opt, archs['network_t'])

    train_opt = opt.get('train')
    if is_train and isinstance(train_opt, dict):
        if 'total_iter' in train_opt:
            _positive(opt_path, 'train.total_iter', train_opt['total_iter'], 'training needs at least one iteration.')
        for k, v in train_opt.items():
            if k.endswith('_opt') and isinstance(v, dict):
                loss = lookup(loss_registry, v.get('type'))
                if our_model or is_ours(loss):
                    loss = _resolve(opt_path, f'train.{k}', loss_registry, v.get('type'))
                    loss_kwargs = {kk: vv for kk, vv in v.items() if kk != 'type'}
                    _check_kwargs(opt_path, f'train.{k}', loss, loss_kwargs)
                    _check_arg_types(opt_path, f'train.{k}', loss, loss_kwargs, ours=False)
            elif (our_model and k.startswith('optim_')) or k == 'optim_g':
                _check_optimizer(opt_path, f'train.{k}', v, model_cls)
            elif our_model and not k.endswith('_opt'):
                _misspelt(opt_path, 'train.', [k], TRAIN_KEYS, strict=False)
        if our_model:
            model_check = getattr(model_cls, 'check_train_options', None)
            if model_check is not None:
                try:
                    model_check(opt)
                except (ValueError, TypeError) as err:
                    _fail(opt_path, 'train', str(err))
            scheduler = (train_opt.get('scheduler') or {}).get('type')
            if scheduler is not None and scheduler not in SCHEDULERS:
                _fail(opt_path, 'train.scheduler.type', f'`{scheduler}` is not one of {sorted(SCHEDULERS)}.')

    val_opt = opt.get('val')
    if isinstance(val_opt, dict):
        if our_model:
            _misspelt(opt_path, 'val.', val_opt, VAL_KEYS, strict=False)
        if is_train and 'val_freq' in val_opt:
            _positive(opt_path, 'val.val_freq', val_opt['val_freq'], 'it must be >= 1 (or remove the `val` section).')
        for name, m_opt in (val_opt.get('metrics') or {}).items():
            if not isinstance(m_opt, dict):
                _fail(opt_path, f'val.metrics.{name}', 'must be a mapping with a `type`.')
            metric = _resolve(opt_path, f'val.metrics.{name}', metric_registry, m_opt.get('type'))
            metric_kwargs = {k: v for k, v in m_opt.items() if k not in ('type', 'better')}
            _check_kwargs(opt_path, f'val.metrics.{name}', metric, metric_kwargs, ignore=('img', 'img2'))
            _check_arg_types(opt_path, f'val.metrics.{name}', metric, metric_kwargs, ours=False)
    logger_opt = opt.get('logger')
    if isinstance(logger_opt, dict):
        if our_model:
            _misspelt(opt_path, 'logger.', logger_opt, LOGGER_KEYS, strict=False)
        if is_train:
            for k in ('save_checkpoint_freq', 'print_freq'):
                _positive(opt_path, f'logger.{k}', logger_opt.get(k), 'it must be >= 1 (a number of iterations).')
    return True


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
    """Make BasicSR's ``parse_options`` validate every option file of ours that it reads (idempotent).

    Files that use none of facesr_kd's types pass through untouched (see :func:`uses_facesr_kd`).
    """
    import basicsr.test
    import basicsr.train
    import basicsr.utils.options as basicsr_options

    if getattr(basicsr_options.parse_options, 'checks_options', False):
        return
    original = basicsr_options.parse_options

    def parse_options(root_path, is_train=True):
        from facesr_kd.compat import _option_args

        opt_path, _ = _option_args(sys.argv[1:])
        if opt_path is not None and os.path.isfile(opt_path):
            # Before BasicSR parses it: the size and alias bounds, then what its parse and the folders need.
            check_basicsr_structure(load_option_file(opt_path), opt_path)
        opt, args = original(root_path, is_train=is_train)
        check_name(args.opt, opt.get('name'))  # again: --force_yml and --debug change it
        if uses_facesr_kd(opt):
            check_options(normalize_options(opt), args.opt)
        check_pipeline_sections(opt, args.opt, is_train=is_train)
        return opt, args

    parse_options.checks_options = True
    for module in (basicsr_options, basicsr.train, basicsr.test):
        module.parse_options = parse_options
