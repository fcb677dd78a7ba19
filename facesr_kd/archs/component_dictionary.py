"""Facial component dictionaries: feature levels, component crops and the dictionary file.

The same crop function serves the dictionary builder (``facesr-kd-dictionary``, on HR faces) and the
teacher (on the upsampled LR input), so that atoms and crops are comparable.

Dictionary file, written by :func:`save_dictionary` and read by :func:`load_dictionary_file`: a ``torch.save``
dict of plain tensors, strings and ints (loadable with ``weights_only=True``)::

    {'out_size': int, 'num_atoms': int, 'components': [...], 'levels': [...],
     'atoms': {'<component>.<level>': Tensor(K, C, t, t)}, ...optional str/int metadata}

The atoms in the file are raw encoder features (K-means centres).
"""

import os
from collections import OrderedDict

from facesr_kd.face.components import COMPONENTS, template_sizes
from facesr_kd.utils.files import torch_save

import torch
import torch.nn.functional as F
from torch import nn

LEVELS = ('relu2_2', 'relu3_4', 'relu4_4', 'conv5_4')
LEVEL_STRIDES = {'relu2_2': 2, 'relu3_4': 4, 'relu4_4': 8, 'conv5_4': 16}
LEVEL_CHANNELS = {'relu2_2': 128, 'relu3_4': 256, 'relu4_4': 512, 'conv5_4': 512}
ADAIN_EPS = 1e-5


def dictionary_key(component, level):
    """Key of one component at one level in the dictionary file, e.g. ``'left_eye.relu2_2'``."""
    return f'{component}.{level}'


def dictionary_shapes(out_size):
    """Atom shape per dictionary key for an output size.

    Args:
        out_size (int): Output face size (a multiple of 16).

    Returns:
        OrderedDict[str, tuple[int, int, int]]: ``'<component>.<level>'`` to ``(C, t, t)``.
    """
    shapes = OrderedDict()
    for level in LEVELS:
        sizes = template_sizes(out_size, LEVEL_STRIDES[level])
        for component, t in zip(COMPONENTS, sizes):
            shapes[dictionary_key(component, level)] = (LEVEL_CHANNELS[level], t, t)
    return shapes


def calc_mean_std(x, eps=ADAIN_EPS):
    """Per-sample, per-channel mean and std over space (population variance + ``eps``).

    Args:
        x (Tensor): (N, C, h, w).

    Returns:
        tuple[Tensor, Tensor]: mean and std, each (N, C, 1, 1).
    """
    var, mean = torch.var_mean(x, dim=(2, 3), correction=0, keepdim=True)
    return mean, (var + eps).sqrt()


def standardize(x):
    """Per-sample, per-channel zero mean and exactly unit (population) variance; constant channels become 0.

    A channel is constant when its variance is below float rounding of its mean (``var <= 1e-10 * mean^2``).

    Args:
        x (Tensor): (N, C, h, w).

    Returns:
        Tensor: (N, C, h, w).
    """
    var, mean = torch.var_mean(x, dim=(2, 3), correction=0, keepdim=True)
    constant = var <= 1e-10 * mean.square() + 1e-30
    return torch.where(constant, 0, (x - mean) / var.clamp_min(1e-30).sqrt())


def normalize_atoms(atoms):
    """Atoms as the AdaIN transfer stores them: :func:`standardize` per atom and channel.

    AdaIN of atom ``a`` to a crop with statistics ``(m, s)`` (:func:`calc_mean_std`) is
    ``normalize_atoms(a) * s + m``. The atom's variance gets no ``eps``, so every non-constant channel of a
    normalised atom has the same norm and the matching score is scale-free (an atom equal to the crop wins
    whatever the magnitude of the features); the crop's std keeps AdaIN's ``eps``.

    Args:
        atoms (Tensor): (K, C, t, t).

    Returns:
        Tensor: (K, C, t, t).
    """
    return standardize(atoms)


def feature_boxes(boxes, stride, height, width):
    """Component boxes in the integer pixels of a feature level, clamped, at least one pixel each.

    Args:
        boxes (Tensor | ndarray): (B, N, 4) ``[x1, y1, x2, y2]`` in output pixels (``x2``/``y2`` exclusive).
        stride (int): Level stride.
        height (int): Feature map height.
        width (int): Feature map width.

    Returns:
        Tensor: (B, N, 4) int64 on the CPU, ``0 <= x1 < x2 <= width`` and ``0 <= y1 < y2 <= height``.
    """
    boxes = torch.as_tensor(boxes).detach().to('cpu', torch.float64)
    if boxes.dim() != 3 or boxes.shape[-1] != 4:
        raise ValueError(f'boxes must be (B, N, 4), got {tuple(boxes.shape)}')
    if not torch.isfinite(boxes).all():
        raise ValueError('boxes contain NaN or infinite values')
    fb = torch.floor(boxes / stride).long()
    x1 = fb[..., 0].clamp(0, width - 1)
    y1 = fb[..., 1].clamp(0, height - 1)
    x2 = torch.maximum(fb[..., 2].clamp(max=width), x1 + 1)
    y2 = torch.maximum(fb[..., 3].clamp(max=height), y1 + 1)
    return torch.stack([x1, y1, x2, y2], dim=-1)


def group_by_shape(fboxes):
    """Sample indices grouped by crop shape, so that equal-shaped crops are processed together.

    Args:
        fboxes (Tensor): (B, 4) integer boxes from :func:`feature_boxes` (one component).

    Returns:
        dict[tuple[int, int], list[int]]: ``(h, w)`` to the indices of the samples with that crop shape.
    """
    groups = {}
    for i, (x1, y1, x2, y2) in enumerate(fboxes.tolist()):
        groups.setdefault((y2 - y1, x2 - x1), []).append(i)
    return groups


def gather_crops(feat, fboxes, indices):
    """Stack equal-shaped crops of some samples.

    Args:
        feat (Tensor): (B, C, H, W).
        fboxes (Tensor): (B, 4) integer boxes.
        indices (list[int]): Samples whose crops all have the same shape.

    Returns:
        Tensor: (len(indices), C, h, w).
    """
    crops = []
    for i in indices:
        x1, y1, x2, y2 = fboxes[i].tolist()
        crops.append(feat[i, :, y1:y2, x1:x2])
    return torch.stack(crops)


def resize(x, size):
    """Bilinear resize (``align_corners=False``, no antialiasing); a no-op when the size already matches."""
    size = tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode='bilinear', align_corners=False)


def crop_resize(feat, fboxes, size):
    """Crop one box per sample and resize every crop to the template size.

    Args:
        feat (Tensor): (B, C, H, W) feature map.
        fboxes (Tensor): (B, 4) integer boxes from :func:`feature_boxes`.
        size (tuple[int, int]): Template size (t, t).

    Returns:
        Tensor: (B, C, t, t).
    """
    out = [None] * feat.shape[0]
    for indices in group_by_shape(fboxes).values():
        crops = resize(gather_crops(feat, fboxes, indices), size)
        for j, i in enumerate(indices):
            out[i] = crops[j]
    return torch.stack(out)


def extract_component_crops(feats, boxes, out_size):
    """Component crops of every level, resized to the dictionary templates.

    Args:
        feats (dict[str, Tensor]): Encoder features ``{level: (B, C, out_size / stride, out_size / stride)}``.
        boxes (Tensor | ndarray): (B, 4, 4) component boxes in output pixels, :data:`COMPONENTS` order.
        out_size (int): Output face size.

    Returns:
        OrderedDict[str, Tensor]: ``'<component>.<level>'`` to (B, C, t, t).
    """
    shapes = dictionary_shapes(out_size)
    crops = OrderedDict()
    for level in LEVELS:
        feat = feats[level]
        fb = feature_boxes(boxes, LEVEL_STRIDES[level], feat.shape[2], feat.shape[3])
        for ci, component in enumerate(COMPONENTS):
            key = dictionary_key(component, level)
            crops[key] = crop_resize(feat, fb[:, ci], shapes[key][1:])
    return crops


def save_dictionary(path, atoms, out_size, **meta):
    """Write a dictionary file (atomically).

    Args:
        path (str): Output ``.pth``.
        atoms (dict[str, Tensor]): ``'<component>.<level>'`` to (K, C, t, t) raw atoms, every key of
            :func:`dictionary_shapes`.
        out_size (int): Output face size the atoms belong to.
        **meta: Extra str/int/float entries (e.g. ``num_faces``, ``seed``, ``vgg``).

    Returns:
        dict: What was saved.
    """
    num_atoms = int(next(iter(atoms.values())).shape[0])
    data = {
        'out_size': int(out_size),
        'num_atoms': num_atoms,
        'components': list(COMPONENTS),
        'levels': list(LEVELS),
        'atoms': {k: v.detach().to('cpu', torch.float32).contiguous() for k, v in atoms.items()},
        **meta,
    }
    check_dictionary(data, out_size, num_atoms, source=path)
    torch_save(data, path)
    return data


def load_dictionary_file(path):
    """Read a dictionary file written by :func:`save_dictionary` (no code is executed).

    Raises:
        FileNotFoundError: The file does not exist; says how to build it.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'component dictionary {path} not found. Build it with facesr-kd-dictionary '
            '(e.g. `facesr-kd-dictionary --gt-dir <HR faces> --boxes <boxes.json> -o '
            f'{path}`) or load a teacher checkpoint that holds one.'
        )
    return torch.load(path, map_location='cpu', weights_only=True)


def check_dictionary(data, out_size, num_atoms, source='dictionary'):
    """Check that a dictionary fits a teacher; raise a ValueError saying what it holds otherwise.

    Args:
        data (dict): Dictionary in the file format.
        out_size (int): Expected output size.
        num_atoms (int): Expected number of atoms K.
        source (str): Name used in messages (a path).
    """
    if not isinstance(data, dict) or 'atoms' not in data:
        raise ValueError(f'{source} is not a component dictionary (no "atoms" entry)')
    held = (
        f'{source} holds out_size={data.get("out_size")}, num_atoms={data.get("num_atoms")}, '
        f'components={data.get("components")}, levels={data.get("levels")}'
    )
    if data.get('out_size') != out_size or data.get('num_atoms') != num_atoms:
        raise ValueError(f'{held}; expected out_size={out_size}, num_atoms={num_atoms}')
    if list(data.get('components', [])) != list(COMPONENTS) or list(data.get('levels', [])) != list(LEVELS):
        raise ValueError(f'{held}; expected components={list(COMPONENTS)}, levels={list(LEVELS)}')
    for key, shape in dictionary_shapes(out_size).items():
        atoms = data['atoms'].get(key)
        expected = (num_atoms, *shape)
        if atoms is None or tuple(atoms.shape) != expected:
            got = None if atoms is None else tuple(atoms.shape)
            raise ValueError(
                f'{held}; atoms[{key!r}] has shape {got}, expected {expected} (templates for out_size={out_size})'
            )


class ComponentDictionary(nn.Module):
    """The teacher's dictionary as registered buffers, so that it is saved and loaded with the network.

    The buffers hold the atoms normalised (:func:`normalize_atoms`), which is all the transfer needs: AdaIN of an
    atom to a crop is ``normalised_atom * crop_std + crop_mean``. Buffer ``loaded`` says whether
    a dictionary was loaded.

    Args:
        out_size (int): Output face size.
        num_atoms (int): Atoms per component and level (K).
    """

    def __init__(self, out_size, num_atoms):
        super().__init__()
        self.out_size = out_size
        self.num_atoms = num_atoms
        self.shapes = dictionary_shapes(out_size)
        for key, shape in self.shapes.items():
            self.register_buffer(self._name(key), torch.zeros(num_atoms, *shape))
        self.register_buffer('loaded', torch.tensor(False))

    @staticmethod
    def _name(key):
        return key.replace('.', '__')

    def atoms(self, component, level):
        """Normalised atoms (K, C, t, t) of one component at one level."""
        return getattr(self, self._name(dictionary_key(component, level)))

    def num_elements(self):
        """Number of stored atom values (the dictionary size)."""
        return sum(getattr(self, self._name(k)).numel() for k in self.shapes)

    @torch.no_grad()
    def load(self, path_or_dict):
        """Load atoms from a dictionary file (path) or an already loaded dictionary (dict).

        Raises:
            FileNotFoundError: No such file.
            ValueError: The dictionary does not fit (out_size, K, template shapes); says what it holds.
        """
        source = path_or_dict if isinstance(path_or_dict, str) else 'dictionary'
        data = load_dictionary_file(path_or_dict) if isinstance(path_or_dict, str) else path_or_dict
        check_dictionary(data, self.out_size, self.num_atoms, source=source)
        for key in self.shapes:
            buf = getattr(self, self._name(key))
            buf.copy_(normalize_atoms(data['atoms'][key].to(buf.device, torch.float32)))
        self.loaded.fill_(True)
