"""Collect test results into Table 1 (Markdown + CSV) with the bicubic rows, and draw Figure 1.

The ``facesr-kd-table1`` console script; see :mod:`facesr_kd.cli.table1`.
"""

import sys

from facesr_kd.cli.table1 import main

if __name__ == '__main__':
    sys.exit(main())
