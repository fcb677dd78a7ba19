"""The photo benchmark (facesr_kd.benchmarks.photos, facesr-kd-benchmark-photos) end to end on staged photos.

The zoo is tests/zoo_helpers.py's: tiny LiteFaceStudents with RANDOM weights whose output is the bicubic of their
input, so the scores measure the crop / paste pipeline alone, never quality.
"""

import math

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd.benchmarks.photos import comparison_picture, face_region, load_rows, shrink, summarise
from facesr_kd.cli import benchmark_photos as cli

import numpy as np
import pytest

from .conftest import FACEXLIB_WEIGHTS, SHARED_DATA
from .zoo_helpers import make_tiny_zoo

WHOLE = SHARED_DATA / 'faces' / 'whole'


def test_shrink_and_face_region():
    img = np.zeros((101, 203, 3), np.uint8)
    ref, small = shrink(img, 4)
    assert ref.shape == (100, 200, 3) and small.shape == (25, 50, 3)
    assert face_region([1.2, 2.0, 10.1, 30.0], 4, (100, 200)) == (4, 8, 41, 100)


@pytest.mark.parametrize(('region', 'shape'), [((0, 0, 300, 100), (204, 604, 3)), ((0, 0, 100, 100), (100, 412, 3))])
def test_comparison_picture_puts_a_wide_region_in_two_rows(region, shape):
    """Four panels (input, bicubic, ours, original): one row, or two rows of two for a region wider than tall,
    with 4-pixel white separators."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (100, 300, 3), np.uint8)
    small = img[::4, ::4]
    images = {'small': small, 'bicubic': img, 'ours': img.copy(), 'reference': img.copy(), 'regions': [region]}
    pic = comparison_picture({**images, 'up': 4}, margin=0)
    assert pic.shape == shape and (pic[:, region[2]] == 255).all()  # the separator after the first panel


def test_summarise_counts_losses():
    rows = [
        {'photo': 'a', 'factor': 4, 'model': 'lite-x4', 'psnr_bicubic': 30.0, 'psnr_ours': 31.0, 'gain_db': 1.0},
        {'photo': 'b', 'factor': 4, 'model': 'kept', 'psnr_bicubic': 30.0, 'psnr_ours': 29.5, 'gain_db': -0.5},
    ]
    s = summarise(rows)['4']
    assert s['faces'] == 2 and s['photos'] == 2 and s['mean_gain_db'] == pytest.approx(0.25)
    assert s['faces_below_bicubic_by_0.2dB'] == 1 and s['models'] == {'lite-x4': 1, 'kept': 1}


@pytest.fixture(scope='module')
def bicubic_zoo(tmp_path_factory, shared_data):
    folder = tmp_path_factory.mktemp('zoo')
    make_tiny_zoo(str(folder))
    return str(folder)


@pytest.mark.slow
def test_benchmark_end_to_end_on_a_staged_photo(bicubic_zoo, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('FACESR_KD_ZOO', bicubic_zoo)
    out = tmp_path / 'bench'
    args = ['-i', str(WHOLE / 'gfpgan_00.jpg'), '-o', str(out), '--factors', '4', '--model-root', str(FACEXLIB_WEIGHTS)]
    assert cli.main([*args, '--no-progress']) == 0
    rows = load_rows(out / 'faces.csv')
    assert len(rows) >= 1 and all(r['factor'] == '4' for r in rows)
    for r in rows:  # the pipeline alone: within a dB or so of bicubic, never far off
        assert r['psnr_ours'] > r['psnr_bicubic'] - 1.5, r
    assert (out / 'faces.md').read_text().startswith('# Photo benchmark')
    assert list(out.glob('comparison_gfpgan_00_x4.png'))
    assert 'x4:' in capsys.readouterr().out


@pytest.mark.slow
def test_large_faces_are_kept_without_shrink(bicubic_zoo, tmp_path, monkeypatch):
    """deepface_couple.jpg at --upscale 2, not shrunk: both large faces are kept (they score as the plain upscale)."""
    monkeypatch.setenv('FACESR_KD_ZOO', bicubic_zoo)
    out = tmp_path / 'couple'
    argv = ['-i', str(WHOLE / 'deepface_couple.jpg'), '-o', str(out), '--no-shrink', '--upscale', '2',
            '--model-root', str(FACEXLIB_WEIGHTS), '--no-progress']  # fmt: skip
    assert cli.main(argv) == 0
    rows = load_rows(out / 'faces.csv')
    assert len(rows) == 2 and all(r['model'] == 'kept' for r in rows)
    assert all(math.isinf(r['psnr_ours']) or r['psnr_ours'] > 30 for r in rows)
