"""Face detection, alignment, paste-back and robust image reading on the staged real photos."""

from facesr_kd.face.align import (
    affine_scale,
    estimate_affine,
    face_template,
    inside_fraction,
    paste_face,
    paste_inverse,
    transform_points,
    warp_face,
)
from facesr_kd.face.components import FFHQ_TEMPLATE_512
from facesr_kd.face.detection import DET_MODELS, build_detector, detect_faces
from facesr_kd.face.image_io import ImageReadError, read_image

import cv2
import numpy as np
import pytest
from PIL import Image

from .conftest import FACEXLIB_WEIGHTS, FFHQ256, SHARED_DATA

# Every test here reads the staged faces or detector weights in ../shared/data.
pytestmark = pytest.mark.usefixtures('shared_data')

WHOLE = SHARED_DATA / 'faces' / 'whole'


@pytest.fixture(scope='module')
def detector(shared_data):
    return build_detector('retinaface_mobile0.25', FACEXLIB_WEIGHTS)


def test_template_and_affine_roundtrip():
    np.testing.assert_allclose(face_template(512), FFHQ_TEMPLATE_512)
    np.testing.assert_allclose(face_template(256), FFHQ_TEMPLATE_512 / 2)
    # Landmarks of a face that is the template rotated by 20 degrees, scaled by 3 and shifted.
    angle = np.deg2rad(20)
    rot = 3 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    photo_points = face_template(256) @ rot.T + [400, 300]
    affine = estimate_affine(photo_points, 256)
    np.testing.assert_allclose(transform_points(photo_points, affine), face_template(256), atol=1e-3)
    assert affine_scale(affine) == pytest.approx(1 / 3, rel=1e-4)
    assert inside_fraction((2000, 2000), affine, 256) == 1.0
    assert inside_fraction((300, 300), affine, 256) < 1.0


def test_missing_detector_weights_names_file_url_and_option(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        build_detector('retinaface_resnet50', tmp_path)
    msg = str(err.value)
    assert DET_MODELS['retinaface_resnet50']['file'] in msg
    assert DET_MODELS['retinaface_resnet50']['url'] in msg
    assert '--model-root' in msg and str(tmp_path) in msg


def test_detect_align_paste(detector, shared_data):
    img, alpha, info = read_image(WHOLE / 'skimage_astronaut.png')
    assert alpha is None and info['color'] == 'bgr'
    faces = detect_faces(detector, img, resize=640, eye_dist_threshold=5)
    assert len(faces) == 1
    face = faces[0]
    assert face['landmarks5'].shape == (5, 2) and face['box'].shape == (4,) and face['score'] > 0.97
    x1, y1, x2, y2 = face['box']
    assert all(x1 < x < x2 and y1 < y < y2 for x, y in face['landmarks5'])

    affine = estimate_affine(face['landmarks5'], 256)
    crop = warp_face(img, affine, 256)
    crop_aa = warp_face(img, affine, 256, antialias=True)
    assert crop.shape == crop_aa.shape == (256, 256, 3) and crop.dtype == np.uint8
    # Aligned, the eyes sit where the template puts them (re-detected on the crop).
    again = detect_faces(detector, crop_aa, resize=None)
    assert again, 'no face found on the aligned crop'
    eye_err = np.linalg.norm(again[0]['landmarks5'][:2] - face_template(256)[:2], axis=1)
    assert eye_err.max() < 6, eye_err

    # Pasting the unchanged crop back at x1 leaves the photo nearly as it was; x2 gives the upscaled size.
    pasted = paste_face(img, crop, affine, 1)
    assert pasted.shape == img.shape and pasted.dtype == img.dtype
    x1, y1, x2, y2 = face['box'].astype(int)
    diff = np.abs(pasted[y1:y2, x1:x2].astype(float) - img[y1:y2, x1:x2]).mean()
    assert diff < 6, diff
    restored = np.full((512, 512, 3), 255, np.uint8)
    up = cv2.resize(img, None, fx=2, fy=2)
    up_rgba = np.concatenate([up, np.full(up.shape[:2] + (1,), 7, np.uint8)], axis=2)
    out = paste_face(up_rgba, restored, affine, 2, face_size=256)
    assert out.shape == up_rgba.shape and (out[..., 3] == 7).all()
    cx, cy = transform_points(face_template(256).mean(0, keepdims=True), cv2.invertAffineTransform(affine))[0] * 2
    assert (out[int(cy), int(cx), :3] == 255).all()
    assert (out[0, 0, :3] == up[0, 0]).all()


def test_no_face_on_negative(detector, shared_data):
    img, _, _ = read_image(SHARED_DATA / 'faces' / 'negative' / 'skimage_coffee.png')
    assert detect_faces(detector, img, resize=640, eye_dist_threshold=5) == []


def test_read_image_variants(tmp_path, shared_data):
    bgr = cv2.imread(str(FFHQ256 / '00000.jpg'))
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / 'gray.png'), gray)
    img, alpha, info = read_image(tmp_path / 'gray.png')
    assert img.shape == (256, 256, 3) and alpha is None and info['color'] == 'gray'

    rgba = np.concatenate([bgr, np.full((256, 256, 1), 128, np.uint8)], axis=2)
    cv2.imwrite(str(tmp_path / 'rgba.png'), rgba)
    img, alpha, info = read_image(tmp_path / 'rgba.png')
    assert img.shape == (256, 256, 3) and (alpha == 128).all() and info['color'] == 'bgra'
    np.testing.assert_array_equal(img, bgr)

    cv2.imwrite(str(tmp_path / 'deep.png'), bgr.astype(np.uint16) * 257)
    img, alpha, info = read_image(tmp_path / 'deep.png')
    assert info['bit_depth'] == 16 and img.dtype == np.float32
    np.testing.assert_allclose(img, bgr, atol=1e-3)

    # EXIF orientation 6 (rotate 90 degrees clockwise to display) is applied, as cv2.imread does.
    pil = Image.open(FFHQ256 / '00000.jpg').crop((0, 0, 256, 200))
    exif = Image.Exif()
    exif[0x0112] = 6
    pil.save(tmp_path / 'rotated.jpg', exif=exif)
    img, _, info = read_image(tmp_path / 'rotated.jpg')
    assert info['orientation'] == 6 and img.shape == (256, 200, 3)

    data = (FFHQ256 / '00001.jpg').read_bytes()
    (tmp_path / 'truncated.jpg').write_bytes(data[: len(data) // 2])
    (tmp_path / 'garbage.png').write_bytes(b'not an image at all' * 10)
    (tmp_path / 'empty.jpg').write_bytes(b'')
    png = (WHOLE / 'skimage_astronaut.png').read_bytes()
    (tmp_path / 'truncated.png').write_bytes(png[: len(png) // 3])
    for name, reason in [('truncated.jpg', 'truncated'), ('truncated.png', 'truncated'), ('garbage.png', 'unreadable'),
                         ('empty.jpg', 'unreadable'), ('missing.jpg', 'unreadable')]:  # fmt: skip
        with pytest.raises(ValueError) as err:
            read_image(tmp_path / name)
        assert isinstance(err.value, ImageReadError) and err.value.reason == reason, (name, err.value)
        assert name in str(err.value)


def test_paste_maps_pixel_centres_onto_the_resized_photos_centres():
    """A face warped out of a photo and pasted back into the photo upscaled x4 by cv2.resize lands on it: the
    paste maps photo pixel p to (p + 0.5) * 4 - 0.5. facexlib's shift (half an output pixel more) misses it."""
    rng = np.random.default_rng(0)
    photo = cv2.GaussianBlur(rng.uniform(0, 255, (64, 64, 3)).astype(np.float32), (0, 0), 3)
    affine = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # photo -> aligned face of side 64
    face = cv2.warpAffine(photo, affine * 4, (256, 256), flags=cv2.INTER_CUBIC)  # the restored face, at 256
    upscaled = cv2.resize(photo, (256, 256), interpolation=cv2.INTER_CUBIC)
    pasted = paste_face(np.zeros_like(upscaled), face, affine, 4, face_size=64, soft_mask=False)
    facexlib = cv2.warpAffine(face, paste_inverse(affine * 4, 4) + [[0, 0, 0.5], [0, 0, 0.5]], (256, 256))
    inner = np.s_[32:-32, 32:-32]
    ours, theirs = (np.abs(x[inner] - upscaled[inner]).mean() for x in (pasted, facexlib))
    assert ours < 0.1 < theirs, (ours, theirs)
