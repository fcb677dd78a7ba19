"""The main job: the whole Table 1 chain at the smoke preset, on real faces, then a re-run and resumes.

The smoke preset runs with a fixed random VGG19 and random LPIPS backbones (no ImageNet weights here); the
test checks the chain, never the figures.
"""

import csv
import math
import re

import pytest
import torch

from .conftest import FFHQ256, run_python

RECIPES = (
    'train_teacher_vggface2',
    'train_student_nokd_vggface2',
    'distill_vggface2',
    'train_rcan_x8_vggface2',
    'train_srfbn_x8_vggface2',
)


def reproduce_smoke(work):
    """``facesr-kd-reproduce --preset smoke`` on 8 train and 4 test faces of the staged FFHQ set."""
    # Table 1's five rows at 4 iterations each: the chain, not the figures (the preset itself adds the lite rows).
    args = ['--preset', 'smoke', '--faces', FFHQ256, '--aligned', '--work-dir', work, '--workers', '1', '--iters', '4']
    args += ['--methods', 'Teacher', 'Student w/o KD', 'Student', 'RCAN', 'SRFBN']
    return run_python(['-m', 'facesr_kd.cli.reproduce', *args], cwd=work, timeout=900)


@pytest.fixture(scope='module')
def smoke_run(tmp_path_factory, shared_data):
    work = tmp_path_factory.mktemp('table1_smoke')
    return work, reproduce_smoke(work)


def test_smoke_preset_writes_table_with_five_finite_rows_and_figure(smoke_run):
    work, proc = smoke_run
    with open(work / 'table1.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['method'] for r in rows] == [
        'Bicubic',
        "Bicubic (torch, the networks' resize)",
        'RCAN',
        'SRFBN',
        'Teacher',
        'Student w/o KD',
        'Student',
    ]
    for row in rows[:2]:
        assert 10 < float(row['psnr']) < 40 and int(row['num_images']) == 4
    for row in rows[2:]:
        for key in ('psnr', 'ssim', 'psnr_y', 'ssim_y', 'lpips', 'lpips_vgg', 'latency_ms'):
            assert math.isfinite(float(row[key])), (row['method'], key)
        assert int(row['num_images']) == 4
    table = (work / 'table1.md').read_text()
    assert 'not LPIPS' in table and 'RANDOM' in table and '| LPIPS↓' not in table
    assert 'LEVER' in table and 'input_skip' in table  # the short-run levers are stated beside the figures
    assert (work / 'table1_figure1.png').stat().st_size > 10_000
    log = (work / 'commands.log').read_text()
    assert log.count('facesr_kd.train') == 1 and log.count('facesr_kd.test') == 1  # one process each, for all five
    assert log.count('-opt') == 5 + 5
    for stage in ('train_Teacher', 'train_Student', 'test_Teacher', 'test_SRFBN'):  # a log per stage all the same
        assert 'Validation' in (work / 'logs' / f'{stage}.log').read_text()
    output = {s: (work / 'logs' / f'train_{s}.log').read_text().split('\n', 1)[1] for s in ('Teacher', 'Student')}
    assert 'name: distill_vggface2' in output['Student'] and 'distill_vggface2' not in output['Teacher']
    assert 'facesr_kd.cli.dictionary' in log


def test_smoke_rerun_skips_every_finished_stage(smoke_run):
    work, _ = smoke_run
    log_before = (work / 'commands.log').read_text()
    proc = reproduce_smoke(work)
    assert proc.stdout.count('done, skipped') == 10
    assert (work / 'commands.log').read_text() == log_before


@pytest.mark.parametrize('recipe', RECIPES)
def test_each_recipe_resumes_from_its_saved_iteration(smoke_run, recipe):
    work, _ = smoke_run
    states = work / 'experiments' / recipe / 'training_states'
    last = max(int(p.stem) for p in states.glob('*.state'))
    proc = run_python(
        [
            '-m',
            'facesr_kd.train',
            '-opt',
            work / 'options' / f'{recipe}.yml',
            '--auto_resume',
            '--force_yml',
            f'train:total_iter={last + 2}',
            'logger:save_checkpoint_freq=2',
        ],
        cwd=work,
    )
    assert re.search(rf'Resuming training from epoch: \d+, iter: {last}\.', proc.stdout)
    assert f'iter:{last + 1:8,d},' in proc.stdout and f'iter:{1:8,d},' not in proc.stdout
    ckpt = torch.load(work / 'experiments' / recipe / 'models' / f'net_g_{last + 2}.pth', weights_only=True)
    assert 'arch' in ckpt and ckpt['scale'] == 8


def test_distillation_recipe_runs_through_basicsrs_own_entry_point(smoke_run, startup_hook):
    work, _ = smoke_run
    opt_file = work / 'options' / 'distill_vggface2.yml'
    proc = run_python(['-m', 'basicsr.train', '-opt', opt_file, '--force_yml', 'name=distill_via_basicsr'], cwd=work)
    assert 'Model [DictDistillModel] is created.' in proc.stdout and 'l_g_gan' in proc.stdout
    assert (work / 'experiments' / 'distill_via_basicsr' / 'models' / 'net_g_latest.pth').exists()


def test_without_faces_the_demo_set_is_built_offline_and_every_stage_planned(tmp_path):
    proc = run_python(
        ['-m', 'facesr_kd.cli.reproduce', '--preset', 'smoke', '--work-dir', tmp_path, '--dry-run'],
        cwd=tmp_path,
    )
    assert 'offline demo set' in proc.stdout
    assert len(list((tmp_path / 'data' / 'train' / 'hr').glob('*.png'))) == 8
    assert len(list((tmp_path / 'data' / 'test' / 'hr').glob('*.png'))) == 4
    assert len(list((tmp_path / 'options').glob('*.yml'))) == 14
    log = (tmp_path / 'commands.log').read_text()
    assert log.count('facesr_kd.cli.dictionary') == 1
    assert log.count('facesr_kd.train') == 1 and log.count('facesr_kd.test') == 1  # one process each
    for entry in ('facesr_kd.train', 'facesr_kd.test'):  # Table 1 + the lite student
        assert next(line for line in log.splitlines() if entry in line).count('-opt') == 7


def test_terminal_table_fits_100_columns_with_delta_vs_bicubic():
    from facesr_kd.table1 import terminal_table

    nan = math.nan
    rows = [
        {'method': 'Bicubic', 'psnr': 16.18, 'ssim': 0.291, 'latency_ms': nan},
        {'method': 'Teacher', 'psnr': 19.28, 'ssim': 0.595, 'latency_ms': 66.2},
        {'method': 'A very long method name ' * 5, 'psnr': 17.0, 'ssim': 0.4, 'latency_ms': 1.25},
    ]
    lines = terminal_table(rows).splitlines()
    assert max(map(len, lines)) <= 100
    assert lines[0].split() == ['Method', 'PSNR', 'SSIM', 'Δ', 'vs', 'bicubic', 'ms/face']
    assert lines[2].split() == ['Bicubic', '16.18', '0.291', '–', '–']
    assert lines[3].split() == ['Teacher', '19.28', '0.595', '+3.10', '66.2']
    assert lines[4].split()[-4:] == ['17.00', '0.400', '+0.82', '1.2'] and '…' in lines[4]


def test_runner_keeps_stage_output_in_its_log_and_reports_a_failure(tmp_path, capsys):
    from facesr_kd.reproduce import Runner, StageError

    runner = Runner(str(tmp_path))
    runner.run(['-c', 'print("BasicSR banner " * 3)'], 'train Teacher')
    out = capsys.readouterr()
    assert 'BasicSR banner' not in out.out + out.err and 'train Teacher' in out.err
    assert 'BasicSR banner' in (tmp_path / 'logs' / 'train_Teacher.log').read_text()
    with pytest.raises(StageError, match=r'train_bad\.log'):
        runner.run(['-c', 'import sys; print("the cause"); sys.exit(3)'], 'train bad')
    assert 'the cause' in capsys.readouterr().err  # the log's last lines are shown on failure
    assert (tmp_path / 'commands.log').read_text().count('-c') == 2


def test_runner_gives_each_stage_of_one_command_its_log_and_names_the_one_that_failed(tmp_path, capsys):
    from facesr_kd.reproduce import Runner, StageError

    runner = Runner(str(tmp_path))
    code = (
        'import sys; print("first out"); print("facesr_kd.train: done 1/3 a.yml"); print("second out"); '
        'print("facesr_kd.train: done 2/3 b.yml"); print("third fails"); sys.exit(1)'
    )
    with pytest.raises(StageError, match=r"stage 'train C' failed .*train_C\.log"):
        runner.run_stages(['-c', code], [('train A', 4), ('train B', 4), ('train C', 4)])
    outputs = {s: (tmp_path / 'logs' / f'train_{s}.log').read_text().splitlines()[1:] for s in 'ABC'}
    assert outputs['A'] == ['first out', 'facesr_kd.train: done 1/3 a.yml']
    assert outputs['B'] == ['second out', 'facesr_kd.train: done 2/3 b.yml']
    assert outputs['C'] == ['third fails'] and 'third fails' in capsys.readouterr().err
