"""Check the GPU path end to end and write a report.

The ``facesr-kd-gpu-check`` console script; see :mod:`facesr_kd.cli.gpu_check`.
"""

import sys

from facesr_kd.cli.gpu_check import main

if __name__ == '__main__':
    sys.exit(main())
