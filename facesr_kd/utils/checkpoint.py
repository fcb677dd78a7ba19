"""Saving and loading super-resolution networks for inference, without running code from the file.

A facesr_kd checkpoint is a BasicSR-style dict::

    {'params': state_dict, 'params_ema': state_dict (optional), 'arch': {'type': 'DFDNetStudent', ...},
     'scale': 8 (optional)}

``arch`` holds the ``network_g`` options (plain str/int/float/bool/None values, or lists of them), so a
checkpoint describes its own network. Checkpoints without ``arch`` (BasicSR's own, e.g. RCAN) are described by
an option file: given explicitly, or the ``*.yml`` BasicSR copies into ``experiments/<name>/`` when the
checkpoint sits in ``experiments/<name>/models/``.

Files are read with ``torch.load(..., weights_only=True)``: tensors and plain containers only, never pickled
code. A file whose name carries a hash (``<name>-<8 to 64 hex digits>.pth``, as :mod:`facesr_kd.publish` and
``torch.hub`` name published weights) is checked first: the hex digits must begin the file's SHA-256, else
the file is refused as corrupt or truncated. Before anything is built, the arch options are checked against
the sizes facesr_kd runs (:func:`check_arch_limits`) and the weights for NaN and infinite values
(:func:`check_finite`). The network is then built through BasicSR's ``ARCH_REGISTRY`` (``import facesr_kd``
registers ours), loaded strictly, and put in eval mode.
"""

import contextlib
import glob
import hashlib
import inspect
import os
import re

from facesr_kd.utils.files import torch_save
from facesr_kd.utils.options import OptionError, load_option_yaml, read_option_text

import torch

# The task: 32x32 aligned faces to 256x256.
DEFAULT_LQ_SIZE = 32
DEFAULT_SCALE = 8
# Constructor arguments that would load weights from elsewhere (ImageNet VGG, the teacher's dictionary file).
# When building a network to load a checkpoint into, the checkpoint already holds those weights (the dictionary
# is a set of buffers): they are switched off here, deliberately, and the strict load of the full state dict
# fills them in.
INFERENCE_OVERRIDES = {'vgg_pretrained': False, 'vgg_weights': None, 'vgg_download': False, 'dict_path': None}
_PLAIN = (str, int, float, bool, type(None))
# ``<anything>-<8 to 64 hex digits>.pth``: the digits after the last ``-`` begin the file's SHA-256.
HASH_NAME_RE = re.compile(r'^.+-([0-9a-fA-F]{8,64})\.pth$')
_HASH_CHUNK = 1 << 20
# The sizes facesr_kd runs (issue 25). The archs take any out_size that is a multiple of 16 (DFDNet) or of the
# scale (LiteFaceStudent), but memory and time grow with its square: 1024 took 75 s on one photo on a CPU, 4096
# grew past 21 GB and was killed. Every int option below, present in an arch's options, must lie in its range.
MAX_OUT_SIZE = 1024
ARCH_INT_LIMITS = {
    'out_size': (16, MAX_OUT_SIZE),
    'scale': (1, 16),
    'upscale': (1, 16),
    'num_feat': (1, 512),
    'feat_channels': (1, 512),
    'num_block': (0, 64),
    'num_group': (1, 32),
    'num_groups': (1, 32),
    'num_steps': (1, 16),
    'num_atoms': (1, 4096),
    'num_in_ch': (1, 4),
    'num_out_ch': (1, 4),
    'squeeze_factor': (1, 512),
}
# out_size must be a multiple of this for these archs (their encoder halves the size four times).
OUT_SIZE_MULTIPLE = {'DFDNetStudent': 16, 'DFDNetTeacher': 16}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked. The message says what the file holds."""


def _plain_arch(arch_opt):
    if not isinstance(arch_opt, dict) or not isinstance(arch_opt.get('type'), str):
        raise ValueError(f'arch_opt must be a dict with a str `type`, got {arch_opt!r}')
    clean = {}
    for key, value in arch_opt.items():
        if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
            value = list(value)
        elif not isinstance(value, _PLAIN):
            raise ValueError(
                f'arch option `{key}` must be a str/int/float/bool/None or a list of them, got {type(value).__name__}'
            )
        clean[str(key)] = value
    return clean


def arch_type(arch_opt, source):
    """The ``type`` of arch options, which must be a string.

    Raises:
        CheckpointError: Missing or not a string (a list, a number...), naming ``source``.
    """
    type_ = arch_opt.get('type') if isinstance(arch_opt, dict) else None
    if not isinstance(type_, str) or not type_:
        what = f'{type_!r} ({type(type_).__name__})' if type_ is not None else 'missing'
        raise CheckpointError(
            f'{source}: the arch `type` is {what}; it must be the name of a registered network, '
            'e.g. LiteFaceStudent or DFDNetStudent'
        )
    return type_


def check_arch_limits(arch_opt, source):
    """Refuse arch options outside the sizes facesr_kd runs (:data:`ARCH_INT_LIMITS`), before anything is built.

    Args:
        arch_opt (dict): The ``network_g`` options, with ``type``.
        source (str): The file they come from, named in the message.

    Raises:
        CheckpointError: A bad ``type``, a sized option that is not an integer or lies outside its range, or an
            ``out_size`` that is not a multiple of what the arch needs.
    """
    type_ = arch_type(arch_opt, source)
    for key, (low, high) in ARCH_INT_LIMITS.items():
        if key not in arch_opt:
            continue
        value = arch_opt[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise CheckpointError(
                f'{source}: arch {type_} option `{key}` is {value!r} ({type(value).__name__}); it must be an integer'
            )
        if not low <= value <= high:
            raise CheckpointError(
                f'{source}: arch {type_} option `{key}` is {value}; facesr_kd runs {key} from {low} to {high} '
                '(the time and memory of a face grow with it): this is not a network it can run'
            )
    multiple = OUT_SIZE_MULTIPLE.get(type_)
    if multiple and 'out_size' in arch_opt and arch_opt['out_size'] % multiple:
        raise CheckpointError(
            f'{source}: arch {type_} option `out_size` is {arch_opt["out_size"]}; {type_} needs a multiple of '
            f'{multiple}'
        )


def check_finite(state, source):
    """Refuse weights that hold NaN or infinite values, naming the first such tensor (in the state's order).

    Raises:
        CheckpointError: ``source``, the tensor's name and how many of its values are NaN or infinite.
    """
    for key, value in state.items():
        if not isinstance(value, torch.Tensor) or not (value.is_floating_point() or value.is_complex()):
            continue
        if bool(torch.isfinite(value).all()):
            continue
        nan = int(torch.isnan(value).sum())
        inf = int(torch.isinf(value).sum())
        raise CheckpointError(
            f'{source}: tensor `{key}` {tuple(value.shape)} holds {nan} NaN and {inf} infinite values of '
            f'{value.numel()}: the weights are broken (a training run that diverged?); use an earlier checkpoint'
        )


def _cpu_state(obj):
    if isinstance(obj, torch.nn.Module):
        obj = getattr(obj, 'module', obj)  # DataParallel / DistributedDataParallel
        obj = obj.state_dict()
    return {k: v.detach().cpu() for k, v in strip_module_prefix(obj).items()}


def _strip_module(key):
    return key[len('module.') :] if key.startswith('module.') else key


def strip_module_prefix(state):
    """A state dict without the ``module.`` prefix that (Distributed)DataParallel adds to every key."""
    return {_strip_module(k): v for k, v in state.items()}


def save_sr_checkpoint(path, net, arch_opt, ema=None, scale=None, extra=None):
    """Save a network with the options that rebuild it, atomically.

    Args:
        path (str): Output ``.pth`` file.
        net (nn.Module | dict): The network (DDP wrappers are unwrapped) or its state dict.
        arch_opt (dict): The ``network_g`` options, with ``type``. Values must be str/int/float/bool/None or lists
            of them (so that ``weights_only`` loading reads them).
        ema (nn.Module | dict | None): The EMA network or its state dict, saved as ``params_ema``.
        scale (int | None): The training scale (the option file's ``scale``), for archs whose options do not
            give it (those with an ``out_size``).
        extra (dict[str, nn.Module | dict] | None): More networks saved under their own keys, e.g. the
            distillation's feature ``adapter``.
    """
    state = {'params': _cpu_state(net), 'arch': _plain_arch(arch_opt)}
    if ema is not None:
        state['params_ema'] = _cpu_state(ema)
    for key, module in (extra or {}).items():
        state[key] = _cpu_state(module)
    if scale is not None:
        state['scale'] = int(scale)
    torch_save(state, path)


def find_option_file(ckpt_path):
    """The option file BasicSR copied next to a checkpoint's experiment, or None.

    A checkpoint at ``experiments/<name>/models/net_g_X.pth`` is described by ``experiments/<name>/*.yml``;
    when there are several with a ``network_g``, the newest is taken.
    """
    models_dir = os.path.dirname(os.path.abspath(ckpt_path))
    if os.path.basename(models_dir) != 'models':
        return None
    candidates = []
    for yml in glob.glob(os.path.join(os.path.dirname(models_dir), '*.yml')):
        try:
            opt = load_option_yaml(read_option_text(yml), yml)
        except (OSError, OptionError):
            continue
        if isinstance(opt, dict) and isinstance(opt.get('network_g'), dict):
            candidates.append((os.path.getmtime(yml), yml))
    return max(candidates)[1] if candidates else None


def file_sha256(path):
    """The SHA-256 of a file, hex, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(_HASH_CHUNK), b''):
            digest.update(chunk)
    return digest.hexdigest()


def name_hash(path):
    """The hash prefix a file's name carries (``<name>-<8 to 64 hex>.pth``), lower case, or None."""
    match = HASH_NAME_RE.match(os.path.basename(path))
    return match.group(1).lower() if match else None


def verify_hash(path):
    """Check a file whose name carries a hash against its SHA-256; files without one pass unchecked.

    Args:
        path (str): The file.

    Returns:
        str | None: The full SHA-256 when the name carries a hash (and it matched), else None.

    Raises:
        CheckpointError: The file's SHA-256 does not begin with the hash in its name.
    """
    expected = name_hash(path)
    if expected is None:
        return None
    actual = file_sha256(path)
    if not actual.startswith(expected):
        raise CheckpointError(
            f'{path}: the file is corrupt or truncated: its name says SHA-256 {expected}... but the file '
            f'({os.path.getsize(path)} bytes) hashes to {actual[: len(expected)]}...; download or publish it '
            'again (if the digits after the last `-` are not a hash, rename the file)'
        )
    return actual


def load_file(path, mmap=False):
    """``torch.load`` of a file without executing code from it (``weights_only``), onto the CPU.

    Args:
        path (str): The file.
        mmap (bool): Map the file instead of reading it (cheap when only a few entries are looked at); a file in
            the legacy format is read instead.

    A file whose name carries a hash (``<name>-<8 to 64 hex>.pth``) is checked with :func:`verify_hash` first.

    Raises:
        FileNotFoundError: No such file.
        CheckpointError: The file is not one that ``weights_only`` loading accepts, or its SHA-256 does not match
            the hash in its name (corrupt or truncated).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    verify_hash(path)
    try:
        try:
            return torch.load(path, map_location='cpu', weights_only=True, mmap=mmap)
        except RuntimeError as err:
            if not mmap or 'mmap' not in str(err):
                raise
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # pickle.UnpicklingError for code, RuntimeError for non-torch files
        raise CheckpointError(
            f'{path}: cannot be read as a weights-only checkpoint (tensors and plain values only; files that '
            f'would run code are refused): {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ""}'
        ) from err


def read_checkpoint(path):
    """Read a checkpoint without executing code from it.

    Returns:
        tuple[dict, dict | None, int | None, str]: The state dict (``params_ema`` preferred), the ``arch``
        options (None when absent), the stored scale (or None) and which key the weights came from.

    Raises:
        FileNotFoundError: No such file.
        CheckpointError: The file is not a checkpoint that ``weights_only`` loading accepts, or its name carries
            a hash its contents do not match (see :func:`load_file`).
    """
    ckpt = load_file(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path}: holds a {type(ckpt).__name__}, not a state dict or a checkpoint dict')
    if 'params_ema' in ckpt or 'params' in ckpt:
        key = 'params_ema' if isinstance(ckpt.get('params_ema'), dict) else 'params'
        state = ckpt[key]
    elif ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        key, state = '(plain state dict)', ckpt
    else:
        raise CheckpointError(f'{path}: no `params` / `params_ema` state dict; top-level keys: {sorted(ckpt)[:10]}')
    state = strip_module_prefix(state)
    arch = ckpt.get('arch') if isinstance(ckpt.get('arch'), dict) else None
    scale = ckpt.get('scale') if isinstance(ckpt.get('scale'), int) else None
    return state, arch, scale, key


def _signature_defaults(cls):
    """Keyword defaults of an arch's constructor, including those a subclass passes on through ``**kwargs``.

    ``FaceRCAN(*args, input_skip=False, **kwargs)`` hands the rest to ``RCAN``: its defaults (``upscale``...)
    count too. The walk stops at the first class whose constructor takes no ``**kwargs`` (or at ``nn.Module``).
    """
    defaults = {}
    for klass in inspect.getmro(cls) if inspect.isclass(cls) else (cls,):
        if klass in (torch.nn.Module, object):
            break
        if inspect.isclass(klass) and '__init__' not in vars(klass):
            continue
        try:
            params = inspect.signature(klass).parameters
        except (TypeError, ValueError):
            break
        for k, p in params.items():
            if p.default is not inspect.Parameter.empty:
                defaults.setdefault(k, p.default)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            break
    return defaults


def describe_arch(arch_opt, cls, scale=None, lq_size=None):
    """Sizes of an SR arch: the LR input side, the scale and the output side.

    Archs with an ``out_size`` (DFDNet-style, which work at the output size) produce that size from any input;
    their scale is ``scale`` (stored or given) or :data:`DEFAULT_SCALE`. Archs with an ``out_size`` and a
    ``scale`` (``LiteFaceStudent``) take exactly ``out_size / scale``: their own ``scale`` decides, and a
    different stored or given one is refused. Archs with only ``upscale`` / ``scale`` (RCAN, SRFBN) are fully
    convolutional: the LR side is ``lq_size`` (default :data:`DEFAULT_LQ_SIZE`).

    Returns:
        dict: ``type``, ``scale``, ``lq_size``, ``out_size``, ``needs_boxes``.

    Raises:
        CheckpointError: The scale cannot be told, or ``lq_size * scale != out_size``.
    """
    opt = {**_signature_defaults(cls), **arch_opt}
    type_ = arch_opt['type']
    if 'out_size' in opt:
        out_size = int(opt['out_size'])
        arch_scale = opt.get('upscale', opt.get('scale'))
        if arch_scale is not None:  # LiteFaceStudent: built for one scale
            if scale is not None and int(scale) != int(arch_scale):
                raise CheckpointError(
                    f'{type_}: the checkpoint or option file says scale {scale} but the arch is built for '
                    f'x{arch_scale} (out_size {out_size})'
                )
            scale = int(arch_scale)
        else:
            scale = int(scale or getattr(cls, 'scale', None) or DEFAULT_SCALE)
        lq_size = int(lq_size or out_size // scale)
    elif 'upscale' in opt or 'scale' in opt:
        arch_scale = opt.get('upscale', opt.get('scale'))
        if scale is not None and int(scale) != int(arch_scale):
            raise CheckpointError(f'{type_}: the options say scale {scale} but the arch upscales x{arch_scale}')
        scale = int(arch_scale)
        lq_size = int(lq_size or DEFAULT_LQ_SIZE)
        out_size = lq_size * scale
    else:
        raise CheckpointError(
            f'{type_}: not a super-resolution arch facesr_kd knows how to run (it has no '
            '`out_size`, `upscale` or `scale` option)'
        )
    if lq_size * scale != out_size:
        raise CheckpointError(f'{type_}: LR side {lq_size} x scale {scale} != output side {out_size}')
    return {
        'type': type_,
        'scale': scale,
        'lq_size': lq_size,
        'out_size': out_size,
        'needs_boxes': bool(getattr(cls, 'needs_boxes', False)),
    }


def _holds(path, arch, state, key):
    keys = list(state)
    shapes = ', '.join(f'{k} {tuple(state[k].shape)}' for k in keys[:4])
    arch_txt = f'arch {arch.get("type")}' if arch else 'no arch entry'
    return f'{path} holds {arch_txt}, {len(keys)} tensors in `{key}` (e.g. {shapes})'


@contextlib.contextmanager
def _no_weight_init():
    """Skip ``torch.nn.init`` while building a network whose every weight a strict load overwrites next.

    Random initialisation of the VGG19 encoder alone takes seconds on a CPU; it is wasted work here.
    """
    names = [n for n in dir(torch.nn.init) if n.endswith('_') and not n.startswith('_')]
    saved = {n: getattr(torch.nn.init, n) for n in names}

    def keep(tensor, *args, **kwargs):
        return tensor

    try:
        for n in names:
            setattr(torch.nn.init, n, keep)
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.nn.init, n, f)


def arch_from_options(text, opt_path, ckpt_path, scale=None):
    """The ``network_g`` options and the scale an option file's text gives for ``ckpt_path``.

    Raises:
        CheckpointError: The file has no ``network_g`` section.
    """
    try:
        opt = load_option_yaml(text, opt_path) or {}
    except OptionError as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(opt, dict) or not isinstance(opt.get('network_g'), dict):
        raise CheckpointError(f'{opt_path}: has no `network_g` section to describe {ckpt_path}')
    return dict(opt['network_g']), opt.get('scale', scale)


def load_sr_network(path, opt_path=None, device='cpu', expect_scale=None, expect_type=None):
    """Build the network a checkpoint describes and load its weights, for inference.

    Args:
        path (str): Checkpoint (``.pth``).
        opt_path (str | None): BasicSR option file whose ``network_g`` describes the arch; it wins over the
            checkpoint's ``arch``. None: the checkpoint's ``arch``, else the option file found by
            :func:`find_option_file`.
        device (str | torch.device): Where the network goes.
        expect_scale (int | None): Refuse a network of another scale.
        expect_type (str | Sequence[str] | None): Refuse other arch types.

    Returns:
        tuple[nn.Module, dict]: The network in eval mode, and its description: ``type``, ``scale``,
        ``lq_size``, ``out_size``, ``needs_boxes``, plus ``path``, ``params_key`` and ``opt_path``.

    Raises:
        FileNotFoundError: No checkpoint.
        CheckpointError: Unreadable, corrupt or truncated file (a hash in its name that its SHA-256 does not
            match), an arch ``type`` that is not a string, sizes outside :data:`ARCH_INT_LIMITS`, NaN or
            infinite weights, unknown arch, wrong type or scale, or weights that do not fit the arch; the message
            says what the file holds.
    """
    import facesr_kd  # noqa: F401  (registers the archs)

    from basicsr.utils.registry import ARCH_REGISTRY

    state, arch, scale, key = read_checkpoint(path)
    if opt_path is None and arch is None:
        opt_path = find_option_file(path)
    if opt_path is not None:
        try:
            text = read_option_text(opt_path)
        except OptionError as err:
            raise CheckpointError(str(err)) from None
        arch, scale = arch_from_options(text, opt_path, path, scale)
    if arch is None:
        raise CheckpointError(
            f'{_holds(path, arch, state, key)}; it does not say which network it is: pass the '
            'option file it was trained with (--opt)'
        )
    # Before anything is built: the type, the sizes (issue 25) and the weights' values.
    source = path if opt_path is None else f'{opt_path} (describing {path})'
    check_arch_limits(arch, source)
    type_ = arch['type']
    check_finite(state, path)
    if type_ not in ARCH_REGISTRY:
        raise CheckpointError(f'{_holds(path, arch, state, key)}; `{type_}` is not a registered arch')
    if expect_type is not None:
        allowed = (expect_type,) if isinstance(expect_type, str) else tuple(expect_type)
        if type_ not in allowed:
            raise CheckpointError(f'{_holds(path, arch, state, key)}; expected {" or ".join(allowed)}')
    cls = ARCH_REGISTRY.get(type_)
    info = describe_arch(arch, cls, scale=scale)
    if expect_scale is not None and info['scale'] != int(expect_scale):
        raise CheckpointError(
            f'{_holds(path, arch, state, key)}: x{info["scale"]} ({info["lq_size"]} -> '
            f'{info["out_size"]}); expected x{expect_scale}'
        )
    kwargs = {k: v for k, v in arch.items() if k != 'type'}
    params = _signature_defaults(cls)
    kwargs.update({k: v for k, v in INFERENCE_OVERRIDES.items() if k in params or k in kwargs})
    try:
        with _no_weight_init():
            net = cls(**kwargs)
    except Exception as err:
        raise CheckpointError(f'{_holds(path, arch, state, key)}; building {type_} failed: {err}') from err
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        own = net.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shape = [k for k in own if k in state and own[k].shape != state[k].shape]
        detail = '; '.join(
            f'{name} {len(ks)} (e.g. {ks[:3]})'
            for name, ks in (('missing', missing), ('unexpected', unexpected), ('shape mismatch', shape))
            if ks
        )
        raise CheckpointError(
            f'{_holds(path, arch, state, key)}; its weights do not fit {type_}({kwargs}): {detail}'
        ) from err
    net.eval().requires_grad_(False)
    info.update(path=path, params_key=key, opt_path=opt_path)
    return net.to(device), info
