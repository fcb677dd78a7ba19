"""Publish a training checkpoint as an inference-only, hash-named file with a JSON manifest.

A training run leaves ``experiments/<name>/models/net_g_<iter>.pth`` files holding ``params``, often
``params_ema``, and sometimes training-only networks (the distillation's feature ``adapter``). Publishing keeps
what inference needs::

    {'params': <the EMA weights when present, else params>, 'arch': {...}, 'scale': int}

and writes it as ``<out_dir>/<name>-<sha256[:8]>.pth``, the naming BasicSR, GFPGAN and ``torch.hub`` use (the
hex digits after the last ``-`` begin the file's SHA-256; :func:`facesr_kd.utils.checkpoint.load_file` checks
them on every load, so a corrupt or truncated download is refused). Beside it, ``<name>-<sha256[:8]>.json``
records the full hash, size, arch, sizes, the source checkpoint and its hash, the commands and option file
that produced it, the facesr_kd version and what was dropped.

The output depends only on the source's weights and arch: publishing the same checkpoint twice gives
byte-identical files.
"""

import hashlib
import io
import os
import re

from facesr_kd.utils.checkpoint import (
    CheckpointError,
    _plain_arch,
    arch_from_options,
    check_arch_limits,
    check_finite,
    describe_arch,
    file_sha256,
    find_option_file,
    load_file,
    load_sr_network,
    strip_module_prefix,
)
from facesr_kd.utils.files import write_bytes, write_json
from facesr_kd.utils.options import OptionError, read_option_text
from facesr_kd.version import __version__

import torch

HASH_LEN = 8
KEYS = ('auto', 'params_ema', 'params')
_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.+-]*$')
# Keys of a BasicSR training state (``training_states/<iter>.state``), never network weights.
_STATE_KEYS = {'optimizers', 'schedulers', 'iter', 'epoch'}


def _refuse_state(path):
    raise CheckpointError(
        f'{path}: is a BasicSR training state (epoch, iter, optimizer and scheduler states, for --auto_resume), '
        'not network weights; publish the matching experiments/<name>/models/net_g_<iter>.pth instead'
    )


def _pick_weights(path, ckpt, key):
    """The state dict to publish, the key it came from, and the top-level keys left behind."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path}: holds a {type(ckpt).__name__}, not a state dict or a checkpoint dict')
    if 'params' not in ckpt and 'params_ema' not in ckpt:
        if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            if key != 'auto':
                raise CheckpointError(f'{path}: is a plain state dict with no `{key}` entry; use --key auto')
            return dict(ckpt), '(plain state dict)', []
        if _STATE_KEYS & set(ckpt):
            _refuse_state(path)
        raise CheckpointError(f'{path}: no `params` / `params_ema` state dict; top-level keys: {sorted(ckpt)[:10]}')
    if key == 'auto':
        key = 'params_ema' if isinstance(ckpt.get('params_ema'), dict) else 'params'
    if not isinstance(ckpt.get(key), dict):
        present = [k for k in ('params', 'params_ema') if isinstance(ckpt.get(k), dict)]
        raise CheckpointError(f'{path}: has no `{key}` state dict (it has {present}); use --key auto')
    state = ckpt[key]
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f'{path}: `{key}` is not a state dict of tensors')
    dropped = sorted(k for k in ckpt if k not in (key, 'arch', 'scale'))
    return state, key, dropped


def _arch_and_scale(path, ckpt, opt_path):
    """The ``arch`` options and scale: the option file's when given or when the checkpoint has none."""
    arch = ckpt.get('arch') if isinstance(ckpt, dict) and isinstance(ckpt.get('arch'), dict) else None
    scale = ckpt.get('scale') if isinstance(ckpt, dict) and isinstance(ckpt.get('scale'), int) else None
    found = opt_path or find_option_file(path)
    opt_text = None
    if found is not None:
        try:
            opt_text = read_option_text(found)  # bounded in size and alias expansion
        except OptionError as err:
            raise CheckpointError(str(err)) from None
        if opt_path is not None or arch is None:
            arch, scale = arch_from_options(opt_text, found, path, scale)
    if arch is None:
        raise CheckpointError(
            f'{path}: has no `arch` entry and no option file next to its experiment says which network it is: '
            'pass the option file it was trained with (--opt)'
        )
    try:
        arch = _plain_arch(arch)
    except ValueError as err:
        raise CheckpointError(f'{path}: {err}') from err
    return arch, scale, found, opt_text


def _serialise(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def publish_checkpoint(ckpt, out_dir, name=None, key='auto', commands=None, opt_path=None):
    """Write an inference-only copy of a checkpoint as ``<out_dir>/<name>-<sha256[:8]>.pth`` plus a manifest.

    Args:
        ckpt (str): A training checkpoint: facesr_kd's (``params``, ``params_ema``, ``arch``, ``scale``, extra
            networks) or BasicSR's ``net_g_*.pth`` (described by the option file next to its experiment, see
            :func:`facesr_kd.utils.checkpoint.find_option_file`, or by ``opt_path``).
        out_dir (str): Output folder (created if needed).
        name (str | None): File name stem; default ``<arch type>_x<scale>`` (e.g. ``LiteFaceStudent_x8``).
            Letters, digits, ``_``, ``.``, ``+`` and ``-`` only (no folders).
        key (str): ``'auto'`` (``params_ema`` when present, else ``params``), ``'params_ema'`` or ``'params'``.
        commands (list[str] | None): The commands that produced the checkpoint, recorded in the manifest.
        opt_path (str | None): Option file whose ``network_g`` (and ``scale``) describe the network; it wins over
            the checkpoint's ``arch``.

    Returns:
        tuple[str, dict]: The published ``.pth`` path and the manifest (also written beside it as ``.json``).

    Raises:
        FileNotFoundError: No such checkpoint or option file.
        CheckpointError: A training state, a file that is not a checkpoint, a missing ``key``, an arch that
            cannot be told or has sizes outside :data:`~facesr_kd.utils.checkpoint.ARCH_INT_LIMITS`, weights
            holding NaN or infinite values (the first such tensor is named), or weights that do not load into it.
        ValueError: A bad ``key`` or ``name``.
    """
    if key not in KEYS:
        raise ValueError(f'key must be one of {KEYS}, got {key!r}')
    if name is not None and not _NAME_RE.match(name):
        raise ValueError(f'name must be letters, digits, `_`, `.`, `+` or `-` (no folders), got {name!r}')
    if not os.path.isfile(ckpt):
        raise FileNotFoundError(f'checkpoint not found: {ckpt}')
    if ckpt.endswith('.state'):
        _refuse_state(ckpt)
    raw = load_file(ckpt)
    state, used_key, dropped = _pick_weights(ckpt, raw, key)
    arch, scale, found_opt, opt_text = _arch_and_scale(ckpt, raw, opt_path)

    import facesr_kd  # noqa: F401  (registers the archs)

    from basicsr.utils.registry import ARCH_REGISTRY

    # Before anything is written (issue 25): the sizes the arch may take, and weights without NaN or Inf.
    check_arch_limits(arch, ckpt if opt_path is None else f'{found_opt} (describing {ckpt})')
    check_finite(state, f'{ckpt} (`{used_key}`)')
    if arch['type'] not in ARCH_REGISTRY:
        raise CheckpointError(f'{ckpt}: `{arch["type"]}` is not a registered arch')
    sizes = describe_arch(arch, ARCH_REGISTRY.get(arch['type']), scale=scale)
    # Own, contiguous storages: nothing of the dropped entries (or of a larger shared storage) is written.
    params = {k: v.detach().cpu().contiguous().clone() for k, v in strip_module_prefix(state).items()}
    data = _serialise({'params': params, 'arch': arch, 'scale': sizes['scale']})

    sha256 = hashlib.sha256(data).hexdigest()
    stem = f'{name or arch["type"] + "_x" + str(sizes["scale"])}-{sha256[:HASH_LEN]}'
    path = os.path.join(out_dir, f'{stem}.pth')
    write_bytes(path, data)
    try:
        _, info = load_sr_network(path)  # checks the hash, the strict load and the sizes
    except CheckpointError:
        os.remove(path)
        raise
    manifest = {
        'file': os.path.basename(path),
        'sha256': sha256,
        'size': len(data),
        'type': arch['type'],
        'arch': arch,
        'scale': info['scale'],
        'lq_size': info['lq_size'],
        'out_size': info['out_size'],
        'needs_boxes': info['needs_boxes'],
        'num_params': int(sum(v.numel() for v in params.values())),
        'source': {
            'checkpoint': os.path.abspath(ckpt),
            'sha256': file_sha256(ckpt),
            'size': os.path.getsize(ckpt),
            'params_key': used_key,
            'option_file': os.path.abspath(found_opt) if found_opt else None,
            'option_file_sha256': file_sha256(found_opt) if found_opt else None,
            'options': opt_text,
        },
        'commands': list(commands or []),
        'dropped': dropped,
        'facesr_kd_version': __version__,
        'torch_version': torch.__version__,
    }
    write_json(os.path.join(out_dir, f'{stem}.json'), manifest, indent=2)
    return path, manifest
