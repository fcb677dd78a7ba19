"""``facesr-kd-gpu-check``: the whole check on the CPU (``--quick``), its error and budget paths, and the
CUDA-marked tests that ``-m cuda`` runs on a GPU (skipped without one)."""

import json
import os

import facesr_kd  # noqa: F401
from facesr_kd.benchmarks import gpu_check
from facesr_kd.cli.gpu_check import main

import pytest
import torch

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA GPU')

MINI_TESTS = """import pytest


@pytest.mark.cuda
def test_runs():
    pass


@pytest.mark.cuda
def test_skips():
    pytest.skip('no CUDA here')


def test_not_cuda():
    raise AssertionError('not CUDA-marked: deselected, never runs')
"""


def _mini_tests(root):
    """A tests folder with one passing and one skipping CUDA-marked test and one unmarked (deselected) test."""
    root.mkdir()
    (root / 'pytest.ini').write_text('[pytest]\nmarkers =\n    cuda: needs a CUDA GPU\n')
    (root / 'test_mini.py').write_text(MINI_TESTS)
    return root


@pytest.mark.slow
def test_quick_cpu_check_writes_every_section_and_passes(tmp_path, capsys):
    out = tmp_path / 'report'
    tests = _mini_tests(tmp_path / 'mini_tests')  # the suite's own -m cuda collection costs ~10 s more here
    rc = main(['--out', str(out), '--device', 'cpu', '--quick', '--tests', str(tests)])
    printed = capsys.readouterr().out
    assert rc == 0, printed[-3000:] + (out / 'gpu_check.md').read_text()
    for title in gpu_check.TITLES.values():
        assert f'[gpu-check] {title}' in printed  # progress per section

    report = json.loads((out / 'gpu_check.json').read_text())
    md = (out / 'gpu_check.md').read_text()
    assert report['finished'] and report['passed'] and report['complete']
    assert set(report['sections']) == set(gpu_check.SECTIONS)
    for key, title in gpu_check.TITLES.items():
        assert f'## {title}' in md
        assert report['sections'][key]['status'] in ('passed', 'skipped'), (key, report['sections'][key])
    assert 'Result: **PASSED**' in md and 'GPU: none (CPU run)' in md

    s = report['sections']
    assert (s['cuda_tests']['passed'], s['cuda_tests']['skipped'], s['cuda_tests']['failed']) == (1, 1, 0)

    rows = s['training']['rows']
    assert [(r['recipe'], r['precision']) for r in rows] == [
        ('Student w/o KD', 'fp32'),
        ('Student w/o KD', 'bf16 autocast'),
        ('Student', 'fp32'),
        ('Student', 'bf16 autocast'),
    ]
    for r in rows:
        assert r['timed'] == 2 and r['warmup'] == 1 and r['batch'] == 1 and r['finite']
        assert r['iters_per_s'] > 0 and r['loader_wait_ms_mean'] >= 0 and r['peak_mib'] is None
    assert {r['model_type'] for r in rows} == {'FaceSRModel', 'DictDistillModel'}
    assert 'synthetic' in s['training']['data'] and 'synthetic' in md

    ddp = s['ddp']
    assert ddp['status'] == 'passed' and ddp['returncode'] == 0 and ddp['checkpoint'] and ddp['validated']
    assert ddp['backend'].startswith('gloo') and ddp['wall_s'] > 0
    assert (out / 'ddp_output.log').is_file()

    infer = s['inference']['rows']
    assert {r['key'] for r in infer} == {'teacher', *gpu_check.efficiency.STUDENTS}
    assert {r['precision'] for r in infer} == {'fp32', 'bf16 autocast'}
    assert all(r['faces_per_s'] > 0 and r['finite'] and r['batch'] == 2 for r in infer)

    assert s['equality']['status'] == 'skipped' and s['equality']['note'] == 'skipped: no CUDA'


def test_cuda_without_cuda_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    assert main(['--out', str(tmp_path / 'r'), '--device', 'cuda']) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: --device cuda: CUDA is not available here')
    assert not (tmp_path / 'r').exists()


def test_spent_budget_skips_sections_and_still_reports(tmp_path):
    report = gpu_check.run_gpu_check(tmp_path, device='cpu', quick=True, budget_s=1e-3, tests_dir=None)
    assert report['finished'] and report['passed'] and not report['complete']
    assert all(s['status'] == 'skipped' for s in report['sections'].values())
    md = (tmp_path / 'gpu_check.md').read_text()
    assert 'incomplete' in md and md.count('skipped: time budget spent before this section') >= 5
    assert json.loads((tmp_path / 'gpu_check.json').read_text())['sections'] == report['sections']


def test_unknown_recipe_and_device_are_refused(tmp_path):
    with pytest.raises(gpu_check.GpuCheckError, match='unknown recipes'):
        gpu_check.run_gpu_check(tmp_path, device='cpu', quick=True, recipes=['Nope'])
    with pytest.raises(gpu_check.GpuCheckError, match='use cuda, cuda:N or cpu'):
        gpu_check.check_device('meta')


def test_tests_folder_is_this_checkout_and_junit_counts(tmp_path, repo_root):
    assert os.path.realpath(gpu_check.find_tests_dir()) == str(repo_root / 'tests')
    xml = tmp_path / 'r.xml'
    xml.write_text('<testsuites><testsuite name="pytest" errors="1" failures="2" skipped="3" tests="10"/></testsuites>')
    assert gpu_check.junit_counts(xml) == {'total': 10, 'skipped': 3, 'failed': 2, 'errors': 1, 'passed': 4}


def test_cuda_tests_that_all_skip_fail_a_cuda_check(tmp_path):
    tests = tmp_path / 'skipping'
    tests.mkdir()
    (tests / 'pytest.ini').write_text('[pytest]\nmarkers =\n    cuda: needs a CUDA GPU\n')
    (tests / 'test_s.py').write_text('import pytest\n\n\n@pytest.mark.cuda\ndef test_s():\n    pytest.skip()\n')
    result = gpu_check.check_cuda_tests(str(tmp_path), str(tests), timeout=120, device='cuda')
    assert (result['status'], result['passed'], result['skipped']) == ('failed', 0, 1), result
    assert 'skipped itself' in result['note']


def test_synthetic_faces_are_items_like_the_face_dataset():
    ds = gpu_check.SyntheticFaceDataset(64, length=5, pool=2)
    item = ds[4]
    assert len(ds) == 5 and item['gt'].shape == (3, 64, 64) and item['lq'].shape == (3, 8, 8)
    assert item['boxes'].shape == (4, 4) and 0 <= float(item['gt'].min()) and float(item['gt'].max()) <= 1
    assert not torch.equal(ds[0]['gt'], ds[1]['gt'])


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize('name', ['teacher', 'student', 'lite'])
def test_cuda_outputs_match_the_cpu(name):
    sizes = {'out_size': 64, 'scale': 8, 'num_atoms': 4, 'num_feat': 8, 'compact_feat': 8}
    row = gpu_check.compare_devices(name, sizes, 'cuda', batch=2)
    assert row['passed'], row
    assert row['max_abs_output'] > 0


@pytest.mark.cuda
@needs_cuda
def test_bf16_distillation_iterations_on_cuda(tmp_path):
    preset = gpu_check.preset_sizes('smoke')
    assets = gpu_check.random_assets(str(tmp_path / 'assets'), preset)
    row = gpu_check.time_recipe(
        'Student', 'bf16', preset, str(tmp_path), assets, 'cuda', gpu_check.QUICK, deadline=float('inf')
    )
    assert row['finite'] and row['timed'] == gpu_check.QUICK['iters'] and row['peak_mib'] > 0, row
