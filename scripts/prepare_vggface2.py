"""Detect, align and crop faces into HR/LR pairs, meta_info and component boxes.

The ``facesr-kd-prepare`` console script; see :mod:`facesr_kd.cli.prepare`.
"""

import sys

from facesr_kd.cli.prepare import main

if __name__ == '__main__':
    sys.exit(main())
