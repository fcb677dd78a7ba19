"""facesr-kd-prepare on the staged real photos: detection counts, alignment, boxes, bad files, resume."""

import json
import os
import sys

from facesr_kd.face.align import face_template
from facesr_kd.face.components import load_boxes_file
from facesr_kd.face.detection import build_detector, detect_faces

import cv2
import numpy as np
import pytest

from .conftest import FACEXLIB_WEIGHTS, FFHQ256, README_COUNTS, SHARED_DATA, ffhq_ids, run_python

# Every test here reads the staged faces or detector weights in ../shared/data.
pytestmark = pytest.mark.usefixtures('shared_data')

WHOLE = SHARED_DATA / 'faces' / 'whole'
NEGATIVE = SHARED_DATA / 'faces' / 'negative'
DETECT = {'det_model': 'retinaface_mobile0.25', 'model_root': str(FACEXLIB_WEIGHTS), 'progress': False}


from facesr_kd.data import prepare as prep  # noqa: E402


def _link(src_paths, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for p in src_paths:
        (folder / p.name).symlink_to(p)
    return folder


def check_boxes(boxes, size):
    """Every box inside the image and on its component: left eye left, nose between eyes and mouth, mouth lowest."""
    boxes = np.asarray(boxes)
    assert boxes.shape == (4, 4)
    assert (boxes >= 0).all() and (boxes <= size).all()
    assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    left, right, nose, mouth = range(4)
    assert cx[left] < cx[right]
    assert max(cy[left], cy[right]) < cy[nose] < cy[mouth]
    assert cy[mouth] == cy.max()


@pytest.fixture(scope='module')
def whole_run(tmp_path_factory, shared_data):
    """Prepare faces/whole plus faces/negative, keeping every detected face (no size or border filter)."""
    root = tmp_path_factory.mktemp('whole')
    src = _link(sorted(WHOLE.iterdir()) + sorted(NEGATIVE.iterdir()), root / 'in')
    out = root / 'out'
    summary = prep.prepare_faces(str(src), str(out), max_upscale=100, min_inside=0, workers=2, **DETECT)
    return out, summary


def test_whole_photos_face_counts_and_negative(whole_run):
    out, summary = whole_run
    records = {r['photo']: r for r in prep.load_records(str(out))}
    assert set(records) == set(README_COUNTS) | {'skimage_coffee.png'}
    for photo, expected in README_COUNTS.items():
        assert abs(records[photo]['detected'] - expected) <= 1, (photo, records[photo]['detected'], expected)
    assert records['skimage_coffee.png']['status'] == 'skipped'
    assert records['skimage_coffee.png']['reason'] == 'no_face'
    assert summary['photos_skipped'] == {'no_face': 1}
    assert summary['photos'] == 12 and summary['photos_read'] == 12
    assert summary['faces_kept'] == summary['faces_detected'] == sum(r['detected'] for r in records.values())
    assert summary['converted'] == {'alpha': 2}
    assert (out / 'skipped.txt').read_text().startswith('skimage_coffee.png\tno_face')


def test_whole_photos_aligned_crops(whole_run, shared_data):
    out, summary = whole_run
    keys = (out / 'meta_info.txt').read_text().split()
    assert len(keys) == summary['faces_kept'] and keys == sorted(keys)
    boxes, meta = load_boxes_file(out / 'boxes.json')
    assert meta['source'] == 'landmarks5' and meta['size'] == 256 and sorted(boxes) == keys
    detector = build_detector('retinaface_mobile0.25', FACEXLIB_WEIGHTS)
    template = face_template(256)
    recorded = {f['key']: np.array(f['landmarks5']) for r in prep.load_records(str(out)) for f in r['faces']}
    to_template, to_recorded = [], []
    for key in keys:
        hr = cv2.imread(str(out / 'hr' / key))
        lr = cv2.imread(str(out / 'lr_x8' / key))
        assert hr.shape == (256, 256, 3) and lr.shape == (32, 32, 3)
        check_boxes(boxes[key], 256)
        found = detect_faces(detector, hr, conf_threshold=0.8, resize=None)
        assert found, f'no face on the aligned crop {key}'
        lm = min((f['landmarks5'] for f in found), key=lambda p: np.abs(p - template).mean())
        to_template.append(np.linalg.norm(lm[:2] - template[:2], axis=1).max())
        to_recorded.append(np.linalg.norm(lm[:2] - recorded[key][:2], axis=1).max())
    # Eyes where the template puts them: a few pixels typically; profile faces fit the template less well.
    assert np.median(to_template) < 5 and max(to_template) < 0.1 * 256, to_template
    # The warp moves the detected eyes where the recorded (transformed) landmarks say.
    assert np.median(to_recorded) < 5 and max(to_recorded) < 12, to_recorded


def test_size_filters_and_list(tmp_path, shared_data):
    src = _link([WHOLE / 'deepface_couple.jpg', WHOLE / 'codeformer_01.jpg', WHOLE / 'gfpgan_00.jpg'], tmp_path / 'in')
    (tmp_path / 'list.txt').write_text('deepface_couple\ncodeformer_01.jpg\n')
    summary = prep.prepare_faces(str(src), str(tmp_path / 'out'), id_list=str(tmp_path / 'list.txt'), workers=1,
                                 faces_per_photo=1, **DETECT)  # fmt: skip
    # codeformer_01's faces are tiny (they would be enlarged ~3x); the couple's are large, one kept per photo.
    assert summary['photos'] == 2
    assert summary['faces_dropped'] == {'per_photo_cap': 1, 'too_small': 4}
    assert (tmp_path / 'out' / 'meta_info.txt').read_text() == 'deepface_couple_00.png\n'


@pytest.fixture()
def aligned_input(tmp_path, shared_data):
    """Ten FFHQ test faces, plus a truncated JPEG, gray, 16-bit, tiny and non-square images, and a text file."""
    src = _link(ffhq_ids(0, 10), tmp_path / 'in')
    data = (FFHQ256 / '00010.jpg').read_bytes()
    (src / '00003_corrupt.jpg').write_bytes(data[: len(data) // 2])
    face = cv2.imread(str(FFHQ256 / '00011.jpg'))
    cv2.imwrite(str(src / '00011_gray.png'), cv2.cvtColor(face, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(src / '00011_16bit.png'), face.astype(np.uint16) * 257)
    cv2.imwrite(str(src / '00011_tiny.png'), face[:20, :20])
    cv2.imwrite(str(src / '00011_wide.png'), face[:200])
    (src / 'notes.txt').write_text('not an image')
    return src


def test_aligned_bad_inputs_reported_and_rerun_does_no_work(aligned_input, tmp_path):
    out = tmp_path / 'out'
    summary = prep.prepare_faces(str(aligned_input), str(out), aligned=True, workers=2, progress=False)
    assert summary['photos'] == 15 and summary['photos_read'] == 14
    assert summary['photos_skipped'] == {'not_square': 1, 'tiny': 1, 'truncated': 1}
    assert summary['converted'] == {'16bit': 1, 'gray': 1}
    assert summary['faces_kept'] == 12 and summary['box_source'] == 'template'
    assert '00003_corrupt.jpg\ttruncated' in (out / 'skipped.txt').read_text()
    # The text file is no photo, but it is listed, not dropped without a word.
    assert 'notes.txt\tunsupported_extension\t.txt' in (out / 'skipped.txt').read_text()
    assert summary['files_ignored'] == {'unsupported_extension': 1}
    keys = (out / 'meta_info.txt').read_text().split()
    assert keys == sorted([f'{i:05d}.png' for i in range(10)] + ['00011_16bit.png', '00011_gray.png'])
    np.testing.assert_array_equal(
        cv2.imread(str(out / 'hr' / '00011_16bit.png')), cv2.imread(str(FFHQ256 / '00011.jpg'))
    )
    boxes, meta = load_boxes_file(out / 'boxes.json')
    assert meta['source'] == 'template' and sorted(boxes) == keys
    for key in keys:
        hr, lr = cv2.imread(str(out / 'hr' / key)), cv2.imread(str(out / 'lr_x8' / key))
        assert hr.shape == (256, 256, 3) and lr.shape == (32, 32, 3)
        if key[:5] != '00011':
            np.testing.assert_array_equal(hr, cv2.imread(str(FFHQ256 / key.replace('.png', '.jpg'))))
        check_boxes(boxes[key], 256)

    outputs = sorted(p for p in out.rglob('*') if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in outputs}
    again = prep.prepare_faces(str(aligned_input), str(out), aligned=True, workers=2, progress=False)
    assert again['processed'] == 0 and again['resumed'] == 15 and again['faces_written'] == 0
    assert again['photos_skipped'] == summary['photos_skipped'] and again['faces_kept'] == 12
    changed = [p for p in outputs if p.name != 'summary.json' and p.stat().st_mtime_ns != before[p]]
    assert not changed, changed

    # An interrupted run: a face file lost and half a journal line written. Only that photo is redone.
    os.remove(out / 'hr' / '00004.png')
    with open(out / 'records.jsonl', 'a') as f:
        f.write('{"photo": "00009.jpg", "sta')
    third = prep.prepare_faces(str(aligned_input), str(out), aligned=True, workers=1, progress=False)
    assert third['processed'] == 1 and third['faces_written'] == 1 and third['faces_kept'] == 12
    assert (out / 'hr' / '00004.png').is_file()

    with pytest.raises(ValueError, match='other options'):
        prep.prepare_faces(str(aligned_input), str(out), aligned=True, size=128, workers=1, progress=False)


def test_aligned_detect_boxes_and_lmdb(tmp_path, shared_data):
    src = _link(ffhq_ids(0, 4), tmp_path / 'in')
    out = tmp_path / 'out'
    summary = prep.prepare_faces(str(src), str(out), aligned=True, aligned_boxes='detect', lmdb=True, workers=1,
                                 **DETECT)  # fmt: skip
    assert summary['faces_kept'] == 4 and summary['box_source'] == 'landmarks5' and summary['box_fallback'] == 0
    boxes, meta = load_boxes_file(out / 'boxes.json')
    assert meta['source'] == 'landmarks5'
    for b in boxes.values():
        check_boxes(b, 256)
    for name in ('hr.lmdb', 'lr_x8.lmdb'):
        lines = (out / name / 'meta_info.txt').read_text().splitlines()
        assert [line.split(' ')[0] for line in lines] == [f'{i:05d}.png' for i in range(4)]


def test_split_selection_and_vggface2_layout(tmp_path, shared_data):
    test_ids = prep._list_photos(str(FFHQ256), start=0, end=100)
    assert test_ids[0] == '00000.jpg' and test_ids[-1] == '00099.jpg' and len(test_ids) == 100
    train_ids = prep._list_photos(str(FFHQ256), start=100)
    assert train_ids[0] == '00100.jpg' and train_ids[-1] == '01100.jpg' and '01099.jpg' not in train_ids

    root = tmp_path / 'vggface2'
    _link(ffhq_ids(0, 2), root / 'train' / 'n000001')
    _link(ffhq_ids(2, 5), root / 'train' / 'n000002')
    _link(ffhq_ids(5, 6), root / 'test' / 'n000009')
    out = tmp_path / 'out'
    summary = prep.prepare_faces(str(root), str(out), aligned=True, max_per_identity=2, workers=2, progress=False)
    assert set(summary['splits']) == {'train', 'test'}
    assert summary['splits']['train']['faces_kept'] == 4 and summary['splits']['test']['faces_kept'] == 1
    assert summary['photos_skipped'] == {'identity_cap': 1}
    assert (out / 'train' / 'meta_info.txt').read_text().split() == [
        'n000001/00000.png', 'n000001/00001.png', 'n000002/00002.png', 'n000002/00003.png']  # fmt: skip
    assert (out / 'test' / 'hr' / 'n000009' / '00005.png').is_file()
    assert (out / 'test' / 'lr_x8' / 'n000009' / '00005.png').is_file()
    assert set(load_boxes_file(out / 'test' / 'boxes.json')[0]) == {'n000009/00005.png'}


def test_cli_missing_model_stops_at_once(tmp_path, repo_root):
    proc = run_python(['-m', 'facesr_kd.cli.prepare', '-i', str(WHOLE), '-o', str(tmp_path / 'out'), '--model-root',
                       str(tmp_path), '--workers', '1'], cwd=repo_root, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert 'detection_Resnet50_Final.pth' in proc.stdout
    assert 'https://github.com/xinntao/facexlib/releases/download/v0.1.0/detection_Resnet50_Final.pth' in proc.stdout
    assert '--model-root' in proc.stdout
    assert not (tmp_path / 'out' / 'hr').exists()


def test_summary_file_written(whole_run):
    out, summary = whole_run
    saved = json.loads((out / 'summary.json').read_text())
    assert saved['faces_kept'] == summary['faces_kept'] and saved['box_source'] == 'landmarks5'


def test_dlib68_boxes_on_real_faces_agree_with_the_five_point_boxes(tmp_path, shared_data):
    # dlib-bin and face-recognition-models come with the [dev] extra: this runs dlib's real 68-point model.
    src = _link(ffhq_ids(0, 6), tmp_path / 'in')
    common = {'aligned': True, 'aligned_boxes': 'detect', 'workers': 1, **DETECT}
    summary = prep.prepare_faces(str(src), str(tmp_path / 'dlib'), landmarks='dlib68', **common)
    assert summary['faces_kept'] == 6 and summary['box_source'] == 'landmarks68'
    five = prep.prepare_faces(str(src), str(tmp_path / 'five'), landmarks='five', **common)
    assert five['box_source'] == 'landmarks5'
    boxes68, _ = load_boxes_file(tmp_path / 'dlib' / 'boxes.json')
    boxes5, _ = load_boxes_file(tmp_path / 'five' / 'boxes.json')
    assert sorted(boxes68) == sorted(boxes5)
    for key, boxes in boxes68.items():
        check_boxes(boxes, 256)
        a, b = np.asarray(boxes), np.asarray(boxes5[key])
        centres = np.linalg.norm((a[:, :2] + a[:, 2:] - b[:, :2] - b[:, 2:]) / 2, axis=1)
        # Measured on ffhq ids 0-99: 3.5-7.2 px mean distance per component at 256.
        assert (centres < 32).all(), (key, centres)
    assert any(not np.allclose(boxes68[k], boxes5[k]) for k in boxes68)  # really another source


def test_dlib68_without_dlib_or_its_model_says_what_to_install(tmp_path, shared_data, monkeypatch):
    src = _link(ffhq_ids(0, 1), tmp_path / 'in')
    kwargs = {'aligned': True, 'landmarks': 'dlib68', 'model_root': str(tmp_path), 'workers': 1, 'progress': False}
    monkeypatch.setattr(prep, '_installed_dlib68_files', lambda: iter(()))
    with pytest.raises(FileNotFoundError, match='shape_predictor_68_face_landmarks.dat.*face-recognition-models'):
        prep.prepare_faces(str(src), str(tmp_path / 'out'), **kwargs)
    monkeypatch.setitem(sys.modules, 'dlib', None)
    with pytest.raises(ImportError, match='dlib-bin'):
        prep.prepare_faces(str(src), str(tmp_path / 'out'), **kwargs)
    assert not (tmp_path / 'out' / 'hr').exists()


def test_boxes_from_landmarks_detected_on_the_upsampled_lr_input(tmp_path):
    from basicsr.utils.matlab_functions import imresize

    lr_dir = tmp_path / 'lr_x8'
    lr_dir.mkdir()
    for path in ffhq_ids(0, 4):
        hr = cv2.imread(str(path)).astype(np.float32) / 255
        cv2.imwrite(str(lr_dir / f'{path.stem}.png'), (imresize(hr, 1 / 8).clip(0, 1) * 255).round().astype(np.uint8))
    summary = prep.prepare_faces(
        str(lr_dir),
        str(tmp_path / 'out'),
        aligned=True,
        aligned_boxes='detect',
        size=256,
        min_photo_size=8,
        max_upscale=100,
        workers=1,
        **DETECT,
    )
    boxes, meta = load_boxes_file(str(tmp_path / 'out' / 'boxes.json'))
    assert meta['source'] == 'landmarks5' and sorted(boxes) == [f'{p.stem}.png' for p in ffhq_ids(0, 4)]
    assert summary['box_fallback'] < 4  # most 32x32 faces give landmarks
    for b in boxes.values():
        assert (b >= 0).all() and (b <= 256).all()
        assert b[0, 0] < b[1, 0] and b[2, 1] < b[3, 1]  # left eye left of right eye, nose above mouth
