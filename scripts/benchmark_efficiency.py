"""Test-time cost of every student, the teacher, RCAN and SRFBN.

The ``facesr-kd-benchmark`` console script; see :mod:`facesr_kd.cli.benchmark`.
"""

import sys

from facesr_kd.cli.benchmark import main

if __name__ == '__main__':
    sys.exit(main())
