"""Plot the training losses BasicSR logged against the iteration.

The ``facesr-kd-plot-losses`` console script; see :mod:`facesr_kd.cli.plot_losses`.
"""

import sys

from facesr_kd.cli.plot_losses import main

if __name__ == '__main__':
    sys.exit(main())
