"""Reproduce Table 1 and Figure 1 from face photos in one command.

The ``facesr-kd-reproduce`` console script; see :mod:`facesr_kd.cli.reproduce`.
"""

import sys

from facesr_kd.cli.reproduce import main

if __name__ == '__main__':
    sys.exit(main())
