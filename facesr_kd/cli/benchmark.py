"""``facesr-kd-benchmark``: test-time cost of every student, the teacher, RCAN and SRFBN.

The benchmark and its options are :mod:`facesr_kd.benchmarks.efficiency` (its worker processes run that file
by path, so the command line lives there).
"""

import sys

from facesr_kd.benchmarks.efficiency import main

if __name__ == '__main__':
    sys.exit(main())
