"""Fixes that let basicsr 1.4.2 run on today's PyTorch stack.

Every fix here is named, idempotent and applied by :func:`apply`, which ``import facesr_kd`` calls before it
imports anything from BasicSR. Nothing else in the package patches BasicSR.

Fixed defects of basicsr 1.4.2:

- ``torchvision_functional_tensor``: ``basicsr.data.degradations`` imports
  ``torchvision.transforms.functional_tensor``, removed in torchvision 0.17.
- ``resume_on_cpu``: ``basicsr.train.load_resume_state`` maps the state to CUDA unconditionally, and the
  default ``weights_only`` loading of torch >= 2.6 refuses the ``Counter`` that BasicSR's schedulers save.
  ``python -m basicsr.train`` (and ``python basicsr/train.py``) run their own copy of that function in
  ``__main__``, created after this fix: the copy is replaced when its ``train_pipeline`` calls
  ``parse_options``, which it does before it resumes.
- ``resume_keeps_ignored_networks``: ``check_resume`` switches every ``param_key_*`` from ``params_ema`` to
  ``params``, also those of networks listed in ``ignore_resume_networks`` (such as a frozen teacher), which
  would then load different weights after a resume than before.
- ``perceptual_l2``: ``PerceptualLoss(criterion='l2')`` calls the non-existent ``torch.nn.L2loss``.
- ``jpeg_int_quality``: ``add_jpg_compression`` hands OpenCV >= 4.5.4 a float quality, which it refuses.
- ``module_run_outputs_in_cwd``: ``python -m basicsr.train`` / ``basicsr.test`` take the folder above the
  installed ``basicsr`` package (site-packages) as the root of ``experiments/``, ``results/`` and
  ``tb_logger/``; they go under the current directory instead. Only for a BasicSR installed in a
  site-packages folder (a source checkout or an editable install keeps BasicSR's own folders), and never for
  an explicit ``path: experiments_root`` / ``results_root``.
- ``safe_option_yaml``: ``parse_options`` reads option files with PyYAML's full ``Loader``, so a tag such as
  ``!!python/object/apply:os.system`` runs code, and it passes ``--force_yml`` values that start with ``[``
  to ``eval`` and their keys to ``exec``. Option files are read with a safe loader (mappings stay ``OrderedDict``),
  values are parsed as literals (None, bools, ints, floats such as ``1e-3``, lists of literals), and keys that
  could leave their string literal are refused.
- ``ddp_on_cpu``: the PyTorch and slurm launchers call ``torch.cuda.set_device`` and use NCCL unconditionally,
  and ``BaseModel.model_to_device`` passes CUDA device ids to DDP; on CPU we use Gloo and no device ids.
"""

import argparse
import ast
import collections
import functools
import inspect
import json
import os
import re
import sys
import types

APPLIED = []


def _once(func):
    @functools.wraps(func)
    def wrapper():
        if func.__name__ not in APPLIED:
            func()
            APPLIED.append(func.__name__)

    return wrapper


@_once
def torchvision_functional_tensor():
    name = 'torchvision.transforms.functional_tensor'
    if name in sys.modules:
        return
    try:
        import torchvision.transforms.functional_tensor  # noqa: F401
    except ImportError:
        from torchvision.transforms import functional

        shim = types.ModuleType(name, 'Alias of torchvision.transforms.functional kept for basicsr 1.4.2.')
        shim.rgb_to_grayscale = functional.rgb_to_grayscale
        sys.modules[name] = shim


def load_training_state(path, device=None):
    """Load a BasicSR ``.state`` file on the current device without executing code from it.

    Args:
        path (str): The ``.state`` file written by ``BaseModel.save_training_state``.
        device (torch.device | str | None): Where tensors go. Default: the current CUDA device when CUDA
            is available, else the CPU.

    Returns:
        dict: The state with ``epoch``, ``iter``, ``optimizers`` and ``schedulers``.
    """
    import torch

    if device is None:
        device = torch.device('cuda', torch.cuda.current_device()) if torch.cuda.is_available() else 'cpu'
    # BasicSR's MultiStepRestartLR stores its milestones as a Counter.
    torch.serialization.add_safe_globals([collections.Counter])
    return torch.load(path, map_location=device, weights_only=True)


@_once
def resume_on_cpu():
    import basicsr.test
    import basicsr.train
    import basicsr.utils.options
    from basicsr.utils import misc, scandir

    def load_resume_state(opt):
        path = None
        if opt['auto_resume']:
            state_dir = opt['path'].get('training_states') or os.path.join(
                'experiments', opt['name'], 'training_states'
            )
            if os.path.isdir(state_dir):
                iters = [int(v.split('.state')[0]) for v in scandir(state_dir, suffix='state', recursive=False)]
                if iters:
                    path = os.path.join(state_dir, f'{max(iters)}.state')
                    opt['path']['resume_state'] = path
        else:
            path = opt['path'].get('resume_state')
        if path is None:
            return None
        if not os.path.isfile(path):
            raise FileNotFoundError(f'path:resume_state points to {path}, which does not exist.')
        state = load_training_state(path)
        misc.check_resume(opt, state['iter'])
        return state

    basicsr.train.load_resume_state = load_resume_state
    options = basicsr.utils.options
    original_parse = options.parse_options

    @functools.wraps(original_parse)
    def parse_options(root_path, is_train=True):
        _replace_in_main_copy('load_resume_state', load_resume_state)
        return original_parse(root_path, is_train=is_train)

    for module in (options, basicsr.train, basicsr.test):
        module.parse_options = parse_options


def _replace_in_main_copy(name, func):
    """Replace ``name`` in ``__main__`` when ``__main__`` runs a copy of ``basicsr/train.py``.

    ``python -m basicsr.train`` executes the file again as ``__main__`` (and so does ``python basicsr/train.py``
    from a checkout); its functions are not those of the ``basicsr.train`` module that the fixes patch.
    """
    main = sys.modules.get('__main__')
    own = getattr(main, name, None)
    if main is None or own is func or not inspect.isfunction(own) or own.__globals__ is not vars(main):
        return
    folder, file = os.path.split(own.__code__.co_filename)
    if file == 'train.py' and os.path.basename(folder) == 'basicsr':
        setattr(main, name, func)


@_once
def resume_keeps_ignored_networks():
    import basicsr.utils
    from basicsr.utils import misc

    original = misc.check_resume

    @functools.wraps(original)
    def check_resume(opt, resume_iter):
        ignored = opt['path'].get('ignore_resume_networks') or []
        kept = {
            f'param_key_{n[len("network_") :]}': opt['path'].get(f'param_key_{n[len("network_") :]}') for n in ignored
        }
        original(opt, resume_iter)
        opt['path'].update({k: v for k, v in kept.items() if v is not None})

    misc.check_resume = basicsr.utils.check_resume = check_resume


@_once
def perceptual_l2():
    import torch
    from basicsr.losses import basic_loss

    original_init = basic_loss.PerceptualLoss.__init__

    @functools.wraps(original_init)
    def __init__(self, *args, criterion='l1', **kwargs):
        original_init(self, *args, criterion='l1' if criterion == 'l2' else criterion, **kwargs)
        if criterion == 'l2':
            self.criterion_type = 'l2'
            self.criterion = torch.nn.MSELoss()

    basic_loss.PerceptualLoss.__init__ = __init__


@_once
def jpeg_int_quality():
    from basicsr.data import degradations

    original = degradations.add_jpg_compression

    @functools.wraps(original)
    def add_jpg_compression(img, quality=90):
        return original(img, int(round(float(quality))))

    degradations.add_jpg_compression = add_jpg_compression


@_once
def ddp_on_cpu():
    import torch
    import torch.distributed as dist
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import dist_util
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    def _backend(backend):
        return backend if torch.cuda.is_available() else 'gloo'

    def _set_device(local_rank):
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank % torch.cuda.device_count())

    def _init_dist_pytorch(backend, **kwargs):
        _set_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])))
        dist.init_process_group(backend=_backend(backend), **kwargs)

    original_slurm = dist_util._init_dist_slurm

    def _init_dist_slurm(backend, port=None):
        if torch.cuda.is_available():
            return original_slurm(backend, port)
        # The CPU path of BasicSR's slurm launcher without its torch.cuda calls.
        proc_id, ntasks = int(os.environ['SLURM_PROCID']), int(os.environ['SLURM_NTASKS'])
        node_list = os.environ['SLURM_NODELIST']
        import subprocess

        os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
        os.environ.setdefault('MASTER_PORT', str(port or 29500))
        os.environ.update(WORLD_SIZE=str(ntasks), RANK=str(proc_id), LOCAL_RANK=os.environ.get('SLURM_LOCALID', '0'))
        dist.init_process_group(backend='gloo')

    def model_to_device(self, net):
        net = net.to(self.device)
        if self.opt['dist']:
            device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
            net = DistributedDataParallel(
                net, device_ids=device_ids, find_unused_parameters=self.opt.get('find_unused_parameters', False)
            )
        elif self.opt['num_gpu'] > 1:
            net = DataParallel(net)
        return net

    dist_util._init_dist_pytorch = _init_dist_pytorch
    dist_util._init_dist_slurm = _init_dist_slurm
    BaseModel.model_to_device = model_to_device


def installed_site_root(package_dir):
    """The site-packages folder holding an installed package, or None for a source checkout.

    Args:
        package_dir (str): The package's folder (``os.path.dirname(basicsr.__file__)``).

    Returns:
        str | None: The parent folder when it is a ``site-packages`` or ``dist-packages`` folder.
    """
    parent = os.path.dirname(os.path.abspath(package_dir))
    return parent if os.path.basename(parent) in ('site-packages', 'dist-packages') else None


def is_editable(dist_name):
    """Whether the installed distribution ``dist_name`` is an editable install (PEP 610 ``direct_url.json``)."""
    from importlib import metadata

    try:
        text = metadata.distribution(dist_name).read_text('direct_url.json')
        return bool(text) and bool(json.loads(text).get('dir_info', {}).get('editable', False))
    except (metadata.PackageNotFoundError, ValueError, AttributeError):
        return False


def tb_logger_in_cwd(path, site_root, cwd):
    """Where a ``tb_logger/<name>`` folder that BasicSR roots in ``site_root`` goes instead: under ``cwd``.

    Any other path (``experiments/``, ``results/``, which ``parse_options`` already roots in ``cwd``, and every
    explicit ``path:`` entry) is returned unchanged.
    """
    path_abs = os.path.abspath(path)
    if os.path.dirname(path_abs) == os.path.join(site_root, 'tb_logger'):
        return os.path.join(cwd, 'tb_logger', os.path.basename(path_abs))
    return path


@_once
def module_run_outputs_in_cwd():
    import basicsr
    import basicsr.test
    import basicsr.train
    import basicsr.utils
    import basicsr.utils.logger
    import basicsr.utils.options as options
    from basicsr.utils import misc

    site_root = installed_site_root(os.path.dirname(basicsr.__file__))
    if site_root is None or is_editable('basicsr'):
        return  # a checkout's train.py roots its outputs in the checkout, as BasicSR means it to
    original_parse, original_tb = options.parse_options, basicsr.utils.logger.init_tb_logger
    original_mkdir = misc.mkdir_and_rename

    @functools.wraps(original_parse)
    def parse_options(root_path, is_train=True):
        # Every experiments/ and results/ path derives from root_path, unless the file sets it explicitly.
        if os.path.abspath(root_path) == site_root:
            root_path = os.getcwd()
        return original_parse(root_path, is_train=is_train)

    # train_pipeline sets opt['root_path'] to its own argument after parse_options: only tb_logger/ uses it.
    @functools.wraps(original_tb)
    def init_tb_logger(log_dir):
        return original_tb(tb_logger_in_cwd(log_dir, site_root, os.getcwd()))

    @functools.wraps(original_mkdir)
    def mkdir_and_rename(path):
        return original_mkdir(tb_logger_in_cwd(path, site_root, os.getcwd()))

    for module in (options, basicsr.train, basicsr.test):
        module.parse_options = parse_options
    for module in (basicsr.utils, basicsr.utils.logger, basicsr.train):
        module.init_tb_logger = init_tb_logger
    for module in (basicsr.utils, misc, basicsr.train):
        module.mkdir_and_rename = mkdir_and_rename


_INT = re.compile(r'[-+]?\d+')
_FLOAT = re.compile(r'[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?')


def parse_force_yml_value(text):
    """Parse a ``--force_yml key=value`` value as a literal, never as code.

    ``~`` / ``none`` -> None, ``true`` / ``false`` (any case) -> bool, ``!!float 1e-4`` and numbers such as
    ``5``, ``-1``, ``0.5``, ``1e-3`` -> int / float, ``[...]`` -> a list of Python literals (numbers, quoted
    strings, True/False/None, nested lists); anything else stays a string.

    Raises:
        ValueError: A value that starts with ``[`` but is not a literal list, or a bad ``!!float``.
    """
    value = text.strip()
    lower = value.lower()
    if value == '~' or lower == 'none':
        return None
    if lower in ('true', 'false'):
        return lower == 'true'
    if value.startswith('!!float'):
        return float(value[len('!!float') :])
    if _INT.fullmatch(value):
        return int(value)
    if _FLOAT.fullmatch(value):
        return float(value)
    if value.startswith('['):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if not isinstance(parsed, list):
            raise ValueError(
                f'{value!r} is not a list of literals (numbers, quoted strings, True, False, None); '
                '--force_yml values are never evaluated as code'
            )
        return parsed
    return value


class _ArgvParser(argparse.ArgumentParser):
    def error(self, message):
        raise ValueError(message)


def _option_args(argv):
    """``-opt`` and ``--force_yml`` as BasicSR's ``parse_options`` will read them (same options, same rules)."""
    parser = _ArgvParser(add_help=False)
    parser.add_argument('-opt', type=str, default=None)
    parser.add_argument('--launcher', default=None)
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', default=None)
    parser.add_argument('--force_yml', nargs='+', default=None)
    try:
        args, _ = parser.parse_known_args(argv)
    except ValueError:
        return None, []  # BasicSR's own parser reports the command-line error
    return args.opt, args.force_yml or []


def check_force_yml(entry, opt_path='<options>'):
    """Refuse a ``--force_yml`` entry that BasicSR would run as code.

    BasicSR executes ``opt["k1"]["k2"]=value`` built from the key: a key part with a quote or a backslash could
    leave its string literal. The value must parse with :func:`parse_force_yml_value`.

    Raises:
        OptionError: Naming the option file and the entry.
    """
    from facesr_kd.utils.options import OptionError

    parts = entry.split('=')
    if len(parts) != 2:
        return  # BasicSR refuses it itself (it splits on `=` into exactly two parts)
    keys, value = parts
    for key in keys.strip().split(':'):
        if any(c in key for c in '"\\\n\r'):
            raise OptionError(
                f'{opt_path}: --force_yml {entry!r}: the key {key!r} holds a quote, a backslash or a line break; '
                'option keys never do (BasicSR would run it as code)'
            )
    try:
        parse_force_yml_value(value)
    except ValueError as err:
        raise OptionError(f'{opt_path}: --force_yml {entry!r}: {err}') from None


def ordered_safe_loader():
    """A PyYAML safe loader (C-accelerated when available) that builds mappings as ``OrderedDict``."""
    import yaml

    class OrderedSafeLoader(getattr(yaml, 'CSafeLoader', yaml.SafeLoader)):
        """Safe loading: only plain YAML types; tags that build Python objects are refused."""

    def construct_mapping(loader, node):
        return collections.OrderedDict(loader.construct_pairs(node))

    OrderedSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return OrderedSafeLoader


@_once
def safe_option_yaml():
    from facesr_kd.utils.options import yaml_errors

    import basicsr.test
    import basicsr.train
    import basicsr.utils.options as options

    loader, dumper = ordered_safe_loader(), options.ordered_yaml()[1]
    original_parse = options.parse_options

    def ordered_yaml():
        return loader, dumper

    def _postprocess_yml_value(value):
        return parse_force_yml_value(value)

    @functools.wraps(original_parse)
    def parse_options(root_path, is_train=True):
        opt_path, entries = _option_args(sys.argv[1:])
        for entry in entries:
            check_force_yml(entry, opt_path)
        with yaml_errors(opt_path):
            return original_parse(root_path, is_train=is_train)

    options.ordered_yaml = ordered_yaml
    options._postprocess_yml_value = _postprocess_yml_value
    for module in (options, basicsr.train, basicsr.test):
        module.parse_options = parse_options


def apply():
    """Apply every fix; safe to call more than once. Must run before ``basicsr`` is first imported."""
    torchvision_functional_tensor()
    import basicsr  # noqa: F401  (the import itself is what the first fix makes possible)

    resume_on_cpu()
    resume_keeps_ignored_networks()
    perceptual_l2()
    jpeg_int_quality()
    safe_option_yaml()
    module_run_outputs_in_cwd()
    ddp_on_cpu()
