"""Photo benchmark: whole photos shrunk, restored and scored face by face beside bicubic.

The ``facesr-kd-benchmark-photos`` console script; see :mod:`facesr_kd.cli.benchmark_photos`.
"""

import sys

from facesr_kd.cli.benchmark_photos import main

if __name__ == '__main__':
    sys.exit(main())
