"""Every shipped option file parses with BasicSR's loader and every `type:` in it resolves in a registry."""

import facesr_kd  # noqa: F401
from facesr_kd.utils.options import OptionError, check_options

import pytest
import yaml
from basicsr.utils.options import ordered_yaml

from .conftest import REPO_ROOT

OPTION_FILES = sorted((REPO_ROOT / 'options').rglob('*.yml'))


def load(path):
    """As ``basicsr.utils.options.parse_options`` reads an option file (basicsr 1.4.2)."""
    with open(path) as f:
        return yaml.load(f, Loader=ordered_yaml()[0])


def test_the_shipped_recipes_are_all_here():
    from facesr_kd.recipes import METHODS

    names = {p.relative_to(REPO_ROOT / 'options').as_posix() for p in OPTION_FILES}
    expected = {train for train, _, _ in METHODS.values()} | {f'test/{test}' for _, test, _ in METHODS.values()}
    assert names == expected | {'train_teacher_gan_vggface2.yml'}
    assert len(METHODS) == 10 and sum(n.startswith('test/') for n in names) == 10


@pytest.mark.parametrize('path', OPTION_FILES, ids=lambda p: p.relative_to(REPO_ROOT / 'options').as_posix())
def test_option_file_parses_and_every_type_resolves(path):
    opt = load(path)
    opt['is_train'] = 'test' not in path.parts
    # Dataset and checkpoint paths are the user's to prepare; everything else is checked.
    check_options(opt, str(path), check_paths=False)
    assert opt['scale'] == 8 and opt['name']


def test_a_misspelt_type_in_a_shipped_recipe_is_caught():
    opt = load(REPO_ROOT / 'options' / 'distill_vggface2.yml')
    opt['network_d']['type'] = 'FeatureMapDiscriminater'
    with pytest.raises(OptionError, match='did you mean `FeatureMapDiscriminator`'):
        check_options(opt, 'distill_vggface2.yml', check_paths=False)
