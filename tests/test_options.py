"""Option files: the shipped recipes resolve, our files are checked before any work, input never runs code.

Every shipped option file parses with BasicSR's loader and every `type:` in it resolves in a registry; bad settings
in our files fail with an OptionError naming the file and key; option files are read with a safe YAML loader and
--force_yml values are literals; output folders land where they should.
"""

import collections
import os
import sys
import textwrap

import facesr_kd  # noqa: F401
from facesr_kd.utils.options import OptionError, check_options

import pytest
import yaml
from basicsr.utils.options import ordered_yaml

from .conftest import REPO_ROOT, run_python, tiny_paired_options

OPTION_FILES = sorted((REPO_ROOT / 'options').rglob('*.yml'))


def load(path):
    """As ``basicsr.utils.options.parse_options`` reads an option file (basicsr 1.4.2)."""
    with open(path) as f:
        return yaml.load(f, Loader=ordered_yaml()[0])


def test_the_shipped_recipes_are_all_here():
    from facesr_kd.recipes import METHODS, ZOO_CONTROLS, ZOO_RECIPES

    names = {p.relative_to(REPO_ROOT / 'options').as_posix() for p in OPTION_FILES}
    expected = {train for train, _, _ in METHODS.values()} | {f'test/{test}' for _, test, _ in METHODS.values()}
    zoo = {f for stages in ZOO_RECIPES.values() for f in stages} | set(ZOO_CONTROLS)
    assert names == expected | {'train_teacher_gan_vggface2.yml'} | zoo
    assert len(METHODS) == 12 and sum(n.startswith('test/') for n in names) == 12


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: p.relative_to(REPO_ROOT / 'options').as_posix())
def test_option_file_parses_and_every_type_resolves(path):
    opt = load(path)
    opt['is_train'] = 'test' not in path.parts
    # Dataset and checkpoint paths are the user's to prepare; everything else is checked.
    check_options(opt, str(path), check_paths=False)
    assert opt['scale'] == (4 if path.name.startswith('zoo_lite_x4') else 8) and opt['name']


def test_a_misspelt_type_in_a_shipped_recipe_is_caught():
    opt = load(REPO_ROOT / 'options' / 'distill_vggface2.yml')
    opt['network_d']['type'] = 'FeatureMapDiscriminater'
    with pytest.raises(OptionError, match='did you mean `FeatureMapDiscriminator`'):
        check_options(opt, 'distill_vggface2.yml', check_paths=False)


# --- Issue 13: our option files fail before any folder is made, naming the key and what to do. ---


def our_options(root):
    """A valid option dict of ours (FaceSRModel on RCAN), every input path existing under ``root``."""
    rcan = {'type': 'RCAN', 'num_feat': 8, 'num_group': 1, 'num_block': 1, 'upscale': 8}
    return tiny_paired_options(root, rcan, is_train=True)


def test_our_options_pass(tmp_path):
    assert check_options(our_options(tmp_path), 'ours.yml') is True


def _set(opt, dotted, value):
    *parents, last = dotted.split('.')
    for key in parents:
        opt = opt[key]
    if value is DELETE:
        del opt[last]
    else:
        opt[last] = value


DELETE = object()


@pytest.mark.parametrize(
    'key, value, expected',
    [
        (
            'train.optim_g.learning_rate',
            1e-4,
            r'`train.optim_g.learning_rate`: Adam has no argument .*did you mean `lr`',
        ),
        ('train.optim_d', {'type': 'Adam', 'lr': 1e-4, 'bettas': [0.9, 0.9]}, r'`train.optim_d.bettas`: .*`betas`'),
        ('train.optim_g.type', 'Adamm', r'`train.optim_g.type`: `Adamm` is not a torch.optim .*did you mean `Adam`'),
        ('train.optim_g.betas', [1.5, 0.99], r'`train.optim_g`: Adam refuses these settings: .*beta'),
        ('train.optim_g.lr', DELETE, r'`train.optim_g.lr`: missing'),
        ('datasets.train.dataroot_gt', DELETE, r'`datasets.train.dataroot_gt`: missing: the train dataset needs'),
        ('datasets.val.dataroot_gt', DELETE, r'`datasets.val.dataroot_gt`: missing'),
        ('datasets.train.batch_size_per_gpu', 0, r'`datasets.train.batch_size_per_gpu`: is 0; it must be >= 1'),
        ('logger.save_checkpoint_freq', 0, r'`logger.save_checkpoint_freq`: is 0; it must be >= 1'),
        ('logger.print_freq', -1, r'`logger.print_freq`: is -1'),
        ('val.val_freq', 0, r'`val.val_freq`: is 0'),
        ('train.total_iter', 0, r'`train.total_iter`: is 0; training needs at least one iteration'),
        (
            'datasets.train.dataroot_lq',
            '/no/such/lr',
            r'`datasets.train.dataroot_lq`: /no/such/lr does not exist. .*facesr-kd-prepare',
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and '`' not in v else None,
)
def test_a_bad_setting_in_our_file_is_refused(tmp_path, key, value, expected):
    opt = our_options(tmp_path)
    _set(opt, key, value)
    with pytest.raises(OptionError, match=r'^ours.yml: ' + expected):
        check_options(opt, 'ours.yml')


def test_gpus_asked_for_on_a_machine_without_cuda(tmp_path, monkeypatch):
    import torch

    opt = our_options(tmp_path)
    opt['num_gpu'] = 1
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(OptionError, match=r'`num_gpu`: is 1 but this machine has no CUDA device; set `num_gpu: 0`'):
        check_options(opt, 'ours.yml')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert check_options(opt, 'ours.yml')


def test_a_test_run_needs_no_training_settings(tmp_path):
    opt = our_options(tmp_path)
    opt['is_train'] = False
    opt['train']['total_iter'] = 0
    opt['logger']['save_checkpoint_freq'] = 0
    del opt['datasets']['train']['dataroot_gt']
    assert check_options(opt, 'ours.yml')


def localised(recipe, root):
    """A shipped recipe with every dataset path moved to existing files and folders under ``root``."""
    opt = load(REPO_ROOT / 'options' / recipe)
    opt['is_train'] = True
    for phase, ds_opt in opt['datasets'].items():
        for key, value in ds_opt.items():
            if isinstance(value, str) and (key.startswith('dataroot_') or key.endswith(('_file', '_path'))):
                path = root / phase / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir() if key.startswith('dataroot_') else path.write_text('')
                ds_opt[key] = str(path)
    return opt


def test_the_teacher_checkpoint_must_be_a_teacher(tmp_path):
    import torch

    opt = localised('distill_vggface2.yml', tmp_path)
    ckpt = tmp_path / 'net_t.pth'
    opt['path']['pretrain_network_t'] = str(ckpt)
    weights = {'conv_first.weight': torch.zeros(2, 3, 3, 3)}
    cases = [
        ({'params': weights, 'arch': {'type': 'DFDNetStudent', 'out_size': 256}}, 'holds a DFDNetStudent checkpoint'),
        ({'params_ema': weights}, r'holds no component dictionary \(`params_ema` has no `dictionary.\*` entries\)'),
        (
            {'params': weights, 'arch': {'type': 'DFDNetTeacher', 'out_size': 256, 'num_atoms': 64}},
            r'`network_t.num_atoms`: is 512 but the teacher in .* was trained with num_atoms: 64',
        ),
    ]
    for state, expected in cases:
        torch.save(state, ckpt)
        with pytest.raises(OptionError, match=expected):
            check_options(opt, 'distill.yml')
    torch.save({'params': weights, 'arch': {'type': 'DFDNetTeacher', 'out_size': 256, 'num_atoms': 512}}, ckpt)
    assert check_options(opt, 'distill.yml')
    torch.save({'params_ema': {**weights, 'dictionary.loaded': torch.tensor(True)}}, ckpt)
    assert check_options(opt, 'distill.yml')


def test_the_dictionary_must_have_the_teachers_number_of_atoms(tmp_path):
    import torch

    opt = localised('train_teacher_vggface2.yml', tmp_path)
    dictionary = tmp_path / 'dictionary.pth'
    opt['network_g']['dict_path'] = str(dictionary)
    torch.save({'out_size': 256, 'num_atoms': 64, 'atoms': {'left_eye.relu2_2': torch.zeros(64, 1)}}, dictionary)
    with pytest.raises(OptionError, match=r'`network_g.num_atoms`: is 512 but the dictionary .* holds num_atoms=64'):
        check_options(opt, 'teacher.yml')
    opt['network_g']['num_atoms'] = 64
    assert check_options(opt, 'teacher.yml')


def test_zero_iterations_fail_before_any_folder_is_made(tmp_path):
    opt = our_options(tmp_path)
    opt['train']['total_iter'] = 0
    opt_file = tmp_path / 'zero.yml'
    opt_file.write_text(yaml.safe_dump(opt, sort_keys=False))
    proc = run_python(['-m', 'facesr_kd.train', '-opt', opt_file], cwd=tmp_path, check=False)
    assert proc.returncode != 0 and f'{opt_file}: `train.total_iter`: is 0' in proc.stdout
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'tb_logger').exists()


# --- Safe YAML and no eval of --force_yml (facesr_kd.compat.safe_option_yaml). ---


@pytest.mark.parametrize(
    'attack',
    [
        'yaml_tag',
        'force_yml_value',
        'force_yml_key',
    ],
)
def test_option_input_that_would_run_code_is_refused(attack, tmp_path):
    marker = tmp_path / 'code_ran'
    command = f'__import__("os").system("touch {marker}")'
    opt = our_options(tmp_path)
    opt_file = tmp_path / 'attack.yml'
    opt_file.write_text(yaml.safe_dump(opt, sort_keys=False))
    extra = []
    if attack == 'yaml_tag':
        opt_file.write_text(f'scale: !!python/object/apply:os.system ["touch {marker}"]\n' + opt_file.read_text())
        expected = [f'{opt_file}: refused:', 'python/object/apply:os.system', "YAML's safe loader"]
    elif attack == 'force_yml_value':
        extra = ['--force_yml', f'name=[{command}]']
        expected = [f'{opt_file}: --force_yml', 'is not a list of literals', 'never evaluated as code']
    else:
        extra = ['--force_yml', f'name"];{command};opt["name=x']
        expected = [f'{opt_file}: --force_yml', 'holds a quote, a backslash or a line break']
    proc = run_python(['-m', 'facesr_kd.train', '-opt', opt_file, *extra], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    for text in expected:
        assert text in proc.stdout
    assert not marker.exists() and not (tmp_path / 'experiments').exists()


def test_option_files_are_read_safely_and_in_order(tmp_path, monkeypatch):
    from basicsr.utils.options import parse_options

    opt_file = tmp_path / 'ours.yml'
    opt_file.write_text(yaml.safe_dump(our_options(tmp_path), sort_keys=False))
    monkeypatch.setattr(
        sys,
        'argv',
        ['train', '-opt', str(opt_file), '--force_yml', 'train:total_iter=5', 'x=[1,2]', 'y=1e-3', 'z=None', 'w=true'],
    )
    opt, _ = parse_options(str(tmp_path), is_train=True)
    assert type(opt) is collections.OrderedDict and list(opt)[:3] == ['name', 'model_type', 'scale']
    assert opt['train']['total_iter'] == 5 and type(opt['train']) is collections.OrderedDict
    assert (opt['x'], opt['y'], opt['z'], opt['w']) == ([1, 2], 0.001, None, True)


@pytest.mark.parametrize(
    'text, value',
    [
        ('5', 5),
        ('-1', -1),
        ('0.5', 0.5),
        ('1e-3', 0.001),
        ('!!float 2e-4', 2e-4),
        ('~', None),
        ('None', None),
        ('true', True),
        ('False', False),
        ("[0.9, 'a', [True, None]]", [0.9, 'a', [True, None]]),
        ('experiments/x', 'experiments/x'),
        ('(1, 2)', '(1, 2)'),
    ],
)
def test_force_yml_values_are_literals(text, value):
    from facesr_kd.compat import parse_force_yml_value

    parsed = parse_force_yml_value(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize('text', ['[x]', '[1] + [2]', '[__import__("os")]', '[1, 2'])
def test_force_yml_lists_of_anything_but_literals_are_refused(text):
    from facesr_kd.compat import parse_force_yml_value

    with pytest.raises(ValueError, match='is not a list of literals'):
        parse_force_yml_value(text)


# --- Output folders: under the working directory for an installed BasicSR, BasicSR's own for a checkout. ---


def test_site_root_detection_and_the_tb_logger_redirect(tmp_path):
    from facesr_kd.compat import installed_site_root, tb_logger_in_cwd

    site = tmp_path / 'venv' / 'lib' / 'python3.11' / 'site-packages'
    assert installed_site_root(str(site / 'basicsr')) == str(site)
    assert installed_site_root(str(tmp_path / 'dist-packages' / 'basicsr')) == str(tmp_path / 'dist-packages')
    assert installed_site_root(str(tmp_path / 'BasicSR' / 'basicsr')) is None
    cwd = str(tmp_path / 'work')
    assert tb_logger_in_cwd(str(site / 'tb_logger' / 'run'), str(site), cwd) == str(
        tmp_path / 'work' / 'tb_logger' / 'run'
    )
    for kept in (site / 'experiments' / 'run', tmp_path / 'mine' / 'tb_logger' / 'run', site / 'tb_logger'):
        assert tb_logger_in_cwd(str(kept), str(site), cwd) == str(kept)


def test_every_output_path_of_an_installed_basicsr_is_under_the_working_directory(tmp_path, monkeypatch):
    from facesr_kd.compat import installed_site_root

    import basicsr
    from basicsr.utils.options import parse_options

    site = installed_site_root(os.path.dirname(basicsr.__file__))
    if site is None:
        pytest.skip(f'BasicSR is not installed in a site-packages folder here ({basicsr.__file__})')
    opt_file = tmp_path / 'ours.yml'
    opt_file.write_text(yaml.safe_dump(our_options(tmp_path), sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, 'argv', ['train', '-opt', str(opt_file)])
    opt, _ = parse_options(site, is_train=True)
    root = str(tmp_path / 'experiments' / 'ours')
    assert opt['path']['experiments_root'] == root
    for key in ('models', 'training_states', 'log', 'visualization'):
        assert opt['path'][key].startswith(root)


def test_a_basicsr_checkout_keeps_its_own_output_folders(tmp_path):
    import basicsr

    checkout, work = tmp_path / 'BasicSR', tmp_path / 'work'
    checkout.mkdir()
    work.mkdir()
    (checkout / 'basicsr').symlink_to(os.path.dirname(basicsr.__file__), target_is_directory=True)
    opt_file = work / 'ours.yml'
    opt_file.write_text(yaml.safe_dump(our_options(work), sort_keys=False))
    explicit = checkout / 'experiments' / 'explicit'
    code = textwrap.dedent(
        f"""
        import os, sys
        import facesr_kd, basicsr
        from basicsr.utils import make_exp_dirs, mkdir_and_rename
        from basicsr.utils.options import parse_options
        root = os.path.dirname(os.path.dirname(os.path.abspath(basicsr.__file__)))
        assert root == {str(checkout)!r}, root
        sys.argv = ['train', '-opt', {str(opt_file)!r}]
        opt, _ = parse_options(root, is_train=True)
        assert opt['path']['experiments_root'] == os.path.join(root, 'experiments', 'ours'), opt['path']
        make_exp_dirs(opt)
        mkdir_and_rename(os.path.join(root, 'tb_logger', 'ours'))
        # An explicit experiments_root, as BasicSR master honours it: created where it says.
        explicit = {str(explicit)!r}
        opt['path'].update(experiments_root=explicit, models=os.path.join(explicit, 'models'))
        make_exp_dirs(opt)
        print('checked')
        """
    )
    env = {'PYTHONPATH': str(checkout), 'PYTHONDONTWRITEBYTECODE': '1'}
    assert 'checked' in run_python(['-c', code], cwd=work, env=env).stdout
    assert (checkout / 'experiments' / 'ours' / 'models').is_dir() and (checkout / 'tb_logger' / 'ours').is_dir()
    assert (explicit / 'models').is_dir()
    assert sorted(p.name for p in work.iterdir()) == ['hr', 'lr', 'ours.yml']
