"""facesr-kd-dictionary on real faces (ffhq256 train ids), loaded by the teacher.

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
