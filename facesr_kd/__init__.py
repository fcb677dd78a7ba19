"""facesr_kd: face super-resolution by dictionary distillation, as a BasicSR extension.

Importing the package applies the BasicSR compatibility fixes (:mod:`facesr_kd.compat`) and registers every
architecture, dataset, loss, model and metric of the package in BasicSR's registries.

One exception: ``python -m facesr_kd.hook ...`` manages the startup hook and needs neither torch nor BasicSR
(it must work where they are broken, or from a BasicSR checkout whose ``basicsr/`` folder would shadow the
installed one). While Python imports this package as the parent of that command, nothing heavy is imported.
"""

from facesr_kd._startup import started_as_module as _started_as_module
from facesr_kd.version import __version__

if not _started_as_module('facesr_kd.hook'):
    from facesr_kd import compat

    compat.apply()

    from facesr_kd import archs, data, losses, metrics, models  # noqa: F401  (registration needs compat first)
    from facesr_kd.utils import options as _options

    _options.install_option_check()

__all__ = ['archs', 'data', 'losses', 'metrics', 'models', '__version__']
