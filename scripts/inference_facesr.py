"""Restore the faces of photos (or aligned crops) with a facesr_kd checkpoint.

The ``facesr-kd-infer`` console script; see :mod:`facesr_kd.cli.inference`.
"""

import sys

from facesr_kd.cli.inference import main

if __name__ == '__main__':
    sys.exit(main())
