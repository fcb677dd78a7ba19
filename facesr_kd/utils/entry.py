"""Shared body of ``facesr_kd.train`` and ``facesr_kd.test``: BasicSR's pipelines rooted in the working directory."""

import os
import sys


def run_pipeline(kind, argv=None):
    """Run BasicSR's ``train_pipeline`` or ``test_pipeline`` with outputs under the current directory.

    Args:
        kind (str): ``'train'`` or ``'test'``.
        argv (list[str] | None): Command-line arguments (default: ``sys.argv[1:]``); BasicSR parses them.
    """
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    import facesr_kd  # noqa: F401  (compat fixes and registration before basicsr)
    from facesr_kd.utils.options import OptionError

    from basicsr import test, train

    pipeline = train.train_pipeline if kind == 'train' else test.test_pipeline
    try:
        pipeline(os.getcwd())
    except OptionError as err:
        sys.exit(f'error: {err}')
