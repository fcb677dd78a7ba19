"""Interpreter-start hook that plugs facesr_kd into BasicSR's own entry points.

``python -m facesr_kd.hook install`` writes a ``.pth`` file that loads this file (by path, not through the
package, so that nothing heavy is imported at interpreter start) and calls :func:`install`. That puts a finder
on ``sys.meta_path`` which waits for the first ``import basicsr``; then, instead of a plain import, it imports
``facesr_kd``, which applies the compatibility fixes, imports BasicSR and registers our components. So
``python -m basicsr.train -opt options/distill_vggface2.yml`` and ``python basicsr/train.py ...`` from a BasicSR
checkout find our architectures, datasets, losses, models and metrics.
"""

import importlib.machinery
import sys


class _AlreadyLoaded:
    """Loader that hands back a module which is already in ``sys.modules``."""

    def create_module(self, spec):
        return sys.modules[spec.name]

    def exec_module(self, module):
        pass


class BasicSRPluginFinder:
    """Import ``facesr_kd`` in place of the first plain ``import basicsr``."""

    def find_spec(self, name, path=None, target=None):
        if name != 'basicsr':
            return None
        uninstall()
        if 'facesr_kd' in sys.modules:
            return None  # facesr_kd itself is importing basicsr, after its compat fixes
        import facesr_kd  # noqa: F401

        spec = sys.modules['basicsr'].__spec__
        loaded = importlib.machinery.ModuleSpec(
            'basicsr', _AlreadyLoaded(), origin=spec.origin, is_package=spec.submodule_search_locations is not None
        )
        loaded.submodule_search_locations = spec.submodule_search_locations
        return loaded


def install():
    if not any(isinstance(f, BasicSRPluginFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, BasicSRPluginFinder())


def uninstall():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, BasicSRPluginFinder)]
