"""The model zoo: trained weights shipped inside the package, in ``facesr_kd/weights/``.

Each zoo model is a pair of files written by ``facesr-kd-publish`` (:func:`facesr_kd.publish.publish_checkpoint`,
or :func:`facesr_kd.zoo_publish.publish_zoo_model` for the shipped ones)::

    <name>-<sha256[:8]>.pth    inference-only weights, arch and scale
    <name>-<sha256[:8]>.json   its manifest: hash, sizes, data, commands, and (shipped models) ``quality``, ``cost``

The hex digits in the file name begin the file's SHA-256, and :func:`facesr_kd.utils.checkpoint.load_file` checks
them on every load: a corrupted or truncated zoo file is refused, never run.

:func:`list_models` lists the zoo (sorted by scale), :func:`resolve_model` turns what a user passes as ``--model``
(a checkpoint path or a zoo name) into a checkpoint path. The zoo folder is ``facesr_kd/weights/``, or the folder
named by the ``FACESR_KD_ZOO`` environment variable (the tests point it at a zoo of their own), or a ``root``
argument.
"""

import json
import os
from dataclasses import dataclass, field

from facesr_kd.utils.checkpoint import HASH_NAME_RE, CheckpointError, describe_arch, read_checkpoint

ZOO_ENV = 'FACESR_KD_ZOO'
PACKAGE_ZOO = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'weights')


@dataclass(frozen=True)
class ZooModel:
    """One zoo model.

    Attributes:
        name (str): Its zoo name (``lite-x8``): the manifest's ``name``, else the file stem before ``-<hash>``.
        path (str): The ``.pth`` file.
        scale (int): Upscale factor.
        in_size (int): Side of the LR face it takes.
        out_size (int): Side of the face it returns.
        manifest (dict): The ``.json`` manifest beside it (empty when there is none).
    """

    name: str
    path: str
    scale: int
    in_size: int
    out_size: int
    manifest: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def file(self):
        """The ``.pth`` file name."""
        return os.path.basename(self.path)


def zoo_root(root=None):
    """The zoo folder: ``root``, else ``$FACESR_KD_ZOO``, else the package's ``facesr_kd/weights``."""
    return os.path.abspath(os.path.expanduser(root or os.environ.get(ZOO_ENV) or PACKAGE_ZOO))


def _name_of(path, manifest):
    if isinstance(manifest.get('name'), str) and manifest['name']:
        return manifest['name']
    stem = os.path.splitext(os.path.basename(path))[0]
    match = HASH_NAME_RE.match(os.path.basename(path))
    return stem[: -len(match.group(1)) - 1] if match else stem


def _sizes(path, manifest):
    """(scale, lq_size, out_size) from the manifest, else from the checkpoint's own ``arch``."""
    if all(isinstance(manifest.get(k), int) for k in ('scale', 'lq_size', 'out_size')):
        return manifest['scale'], manifest['lq_size'], manifest['out_size']
    import facesr_kd  # noqa: F401  (registers the archs)

    from basicsr.utils.registry import ARCH_REGISTRY

    _, arch, scale, _ = read_checkpoint(path)
    if arch is None or arch.get('type') not in ARCH_REGISTRY:
        raise CheckpointError(f'{path}: a zoo file needs an `arch` entry naming a registered arch (publish it again)')
    info = describe_arch(arch, ARCH_REGISTRY.get(arch['type']), scale=scale)
    return info['scale'], info['lq_size'], info['out_size']


def list_models(root=None):
    """The models of the zoo, sorted by scale (then name).

    Every ``.pth`` of the folder is one model; its sizes come from the ``.json`` manifest beside it, or, without
    one, from the checkpoint's ``arch``. A missing folder is an empty zoo. Listing does not hash the files:
    loading them does (:func:`facesr_kd.utils.checkpoint.load_file`).

    Args:
        root (str | None): The zoo folder (see :func:`zoo_root`).

    Returns:
        list[ZooModel]: The models.

    Raises:
        CheckpointError: A manifest is not valid JSON, or a file without one has no usable ``arch``.
        ValueError: Two files have the same zoo name.
    """
    root = zoo_root(root)
    if not os.path.isdir(root):
        return []
    models = []
    for file in sorted(os.listdir(root)):
        path = os.path.join(root, file)
        if not file.endswith('.pth') or file.startswith('.') or not os.path.isfile(path):
            continue
        manifest_path = os.path.splitext(path)[0] + '.json'
        manifest = {}
        if os.path.isfile(manifest_path):
            try:
                with open(manifest_path, encoding='utf-8') as f:
                    manifest = json.load(f)
            except (OSError, ValueError) as err:
                raise CheckpointError(f'zoo manifest {manifest_path} cannot be read: {err}') from err
            if not isinstance(manifest, dict):
                raise CheckpointError(f'zoo manifest {manifest_path} is not a JSON object')
        scale, in_size, out_size = _sizes(path, manifest)
        models.append(ZooModel(_name_of(path, manifest), path, int(scale), int(in_size), int(out_size), manifest))
    names = [m.name for m in models]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f'zoo {root}: several files carry the name(s) {dupes}; keep one file per name')
    return sorted(models, key=lambda m: (m.scale, m.in_size, m.name))


def describe_zoo(models, root=None):
    """One line naming the zoo's models (for messages), or saying that it is empty."""
    if not models:
        return f'the model zoo ({zoo_root(root)}) is empty'
    listed = ', '.join(f'{m.name} (x{m.scale}, {m.in_size}->{m.out_size})' for m in models)
    return f'zoo models: {listed}'


def find_model(name, root=None):
    """The zoo model called ``name`` (also matched by its file name), or None."""
    for model in list_models(root):
        if name in (model.name, model.file):
            return model
    return None


def resolve_model(spec, root=None):
    """The checkpoint a ``--model`` value names: an existing file as it is, else the zoo model of that name.

    Args:
        spec (str): A checkpoint path or a zoo name (``lite-x8``; its file name works too).
        root (str | None): The zoo folder (see :func:`zoo_root`).

    Returns:
        str: The checkpoint path.

    Raises:
        FileNotFoundError: ``spec`` is neither a file nor a zoo name; the message lists the zoo and what to pass.
    """
    spec = os.fspath(spec)
    if os.path.isfile(spec):
        return spec
    models = list_models(root)
    model = next((m for m in models if spec in (m.name, m.file)), None)
    if model is not None:
        return model.path
    raise FileNotFoundError(
        f'--model {spec!r} is neither a checkpoint file nor a zoo model; {describe_zoo(models, root)}. Pass a '
        'zoo name (facesr-kd-models lists them), the path of a checkpoint (e.g. '
        'experiments/<name>/models/net_g_latest.pth), or leave --model out to use the whole zoo'
    )
