"""Publish a training checkpoint as ``<name>-<sha256[:8]>.pth`` with a JSON manifest, for inference.

The ``facesr-kd-publish`` console script; see :mod:`facesr_kd.cli.publish`.
"""

import sys

from facesr_kd.cli.publish import main

if __name__ == '__main__':
    sys.exit(main())
