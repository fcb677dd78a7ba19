"""Colour error of pasted faces against the upscaled photo for each --color-fix.

See :mod:`facesr_kd.benchmarks.colour_fix`.
"""

import sys

from facesr_kd.benchmarks.colour_fix import main

if __name__ == '__main__':
    sys.exit(main())
