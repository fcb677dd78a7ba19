"""Build the teacher's component dictionaries from prepared HR faces.

For every face: VGG19 encoder features (relu2_2, relu3_4, relu4_4, conv5_4) of the HR face at the output size,
component crops (left eye, right eye, nose, mouth) per level resized to the dictionary templates, exactly as
the teacher crops them. Per component and level, streaming mini-batch K-means (scikit-learn's
``MiniBatchKMeans.partial_fit``) turns the crops into K atoms, so memory stays bounded whatever the number of
faces: about ``max(kmeans_batch, K)`` crops per component and level are buffered, plus the centres. Faces are
visited in a seeded random order. The output file is what ``DFDNetTeacher(dict_path=...)`` loads.

K-means needs at least K crops: with fewer faces than ``--num-atoms`` the builder stops with an error (it does
not silently build a smaller dictionary, which the teacher would refuse anyway).

Example::

    facesr-kd-dictionary --gt-dir datasets/vggface2_256/train/hr \\
        --boxes datasets/vggface2_256/train/boxes.json -o datasets/vggface2_256/dictionary_k512.pth
"""

import os
import sys
from pathlib import Path

from facesr_kd.archs.component_dictionary import LEVELS, dictionary_shapes, extract_component_crops
from facesr_kd.archs.component_dictionary import save_dictionary as save_dictionary_file
from facesr_kd.archs.vgg19 import VGG19Features
from facesr_kd.face.components import load_boxes_file, template_boxes
from facesr_kd.face.image_io import IMAGE_EXTENSIONS

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

RANDOM_VGG_WARNING = (
    '\n' + '!' * 100 + '\n'
    '!! WARNING: --vgg-random: the encoder has RANDOM weights. The dictionary is only good for testing the code\n'
    '!! path; it is NOT meaningful and must not be used to train or evaluate a teacher.\n' + '!' * 100 + '\n'
)


def list_faces(gt_dir, meta_info=None, start=None, end=None, limit=None):
    """Keys (paths relative to ``gt_dir``, POSIX style) of the HR faces to use, sorted.

    Args:
        gt_dir (str): Folder of HR faces (searched recursively).
        meta_info (str | None): BasicSR meta-info file; the first token of each line is a key. Default: every
            image under ``gt_dir``.
        start (str | None): Keep keys whose path without extension is >= ``start`` (string order, e.g. '00100').
        end (str | None): Keep keys whose path without extension is <= ``end``.
        limit (int | None): Keep the first ``limit`` keys after filtering.

    Returns:
        list[str]: Keys.
    """
    if not os.path.isdir(gt_dir):
        raise FileNotFoundError(f'--gt-dir {gt_dir} is not a folder')
    if meta_info:
        with open(meta_info) as f:
            keys = sorted(line.split()[0] for line in f if line.strip())
    else:
        root = Path(gt_dir)
        keys = sorted(p.relative_to(root).as_posix() for p in root.rglob('*') if p.suffix.lower() in IMAGE_EXTENSIONS)
    stem = lambda k: os.path.splitext(k)[0]  # noqa: E731
    keys = [k for k in keys if (start is None or stem(k) >= start) and (end is None or stem(k) <= end)]
    if limit is not None:
        keys = keys[:limit]
    if not keys:
        raise ValueError(f'no faces selected in {gt_dir} (meta_info={meta_info}, start={start}, end={end})')
    return keys


def face_boxes(keys, out_size, boxes_file=None, use_template=False):
    """Component boxes of every face in output pixels.

    Args:
        keys (list[str]): Face keys.
        out_size (int): Output size (boxes are scaled from the box file's face size to it).
        boxes_file (str | None): JSON box file (``facesr_kd.face.components.save_boxes_file``).
        use_template (bool): Use the fixed FFHQ-template boxes for every face instead.

    Returns:
        tuple[ndarray, int | None]: (N, 4, 4) float32 boxes, and the HR size of the box file (None: template).
    """
    if use_template == (boxes_file is not None):
        raise ValueError('give exactly one of --boxes FILE and --template-boxes')
    if use_template:
        return np.repeat(template_boxes(out_size)[None].astype(np.float32), len(keys), axis=0), None
    boxes, meta = load_boxes_file(boxes_file)
    missing = [k for k in keys if k not in boxes]
    if missing:
        raise KeyError(
            f'{len(missing)} selected faces have no boxes in {boxes_file} (e.g. {missing[:3]}); keys '
            'must be paths relative to --gt-dir. Re-run the data preparation or use --template-boxes.'
        )
    scale = out_size / meta['size']
    return np.stack([boxes[k] for k in keys]).astype(np.float32) * scale, meta['size']


class HRFaces(Dataset):
    """HR faces as (3, out_size, out_size) RGB tensors in [0, 1], with their boxes."""

    def __init__(self, gt_dir, keys, boxes, out_size, hr_size):
        self.gt_dir, self.keys, self.boxes = gt_dir, keys, boxes
        self.out_size, self.hr_size = out_size, hr_size

    def __len__(self):
        return len(self.keys)

    def __getitem__(self, i):
        path = os.path.join(self.gt_dir, self.keys[i])
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f'cannot read image {path}')
        h, w = img.shape[:2]
        if self.hr_size is not None and (h, w) != (self.hr_size, self.hr_size):
            raise ValueError(f'{path} is {w}x{h} but its boxes are for {self.hr_size}x{self.hr_size} faces')
        if (h, w) != (self.out_size, self.out_size):
            interp = cv2.INTER_AREA if h > self.out_size else cv2.INTER_CUBIC
            img = cv2.resize(img, (self.out_size, self.out_size), interpolation=interp)
        img = torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1))).float() / 255
        return img, torch.from_numpy(self.boxes[i])


def build_dictionary(
    gt_dir,
    output,
    keys=None,
    boxes_file=None,
    use_template_boxes=False,
    num_atoms=512,
    out_size=256,
    batch_size=16,
    kmeans_batch=1024,
    epochs=1,
    seed=0,
    vgg_weights=None,
    vgg_random=False,
    device='cpu',
    num_workers=0,
    progress=True,
):
    """Build a component dictionary and write it to ``output``.

    Args:
        gt_dir (str): Folder of prepared HR faces.
        output (str): Output ``.pth`` (the file ``DFDNetTeacher`` loads).
        keys (list[str] | None): Faces to use (paths relative to ``gt_dir``); default: all (:func:`list_faces`).
        boxes_file (str | None): JSON box file of the faces.
        use_template_boxes (bool): Use the FFHQ-template boxes instead of a box file.
        num_atoms (int): Atoms per component and level (K).
        out_size (int): Output size of the teacher (faces are resized to it).
        batch_size (int): Faces per encoder batch.
        kmeans_batch (int): Crops per K-means update (at least K are used for the first one).
        epochs (int): Passes over the faces.
        seed (int): Seed of the face order, K-means and (with ``vgg_random``) the encoder.
        vgg_weights (str | None): ImageNet VGG19 weights file; None: torchvision's cache.
        vgg_random (bool): Random encoder weights (tests only; the dictionary is not meaningful).
        device (str): Device of the encoder.
        num_workers (int): Image-loading workers.
        progress (bool): Show a progress bar.

    Returns:
        dict: The saved dictionary (file format of :mod:`facesr_kd.archs.component_dictionary`).
    """
    from sklearn.cluster import MiniBatchKMeans

    keys = list_faces(gt_dir) if keys is None else list(keys)
    if len(keys) < num_atoms:
        raise ValueError(
            f'{len(keys)} faces give {len(keys)} crops per component and level, fewer than '
            f'num_atoms={num_atoms}: use more faces or a smaller --num-atoms'
        )
    boxes, hr_size = face_boxes(keys, out_size, boxes_file, use_template_boxes)
    torch.manual_seed(seed)
    if vgg_random:
        print(RANDOM_VGG_WARNING, file=sys.stderr, flush=True)
    try:
        encoder = VGG19Features(LEVELS, pretrained=not vgg_random, weights_path=vgg_weights).to(device).eval()
    except FileNotFoundError as e:
        raise FileNotFoundError(f'{e} (here: --vgg-weights FILE)') from e
    shapes = dictionary_shapes(out_size)
    chunk = max(kmeans_batch, num_atoms)
    kmeans = {
        key: MiniBatchKMeans(
            n_clusters=num_atoms, batch_size=chunk, n_init=1, compute_labels=False, random_state=seed + i
        )
        for i, key in enumerate(shapes)
    }
    buffers = {key: [] for key in shapes}

    def flush(key, force=False):
        rows = sum(len(b) for b in buffers[key])
        initialised = hasattr(kmeans[key], 'cluster_centers_')
        if rows and (rows >= chunk or (force and (initialised or rows >= num_atoms))):
            kmeans[key].partial_fit(np.concatenate(buffers[key]))
            buffers[key] = []

    dataset = HRFaces(gt_dir, keys, boxes, out_size, hr_size)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size, shuffle=True, num_workers=num_workers, generator=generator)
    bar = tqdm(total=epochs * len(loader), desc='dictionary', unit='batch', disable=not progress)
    with torch.no_grad():
        for _ in range(epochs):
            for imgs, batch_boxes in loader:
                crops = extract_component_crops(encoder(imgs.to(device)), batch_boxes, out_size)
                for key, crop in crops.items():
                    buffers[key].append(crop.flatten(1).float().cpu().numpy())
                    flush(key)
                bar.update()
            for key in shapes:
                flush(key, force=True)
    bar.close()
    atoms = {
        key: torch.from_numpy(kmeans[key].cluster_centers_.astype(np.float32)).view(num_atoms, *shape)
        for key, shape in shapes.items()
    }
    return save_dictionary_file(
        output,
        atoms,
        out_size,
        num_faces=len(keys),
        seed=int(seed),
        epochs=int(epochs),
        vgg='random' if vgg_random else 'imagenet',
        boxes='template' if use_template_boxes else os.path.basename(boxes_file),
    )
