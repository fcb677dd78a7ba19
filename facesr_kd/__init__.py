"""facesr_kd: face super-resolution by dictionary distillation, as a BasicSR extension.

Importing the package applies the BasicSR compatibility fixes (:mod:`facesr_kd.compat`) and registers every
architecture, dataset, loss, model and metric of the package in BasicSR's registries.
"""

from facesr_kd import compat

compat.apply()

from facesr_kd import archs, data, losses, metrics, models  # noqa: E402  (registration needs compat first)
from facesr_kd.utils import options as _options  # noqa: E402
from facesr_kd.version import __version__  # noqa: E402

_options.install_option_check()

__all__ = ['archs', 'data', 'losses', 'metrics', 'models', '__version__']
