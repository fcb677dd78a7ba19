"""Publishing hash-named checkpoints (facesr_kd.publish, facesr-kd-publish) and the hash check on load.

The networks are tiny and randomly initialised (random weights, saved with ``save_sr_checkpoint``): these tests
check the file format, the names, the manifest and the refusals, not any quality.
"""

import hashlib
import json
import os
import re
import subprocess
import sys

import facesr_kd
from facesr_kd.archs.lite_student_arch import LiteFaceStudent
from facesr_kd.cli import publish as cli
from facesr_kd.publish import publish_checkpoint
from facesr_kd.utils.checkpoint import CheckpointError, load_sr_network, read_checkpoint, save_sr_checkpoint
from facesr_kd.utils.files import torch_save

import pytest
import torch
import yaml

from .conftest import REPO_ROOT

LITE_OPT = {'type': 'LiteFaceStudent', 'out_size': 64, 'scale': 8, 'num_feat': 8, 'num_block': 1, 'feat_channels': 4}


def tiny_lite(seed):
    torch.manual_seed(seed)
    return LiteFaceStudent(**{k: v for k, v in LITE_OPT.items() if k != 'type'}).eval()


@pytest.fixture(scope='module')
def training_ckpt(tmp_path_factory):
    """A training checkpoint in an experiment folder: params, params_ema (other random weights), an adapter."""
    exp = tmp_path_factory.mktemp('experiments') / 'lite_x8'
    net, ema = tiny_lite(0), tiny_lite(1)
    path = exp / 'models' / 'net_g_latest.pth'
    save_sr_checkpoint(str(path), net, LITE_OPT, ema=ema, extra={'adapter': torch.nn.Conv2d(4, 8, 1)})
    with open(exp / 'train_lite_x8.yml', 'w') as f:
        yaml.safe_dump({'name': 'lite_x8', 'scale': 8, 'network_g': LITE_OPT}, f)
    return str(path), net, ema


def outputs(net):
    torch.manual_seed(2)
    lq = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        return net(lq)


def test_publish_names_by_hash_and_keeps_only_inference_entries(tmp_path, training_ckpt):
    src, net, ema = training_ckpt
    path, manifest = publish_checkpoint(src, str(tmp_path), commands=['facesr-kd-train -opt train_lite_x8.yml'])
    with open(path, 'rb') as f:
        data = f.read()
    sha = hashlib.sha256(data).hexdigest()
    assert re.fullmatch(r'LiteFaceStudent_x8-[0-9a-f]{8}\.pth', os.path.basename(path))
    assert os.path.basename(path) == f'LiteFaceStudent_x8-{sha[:8]}.pth'
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'params', 'arch', 'scale'}
    assert ckpt['arch'] == LITE_OPT and ckpt['scale'] == 8
    for k, v in ema.state_dict().items():  # the EMA weights, not the training ones
        assert torch.equal(ckpt['params'][k], v)
    assert not all(torch.equal(ckpt['params'][k], v) for k, v in net.state_dict().items())

    with open(path[: -len('.pth')] + '.json') as f:
        on_disk = json.load(f)
    assert on_disk == manifest
    assert manifest['file'] == os.path.basename(path)
    assert (manifest['sha256'], manifest['size']) == (sha, len(data))
    assert manifest['arch'] == LITE_OPT and manifest['type'] == 'LiteFaceStudent'
    assert (manifest['scale'], manifest['lq_size'], manifest['out_size']) == (8, 8, 64)
    assert manifest['dropped'] == ['adapter', 'params']
    assert manifest['facesr_kd_version'] == facesr_kd.__version__
    assert manifest['commands'] == ['facesr-kd-train -opt train_lite_x8.yml']
    source = manifest['source']
    assert source['checkpoint'] == os.path.abspath(src) and source['params_key'] == 'params_ema'
    with open(src, 'rb') as f:
        assert source['sha256'] == hashlib.sha256(f.read()).hexdigest()
    assert source['option_file'].endswith('train_lite_x8.yml') and 'network_g' in source['options']

    loaded, info = load_sr_network(path, expect_scale=8)
    assert info['params_key'] == 'params' and info['type'] == 'LiteFaceStudent'
    assert torch.equal(outputs(loaded), outputs(ema))


def test_publish_twice_is_byte_identical(tmp_path, training_ckpt):
    first, m1 = publish_checkpoint(training_ckpt[0], str(tmp_path / 'a'), name='lite')
    second, m2 = publish_checkpoint(training_ckpt[0], str(tmp_path / 'b'), name='lite')
    assert os.path.basename(first) == os.path.basename(second) and os.path.basename(first).startswith('lite-')
    with open(first, 'rb') as f1, open(second, 'rb') as f2:
        assert f1.read() == f2.read()
    assert m1['sha256'] == m2['sha256']


def test_key_params_publishes_the_training_weights(tmp_path, training_ckpt):
    path, manifest = publish_checkpoint(training_ckpt[0], str(tmp_path), key='params')
    assert manifest['source']['params_key'] == 'params' and manifest['dropped'] == ['adapter', 'params_ema']
    loaded, _ = load_sr_network(path)
    assert torch.equal(outputs(loaded), outputs(training_ckpt[1]))


@pytest.fixture
def published(tmp_path, training_ckpt):
    path, _ = publish_checkpoint(training_ckpt[0], str(tmp_path / 'pub'))
    with open(path, 'rb') as f:
        return path, f.read()


def test_truncated_copy_refused(tmp_path, published):
    path, data = published
    copy = tmp_path / 'download' / os.path.basename(path)
    copy.parent.mkdir()
    copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r'corrupt or truncated.*publish it again') as err:
        load_sr_network(str(copy))
    assert os.path.basename(path).split('-')[-1][:8] in str(err.value)
    assert f'{len(data) // 2} bytes' in str(err.value)
    with pytest.raises(CheckpointError, match='corrupt or truncated'):
        read_checkpoint(str(copy))


def test_flipped_byte_refused(tmp_path, published):
    path, data = published
    broken = bytearray(data)
    broken[len(data) // 2] ^= 0xFF
    copy = tmp_path / os.path.basename(path)
    copy.write_bytes(bytes(broken))
    with pytest.raises(CheckpointError, match='corrupt or truncated'):
        load_sr_network(str(copy))


def test_name_without_hash_loads_as_before(tmp_path, published):
    path, data = published
    plain = tmp_path / 'lite_x8.pth'
    plain.write_bytes(data)
    loaded, info = load_sr_network(str(plain))
    assert info['scale'] == 8
    # No hash in the name: a broken file reaches torch.load as before (and is refused there, not by the hash).
    (tmp_path / 'half.pth').write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as err:
        load_sr_network(str(tmp_path / 'half.pth'))
    assert 'corrupt or truncated' not in str(err.value)


def test_longer_hash_prefix_checked(tmp_path, published):
    path, data = published
    sha = hashlib.sha256(data).hexdigest()
    good, bad = tmp_path / f'm-{sha}.pth', tmp_path / f'm-{sha[:12]}0000.pth'
    good.write_bytes(data)
    bad.write_bytes(data)
    load_sr_network(str(good))
    with pytest.raises(CheckpointError, match='corrupt or truncated'):
        load_sr_network(str(bad))


def test_training_state_refused(tmp_path):
    state = {'epoch': 1, 'iter': 10, 'optimizers': [{'state': {}, 'param_groups': []}], 'schedulers': []}
    torch_save(state, str(tmp_path / '10.state'))
    with pytest.raises(CheckpointError, match='training state'):
        publish_checkpoint(str(tmp_path / '10.state'), str(tmp_path / 'out'))
    torch_save(state, str(tmp_path / 'renamed.pth'))
    with pytest.raises(CheckpointError, match='training state'):
        publish_checkpoint(str(tmp_path / 'renamed.pth'), str(tmp_path / 'out'))
    assert not (tmp_path / 'out').exists()


def test_non_checkpoint_refused(tmp_path):
    (tmp_path / 'notes.pth').write_text('not a checkpoint')
    with pytest.raises(CheckpointError, match='cannot be read as a weights-only checkpoint'):
        publish_checkpoint(str(tmp_path / 'notes.pth'), str(tmp_path / 'out'))
    torch_save({'foo': 1}, str(tmp_path / 'dict.pth'))
    with pytest.raises(CheckpointError, match=r'no `params` / `params_ema`'):
        publish_checkpoint(str(tmp_path / 'dict.pth'), str(tmp_path / 'out'))
    with pytest.raises(FileNotFoundError):
        publish_checkpoint(str(tmp_path / 'missing.pth'), str(tmp_path / 'out'))


def test_missing_key_and_bad_name_refused(tmp_path):
    path = tmp_path / 'no_ema.pth'
    save_sr_checkpoint(str(path), tiny_lite(0), LITE_OPT)
    with pytest.raises(CheckpointError, match='has no `params_ema`'):
        publish_checkpoint(str(path), str(tmp_path / 'out'), key='params_ema')
    with pytest.raises(ValueError, match='name must be'):
        publish_checkpoint(str(path), str(tmp_path / 'out'), name='../evil')


def test_basicsr_checkpoint_described_by_option_file(tmp_path):
    """A BasicSR net_g file (no arch entry) is published with the arch of the option file beside its experiment."""
    exp = tmp_path / 'experiments' / 'plain'
    (exp / 'models').mkdir(parents=True)
    ema = tiny_lite(3)
    torch_save({'params_ema': ema.state_dict(), 'params': tiny_lite(4).state_dict()}, str(exp / 'models' / 'n.pth'))
    with open(exp / 'opt.yml', 'w') as f:
        yaml.safe_dump({'scale': 8, 'network_g': LITE_OPT}, f)
    path, manifest = publish_checkpoint(str(exp / 'models' / 'n.pth'), str(tmp_path / 'out'))
    assert manifest['arch'] == LITE_OPT and manifest['dropped'] == ['params']
    loaded, _ = load_sr_network(path)
    assert torch.equal(outputs(loaded), outputs(ema))


def test_cli_exit_codes_and_summary(tmp_path, training_ckpt, capsys):
    out = tmp_path / 'cli'
    assert cli.main([training_ckpt[0], '-o', str(out), '--command', 'a', '--command', 'b']) == 0
    text = capsys.readouterr().out
    (pth,) = [p for p in os.listdir(out) if p.endswith('.pth')]
    assert 'LiteFaceStudent x8 (8 -> 64)' in text and '`params_ema`' in text and pth in text
    assert 'dropped: adapter, params' in text and '.json' in text
    with open(out / pth.replace('.pth', '.json')) as f:
        assert json.load(f)['commands'] == ['a', 'b']
    assert cli.main([str(tmp_path / 'missing.pth'), '-o', str(out)]) == 1
    assert 'checkpoint not found' in capsys.readouterr().err


def test_script_help():
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'scripts' / 'publish_model.py'), '--help'],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert '--output-dir' in proc.stdout and '--command' in proc.stdout
