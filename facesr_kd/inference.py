"""Face super-resolution of real photos: detect, align, super-resolve, paste back.

:class:`FaceSRRestorer` and :func:`restore_paths` are the Python API behind ``facesr-kd-infer``, shaped like
GFPGAN's ``GFPGANer``: ``enhance(img, aligned=..., only_center_face=..., paste_back=...)`` returns
``(cropped_faces, restored_faces, restored_img)``.

Pipeline for a whole photo:

1. facexlib RetinaFace finds faces and their five landmarks (:mod:`facesr_kd.face.detection`; its weights come
   from a local folder, facexlib's parsing model is never loaded).
2. With the zoo's fully convolutional ``LiteFaceStudent`` (``crop_method='native'``, the default), each face is
   restored where it lies: the axis-aligned box of the photo around its aligned square, plus a margin of context,
   goes to the network at its own size (no resampling, no rotation); the model is the one of the upscale
   (:func:`choose_by_upscale`), and a face over ``keep_larger`` times the input that model was trained at is
   kept: upscaled with the photo, never shrunk. With another crop each face goes to the model its size calls for
   (:func:`choose_model`: the smallest LR input at least the face's native side, else the largest), cropped from
   the photo at that input side with one antialiased resampling (:func:`crop_face`). The other archs' faces are
   aligned to the FFHQ five-point template at the model's *output* size (256) with an anti-aliased warp, then
   shrunk to the model's input size (32) with MATLAB-style bicubic
   (``basicsr.utils.matlab_functions.imresize``). That is how the training pairs were made (aligned 256 crop,
   MATLAB bicubic x1/8), so the network sees inputs distributed like its training LR; a bilinear warp
   straight to 32x32 would point-sample the photo and alias. Real low-resolution faces are small: the 256
   crop is then an enlargement and the 32 input keeps what the photo has.
3. The network restores the faces in batches, in its cheapest correct CPU form (:func:`prepare_network`:
   eval and inference mode, no gradients, spectral norms baked into plain weights, channels-last memory
   format for the archs where that measured faster). Aligned faces come at the model's ``lq_size``
   (``out_size / scale``); native boxes at their own size, one at a time. The teacher needs component boxes: it
   finds them itself, by detecting the five landmarks on the bicubic-upsampled input (``box_source='detect'``,
   the teacher's own view; template boxes when the detector finds nothing) or from the fixed template boxes of
   an aligned face (``box_source='template'``). The time that costs is reported in :attr:`FaceSRRestorer.last_stats`.
4. For the paste-back, each restored face's low-frequency colour is made the photo's (``color_fix``,
   :mod:`facesr_kd.face.colour`: ``'wavelet'`` by default, CodeFormer's low-pass band transfer from the
   bicubic-upsampled network input; ``'meanstd'``: Lab mean / std matching; ``'none'``). The restored faces
   returned (and written to ``restored_faces/``, ``cmp/``) stay the network's own output, to judge the network
   by; the fix is part of the paste.
5. The photo is upscaled (Lanczos for ``'none'``, bicubic, or a learned upsampler). A native face is blended
   over the same box of it, feathered over the context margin (:func:`facesr_kd.face.align.paste_box`); an
   aligned face is warped back with the inverse similarity (times ``upscale``) and blended with facexlib's
   feathered mask (eroded, then blurred over a twentieth of the face's side: no seam).

Detection debug view: ``enhance(..., keep_rejected=True)`` keeps in ``last_stats['detections']`` every detection
down to :data:`DEBUG_CONF_FLOOR`, kept or not and why; ``restore_paths(..., draw_boxes=True)`` draws them
(:mod:`facesr_kd.face.debug_view`) into ``<output>/debug/<name>.png``.

Memory: only the input and the output photo are held at full size, in their own dtype; each face is pasted
within its own footprint, so per-face work does not grow with the photo. Outputs above ``max_pixels`` are
refused with a message (lower ``upscale``); inputs too large for that are refused from their file header,
before they are decoded.

Hostile input: :func:`restore_paths` checks that the outputs can be written before any work, skips (with the
reason) every input it cannot use, so one bad file never ends a batch, and never lets two inputs write the same
result (:func:`output_names`); :func:`list_inputs` reports what it does not try (hidden names, folders, broken
links, FIFOs). What a result loses of its input (frames after the first, an extension OpenCV cannot write) is
said, not silent.
"""

import os
import stat
import time

from facesr_kd.archs.arch_util import bake_spectral_norm
from facesr_kd.face import align, debug_view
from facesr_kd.face.colour import DEFAULT_COLOR_FIX, apply_color_fix, check_color_fix
from facesr_kd.face.components import boxes_from_landmarks5, template_boxes
from facesr_kd.face.image_io import WRITABLE_EXTS, ImageReadError, output_extension, read_image, write_image
from facesr_kd.utils.checkpoint import load_sr_network
from facesr_kd.utils.files import check_writable
from facesr_kd.zoo import describe_zoo, list_models, resolve_model, zoo_root

import cv2
import numpy as np
import torch
from tqdm import tqdm

BG_UPSAMPLERS = ('none', 'bicubic', 'realesrgan')
BOX_SOURCES = ('detect', 'template')
REALESRGAN_URL = 'https://github.com/xinntao/Real-ESRGAN/releases/download/v0.2.1/RealESRGAN_x2plus.pth'
DEFAULT_MAX_PIXELS = 64_000_000
# Lowest detector score shown (as rejected) by the debug view. The detector's forward pass is the same at any
# threshold, and its non-maximum suppression is greedy by score, so the faces kept at ``conf_threshold`` are
# exactly those of a detection at this floor that pass ``conf_threshold`` (only cheap post-processing is added).
DEBUG_CONF_FLOOR = 0.5
# Aligned face crops are square; sides that differ by at most this fraction are resized as they are.
ALIGNED_ASPECT_TOLERANCE = 0.01
# The before/after picture stops growing at this many pixels (its rows are held in memory until it is written).
BEFORE_AFTER_MAX_PIXELS = 64_000_000
# OpenCV writes no 2-channel image and PIL no 16-bit gray + alpha PNG (see facesr_kd.face.image_io.write_image).
GRAY_ALPHA_16_NOTE = (
    '16-bit gray + alpha written as a 16-bit RGBA PNG (the gray in all three colour channels): no 2-channel '
    '16-bit PNG writer is available'
)

# Archs run in channels-last memory format on the CPU, because it measured faster there. Measured once on this
# project's shared 2-core CPU, 1 thread, 32 -> 256, random weights, spectral norms baked, inference mode, median
# of interleaved runs (contiguous -> channels-last, ms per call):
#   LiteFaceStudent lite (64, 8 blocks, 32)   batch 1: 99 -> 77 (1.28x)      batch 8: 780 -> 530 (1.47x)
#   LiteFaceStudent tiny (32, 4 blocks, 16)   batch 1: 33 -> 27 (1.24x)
#   DFDNetStudent nf 64                       batch 1: 1669 -> 1556 (1.07x)
#   DFDNetStudent nf 32                       batch 1: 850 -> 784 (1.08x)    batch 8: 9146 -> 6913 (1.32x)
# Outputs are the same to 2.4e-7. Other archs (teacher, RCAN, SRFBN) and CUDA were not measured and keep the
# contiguous format. ``DFDNetTeacher`` subclasses ``DFDNetStudent``: the decision goes by the arch *name*.
CHANNELS_LAST_CPU_ARCHS = frozenset({'DFDNetStudent', 'LiteFaceStudent'})

# Face-size-aware restoration (issue 24). With the zoo's fully convolutional archs (DIRECT_CROP_ARCHS) the default
# is crop_method 'native': each face is restored where it lies, at its own size. An axis-aligned box of the photo
# around the face's aligned square, grown by NATIVE_MARGIN pixels of context, goes to the network as it is (no
# resampling, no rotation), the model being the one whose scale matches the upscale (:func:`choose_by_upscale`:
# the smallest scale >= upscale, its output resized to the upscale when they differ); the result is pasted on the
# same box of the upscaled photo, feathered over the margin (facesr_kd.face.align.paste_box). A face larger than
# that model's training input times ``keep_larger`` (NATIVE_KEEP_LARGER) is kept: upscaled with the photo.
# The other crop methods send each face to the model whose LR input side is the smallest one at least as large as
# the face's native side in the photo (:func:`native_face_size`), else to the largest, keeping a face larger than
# the largest input times ``keep_larger`` (DEFAULT_KEEP_LARGER) (:func:`choose_model`), and crop it at that
# input side: 'gauss': the region is Gaussian-prefiltered (sigma = (1 / zoom - 1) / 2), then warped bicubically;
# 'area': the photo region is shrunk with INTER_AREA, then warped bilinearly (facesr_kd.face.align.warp_face);
# 'two-step': the face warped to the output side (256), then shrunk with MATLAB bicubic, as the other archs are.
# Measured with `facesr-kd-benchmark-photos` on the 11 staged photos (faces/whole) and the 10 ffhq512 faces, shrunk
# x4 / x8 with INTER_AREA, mean face-region PSNR gain over bicubic of the small photo, x4 / x8 (faces more than
# 0.2 dB below bicubic in brackets). The shipped zoo (lite-x8-56a6b8f9, lite-x4-90d2d826): native +1.07 (2) /
# +1.40 (0), the same without the soft-face check; gauss -0.27 (10) / +0.36 (3). A zoo of
# RANDOM-weight LiteFaceStudents (an untrained one outputs the bicubic of its input: the crop / paste pipeline
# alone), 11 photos, --color-fix none, before the paste mapped pixel centres onto centres: two-step -1.86 / -1.51 dB;
# area -1.77 / -1.28; gauss -1.02 / -0.46; after: area -1.33 / -1.18; gauss -0.23 / -0.30; native's bicubic
# pipeline is the bicubic photo (tests/test_size_policy.py).
# Keeping (native): the gain was +0.6 to +2.1 dB on faces 1.8-2.2 times the model's input, -0.26 to +0.72 dB at
# 4.2-4.4 times (deepface_couple.jpg); larger faces were not measured and cost time with the square of their size.
# The margin: 16 pixels instead of 8 gave -0.01 / -0.03 dB (x4 / x8, the zoo before fine-tuning).
# Soft faces (native): a face within SOFT_FACE_PSNR of itself after a x2 shrink and re-enlargement (:func:`soft_face`)
# is kept. On the benchmark photos shrunk x2, the faces that lost 6-13 dB when restored (two old scans) scored
# 38.2-40.8 dB; 37 keeps them, and keeps few ordinary faces at their own resolution (2 of the 6 of insightface_t1.jpg,
# 36.0-39.2 dB). 32-34 would also keep the two x4 faces that lose 0.2-1.3 dB, and most ordinary faces with them
# (docs/photo_benchmark.md).
DEFAULT_KEEP_LARGER = 1.25
NATIVE_KEEP_LARGER = 4.0
NATIVE_MARGIN = 8
SOFT_FACE_PSNR = 37.0
CROP_METHODS = ('native', 'gauss', 'area', 'two-step')
DEFAULT_CROP_METHOD = 'native'
DIRECT_CROP_ARCHS = frozenset({'LiteFaceStudent'})


def native_face_size(affine, size):
    """The side, in photo pixels, of the aligned ``size`` x ``size`` crop that ``affine`` makes (photo -> crop)."""
    return size / align.affine_scale(affine)


def choose_model(native, in_sizes, keep_larger=DEFAULT_KEEP_LARGER):
    """Which model restores a face of ``native`` photo pixels (the side of its aligned crop in the photo).

    Args:
        native (float): The face's native side (:func:`native_face_size`).
        in_sizes (Sequence[int]): LR input side of each model.
        keep_larger (float | None): Keep (return None for) a face larger than the largest input times this;
            None or 0: restore every face.

    Returns:
        int | None: Index into ``in_sizes`` of the smallest input >= ``native`` (the largest input when none
        is), or None: the face is kept.
    """
    if not len(in_sizes):
        raise ValueError('no models to choose from')
    largest = max(range(len(in_sizes)), key=lambda i: in_sizes[i])
    if keep_larger and native > in_sizes[largest] * keep_larger:
        return None
    fits = [i for i in range(len(in_sizes)) if in_sizes[i] >= native]
    return min(fits, key=lambda i: in_sizes[i]) if fits else largest


def choose_by_upscale(upscale, scales):
    """Which model restores the faces of a photo upscaled by ``upscale`` at their own size (``crop_method='native'``).

    Args:
        upscale (float): The photo's upscale.
        scales (Sequence[int]): Each model's scale.

    Returns:
        int: Index into ``scales`` of the smallest scale at least ``upscale`` (its output is then shrunk to the
        upscale), the largest when none is (its output is enlarged).
    """
    if not len(scales):
        raise ValueError('no models to choose from')
    fits = [i for i in range(len(scales)) if scales[i] >= upscale - 1e-6]
    if fits:
        return min(fits, key=lambda i: scales[i])
    return max(range(len(scales)), key=lambda i: scales[i])


def soft_face(face, threshold=SOFT_FACE_PSNR):
    """Whether a face holds no detail at its own pixel scale: shrunk x2 (``INTER_AREA``) and enlarged back
    (bicubic), it stays within ``threshold`` dB PSNR of itself (an old scan, a photo enlarged before it was shared).

    Args:
        face (ndarray): (h, w, 3) uint8 box of the photo.
        threshold (float | None): PSNR in dB; None or 0: never soft.

    Returns:
        bool
    """
    h, w = (face.shape[0] // 2) * 2, (face.shape[1] // 2) * 2
    if not threshold or h < 4 or w < 4:
        return False
    face = np.asarray(face[:h, :w], np.float32)
    back = cv2.resize(
        cv2.resize(face, (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h), interpolation=cv2.INTER_CUBIC
    )
    mse = float(np.mean((face - np.clip(back, 0, 255)) ** 2))
    return mse == 0 or 10 * np.log10(255.0**2 / mse) >= threshold


def lq_affine(affine, out_size, lq_size):
    """The photo -> LR-face matrix matching a photo -> ``out_size`` one, as a corner-aligned resize would give.

    The networks learned LR faces shrunk from their HR faces with MATLAB's corner-aligned bicubic (pixel ``i`` of
    the LR face is centred on HR coordinate ``(i + 0.5) * out / lq - 0.5``), and their outputs are pasted back
    with ``affine``; so the LR crop samples the photo where that resize would have: ``k * affine`` shifted by
    ``(k - 1) / 2`` pixels, ``k = lq / out``.
    """
    k = lq_size / out_size
    out = np.asarray(affine, np.float64) * k
    out[:, 2] += 0.5 * k - 0.5
    return out


def crop_face(img, affine, size, method=DEFAULT_CROP_METHOD):
    """The face cropped straight out of a photo at ``size``: one resampling, antialiased when it shrinks.

    Args:
        img (ndarray): (H, W, 3) photo, uint8 or float32.
        affine (ndarray): (2, 3) photo -> crop matrix for a ``size`` crop (:func:`lq_affine`).
        size (int): Side of the crop.
        method (str): ``'gauss'`` or ``'area'`` (see :data:`CROP_METHODS`).

    Returns:
        ndarray: (size, size, 3), ``img``'s dtype.
    """
    if method == 'area':
        return align.warp_face(img, affine, size, antialias=True)
    if method != 'gauss':
        raise ValueError(f'crop_face: method must be area or gauss, got {method!r}')
    affine = np.asarray(affine, np.float64)
    zoom = align.affine_scale(affine)
    sigma = (1 / zoom - 1) / 2 if zoom < 1 else 0.0
    h, w = img.shape[:2]
    inv = cv2.invertAffineTransform(affine)
    corners = align.transform_points([[0, 0], [size, 0], [0, size], [size, size]], inv)
    margin = int(np.ceil(3 * sigma)) + 3
    x0, y0 = np.floor(corners.min(0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(0)).astype(int) + margin
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 2:  # the face lies outside the photo
        return cv2.warpAffine(img, affine, (size, size), borderValue=align.BORDER_VALUE)
    region = img[y0:y1, x0:x1]
    if sigma > 0:
        region = cv2.GaussianBlur(region, (0, 0), sigma)
    shifted = affine.copy()
    shifted[:, 2] += affine[:, :2] @ np.array([x0, y0], np.float64)
    out = cv2.warpAffine(region, shifted, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    outside = ~align.inside_mask(img.shape[:2], affine, size)
    out[outside] = np.asarray(align.BORDER_VALUE, out.dtype)
    if out.dtype == np.float32:
        np.clip(out, 0, 255, out=out)
    return out


class RestorerModel:
    """One network of a :class:`FaceSRRestorer`, in inference form.

    Attributes:
        name (str): The zoo name, or the arch type for a checkpoint given by path or a network given as such.
        net (nn.Module): The network.
        info (dict): Its description (``type``, ``scale``, ``lq_size``, ``out_size``, ``needs_boxes``...).
        channels_last (bool): Whether it runs channels-last.
        lq_size (int): LR input side.
        out_size (int): Output side.
        needs_boxes (bool): It takes component boxes (the teacher).
        direct_crop (bool): Its faces are cropped straight from the photo (:data:`DIRECT_CROP_ARCHS`): at their own
            size (``crop_method='native'``, the arch is fully convolutional) or at ``lq_size``.
        scale (int): Its upscale factor.
    """

    def __init__(self, name, net, info, channels_last):
        self.name, self.net, self.info, self.channels_last = name, net, dict(info), channels_last
        self.lq_size, self.out_size = int(info['lq_size']), int(info['out_size'])
        self.needs_boxes = bool(info.get('needs_boxes', False))
        self.direct_crop = info.get('type') in DIRECT_CROP_ARCHS
        self.scale = int(info.get('scale') or round(self.out_size / self.lq_size))


class ImageTooLargeError(ValueError):
    """The upscaled photo would exceed the pixel limit."""


class NotSquareError(ValueError):
    """An input given as an aligned face crop is not square."""


def use_channels_last(arch_type, device):
    """Whether an arch runs in channels-last memory format on ``device`` (see :data:`CHANNELS_LAST_CPU_ARCHS`)."""
    return torch.device(device).type == 'cpu' and arch_type in CHANNELS_LAST_CPU_ARCHS


def prepare_network(net, device='cpu', arch_type=None, channels_last=None):
    """Put a network in its cheapest correct inference form, in place.

    Eval mode, no gradients, every spectral-norm parametrization baked into a plain weight
    (:func:`facesr_kd.archs.arch_util.bake_spectral_norm`: in eval mode spectral norm would recompute
    ``W / sigma`` on every call), moved to ``device``, and channels-last where that measured faster. Run it
    under ``torch.inference_mode()``, with inputs in the same memory format (:func:`to_memory_format`).

    Args:
        net (nn.Module): The network; it is modified in place (it can no longer be trained with spectral norm).
        device (str | torch.device): Where it runs.
        arch_type (str | None): Its registered arch name (``info['type']``); None: its class name.
        channels_last (bool | None): Force the memory format; None: :func:`use_channels_last`.

    Returns:
        tuple[nn.Module, bool]: ``net``, and whether it is channels-last.
    """
    device = torch.device(device)
    net = bake_spectral_norm(net.eval()).requires_grad_(False).to(device)
    if channels_last is None:
        channels_last = use_channels_last(arch_type or type(net).__name__, device)
    net = net.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    return net, bool(channels_last)


def to_memory_format(x, channels_last):
    """``x`` (B, C, H, W) in channels-last memory format when ``channels_last``, else as it is."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def check_net_info(net, info):
    """Refuse an ``info`` whose sizes contradict the network's own ``out_size`` / ``scale`` attributes.

    ``LiteFaceStudent`` takes exactly ``out_size / scale``: a wrong ``lq_size`` would fail on the first face.

    Raises:
        ValueError: ``info`` gives another output size, scale or LR side than the network has.
    """
    out_size, scale = getattr(net, 'out_size', None), getattr(net, 'scale', None)
    if isinstance(out_size, int) and out_size != int(info['out_size']):
        raise ValueError(f'{type(net).__name__} has out_size {out_size} but info says out_size {info["out_size"]}')
    if isinstance(out_size, int) and isinstance(scale, int) and int(info['lq_size']) != out_size // scale:
        raise ValueError(
            f'{type(net).__name__}(out_size={out_size}, scale={scale}) takes {out_size // scale}x{out_size // scale} '
            f'faces but info says lq_size {info["lq_size"]}'
        )


def resolve_device(device='auto'):
    """``'auto'``: CUDA when available, else the CPU; otherwise ``torch.device(device)``."""
    if device in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(device)


def resize_face(face, size):
    """Resize a square face (float, [0, 1]) to ``size`` with MATLAB-style bicubic (anti-aliased).

    Non-square inputs, or sizes the MATLAB scale factor cannot hit exactly, fall back to OpenCV (area when
    shrinking, bicubic when enlarging).
    """
    from basicsr.utils.matlab_functions import imresize

    h, w = face.shape[:2]
    if (h, w) == (size, size):
        return face
    if h == w:
        out = imresize(face, size / h)
        if out.shape[:2] == (size, size):
            return out
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC
    return cv2.resize(face, (size, size), interpolation=interp)


def check_half(half, device):
    """Refuse float16 inference on a device without fast fp16 convolutions (anything but CUDA)."""
    if half and torch.device(device).type != 'cuda':
        raise ValueError(
            f'--half (float16) runs on CUDA only, not on {device}: fp16 convolutions on the CPU are slow or '
            'unsupported. Leave --half out on the CPU.'
        )


def build_bg_upsampler(name, model_path=None, tile=400, device='cpu', half=False):
    """The background upsampler: ``'none'`` (Lanczos resize), ``'bicubic'`` or ``'realesrgan'``.

    ``'realesrgan'`` needs the ``realesrgan`` package and ``RealESRGAN_x2plus.pth`` (``model_path``); it runs on
    ``device`` (float16 with ``half``, CUDA only), in tiles of ``tile`` pixels so that large photos fit in memory.

    Returns:
        str | object: The name, or an object with ``enhance(img, outscale=...)`` (Real-ESRGAN's API).
    """
    if name in ('none', 'bicubic'):
        return name
    if name != 'realesrgan':
        raise ValueError(f'unknown background upsampler {name!r}; choose one of {BG_UPSAMPLERS}')
    check_half(half, device)
    try:
        from realesrgan import RealESRGANer
    except ImportError as err:
        raise ImportError('--bg-upsampler realesrgan needs the realesrgan package (pip install realesrgan)') from err
    if not model_path or not os.path.isfile(model_path):
        raise FileNotFoundError(
            f'Real-ESRGAN weights not found at {model_path}; download {REALESRGAN_URL} and pass its path (--bg-model)'
        )
    from basicsr.archs.rrdbnet_arch import RRDBNet

    model = RRDBNet(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32, scale=2)
    return RealESRGANer(
        scale=2, model_path=model_path, model=model, tile=tile, tile_pad=10, pre_pad=0, half=half, device=device
    )


def _to_bgr(img):
    """Split an input array into (H, W, 3) BGR, alpha or None, and its layout ('gray', 'bgr', 'bgra')."""
    img = np.asarray(img)
    if img.dtype not in (np.uint8, np.float32):
        if img.dtype == np.uint16:
            img = img.astype(np.float32) * (255.0 / 65535.0)
        else:
            img = img.astype(np.float32)
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2BGR), None, 'gray'
    if img.ndim == 3 and img.shape[2] == 3:
        return img, None, 'bgr'
    if img.ndim == 3 and img.shape[2] == 4:
        return np.ascontiguousarray(img[..., :3]), np.ascontiguousarray(img[..., 3]), 'bgra'
    raise ValueError(f'expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {img.shape}')


def _to_uint8(img):
    if img.dtype == np.uint8:
        return img
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


class FaceSRRestorer:
    """Restore the faces of real photos with a facesr_kd super-resolution network.

    Args:
        model_path (str | None): Checkpoint of a student (``DFDNetStudent``, ``LiteFaceStudent``) or of the
            teacher, RCAN / ``FaceRCAN`` or SRFBN (see :func:`facesr_kd.utils.checkpoint.load_sr_network`), or
            the name of a zoo model (:func:`facesr_kd.zoo.resolve_model`). None (and no ``net``): every model
            of the zoo (:mod:`facesr_kd.zoo`), each face restored by the one of the upscale
            (:func:`choose_by_upscale`; with a ``crop_method`` other than native, the one its size calls for,
            :func:`choose_model`); an empty zoo is a FileNotFoundError saying so.
        upscale (int): Upscaling of the whole photo.
        bg_upsampler (str | object): ``'none'`` (Lanczos resize), ``'bicubic'``, or an object with
            ``enhance(img, outscale=...)`` (see :func:`build_bg_upsampler`).
        det_model (str): ``'retinaface_resnet50'`` or ``'retinaface_mobile0.25'``.
        model_root (str | None): Folder with the facexlib detector weights (default: facexlib's own folder).
        device (str): ``'auto'``, ``'cpu'``, ``'cuda'``...
        offline (bool): Never download detector weights; a missing file is an error naming it.
        opt_path (str | None): Option file describing a checkpoint without an ``arch`` entry.
        scale (int | None): Refuse a checkpoint of another scale; with the zoo, use only its models of that
            scale. None accepts any.
        box_source (str): Teacher only: ``'detect'`` (landmarks on the upsampled input) or ``'template'``.
        det_resize (int | None): Detection runs on a copy whose short side is this (GFPGAN's 640).
        conf_threshold (float): Detector score threshold.
        eye_dist_threshold (float | None): Ignore faces whose eyes are closer than this many photo pixels.
        max_pixels (int): Refuse photos whose upscaled size exceeds this many pixels.
        batch_size (int): Faces per forward pass.
        net (nn.Module | None): A network to use instead of loading ``model_path`` (with ``info``); it is put in
            inference form in place (:func:`prepare_network`: spectral norms baked, no gradients).
        info (dict | None): Its description (``lq_size``, ``out_size``, ``scale``, ``needs_boxes``, ``type``).
        channels_last (bool | None): Memory format of the network and its inputs; None: channels-last for the
            archs where it measured faster on the CPU (:data:`CHANNELS_LAST_CPU_ARCHS`).
        half (bool): Run the network in float16 (CUDA only: on the CPU fp16 convolutions are slow or missing,
            the pitfall Real-ESRGAN users meet, so it is refused with a message).
        color_fix (str): ``'wavelet'``, ``'meanstd'`` or ``'none'``: how each restored face's colour is made its
            input's before it is pasted into the photo (see :mod:`facesr_kd.face.colour`). The faces
            :meth:`enhance` returns, and aligned crops, are the network's output as it is.
        keep_larger (float | None): Keep (do not restore: upscale with the photo, never shrink) a face whose
            native side is over this times :meth:`keep_limit` (native faces: the input the upscale's model was
            trained at; else the largest model input, :func:`choose_model`). None: 4 (:data:`NATIVE_KEEP_LARGER`)
            for native faces; else 1.25 (:data:`DEFAULT_KEEP_LARGER`) with zoo models, 0 (restore every face) for
            a checkpoint given by path or a ``net``.
        crop_method (str): How the faces of :data:`DIRECT_CROP_ARCHS` (``LiteFaceStudent``, fully convolutional)
            reach the network (:data:`CROP_METHODS`): ``'native'``: restored where they lie, at their own size, by
            the model of the upscale (:func:`choose_by_upscale`), pasted on the same box; ``'area'``, ``'gauss'``
            or ``'two-step'``: cropped at the input side of the model their size calls for. The other archs always
            get the two-step crop (warp to the output side, MATLAB-bicubic shrink) they were made for.
        zoo (str | None): The zoo folder (default: ``$FACESR_KD_ZOO``, else ``facesr_kd/weights``).
        soft_psnr (float | None): Native faces: keep (upscale with the photo) a face whose box is soft at its own
            pixel scale (:func:`soft_face`: within this many dB of itself after a x2 shrink and re-enlargement);
            there is nothing there for the networks to restore. None or 0: off.

    Attributes:
        models (list[RestorerModel]): The networks, by LR input side (one unless the zoo is used).
        net, info, lq_size, out_size, channels_last: Those of the largest-input model (``info`` with ``models``,
            a list describing every one, when there are several).
        from_zoo (bool): The models come from the zoo (no ``model_path``, or a zoo name).
    """

    def __init__(
        self,
        model_path=None,
        upscale=2,
        bg_upsampler='bicubic',
        det_model='retinaface_resnet50',
        model_root=None,
        device='auto',
        offline=False,
        opt_path=None,
        scale=None,
        box_source='detect',
        det_resize=640,
        conf_threshold=0.97,
        eye_dist_threshold=5,
        max_pixels=DEFAULT_MAX_PIXELS,
        batch_size=8,
        net=None,
        info=None,
        channels_last=None,
        half=False,
        color_fix=DEFAULT_COLOR_FIX,
        keep_larger=None,
        crop_method=DEFAULT_CROP_METHOD,
        zoo=None,
        soft_psnr=SOFT_FACE_PSNR,
    ):
        self.color_fix = check_color_fix(color_fix)
        self.device = resolve_device(device)
        check_half(half, self.device)
        self.half = bool(half)
        if keep_larger is not None and (not np.isfinite(keep_larger) or keep_larger < 0):
            raise ValueError(f'keep_larger must be 0 (restore every face) or positive, got {keep_larger}')
        if crop_method not in CROP_METHODS:
            raise ValueError(f'crop_method must be one of {CROP_METHODS}, got {crop_method!r}')
        self.crop_method = crop_method
        if soft_psnr is not None and not (np.isfinite(soft_psnr) and soft_psnr >= 0):
            raise ValueError(f'soft_psnr must be 0 or None (off) or a PSNR in dB, got {soft_psnr}')
        self.soft_psnr = soft_psnr
        self.zoo_root = zoo_root(zoo)
        from_zoo = False
        if net is not None:
            if info is None:
                raise ValueError('a network passed as `net` needs its `info` (lq_size, out_size, scale, needs_boxes)')
            check_net_info(net, info)
            loaded = [(info.get('name') or info.get('type') or type(net).__name__, net, info)]
        elif model_path is None:  # the zoo: every model, chosen per face
            from_zoo = True
            entries = list_models(self.zoo_root)
            if not entries:
                raise FileNotFoundError(
                    f'no --model given and {describe_zoo(entries, self.zoo_root)}: this installation ships no '
                    'trained weights. Pass --model with a checkpoint (e.g. experiments/<name>/models/'
                    'net_g_latest.pth) or put published models there (facesr-kd-publish CKPT -o '
                    f'{self.zoo_root} --name NAME)'
                )
            if scale:
                chosen = [m for m in entries if m.scale == int(scale)]
                if not chosen:
                    raise FileNotFoundError(f'no x{scale} model in the zoo; {describe_zoo(entries, self.zoo_root)}')
                entries = chosen
            loaded = []
            for entry in entries:
                net_, info_ = load_sr_network(entry.path, device=self.device)
                loaded.append((entry.name, net_, {**info_, 'name': entry.name}))
        else:
            path = resolve_model(model_path, self.zoo_root)
            from_zoo = not os.path.isfile(os.fspath(model_path))
            net_, info_ = load_sr_network(path, opt_path=opt_path, device=self.device, expect_scale=scale)
            name = next((m.name for m in list_models(self.zoo_root) if m.path == path), None) if from_zoo else None
            loaded = [(name or info_['type'], net_, {**info_, **({'name': name} if name else {})})]
        self.from_zoo = from_zoo
        self.models = []
        for name, net_, info_ in loaded:
            net_, cl = prepare_network(net_, self.device, arch_type=info_.get('type'), channels_last=channels_last)
            if self.half:
                net_ = net_.half()
            self.models.append(RestorerModel(name, net_, info_, cl))
        self.models.sort(key=lambda m: m.lq_size)
        # Faces restored at their own size: the fully convolutional archs, unless another crop is asked for.
        self.native = crop_method == 'native' and all(m.direct_crop for m in self.models)
        if keep_larger is None:
            keep_larger = NATIVE_KEEP_LARGER if self.native else DEFAULT_KEEP_LARGER if from_zoo else 0.0
        self.keep_larger = float(keep_larger)
        # The largest-input model stands for the restorer where one network is asked for (net, info, sizes).
        main = self.models[-1]
        self.net, self.channels_last = main.net, main.channels_last
        self.info = dict(main.info)
        if len(self.models) > 1:
            self.info['models'] = [
                {'name': m.name, **{k: m.info.get(k) for k in ('type', 'scale', 'lq_size', 'out_size', 'path')}}
                for m in self.models
            ]
        self.lq_size = main.lq_size
        self.out_size = main.out_size
        self.needs_boxes = any(m.needs_boxes for m in self.models)
        if box_source not in BOX_SOURCES:
            raise ValueError(f'box_source must be one of {BOX_SOURCES}, got {box_source!r}')
        self.box_source = box_source
        self.upscale = upscale
        if isinstance(bg_upsampler, str) and bg_upsampler not in ('none', 'bicubic'):
            raise ValueError(f'bg_upsampler must be none, bicubic or an upsampler object, got {bg_upsampler!r}')
        self.bg_upsampler = bg_upsampler
        self.det_model = det_model
        self.model_root = model_root
        self.offline = offline
        self.det_resize = det_resize
        self.conf_threshold = conf_threshold
        self.eye_dist_threshold = eye_dist_threshold
        self.max_pixels = max_pixels
        self.batch_size = batch_size
        self._detector = None
        self.last_stats = {}

    @property
    def detector(self):
        """The RetinaFace detector, built on first use (raises FileNotFoundError naming missing weights)."""
        if self._detector is None:
            from facesr_kd.face.detection import build_detector

            self._detector = build_detector(self.det_model, self.model_root, device=self.device, offline=self.offline)
        return self._detector

    def needs_detector(self, aligned=False):
        """Whether restoring (aligned or whole) inputs uses the detector: whole photos and teacher box search do."""
        return not aligned or (self.needs_boxes and self.box_source == 'detect')

    # ----------------------------------------------------------------------------------------------------------
    def enhance(self, img, aligned=False, only_center_face=False, paste_back=True, keep_rejected=False, faces=None):
        """Restore the faces of a photo, or one aligned face.

        Args:
            img (ndarray): BGR (H, W, 3), BGRA (H, W, 4, alpha kept) or gray (H, W); uint8, uint16, or float32
                in [0, 255] (what :func:`facesr_kd.face.image_io.read_image` gives for 16-bit files).
            aligned (bool): ``img`` is an aligned face crop (FFHQ-style, any square size): it is resized to
                the model's input and restored; no detection, no paste-back.
            only_center_face (bool): Restore only the face closest to the photo's centre.
            paste_back (bool): Build the upscaled photo with the restored faces pasted in.
            keep_rejected (bool): Also keep, in ``last_stats['detections']``, the detections that are not restored
                (down to :data:`DEBUG_CONF_FLOOR`), with the reason; for the debug view.
            faces (list[dict] | None): Whole photos: restore these faces instead of detecting them, each a dict
                with ``landmarks5`` (5, 2) in photo pixels (other keys, such as ``box`` and ``score``, are kept in
                ``last_stats['detections']``), e.g. a video's tracked, smoothed landmarks
                (:mod:`facesr_kd.face.tracking`). They are used as given: ``only_center_face`` and ``keep_rejected``
                do not filter them and the detector is not run.

        Returns:
            tuple: ``(cropped_faces, restored_faces, restored_img)``: lists of the network inputs ((lq, lq, 3)
            aligned faces, or (h, w, 3) boxes of the photo for native faces) and of the restored faces ((out, out,
            3), or (h * scale, w * scale, 3)), uint8 BGR, and the upscaled photo in ``img``'s layout and dtype
            (None when ``aligned`` or not ``paste_back``). With no face found the photo is still upscaled and
            the lists are empty. :attr:`last_stats` holds counts and timings (``boxes_s``: the teacher's box
            search) and, for a whole photo, ``detections``: the kept faces, in the order of the lists, each a dict
            with ``box``, ``score``, ``landmarks5``, ``kept=True``, ``index`` (its place in the lists, the
            ``<name>_<index>`` of :func:`restore_paths`'s files) and ``affine``; with ``keep_rejected`` then the
            others, with ``kept=False``, ``reason`` and a short ``label`` (see :meth:`detect`). Each restored face
            also has ``model`` (the name of the model that restored it) and ``native_size`` (its side in the
            photo, :func:`native_face_size`), and native faces their ``crop_box`` ``(x0, y0, x1, y1)`` in the
            photo; ``last_stats['by_model']`` counts the faces per model and
            ``last_stats['kept_large']`` lists the faces kept unrestored by the size policy (:func:`choose_model`:
            ``size_kept=True``, ``native_size``, ``reason``; they are upscaled with the photo, never shrunk), and
            the soft native faces (:func:`soft_face`; also ``soft=True``).

        Raises:
            ImageTooLargeError: The upscaled photo (an aligned crop: the crop itself) would exceed ``max_pixels``.
            NotSquareError: ``aligned`` and ``img`` is not square (see :meth:`check_aligned`).
        """
        bgr, alpha, layout = _to_bgr(img)
        in_dtype = np.asarray(img).dtype
        stats = {'faces': 0, 'detect_s': 0.0, 'boxes_s': 0.0, 'box_fallbacks': 0, 'sr_s': 0.0, 'paste_s': 0.0}
        stats.update(color_fix=self.color_fix, color_fix_s=0.0, detections=[], by_model={}, kept_large=[])
        self.last_stats = stats
        if aligned:
            self.check_aligned(*bgr.shape[:2])
            model = self.models[choose_model(bgr.shape[0], [m.lq_size for m in self.models], keep_larger=0)]
            face = np.clip(resize_face(bgr.astype(np.float32) / 255.0, model.lq_size), 0, 1)
            restored = self._restore([face], stats, model)
            stats['faces'] = 1
            stats['by_model'] = {model.name: 1}
            return [_to_uint8(face * 255)], [_to_uint8(restored[0])], None

        h, w = bgr.shape[:2]
        if paste_back:
            self.check_size(h, w)
        t0 = time.perf_counter()
        if faces is not None:
            faces = [{**f, 'landmarks5': np.asarray(f['landmarks5'], np.float64).reshape(5, 2)} for f in faces]
            rejected = []
        elif keep_rejected:
            faces, rejected = self.detect(bgr, only_center_face, return_rejected=True)
        else:
            faces, rejected = self.detect(bgr, only_center_face), []
        stats['detect_s'] = time.perf_counter() - t0
        in_sizes = [m.lq_size for m in self.models]
        limit, limit_text = self.keep_limit()
        by_upscale = choose_by_upscale(self.upscale, [m.scale for m in self.models]) if self.native else None
        lqs, kept = [], []
        for det in faces:
            try:
                affine = align.estimate_affine(det['landmarks5'], self.out_size)
            except ValueError:  # degenerate landmarks: no similarity fits; leave that face as it is
                reason = 'degenerate landmarks: no similarity fits them'
                rejected.append({**det, 'kept': False, 'reason': reason, 'label': 'degenerate landmarks'})
                continue
            native = native_face_size(affine, self.out_size)
            if self.native:
                choice = None if self.keep_larger and native > self.keep_larger * limit else by_upscale
            else:
                choice = choose_model(native, in_sizes, self.keep_larger)
            if choice is None:
                reason = (
                    f'kept: {native:.0f} px face, over {self.keep_larger:g} x {limit_text}: '
                    'upscaled with the photo, not shrunk (--keep-larger)'
                )
                large = {**det, 'kept': False, 'size_kept': True, 'native_size': native, 'reason': reason}
                large['label'] = f'kept {native:.0f}px'
                stats['kept_large'].append(large)
                rejected.append(large)
                continue
            model = self.models[choice]
            crop_box = None
            if self.native:
                crop_box = align.face_box(affine, self.out_size, bgr.shape, NATIVE_MARGIN)
                if crop_box[2] - crop_box[0] < 2 or crop_box[3] - crop_box[1] < 2:
                    reason = 'the face lies outside the photo'
                    rejected.append({**det, 'kept': False, 'reason': reason, 'label': 'outside the photo'})
                    continue
                x0, y0, x1, y1 = crop_box
                if soft_face(bgr[y0:y1, x0:x1], self.soft_psnr):
                    reason = (
                        f'kept: soft, no detail at its own pixel scale (within {self.soft_psnr:g} dB of itself shrunk '
                        'x2 and enlarged back): upscaled with the photo (--soft-psnr)'
                    )
                    large = {**det, 'kept': False, 'size_kept': True, 'soft': True, 'native_size': native}
                    large.update(reason=reason, label='kept: soft')
                    stats['kept_large'].append(large)
                    rejected.append(large)
                    continue
                lq = bgr[y0:y1, x0:x1].astype(np.float32) / 255.0
            else:
                affine = affine * (model.out_size / self.out_size)  # photo -> this model's output face
                if model.direct_crop and self.crop_method != 'two-step':
                    lq_aff = lq_affine(affine, model.out_size, model.lq_size)
                    lq = crop_face(bgr, lq_aff, model.lq_size, self.crop_method).astype(np.float32) / 255.0
                else:
                    crop = align.warp_face(bgr, affine, model.out_size, antialias=True)
                    lq = resize_face(crop.astype(np.float32) / 255.0, model.lq_size)
            lqs.append(np.clip(lq, 0, 1))
            kept.append({**det, 'kept': True, 'index': len(kept), 'affine': affine, 'model': model.name})
            kept[-1]['native_size'] = native
            if crop_box is not None:
                kept[-1]['crop_box'] = crop_box
            stats['by_model'][model.name] = stats['by_model'].get(model.name, 0) + 1
        stats['faces'] = len(kept)
        stats['detections'] = kept + (rejected if keep_rejected else [])
        restored = [None] * len(lqs)
        for model in self.models:
            idx = [i for i, d in enumerate(kept) if d['model'] == model.name]
            if idx:
                for i, face in zip(idx, self._restore([lqs[i] for i in idx], stats, model)):
                    restored[i] = face
        cropped_faces = [_to_uint8(f * 255) for f in lqs]
        restored_faces = [_to_uint8(f) for f in restored]
        if not paste_back:
            return cropped_faces, restored_faces, None

        pasted = self._fix_colours(lqs, restored, stats)
        t0 = time.perf_counter()
        out = self.upscale_background(bgr)
        for face, det in zip(pasted, kept):
            if 'crop_box' in det:
                self._paste_box(out, face, det['crop_box'], (h, w))
            else:
                self._paste(out, face, det['affine'])
        if alpha is not None:
            alpha_up = self._resize(alpha, out.shape[1], out.shape[0])
            out = np.concatenate([out, alpha_up[..., None].astype(out.dtype)], axis=2)
        stats['paste_s'] = time.perf_counter() - t0
        return cropped_faces, restored_faces, self._restore_layout(out, layout, in_dtype)

    def keep_limit(self):
        """The side a face's native size is compared with (times :attr:`keep_larger`) to keep it, and its words.

        Returns:
            tuple[int, str]: With ``native`` faces, the input side the upscale's model (:func:`choose_by_upscale`)
            was trained at; else the largest model input.
        """
        if self.native:
            model = self.models[choose_by_upscale(self.upscale, [m.scale for m in self.models])]
            return model.lq_size, f'{model.lq_size} px (the input {model.name} was trained at)'
        largest = max(m.lq_size for m in self.models)
        return largest, f'{largest} px (the largest model input)'

    # ----------------------------------------------------------------------------------------------------------
    def check_size(self, h, w):
        """Refuse an (h, w) photo whose upscaled size exceeds ``max_pixels`` or is under one pixel.

        Raises:
            ImageTooLargeError: Over the limit.
            ValueError: ``upscale`` shrinks the photo to nothing.
        """
        oh, ow = int(round(h * self.upscale)), int(round(w * self.upscale))
        if oh < 1 or ow < 1:
            raise ValueError(f'{w}x{h} upscaled x{self.upscale} is {ow}x{oh} pixels: use a larger --upscale')
        out_px = oh * ow
        if self.max_pixels and out_px > self.max_pixels:
            raise ImageTooLargeError(
                f'{w}x{h} upscaled x{self.upscale} is {out_px / 1e6:.1f} MP, over the {self.max_pixels / 1e6:.1f} MP '
                'limit; use a smaller --upscale or raise --max-pixels'
            )

    def check_aligned(self, h, w):
        """Refuse an (h, w) input given as an aligned face crop that is not square or is over ``max_pixels``.

        Aligned crops (FFHQ-style) are square by construction; a non-square input is most likely a whole photo
        passed as a crop, and squashing or padding it would feed the network a face that is not on the template.
        Sides within :data:`ALIGNED_ASPECT_TOLERANCE` of each other are accepted and resized.

        Raises:
            NotSquareError: The sides differ by more than the tolerance.
            ImageTooLargeError: The crop has more than ``max_pixels`` pixels.
        """
        if abs(h - w) > ALIGNED_ASPECT_TOLERANCE * max(h, w):
            raise NotSquareError(
                f'{w}x{h} is not square: aligned inputs must be square face crops (FFHQ-style); run without '
                '--aligned (aligned=False) to detect the faces of a whole photo'
            )
        if self.max_pixels and h * w > self.max_pixels:
            raise ImageTooLargeError(
                f'{w}x{h} aligned crop is {h * w / 1e6:.1f} MP, over the {self.max_pixels / 1e6:.1f} MP limit; '
                'raise --max-pixels'
            )

    def max_input_pixels(self, aligned=False):
        """The most pixels an input can have (``max_pixels / upscale**2`` for whole photos, ``max_pixels`` for
        aligned crops); None without a limit."""
        if not self.max_pixels:
            return None
        return int(self.max_pixels if aligned else self.max_pixels / self.upscale**2)

    def detect(self, bgr, only_center_face=False, return_rejected=False, conf_floor=DEBUG_CONF_FLOOR):
        """Faces of a photo: list of dicts with ``box``, ``score``, ``landmarks5`` (photo pixels).

        Args:
            bgr (ndarray): (H, W, 3) BGR photo.
            only_center_face (bool): Keep only the face whose box centre is nearest the photo's centre.
            return_rejected (bool): Also return what the detector found and was not kept. The detector then runs
                with its threshold lowered to ``conf_floor`` (when ``conf_threshold`` is higher) and without the
                eye-distance filter, and the filters are applied here, exactly as
                :func:`~facesr_kd.face.detection.detect_faces` applies them (``score > conf_threshold`` in
                float32, as facexlib compares; eye distance ``>= eye_dist_threshold``): the faces kept are the
                same, in the same order, as without ``return_rejected`` (see :data:`DEBUG_CONF_FLOOR`).
            conf_floor (float): Lowest score of a rejected detection.

        Returns:
            list[dict] | tuple[list[dict], list[dict]]: The faces, largest first; with ``return_rejected`` also
            the rejected detections, each with ``kept=False``, ``reason`` (a sentence naming the option) and
            ``label`` (a short form for the debug view).
        """
        from facesr_kd.face.detection import detect_faces

        if not return_rejected:
            faces = detect_faces(
                self.detector,
                bgr,
                conf_threshold=self.conf_threshold,
                resize=self.det_resize,
                eye_dist_threshold=self.eye_dist_threshold,
            )
            return self._centre_face(faces, bgr.shape) if only_center_face else faces
        found = detect_faces(
            self.detector,
            bgr,
            conf_threshold=min(conf_floor, self.conf_threshold),
            resize=self.det_resize,
            eye_dist_threshold=None,
        )
        faces, rejected = [], []
        for det in found:
            eyes = float(np.linalg.norm(det['landmarks5'][0] - det['landmarks5'][1]))
            if not np.float32(det['score']) > np.float32(self.conf_threshold):
                reason = f'score {det["score"]:.3f} not above --conf {self.conf_threshold:g}'
                label = f'score {det["score"]:.3f} <= {self.conf_threshold:g}'
            elif self.eye_dist_threshold is not None and eyes < self.eye_dist_threshold:
                reason = f'eye distance {eyes:.1f} px below --eye-dist-threshold {self.eye_dist_threshold:g}'
                label = f'eyes {eyes:.1f}px < {self.eye_dist_threshold:g}'
            else:
                faces.append(det)
                continue
            rejected.append({**det, 'kept': False, 'reason': reason, 'label': label})
        if only_center_face and faces:
            centre = self._centre_face(faces, bgr.shape)
            for det in faces:
                if det is not centre[0]:
                    reason = 'not the face nearest the centre (--only-center-face)'
                    rejected.append({**det, 'kept': False, 'reason': reason, 'label': 'not centre face'})
            faces = centre
        return faces, rejected

    @staticmethod
    def _centre_face(faces, shape):
        """``[the face whose box centre is nearest the centre of a photo of ``shape``]`` (``[]`` without faces)."""
        if not faces:
            return faces
        h, w = shape[:2]
        centre = np.array([w / 2, h / 2])
        return [min(faces, key=lambda f: np.linalg.norm((f['box'][:2] + f['box'][2:]) / 2 - centre))]

    def _fix_colours(self, lqs, restored, stats):
        """Apply :attr:`color_fix` to restored faces (float BGR [0, 255]), each against its bicubic-upsampled
        input (``lqs``: float BGR [0, 1])."""
        if self.color_fix == 'none':
            return restored
        t0 = time.perf_counter()
        out = []
        for lq, face in zip(lqs, restored):
            ref = cv2.resize(lq * 255.0, face.shape[1::-1], interpolation=cv2.INTER_CUBIC)
            out.append(apply_color_fix(face, np.clip(ref, 0, 255), self.color_fix))
        stats['color_fix_s'] += time.perf_counter() - t0
        return out

    def component_boxes(self, lq, out_size=None):
        """Teacher boxes for one (lq, lq, 3) float BGR input: (4, 4) [x1, y1, x2, y2] in output pixels.

        Args:
            lq (ndarray): The input face.
            out_size (int | None): The network's output side; None: :attr:`out_size`.

        Returns:
            tuple[ndarray, bool]: The boxes and whether they fell back to the template.
        """
        out_size = out_size or self.out_size
        if self.box_source == 'template':
            return template_boxes(out_size), False
        from facesr_kd.face.detection import detect_faces

        up = cv2.resize(lq, (out_size, out_size), interpolation=cv2.INTER_CUBIC)
        found = detect_faces(self.detector, np.clip(up * 255, 0, 255), conf_threshold=0.5, resize=None)
        if not found:
            return template_boxes(out_size), True
        return boxes_from_landmarks5(found[0]['landmarks5'], out_size), False

    def _restore(self, lqs, stats, model=None):
        """Run ``model`` (default: the largest-input one) on (lq, lq, 3) float BGR faces in [0, 1] of its input
        side; return (out, out, 3) float BGR in [0, 255]."""
        model = model or self.models[-1]
        boxes = None
        if model.needs_boxes:
            t0 = time.perf_counter()
            found = [self.component_boxes(lq, model.out_size) for lq in lqs]
            boxes = np.stack([b for b, _ in found]).astype(np.float32)
            stats['box_fallbacks'] += sum(fb for _, fb in found)
            stats['boxes_s'] += time.perf_counter() - t0
        t0 = time.perf_counter()
        outs, i = [], 0
        with torch.inference_mode():
            while i < len(lqs):
                j = i + 1  # a batch: up to batch_size faces of one size (native crops differ)
                while j < len(lqs) and j - i < self.batch_size and lqs[j].shape == lqs[i].shape:
                    j += 1
                batch = np.stack([lq[..., ::-1] for lq in lqs[i:j]])  # BGR -> RGB
                x = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).float().to(self.device)
                x = to_memory_format(x.half() if self.half else x, model.channels_last)
                if boxes is None:
                    y = model.net(x)
                else:
                    b = torch.from_numpy(boxes[i:j]).to(self.device)
                    y = model.net(x, b.half() if self.half else b)
                if isinstance(y, (list, tuple)):
                    y = y[-1]
                y = y.clamp(0, 1).mul(255).permute(0, 2, 3, 1).float().cpu().numpy()
                outs.extend(np.ascontiguousarray(o[..., ::-1]) for o in y)
                i = j
        stats['sr_s'] += time.perf_counter() - t0
        return outs

    def _resize(self, img, w, h):
        interp = cv2.INTER_LANCZOS4 if self.bg_upsampler == 'none' else cv2.INTER_CUBIC
        out = cv2.resize(img, (w, h), interpolation=interp)
        if img.dtype == np.float32:
            np.clip(out, 0, 255, out=out)
        return out

    def upscale_background(self, bgr):
        """The photo upscaled by ``upscale``, same dtype."""
        h, w = bgr.shape[:2]
        oh, ow = int(round(h * self.upscale)), int(round(w * self.upscale))
        if self.upscale == 1:
            return bgr.copy()
        if isinstance(self.bg_upsampler, str):
            return self._resize(bgr, ow, oh)
        out = self.bg_upsampler.enhance(_to_uint8(bgr), outscale=self.upscale)[0]
        if out.shape[:2] != (oh, ow):
            out = cv2.resize(out, (ow, oh), interpolation=cv2.INTER_CUBIC)
        return out.astype(bgr.dtype)

    def _paste(self, out, face, affine):
        """Blend one restored face into ``out`` in place (:func:`facesr_kd.face.align.paste_face`), working only
        within the face's footprint (``affine``: photo -> that face's pixels)."""
        h_up, w_up = out.shape[:2]
        s = self.upscale
        size = face.shape[0]
        inverse = cv2.invertAffineTransform(affine)
        corners = align.transform_points([[0, 0], [size, 0], [0, size], [size, size]], inverse)
        corners = corners * s + 0.5 * (s - 1)
        x0, y0 = np.floor(corners.min(0)).astype(int) - 4
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 4
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w_up), min(y1, h_up)
        if x1 <= x0 or y1 <= y0:
            return
        # Shift the photo -> face map so that the region's origin (x0, y0) / s in photo pixels becomes 0.
        roi_affine = affine.copy()
        roi_affine[:, 2] += affine[:, :2] @ np.array([x0 / s, y0 / s])
        region = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = align.paste_face(region, face, roi_affine, s)

    def _paste_box(self, out, face, box, shape):
        """Blend one face restored at its own size (``crop_box`` ``box`` of a ``shape`` photo) into ``out`` in
        place, feathered over the context margin (:func:`facesr_kd.face.align.paste_box`)."""
        h, w = shape
        sy, sx = out.shape[0] / h, out.shape[1] / w
        x0, y0, x1, y1 = box
        X0, Y0, X1, Y1 = (int(round(v)) for v in (x0 * sx, y0 * sy, x1 * sx, y1 * sy))
        if face.shape[:2] != (Y1 - Y0, X1 - X0):  # the model's scale is not the upscale
            shrinks = face.shape[0] > Y1 - Y0
            face = cv2.resize(face, (X1 - X0, Y1 - Y0), interpolation=cv2.INTER_AREA if shrinks else cv2.INTER_CUBIC)
        edges = (y0 > 0, y1 < h, x0 > 0, x1 < w)
        out[Y0:Y1, X0:X1] = align.paste_box(out[Y0:Y1, X0:X1], face, NATIVE_MARGIN * min(sx, sy), edges)

    @staticmethod
    def _restore_layout(out, layout, in_dtype):
        if layout == 'gray':
            out = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
        if in_dtype == np.uint16:
            out = np.clip(np.rint(out.astype(np.float32) * (65535.0 / 255.0)), 0, 65535).astype(np.uint16)
        elif in_dtype == np.uint8:
            out = _to_uint8(out)
        return out


def _not_regular(path):
    """Why ``path`` cannot be read as an image file (a reason string), or None for a regular file.

    Nothing is opened: a FIFO or a device would block or never end, so only regular files are read.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return f'broken symbolic link (to {os.readlink(path)}, which does not exist)'
        return 'does not exist'
    except OSError as err:  # a symlink loop, a name too long, no permission on the folder
        return f'cannot be examined ({err.strerror or err})'
    if stat.S_ISREG(st.st_mode):
        return None
    if stat.S_ISDIR(st.st_mode):
        return 'a folder: inputs are not searched recursively'
    kind = 'FIFO' if stat.S_ISFIFO(st.st_mode) else 'socket' if stat.S_ISSOCK(st.st_mode) else 'device'
    return f'not a regular file (a {kind})'


def list_inputs(path):
    """The inputs of ``path``: the file itself, or every entry of a folder, sorted by name.

    Regular files (and links to them) are listed whatever their extension: whether a file is an image is decided
    by decoding it (:func:`restore_paths` reports the ones that are not). Every other entry is reported with a
    reason, never dropped silently: hidden names, sub-folders, broken links, FIFOs, sockets and devices (which
    are never opened, so they cannot block a run).

    Args:
        path (str): An image file or a folder.

    Returns:
        tuple[list[str], dict[str, str]]: The files to try, and the skipped entries (path -> reason).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is neither a regular file nor a folder (e.g. a FIFO).
    """
    if not os.path.isdir(path):
        reason = _not_regular(path)
        if reason is None:
            return [path], {}
        if reason == 'does not exist':
            raise FileNotFoundError(f'input {path} does not exist')
        if reason.startswith('broken'):
            raise FileNotFoundError(f'input {path} is a {reason}')
        raise ValueError(f'input {path}: {reason}')
    paths, skipped = [], {}
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        reason = 'hidden (its name starts with a dot)' if name.startswith('.') else _not_regular(full)
        if reason is None:
            paths.append(full)
        else:
            skipped[full] = reason
    return paths, skipped


def to_bgr8(img):
    """An 8-bit, 3-channel copy of a BGR[A] (uint8, or float32 in [0, 255]) or gray image, for pictures."""
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    img = img[..., :3]
    return img if img.dtype == np.uint8 else np.clip(np.rint(img), 0, 255).astype(np.uint8)


def before_after_row(before, after, width):
    """``before | after`` side by side, resized to ``width`` (area filter when shrinking)."""
    before = cv2.resize(to_bgr8(before), after.shape[1::-1], interpolation=cv2.INTER_CUBIC)
    row = np.hstack([before, to_bgr8(after)])
    height = max(int(round(row.shape[0] * width / row.shape[1])), 1)
    interp = cv2.INTER_AREA if width < row.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(row, (width, height), interpolation=interp)


def output_names(paths):
    """Collision-free output stems, one per input.

    The stem is the file name without its extension; where two inputs share a stem, each gets ``_<ext>``
    (``a.tif`` and ``a.webp`` become ``a_tif`` and ``a_webp``), and a name still taken (``a.png`` and
    ``a.PNG``, or ``a_png.jpg`` beside them; compared case-insensitively, for file systems that ignore case)
    gets ``_2``, ``_3``... So no result overwrites another.

    Args:
        paths (list[str]): Input files.

    Returns:
        dict[str, str]: Input path -> output stem.
    """
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    counts = {}
    for stem in stems:
        counts[stem.casefold()] = counts.get(stem.casefold(), 0) + 1
    names, taken = {}, set()
    for path, stem in zip(paths, stems):
        if path in names:
            continue
        ext = os.path.splitext(path)[1].lstrip('.').lower()
        name = f'{stem}_{ext}' if counts[stem.casefold()] > 1 and ext else stem
        base, n = name, 1
        while name.casefold() in taken:
            n += 1
            name = f'{base}_{n}'
        taken.add(name.casefold())
        names[path] = name
    return names


def check_outputs(output, paths=(), aligned=False, before_after=None, draw_boxes=False):
    """Check, before any work, that the results of a run can be written; create the output folders.

    Args:
        output (str): Output folder.
        paths (list[str]): The inputs (the before/after picture must not overwrite one).
        aligned (bool): The run restores aligned crops (no ``restored_imgs/``).
        before_after (str | None): The before/after picture.
        draw_boxes (bool): The run writes detection debug views (``debug/``; not with ``aligned``).

    Raises:
        NotADirectoryError: ``output`` or one of its result folders is a file, or the picture's folder is.
        IsADirectoryError: ``before_after`` is a folder.
        PermissionError: A folder to write in is not writable.
        ValueError: ``before_after`` has no extension OpenCV writes, or is one of the inputs.
        OSError: A folder cannot be created (the message names it).
    """
    if before_after:
        if os.path.isdir(before_after):
            raise IsADirectoryError(f'--before-after {before_after} is a folder: give a file name such as cmp.png')
        ext = os.path.splitext(before_after)[1].lstrip('.').lower()
        if ext not in WRITABLE_EXTS:
            raise ValueError(
                f'--before-after {before_after}: give a file name ending in one of '
                f'{", ".join("." + e for e in WRITABLE_EXTS)} (e.g. cmp.png)'
            )
        target = os.path.realpath(before_after)
        if any(os.path.realpath(p) == target for p in paths):
            raise ValueError(f'--before-after {before_after} is one of the inputs: it would be overwritten')
        check_writable(before_after, f'--before-after {before_after}')
    if os.path.exists(output) and not os.path.isdir(output):
        raise NotADirectoryError(f'output {output} is a file, not a folder: pass another -o')
    subs = ('cropped_faces', 'restored_faces', 'cmp') + (() if aligned else ('restored_imgs',))
    subs += ('debug',) if draw_boxes and not aligned else ()
    folders = [os.path.join(output, sub) for sub in subs]
    for folder in folders:
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise NotADirectoryError(f'output folder {folder} is a file: move it away or pass another -o')
    check_writable(folders[0], f'output {output}')
    for folder in folders:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise type(err)(err.errno, f'cannot create output folder {folder}: {err.strerror or err}') from err
    if before_after:
        os.makedirs(os.path.dirname(os.path.abspath(before_after)), exist_ok=True)


def _write_debug_view(output, name, suffix, img, detections):
    """Write ``<output>/debug/<name>.png`` (:func:`facesr_kd.face.debug_view.draw_detections`); return its record
    for :func:`restore_paths`'s summary (``suffix``: with its ``_``, as in the restored faces' names)."""
    image = os.path.join(output, 'debug', f'{name}.png')
    write_image(image, debug_view.draw_detections(to_bgr8(img), detections))
    keys = ('box', 'score', 'landmarks5')
    kept = [
        {
            **{k: d[k] for k in keys},
            'index': d['index'],
            'model': d.get('model'),
            'file': f'restored_faces/{name}_{d["index"]:02d}{suffix}.png',
        }
        for d in detections
        if d['kept']
    ]
    rejected = [{**{k: d[k] for k in keys}, 'reason': d['reason']} for d in detections if not d['kept']]
    return {'image': image, 'kept': kept, 'rejected': rejected}


def _ext_note(requested, written):
    """Why a photo is written with another extension than the one asked for (None when it is not)."""
    if requested == written:
        return None
    if not requested:
        return f'the input has no extension: written as .{written}'
    if requested not in WRITABLE_EXTS:
        return f'written as .{written}: OpenCV cannot write .{requested}'
    return f'written as .{written}, not .{requested}: photos with an alpha channel are written as PNG'


def _before_after_height(h, w, width):
    """Height of a :func:`before_after_row` of an (h, w) result at ``width``."""
    return max(int(round(h * width / (2 * w))), 1)


def face_policy_line(by_model, kept, restorer, soft=0):
    """``faces: 5 restored (lite-x4: 2, lite-x8: 3), 2 kept (...)``: which model restored how many faces, and
    how many were kept and why (``kept`` faces in all, ``soft`` of them for softness, the others for size)."""
    restored = sum(by_model.values())
    models = ', '.join(f'{name}: {n}' for name, n in sorted(by_model.items()))
    line = f'faces: {restored} restored' + (f' ({models})' if models else '')
    if not kept:
        return line + ', 0 kept'
    why = []
    if kept - soft:
        why.append(f'{kept - soft} with a native size over {restorer.keep_larger:g} x {restorer.keep_limit()[1]}')
    if soft:
        why.append(f'{soft} soft, with no detail at their own pixel scale (--soft-psnr {restorer.soft_psnr:g})')
    return line + f', {kept} kept ({"; ".join(why)}): upscaled with the photo, never shrunk'


def restore_paths(
    restorer,
    paths,
    output,
    aligned=False,
    only_center_face=False,
    ext='auto',
    suffix=None,
    before_after=None,
    before_after_width=1024,
    skipped=None,
    draw_boxes=False,
):
    """Restore every image of ``paths`` and write the results under ``output``, like GFPGAN's inference script.

    The outputs are checked first (:func:`check_outputs`: a file in the way stops the run before any work). A
    file that cannot be read, restored or written is reported and skipped; the batch goes on. Inputs are read
    with the restorer's input limit (:meth:`FaceSRRestorer.max_input_pixels`), so an image too large to restore
    is refused from its header, before it is decoded, and a FIFO never blocks the run. Writes
    ``cropped_faces/``, ``restored_faces/``, ``cmp/`` and (whole photos) ``restored_imgs/`` under ``output``,
    with collision-free names (:func:`output_names`). What a result does not keep of its input (frames after
    the first, 16-bit gray + alpha, an extension OpenCV cannot write) is printed and noted in the summary.

    Args:
        restorer (FaceSRRestorer): The restorer.
        paths (list[str]): Input images (see :func:`list_inputs`).
        output (str): Output folder.
        aligned (bool): The inputs are aligned (square) face crops.
        only_center_face (bool): Restore only the face nearest the centre.
        ext (str): Extension of the whole photos: ``'auto'`` (the input's, PNG where OpenCV cannot write it),
            ``'png'``, ``'jpg'``...
        suffix (str | None): Suffix of the restored faces and photos.
        before_after (str | None): Also write one picture of "input (bicubic) | result" rows there (it stops
            growing at :data:`BEFORE_AFTER_MAX_PIXELS`).
        before_after_width (int): Width of that picture.
        skipped (dict[str, str] | None): Inputs already skipped while listing (:func:`list_inputs`), reported
            with the others.
        draw_boxes (bool): Whole photos: also write ``debug/<name>.png``, the input with every detection drawn
            (:func:`facesr_kd.face.debug_view.draw_detections`): kept faces with ``#<index>`` (their
            ``<name>_<index>`` files) and rejected ones with the reason. Ignored with ``aligned``.

    Returns:
        dict: ``faces`` (faces per restored input), ``no_face``, ``skipped`` (path -> reason), ``notes``
        (path -> list of messages), ``outputs`` (input -> written photo), ``before_after_error`` (None, or why
        the picture could not be written), the detection / super-resolution / box times in seconds, and
        ``debug`` (input -> ``{'image': the debug view, 'kept': [...], 'rejected': [...]}``, each detection a
        dict with ``box``, ``score``, ``landmarks5``; kept ones with ``index`` and ``file``, the restored face
        written for it; rejected ones with ``reason``), ``by_model`` (model name -> faces it restored) and
        ``kept_large`` (input -> faces kept unrestored: larger than :attr:`FaceSRRestorer.keep_larger` times
        :meth:`FaceSRRestorer.keep_limit`, or soft) and ``kept_soft`` (input -> how many of those were soft).

    Raises:
        OSError, ValueError: From :func:`check_outputs`, or ``suffix`` holds a path separator; raised before any
            input is read.
    """
    if suffix and (os.sep in suffix or (os.altsep and os.altsep in suffix)):
        raise ValueError(f'--suffix {suffix!r} must not contain a path separator')
    draw_boxes = bool(draw_boxes) and not aligned
    check_outputs(output, paths, aligned, before_after, draw_boxes)
    summary = {
        'debug': {},
        'faces': {},
        'no_face': [],
        'skipped': dict(skipped or {}),
        'notes': {},
        'outputs': {},
        'before_after_error': None,
        'boxes_s': 0.0,
        'sr_s': 0.0,
        'detect_s': 0.0,
        'by_model': {},
        'kept_large': {},
        'kept_soft': {},
    }
    for path, reason in summary['skipped'].items():
        tqdm.write(f'skip {path}: {reason}')
    suffix = f'_{suffix}' if suffix else ''
    rows, rows_px, rows_full = [], 0, False
    start = time.perf_counter()
    names = output_names(paths)
    max_pixels = restorer.max_input_pixels(aligned)

    def note(path, message):
        summary['notes'].setdefault(path, []).append(message)
        tqdm.write(f'{path}: {message}')

    for path in tqdm(paths, desc='photos', unit='img', disable=len(paths) < 2):
        name, in_ext = names[path], os.path.splitext(path)[1]
        try:
            img, alpha, img_info = read_image(path, max_pixels=max_pixels)
            if img_info.get('frames', 1) > 1:
                note(path, f'{img_info["frames"]} frames or pages: only the first is restored')
            arr = img if alpha is None else np.dstack([img, alpha])
            cropped, restored, restored_img = restorer.enhance(
                arr, aligned=aligned, only_center_face=only_center_face, paste_back=True, keep_rejected=draw_boxes
            )
            if draw_boxes:
                detections = restorer.last_stats['detections']
                summary['debug'][path] = _write_debug_view(output, name, suffix, img, detections)
            for idx, (lq, face) in enumerate(zip(cropped, restored)):
                tag = f'{name}_{idx:02d}'
                write_image(os.path.join(output, 'cropped_faces', f'{tag}.png'), lq)
                write_image(os.path.join(output, 'restored_faces', f'{tag}{suffix}.png'), face)
                up = cv2.resize(lq, face.shape[1::-1], interpolation=cv2.INTER_CUBIC)
                write_image(os.path.join(output, 'cmp', f'{tag}.png'), np.hstack([up, face]))
            if restored_img is not None:
                requested = (in_ext if ext == 'auto' else ext).lstrip('.').lower()
                out_ext = output_extension(requested)
                if restored_img.ndim == 3 and restored_img.shape[2] == 4:
                    out_ext = 'png'
                ext_note = _ext_note(requested, out_ext)
                # Gray stays gray; gray + alpha is written as a gray + alpha PNG (write_image's choice).
                color = 'gray' if img_info['color'] in ('gray', 'gray_alpha') else 'bgr'
                out_path = os.path.join(output, 'restored_imgs', f'{name}{suffix}.{out_ext}')
                write_image(out_path, restored_img, img_info['bit_depth'], color)
                summary['outputs'][path] = out_path
                if ext_note:
                    note(path, ext_note)
                if img_info['color'] == 'gray_alpha' and img_info['bit_depth'] == 16:
                    note(path, GRAY_ALPHA_16_NOTE)
        except ImageReadError as err:
            reason = str(err).removeprefix(f'{path}: ')
            tqdm.write(f'skip {path}: {reason}')
            summary['skipped'][path] = reason
            continue
        except Exception as err:  # noqa: BLE001  (bad input is reported and skipped, never fatal to a batch)
            tqdm.write(f'skip {path}: {type(err).__name__}: {err}')
            summary['skipped'][path] = f'{type(err).__name__}: {err}'
            continue
        stats = restorer.last_stats
        for key in ('boxes_s', 'sr_s', 'detect_s'):
            summary[key] += stats[key]
        summary['faces'][path] = len(restored)
        for model_name, count in stats.get('by_model', {}).items():
            summary['by_model'][model_name] = summary['by_model'].get(model_name, 0) + count
        large = stats.get('kept_large', [])
        if large:
            summary['kept_large'][path] = len(large)
            soft = sum(bool(d.get('soft')) for d in large)
            if soft:
                summary['kept_soft'][path] = soft
            sizes = ', '.join(f'{d["native_size"]:.0f} px' + (' soft' if d.get('soft') else '') for d in large)
            tqdm.write(f'{path}: {len(large)} face(s) kept ({sizes}): upscaled with the photo, not shrunk')
        if not restored and not large:
            summary['no_face'].append(path)
            tqdm.write(f'{path}: no face found; saving the photo upscaled x{restorer.upscale} only')
        elif stats['box_fallbacks']:
            tqdm.write(f'{path}: landmarks not found on {stats["box_fallbacks"]} face(s); used template boxes')
        if before_after and not rows_full:
            if restored_img is not None:
                heights = [_before_after_height(*restored_img.shape[:2], before_after_width)]
                width = before_after_width
            else:  # faces: at most their own size
                width = min(before_after_width, 2 * restorer.out_size)
                heights = [_before_after_height(*face.shape[:2], width) for face in restored]
            new_px = sum(heights) * width
            if rows_px + new_px > BEFORE_AFTER_MAX_PIXELS:
                rows_full = True
                print(
                    f'before/after picture full ({BEFORE_AFTER_MAX_PIXELS / 1e6:.0f} MP at most): {path} and the '
                    'inputs after it are not in it'
                )
            elif restored_img is not None:
                rows.append(before_after_row(arr, restored_img, width))
            else:
                rows.extend(before_after_row(lq, face, width) for lq, face in zip(cropped, restored))
            rows_px += 0 if rows_full else new_px

    if before_after and rows:
        try:
            write_image(before_after, np.vstack(rows), png_compression=9)
            size = os.path.getsize(before_after)
            print(f'before/after picture: {before_after} ({size / 1e6:.2f} MB)')
        except OSError as err:  # the results are written: report the picture, keep the summary
            summary['before_after_error'] = str(err)
            print(f'error: before/after picture not written: {err}')
    done = len(summary['faces'])
    total = len(paths) + len(skipped or {})
    total_faces = sum(summary['faces'].values())
    notes = f', {len(summary["notes"])} with notes' if summary['notes'] else ''
    print(
        f'{done}/{total} inputs, {total_faces} faces, {len(summary["no_face"])} without a face, '
        f'{len(summary["skipped"])} skipped{notes}, in {time.perf_counter() - start:.1f} s '
        f'(detection {summary["detect_s"]:.1f} s, super-resolution {summary["sr_s"]:.1f} s). Results in {output}'
    )
    kept, soft = sum(summary['kept_large'].values()), sum(summary['kept_soft'].values())
    print(face_policy_line(summary['by_model'], kept, restorer, soft))
    if restorer.needs_boxes and total_faces:
        print(
            f'teacher component boxes ({restorer.box_source}): {summary["boxes_s"]:.2f} s for {total_faces} faces '
            f'({1000 * summary["boxes_s"] / total_faces:.1f} ms/face)'
        )
    return summary
