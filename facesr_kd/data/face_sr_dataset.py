"""Aligned face pairs (LR, HR) with the facial component boxes of each face."""

import os.path as osp
import random

from facesr_kd.data.degradations import RealisticDownscale, jpeg, quantise
from facesr_kd.face.components import flip_boxes, load_boxes_file, template_boxes
from facesr_kd.face.image_io import IMAGE_EXTENSIONS

import numpy as np
import torch
from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data


def downscale_like_prepare(img_gt, scale):
    """The LR face the prepare script writes: MATLAB bicubic 1/scale, rounded to 8 bits.

    Args:
        img_gt (ndarray): (H, W, 3) float32 in [0, 1].
        scale (int): Downscale factor.

    Returns:
        ndarray: (H/scale, W/scale, 3) float32 in [0, 1], multiples of 1/255.
    """
    return quantise(imresize(img_gt, 1 / scale))


@DATASET_REGISTRY.register()
class FaceSRDataset(data.Dataset):
    """Aligned HR faces, their LR versions and their component boxes (left eye, right eye, nose, mouth).

    HR faces come from a folder (all images below it, sorted), a ``meta_info`` list of paths relative to it,
    or an LMDB; LR faces from a folder with the same relative paths (or an LMDB), or are made on the fly with
    the prepare script's MATLAB bicubic downscaling. HR faces must be ``gt_size`` square: any other size is an
    error (resizing would change the ground truth silently; prepare the data at the size you train at).

    Options (besides BasicSR's ``name``, ``type``, ``phase``, ``scale``, batch and worker keys):
        dataroot_gt (str): HR folder, or HR ``.lmdb`` with ``io_backend.type: lmdb``.
        dataroot_lq (str, optional): LR folder or ``.lmdb``; absent: LR made from the HR.
        meta_info_file (str, optional): HR paths relative to ``dataroot_gt``, one per line (first token).
            With LMDB, default: ``dataroot_gt/meta_info.txt``.
        io_backend (dict): ``type: disk`` or ``type: lmdb``.
        boxes_file (str, optional): ``boxes.json`` from ``facesr-kd-prepare`` (keys: HR paths
            relative to ``dataroot_gt``; for LMDB the key plus ``.png``).
        box_source (str, optional): ``file`` (the default when ``boxes_file`` is given) or ``template``
            (fixed FFHQ-template boxes, for aligned faces without landmarks). One of the two must be stated.
        scale (int): 8 (default) or any divisor of ``gt_size``.
        gt_size (int): HR side, 256 by default.
        use_hflip (bool): Random horizontal flip in the train phase (boxes mirrored, eyes swapped).
        phase (str): ``train`` augments; anything else does not.
        degradation (dict | bool, optional): train phase, LR made on the fly: draw a realistic chain per face
            (resizing kernel, blur, noise, JPEG; ``facesr_kd.data.degradations``); ``true`` for the defaults,
            a dict to override them. Ignored outside the train phase.
        lq_jpeg_quality (int, optional): LR made on the fly, then JPEG-compressed at this quality (1–100): the
            fixed JPEG benchmark.

    Each item: ``lq`` (3, gt_size/scale, gt_size/scale) and ``gt`` (3, gt_size, gt_size) RGB float tensors in
    [0, 1], ``boxes`` (4, 4) float32 ``[x1, y1, x2, y2]`` in ``gt`` pixels (components order, left = image
    left), ``lq_path`` and ``gt_path``. ``self.box_source`` says where the boxes come from (``landmarks68``,
    ``landmarks5`` or ``template``).
    """

    OPTION_KEYS = ('boxes_file', 'box_source', 'degradation', 'lq_jpeg_quality')

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.scale = int(opt.get('scale') or 8)
        self.gt_size = int(opt.get('gt_size') or 256)
        if self.gt_size % self.scale:
            raise ValueError(f'FaceSRDataset: gt_size {self.gt_size} is not divisible by scale {self.scale}')
        self.lq_size = self.gt_size // self.scale
        self.gt_folder = opt['dataroot_gt']
        self.lq_folder = opt.get('dataroot_lq')
        self.use_hflip = bool(opt.get('use_hflip', False)) and opt.get('phase') == 'train'
        self.io_backend_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        self.file_client = None
        self._init_degradation(opt)

        backend = self.io_backend_opt.get('type', 'disk')
        if backend == 'lmdb':
            self.io_backend_opt['db_paths'] = [self.gt_folder] + ([self.lq_folder] if self.lq_folder else [])
            self.io_backend_opt['client_keys'] = ['gt'] + (['lq'] if self.lq_folder else [])
            meta = opt.get('meta_info_file') or osp.join(self.gt_folder, 'meta_info.txt')
            self.paths = self._read_meta(meta)
        elif backend == 'disk':
            if opt.get('meta_info_file'):
                self.paths = self._read_meta(opt['meta_info_file'])
            else:
                self.paths = self._scan(self.gt_folder)
        else:
            raise ValueError(f'FaceSRDataset: io_backend type must be disk or lmdb, got {backend!r}')
        if not self.paths:
            raise ValueError(f'FaceSRDataset: no HR faces found in {self.gt_folder}')
        self.backend = backend
        self._init_boxes(opt)

    def _init_degradation(self, opt):
        degradation, quality = opt.get('degradation'), opt.get('lq_jpeg_quality')
        if (degradation or quality is not None) and self.lq_folder:
            raise ValueError(
                'FaceSRDataset: degradation and lq_jpeg_quality make the LR faces on the fly; '
                f'drop dataroot_lq ({self.lq_folder}) or those options'
            )
        if degradation not in (None, False, True) and not isinstance(degradation, dict):
            raise ValueError(f'FaceSRDataset: degradation must be true or a dict of options, got {degradation!r}')
        use = bool(degradation) and opt.get('phase') == 'train'
        self.degrade = RealisticDownscale(degradation if isinstance(degradation, dict) else None) if use else None
        if quality is not None and (
            isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100
        ):
            raise ValueError(f'FaceSRDataset: lq_jpeg_quality must be an integer in 1..100, got {quality!r}')
        self.lq_jpeg_quality = quality

    def make_lq(self, img_gt):
        """The LR face of ``img_gt`` when none is on disk: MATLAB bicubic, or a drawn degradation chain in
        training with ``degradation``, then JPEG at ``lq_jpeg_quality`` when given."""
        if self.degrade is not None:
            img_lq = self.degrade(img_gt, self.lq_size)
        else:
            img_lq = downscale_like_prepare(img_gt, self.scale)
        if self.lq_jpeg_quality is not None:
            img_lq = jpeg(img_lq, self.lq_jpeg_quality)
        return img_lq

    @staticmethod
    def _read_meta(path):
        with open(path) as f:
            return [line.split(' ')[0].strip() for line in f if line.strip()]

    @staticmethod
    def _scan(folder):
        from basicsr.utils import scandir

        return sorted(
            p.replace(osp.sep, '/') for p in scandir(folder, recursive=True) if p.lower().endswith(IMAGE_EXTENSIONS)
        )

    def _init_boxes(self, opt):
        boxes_file, source = opt.get('boxes_file'), opt.get('box_source')
        if boxes_file:
            if source not in (None, 'file'):
                raise ValueError(
                    f'FaceSRDataset: box_source {source!r} contradicts boxes_file {boxes_file}; '
                    'use box_source: file or drop boxes_file'
                )
            boxes, meta = load_boxes_file(boxes_file)
            if meta['size'] != self.gt_size:
                raise ValueError(
                    f'FaceSRDataset: {boxes_file} holds boxes for {meta["size"]}px faces, gt_size is {self.gt_size}'
                )
            self.box_source = meta['source']
            # One (N, 4, 4) array: no per-face Python objects to copy into every dataloader worker.
            self.boxes = np.zeros((len(self.paths), 4, 4), dtype=np.float32)
            missing = []
            for i, rel in enumerate(self.paths):
                box = boxes.get(rel)
                if box is None:
                    box = boxes.get(osp.splitext(rel)[0] + '.png')
                if box is None:
                    missing.append(rel)
                else:
                    self.boxes[i] = box
            if missing:
                raise ValueError(
                    f'FaceSRDataset: {len(missing)} faces have no boxes in {boxes_file}, e.g. '
                    f'{missing[:3]}; prepare the boxes with facesr-kd-prepare'
                )
        elif source == 'template':
            self.box_source = 'template'
            self.boxes = np.broadcast_to(template_boxes(self.gt_size).astype(np.float32), (len(self.paths), 4, 4))
        else:
            raise ValueError(
                'FaceSRDataset: give boxes_file (from facesr-kd-prepare), or state '
                'box_source: template to use the fixed FFHQ-template boxes'
            )

    def _read(self, rel, folder, client_key, size):
        if self.backend == 'lmdb':
            path = osp.splitext(rel)[0]
        else:
            path = osp.join(folder, rel)
        img_bytes = self.file_client.get(path, client_key)
        if img_bytes is None:
            raise FileNotFoundError(f'FaceSRDataset: {path} not found in {folder}')
        img = imfrombytes(img_bytes, float32=True)
        if img.shape[:2] != (size, size):
            raise ValueError(
                f'FaceSRDataset: {osp.join(folder, rel)} is {img.shape[1]}x{img.shape[0]}, expected '
                f'{size}x{size} (gt_size {self.gt_size}, scale {self.scale}); prepare the faces at '
                'that size (facesr-kd-prepare --size/--scale)'
            )
        return img, path

    def __getitem__(self, index):
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop('type', 'disk'), **self.io_backend_opt)
        rel = self.paths[index]
        img_gt, gt_path = self._read(rel, self.gt_folder, 'gt', self.gt_size)
        if self.lq_folder:
            img_lq, lq_path = self._read(rel, self.lq_folder, 'lq', self.lq_size)
        else:
            img_lq, lq_path = self.make_lq(img_gt), gt_path
        boxes = np.array(self.boxes[index], dtype=np.float32)
        if self.use_hflip and random.random() < 0.5:
            img_gt, img_lq = img_gt[:, ::-1].copy(), img_lq[:, ::-1].copy()
            boxes = flip_boxes(boxes, self.gt_size)
        img_gt, img_lq = img2tensor([img_gt, img_lq], bgr2rgb=True, float32=True)
        return {'lq': img_lq, 'gt': img_gt, 'boxes': torch.from_numpy(boxes), 'lq_path': lq_path, 'gt_path': gt_path}

    def __len__(self):
        return len(self.paths)
