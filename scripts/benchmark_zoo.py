"""Quality and cost of checkpoints or zoo models on aligned test faces, beside bicubic.

See :mod:`facesr_kd.benchmarks.zoo_quality`.
"""

import sys

from facesr_kd.cli.benchmark_zoo import main

if __name__ == '__main__':
    sys.exit(main())
