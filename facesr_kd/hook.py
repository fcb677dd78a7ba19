"""Install, remove or check the opt-in startup hook that lets BasicSR's own entry points use facesr_kd.

Usage: ``python -m facesr_kd.hook install|uninstall|status [--site-dir DIR]``.

The hook is a ``facesr_kd-basicsr-hook.pth`` file in site-packages. At every interpreter start its line looks
facesr_kd up where it is installed now (``pip install .`` or ``pip install -e .``, whichever came last) and
puts a finder on ``sys.meta_path`` (no torch, no BasicSR); the first ``import basicsr`` then imports
facesr_kd, which fixes BasicSR for today's torchvision and registers our components. Once facesr_kd is
uninstalled the line does nothing. Remove it with ``uninstall``.

This command imports neither torch nor BasicSR, so it works where they are broken and from any folder.

``status`` exit codes: 0 the hook is installed, current and loads facesr_kd at interpreter start; 1 no hook
file; 2 a hook file that is stale (written by an older facesr_kd) or not facesr_kd's; 3 a current hook file
that does not load facesr_kd (facesr_kd is not importable at that interpreter's start, or ``--site-dir`` is
not a folder this interpreter reads ``.pth`` files from).
"""

import argparse
import json
import os
import subprocess
import sys
import sysconfig

from facesr_kd.utils.files import write_text

PTH_NAME = 'facesr_kd-basicsr-hook.pth'
# Editable installs put their finder in `__editable__.facesr_kd-<version>.pth`; site.py reads `.pth` files in
# name order, so that finder is on sys.meta_path when our line (sorted after it) looks facesr_kd up.

OK, NOT_INSTALLED, STALE_OR_FOREIGN, NOT_LOADING = 0, 1, 2, 3

# Run in a fresh interpreter by `status`: read the site folder as interpreter start does, report the finder.
_PROBE = """
import json, os, site, sys
if sys.path[:1] == ['']:
    del sys.path[0]
site_dir = os.path.normcase(os.path.abspath(sys.argv[1]))
if site_dir not in {os.path.normcase(os.path.abspath(p)) for p in sys.path}:
    site.addsitedir(site_dir)
hooks = [f for f in sys.meta_path if getattr(f, 'facesr_kd_hook', False) is True]
heavy = sorted(m for m in ('torch', 'basicsr', 'facesr_kd') if m in sys.modules)
print(json.dumps({'origin': getattr(hooks[0], 'origin', None) if hooks else None, 'imported': heavy}))
"""


def pth_line():
    """The single ``.pth`` line. It names no folder: it finds facesr_kd anew at each interpreter start."""
    return (
        "import importlib.util as u, os; s = u.find_spec('facesr_kd'); "
        "p = s and s.origin and os.path.join(os.path.dirname(s.origin), '_startup.py'); "
        "t = p and os.path.isfile(p) and u.spec_from_file_location('_facesr_kd_startup', p); "
        'm = t and u.module_from_spec(t); t and t.loader.exec_module(m); m and m.install()\n'
    )


def default_site_dir():
    """This interpreter's site-packages (``sysconfig``'s ``purelib``), where pip installs facesr_kd."""
    return sysconfig.get_paths()['purelib']


def hook_path(site_dir=None):
    """Path of the hook file in ``site_dir`` (default: :func:`default_site_dir`)."""
    return os.path.join(site_dir or default_site_dir(), PTH_NAME)


def install(site_dir=None):
    """Write the hook into ``site_dir`` (default: this interpreter's site-packages). Returns its path."""
    path = hook_path(site_dir)
    write_text(path, pth_line())
    return path


def uninstall(site_dir=None):
    """Remove the hook from ``site_dir``. Returns the removed path, or None if there was none."""
    path = hook_path(site_dir)
    if os.path.exists(path):
        os.remove(path)
        return path
    return None


def classify(text):
    """What a hook file holds: ``'current'``, ``'stale'`` (an older facesr_kd's) or ``'foreign'``."""
    if text == pth_line():
        return 'current'
    return 'stale' if '_facesr_kd_startup' in text else 'foreign'


def probe(site_dir, python=None):
    """Start a fresh interpreter that reads ``site_dir`` as interpreter start does; report what the hook did.

    Args:
        site_dir (str): The folder holding the hook file.
        python (str | None): The interpreter (default: this one).

    Returns:
        dict: ``origin`` (the ``_startup.py`` the installed finder came from, or None) and ``imported`` (which of
        torch, basicsr and facesr_kd interpreter start imported: none, when the hook works as meant).
    """
    proc = subprocess.run(
        [python or sys.executable, '-c', _PROBE, site_dir],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {'origin': None, 'imported': [], 'error': (proc.stderr or proc.stdout).strip()[-2000:]}
    return json.loads(lines[-1])


def status(site_dir=None, out=print, python=None):
    """Check the hook in ``site_dir`` and report on it.

    Args:
        site_dir (str | None): Default: this interpreter's site-packages.
        out (callable): Receives each report line.
        python (str | None): The interpreter whose start is checked (default: this one).

    Returns:
        int: The exit code: :data:`OK`, :data:`NOT_INSTALLED`, :data:`STALE_OR_FOREIGN` or :data:`NOT_LOADING`.
    """
    site_dir = site_dir or default_site_dir()
    path = hook_path(site_dir)
    if not os.path.exists(path):
        out(f'not installed: there is no {path}')
        return NOT_INSTALLED
    with open(path, errors='replace') as f:
        kind = classify(f.read())
    if kind == 'stale':
        out(
            f'stale: {path} was written by an older facesr_kd (it loads facesr_kd from a fixed folder); '
            'run `python -m facesr_kd.hook install` to rewrite it, or `uninstall` to remove it'
        )
        return STALE_OR_FOREIGN
    if kind == 'foreign':
        out(
            f'foreign: {path} was not written by facesr_kd; look at it, then remove it or run '
            '`python -m facesr_kd.hook install` to replace it'
        )
        return STALE_OR_FOREIGN
    python = python or sys.executable
    found = probe(site_dir, python)
    if found.get('error'):
        out(f'installed at {path}, but a fresh interpreter failed to start with it:\n{found["error"]}')
        return NOT_LOADING
    if found['origin'] is None:
        out(
            f'installed at {path}, but it loads no facesr_kd: facesr_kd is not importable when '
            f'{python} starts, or {site_dir} is not one of its site folders'
        )
        return NOT_LOADING
    out(f'installed at {path} (current)')
    out(f'loads facesr_kd from {os.path.dirname(found["origin"])} at the first `import basicsr`')
    if found['imported']:
        out(f'warning: interpreter start imported {", ".join(found["imported"])} (expected nothing heavy)')
    return OK


def main(args):
    """Run the command that :func:`parse_args` parsed; returns the exit code."""
    if args.action == 'install':
        print(f'installed {install(args.site_dir)}')
        return OK
    if args.action == 'uninstall':
        removed = uninstall(args.site_dir)
        print(f'removed {removed}' if removed else 'no hook was installed')
        return OK
    return status(args.site_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog='status exits 0 when the hook works; see the module docstring.'
    )
    parser.add_argument('action', choices=['install', 'uninstall', 'status'])
    parser.add_argument('--site-dir', default=None, help="site-packages folder (default: this interpreter's)")
    return parser.parse_args(argv)


if __name__ == '__main__':
    sys.exit(main(parse_args()))
