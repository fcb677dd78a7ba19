"""Detection debug view (``--draw-boxes``) and colour-faithful paste-back (``--color-fix``).

Staged photos from ``../shared/data/faces``, detector retinaface_mobile0.25 offline. The colour tests use the
random-weight tiny student (its colours are arbitrary, so the fix's effect is large) and a bicubic x8 stand-in
(its colours already are the photo's, so the fix must leave it alone).
"""

import os

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd.cli import inference as cli
from facesr_kd.face import colour
from facesr_kd.face.debug_view import KEPT_COLOUR, REJECTED_COLOUR, draw_detections
from facesr_kd.inference import FaceSRRestorer

import cv2
import numpy as np
import pytest

from .conftest import README_COUNTS
from .test_inference import BICUBIC_INFO, DET, DET_ARGS, FACES, BicubicX8, link_inputs

pytestmark = pytest.mark.usefixtures('shared_data')


def bicubic(**kw):
    return FaceSRRestorer(net=BicubicX8(), info=BICUBIC_INFO, upscale=2, **DET, **kw)


def has_colour(img, bgr):
    return bool(np.all(img == np.array(bgr, np.uint8), axis=2).any())


# ------------------------------------------------------------------------------------------------- debug view
@pytest.mark.parametrize('name', ['codeformer_00.jpg', 'gfpgan_10045.png', 'insightface_t1.jpg'])
def test_rejected_listed_and_kept_faces_unchanged(name):
    """Detecting down to the floor keeps exactly the faces of a plain detection, in order, and lists the rest."""
    restorer = bicubic()
    img = cv2.imread(str(FACES / 'whole' / name))
    plain = restorer.detect(img)
    kept, rejected = restorer.detect(img, return_rejected=True)
    assert len(kept) == README_COUNTS[name]
    assert [k['box'].tolist() for k in kept] == [p['box'].tolist() for p in plain]
    for det in rejected:
        assert det['kept'] is False and det['score'] <= restorer.conf_threshold and det['score'] >= 0.5
        assert 'not above --conf 0.97' in det['reason']
    if name != 'codeformer_00.jpg':  # the other two have one weak detection each (0.57, 0.75)
        assert len(rejected) == 1


def test_eye_distance_and_centre_face_reasons():
    img = cv2.imread(str(FACES / 'whole' / 'codeformer_00.jpg'))
    kept, rejected = bicubic(eye_dist_threshold=17).detect(img, return_rejected=True)
    assert kept and rejected and len(kept) + len(rejected) == 4
    for det in kept:
        assert np.linalg.norm(det['landmarks5'][0] - det['landmarks5'][1]) >= 17
    for det in rejected:
        eyes = np.linalg.norm(det['landmarks5'][0] - det['landmarks5'][1])
        assert eyes < 17 and f'eye distance {eyes:.1f} px below --eye-dist-threshold 17' == det['reason']
    restorer = bicubic()
    _, restored, _ = restorer.enhance(img, only_center_face=True, paste_back=False, keep_rejected=True)
    dets = restorer.last_stats['detections']
    assert len(restored) == 1 and [d['index'] for d in dets if d['kept']] == [0]
    assert [d['reason'] for d in dets if not d['kept']] == ['not the face nearest the centre (--only-center-face)'] * 3
    assert restorer.detect(img, only_center_face=True)[0]['box'].tolist() == dets[0]['box'].tolist()


@pytest.fixture(scope='module')
def debug_run(tmp_path_factory, student_ckpt):
    root = tmp_path_factory.mktemp('debug_run')
    names = ['deepface_couple.jpg', 'gfpgan_10045.png']
    sources = [*(FACES / 'whole' / n for n in names), FACES / 'negative' / 'skimage_coffee.png']
    inputs = link_inputs(root / 'in', sources)
    out = root / 'out'
    args = cli.parse_args(
        ['-i', str(inputs), '-o', str(out), '--model', student_ckpt, '--draw-boxes', '--suffix', 'x', *DET_ARGS]
    )
    return inputs, out, cli.run(args)


def test_draw_boxes_cli(debug_run):
    """One kept box per face, indices naming the restored files, rejected ones with a reason, no box without face."""
    inputs, out, summary = debug_run
    for name in ('deepface_couple.jpg', 'gfpgan_10045.png'):
        record = summary['debug'][str(inputs / name)]
        stem = os.path.splitext(name)[0]
        assert record['image'] == str(out / 'debug' / f'{stem}.png')
        assert [k['index'] for k in record['kept']] == list(range(README_COUNTS[name]))
        files = sorted(f for f in os.listdir(out / 'restored_faces') if f.startswith(stem + '_'))
        assert [k['file'] for k in record['kept']] == [f'restored_faces/{f}' for f in files]
        assert all(f == f'{stem}_{i:02d}_x.png' for i, f in enumerate(files))
        view, photo = cv2.imread(record['image']), cv2.imread(str(inputs / name))
        assert view.shape == photo.shape and not has_colour(photo, KEPT_COLOUR)
        for k in record['kept']:  # the box's top edge is drawn in the kept colour
            x0, y0, x1, _ = np.round(k['box']).astype(int)
            row = view[y0, x0 + (x1 - x0) // 4 : x1 - (x1 - x0) // 4]
            assert np.all(row == np.array(KEPT_COLOUR, np.uint8), axis=1).mean() > 0.5
    rejected = summary['debug'][str(inputs / 'gfpgan_10045.png')]['rejected']
    assert len(rejected) == 1 and rejected[0]['reason'].startswith('score 0.75')
    assert has_colour(cv2.imread(str(out / 'debug' / 'gfpgan_10045.png')), REJECTED_COLOUR)
    coffee = summary['debug'][str(inputs / 'skimage_coffee.png')]
    assert coffee['kept'] == [] and summary['faces'][str(inputs / 'skimage_coffee.png')] == 0
    view = cv2.imread(coffee['image'])
    assert view is not None and not has_colour(view, KEPT_COLOUR)


def test_draw_detections_marks_kept_and_rejected():
    img = np.full((300, 400, 3), 128, np.uint8)
    lm = np.array([[150, 120], [190, 120], [170, 140], [155, 160], [185, 160]], float)
    kept = {'box': np.array([120, 90, 220, 190.0]), 'score': 0.99, 'landmarks5': lm, 'kept': True, 'index': 3}
    assert has_colour(draw_detections(img, [kept]), KEPT_COLOUR)
    rejected = {**kept, 'kept': False, 'label': 'score 0.6', 'index': None}
    view = draw_detections(img, [rejected])
    assert has_colour(view, REJECTED_COLOUR) and not has_colour(view, KEPT_COLOUR)
    assert np.array_equal(img, np.full((300, 400, 3), 128, np.uint8))  # drawn on a copy


def test_cli_option_checks():
    base = ['-i', 'x', '--model', 'm.pth']
    with pytest.raises(SystemExit):
        cli.parse_args([*base, '--draw-boxes', '--aligned'])
    with pytest.raises(SystemExit):
        cli.parse_args([*base, '--color-fix', 'histogram'])
    assert cli.parse_args(base).color_fix == colour.DEFAULT_COLOR_FIX == 'wavelet'
    with pytest.raises(ValueError, match='color_fix must be one of'):
        FaceSRRestorer(net=BicubicX8(), info=BICUBIC_INFO, color_fix='histogram')


# ------------------------------------------------------------------------------------------------- colour fix
def test_colour_fixes_on_synthetic_faces():
    """wavelet: the reference's low band, the face's detail; meanstd: the reference's Lab mean and std."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    ref = np.dstack([60 + 0.3 * xx, 120 + 0.2 * yy, 180 - 0.2 * xx]).astype(np.float32)
    detail = 20 * np.sin(xx / 1.5)[..., None].astype(np.float32) * np.ones(3, np.float32)
    face = np.clip(ref[..., ::-1] * 0.7 + 30 + detail, 0, 255)  # wrong colours, plus fine detail
    fixed = colour.apply_color_fix(face, ref, 'wavelet')
    low = colour.wavelet_lowpass
    assert np.abs(low(fixed) - low(ref))[40:-40, 40:-40].mean() < 1.0
    assert np.abs(low(face) - low(ref))[40:-40, 40:-40].mean() > 20
    assert np.corrcoef((fixed - low(fixed))[..., 0].ravel(), detail[..., 0].ravel())[0, 1] > 0.95
    noisy = np.clip(ref * 0.5 + rng.normal(0, 5, ref.shape), 0, 255).astype(np.float32)
    matched = colour.to_lab(colour.apply_color_fix(noisy, ref, 'meanstd')).reshape(-1, 3)
    target = colour.to_lab(ref).reshape(-1, 3)
    np.testing.assert_allclose(matched.mean(0), target.mean(0), atol=1.0)
    np.testing.assert_allclose(matched.std(0), target.std(0), rtol=0.1, atol=0.5)
    assert np.array_equal(colour.apply_color_fix(face, ref, 'none'), face)
    mask = np.ones((256, 256), bool)
    assert colour.paste_colour_error(ref, ref, mask) == pytest.approx(0, abs=1e-3)
    assert colour.paste_colour_error(fixed, ref, mask) < 0.1 * colour.paste_colour_error(face, ref, mask)
    with pytest.raises(ValueError, match='empty'):
        colour.paste_colour_error(ref, ref, ~mask)


def photo_errors(restorer, img, methods):
    """paste_colour_error of the pasted photo vs the upscaled input within the faces, per colour fix."""
    errors, outs, faces = {}, {}, {}
    for method in methods:
        restorer.color_fix = method
        _, faces[method], out = restorer.enhance(img)
        mask = np.zeros(out.shape[:2], bool)
        for det in restorer.last_stats['detections']:
            mask |= colour.face_region_mask(out.shape, det['affine'], restorer.out_size, restorer.upscale)
        assert mask.any()
        errors[method] = colour.paste_colour_error(out, restorer.upscale_background(img), mask)
        outs[method] = out
    return errors, outs, faces


@pytest.mark.parametrize('name', ['deepface_couple.jpg', 'skimage_astronaut.png'])
def test_colour_fix_brings_random_student_faces_to_the_photo(student_ckpt, name):
    restorer = FaceSRRestorer(model_path=student_ckpt, upscale=2, **DET)
    errors, _, faces = photo_errors(restorer, cv2.imread(str(FACES / 'whole' / name)), colour.COLOR_FIXES)
    # Measured: none 33.3 / 29.9, meanstd 26.8 / 21.6, wavelet 9.5 / 9.0 (see the helper report).
    assert errors['none'] > 20, errors
    assert errors['wavelet'] < 0.4 * errors['none'], errors
    assert errors['meanstd'] < 0.9 * errors['none'], errors
    # The fix is for the paste: the restored faces returned (restored_faces/, cmp/) are the network's output.
    assert all(np.array_equal(a, b) for a, b in zip(faces['none'], faces['wavelet'])) and faces['none']


def test_colour_fix_leaves_matching_colours_alone():
    """The bicubic stand-in's faces already have the photo's colours: the fix changes next to nothing."""
    img = cv2.imread(str(FACES / 'whole' / 'codeformer_00.jpg'))
    errors, outs, _ = photo_errors(bicubic(), img, ('none', 'wavelet', 'meanstd'))
    assert errors['none'] < 1.5, errors  # measured 0.93
    for method in ('wavelet', 'meanstd'):
        assert abs(errors[method] - errors['none']) < 0.05, errors
        diff = np.abs(outs[method].astype(np.float32) - outs['none'])
        assert diff.mean() < 0.1 and diff.max() <= 8, (method, diff.mean(), diff.max())
