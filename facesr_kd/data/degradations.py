"""LR faces made the way small faces reach a restorer: a mix of resizing kernels, mild blur, noise and JPEG.

Faces in photos are not MATLAB-bicubic downsamples of clean images: they were shrunk by a camera, a browser or an
editor (area, bilinear, bicubic resampling), blurred by optics and compression, and saved as JPEG. A network
trained only on clean bicubic LR faces treats those artefacts as detail. ``RealisticDownscale`` draws one such
chain per face; ``FaceSRDataset``'s ``degradation`` option uses it in training, and ``lq_jpeg_quality`` gives the
fixed JPEG benchmark (clean downscale, then JPEG at one quality).

The noise step is BasicSR's (``basicsr.data.degradations``); the rest is OpenCV.
"""

import random

import cv2
import numpy as np
from basicsr.data.degradations import random_add_gaussian_noise
from basicsr.utils.matlab_functions import imresize

# Resizing kernels: MATLAB bicubic (BasicSR's imresize, antialiased), and OpenCV's, as editors and browsers use.
KERNELS = {
    'matlab': None,
    'area': cv2.INTER_AREA,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
}

DEFAULTS = {
    'clean_prob': 0.3,  # share of faces left as clean MATLAB-bicubic LR (the benchmark's LR)
    'kernels': ['matlab', 'area', 'bilinear', 'bicubic'],
    'blur_prob': 0.4,
    'blur_sigma': [0.2, 1.0],  # Gaussian blur before downscaling, in LR pixels
    'noise_prob': 0.3,
    'noise_sigma': [0.0, 4.0],  # Gaussian noise on the LR face, in 8-bit levels
    'jpeg_prob': 0.6,
    'jpeg_quality': [50, 95],
}


def quantise(img):
    """Round a [0, 1] float image to 8 bits, as a saved LR face is."""
    return (np.clip(np.rint(img * 255.0), 0, 255) / 255.0).astype(np.float32)


def resize_down(img, size, kernel):
    """``img`` (H, W, 3) float32 resized to (size, size) with one of ``KERNELS``."""
    if kernel not in KERNELS:
        raise ValueError(f'unknown resizing kernel {kernel!r}; use one of {sorted(KERNELS)}')
    if KERNELS[kernel] is None:
        return imresize(img, size / img.shape[0])
    return cv2.resize(img, (size, size), interpolation=KERNELS[kernel])


def jpeg(img, quality):
    """``img`` (H, W, 3) BGR float32 in [0, 1] through JPEG at ``quality`` (an int, 1–100), from 8 bits."""
    ok, buf = cv2.imencode(
        '.jpg', np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise ValueError(f'JPEG encoding failed for an image of shape {img.shape}')
    return cv2.imdecode(buf, cv2.IMREAD_COLOR).astype(np.float32) / 255.0


def _range(value, name, low, high):
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)):
        raise ValueError(f'degradation.{name} must be a [min, max] pair of numbers, got {value!r}')
    if not (low <= value[0] <= value[1] <= high):
        raise ValueError(f'degradation.{name} must satisfy {low} <= min <= max <= {high}, got {value!r}')
    return float(value[0]), float(value[1])


def _prob(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f'degradation.{name} must be a probability in [0, 1], got {value!r}')
    return float(value)


class RealisticDownscale:
    """Draw one degradation chain per face: [blur] → resize (random kernel) → [noise] → [JPEG] → 8 bits.

    Args:
        opt (dict | None): Overrides of ``DEFAULTS`` (keys as there). Unknown keys are an error.

    Call it on an HR face (H, W, 3) BGR float32 in [0, 1] with the LR side; it returns the LR face
    (size, size, 3) float32 in [0, 1], multiples of 1/255.
    """

    def __init__(self, opt=None):
        opt = dict(opt or {})
        unknown = sorted(set(opt) - set(DEFAULTS))
        if unknown:
            raise ValueError(f'unknown degradation options {unknown}; known: {sorted(DEFAULTS)}')
        cfg = {**DEFAULTS, **opt}
        self.clean_prob = _prob(cfg['clean_prob'], 'clean_prob')
        self.blur_prob = _prob(cfg['blur_prob'], 'blur_prob')
        self.noise_prob = _prob(cfg['noise_prob'], 'noise_prob')
        self.jpeg_prob = _prob(cfg['jpeg_prob'], 'jpeg_prob')
        kernels = cfg['kernels']
        if not isinstance(kernels, (list, tuple)) or not kernels or any(k not in KERNELS for k in kernels):
            raise ValueError(f'degradation.kernels must be a non-empty list of {sorted(KERNELS)}, got {kernels!r}')
        self.kernels = list(kernels)
        self.blur_sigma = _range(cfg['blur_sigma'], 'blur_sigma', 0, 10)
        self.noise_sigma = _range(cfg['noise_sigma'], 'noise_sigma', 0, 50)
        self.jpeg_quality = _range(cfg['jpeg_quality'], 'jpeg_quality', 1, 100)

    def __call__(self, img_gt, size):
        if random.random() < self.clean_prob:
            return quantise(imresize(img_gt, size / img_gt.shape[0]))
        img = img_gt
        if random.random() < self.blur_prob:
            sigma = random.uniform(*self.blur_sigma) * img_gt.shape[0] / size
            img = cv2.GaussianBlur(img, (0, 0), sigma)
        img = np.clip(resize_down(img, size, random.choice(self.kernels)), 0, 1)
        if random.random() < self.noise_prob:
            sigma = random.uniform(*self.noise_sigma)
            img = random_add_gaussian_noise(img, sigma_range=(sigma, sigma), clip=True)
        if random.random() < self.jpeg_prob:
            img = jpeg(img, random.randint(int(self.jpeg_quality[0]), int(self.jpeg_quality[1])))
        return quantise(img)
