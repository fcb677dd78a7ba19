"""Build the teacher's component dictionaries from prepared HR faces.

The ``facesr-kd-dictionary`` console script; see :mod:`facesr_kd.cli.dictionary`.
"""

import sys

from facesr_kd.cli.dictionary import main

if __name__ == '__main__':
    sys.exit(main())
