"""Distillation ablation: variants of the student's recipe against matched controls, over seeds.

The ``facesr-kd-ablation`` console script; see :mod:`facesr_kd.cli.ablation`.
"""

import sys

from facesr_kd.cli.ablation import main

if __name__ == '__main__':
    sys.exit(main())
