"""Interpreter-start hook that plugs facesr_kd into BasicSR's own entry points.

``python -m facesr_kd.hook install`` writes a ``.pth`` file whose single line, at every interpreter start, asks
the import system where ``facesr_kd`` is now (``importlib.util.find_spec``, which executes nothing), loads this
file from there under the name ``_facesr_kd_startup`` and calls :func:`install`; when facesr_kd is no longer
installed the line does nothing. :func:`install` puts a finder on ``sys.meta_path`` which waits for the first
``import basicsr``; then, instead of a plain import, it imports ``facesr_kd``, which applies the compatibility
fixes, imports BasicSR and registers our components. So ``python -m basicsr.train -opt <file>`` and
``python basicsr/train.py ...`` from a BasicSR checkout find our architectures, datasets, losses, models and
metrics.

This file imports only ``importlib.machinery`` and ``sys``: it runs in every interpreter of the environment.
"""

import importlib.machinery
import sys


class _BasicSRAfterFacesrKd:
    """Loader of ``basicsr`` that imports ``facesr_kd`` first and hands back the ``basicsr`` that it imported.

    ``facesr_kd`` imports ``basicsr`` itself (after its compatibility fixes): that module, executed once by
    its own loader, is the one every later ``import basicsr`` gets. The import machinery stamps this loader's
    spec on it; :meth:`exec_module` puts its own spec back.
    """

    def create_module(self, spec):
        import facesr_kd  # noqa: F401

        module = sys.modules['basicsr']
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self.own_spec


class BasicSRPluginFinder:
    """Import ``facesr_kd`` in place of the first plain ``import basicsr``.

    Attributes:
        facesr_kd_hook (bool): Marks the finder for :func:`install`, :func:`uninstall` and ``hook status``,
            whichever copy of this file defined its class.
        origin (str): This file, i.e. where the package that installed the finder lives.
    """

    facesr_kd_hook = True
    origin = __file__

    def find_spec(self, name, path=None, target=None):
        if name != 'basicsr':
            return None
        uninstall()
        if 'facesr_kd' in sys.modules:
            return None  # facesr_kd itself is importing basicsr, after its compat fixes
        return importlib.machinery.ModuleSpec('basicsr', _BasicSRAfterFacesrKd())


def _is_hook(finder):
    return getattr(finder, 'facesr_kd_hook', False) is True


def install():
    """Put the finder first on ``sys.meta_path`` unless a facesr_kd finder is there already."""
    if not any(_is_hook(f) for f in sys.meta_path):
        sys.meta_path.insert(0, BasicSRPluginFinder())


def uninstall():
    """Remove every facesr_kd finder from ``sys.meta_path``."""
    sys.meta_path[:] = [f for f in sys.meta_path if not _is_hook(f)]


def started_as_module(name, orig_argv=None, argv0=None):
    """Whether this interpreter was started as ``python [options] -m <name>`` and is importing its parents now.

    While ``-m`` imports the parent packages of the module it runs, ``sys.argv[0]`` is ``'-m'``; the module's
    name is then read from ``sys.orig_argv`` (Python >= 3.10), skipping the interpreter's own options
    (``-X importtime``, ``-W error``, grouped flags such as ``-Bm``).

    Args:
        name (str): Dotted module name, e.g. ``'facesr_kd.hook'``.
        orig_argv (list[str] | None): Default: ``sys.orig_argv``.
        argv0 (str | None): Default: ``sys.argv[0]``.

    Returns:
        bool
    """
    if argv0 is None:
        argv0 = sys.argv[0] if sys.argv else ''
    if argv0 != '-m':
        return False
    args = iter((getattr(sys, 'orig_argv', []) if orig_argv is None else orig_argv)[1:])
    for arg in args:
        if arg == '--check-hash-based-pycs':
            next(args, None)
            continue
        if arg.startswith('--'):
            continue
        if not arg.startswith('-') or arg == '-':
            return False  # a script, or the program on stdin
        for i, flag in enumerate(arg[1:], start=1):
            if flag in 'XWcm':  # the options that take an argument
                value = arg[i + 1 :] or next(args, '')
                if flag == 'm':
                    return value == name
                if flag == 'c':
                    return False
                break
    return False
