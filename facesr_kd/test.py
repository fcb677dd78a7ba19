"""Test with BasicSR's pipeline and facesr_kd's components; results go under ``./results``.

Usage: ``python -m facesr_kd.test -opt options/test/test_student_vggface2.yml`` (or ``facesr-kd-test``).
"""

import os
import sys


def main(argv=None):
    """Run BasicSR's ``test_pipeline`` with ``results/`` under the working directory."""
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    import facesr_kd  # noqa: F401  (compat fixes and registration)
    from facesr_kd.utils.options import OptionError

    from basicsr import test as basicsr_test

    try:
        basicsr_test.test_pipeline(os.getcwd())
    except OptionError as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
