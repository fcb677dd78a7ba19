"""The model zoo (facesr_kd.zoo, facesr-kd-models, facesr-kd-infer with no --model).

The zoos here are tiny LiteFaceStudents with RANDOM weights (tests/zoo_helpers.py), published with
``facesr_kd.publish.publish_checkpoint`` into temporary folders; ``FACESR_KD_ZOO`` or ``root`` points at them. The
last test runs against the REAL zoo shipped in ``facesr_kd/weights`` and skips while it has no model of a scale.
"""

import json
import os
import re
import shutil

import facesr_kd  # noqa: F401  (registers the archs)
from facesr_kd.cli import inference as infer_cli
from facesr_kd.cli import models as models_cli
from facesr_kd.inference import DEFAULT_KEEP_LARGER, NATIVE_KEEP_LARGER, FaceSRRestorer
from facesr_kd.utils.checkpoint import CheckpointError, load_sr_network
from facesr_kd.zoo import PACKAGE_ZOO, ZOO_ENV, list_models, resolve_model, zoo_root

import cv2
import numpy as np
import pytest

from .conftest import FFHQ256, REPO_ROOT, require_shared_data
from .zoo_helpers import make_tiny_zoo


@pytest.fixture(scope='module')
def tiny_zoo(tmp_path_factory):
    folder = tmp_path_factory.mktemp('zoo')
    return str(folder), make_tiny_zoo(str(folder))


def test_list_models_reads_manifests_sorted_by_scale(tiny_zoo):
    folder, files = tiny_zoo
    models = list_models(folder)
    assert [m.name for m in models] == ['lite-x4', 'lite-x8']  # by scale
    x4, x8 = models
    assert (x4.scale, x4.in_size, x4.out_size) == (4, 32, 128) and (x8.scale, x8.in_size, x8.out_size) == (8, 16, 128)
    assert x8.path == files['lite-x8'] and re.fullmatch(r'lite-x8-[0-9a-f]{8}\.pth', x8.file)
    assert x8.manifest['sha256'].startswith(x8.file[-12:-4]) and x8.manifest['type'] == 'LiteFaceStudent'


def test_zoo_root_env_and_missing_folder(tiny_zoo, tmp_path, monkeypatch):
    folder, _ = tiny_zoo
    monkeypatch.setenv(ZOO_ENV, folder)
    assert zoo_root() == os.path.abspath(folder) and len(list_models()) == 2
    monkeypatch.delenv(ZOO_ENV)
    assert zoo_root() == PACKAGE_ZOO
    assert list_models(tmp_path / 'nowhere') == []


def test_a_file_without_manifest_is_listed_from_its_arch(tiny_zoo, tmp_path):
    folder, files = tiny_zoo
    shutil.copy(files['lite-x4'], tmp_path)
    [model] = list_models(tmp_path)
    assert model.name == 'lite-x4' and (model.scale, model.in_size) == (4, 32) and model.manifest == {}


def test_resolve_model_paths_names_and_errors(tiny_zoo, tmp_path):
    folder, files = tiny_zoo
    other = tmp_path / 'mine.pth'
    shutil.copy(files['lite-x8'], other)
    assert resolve_model(str(other), folder) == str(other)  # an existing file as it is
    assert resolve_model('lite-x4', folder) == files['lite-x4']
    assert resolve_model(os.path.basename(files['lite-x8']), folder) == files['lite-x8']
    with pytest.raises(FileNotFoundError, match=r"'lite-x2' is neither a checkpoint file nor a zoo model.*"
                       r'lite-x4 \(x4, 32->128\), lite-x8 \(x8, 16->128\).*leave --model out'):  # fmt: skip
        resolve_model('lite-x2', folder)
    with pytest.raises(FileNotFoundError, match='is empty'):
        resolve_model('lite-x8', tmp_path / 'empty')


def test_a_corrupted_zoo_file_is_refused_by_its_hash(tiny_zoo, tmp_path):
    folder, files = tiny_zoo
    for f in os.listdir(folder):
        shutil.copy(os.path.join(folder, f), tmp_path)
    bad = tmp_path / os.path.basename(files['lite-x8'])
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    assert [m.name for m in list_models(tmp_path)] == ['lite-x4', 'lite-x8']  # listing reads the manifests only
    with pytest.raises(CheckpointError, match='corrupt or truncated'):
        load_sr_network(resolve_model('lite-x8', tmp_path))
    with pytest.raises(CheckpointError, match='corrupt or truncated'):
        FaceSRRestorer(zoo=str(tmp_path), device='cpu')  # the default (whole zoo) restorer refuses it too
    FaceSRRestorer(model_path='lite-x4', zoo=str(tmp_path), device='cpu')  # the intact one still loads


def test_restorer_loads_the_whole_zoo_or_one_model(tiny_zoo):
    folder, _ = tiny_zoo
    r = FaceSRRestorer(zoo=folder, device='cpu')
    assert [m.name for m in r.models] == ['lite-x8', 'lite-x4'] and r.from_zoo and r.native
    assert r.keep_larger == NATIVE_KEEP_LARGER
    assert [m['name'] for m in r.info['models']] == ['lite-x8', 'lite-x4'] and r.lq_size == 32
    one = FaceSRRestorer(model_path='lite-x8', zoo=folder, device='cpu')
    assert [m.name for m in one.models] == ['lite-x8'] and one.from_zoo and one.keep_larger == NATIVE_KEEP_LARGER
    sized = FaceSRRestorer(model_path='lite-x8', zoo=folder, device='cpu', crop_method='gauss')
    assert not sized.native and sized.keep_larger == DEFAULT_KEEP_LARGER
    x4 = FaceSRRestorer(zoo=folder, scale=4, device='cpu')
    assert [m.name for m in x4.models] == ['lite-x4']
    with pytest.raises(FileNotFoundError, match=r'no x2 model in the zoo'):
        FaceSRRestorer(zoo=folder, scale=2, device='cpu')


def test_models_cli_lists_the_zoo_and_its_quality(tiny_zoo, tmp_path, capsys):
    folder, files = tiny_zoo
    for f in os.listdir(folder):
        shutil.copy(os.path.join(folder, f), tmp_path)
    manifest_path = tmp_path / os.path.basename(files['lite-x8']).replace('.pth', '.json')
    manifest = json.loads(manifest_path.read_text())
    manifest['quality'] = {'test_set': 'FFHQ 0-99', 'clean': {'model': {'psnr': 26.5, 'ssim': 0.75},
                                                            'bicubic': {'psnr': 24.29, 'ssim': 0.68}}}  # fmt: skip
    manifest['cost'] = {'params': 123456, 'gmacs': 1.234}
    manifest_path.write_text(json.dumps(manifest))  # the manifest is not hashed; the .pth is
    assert models_cli.main(['--root', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert '2 model(s)' in out and 'lite-x4' in out and '32->128' in out
    line = next(ln for ln in out.splitlines() if ln.startswith('lite-x8'))
    assert 'x8' in line and '16->128' in line and '0.12 M' in line and '1.23' in line
    assert 'clean 26.50/0.750 (bicubic 24.29/0.680)' in line and os.path.basename(files['lite-x8']) in line


def test_models_cli_empty_zoo_exits_0(tmp_path, capsys):
    assert models_cli.main(['--root', str(tmp_path)]) == 0
    assert 'is empty' in capsys.readouterr().out


def test_infer_with_no_model_and_an_empty_zoo_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ZOO_ENV, str(tmp_path / 'empty_zoo'))
    photo = tmp_path / 'p.png'
    cv2.imwrite(str(photo), np.full((32, 32, 3), 128, np.uint8))
    assert infer_cli.main(['-i', str(photo), '-o', str(tmp_path / 'out')]) == 1
    err = capsys.readouterr().err
    assert 'no --model given and the model zoo' in err and 'is empty' in err and 'Pass --model' in err


def test_infer_help_shows_no_path_that_does_not_exist(capsys):
    with pytest.raises(SystemExit):
        infer_cli.parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    assert 'pretrained_models' not in text and 'experiments/' not in text
    defaults = re.findall(r'\(default: ([^)]*)\)', text)
    assert defaults, text
    for value in defaults:
        if '/' in value or value.endswith(('.pth', '.yml')):
            assert os.path.exists(value), f'--help shows the default path {value}, which does not exist'


def test_zoo_weights_are_package_data():
    text = (REPO_ROOT / 'pyproject.toml').read_text()
    data = re.search(r'\[tool\.setuptools\.package-data\]\n(?:#.*\n)*facesr_kd = \[([^\]]*)\]', text).group(1)
    assert '"weights/*.pth"' in data and '"weights/*.json"' in data


@pytest.mark.parametrize('scale', [8, 4])
def test_a_shipped_model_beats_bicubic_by_1db_on_10_staged_faces(scale):
    """The REAL zoo (facesr_kd/weights, not $FACESR_KD_ZOO): its x8 and x4 models on FFHQ test faces 00000-00009,
    clean MATLAB-bicubic LR. Skips while the zoo has no model of that scale."""
    from facesr_kd.benchmarks.zoo_quality import evaluate

    shipped = [m for m in list_models(PACKAGE_ZOO) if m.scale == scale]
    if not shipped:
        pytest.skip(f'the shipped zoo ({PACKAGE_ZOO}) has no x{scale} model yet')
    require_shared_data(FFHQ256)
    for model in shipped:
        bic, ours = evaluate([model.path], str(FFHQ256), ('clean',), ids=range(10), threads=1, runs=1)
        assert ours['psnr'] >= bic['psnr'] + 1.0, f'{model.name}: {ours["psnr"]:.2f} dB vs bicubic {bic["psnr"]:.2f}'
