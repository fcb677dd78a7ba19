"""List the model zoo (the weights shipped in ``facesr_kd/weights/``).

The ``facesr-kd-models`` console script; see :mod:`facesr_kd.cli.models`.
"""

import sys

from facesr_kd.cli.models import main

if __name__ == '__main__':
    sys.exit(main())
