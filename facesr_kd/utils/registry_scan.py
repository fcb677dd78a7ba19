"""Import every module of a sub-package whose file name ends with a BasicSR suffix, so that it registers."""

import importlib
from pathlib import Path


def import_modules(package, suffix):
    """Import ``package.<name>`` for every ``<name><suffix>.py`` beside ``package``'s ``__init__``.

    Args:
        package (str): Dotted package name, e.g. ``'facesr_kd.archs'``.
        suffix (str): File-name suffix, e.g. ``'_arch'``.

    Returns:
        list[module]: The imported modules, in file-name order.
    """
    folder = Path(importlib.import_module(package).__file__).parent
    names = sorted(p.stem for p in folder.glob(f'*{suffix}.py'))
    return [importlib.import_module(f'{package}.{name}') for name in names]
