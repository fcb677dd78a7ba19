"""facesr-kd-dictionary on real faces (ffhq256 train ids), loaded by the teacher; hostile input (issue 13).

The encoder has RANDOM VGG19 weights (``--vgg-random``, asked for explicitly: the ImageNet weights are not
available offline), so these dictionaries only exercise the code path.
"""

import facesr_kd  # noqa: F401  (BasicSR compatibility fixes before basicsr is imported)
from facesr_kd.archs.component_dictionary import LEVELS, dictionary_shapes, extract_component_crops
from facesr_kd.archs.dfdnet_teacher_arch import DFDNetTeacher
from facesr_kd.archs.vgg19 import VGG19Features
from facesr_kd.face.components import COMPONENTS, save_boxes_file, template_boxes

import numpy as np
import pytest
import torch

from .conftest import FFHQ256

# Every test here reads the staged faces or detector weights in ../shared/data.
pytestmark = pytest.mark.usefixtures('shared_data')

SIZE, K = 64, 4


@pytest.fixture(scope='module')
def script():
    from facesr_kd import dictionary

    return dictionary


def test_cli_builds_a_dictionary_the_teacher_loads(script, tmp_path, capsys):
    out = tmp_path / 'dict.pth'
    argv = [
        '--gt-dir',
        str(FFHQ256),
        '--template-boxes',
        '--start',
        '00100',
        '--end',
        '01100',
        '--limit',
        '8',
        '-o',
        str(out),
        '--num-atoms',
        str(K),
        '--out-size',
        str(SIZE),
        '--batch-size',
        '4',
        '--seed',
        '3',
        '--vgg-random',
        '--device',
        'cpu',
        '--no-progress',
    ]
    from facesr_kd.cli import dictionary as dictionary_cli

    assert dictionary_cli.main(argv) == 0
    assert 'RANDOM weights' in capsys.readouterr().err
    data = torch.load(out, weights_only=True)
    assert data['out_size'] == SIZE and data['num_atoms'] == K and data['num_faces'] == 8
    assert data['components'] == list(COMPONENTS) and data['levels'] == list(LEVELS) and data['vgg'] == 'random'
    shapes = dictionary_shapes(SIZE)
    assert set(data['atoms']) == set(shapes)
    for key, atoms in data['atoms'].items():
        assert atoms.shape == (K, *shapes[key]) and torch.isfinite(atoms).all()
        assert len(torch.unique(atoms.flatten(1), dim=0)) > 1, key  # real clusters, not one repeated atom

    teacher = DFDNetTeacher(SIZE, 8, K, dict_path=str(out), vgg_pretrained=False).eval()
    lq = torch.rand(2, 3, SIZE // 8, SIZE // 8)
    boxes = torch.as_tensor(template_boxes(SIZE), dtype=torch.float32)[None].repeat(2, 1, 1)
    with torch.no_grad():
        img = teacher(lq, boxes)
    assert img.shape == (2, 3, SIZE, SIZE) and torch.isfinite(img).all()
    with pytest.raises(ValueError, match='holds out_size=64, num_atoms=4'):
        DFDNetTeacher(SIZE, 8, K + 1, dict_path=str(out), vgg_pretrained=False)


def test_atoms_are_the_teacher_crops_of_the_faces(script, tmp_path):
    # With as many faces as atoms, K-means keeps every crop as an atom: the builder's crops must be exactly the
    # teacher's crops of the same faces, and the teacher then picks each face's own atom.
    keys = script.list_faces(str(FFHQ256), start='00100', end='01100', limit=K)
    out = tmp_path / 'dict.pth'
    script.build_dictionary(
        str(FFHQ256),
        str(out),
        keys=keys,
        use_template_boxes=True,
        num_atoms=K,
        out_size=SIZE,
        batch_size=K,
        seed=5,
        vgg_random=True,
        progress=False,
    )
    torch.manual_seed(5)  # the builder's random encoder
    encoder = VGG19Features(LEVELS, pretrained=False)
    teacher = DFDNetTeacher(SIZE, 8, K, dict_path=str(out), vgg_pretrained=False).eval()
    teacher.encoder.load_state_dict(encoder.state_dict())
    boxes, _ = script.face_boxes(keys, SIZE, use_template=True)
    faces = script.HRFaces(str(FFHQ256), keys, boxes, SIZE, None)
    hr = torch.stack([faces[i][0] for i in range(K)])  # already at out_size: the teacher does not resize it
    boxes = torch.from_numpy(boxes)
    with torch.no_grad():
        crops = extract_component_crops(teacher.encode(hr), boxes, SIZE)
        picks = teacher.match(hr, boxes)
    atoms = torch.load(out, weights_only=True)['atoms']
    for key, crop in crops.items():
        # Each face's crop is one of the atoms...
        dist = torch.cdist(crop.flatten(1).double(), atoms[key].flatten(1).double())
        assert (dist.min(1).values <= 1e-4 * crop.flatten(1).norm(dim=1).double() + 1e-6).all(), key
        own = dist.argmin(1)
        # ...and the teacher picks it, unless the crop is constant (one-pixel box), which ties every atom.
        spread = (crop.amax(dim=(2, 3)) - crop.amin(dim=(2, 3))).amax(1)
        structured = spread > 1e-5 * (crop.abs().amax(dim=(1, 2, 3)) + 1)
        assert torch.equal(picks[key][structured], own[structured]), key
    # At relu2_2 every crop has structure: the four faces pick four different atoms, each its own.
    assert all(sorted(picks[f'{c}.relu2_2'].tolist()) == list(range(K)) for c in COMPONENTS)


def test_boxes_file_and_clear_errors(script, tmp_path):
    keys = script.list_faces(str(FFHQ256), start='00100', end='01100', limit=3)
    assert keys == ['00100.jpg', '00101.jpg', '00102.jpg']
    boxes_path = tmp_path / 'boxes.json'
    save_boxes_file(str(boxes_path), {k: template_boxes(256) for k in keys[:2]}, 256, 'template')
    boxes, hr_size = script.face_boxes(keys[:2], SIZE, boxes_file=str(boxes_path))
    assert hr_size == 256
    np.testing.assert_allclose(boxes[0], template_boxes(SIZE), atol=1e-3)
    with pytest.raises(KeyError, match='1 selected faces have no boxes'):
        script.face_boxes(keys, SIZE, boxes_file=str(boxes_path))
    with pytest.raises(ValueError, match='fewer than num_atoms=512'):
        script.build_dictionary(str(FFHQ256), str(tmp_path / 'd.pth'), keys=keys, use_template_boxes=True)
    with pytest.raises(FileNotFoundError, match='vgg19-dcbb9e9d.pth'):
        script.build_dictionary(
            str(FFHQ256),
            str(tmp_path / 'd.pth'),
            keys=keys,
            use_template_boxes=True,
            num_atoms=2,
            vgg_weights=str(tmp_path / 'vgg19-dcbb9e9d.pth'),
            progress=False,
        )
    meta = tmp_path / 'meta_info.txt'
    meta.write_text('00102.jpg (256,256,3)\n00100.jpg (256,256,3)\n')
    assert script.list_faces(str(FFHQ256), meta_info=str(meta)) == ['00100.jpg', '00102.jpg']


# ---------------------------------------------------------------------------------------------------------------
# Hostile input (issue 13): each problem is one `error:` line and status 1 (no traceback), or a skipped face.


def run_cli(argv, capsys):
    """``facesr-kd-dictionary argv``: (status, stdout, stderr); argparse errors give their status."""
    from facesr_kd.cli import dictionary as dictionary_cli

    try:
        code = dictionary_cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def hostile_faces(tmp_path):
    """Six faces: four real ffhq256 faces (linked), one corrupt and one truncated JPEG, and their box file."""
    gt = tmp_path / 'hr'
    gt.mkdir()
    keys = ['00100.jpg', '00101.jpg', '00102.jpg', '00103.jpg']
    for key in keys:
        (gt / key).symlink_to(FFHQ256 / key)
    (gt / 'corrupt.jpg').write_bytes(bytes(range(256)) * 8)
    data = (FFHQ256 / '00104.jpg').read_bytes()
    (gt / 'truncated.jpg').write_bytes(data[: len(data) // 2])
    boxes = {k: template_boxes(256) for k in [*keys, 'corrupt.jpg', 'truncated.jpg']}
    save_boxes_file(str(tmp_path / 'boxes.json'), boxes, 256, 'template')
    return gt, tmp_path / 'boxes.json', boxes


def build_argv(gt, out, k, boxes=None):
    source = ['--boxes', boxes] if boxes else ['--template-boxes']
    return ['--gt-dir', gt, *source, '-o', out, '--num-atoms', k, '--out-size', SIZE, '--batch-size', 4,
            '--vgg-random', '--device', 'cpu', '--no-progress']  # fmt: skip


def test_corrupt_truncated_and_outside_faces_skipped(hostile_faces, tmp_path, capsys):
    """One bad face does not abort the build: skipped with a reason, counted; K faces remain, so it succeeds."""
    gt, boxes_path, boxes = hostile_faces
    boxes['00103.jpg'] = template_boxes(256) + np.array([0, 0, 300, 0], dtype=np.float32)  # x2 beyond the face
    (gt / 'extra.jpg').symlink_to(FFHQ256 / '00105.jpg')
    boxes['extra.jpg'] = template_boxes(256)
    save_boxes_file(str(boxes_path), boxes, 256, 'template')
    out = tmp_path / 'dict.pth'
    code, stdout, stderr = run_cli(build_argv(gt, out, 4, boxes_path), capsys)
    assert code == 0, stderr
    assert 'warning: 3 of 7 faces skipped:' in stderr
    assert '  corrupt.jpg: not a decodable image' in stderr  # (the reasons are facesr_kd.face.image_io's)
    assert '  truncated.jpg: truncated JPEG' in stderr
    assert '00103.jpg: left_eye box [' in stderr and 'is outside the 256x256 face' in stderr
    assert 'dictionary of 4 faces (3 skipped), K=4' in stdout
    data = torch.load(out, weights_only=True)
    assert data['num_faces'] == 4 and data['num_skipped'] == 3 and data['num_atoms'] == K


def test_too_few_faces_left_is_an_error(hostile_faces, tmp_path, capsys):
    gt, boxes_path, _ = hostile_faces
    out = tmp_path / 'dict.pth'
    code, _, stderr = run_cli(build_argv(gt, out, 5, boxes_path), capsys)
    assert code == 1
    assert 'warning: 2 of 6 faces skipped' in stderr
    assert 'error: only 4 of 6 faces are usable (2 skipped, see the warning), fewer than num_atoms=5' in stderr
    assert 'Traceback' not in stderr and not out.exists()


@pytest.mark.parametrize('case', ['missing_boxes', 'face_not_in_boxes', 'bad_boxes', 'k_above_faces', 'out_folder'])
def test_setup_errors_are_one_line(hostile_faces, tmp_path, capsys, case):
    gt, boxes_path, boxes = hostile_faces
    out, k = tmp_path / 'dict.pth', 4
    if case == 'missing_boxes':
        boxes_path = tmp_path / 'nowhere.json'
        expected = f'error: --boxes {boxes_path} not found'
    elif case == 'face_not_in_boxes':
        del boxes['00102.jpg']
        save_boxes_file(str(boxes_path), boxes, 256, 'template')
        expected = f"error: 1 selected faces have no boxes in {boxes_path} (e.g. ['00102.jpg'])"
    elif case == 'bad_boxes':
        boxes_path.write_text('{"size": 256, "components"')
        expected = f'error: --boxes {boxes_path} is not a box file written by facesr-kd-prepare: JSONDecodeError'
    elif case == 'k_above_faces':
        k = 7
        expected = 'error: 6 faces give 6 crops per component and level, fewer than num_atoms=7'
    else:
        out = tmp_path
        expected = f'error: -o {tmp_path} is a folder: give a .pth file name'
    code, _, stderr = run_cli(build_argv(gt, out, k, boxes_path), capsys)
    assert code == 1
    assert stderr.startswith(expected), stderr
    assert len(stderr.strip().splitlines()) == 1  # no warning: nothing was checked or encoded before the error
    assert not (tmp_path / 'dict.pth').exists()


@pytest.mark.parametrize(
    ('option', 'message'),
    [
        (['--num-atoms', '0'], 'argument --num-atoms: must be >= 1, got 0'),
        (['--batch-size', '0'], 'argument --batch-size: must be >= 1, got 0'),
        (['--epochs', '0'], 'argument --epochs: must be >= 1, got 0'),
        (['--limit', '0'], 'argument --limit: must be >= 1, got 0'),
        (['--kmeans-batch', '-3'], 'argument --kmeans-batch: must be >= 1, got -3'),
        (['--num-workers', '-1'], 'argument --num-workers: must be >= 0, got -1'),
        (['--out-size', '40'], 'argument --out-size: must be a multiple of 16 (the encoder stride), got 40'),
        (['--num-atoms', 'many'], "argument --num-atoms: 'many' is not an integer"),
        (['--device', 'banana'], "argument --device: 'banana' is not a device"),
    ],
)
def test_bad_numbers_refused_at_parse_time(tmp_path, capsys, option, message):
    code, _, stderr = run_cli(['--gt-dir', tmp_path, '--template-boxes', '-o', tmp_path / 'd.pth', *option], capsys)
    assert code == 2
    assert message in stderr


def test_box_problems():
    from facesr_kd.dictionary import box_problem

    good = template_boxes(256)
    assert box_problem(good, 256) is None
    assert box_problem(good + 0.4, 256) is None  # rounding overshoot is tolerated
    nan = good.copy()
    nan[2, 0] = np.nan
    assert box_problem(nan, 256) == 'a component box is not finite'
    empty = good.copy()
    empty[3, 2] = empty[3, 0]
    assert box_problem(empty, 256).startswith('mouth box [') and box_problem(empty, 256).endswith('is empty')
    outside = good.copy()
    outside[2, 0] = -200
    assert box_problem(outside, 256).startswith('nose box [-200, ')
    assert box_problem(outside, 256).endswith('is outside the 256x256 face')
