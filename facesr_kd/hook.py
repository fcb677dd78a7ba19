"""Install or remove the opt-in startup hook that lets BasicSR's own entry points use facesr_kd.

Usage: ``python -m facesr_kd.hook install|uninstall|status [--site-dir DIR]``.

The hook is a ``facesr_kd-basicsr-hook.pth`` file in site-packages. At interpreter start it only puts a finder
on ``sys.meta_path`` (no torch, no BasicSR); the first ``import basicsr`` then imports facesr_kd, which fixes
BasicSR for today's torchvision and registers our components. Remove it with ``uninstall``.
"""

import argparse
import os
import sysconfig

PTH_NAME = 'facesr_kd-basicsr-hook.pth'


def pth_line(startup_file):
    """The single ``.pth`` line: load ``_startup.py`` by path if it still exists, and install its finder."""
    return (
        f"import os, importlib.util as u; p = r'{startup_file}'; s = os.path.isfile(p) and "
        "u.spec_from_file_location('_facesr_kd_startup', p); m = s and u.module_from_spec(s); "
        's and s.loader.exec_module(m); m and m.install()\n'
    )


def install(site_dir=None):
    """Write the hook into ``site_dir`` (default: this interpreter's site-packages). Returns its path."""
    site_dir = site_dir or sysconfig.get_paths()['purelib']
    startup = os.path.join(os.path.dirname(os.path.abspath(__file__)), '_startup.py')
    path = os.path.join(site_dir, PTH_NAME)
    with open(path, 'w') as f:
        f.write(pth_line(startup))
    return path


def uninstall(site_dir=None):
    """Remove the hook from ``site_dir``. Returns the removed path, or None if there was none."""
    path = os.path.join(site_dir or sysconfig.get_paths()['purelib'], PTH_NAME)
    if os.path.exists(path):
        os.remove(path)
        return path
    return None


def main(args):
    if args.action == 'install':
        print(f'installed {install(args.site_dir)}')
    elif args.action == 'uninstall':
        removed = uninstall(args.site_dir)
        print(f'removed {removed}' if removed else 'no hook was installed')
    else:
        path = os.path.join(args.site_dir or sysconfig.get_paths()['purelib'], PTH_NAME)
        print(f'installed at {path}' if os.path.exists(path) else 'not installed')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('action', choices=['install', 'uninstall', 'status'])
    parser.add_argument('--site-dir', default=None, help="site-packages folder (default: this interpreter's)")
    return parser.parse_args(argv)


if __name__ == '__main__':
    main(parse_args())
