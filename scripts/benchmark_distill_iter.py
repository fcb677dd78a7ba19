"""Time one training iteration of each recipe.

The ``facesr-kd-benchmark-iter`` console script; see :mod:`facesr_kd.cli.benchmark_iter`.
"""

import sys

from facesr_kd.cli.benchmark_iter import main

if __name__ == '__main__':
    sys.exit(main())
