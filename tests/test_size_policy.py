"""Face-size-aware restoration: which model each face gets, or whether it is kept (facesr_kd.inference).

Two policies: the default ``crop_method='native'`` restores each face where it lies, at its own size, with the
model whose scale matches the upscale; the other crops send each face to the model whose input matches its size.

Faces are synthetic: five landmarks on the FFHQ template, scaled to a chosen native size and placed in a smooth
random image, passed to ``FaceSRRestorer.enhance(faces=...)`` so no detector runs. The zoo is tests/zoo_helpers.py's:
tiny LiteFaceStudents with RANDOM weights (16 -> 128 x8 and 32 -> 128 x4); with ``perturb=False`` each outputs the
bicubic of its input, so a restored face region must match the bicubic-upscaled photo (the pipeline alone).
"""

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd.face import align, debug_view
from facesr_kd.inference import (
    DEFAULT_KEEP_LARGER,
    NATIVE_KEEP_LARGER,
    NATIVE_MARGIN,
    SOFT_FACE_PSNR,
    FaceSRRestorer,
    choose_by_upscale,
    choose_model,
    crop_face,
    face_policy_line,
    lq_affine,
    native_face_size,
    soft_face,
)

import cv2
import numpy as np
import pytest

from .zoo_helpers import make_tiny_zoo


def landmarks(native, centre, angle=0.0):
    """Five template landmarks of a face whose aligned crop has side ``native`` in the photo, rotated by ``angle``."""
    pts = align.face_template(native) - native / 2
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return pts @ np.array([[c, s], [-s, c]]) + np.asarray(centre, np.float64)


def face(native, centre, angle=0.0):
    lm = landmarks(native, centre, angle)
    half = native / 2
    box = np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])
    return {'landmarks5': lm, 'box': box, 'score': 0.99}


def smooth_photo(h=240, w=320, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (h // 8, w // 8, 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


@pytest.fixture(scope='module')
def bicubic_zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp('bicubic_zoo')
    make_tiny_zoo(str(folder), perturb=False)
    return str(folder)


@pytest.mark.parametrize(
    ('native', 'expected'),
    [(10, 0), (16, 0), (16.5, 1), (32, 1), (40, 1), (40.5, None), (300, None)],
)
def test_choose_model_smallest_input_at_least_the_face_else_kept(native, expected):
    assert choose_model(native, [16, 32], keep_larger=DEFAULT_KEEP_LARGER) == expected


def test_choose_model_without_margin_restores_every_face():
    assert choose_model(1000, [32, 64], keep_larger=0) == 1 and choose_model(1000, [64], keep_larger=None) == 0
    assert choose_model(50, [64, 32], keep_larger=1.25) == 0  # any order of the inputs
    with pytest.raises(ValueError):
        choose_model(10, [])


@pytest.mark.parametrize('native', [12, 30, 64, 200])
@pytest.mark.parametrize('angle', [0, 25])
def test_native_face_size_from_landmarks(native, angle):
    affine = align.estimate_affine(landmarks(native, (300, 200), angle), 256)
    assert native_face_size(affine, 256) == pytest.approx(native, rel=1e-3)
    assert native_face_size(align.estimate_affine(landmarks(native, (300, 200), angle), 512), 512) == pytest.approx(
        native, rel=1e-3
    )


def test_restorer_sends_each_face_to_its_model_and_keeps_large_ones(bicubic_zoo):
    r = FaceSRRestorer(zoo=bicubic_zoo, upscale=2, device='cpu', color_fix='none', crop_method='gauss')
    assert not r.native and r.keep_larger == DEFAULT_KEEP_LARGER
    img = smooth_photo()
    faces = [face(12, (40, 40)), face(24, (110, 50), 10), face(36, (200, 60)), face(80, (160, 160))]
    cropped, restored, out = r.enhance(img, faces=faces)
    stats = r.last_stats
    assert stats['by_model'] == {'lite-x8': 1, 'lite-x4': 2}
    assert [d['model'] for d in stats['detections']] == ['lite-x8', 'lite-x4', 'lite-x4']
    assert [c.shape[:2] for c in cropped] == [(16, 16), (32, 32), (32, 32)]  # cropped at the model's input side
    assert all(f.shape == (128, 128, 3) for f in restored)
    [large] = stats['kept_large']
    assert large['native_size'] == pytest.approx(80, rel=1e-3) and 'kept' in large['reason']
    # The kept face is the plain bicubic upscale of the photo: not shrunk, not restored.
    bic = cv2.resize(img, (640, 480), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out[260:380, 260:380], bic[260:380, 260:380])
    # Every face restored with the margin off.
    r.keep_larger = 0
    r.enhance(img, faces=faces)
    assert r.last_stats['by_model'] == {'lite-x8': 1, 'lite-x4': 3} and r.last_stats['kept_large'] == []


def test_a_path_model_restores_every_face_unless_told(bicubic_zoo):
    path = next(m.path for m in __import__('facesr_kd.zoo', fromlist=['x']).list_models(bicubic_zoo))
    r = FaceSRRestorer(model_path=path, device='cpu', upscale=2, crop_method='gauss')
    assert not r.from_zoo and r.keep_larger == 0
    native = FaceSRRestorer(model_path=path, device='cpu', upscale=2)  # faces at their own size: large ones kept
    assert native.native and native.keep_larger == NATIVE_KEEP_LARGER
    r.enhance(smooth_photo(), faces=[face(80, (160, 120))], paste_back=False)
    assert r.last_stats['faces'] == 1
    kept = FaceSRRestorer(model_path=path, device='cpu', upscale=2, keep_larger=1.25, crop_method='gauss')
    kept.enhance(smooth_photo(), faces=[face(80, (160, 120))], paste_back=False)
    assert kept.last_stats['faces'] == 0 and len(kept.last_stats['kept_large']) == 1


@pytest.mark.parametrize(('upscale', 'expected'), [(1, 0), (2, 0), (4, 0), (4.5, 1), (8, 1), (16, 1)])
def test_choose_by_upscale_smallest_scale_at_least_the_upscale_else_largest(upscale, expected):
    assert choose_by_upscale(upscale, [4, 8]) == expected
    assert choose_by_upscale(upscale, [8, 4]) == 1 - expected  # any order
    with pytest.raises(ValueError):
        choose_by_upscale(2, [])


@pytest.mark.parametrize(('upscale', 'model'), [(4, 'lite-x4'), (8, 'lite-x8'), (2, 'lite-x4')])
def test_native_restores_each_face_at_its_own_size_with_the_upscale_model(bicubic_zoo, upscale, model):
    # soft_psnr=0: the smooth test photo is soft at its pixel scale everywhere (test_soft_faces_are_kept)
    r = FaceSRRestorer(zoo=bicubic_zoo, upscale=upscale, device='cpu', color_fix='none', soft_psnr=0)
    assert r.native and r.keep_larger == NATIVE_KEEP_LARGER
    img = smooth_photo()
    faces = [face(12, (40, 40)), face(24, (110, 50), 10), face(36, (200, 60)), face(200, (160, 130))]
    cropped, restored, out = r.enhance(img, faces=faces)
    stats = r.last_stats
    assert stats['by_model'] == {model: 3} and [d['model'] for d in stats['detections']] == [model] * 3
    scale = {'lite-x4': 4, 'lite-x8': 8}[model]
    for c, f, det in zip(cropped, restored, stats['detections']):
        x0, y0, x1, y1 = det['crop_box']
        assert c.shape[:2] == (y1 - y0, x1 - x0)  # the photo's own pixels: no resampling
        assert np.array_equal(c, img[y0:y1, x0:x1])
        assert f.shape[:2] == (scale * (y1 - y0), scale * (x1 - x0))
    # the box is the face's aligned square (rotated for the second face) plus the margin, clipped to the photo
    sides = [d['crop_box'][2] - d['crop_box'][0] for d in stats['detections']]
    assert sides[0] == pytest.approx(12 + 2 * NATIVE_MARGIN, abs=2) and sides[2] == pytest.approx(36 + 16, abs=2)
    rotated = 24 * (np.cos(np.radians(10)) + np.sin(np.radians(10)))  # the 10-degree square's axis-aligned side
    assert sides[1] == pytest.approx(rotated + 2 * NATIVE_MARGIN, abs=2) and sides[1] > 24 + 2 * NATIVE_MARGIN + 2
    # 200 px is over NATIVE_KEEP_LARGER x the model's training input (16 or 32 px in the tiny zoo): kept
    [large] = stats['kept_large']
    assert 'kept' in large['reason'] and 'was trained at' in large['reason']
    assert out.shape[:2] == (240 * upscale, 320 * upscale)


@pytest.mark.parametrize('upscale', [4, 8, 2])
def test_native_pipeline_of_a_bicubic_model_is_the_bicubic_photo(bicubic_zoo, upscale):
    """A bicubic "model" restoring faces at their own size gives the bicubic photo: crop, scale and paste line up
    to the pixel (the first face touches the photo's border, the second is rotated)."""
    r = FaceSRRestorer(zoo=bicubic_zoo, upscale=upscale, device='cpu', color_fix='none', soft_psnr=0)
    img = smooth_photo(seed=1)
    _, _, out = r.enhance(img, faces=[face(20, (12, 14)), face(28, (150, 120), 15)])
    assert r.last_stats['faces'] == 2
    bic = cv2.resize(img, (320 * upscale, 240 * upscale), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    mse = np.mean((out.astype(np.float64) - bic) ** 2)
    assert 10 * np.log10(255**2 / mse) > 50


def test_soft_face_holds_no_detail_at_its_pixel_scale():
    rng = np.random.default_rng(0)
    detail = rng.integers(0, 256, (40, 40, 3), np.uint8)
    enlarged = cv2.resize(detail[:5, :5], (40, 40), interpolation=cv2.INTER_CUBIC)  # a photo enlarged x8
    assert soft_face(enlarged, SOFT_FACE_PSNR) and not soft_face(detail, SOFT_FACE_PSNR)
    assert not soft_face(enlarged, 0) and not soft_face(enlarged, None) and not soft_face(enlarged[:3, :3], 20)
    assert soft_face(np.full((8, 8, 3), 7, np.uint8), 60)  # flat: identical after the round trip


def test_soft_faces_are_kept_and_sharp_ones_restored(bicubic_zoo):
    """On a photo enlarged x8 (no detail at its pixel scale) the faces are kept, saying why; with the photo's own
    detail they are restored; soft_psnr=0 restores them all."""
    faces = [face(20, (60, 60)), face(24, (200, 120))]
    r = FaceSRRestorer(zoo=bicubic_zoo, upscale=4, device='cpu', color_fix='none')
    assert r.soft_psnr == SOFT_FACE_PSNR
    _, _, out = r.enhance(smooth_photo(), faces=faces)
    kept = r.last_stats['kept_large']
    assert r.last_stats['faces'] == 0 and len(kept) == 2 and all(k['soft'] for k in kept)
    assert 'soft, no detail at its own pixel scale' in kept[0]['reason'] and kept[0]['label'] == 'kept: soft'
    bic = cv2.resize(smooth_photo(), (1280, 960), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out, bic)
    sharp = np.random.default_rng(1).integers(0, 256, (240, 320, 3), np.uint8)
    r.enhance(sharp, faces=faces)
    assert r.last_stats['faces'] == 2 and r.last_stats['kept_large'] == []
    r.soft_psnr = 0
    r.enhance(smooth_photo(), faces=faces)
    assert r.last_stats['faces'] == 2
    with pytest.raises(ValueError, match='soft_psnr must be'):
        FaceSRRestorer(zoo=bicubic_zoo, device='cpu', soft_psnr=-1)


def test_policy_line_says_how_many_faces_were_kept_and_why(bicubic_zoo):
    r = FaceSRRestorer(zoo=bicubic_zoo, upscale=4, device='cpu')
    assert face_policy_line({'lite-x4': 3}, 0, r) == 'faces: 3 restored (lite-x4: 3), 0 kept'
    line = face_policy_line({'lite-x4': 3}, 3, r, soft=1)
    assert line.startswith('faces: 3 restored (lite-x4: 3), 3 kept (2 with a native size over 4 x 32 px (the input ')
    assert '1 soft, with no detail at their own pixel scale (--soft-psnr 37)' in line and 'never shrunk' in line


def test_paste_box_feathers_inner_sides_only():
    region = np.zeros((20, 30, 3), np.uint8)
    face_ = np.full((20, 30, 3), 200, np.uint8)
    out = align.paste_box(region, face_, feather=5, edges=(True, False, False, True))
    assert out[19, 0, 0] == 200 and out[10, 10, 0] == 200  # bottom and left sides: the photo's border, not feathered
    assert out[0, 10, 0] == 20 and out[10, 29, 0] == 20  # half a pixel into a ramp of 5: weight 0.1
    assert out[2, 10, 0] == 100  # 2.5 pixels in: half
    with pytest.raises(ValueError, match='differ in size'):
        align.paste_box(region, face_[:10], feather=5)


@pytest.mark.parametrize('method', ['gauss', 'area', 'two-step'])
def test_pipeline_of_a_bicubic_model_reproduces_the_bicubic_photo(bicubic_zoo, method):
    """A bicubic "model" restoring faces cropped at its input and pasted back gives nearly the bicubic photo:
    crop (one antialiased resampling, corner-aligned as the training LR) and paste (centred) line up."""
    r = FaceSRRestorer(zoo=bicubic_zoo, upscale=4, device='cpu', color_fix='none', crop_method=method)
    assert not r.native
    img = smooth_photo(seed=1)
    _, _, out = r.enhance(img, faces=[face(28, (150, 120), 15)])
    bic = cv2.resize(img, (1280, 960), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    region = (slice(4 * 120 - 30, 4 * 120 + 30), slice(4 * 150 - 30, 4 * 150 + 30))
    mse = np.mean((out[region].astype(np.float64) - bic[region]) ** 2)
    psnr = 10 * np.log10(255**2 / mse)
    assert psnr > {'gauss': 38, 'area': 33, 'two-step': 30}[method], f'{method}: {psnr:.1f} dB'


def test_crop_face_shrinks_with_antialiasing():
    """A fine checkerboard cropped at a quarter of its size averages to gray (no aliasing), both methods."""
    img = (np.indices((400, 400)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)
    affine = lq_affine(align.estimate_affine(landmarks(256, (200, 200)), 256), 256, 64)
    for method in ('gauss', 'area'):
        crop = crop_face(img, affine, 64, method).astype(np.float64)
        assert abs(crop.mean() - 127.5) < 6 and crop.std() < 12, method


def test_debug_view_shows_the_model_and_kept_faces():
    img = np.zeros((200, 300, 3), np.uint8)
    dets = [
        {**face(40, (60, 60)), 'kept': True, 'index': 0, 'model': 'lite-x4'},
        {**face(120, (200, 100)), 'kept': False, 'size_kept': True, 'label': 'kept 120px'},
    ]
    out = debug_view.draw_detections(img, dets)
    colours = {tuple(c) for c in out.reshape(-1, 3)}
    assert debug_view.KEPT_COLOUR in colours and debug_view.SIZE_KEPT_COLOUR in colours
    assert debug_view.REJECTED_COLOUR not in colours
