"""Train with BasicSR's pipeline and facesr_kd's components; outputs go under the current directory.

Usage: ``python -m facesr_kd.train -opt options/distill_vggface2.yml [--auto_resume] [--debug]
[--force_yml k=v ...] [--launcher none|pytorch|slurm]`` (or the ``facesr-kd-train`` console script).
"""

import os
import sys


def main(argv=None):
    """Run BasicSR's ``train_pipeline`` with ``experiments/`` and ``tb_logger/`` under the working directory."""
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    import facesr_kd  # noqa: F401  (compat fixes and registration)
    from facesr_kd.utils.options import OptionError

    from basicsr import train as basicsr_train

    try:
        basicsr_train.train_pipeline(os.getcwd())
    except OptionError as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
