"""Fixes that let basicsr 1.4.2 run on today's PyTorch stack.

Every fix here is named, idempotent and applied by :func:`apply`, which ``import facesr_kd`` calls before it
imports anything from BasicSR. Nothing else in the package patches BasicSR.

Fixed defects of basicsr 1.4.2:

- ``torchvision_functional_tensor``: ``basicsr.data.degradations`` imports
  ``torchvision.transforms.functional_tensor``, removed in torchvision 0.17.
- ``resume_on_cpu``: ``basicsr.train.load_resume_state`` maps the state to CUDA unconditionally, and the
  default ``weights_only`` loading of torch >= 2.6 refuses the ``Counter`` that BasicSR's schedulers save.
- ``resume_keeps_ignored_networks``: ``check_resume`` switches every ``param_key_*`` from ``params_ema`` to
  ``params``, also those of networks listed in ``ignore_resume_networks`` (such as a frozen teacher), which
  would then load different weights after a resume than before.
- ``perceptual_l2``: ``PerceptualLoss(criterion='l2')`` calls the non-existent ``torch.nn.L2loss``.
- ``jpeg_int_quality``: ``add_jpg_compression`` hands OpenCV >= 4.5.4 a float quality, which it refuses.
- ``module_run_outputs_in_cwd``: ``python -m basicsr.train`` / ``basicsr.test`` take the folder above the
  installed ``basicsr`` package (site-packages) as the root of ``experiments/``, ``results/`` and
  ``tb_logger/``; they go under the current directory instead.
- ``ddp_on_cpu``: the PyTorch and slurm launchers call ``torch.cuda.set_device`` and use NCCL unconditionally,
  and ``BaseModel.model_to_device`` passes CUDA device ids to DDP; on CPU we use Gloo and no device ids.
"""

import collections
import functools
import os
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
    import basicsr.train
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


@_once
def module_run_outputs_in_cwd():
    import basicsr
    import basicsr.test
    import basicsr.train
    import basicsr.utils
    import basicsr.utils.logger
    import basicsr.utils.options as options
    from basicsr.utils import misc

    site_root = os.path.dirname(os.path.dirname(os.path.abspath(basicsr.__file__)))
    original_parse, original_tb = options.parse_options, basicsr.utils.logger.init_tb_logger
    original_mkdir = misc.mkdir_and_rename

    def in_cwd(path):
        rel = os.path.relpath(os.path.abspath(path), site_root)
        if rel.split(os.sep)[0] in ('experiments', 'results', 'tb_logger'):
            return os.path.join(os.getcwd(), rel)
        return path

    @functools.wraps(original_parse)
    def parse_options(root_path, is_train=True):
        if os.path.abspath(root_path) == site_root:
            root_path = os.getcwd()
        return original_parse(root_path, is_train=is_train)

    @functools.wraps(original_tb)
    def init_tb_logger(log_dir):
        return original_tb(in_cwd(log_dir))

    @functools.wraps(original_mkdir)
    def mkdir_and_rename(path):
        return original_mkdir(in_cwd(path))

    for module in (options, basicsr.train, basicsr.test):
        module.parse_options = parse_options
    for module in (basicsr.utils, basicsr.utils.logger, basicsr.train):
        module.init_tb_logger = init_tb_logger
    for module in (basicsr.utils, misc, basicsr.train):
        module.mkdir_and_rename = mkdir_and_rename


def apply():
    """Apply every fix; safe to call more than once. Must run before ``basicsr`` is first imported."""
    torchvision_functional_tensor()
    import basicsr  # noqa: F401  (the import itself is what the first fix makes possible)

    resume_on_cpu()
    resume_keeps_ignored_networks()
    perceptual_l2()
    jpeg_int_quality()
    module_run_outputs_in_cwd()
    ddp_on_cpu()
